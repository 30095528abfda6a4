"""Solve a placement instance with the chosen policy; always return a plan with its gap.

The ``optimal`` policy (the default):

1. **Warm start**: the greedy heuristic's plan. It is also the floor: the optimiser never
   returns a plan that scores worse under :func:`evaluate_assignment`.
2. **Bounds**: the LP relaxation of the row-level model at the hard temperature limit gives the
   lower bound on the peak normalised row power that no plan can beat; the smallest eligibility
   threshold at which the LP can still place every VM bounds the peak GPU temperature.
3. **Temperature threshold** (an epsilon-constraint sweep): for thresholds ``theta`` between
   that bound and the limit, the LP's peak power ``z(theta)``; keep the ``theta`` minimising
   ``w_p * z(theta) + w_t * theta / limit``.
4. **Rows first** (stage 1, CP-SAT): integer counts of each VM group per pool at ``theta``,
   with row/time constraint generation until every slot of the horizon holds.
5. **Then servers** (stage 2, CP-SAT per pool): which server each VM takes.
6. **Repair**: anything stage 2 could not seat goes through the greedy; then the solver-free
   evaluation picks the better of this plan and the warm start.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

import numpy as np

from tapas_opt.placement import heuristics
from tapas_opt.placement.backends import GlopBackend, SolveResult, make_backend
from tapas_opt.placement.evaluate import Evaluation, evaluate_assignment, server_warmth
from tapas_opt.placement.instance import PlacementInstance
from tapas_opt.placement.rowlevel import (PPM, add_aisle_airflow_limit, add_row_power_limit,
                                          build_row_data, build_row_model, complete_hint, counts_from_model,
                                          find_violated_slots, initial_slots, set_objective, set_theta)
from tapas_opt.placement.serverlevel import PoolProblem, build_pool_model, pool_counts
from tapas_opt.placement.state import RoomState

POLICIES = ("optimal", "greedy", "tapas-rules", "first-fit", "random")
MAX_CUT_ROUNDS = 30
LP_SOLVE_LIMIT_S = 60.0
"""Wall-clock limit of one GLOP solve of the row-level relaxation."""
LP_ITERATIONS_PER_S = 5000
"""The LP relaxation (bound and threshold sweep) may use this many simplex iterations per second
of the placement time limit (200,000 at the default 40 s): a deterministic budget, so that the
same input gives the same plan on a busy machine too. A 1,000-server room with 400 pending VMs
uses about 13,000; the simulator's 575-VM warm-up batch into an empty room about 93,000 (50 s
here). Past it, the greedy plan is returned without a bound."""
LP_WALL_SAFETY = 5.0
"""Wall-clock safety net of the LP relaxation, in multiples of the time limit (at least 60 s):
it only stops a machine far slower than the iteration budget assumes, and says so."""
STAGE1_SHARE = 0.3
"""Share of the time limit the row-level model (stage 1) may spend, in CP-SAT deterministic time."""
STAGE2_SHARE = 0.15
"""Share of the time limit the server-level models (stage 2) may spend together, likewise."""


@dataclass
class PlacementSolution:
    """A plan and everything known about its quality."""

    policy: str
    status: str  # optimal | feasible | partial (some VMs unplaced) | violates (baselines only)
    assign: np.ndarray
    evaluation: Evaluation
    unplaced: list[heuristics.Unplaced]
    solve_time_s: float
    objective: float
    bound: float | None = None
    power_bound: float | None = None
    temp_bound_c: float | None = None
    theta_c: float | None = None
    stats: dict = field(default_factory=dict)

    @property
    def gap(self) -> float | None:
        if self.bound is None or self.objective <= 0:
            return None
        return max(0.0, (self.objective - self.bound) / self.objective)

    @property
    def power_gap(self) -> float | None:
        if self.power_bound is None:
            return None
        peak = self.evaluation.peak_row_power_norm
        return max(0.0, (peak - self.power_bound) / peak) if peak > 0 else 0.0


def _status(evaluation: Evaluation, optimal: bool = False) -> str:
    hard = [v for v in evaluation.violations if not v.code.endswith("_preexisting")]
    if hard:
        return "violates"
    if evaluation.n_unplaced:
        return "partial"
    return "optimal" if optimal else "feasible"


def _unplaced_reasons(instance: PlacementInstance, assign: np.ndarray) -> list[heuristics.Unplaced]:
    state = RoomState.from_assignment(instance, assign)
    return [heuristics.explain_unplaced(state, int(v)) for v in np.flatnonzero(assign < 0)]


def _better(a: Evaluation, b: Evaluation) -> bool:
    """Is plan a better than plan b? Fewer violations, then fewer unplaced, then objective."""
    key_a = (len(a.violations), a.n_unplaced, round(a.objective, 12))
    key_b = (len(b.violations), b.n_unplaced, round(b.objective, 12))
    return key_a < key_b


# ---- LP relaxation ---------------------------------------------------------------------------

@dataclass
class LpResult:
    theta_c: float
    z: float  # peak normalised row power
    unplaced: float
    objective: float
    row_slots: dict
    aisle_slots: dict
    y: np.ndarray


class RowLp:
    """The LP relaxation of stage 1 (coefficients rounded down: a true relaxation, so its
    optimum is a valid lower bound), kept across thresholds: moving to a new ``theta`` changes
    bounds and the thermal capacity rows, and GLOP re-solves from its last basis; the row/time
    constraints found by constraint generation stay (they hold at every threshold).

    ``iteration_budget`` (simplex iterations, deterministic) and ``deadline`` (a
    ``time.perf_counter()`` value, a safety net) bound all its solves together: past either,
    :meth:`solve` raises, and the caller falls back to its heuristic plan without a bound. On an
    overloaded room constraint generation can otherwise add slots for a long time."""

    def __init__(self, instance: PlacementInstance, theta_c: float, deadline: float | None = None,
                 iteration_budget: int | None = None):
        self.inst = instance
        self.deadline = deadline
        self.iteration_budget = iteration_budget
        self.iterations = 0
        data = build_row_data(instance, theta_c, relax=True)
        self.row_slots, self.aisle_slots = initial_slots(data)
        self.backend = GlopBackend()
        self.model = build_row_model(data, self.backend, self.row_slots, self.aisle_slots)
        self.solves = 0

    def solve(self, theta_c: float) -> LpResult:
        m, backend = self.model, self.backend
        if theta_c != m.data.theta_c:
            set_theta(m, build_row_data(self.inst, theta_c, relax=True))
        data = m.data
        for _ in range(MAX_CUT_ROUNDS):
            res = backend.solve(self._time_left(), 1, 0, self._iterations_left())
            self.solves += 1
            self.iterations += backend.iterations
            if res.status != "optimal":  # an LP stopped early bounds nothing
                if self.iteration_budget is not None and self.iterations >= self.iteration_budget:
                    raise RuntimeError(f"the row-level LP relaxation ran out of its budget of "
                                       f"{self.iteration_budget} simplex iterations")
                raise RuntimeError(f"row-level LP returned {res.status}")
            # Read every value before the model changes: GLOP forgets its solution then. If the
            # rounds run out with slots still violated, this is the relaxation without them:
            # still a relaxation, so still a lower bound.
            y = counts_from_model(m)
            z = backend.value(m.z)
            unplaced = float(sum(backend.value(v) for v in m.unplaced.values()))
            new_rows, new_aisles = find_violated_slots(data, y, z, self.row_slots, self.aisle_slots)
            if not new_rows and not new_aisles:
                break
            add_row_power_limit(m, new_rows)
            add_aisle_airflow_limit(m, new_aisles)
        return LpResult(theta_c, z / PPM, unplaced, res.objective,
                        {k: list(v) for k, v in self.row_slots.items()},
                        {k: list(v) for k, v in self.aisle_slots.items()}, y)

    def _time_left(self) -> float:
        if self.deadline is None:
            return LP_SOLVE_LIMIT_S
        left = self.deadline - time.perf_counter()
        if left <= 0:
            raise RuntimeError("the row-level LP relaxation ran out of its wall-clock safety net "
                               "(a very slow or overloaded machine)")
        return min(LP_SOLVE_LIMIT_S, left)

    def _iterations_left(self) -> int | None:
        if self.iteration_budget is None:
            return None
        left = self.iteration_budget - self.iterations
        if left <= 0:
            raise RuntimeError(f"the row-level LP relaxation ran out of its budget of {self.iteration_budget} "
                               "simplex iterations")
        return left

    def peak_bound(self) -> LpResult:
        """The relaxation at the temperature limit minimising peak power alone (no soft terms).

        Its ``z`` is a lower bound on the peak normalised row power of every plan that leaves at
        most ``unplaced`` VMs out: such a plan is a point of this LP, whose objective puts a
        penalty on each unplaced VM far above any peak. The steering solves (soft spread and
        balance terms on) may accept a higher ``z`` for spreading, so theirs is no bound."""
        set_objective(self.model, soft=False)
        try:
            res = self.solve(self.inst.temp_limit_c)
        finally:
            set_objective(self.model)
        # No plan goes below what the running VMs alone draw, in rows the model leaves out too
        # (rows already over their limit are closed to new VMs).
        inst = self.inst
        running = float((inst.base_row_kw / inst.row_limit_kw[:, None]).max()) if inst.base_row_kw.size else 0.0
        return dataclasses.replace(res, z=max(res.z, math.floor(running * PPM) / PPM))


def peak_power_bound(instance: PlacementInstance) -> LpResult:
    """Lower bound on the peak normalised row power (see :meth:`RowLp.peak_bound`)."""
    return RowLp(instance, instance.temp_limit_c).peak_bound()


def solve_row_lp(instance: PlacementInstance, theta_c: float) -> LpResult:
    """LP relaxation of stage 1 at threshold ``theta``, with constraint generation over slots."""
    return RowLp(instance, theta_c).solve(theta_c)


def _lp_feasible(lp: LpResult) -> bool:
    return lp.unplaced < 1e-6


def choose_theta(instance: PlacementInstance, lp: RowLp, lp_at_limit: LpResult, stats: dict
                 ) -> tuple[float, float]:
    """Sweep the eligibility threshold; return (chosen theta, lower bound on the placed VMs'
    peak temperature).

    ``J(theta) = w_p z(theta) + w_t max(theta, running peak) / limit + w_placed theta / limit``
    where ``z(theta)`` is the LP's peak row power when every new VM must stay at or below
    ``theta``; ``z`` never increases with ``theta`` while the temperature terms grow, and the
    sweep keeps the best trade-off (an epsilon-constraint method). The bound is the largest
    threshold at which the LP cannot seat every VM: no plan's placed peak is below it.
    """
    inst, opts = instance, instance.options
    limit = inst.temp_limit_c
    temps = inst.group_peak_temp_c
    existing = inst.existing_peak_temp_c
    # Every group must sit somewhere: its coolest server bounds the placed VMs' peak from below.
    lo = float(temps.min(axis=1).max()) if temps.size else limit
    if not _lp_feasible(lp_at_limit) or opts.temp_weight + opts.placed_temp_weight == 0 or lo >= limit:
        return limit, min(lo, limit)
    cache: dict[float, LpResult] = {limit: lp_at_limit}

    def solve(theta: float) -> LpResult:
        theta = round(float(theta), 2)
        if theta not in cache:
            cache[theta] = lp.solve(theta)
        return cache[theta]

    def score(theta: float) -> float:
        res = solve(theta)
        if not _lp_feasible(res):
            return np.inf
        return (opts.power_weight * res.z + opts.temp_weight * max(theta, existing) / limit
                + opts.placed_temp_weight * theta / limit)

    # A coarse grid from the coolest conceivable threshold to the limit, then a finer one
    # around the best point (which may sit next to an infeasible one). Every threshold at
    # which the LP cannot seat all VMs is a valid lower bound on the placed VMs' peak.
    grid = np.unique(np.round(np.linspace(lo, limit, 5), 2))
    scores = [score(t) for t in grid]
    best = int(np.argmin(scores))
    fine = np.round(np.linspace(grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)], 5), 2)
    candidates = sorted(set(grid) | set(fine))
    all_scores = [score(t) for t in candidates]
    theta = float(candidates[int(np.argmin(all_scores))])
    infeasible = [t for t in candidates if not _lp_feasible(solve(t))]
    bound = max(infeasible) if infeasible else lo
    stats["theta_sweep"] = {f"{t:.2f}": round(float(s), 6) for t, s in zip(candidates, all_scores)}
    stats["lp_thresholds"] = len(cache)
    return theta, float(bound)


def integral_witness(inst: PlacementInstance, theta: float, target_unplaced: int, stats: dict
                     ) -> tuple[float, np.ndarray, Evaluation]:
    """Raise ``theta`` until the greedy (thermally hardest VMs first, every VM at or below
    ``theta``) seats as many VMs as the unconstrained greedy: the LP can choose a threshold that
    only fractional plans meet, and stage 1 needs an integral plan to start from."""
    limit = inst.temp_limit_c
    step = max(0.5, (limit - theta) / 8)
    while True:
        assign = heuristics.greedy(inst, heuristics.vm_order_hardest_first(inst, theta), temp_cap_c=theta)
        ev = evaluate_assignment(inst, assign)
        if ev.n_unplaced <= target_unplaced or theta >= limit:
            stats["theta_witness"] = {"theta_c": round(theta, 2), "greedy_objective": round(ev.objective, 6)}
            return theta, assign, ev
        theta = min(limit, theta + step)


# ---- integer stages -----------------------------------------------------------------------

def _hint_counts(data, assign: np.ndarray) -> np.ndarray:
    inst = data.inst
    y = np.zeros((data.n_groups, len(data.pools)))
    pos = {int(p): j for j, p in enumerate(data.pools)}
    for v in np.flatnonzero(assign >= 0):
        j = pos.get(int(inst.pool_of_server[assign[v]]))
        if j is not None:
            y[inst.vm_group[v], j] += 1
    return y


def solve_row_integer(instance: PlacementInstance, theta_c: float, lp: LpResult, warm: np.ndarray,
                      backend_name: str, time_limit_s: float, workers: int, seed: int,
                      stats: dict) -> np.ndarray:
    """Stage 1 with integer counts; constraint generation until every slot holds."""
    data = build_row_data(instance, theta_c)
    row_slots = {k: list(v) for k, v in lp.row_slots.items()}
    aisle_slots = {k: list(v) for k, v in lp.aisle_slots.items()}
    hint = _hint_counts(data, warm)
    left = time_limit_s  # work budget (CP-SAT deterministic time): the rounds share it
    results: list[SolveResult] = []
    y = hint
    backend = make_backend(backend_name)
    m = build_row_model(data, backend, row_slots, aisle_slots)
    for _ in range(MAX_CUT_ROUNDS):
        backend.hint(complete_hint(m, hint))
        res = backend.solve(max(1.0, left), workers, seed)
        left -= res.work_s
        results.append(res)
        if not res.has_solution:
            break
        y = counts_from_model(m)
        z = backend.value(m.z)
        hint = y
        new_rows, new_aisles = find_violated_slots(data, y, z, row_slots, aisle_slots)
        if not new_rows and not new_aisles:
            break
        add_row_power_limit(m, new_rows)
        add_aisle_airflow_limit(m, new_aisles)
    stats["stage1"] = {"rounds": len(results), "status": results[-1].status if results else "none",
                       "objective": results[-1].objective if results else None,
                       "bound": results[-1].bound if results else None,
                       "wall_s": round(sum(r.wall_time_s for r in results), 3),
                       "cp_wall_stops": sum(r.wall_stopped for r in results),
                       "row_slots": int(sum(len(v) for v in row_slots.values())),
                       "aisle_slots": int(sum(len(v) for v in aisle_slots.values()))}
    return _expand_counts(data, y)


def _expand_counts(data, y: np.ndarray) -> dict[int, dict[int, int]]:
    """{pool: {group: count}} from the count matrix."""
    out: dict[int, dict[int, int]] = {}
    for g, j in zip(*np.nonzero(np.round(y) > 0)):
        out.setdefault(int(data.pools[j]), {})[int(g)] = int(round(y[g, j]))
    return out


def solve_servers(instance: PlacementInstance, pool_counts_: dict[int, dict[int, int]], theta_c: float,
                  backend_name: str, time_limit_s: float, workers: int, seed: int,
                  stats: dict) -> np.ndarray:
    """Stage 2: for every pool, which servers take its VMs."""
    inst = instance
    warmth = server_warmth(inst)
    assign = np.full(inst.n_vms, -1, dtype=int)
    next_member = {g: 0 for g in range(inst.n_groups)}
    statuses = []
    wall_stops = 0
    per_pool = max(0.5, time_limit_s / max(1, len(pool_counts_)))
    problems = []
    for pool in sorted(pool_counts_):
        counts = pool_counts_[pool]
        groups = np.array(sorted(counts), dtype=int)
        servers = np.flatnonzero((inst.pool_of_server == pool) & (inst.free_gpus > 0))
        problems.append(PoolProblem(inst, pool, groups, np.array([counts[g] for g in groups]), servers,
                                    theta_c, warmth))
    floor = _room_peak_floor(inst, problems, theta_c)
    for prob in problems:
        prob.peak_floor_c = floor
        backend = make_backend(backend_name)
        m = build_pool_model(prob, backend)
        backend.hint(_pool_hint(m))
        res = backend.solve(per_pool, workers, seed)
        statuses.append(res.status)
        wall_stops += res.wall_stopped
        if not res.has_solution:
            continue
        for (g, s), c in sorted(pool_counts(m).items()):
            members = inst.group_members[g]
            for _ in range(c):
                assign[members[next_member[g]]] = s
                next_member[g] += 1
    stats["stage2"] = {"pools": len(statuses),
                       "optimal": sum(s == "optimal" for s in statuses),
                       "unsolved": sum(s not in ("optimal", "feasible") for s in statuses),
                       "cp_wall_stops": wall_stops}
    return assign


def _room_peak_floor(inst: PlacementInstance, problems: list[PoolProblem], theta_c: float) -> float:
    """A lower bound on the placed VMs' peak temperature after stage 2: for every group, the
    coolest eligible server of its pool."""
    floor = -np.inf
    for prob in problems:
        temps = inst.group_peak_temp_c[np.ix_(prob.groups, prob.servers)]
        temps = np.where(temps <= theta_c + 1e-9, temps, np.inf)
        if temps.size:
            floor = max(floor, float(np.nanmax(temps.min(axis=1))))
    return floor


def _pool_hint(m) -> list:
    """Greedy start for a pool: hottest groups first, each VM to the coolest server with room."""
    prob, inst = m.prob, m.prob.inst
    free = inst.free_gpus[prob.servers].astype(int).copy()
    temps = inst.group_peak_temp_c[np.ix_(prob.groups, prob.servers)]
    sizes = inst.vm_gpus[inst.group_rep[prob.groups]]
    counts = {key: 0 for key in m.x}
    for i in np.argsort(-temps.min(axis=1), kind="stable"):
        for _ in range(int(prob.counts[i])):
            ks = [k for k in np.argsort(temps[i], kind="stable") if (i, k) in m.x and free[k] >= sizes[i]]
            if not ks:
                break
            counts[i, ks[0]] += 1
            free[ks[0]] -= sizes[i]
    return [(var, counts[key]) for key, var in m.x.items()]


def repair(instance: PlacementInstance, assign: np.ndarray, theta_c: float | None = None) -> np.ndarray:
    """Seat what the stages left over with the greedy, against the room as it now stands:
    first within the threshold ``theta``, then anywhere under the hard limit."""
    if (assign >= 0).all():
        return assign
    state = RoomState.from_assignment(instance, assign)
    if theta_c is not None:
        heuristics.greedy(instance, state=state, temp_cap_c=theta_c)
    return heuristics.greedy(instance, state=state)


# ---- policies ------------------------------------------------------------------------------

def _baseline(instance: PlacementInstance, policy: str, seed: int) -> np.ndarray:
    if policy == "first-fit":
        return heuristics.first_fit(instance)
    if policy == "random":
        return heuristics.random_fit(instance, seed)
    if policy == "tapas-rules":
        return heuristics.tapas_rules(instance)
    if policy == "greedy":
        return heuristics.greedy(instance)
    raise ValueError(f"unknown policy {policy!r}: choose one of {', '.join(POLICIES)}")


def solve_placement(instance: PlacementInstance, policy: str = "optimal", backend: str = "cp-sat",
                    time_limit_s: float | None = None, workers: int | None = None,
                    seed: int | None = None) -> PlacementSolution:
    """Place the instance's pending VMs with ``policy``; see the module docstring."""
    opts = instance.options
    time_limit_s = opts.time_limit_s if time_limit_s is None else time_limit_s
    workers = opts.workers if workers is None else workers
    seed = opts.seed if seed is None else seed
    t0 = time.perf_counter()
    if policy != "optimal":
        assign = _baseline(instance, policy, seed)
        ev = evaluate_assignment(instance, assign)
        return PlacementSolution(policy, _status(ev), assign, ev, _unplaced_reasons(instance, assign),
                                 time.perf_counter() - t0, ev.objective)
    return _solve_optimal(instance, backend, time_limit_s, workers, seed, t0)


def _solve_optimal(instance: PlacementInstance, backend: str, time_limit_s: float, workers: int,
                   seed: int, t0: float) -> PlacementSolution:
    inst, opts = instance, instance.options
    stats: dict = {"groups": inst.n_groups, "pools": inst.n_pools, "backend": backend}
    warm = heuristics.greedy(inst)
    warm_ev = evaluate_assignment(inst, warm)
    stats["greedy_objective"] = round(warm_ev.objective, 6)
    if inst.n_vms == 0:
        return PlacementSolution("optimal", _status(warm_ev, True), warm, warm_ev, [],
                                 time.perf_counter() - t0, warm_ev.objective, warm_ev.objective,
                                 warm_ev.peak_row_power_norm, warm_ev.peak_temp_c, inst.temp_limit_c, stats)
    try:
        lp = RowLp(inst, inst.temp_limit_c, deadline=t0 + max(60.0, LP_WALL_SAFETY * time_limit_s),
                   iteration_budget=int(LP_ITERATIONS_PER_S * time_limit_s))
        lp_limit = lp.solve(inst.temp_limit_c)
        theta, temp_lb = choose_theta(inst, lp, lp_limit, stats)
        lp_bound = lp.peak_bound()
        stats["lp_time_s"] = round(time.perf_counter() - t0, 3)
        theta, warm_theta, warm_theta_ev = integral_witness(inst, theta, warm_ev.n_unplaced, stats)
        lp_theta = lp.solve(theta)
        stats["lp_solves"] = lp.solves
        stats["lp_iterations"] = lp.iterations
    except RuntimeError as exc:
        # The LP only bounds and steers; if it fails (its own time limit on a very large or
        # very busy instance), the greedy plan stands, reported without a bound.
        stats["lp_error"] = str(exc)
        stats["returned"] = "greedy (the LP relaxation failed)"
        return PlacementSolution("optimal", _status(warm_ev), warm, warm_ev, _unplaced_reasons(inst, warm),
                                 time.perf_counter() - t0, warm_ev.objective, stats=stats)
    hint = warm_theta if warm_theta_ev.n_unplaced <= warm_ev.n_unplaced else warm
    # Budgets are CP-SAT deterministic time, fixed shares of the limit and never derived from
    # the clock, so the same input and seed give the same plan on a busy machine too (where
    # deterministic time runs slower than wall time): stage 1 gets 30 %, stage 2 15 %.
    counts = solve_row_integer(inst, theta, lp_theta, hint, backend, STAGE1_SHARE * time_limit_s,
                               workers, seed, stats)
    assign = solve_servers(inst, counts, theta, backend, STAGE2_SHARE * time_limit_s, workers, seed, stats)
    assign = repair(inst, assign, theta)
    ev = evaluate_assignment(inst, assign)
    stats["optimised_objective"] = round(ev.objective, 6)
    stats["returned"] = "optimised"
    for name, other, other_ev in (("greedy at theta", warm_theta, warm_theta_ev), ("greedy", warm, warm_ev)):
        if _better(other_ev, ev):
            assign, ev = other, other_ev
            stats["returned"] = f"{name} (better than the optimised plan)"
    existing = inst.existing_peak_temp_c
    temp_bound = max(temp_lb, existing) if np.isfinite(existing) else temp_lb
    bound, power_bound = None, lp_bound.z
    if _lp_feasible(lp_bound):
        bound = (opts.power_weight * lp_bound.z + opts.temp_weight * temp_bound / inst.temp_limit_c
                 + opts.placed_temp_weight * temp_lb / inst.temp_limit_c)
    if ev.n_unplaced > lp_bound.unplaced + 1e-6:
        # The relaxation seats (fractionally) VMs this plan leaves out; its peaks are those of a
        # fuller room and bound nothing about this plan (the penalty per unplaced VM dominates).
        stats["bound_note"] = (f"no bound: the plan leaves {ev.n_unplaced} VM(s) unplaced, "
                               f"the LP relaxation {lp_bound.unplaced:.3g}")
        bound, power_bound = None, None
        temp_bound = existing if np.isfinite(existing) else None
    sol = PlacementSolution("optimal", "feasible", assign, ev, _unplaced_reasons(inst, assign),
                            time.perf_counter() - t0, ev.objective, bound, power_bound, temp_bound, theta, stats)
    gap = sol.gap
    sol.status = _status(ev, optimal=gap is not None and gap < 1e-6)
    return sol
