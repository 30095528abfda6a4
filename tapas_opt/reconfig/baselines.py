"""The two baselines, on the same instance, plan type and checker as the optimal model.

``greedy``: the TAPAS paper's emergency playbook (TAPAS.md section 4), one instance at a time:

1. route away from constrained servers: each endpoint moves load off its VMs in rows or aisles
   over their limits (or on GPUs over their temperature) to its VMs elsewhere that have spare
   capacity, while their rows and aisles stay within limits;
2. configure each SaaS instance on its own: split every row's and aisle's remaining excess over
   its SaaS VMs in proportion to their power (the per-instance budgets); every instance over
   its budget (or its GPU's temperature limit) picks the highest-quality, then fastest (lowest
   time between tokens) configuration that serves its load inside its budget and its server's
   temperature limit; if none does, the one that serves the most inside the budget (the rest is
   unserved: an SLO miss). Instances within budget keep their configuration;
3. power-cap IaaS only if a limit is still exceeded (:func:`cap_iaas_last_resort`).

``uniform-cap``: every GPU in the event's scope (the room for a UPS failure or a heat wave, the
aisle for an AHU failure, the row for a row-power event) gets the same power limit, the highest
that meets every limit (bisection). A capped SaaS VM runs at the highest power level whose
dynamic power fits the cap and serves what that level's throughput allows
(``throughput_fraction_at_power``); SaaS load is not moved and no model changes, so quality is untouched and SLOs may be missed.
"""

from __future__ import annotations

import numpy as np

from tapas_opt.reconfig.evaluate import check_plan, level_rates, saas_physics, saas_rates
from tapas_opt.reconfig.instance import ReconfigInstance
from tapas_opt.reconfig.model import capacity_units
from tapas_opt.reconfig.plan import ReconfigPlan

EPS = 1e-9


# ---- shared helpers ----------------------------------------------------------------------

def _over(instance: ReconfigInstance, plan: ReconfigPlan):
    """Row kW and aisle CFM still over their limits (>= 0) for a plan."""
    ev = check_plan(instance, plan)
    return (np.maximum(0.0, ev.row_kw - ev.row_limit_kw), np.maximum(0.0, ev.aisle_cfm - ev.aisle_limit_cfm), ev)


def cap_iaas_last_resort(instance: ReconfigInstance, plan: ReconfigPlan) -> ReconfigPlan:
    """Cap IaaS VMs only as far as still needed: first each IaaS GPU over its temperature limit
    down to it, then the IaaS VMs of each row and aisle still over, in proportion to their
    dynamic power, down to at most their cap floor."""
    iaas = instance.iaas
    if len(iaas) == 0:
        return plan
    load = np.asarray(plan.iaas_load, float).copy()
    floor = iaas["floor_load"].to_numpy(float)
    load = np.minimum(load, np.maximum(iaas["gpu_load_limit"].to_numpy(float), floor))
    gpus = iaas["gpus"].to_numpy(float)
    for kind in ("row", "aisle", "row"):
        trial = ReconfigPlan(plan.policy, plan.saas_config, plan.saas_load, load, plan.saas_clock, plan.notes)
        row_over, aisle_over, _ = _over(instance, trial)
        over = row_over if kind == "row" else aisle_over
        unit = iaas["kw_unit" if kind == "row" else "cfm_unit"].to_numpy(float)
        where = iaas[kind].to_numpy(int)
        for r in np.flatnonzero(over > EPS):
            members = np.flatnonzero(where == r)
            room = (load[members] - floor[members]) * gpus[members] * unit[members]
            total = room.sum()
            if total <= EPS:
                continue
            cut = min(1.0, over[r] / total)
            load[members] -= cut * (load[members] - floor[members])
    plan.iaas_load = load
    return plan


# ---- greedy (the paper's playbook) -------------------------------------------------------

def _release(over: np.ndarray, room: np.ndarray, where: int, amount: float) -> None:
    """Load leaving row/aisle ``where`` first cuts its excess, then adds to its headroom."""
    take = min(over[where], amount)
    over[where] -= take
    room[where] += amount - take


def _route_away(instance: ReconfigInstance, plan: ReconfigPlan) -> ReconfigPlan:
    """Step 1: per endpoint, move load from VMs in constrained rows/aisles/hot servers to its
    VMs elsewhere, within their spare capacity and their rows' and aisles' headroom."""
    s = instance.saas
    if len(s) == 0:
        return plan
    row_over, aisle_over, ev = _over(instance, plan)
    row_room = np.maximum(0.0, ev.row_limit_kw - ev.row_kw)
    aisle_room = np.maximum(0.0, ev.aisle_limit_cfm - ev.aisle_cfm)
    row, aisle = s["row"].to_numpy(int), s["aisle"].to_numpy(int)
    kw, cfm = s["kw_unit"].to_numpy(float), s["cfm_unit"].to_numpy(float)
    rates = saas_rates(instance, plan)
    e, cap = rates["energy"], rates["capacity"]
    load = np.asarray(plan.saas_load, float).copy()
    hot = load > cap + EPS
    constrained = (row_over[row] > EPS) | (aisle_over[aisle] > EPS) | hot
    ep = instance.saas_endpoint_idx
    for v in np.argsort(-load, kind="stable"):
        if not constrained[v] or load[v] <= EPS:
            continue
        # Load that must leave v: its row's and aisle's excess (in v's units) and any heat excess.
        need = max(row_over[row[v]] / (kw[v] * e[v]), aisle_over[aisle[v]] / (cfm[v] * e[v]), load[v] - cap[v], 0.0)
        need = min(need, load[v])
        receivers = np.flatnonzero((ep == ep[v]) & ~constrained)
        receivers = receivers[np.argsort(-row_room[row[receivers]], kind="stable")]
        for w in receivers:
            if need <= EPS:
                break
            move = min(need, cap[w] - load[w], row_room[row[w]] / (kw[w] * e[w]), aisle_room[aisle[w]] / (cfm[w] * e[w]))
            if move <= EPS:
                continue
            load[v] -= move
            load[w] += move
            need -= move
            row_room[row[w]] -= move * kw[w] * e[w]
            aisle_room[aisle[w]] -= move * cfm[w] * e[w]
            _release(row_over, row_room, row[v], move * kw[v] * e[v])
            _release(aisle_over, aisle_room, aisle[v], move * cfm[v] * e[v])
    plan.saas_load = load
    return plan


def _choose(instance: ReconfigInstance, v: int, demand: float, budget_kw: float, budget_cfm: float) -> tuple[int, float]:
    """Step 2 for one VM: the configuration and the load it serves (see the module docstring)."""
    s = instance.saas
    c = instance.cfg
    fam_rows = instance.catalogue.rows_of(s.at[v, "family"])
    cur = int(s.at[v, "current"])
    rows = fam_rows[c["slo_ok"][fam_rows].astype(bool) | (fam_rows == cur)]
    e = c["energy_ratio"][rows]
    cap = capacity_units(instance, np.full(len(rows), float(s.at[v, "gpus"])), rows,
                         np.full(len(rows), float(s.at[v, "gpu_load_limit"])))
    kw_per, cfm_per = float(s.at[v, "kw_unit"]) * e, float(s.at[v, "cfm_unit"]) * e
    servable = np.minimum(cap, np.minimum(np.maximum(budget_kw, 0.0) / kw_per, np.maximum(budget_cfm, 0.0) / cfm_per))
    ok = servable >= demand * (1 - 1e-9) - EPS
    if ok.any():
        idx = np.flatnonzero(ok)
        # highest quality, then fastest (lowest TBT), then least energy, then catalogue order
        order = np.lexsort((idx, e[idx], c["tbt_ms"][rows[idx]], -c["quality"][rows[idx]]))
        return int(rows[idx[order[0]]]), demand
    best = np.lexsort((np.arange(len(rows)), -c["quality"][rows], -servable))[0]
    return int(rows[best]), float(max(0.0, servable[best]))


def solve_greedy(instance: ReconfigInstance) -> ReconfigPlan:
    """The paper's per-instance playbook (module docstring): route away, configure each
    instance inside its budget, cap IaaS last."""
    plan = _route_away(instance, ReconfigPlan.unchanged(instance, "greedy"))
    s = instance.saas
    if len(s):
        row_over, aisle_over, _ = _over(instance, plan)
        sp = saas_physics(instance, plan)
        row, aisle = s["row"].to_numpy(int), s["aisle"].to_numpy(int)
        row_saas = np.bincount(row, sp["kw"], minlength=instance.n_rows)
        aisle_saas = np.bincount(aisle, sp["cfm"], minlength=instance.n_aisles)
        share_kw = np.where(row_saas[row] > EPS, sp["kw"] / np.maximum(row_saas[row], EPS), 0.0)
        share_cfm = np.where(aisle_saas[aisle] > EPS, sp["cfm"] / np.maximum(aisle_saas[aisle], EPS), 0.0)
        budget_kw = sp["kw"] - row_over[row] * share_kw
        budget_cfm = sp["cfm"] - aisle_over[aisle] * share_cfm
        config = plan.saas_config.copy()
        load = plan.saas_load.copy()
        cap = saas_rates(instance, plan)["capacity"]
        # Only instances over their budget (or their GPU's temperature) are reconfigured.
        touched = (budget_kw < sp["kw"] - 1e-9) | (budget_cfm < sp["cfm"] - 1e-9) | (plan.saas_load > cap + 1e-9)
        for v in np.flatnonzero(touched):
            config[v], load[v] = _choose(instance, v, float(plan.saas_load[v]), float(budget_kw[v]), float(budget_cfm[v]))
        plan.saas_config, plan.saas_load = config, load
    return cap_iaas_last_resort(instance, plan)


# ---- uniform cap ---------------------------------------------------------------------------

def event_scope(instance: ReconfigInstance) -> np.ndarray:
    """Servers the events touch: the room (UPS, heat wave), an aisle (AHU) or a row."""
    servers = np.zeros(len(instance.server_ids), dtype=bool)
    aisle_of = instance.row_aisle[instance.server_row]
    for ev in instance.events:
        if ev.kind in ("ups-failure", "heatwave"):
            servers[:] = True
        elif ev.kind == "ahu-failure":
            servers |= instance.aisle_ids[aisle_of] == ev.target
        elif ev.kind == "row-power":
            servers |= instance.row_ids[instance.server_row] == ev.target
    return servers


def _saas_power_levels_under_cap(instance: ReconfigInstance, plan: ReconfigPlan, level: float,
                                 iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Per SaaS VM, the highest power level (``saas_clock``, the catalogue's meaning: see
    :func:`~tapas_opt.reconfig.evaluate.saas_physics`) at which its busy GPUs draw at most
    ``level`` of their dynamic range while serving what they can of the VM's load, and that load.

    A VM at level ``k`` serves ``min(D, capacity * k**alpha)`` units for ``energy * k /
    k**alpha`` per unit; its GPUs' dynamic load grows with ``k``, so bisection finds the level.
    Writing the cap as a level of this meaning keeps configs.csv's ``power_level`` and the VM's
    capacity at it true to the cap: re-read by ``route --configs``, the VM cannot be given more
    load than the cap lets it serve (a level relative to the VM's own demand could)."""
    cfg = np.asarray(plan.saas_config, int)
    demand = np.asarray(plan.saas_load, float)
    n = len(demand)

    def served_and_load(k):
        rates = level_rates(instance, cfg, k)
        served = np.minimum(demand, rates["slo_capacity"])
        return served, rates["energy"] * served / np.maximum(rates["busy"], EPS)

    lo, hi = np.zeros(n), np.ones(n)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        fits = served_and_load(mid)[1] <= level
        lo, hi = np.where(fits, mid, lo), np.where(fits, hi, mid)
    full = level_rates(instance, cfg, np.ones(n))
    uncapped = full["energy"] * demand / np.maximum(full["busy"], EPS) <= level
    return np.where(uncapped, 1.0, lo), np.where(uncapped, demand, served_and_load(lo)[0])


def uniform_cap_plan(instance: ReconfigInstance, level: float, scope: np.ndarray) -> ReconfigPlan:
    """Every GPU of the servers in ``scope`` limited to ``level`` of its dynamic power range."""
    plan = ReconfigPlan.unchanged(instance, "uniform-cap")
    s, iaas = instance.saas, instance.iaas
    in_s = scope[s["server"].to_numpy(int)]
    clock, served = _saas_power_levels_under_cap(instance, plan, level)
    plan.saas_clock = np.where(in_s, clock, 1.0)
    plan.saas_load = np.where(in_s, served, plan.saas_load)
    in_i = scope[iaas["server"].to_numpy(int)]
    plan.iaas_load = np.where(in_i, np.minimum(plan.iaas_load, level), plan.iaas_load)
    plan.notes.append(f"uniform GPU power cap at {level:.3f} of the dynamic range on {int(scope.sum())} servers")
    return plan


def solve_uniform_cap(instance: ReconfigInstance, iterations: int = 40) -> ReconfigPlan:
    """The highest uniform cap level that meets every limit (bisection; the lowest level tried is
    the IaaS cap floor, then the plan says what is still exceeded)."""
    scope = event_scope(instance)
    floor = float(instance.iaas["floor_load"].min()) if len(instance.iaas) else 0.0
    floor = max(floor, 0.0)

    def limits_ok(level: float) -> bool:
        ev = check_plan(instance, uniform_cap_plan(instance, level, scope))
        return not any(v.code in ("row_power", "aisle_airflow", "gpu_temperature") for v in ev.violations)

    if limits_ok(1.0):
        return uniform_cap_plan(instance, 1.0, scope)
    lo, hi = floor, 1.0
    if not limits_ok(lo):
        return uniform_cap_plan(instance, lo, scope)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if limits_ok(mid) else (lo, mid)
    return uniform_cap_plan(instance, lo, scope)
