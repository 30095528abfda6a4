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


MAX_REPAIRS = 3
"""Re-solves of the move search after it sent a mover to a pool where no server has room for it."""

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


@dataclass(frozen=True)
class Movers:
    """The move candidates and what each would change: where it runs, its GPUs, the power and
    airflow it draws there ([C, T]) and would draw on each hardware class ([C, H, T]), its
    hottest-GPU peak on every server ([C, S]) and the pools it may go to ([C, P])."""

    running: np.ndarray  # index into inst.running
    source: np.ndarray   # server index
    gpus: np.ndarray
    source_row: np.ndarray
    source_aisle: np.ndarray
    kw_here: np.ndarray
    cfm_here: np.ndarray
    kw_on_hw: np.ndarray
    cfm_on_hw: np.ndarray
    temps: np.ndarray
    pool_ok: np.ndarray

    def __len__(self) -> int:
        return len(self.running)

    @classmethod
    def of(cls, inst: PlacementInstance, state: RoomState, cand: np.ndarray) -> "Movers":
        run = inst.running
        src = run["server"].to_numpy(int)[cand]
        gpus = run["gpus"].to_numpy(int)[cand]
        reps = inst.hw_representative
        load = inst.running_load[cand]
        temps = inst.peak_temp_c(load)  # [C, S]
        src_row = inst.server_row[src]
        return cls(cand, src, gpus, src_row, inst.row_aisle[src_row],
                   _running_power(inst, cand, src), _running_airflow(inst, cand, src),
                   inst.params.vm_power_kw(load[:, None, :], gpus[:, None, None], reps[None, :, None]),
                   inst.params.vm_airflow_cfm(load[:, None, :], gpus[:, None, None], reps[None, :, None]),
                   temps, _target_pools(inst, state, src, gpus, temps))

    def apply(self, inst: PlacementInstance, state: RoomState, chosen: dict[int, int]):
        """Row power and aisle airflow [.., T] once each chosen mover runs in its target pool."""
        row_kw = state.row_kw.copy()
        aisle_cfm = state.aisle_cfm.copy()
        for c, p in chosen.items():
            self.move(inst, row_kw, aisle_cfm, c, p)
        return row_kw, aisle_cfm

    def move(self, inst: PlacementInstance, row_kw: np.ndarray, aisle_cfm: np.ndarray, c: int, p: int) -> None:
        """Take mover c's power and airflow off its source row and aisle and put it on pool p's
        (in place)."""
        row_kw[self.source_row[c]] -= self.kw_here[c]
        aisle_cfm[self.source_aisle[c]] -= self.cfm_here[c]
        row_kw[inst.pool_row[p]] += self.kw_on_hw[c, inst.pool_hw[p]]
        aisle_cfm[inst.pool_aisle[p]] += self.cfm_on_hw[c, inst.pool_hw[p]]

    def peak(self, inst: PlacementInstance, state: RoomState, chosen: dict[int, int]) -> float:
        """The week's peak normalised row power after the moves; infinite if an aisle then needs
        more air than its AHU gives (or than it already needs, where it is over today)."""
        row_kw, aisle_cfm = self.apply(inst, state, chosen)
        cap = np.maximum(inst.aisle_limit_cfm, state.aisle_cfm.max(axis=1))[:, None]
        return float((row_kw / inst.row_limit_kw[:, None]).max()) if (aisle_cfm <= cap + 1e-6).all() else np.inf


def _target_pools(inst: PlacementInstance, state: RoomState, src: np.ndarray, gpus: np.ndarray,
                  temps: np.ndarray) -> np.ndarray:
    """[C, P]: pools with a server that has room for the mover and keeps its GPUs under the
    limit, other than its own pool (a move inside its pool buys nothing)."""
    ok = (state.free[None, :] >= gpus[:, None]) & (temps <= inst.temp_limit_c + 1e-9)
    ok[np.arange(len(src)), src] = False
    pool_ok = np.zeros((len(src), inst.n_pools), bool)
    for c in range(len(src)):
        pool_ok[c, np.unique(inst.pool_of_server[ok[c]])] = True
        pool_ok[c, inst.pool_of_server[src[c]]] = False
    return pool_ok


def greedy_moves(inst: PlacementInstance, state: RoomState, m: Movers, max_moves: int) -> dict[int, int]:
    """Warm start: repeatedly move the SaaS VM of the peak row whose move lowers the room's peak
    row power most (ties: the lower sum of the two rows' peaks), while a move still helps. A
    mover goes to a pool only where one server has room for all its GPUs (the coolest such
    server is taken, as :func:`_pick_servers` does), so every move it returns can be made."""
    row_kw = state.row_kw.copy()
    aisle_cfm = state.aisle_cfm.copy()
    free = state.free.copy()
    lim = inst.row_limit_kw[:, None]
    alim = inst.aisle_limit_cfm[:, None]
    chosen: dict[int, int] = {}
    for _ in range(max_moves):
        norm = (row_kw / lim).max(axis=1)
        peak = norm.max()
        hot = int(np.argmax(norm))
        best = None
        for c in np.flatnonzero((m.source_row == hot)):
            if c in chosen:
                continue
            roomy = np.unique(inst.pool_of_server[_servers_for(inst, m, c, free)])
            for p in roomy[m.pool_ok[c, roomy]]:
                r, a = inst.pool_row[p], inst.pool_aisle[p]
                new_src = row_kw[hot] - m.kw_here[c]
                new_dst = row_kw[r] + m.kw_on_hw[c, inst.pool_hw[p]]
                air_dst = aisle_cfm[a] + m.cfm_on_hw[c, inst.pool_hw[p]] - (m.cfm_here[c] if a == m.source_aisle[c] else 0)
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
        chosen[c] = int(p)
        m.move(inst, row_kw, aisle_cfm, c, p)
        free[_coolest_server(inst, m, c, p, free)] -= m.gpus[c]
    return chosen


def _servers_for(inst: PlacementInstance, m: Movers, c: int, free: np.ndarray) -> np.ndarray:
    """Servers with ``free`` GPUs for all of mover c's that keep its GPUs under the limit."""
    return np.flatnonzero((free >= m.gpus[c]) & (m.temps[c] <= inst.temp_limit_c + 1e-9))


def _coolest_server(inst: PlacementInstance, m: Movers, c: int, p: int, free: np.ndarray) -> int | None:
    """The server of pool p that mover c takes: the coolest for it with room (lowest index on
    ties); None if no server of the pool has room for it."""
    servers = _servers_for(inst, m, c, free)
    servers = servers[inst.pool_of_server[servers] == p]
    if len(servers) == 0:
        return None
    return int(servers[np.lexsort((servers, m.temps[c, servers]))[0]])


class MoveModel:
    """CP-SAT model of the move search: ``x[c, p]`` = mover c goes to pool p; ``z`` = the peak
    normalised row power in ppm. Row power and aisle airflow constraints exist only for the
    (row or aisle, slot) pairs added so far (constraint generation, as in placement)."""

    def __init__(self, inst: PlacementInstance, state: RoomState, movers: Movers):
        self.inst, self.state, self.m = inst, state, movers
        self.backend = make_backend("cp-sat")
        self.x = {(c, int(p)): self.backend.var(0, 1, f"move_c{c}_p{p}")
                  for c in range(len(movers)) for p in np.flatnonzero(movers.pool_ok[c])}
        self.z = self.backend.var(0, 4 * PPM, "peak_row_power_ppm")
        self.base_row = np.round(PPM * state.row_kw / inst.row_limit_kw[:, None]).astype(np.int64)
        self.base_air = np.round(PPM * state.aisle_cfm / inst.aisle_limit_cfm[:, None]).astype(np.int64)
        self.over_somewhere = bool(self.base_row.size and self.base_row.max() > PPM)
        self.row_slots: set[tuple[int, int]] = set()
        self.aisle_slots: set[tuple[int, int]] = set()
        self.wall_stops = 0

    # ---- constraint families ---------------------------------------------------------------
    def add_one_target_per_mover(self) -> None:
        by_c: dict[int, list] = {}
        for (c, _), v in self.x.items():
            by_c.setdefault(c, []).append(v)
        for c, vs in by_c.items():
            self.backend.add_linear(vs, [1] * len(vs), -INF, 1, f"one_target_c{c}")

    def add_max_moves(self, max_moves: int) -> None:
        self.backend.add_linear(list(self.x.values()), [1] * len(self.x), -INF, int(max_moves), "max_moves")

    def add_pool_capacity(self) -> None:
        """The GPUs moved into a pool fit in the free GPUs of its servers, counted per GPU size:
        a VM cannot be split across servers, so 26 free GPUs spread over four servers take only
        one 8-GPU VM. For each mover size k, the movers of k GPUs or more that go to pool p fit
        in what its servers have in whole units of k: by GPUs (``k * (free // k)`` per server)
        when every such size is a multiple of k (1, 2, 4, 8 GPUs: then the checks of every size
        together are exact, short of GPU temperatures), else by count (``free // k`` VMs per
        server), which is valid for any sizes. :func:`_pick_servers` checks the rest."""
        gpus = self.m.gpus
        sizes = sorted(set(int(g) for g in gpus))
        for p in range(self.inst.n_pools):
            terms = [(c, v) for (c, pp), v in self.x.items() if pp == p]
            if not terms:
                continue
            free = self.state.free[self.inst.pool_of_server == p]
            self.backend.add_linear([v for _, v in terms], [int(gpus[c]) for c, _ in terms], -INF,
                                    int(free.sum()), f"capacity_p{p}")
            for k in sizes:
                big = [(c, v) for c, v in terms if gpus[c] >= k]
                if not big:
                    continue
                if all(g % k == 0 for g in sizes if g >= k):
                    coefs, cap = [int(gpus[c]) for c, _ in big], int((k * (free // k)).sum())
                else:
                    coefs, cap = [1] * len(big), int((free // k).sum())
                self.backend.add_linear([v for _, v in big], coefs, -INF, cap, f"capacity_p{p}_k{k}")

    def forbid(self, pairs) -> None:
        """Mover c may not go to pool p, for each (c, p) in ``pairs``: it found no server there
        (a repair, not a valid inequality: see :func:`choose_moves`)."""
        for c, p in pairs:
            if (c, p) in self.x:
                self.backend.add_linear([self.x[c, p]], [1], -INF, 0, f"no_room_c{c}_p{p}")

    def add_row_power(self, r: int, t: int) -> None:
        """Row r at slot t, normalised by its limit, stays under the peak z and under its limit
        (where it is already over, under what it draws now): in a room with a row over its
        limit z exceeds 1, and without the second bound a move could push another row over.
        Elsewhere z < 1 bounds every row already (the model is then left as it was)."""
        inst, m = self.inst, self.m
        vs, cs = self._delta_terms(inst.pool_row, m.source_row, r, m.kw_on_hw, m.kw_here, inst.row_limit_kw[r], t)
        self.backend.add_linear(vs + [self.z], cs + [-1], -INF, -int(self.base_row[r, t]), f"row_power_r{r}_t{t}")
        if vs and self.over_somewhere:
            head = max(PPM, int(self.base_row[r, t])) - int(self.base_row[r, t])
            self.backend.add_linear(vs, cs, -INF, head, f"row_limit_r{r}_t{t}")
        self.row_slots.add((r, t))

    def add_aisle_airflow(self, a: int, t: int) -> None:
        """Aisle a at slot t needs no more air than its AHU gives (or than it needs today, where
        it is already over)."""
        inst, m = self.inst, self.m
        vs, cs = self._delta_terms(inst.pool_aisle, m.source_aisle, a, m.cfm_on_hw, m.cfm_here,
                                   inst.aisle_limit_cfm[a], t)
        head = max(PPM, int(self.base_air[a].max())) - int(self.base_air[a, t])
        self.backend.add_linear(vs, cs, -INF, head, f"aisle_airflow_a{a}_t{t}")
        self.aisle_slots.add((a, t))

    def _delta_terms(self, where_p, where_src, target, added, removed, lim, t: int):
        """Variables and ppm coefficients of the change moves make to one row or aisle at slot t:
        + what a mover adds where it lands, - what it drew where it was (rounded outwards)."""
        vars_, coefs = [], []
        for (c, p), v in self.x.items():
            coef = (added[c, self.inst.pool_hw[p], t] if where_p[p] == target else 0.0) - \
                (removed[c, t] if where_src[c] == target else 0.0)
            if coef:
                ppm = PPM * coef / lim
                vars_.append(v)
                coefs.append(int(np.ceil(ppm)) if coef > 0 else int(np.floor(ppm)))
        return vars_, coefs

    # ---- objective, slots, solving ---------------------------------------------------------
    def minimise_peak_then_moves(self) -> None:
        self.backend.minimize([self.z] + list(self.x.values()), [1.0 / PPM] + [MOVE_COST] * len(self.x))

    def seed_slots(self, warm: dict[int, int]) -> None:
        """Each row's three highest slots now and the slot where the warm start peaks; each
        aisle's highest slot."""
        inst = self.inst
        warm_row, _ = self.m.apply(inst, self.state, warm)
        rows = {(r, int(t)) for r in range(inst.n_rows) for t in np.argsort(-self.base_row[r], kind="stable")[:3]}
        rows |= {(r, int(np.argmax(warm_row[r]))) for r in range(inst.n_rows)}
        for r, t in sorted(rows):
            self.add_row_power(r, t)
        for a in range(len(inst.aisle_limit_cfm)):
            self.add_aisle_airflow(a, int(np.argmax(self.base_air[a])))

    def add_violated_slots(self, chosen: dict[int, int]) -> bool:
        """Per row and aisle, the worst slot the chosen moves break that has no constraint yet;
        whether any was added."""
        inst = self.inst
        row_kw, aisle_cfm = self.m.apply(inst, self.state, chosen)
        zval = self.backend.value(self.z)
        new = False
        for r in range(inst.n_rows):
            ppm = PPM * row_kw[r] / inst.row_limit_kw[r]
            over = np.flatnonzero((ppm > zval + 1) | (ppm > np.maximum(PPM, self.base_row[r]) + 1))
            over = [t for t in over if (r, t) not in self.row_slots]
            if over:
                self.add_row_power(r, int(max(over, key=lambda t: row_kw[r, t])))
                new = True
        for a in range(len(inst.aisle_limit_cfm)):
            cap = max(inst.aisle_limit_cfm[a], self.state.aisle_cfm[a].max())
            over = [t for t in np.flatnonzero(aisle_cfm[a] > cap + 1e-6) if (a, t) not in self.aisle_slots]
            if over:
                self.add_aisle_airflow(a, int(max(over, key=lambda t: aisle_cfm[a, t])))
                new = True
        return new

    def hint(self, chosen: dict[int, int]) -> None:
        self.backend.hint(((v, 1 if chosen.get(c) == p else 0) for (c, p), v in self.x.items()))

    def solve(self, warm: dict[int, int], time_limit_s: float, workers: int, seed: int,
              max_rounds: int = 20) -> tuple[dict[int, int], int, float | None]:
        """Solve, add the slots the answer breaks, re-solve from it, until nothing is broken or
        the deterministic budget is spent. Returns the moves, the rounds and CP-SAT's bound."""
        chosen, bound, budget, rounds = dict(warm), None, time_limit_s, 0
        self.hint(warm)
        for rounds in range(1, max_rounds + 1):
            res = self.backend.solve(max(1.0, budget / 3), workers, seed)
            budget -= res.work_s  # deterministic time: the same rounds on any machine
            self.wall_stops += res.wall_stopped
            if not res.has_solution:
                break
            chosen = {c: p for (c, p), v in self.x.items() if self.backend.value(v) > 0.5}
            bound = res.bound
            if budget <= 0 or not self.add_violated_slots(chosen):
                break
            self.hint(chosen)
        return chosen, rounds, bound


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
    max_moves = min(int(max_moves), len(cand))  # each candidate moves at most once
    movers = Movers.of(inst, state, cand)
    warm = greedy_moves(inst, state, movers, max_moves)
    model = MoveModel(inst, state, movers)
    model.add_one_target_per_mover()
    model.add_max_moves(max_moves)
    model.add_pool_capacity()
    model.seed_slots(warm)
    model.minimise_peak_then_moves()
    chosen, rounds, bound = model.solve(warm, time_limit_s, workers, seed)
    moves, unfit = _pick_servers(inst, state, movers, chosen)
    for _ in range(MAX_REPAIRS):
        if not unfit:
            break
        # A pool with room for the movers by the size checks but no server left for some of
        # them (its servers with room would run their GPUs too hot): keep those movers out of
        # it and solve again. A heuristic cut (alone, such a mover might fit there), so the
        # bound stays the first solve's.
        model.forbid(unfit)
        chosen, more_rounds, _ = model.solve(chosen, time_limit_s / 2, workers, seed)
        rounds += more_rounds
        moves, unfit = _pick_servers(inst, state, movers, chosen)
    without_server = set(unfit)
    placed = {c: p for c, p in chosen.items() if (c, p) not in without_server}
    # Never worse than the warm start (whose moves all have a server): compare by actual peaks.
    source = "cp-sat"
    if movers.peak(inst, state, warm) <= movers.peak(inst, state, placed) + 1e-12:
        placed, source = warm, "greedy"
        moves, unfit = _pick_servers(inst, state, movers, warm)
    return MovePlan(moves, peak_before, movers.peak(inst, state, placed),
                    stats={"candidates": int(len(cand)), "rounds": rounds, "row_slots": len(model.row_slots),
                           "greedy_peak": round(movers.peak(inst, state, warm), 6), "returned": source,
                           "peak_bound": _peak_bound(bound, max_moves), "cp_wall_stops": model.wall_stops,
                           "movers_without_server": [str(inst.running["vm_id"].iloc[movers.running[c]])
                                                     for c, _ in unfit]})


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


def _pick_servers(inst: PlacementInstance, state: RoomState, m: Movers, chosen: dict[int, int]
                  ) -> tuple[list[Move], list[tuple[int, int]]]:
    """Each mover to the coolest server of its target pool with room, largest VMs first (so
    that small ones do not take the servers only they could share; then in candidate order).
    Returns the moves (in candidate order) and the (mover, pool) pairs that found no server."""
    free = state.free.copy()
    moves, unfit = {}, []
    for c in sorted(chosen, key=lambda c: (-int(m.gpus[c]), c)):
        p = chosen[c]
        s = _coolest_server(inst, m, c, p, free)
        if s is None:
            unfit.append((c, p))
            continue
        free[s] -= m.gpus[c]
        moves[c] = Move(str(inst.running["vm_id"].iloc[m.running[c]]), int(m.running[c]), int(m.source[c]), s)
    return [moves[c] for c in sorted(moves)], sorted(unfit)


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
    moved = {m.vm_id if m.running_index not in keep_source else f"{m.vm_id}@new" for m in moves}
    return replace(inst, running=run.reset_index(drop=True), running_load=loads, free_gpus=free,
                   base_row_kw=base_row, base_aisle_cfm=base_aisle, unmoved_row_kw=inst.preexisting_row_kw,
                   unmoved_aisle_cfm=inst.preexisting_aisle_cfm, moved_vm_ids=inst.moved_vm_ids | frozenset(moved))


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
    remaining = list(moves)
    steps: list[dict] = []
    dropped: list[str] = []
    room = inst  # the room after the moves done so far
    while remaining:
        best = None
        for m in remaining:
            flight, broken = _in_flight(room, assign, m)
            if broken:
                continue
            moved = moved_instance(room, [m])
            after = evaluate_assignment(moved, assign)
            key = (round(after.peak_row_power_norm, 9), m.vm_id)
            if best is None or key < best[0]:
                best = (key, m, flight, after, moved)
        if best is None:
            dropped += [m.vm_id for m in remaining]
            break
        _, m, flight, after, room = best
        remaining.remove(m)
        steps.append(_step_record(inst, len(steps) + 1, m, flight, [], after))
    return steps, dropped


def replay_moves(inst: PlacementInstance, assign: np.ndarray, moves: list[Move]) -> list[dict]:
    """Each step of ``moves``, in the order given (a plan's ``moves.csv``, perhaps edited), as
    :func:`order_moves` records it, re-checked: the room while the move is in flight and after
    it; ``violations`` holds the limits broken in flight (what ``verify`` reports). A VM may
    move more than once: each move starts where its previous one ended."""
    steps, room = [], inst
    for k, m in enumerate(moves, 1):
        flight, broken = _in_flight(room, assign, m)
        room = moved_instance(room, [m])
        after = evaluate_assignment(room, assign)
        steps.append(_step_record(inst, k, m, flight, broken, after) | {"violations": broken})
    return steps


def _in_flight(room: PlacementInstance, assign: np.ndarray, m: Move):
    """The room (the instance after the moves made so far, :func:`moved_instance` applied move
    by move) while move m runs, its old and new instance both drawing power, and the limits
    broken then that the running VMs did not break on their own."""
    ev = evaluate_assignment(moved_instance(room, [m], keep_source={m.running_index}), assign)
    return ev, [v for v in ev.violations if not v.code.endswith("_preexisting")]


def _step_record(inst: PlacementInstance, k: int, m: Move, flight, broken: list, after) -> dict:
    """One line of ``moves.csv``."""
    return {"step": k, "vm_id": m.vm_id,
            "from_server": str(inst.server_ids[m.source]), "to_server": str(inst.server_ids[m.target]),
            "from_row": str(inst.row_ids[inst.server_row[m.source]]),
            "to_row": str(inst.row_ids[inst.server_row[m.target]]),
            "in_flight_peak_row_power": round(flight.peak_row_power_norm, 6),
            "in_flight_violations": len(broken),
            "peak_row_power_after": round(after.peak_row_power_norm, 6),
            "max_gpu_temp_after_c": round(after.peak_temp_c, 2)}
