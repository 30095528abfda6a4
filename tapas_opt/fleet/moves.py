"""Nightly re-planning: a bounded set of SaaS moves that buys the most headroom.

Forecasts drift, so a room placed well last month can have hot rows tonight. IaaS GPU VMs
cannot live-migrate; a SaaS instance can be *moved* by creating a new instance on the target
server, draining the old one behind the endpoint's load balancer, and retiring it.

:func:`choose_moves` picks at most ``max_moves`` running SaaS VMs and a target pool for each
(CP-SAT, the same row/time constraint generation as placement): minimise the week's peak
normalised row power, then the number of moves. Each mover then takes the coolest server of its
target pool that keeps its GPUs under the limit. :func:`order_moves` sequences them so that no
intermediate state breaks a limit: while a move is in flight both the old and the new instance
draw their forecast power (conservative), and each step is re-checked by the solver-free
evaluator that ``tapas-opt verify`` uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tapas_opt.placement.backends import INF, make_backend
from tapas_opt.placement.evaluate import evaluate_assignment
from tapas_opt.placement.instance import PlacementInstance, server_series, sum_by
from tapas_opt.placement.rowlevel import PPM
from tapas_opt.placement.state import RoomState


MOVE_COST = 1e-5
"""Objective cost of one move (normalised peak units): fewer moves break ties in the peak."""


@dataclass(frozen=True)
class Move:
    vm_id: str
    running_index: int
    source: int  # server index
    target: int  # server index


@dataclass
class MovePlan:
    moves: list[Move]
    peak_before: float
    peak_after: float
    steps: list[dict] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)


def _running_power(inst: PlacementInstance, idx: np.ndarray, servers: np.ndarray) -> np.ndarray:
    run = inst.running
    gpus = run["gpus"].to_numpy(int)[idx]
    return inst.params.vm_power_kw(inst.running_load[idx], gpus[:, None], servers[:, None])


def _running_airflow(inst: PlacementInstance, idx: np.ndarray, servers: np.ndarray) -> np.ndarray:
    gpus = inst.running["gpus"].to_numpy(int)[idx]
    return inst.params.vm_airflow_cfm(inst.running_load[idx], gpus[:, None], servers[:, None])


def _candidates(inst: PlacementInstance, state: RoomState, margin: float, limit: int) -> np.ndarray:
    """Running SaaS VMs in rows whose peak is within ``margin`` of the room's peak, largest first."""
    run = inst.running
    row_peak = (state.row_kw / inst.row_limit_kw[:, None]).max(axis=1)
    hot_rows = np.flatnonzero(row_peak >= row_peak.max() * (1 - margin))
    servers = run["server"].to_numpy(int)
    saas = run["kind"].to_numpy(str) == "saas"
    idx = np.flatnonzero(saas & np.isin(inst.server_row[servers], hot_rows))
    power = _running_power(inst, idx, servers[idx]).max(axis=1)
    order = np.lexsort((idx, -np.round(power, 9)))
    return idx[order][:limit]


def greedy_moves(inst: PlacementInstance, state: RoomState, cand: np.ndarray, src: np.ndarray, gpus: np.ndarray,
                 pool_ok: np.ndarray, p_src, a_src, p_hw, a_hw, max_moves: int) -> dict[int, int]:
    """Warm start: repeatedly move the SaaS VM of the peak row whose move lowers the room's peak
    row power most (ties: the lower sum of the two rows' peaks), while a move still helps."""
    row_kw = state.row_kw.copy()
    aisle_cfm = state.aisle_cfm.copy()
    free_pool = np.bincount(inst.pool_of_server, state.free, minlength=inst.n_pools).astype(int)
    lim = inst.row_limit_kw[:, None]
    alim = inst.aisle_limit_cfm[:, None]
    src_row = inst.server_row[src]
    src_aisle = inst.row_aisle[src_row]
    chosen: dict[int, int] = {}
    for _ in range(max_moves):
        norm = (row_kw / lim).max(axis=1)
        peak = norm.max()
        hot = int(np.argmax(norm))
        best = None
        for c in np.flatnonzero((src_row == hot)):
            if c in chosen:
                continue
            for p in np.flatnonzero(pool_ok[c] & (free_pool >= gpus[c])):
                r, a = inst.pool_row[p], inst.pool_aisle[p]
                new_src = row_kw[hot] - p_src[c]
                new_dst = row_kw[r] + p_hw[c, inst.pool_hw[p]]
                air_dst = aisle_cfm[a] + a_hw[c, inst.pool_hw[p]] - (a_src[c] if a == src_aisle[c] else 0)
                if (air_dst > np.maximum(alim[a, 0], aisle_cfm[a].max()) + 1e-6).any():
                    continue
                if (new_dst > lim[r, 0] + 1e-6).any():
                    continue
                rest = np.delete(norm, [hot, r]).max() if inst.n_rows > 2 else 0.0
                after = max(rest, (new_src / lim[hot, 0]).max(), (new_dst / lim[r, 0]).max())
                key = (round(after, 9), round((new_src / lim[hot, 0]).max() + (new_dst / lim[r, 0]).max(), 9), c, p)
                if best is None or key < best[0]:
                    best = (key, c, p)
        if best is None or best[0][0] >= peak - 1e-9:
            break
        _, c, p = best
        chosen[c] = p
        row_kw[src_row[c]] -= p_src[c]
        aisle_cfm[src_aisle[c]] -= a_src[c]
        row_kw[inst.pool_row[p]] += p_hw[c, inst.pool_hw[p]]
        aisle_cfm[inst.pool_aisle[p]] += a_hw[c, inst.pool_hw[p]]
        free_pool[p] -= gpus[c]
    return chosen


def choose_moves(inst: PlacementInstance, assign: np.ndarray, max_moves: int, time_limit_s: float = 20.0,
                 workers: int = 2, seed: int = 0, margin: float = 0.08, max_candidates: int = 150) -> MovePlan:
    """Pick at most ``max_moves`` SaaS moves minimising the peak normalised row power."""
    state = RoomState.from_assignment(inst, assign)
    peak_before = float((state.row_kw / inst.row_limit_kw[:, None]).max())
    if max_moves <= 0 or len(inst.running) == 0:
        return MovePlan([], peak_before, peak_before)
    cand = _candidates(inst, state, margin, max_candidates)
    if len(cand) == 0:
        return MovePlan([], peak_before, peak_before)
    run = inst.running
    src = run["server"].to_numpy(int)[cand]
    gpus = run["gpus"].to_numpy(int)[cand]
    pools = np.arange(inst.n_pools)
    reps = inst.hw_representative
    # Power each candidate draws where it is, and would draw on each hardware class.
    p_src = _running_power(inst, cand, src)
    a_src = _running_airflow(inst, cand, src)
    p_hw = inst.params.vm_power_kw(inst.running_load[cand][:, None, :], gpus[:, None, None], reps[None, :, None])
    a_hw = inst.params.vm_airflow_cfm(inst.running_load[cand][:, None, :], gpus[:, None, None], reps[None, :, None])
    # Targets: pools with a server that has room and keeps the VM's GPUs under the limit.
    temps = inst.peak_temp_c(inst.running_load[cand])  # [C, S]
    room_ok = state.free[None, :] >= gpus[:, None]
    ok = room_ok & (temps <= inst.temp_limit_c + 1e-9)
    ok[np.arange(len(cand)), src] = False
    pool_ok = np.zeros((len(cand), inst.n_pools), bool)
    for c in range(len(cand)):
        pool_ok[c, np.unique(inst.pool_of_server[ok[c]])] = True
        pool_ok[c, inst.pool_of_server[src[c]]] = False  # a move inside its pool buys nothing

    src_row = inst.server_row[src]
    src_aisle = inst.row_aisle[src_row]
    warm = greedy_moves(inst, state, cand, src, gpus, pool_ok, p_src, a_src, p_hw, a_hw, max_moves)
    backend = make_backend("cp-sat")
    x = {(c, p): backend.var(0, 1, f"move_c{c}_p{p}") for c in range(len(cand)) for p in np.flatnonzero(pool_ok[c])}
    by_c: dict[int, list] = {}
    for (c, p), v in x.items():
        by_c.setdefault(c, []).append(v)
    for c, vs in by_c.items():
        backend.add_linear(vs, [1] * len(vs), -INF, 1, f"one_target_c{c}")
    backend.add_linear(list(x.values()), [1] * len(x), -INF, int(max_moves), "max_moves")
    # Capacity of each target pool in 8-GPU-block-consistent terms: GPUs on servers with room.
    for p in pools:
        terms = [(c, v) for (c, pp), v in x.items() if pp == p]
        if terms:
            free = state.free[inst.pool_of_server == p]
            backend.add_linear([v for _, v in terms], [int(gpus[c]) for c, _ in terms], -INF, int(free.sum()),
                               f"capacity_p{p}")
    z = backend.var(0, 4 * PPM, "peak_row_power_ppm")
    row_lim = inst.row_limit_kw
    base_row = np.round(PPM * state.row_kw / row_lim[:, None]).astype(np.int64)
    aisle_lim = inst.aisle_limit_cfm
    base_air = np.round(PPM * state.aisle_cfm / aisle_lim[:, None]).astype(np.int64)

    def delta_terms(where_p, where_src, target, added, removed, lim, t: int):
        """Variables and ppm coefficients of the change moves make to one row or aisle at slot t:
        + what a mover adds where it lands, - what it drew where it was (rounded outwards)."""
        vars_, coefs = [], []
        for (c, p), v in x.items():
            coef = (added[c, inst.pool_hw[p], t] if where_p[p] == target else 0.0) - \
                (removed[c, t] if where_src[c] == target else 0.0)
            if coef:
                ppm = PPM * coef / lim
                vars_.append(v)
                coefs.append(int(np.ceil(ppm)) if coef > 0 else int(np.floor(ppm)))
        return vars_, coefs

    def row_terms(r: int, t: int):
        return delta_terms(inst.pool_row, src_row, r, p_hw, p_src, row_lim[r], t)

    def aisle_terms(a: int, t: int):
        return delta_terms(inst.pool_aisle, src_aisle, a, a_hw, a_src, aisle_lim[a], t)

    # Seed slots: each row's three highest slots now, and where the warm start peaks.
    warm_row, _ = _apply_pools(inst, state, warm, p_src, a_src, p_hw, a_hw, src_row, src_aisle)
    row_slots: set[tuple[int, int]] = {(r, int(t)) for r in range(inst.n_rows)
                                       for t in np.argsort(-base_row[r], kind="stable")[:3]}
    row_slots |= {(r, int(np.argmax(warm_row[r]))) for r in range(inst.n_rows)}
    aisle_slots: set[tuple[int, int]] = {(a, int(np.argmax(base_air[a]))) for a in range(len(aisle_lim))}

    def add_row(r, t):
        vs, cs = row_terms(r, t)
        backend.add_linear(vs + [z], cs + [-1], -INF, -int(base_row[r, t]), f"row_power_r{r}_t{t}")

    def add_aisle(a, t):
        vs, cs = aisle_terms(a, t)
        backend.add_linear(vs, cs, -INF, max(PPM, int(base_air[a].max())) - int(base_air[a, t]), f"aisle_airflow_a{a}_t{t}")

    for r, t in sorted(row_slots):
        add_row(r, t)
    for a, t in sorted(aisle_slots):
        add_aisle(a, t)
    backend.minimize([z] + list(x.values()), [1.0 / PPM] + [MOVE_COST] * len(x))
    chosen: dict[int, int] = dict(warm)
    backend.hint(((v, 1 if warm.get(c) == p else 0) for (c, p), v in x.items()))
    rounds = 0
    best_bound = None
    deadline = time_limit_s
    for rounds in range(1, 21):
        res = backend.solve(max(1.0, deadline / 3), workers, seed)
        deadline -= res.work_s  # deterministic time: the same rounds on any machine
        if not res.has_solution:
            break
        chosen = {c: p for (c, p), v in x.items() if backend.value(v) > 0.5}
        best_bound = res.bound
        if deadline <= 0:
            break
        row_kw, aisle_cfm = _apply_pools(inst, state, chosen, p_src, a_src, p_hw, a_hw, src_row, src_aisle)
        zval = backend.value(z)
        new = False
        for r in range(inst.n_rows):
            over = np.flatnonzero(PPM * row_kw[r] / row_lim[r] > zval + 1)
            over = [t for t in over if (r, t) not in row_slots]
            if over:
                t = int(max(over, key=lambda t: row_kw[r, t]))
                row_slots.add((r, t)); add_row(r, t); new = True
        for a in range(len(aisle_lim)):
            cap = max(aisle_lim[a], state.aisle_cfm[a].max())
            over = [t for t in np.flatnonzero(aisle_cfm[a] > cap + 1e-6) if (a, t) not in aisle_slots]
            if over:
                t = int(max(over, key=lambda t: aisle_cfm[a, t]))
                aisle_slots.add((a, t)); add_aisle(a, t); new = True
        if not new:
            break
        backend.hint(((v, 1 if chosen.get(c) == p else 0) for (c, p), v in x.items()))
    # Never worse than the warm start: compare both by the peak they actually give.
    def peak_of(sel):
        rk, ac = _apply_pools(inst, state, sel, p_src, a_src, p_hw, a_hw, src_row, src_aisle)
        ok = (ac <= np.maximum(inst.aisle_limit_cfm, state.aisle_cfm.max(axis=1))[:, None] + 1e-6).all()
        return (rk / inst.row_limit_kw[:, None]).max() if ok else np.inf
    source = "cp-sat"
    if peak_of(warm) <= peak_of(chosen) + 1e-12:
        chosen, source = warm, "greedy"
    moves = _pick_servers(inst, state, cand, src, gpus, chosen, temps)
    return MovePlan(moves, peak_before, float(peak_of(chosen)),
                    stats={"candidates": int(len(cand)), "rounds": rounds, "row_slots": len(row_slots),
                           "greedy_peak": round(float(peak_of(warm)), 6), "returned": source,
                           "peak_bound": _peak_bound(best_bound, max_moves)})


def _peak_bound(objective_bound: float | None, max_moves: int) -> float | None:
    """CP-SAT's bound on ``z + MOVE_COST * moves``, turned into a bound on the true peak: no choice
    of at most ``max_moves`` moves among the candidates goes below it (strictly: of those that
    keep each aisle a few ppm inside its limit, as the aisle rows round additions up). It
    subtracts the largest move term and the ppm rounding (a row sum rounds its base to nearest
    and each mover's addition up: at most ``max_moves + 1`` ppm above the true value); floored
    to 6 decimals."""
    if objective_bound is None:
        return None
    bound = objective_bound - MOVE_COST * max_moves - (max_moves + 1) / PPM
    return float(np.floor(bound * 1e6) / 1e6)


def _apply_pools(inst, state, chosen, p_src, a_src, p_hw, a_hw, src_row, src_aisle):
    row_kw = state.row_kw.copy()
    aisle_cfm = state.aisle_cfm.copy()
    for c, p in chosen.items():
        row_kw[src_row[c]] -= p_src[c]
        aisle_cfm[src_aisle[c]] -= a_src[c]
        row_kw[inst.pool_row[p]] += p_hw[c, inst.pool_hw[p]]
        aisle_cfm[inst.pool_aisle[p]] += a_hw[c, inst.pool_hw[p]]
    return row_kw, aisle_cfm


def _pick_servers(inst, state, cand, src, gpus, chosen, temps) -> list[Move]:
    """Each mover to the coolest server of its target pool with room (deterministic order)."""
    free = state.free.copy()
    moves = []
    for c in sorted(chosen):
        p = chosen[c]
        servers = np.flatnonzero((inst.pool_of_server == p) & (free >= gpus[c]) & (temps[c] <= inst.temp_limit_c + 1e-9))
        if len(servers) == 0:
            continue
        s = int(servers[np.lexsort((servers, temps[c, servers]))[0]])
        free[s] -= gpus[c]
        moves.append(Move(str(inst.running["vm_id"].iloc[cand[c]]), int(cand[c]), int(src[c]), s))
    return moves


def moved_instance(inst: PlacementInstance, moves: list[Move], keep_source: set[int] = frozenset()
                   ) -> PlacementInstance:
    """The instance with movers' running VMs on their target servers; movers in ``keep_source``
    stay on their source too (a move in flight: both instances draw power)."""
    from dataclasses import replace

    run = inst.running.copy()
    loads = inst.running_load
    extra_rows, extra_loads = [], []
    for m in moves:
        if m.running_index in keep_source:
            row = run.iloc[m.running_index].copy()
            row["vm_id"] = f"{row['vm_id']}@new"
            row["server"] = m.target
            row["server_id"] = inst.server_ids[m.target]
            extra_rows.append(row)
            extra_loads.append(loads[m.running_index])
        else:
            run.iloc[m.running_index, run.columns.get_loc("server")] = m.target
            run.iloc[m.running_index, run.columns.get_loc("server_id")] = inst.server_ids[m.target]
    if extra_rows:
        run = pd.concat([run, pd.DataFrame(extra_rows)], ignore_index=True)
        loads = np.vstack([loads, np.array(extra_loads)])
    used = np.zeros(inst.n_servers, int)
    np.add.at(used, run["server"].to_numpy(int), run["gpus"].to_numpy(int))
    free = inst.params.gpus - used
    base_row, base_aisle = _base_loads(inst, run, loads)
    return replace(inst, running=run.reset_index(drop=True), running_load=loads, free_gpus=free,
                   base_row_kw=base_row, base_aisle_cfm=base_aisle)


def _base_loads(inst: PlacementInstance, run: pd.DataFrame, loads: np.ndarray):
    server_kw, server_cfm = server_series(inst.params, inst.n_slots, [(run["server"].to_numpy(int),
                                                                       run["gpus"].to_numpy(int), loads)])
    return (sum_by(inst.server_row, server_kw, inst.n_rows),
            sum_by(inst.row_aisle[inst.server_row], server_cfm, len(inst.aisle_ids)))


def order_moves(inst: PlacementInstance, assign: np.ndarray, moves: list[Move]) -> tuple[list[dict], list[str]]:
    """Sequence the moves so that every intermediate state holds every limit.

    At each step, among the remaining moves whose in-flight state (old and new instance both
    drawing power, pending VMs already placed) breaks nothing, take the one that lowers the
    room's peak row power most. Moves that can never be executed safely are dropped.
    """
    done: list[Move] = []
    remaining = list(moves)
    steps: list[dict] = []
    dropped: list[str] = []
    while remaining:
        best = None
        for m in remaining:
            flight = moved_instance(inst, done + [m], keep_source={m.running_index})
            ev = evaluate_assignment(flight, assign)
            hard = [v for v in ev.violations if not v.code.endswith("_preexisting")]
            if hard:
                continue
            after = evaluate_assignment(moved_instance(inst, done + [m]), assign)
            key = (round(after.peak_row_power_norm, 9), m.vm_id)
            if best is None or key < best[0]:
                best = (key, m, ev, after)
        if best is None:
            dropped += [m.vm_id for m in remaining]
            break
        _, m, flight_ev, after = best
        done.append(m)
        remaining.remove(m)
        steps.append({"step": len(steps) + 1, "vm_id": m.vm_id,
                      "from_server": str(inst.server_ids[m.source]), "to_server": str(inst.server_ids[m.target]),
                      "from_row": str(inst.row_ids[inst.server_row[m.source]]),
                      "to_row": str(inst.row_ids[inst.server_row[m.target]]),
                      "in_flight_peak_row_power": round(flight_ev.peak_row_power_norm, 6),
                      "in_flight_violations": 0,
                      "peak_row_power_after": round(after.peak_row_power_norm, 6),
                      "max_gpu_temp_after_c": round(after.peak_temp_c, 2)})
    return steps, dropped
