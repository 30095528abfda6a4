"""Stage 1 of the optimiser: how many VMs of each group go to each pool (row x hardware class).

Row power and aisle airflow depend only on which row a VM lands in (and the server's hardware
class), not on which server; so the time-coupled constraints are written on integer counts
``y[g, p]`` instead of VM x server booleans. Temperature enters through the eligibility
threshold ``theta``: a group may only use servers where its peak hottest-GPU temperature stays
at or below ``theta`` (the caller sweeps ``theta``; see :mod:`tapas_opt.placement.solve`).

Units, so that CP-SAT and the MILP see the same integer model: row power and aisle airflow in
ppm of their limit (coefficients rounded up, so rounding never hides a violation).

Only the time slots in ``slots`` are constrained; :func:`find_violated_slots` checks all others
and the caller adds the slots that bind (row/time constraint generation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tapas_opt.placement.backends import INF, Backend
from tapas_opt.placement.instance import PlacementInstance

PPM = 1_000_000
UNPLACED_PENALTY = 1000.0
"""Objective cost of leaving one VM unplaced: far above any peak (a normalised peak is ~1)."""


@dataclass
class RowLevelData:
    """Arrays of the row-level model for one eligibility threshold ``theta``."""

    inst: PlacementInstance
    theta_c: float
    n: np.ndarray  # [G] VMs per group
    gpus: np.ndarray  # [G]
    kind: np.ndarray  # [G]
    endpoint: np.ndarray  # [G]
    pools: np.ndarray  # usable pool indices
    slots_eligible: np.ndarray  # [G, P]: VMs of g that fit on eligible servers of pool p
    closed_rows: np.ndarray  # rows whose running VMs alone break the limit: no new VMs there
    closed_aisles: np.ndarray
    row_coef: np.ndarray  # [G, P, T] ppm of the pool's row limit
    air_coef: np.ndarray  # [G, P, T] ppm of the pool's aisle limit
    base_row_ppm: np.ndarray  # [R, T]
    base_air_ppm: np.ndarray  # [A, T]

    @property
    def n_groups(self) -> int:
        return len(self.n)


def _to_ppm(values: np.ndarray, limits: np.ndarray, relax: bool) -> np.ndarray:
    """Integer ppm of a limit: rounded up for plans (rounding never hides a violation), down
    for the LP relaxation (so that its optimum stays a valid lower bound)."""
    x = PPM * values / limits
    return (np.floor(x + 1e-9) if relax else np.ceil(x - 1e-9)).astype(np.int64)


def build_row_data(inst: PlacementInstance, theta_c: float, relax: bool = False) -> RowLevelData:
    reps = inst.group_rep
    n = np.array([len(m) for m in inst.group_members], dtype=int)
    gpus = inst.vm_gpus[reps] if len(reps) else np.zeros(0, int)
    pool_open = ~inst.rows_over_by_running[inst.pool_row] & ~inst.aisles_over_by_running[inst.pool_aisle]
    pools = np.flatnonzero(pool_open)
    # Eligible VM slots per group and pool: free GPU blocks on servers cool enough for theta.
    temps = inst.group_peak_temp_c if len(reps) else np.zeros((0, inst.n_servers))
    cool = temps <= theta_c + 1e-9
    blocks = inst.free_gpus[None, :] // np.maximum(gpus, 1)[:, None]  # [G, S]
    per_server = np.where(cool, blocks, 0)
    slots = np.zeros((len(reps), inst.n_pools), dtype=int)
    for g in range(len(reps)):
        slots[g] = np.bincount(inst.pool_of_server, per_server[g], minlength=inst.n_pools)
    slots = slots[:, pools]
    row_lim = inst.row_limit_kw[inst.pool_row[pools]]
    air_lim = inst.aisle_limit_cfm[inst.pool_aisle[pools]]
    power = inst.vm_power_kw_by_hw[reps][:, inst.pool_hw[pools], :] if len(reps) else np.zeros((0, len(pools), inst.n_slots))
    air = inst.vm_airflow_cfm_by_hw[reps][:, inst.pool_hw[pools], :] if len(reps) else np.zeros((0, len(pools), inst.n_slots))
    row_coef = _to_ppm(power, row_lim[None, :, None], relax)
    air_coef = _to_ppm(air, air_lim[None, :, None], relax)
    base_row = _to_ppm(inst.base_row_kw, inst.row_limit_kw[:, None], relax)
    base_air = _to_ppm(inst.base_aisle_cfm, inst.aisle_limit_cfm[:, None], relax)
    return RowLevelData(inst, theta_c, n, gpus, inst.vm_kind[reps], inst.vm_endpoint[reps], pools,
                        slots, np.flatnonzero(inst.rows_over_by_running),
                        np.flatnonzero(inst.aisles_over_by_running), row_coef, air_coef, base_row, base_air)


@dataclass
class RowLevelModel:
    """Decision variables of stage 1 on one back-end, and the questions asked of them."""

    data: RowLevelData
    backend: Backend
    y: dict[tuple[int, int], object] = field(default_factory=dict)  # (g, pool position) -> var
    unplaced: dict[int, object] = field(default_factory=dict)
    z: object = None  # peak row power, ppm of limit
    penalties: dict[str, tuple[list, list]] = field(default_factory=dict)
    balance_rows: list[tuple[object, int, list, list]] = field(default_factory=list)  # dev, const, vars, coefs
    spread_rows: list[tuple[object, list[tuple[list, int]]]] = field(default_factory=list)  # top, [(vars, const)]

    by_pool: dict[int, list[tuple[int, int, object]]] = field(default_factory=dict)
    thermal: list = field(default_factory=list)  # handles of the thermal capacity constraints

    def pool_terms(self, pool_positions) -> list[tuple[int, int, object]]:
        """(group, pool position, variable) of the count variables in the given pools."""
        out: list[tuple[int, int, object]] = []
        for j in pool_positions:
            out += self.by_pool.get(int(j), [])
        return out


def add_counts(m: RowLevelModel) -> None:
    """Integer count variables: ``0 <= y[g,p] <= min(n_g, eligible slots of g in p)``."""
    d, b = m.data, m.backend
    for g in range(d.n_groups):
        for j in np.flatnonzero(d.slots_eligible[g] > 0):
            ub = int(min(d.n[g], d.slots_eligible[g, j]))
            m.y[g, int(j)] = b.var(0, ub, f"y_g{g}_p{int(d.pools[j])}")
            m.by_pool.setdefault(int(j), []).append((g, int(j), m.y[g, int(j)]))
        m.unplaced[g] = b.var(0, int(d.n[g]), f"unplaced_g{g}")


def add_assignment(m: RowLevelModel) -> None:
    """Every pending VM is placed or counted unplaced: ``sum_p y[g,p] + unplaced[g] = n_g``."""
    d, b = m.data, m.backend
    by_group: dict[int, list] = {g: [] for g in range(d.n_groups)}
    for (g, _), var in m.y.items():
        by_group[g].append(var)
    for g, vars_ in by_group.items():
        b.add_linear(vars_ + [m.unplaced[g]], [1] * (len(vars_) + 1), int(d.n[g]), int(d.n[g]), f"assign_g{g}")


def _divisible(sizes: np.ndarray, server_gpus: np.ndarray) -> bool:
    s = sorted(set(int(x) for x in sizes))
    chain = all(b % a == 0 for a, b in zip(s, s[1:]))
    return chain and all(int(n) % s[-1] == 0 for n in set(server_gpus)) if s else True


def add_pool_capacity(m: RowLevelModel) -> None:
    """GPU capacity of each pool, size by size.

    For every VM size k: the VMs of size >= k need blocks of k free GPUs. With sizes that
    divide each other (1, 2, 4, 8 on 8-GPU servers) ``sum_{g: size>=k} size_g y[g,p] <=
    sum_{s in p} k * floor(free_s / k)`` is exact for packing; otherwise the VM count
    ``sum_{g: size>=k} y[g,p] <= sum_s floor(free_s / k)`` and total GPUs are used (valid, looser).
    """
    d, b, inst = m.data, m.backend, m.data.inst
    if d.n_groups == 0:
        return
    sizes = np.unique(d.gpus)
    divisible = _divisible(d.gpus, inst.params.gpus)
    for j, p in enumerate(d.pools):
        free = inst.free_gpus[inst.pool_of_server == p]
        terms = m.pool_terms([j])
        for k in sizes:
            sel = [(g, var) for g, _, var in terms if d.gpus[g] >= k]
            if not sel:
                continue
            if divisible:
                cap = int((k * (free // k)).sum())
                coefs = [int(d.gpus[g]) for g, _ in sel]
            else:
                cap = int((free // k).sum())
                coefs = [1] * len(sel)
            b.add_linear([v for _, v in sel], coefs, -INF, cap, f"capacity_p{int(p)}_k{int(k)}")
        if not divisible and terms:
            b.add_linear([v for _, _, v in terms], [int(d.gpus[g]) for g, _, _ in terms], -INF,
                         int(free.sum()), f"capacity_p{int(p)}_gpus")


def set_theta(m: RowLevelModel, data: RowLevelData) -> None:
    """Move an LP model built at a looser threshold to ``data.theta_c``: tighten the count
    bounds to the servers still cool enough and replace the thermal capacity constraints.
    (LP back-ends only: the next solve warm-starts from the previous basis.)"""
    b = m.backend
    for (g, j), var in m.y.items():
        b.set_upper_bound(var, min(int(data.n[g]), int(data.slots_eligible[g, j])))
    for ct in m.thermal:
        b.disable(ct)
    m.thermal = []
    m.data = data
    add_thermal_capacity(m)


def add_thermal_capacity(m: RowLevelModel) -> None:
    """Hall-type conditions on cool servers: the hottest groups share the few servers cool
    enough for them. Groups sorted by how many servers of the pool they may use; for each
    prefix H, ``sum_{g in H} size_g y[g,p] <= free GPUs on servers eligible for some g in H``.
    """
    d, b, inst = m.data, m.backend, m.data.inst
    if d.n_groups == 0:
        return
    temps = inst.group_peak_temp_c
    divisible = _divisible(d.gpus, inst.params.gpus)
    for j, p in enumerate(d.pools):
        servers = np.flatnonzero((inst.pool_of_server == p) & (inst.free_gpus > 0))
        groups = [g for g, jj in m.y if jj == j]
        if len(groups) < 1 or len(servers) == 0:
            continue
        elig = temps[np.ix_(groups, servers)] <= d.theta_c + 1e-9
        order = np.argsort(elig.sum(axis=1), kind="stable")
        union = np.zeros(len(servers), bool)
        total = int(inst.free_gpus[servers].sum())
        prefix: list[int] = []
        demand = 0
        smallest = None
        for pos, i in enumerate(order):
            union |= elig[i]
            prefix.append(groups[i])
            smallest = int(d.gpus[groups[i]]) if smallest is None else min(smallest, int(d.gpus[groups[i]]))
            # With sizes that divide each other, VMs of size >= k only use whole k-GPU blocks.
            k = smallest if divisible else 1
            cap = int((k * (inst.free_gpus[servers[union]] // k)).sum())
            demand += int(d.gpus[groups[i]]) * int(min(d.n[groups[i]], d.slots_eligible[groups[i], j]))
            nxt_same = pos + 1 < len(order) and not (elig[order[pos + 1]] & ~union).any()
            if cap >= total or nxt_same or demand <= cap:
                continue  # dominated by pool capacity or the next prefix, or cannot bind
            m.thermal.append(b.add_linear([m.y[g, j] for g in prefix], [int(d.gpus[g]) for g in prefix], -INF,
                                          cap, f"thermal_capacity_p{int(p)}_h{pos}"))


def add_peak_variable(m: RowLevelModel) -> None:
    """``z``: the peak normalised row power in ppm; rows without new VMs set its floor."""
    d = m.data
    open_rows = np.setdiff1d(np.arange(d.inst.n_rows), d.closed_rows)
    floor = int(d.base_row_ppm[open_rows].max()) if len(open_rows) else 0
    m.z = m.backend.var(min(floor, PPM), PPM, "peak_row_power_ppm")


def add_row_power_limit(m: RowLevelModel, slots: dict[int, list[int]]) -> None:
    """Row power at every constrained slot stays below the peak and the limit:
    ``base_r(t) + sum_{p in r} sum_g c[g,p,t] y[g,p] <= z <= 1e6`` (ppm of the row limit)."""
    d, b = m.data, m.backend
    pool_rows = d.inst.pool_row[d.pools]
    for r, ts in slots.items():
        terms = m.pool_terms(np.flatnonzero(pool_rows == r))
        if not terms:
            continue
        vars_ = [v for _, _, v in terms] + [m.z]
        for t in ts:
            coefs = [int(d.row_coef[g, j, t]) for g, j, _ in terms] + [-1]
            b.add_linear(vars_, coefs, -INF, -int(d.base_row_ppm[r, t]), f"row_power_r{r}_t{t}")


def add_aisle_airflow_limit(m: RowLevelModel, slots: dict[int, list[int]]) -> None:
    """Aisle airflow at every constrained slot fits the AHU:
    ``base_a(t) + sum_{p in a} sum_g c[g,p,t] y[g,p] <= 1e6`` (ppm of the aisle limit)."""
    d, b = m.data, m.backend
    pool_aisles = d.inst.pool_aisle[d.pools]
    for a, ts in slots.items():
        terms = m.pool_terms(np.flatnonzero(pool_aisles == a))
        if not terms:
            continue
        vars_ = [v for _, _, v in terms]
        for t in ts:
            coefs = [int(d.air_coef[g, j, t]) for g, j, _ in terms]
            b.add_linear(vars_, coefs, -INF, PPM - int(d.base_air_ppm[a, t]), f"aisle_airflow_a{a}_t{t}")


def soft_balance(m: RowLevelModel) -> tuple[list, list]:
    """Soft: each row's IaaS/SaaS GPU mix near the room's mix phi:
    ``dev_r >= |(1 - phi) IaaS_r - phi SaaS_r|`` (in 1/1000 GPU)."""
    d, b, inst = m.data, m.backend, m.data.inst
    run = inst.running
    all_kind = np.concatenate([run["kind"].to_numpy(str), inst.vm_kind])
    all_gpus = np.concatenate([run["gpus"].to_numpy(int), inst.vm_gpus])
    total = max(1, int(all_gpus.sum()))
    phi = int(round(1000 * all_gpus[all_kind == "iaas"].sum() / total))
    run_rows = inst.server_row[run["server"].to_numpy(int)]
    pool_rows = inst.pool_row[d.pools]
    devs, coefs = [], []
    for r in range(inst.n_rows):
        terms = m.pool_terms(np.flatnonzero(pool_rows == r))
        if not terms:
            continue
        sel = run_rows == r
        kinds = run["kind"].to_numpy(str)[sel]
        gp = run["gpus"].to_numpy(int)[sel]
        const = (1000 - phi) * gp[kinds == "iaas"].sum() - phi * gp[kinds == "saas"].sum()
        vcoef = [int(((1000 - phi) if d.kind[g] == "iaas" else -phi) * d.gpus[g]) for g, _, _ in terms]
        dev = b.var(0, 1000 * total, f"balance_dev_r{r}")
        vars_ = [v for _, _, v in terms]
        b.add_linear(vars_ + [dev], vcoef + [-1], -INF, -int(const), f"balance_pos_r{r}")
        b.add_linear(vars_ + [dev], [-c for c in vcoef] + [-1], -INF, int(const), f"balance_neg_r{r}")
        m.balance_rows.append((dev, int(const), vars_, vcoef))
        devs.append(dev)
        coefs.append(1.0 / (1000 * total))
    return devs, coefs


def soft_spread(m: RowLevelModel) -> tuple[list, list]:
    """Soft: spread each endpoint over rows: ``top_e >= VMs of e in row r`` for every row,
    costing ``top_e / (VMs of e)`` averaged over endpoints with pending VMs."""
    d, b, inst = m.data, m.backend, m.data.inst
    run = inst.running
    endpoints = sorted({e for e in d.endpoint if isinstance(e, str)})
    if not endpoints:
        return [], []
    run_rows = inst.server_row[run["server"].to_numpy(int)]
    run_ep = run["endpoint"].to_numpy(object)
    pool_rows = inst.pool_row[d.pools]
    tops, coefs = [], []
    for k, ep in enumerate(endpoints):
        size = int((run_ep == ep).sum() + sum(d.n[g] for g in range(d.n_groups) if d.endpoint[g] == ep))
        top = b.var(0, size, f"spread_top_e{k}")
        rows_of_top: list[tuple[list, int]] = []
        for r in range(inst.n_rows):
            terms = [(g, j, v) for g, j, v in m.pool_terms(np.flatnonzero(pool_rows == r)) if d.endpoint[g] == ep]
            const = int(((run_rows == r) & (run_ep == ep)).sum())
            if not terms:
                continue
            b.add_linear([v for _, _, v in terms] + [top], [1] * len(terms) + [-1], -INF, -const,
                         f"spread_e{k}_r{r}")
            rows_of_top.append(([v for _, _, v in terms], const))
        m.spread_rows.append((top, rows_of_top))
        tops.append(top)
        coefs.append(1.0 / (size * len(endpoints)))
    return tops, coefs


def set_objective(m: RowLevelModel, soft: bool = True) -> None:
    """Minimise ``w_p * z / 1e6 + soft terms + 1000 * unplaced`` (all normalised).

    ``soft=False`` drops the balance and spread terms: they trade peak power for spreading, so
    only without them is the relaxation's ``z`` a lower bound on the peak power of a plan."""
    b, opts = m.backend, m.data.inst.options
    vars_, coefs = [m.z], [(opts.power_weight if soft else 1.0) / PPM]
    for name, (vs, cs), w in (("balance", m.penalties.get("balance", ([], [])), opts.balance_weight),
                              ("spread", m.penalties.get("spread", ([], [])), opts.spread_weight)):
        if not soft:
            continue
        vars_ += vs
        coefs += [w * c for c in cs]
    vars_ += list(m.unplaced.values())
    coefs += [UNPLACED_PENALTY] * len(m.unplaced)
    b.minimize(vars_, coefs)


def build_row_model(data: RowLevelData, backend: Backend, row_slots: dict[int, list[int]],
                    aisle_slots: dict[int, list[int]]) -> RowLevelModel:
    m = RowLevelModel(data, backend)
    add_counts(m)
    add_assignment(m)
    add_pool_capacity(m)
    add_thermal_capacity(m)
    add_peak_variable(m)
    add_row_power_limit(m, row_slots)
    add_aisle_airflow_limit(m, aisle_slots)
    m.penalties["balance"] = soft_balance(m)
    m.penalties["spread"] = soft_spread(m)
    set_objective(m)
    return m


def complete_hint(m: RowLevelModel, y: np.ndarray) -> list[tuple[object, float]]:
    """A full warm start from counts ``y``: every auxiliary variable (unplaced, peak, balance
    deviations, spread tops) set to the value the counts imply, so the solver starts from a
    complete feasible point instead of repairing a partial one."""
    d = m.data
    value = {}
    for (g, j), var in m.y.items():
        value[id(var)] = int(round(y[g, j]))
    pairs = [(var, value[id(var)]) for var in m.y.values()]
    for g, var in m.unplaced.items():
        placed = sum(value[id(v)] for (gg, _), v in m.y.items() if gg == g)
        pairs.append((var, max(0, int(d.n[g]) - placed)))
    row, _ = pool_series(d, np.round(y))
    open_rows = np.setdiff1d(np.arange(d.inst.n_rows), d.closed_rows)
    z = int(np.ceil(row[open_rows].max())) if len(open_rows) else 0
    pairs.append((m.z, z))
    for dev, const, vars_, coefs in m.balance_rows:
        pairs.append((dev, abs(const + sum(c * value[id(v)] for v, c in zip(vars_, coefs)))))
    for top, rows in m.spread_rows:
        pairs.append((top, max([const + sum(value[id(v)] for v in vars_) for vars_, const in rows] + [0])))
    return pairs


def counts_from_model(m: RowLevelModel) -> np.ndarray:
    """[G, len(pools)] counts read from a solved model (rounded; LP values kept fractional)."""
    d = m.data
    y = np.zeros((d.n_groups, len(d.pools)))
    for (g, j), var in m.y.items():
        y[g, j] = m.backend.value(var)
    return np.round(y) if m.backend.integral else y


def pool_series(data: RowLevelData, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row power and aisle airflow (ppm of limit) per slot implied by counts ``y``."""
    inst = data.inst
    add_row = np.einsum("gp,gpt->pt", y, data.row_coef)
    add_air = np.einsum("gp,gpt->pt", y, data.air_coef)
    row = data.base_row_ppm.astype(float).copy()
    air = data.base_air_ppm.astype(float).copy()
    np.add.at(row, inst.pool_row[data.pools], add_row)
    np.add.at(air, inst.pool_aisle[data.pools], add_air)
    return row, air


def _worst_new_slots(series: np.ndarray, subjects, cap: float, have: dict[int, list[int]]) -> dict[int, list[int]]:
    """Per row (or aisle), the worst slot above ``cap`` not constrained yet (added to ``have``)."""
    new: dict[int, list[int]] = {}
    for k in subjects.tolist():
        known = have.setdefault(k, [])
        over = [t for t in np.flatnonzero(series[k] > cap + 0.5) if t not in known]
        if over:
            t = int(max(over, key=lambda t: series[k, t]))
            known.append(t)
            new[k] = [t]
    return new


def find_violated_slots(data: RowLevelData, y: np.ndarray, z_ppm: float,
                        row_slots: dict[int, list[int]], aisle_slots: dict[int, list[int]]
                        ) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """The worst unconstrained slot of every row above ``z`` and of every aisle above its
    limit; they are also appended to ``row_slots``/``aisle_slots``. Empty dicts: all slots hold."""
    row, air = pool_series(data, y)
    new_rows = _worst_new_slots(row, np.unique(data.inst.pool_row[data.pools]), z_ppm, row_slots)
    new_aisles = _worst_new_slots(air, np.unique(data.inst.pool_aisle[data.pools]), PPM, aisle_slots)
    return new_rows, new_aisles


def initial_slots(data: RowLevelData, top: int = 2) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """Seed slots: per row and aisle, the peaks of its base load and of base + an even share
    of the pending load; constraint generation adds the rest."""
    inst = data.inst
    share = np.einsum("g,gpt->t", data.n.astype(float), data.row_coef) / max(1, len(data.pools))
    share_air = np.einsum("g,gpt->t", data.n.astype(float), data.air_coef) / max(1, len(data.pools))
    row_slots: dict[int, list[int]] = {}
    for r in np.unique(inst.pool_row[data.pools]):
        cand = list(np.argsort(-data.base_row_ppm[r], kind="stable")[:top])
        cand += list(np.argsort(-(data.base_row_ppm[r] + share), kind="stable")[:top])
        row_slots[int(r)] = sorted({int(t) for t in cand})
    aisle_slots: dict[int, list[int]] = {}
    for a in np.unique(inst.pool_aisle[data.pools]):
        cand = list(np.argsort(-(data.base_air_ppm[a] + share_air), kind="stable")[:top])
        aisle_slots[int(a)] = sorted({int(t) for t in cand})
    return row_slots, aisle_slots
