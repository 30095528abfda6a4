"""Thermal- and power-aware request routing: an LP per time slot, and a fast per-batch router.

:func:`solve_routing_slot` splits every endpoint's load over its VMs so that rows, aisles and
GPUs stay as far from their limits as possible, while every VM stays within the throughput its
configuration has under the SLO (and within its server's GPU temperature limit):

    1. minimise   sum_k max(0, Z_k - 1)                     (limits first: the least excess)
    2. minimise   Z_row + Z_aisle + Z_temp + eps * sum_r P_r / P_r^max + W * sum_e unserved_e
                  with every max(0, Z_k - 1) held at its step-1 value
    subject to sum_{v in e} l_v + unserved_e = D_e                      (every endpoint)
               P_r / P_r^max <= Z_row,  Q_a / Q_a^max <= Z_aisle          (rows, aisles)
               T_v / T^max <= Z_temp                                      (every SaaS VM)
               0 <= l_v <= cap_v                                          (SLO throughput)

with P_r, Q_a and T_v linear in the loads through :mod:`tapas_opt.physics` (as in the
reconfiguration model). The order is lexicographic: a row over its power limit trips its
breaker or gets capped, so load goes unserved before a limit the slot can meet is broken; if
even no SaaS load at all breaks one (IaaS and idle power alone), the excess is made as small
as it can be and then as much load as possible is served within it. Step 2 then serves the
most load (``W`` per unit) and, within that, keeps rows, aisles and GPUs furthest from their
limits. The route command repeats it for every slot of the horizon.

:class:`Router` is what a load balancer calls per request batch: it keeps each endpoint's LP
shares, moves load off VMs at risk (too little headroom on their row, aisle, GPU temperature
or throughput) as far as the others' headroom allows, keeps requests of a known session on
the VM that holds their KV cache, and deals the rest in proportion to the shares with smooth
deficit counting (deterministic, O(VMs + batch)).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from ortools.linear_solver import pywraplp

from tapas_opt.reconfig.evaluate import saas_physics, saas_rates
from tapas_opt.reconfig.instance import ReconfigInstance
from tapas_opt.reconfig.plan import ReconfigPlan

UNSERVED_TOL = 1e-5
"""Share of a slot's SaaS demand left unserved that counts as unserved: below it, the gap is
the rounding of a plan's files (configs.csv keeps power levels to 4 decimals, caps.csv caps to
4), not a shortage."""
EPS_SPREAD = 1e-3
W_UNSERVED = 1e4
OVER_TOL = 1e-7
"""Slack on step 1's excess over a limit when step 2 holds it (ratio of the limit)."""


@dataclass
class RoutingSlot:
    """Loads (units) per SaaS VM at one slot, the achieved peak ratios and unserved load."""

    slot: int
    time: pd.Timestamp
    loads: np.ndarray
    z_row: float
    z_aisle: float
    z_temp: float
    unserved: np.ndarray
    status: str


def _temp_line(instance: ReconfigInstance, plan: ReconfigPlan) -> tuple[np.ndarray, np.ndarray]:
    """Hottest-GPU temperature of each SaaS VM as ``T0 + T1 * l`` (l in units)."""
    s, p = instance.saas, instance.params
    srv = s["server"].to_numpy(int)
    rates = saas_rates(instance, plan)
    inlet = instance.inlet_c[srv]
    t0 = p.gpu_temp_c(np.zeros(len(s)), inlet, srv)
    t1 = p.gpu_temp_c(np.ones(len(s)), inlet, srv)
    return t0, (t1 - t0) * rates["energy"] / np.maximum(rates["busy"], 1e-12)


def _solve_limits_first(solver: pywraplp.Solver, overs: list, objective: dict) -> str:
    """Step 1 minimises the excess over the limits; step 2 holds it and minimises
    ``objective`` (see the module docstring). "optimal", "feasible" or "failed"."""
    words = {pywraplp.Solver.OPTIMAL: "optimal", pywraplp.Solver.FEASIBLE: "feasible"}
    obj = solver.Objective()
    for over in overs:
        obj.SetCoefficient(over, 1.0)
    obj.SetMinimization()
    first = words.get(solver.Solve(), "failed")
    if first == "failed":
        return first
    least = [over.solution_value() for over in overs]  # read all before the model changes
    for over, value in zip(overs, least):
        over.SetUb(value * (1.0 + 1e-6) + OVER_TOL)
        obj.SetCoefficient(over, 0.0)
    for var, coef in objective.items():
        obj.SetCoefficient(var, coef)
    second = words.get(solver.Solve(), "failed")
    return "feasible" if second == "optimal" and first != "optimal" else second


def solve_routing_slot(instance: ReconfigInstance, plan: ReconfigPlan, demand_units: np.ndarray | None = None,
                       iaas_load: np.ndarray | None = None, pools: np.ndarray | None = None) -> RoutingSlot:
    """The routing LP at the instance's slot (see the module docstring) with the plan's
    configurations and IaaS caps; ``demand_units`` per endpoint default to the instance's.
    ``pools`` (one index per SaaS VM) replaces the endpoints as the sets whose load is split,
    ``demand_units`` then being per pool (:func:`reroute_for_headroom`)."""
    inst = instance
    s = inst.saas
    demand = inst.endpoint_demand if demand_units is None else np.asarray(demand_units, float)
    iaas_load = np.asarray(plan.iaas_load if iaas_load is None else iaas_load, float)
    rates = saas_rates(inst, plan)
    cap, e = rates["capacity"], rates["energy"]
    kw = s["kw_unit"].to_numpy(float) * e
    cfm = s["cfm_unit"].to_numpy(float) * e
    iaas = inst.iaas
    fixed_kw = inst.idle_row_kw + np.bincount(iaas["row"].to_numpy(int), iaas["kw_unit"].to_numpy(float)
                                              * iaas["gpus"].to_numpy(float) * iaas_load, minlength=inst.n_rows)
    fixed_cfm = inst.idle_aisle_cfm + np.bincount(iaas["aisle"].to_numpy(int), iaas["cfm_unit"].to_numpy(float)
                                                  * iaas["gpus"].to_numpy(float) * iaas_load, minlength=inst.n_aisles)
    t0, t1 = _temp_line(inst, plan)

    solver = pywraplp.Solver.CreateSolver("GLOP")
    lv = [solver.NumVar(0.0, float(max(cap[v], 0.0)), f"l_{v}") for v in range(len(s))]
    un = [solver.NumVar(0.0, solver.infinity(), f"u_{e_}") for e_ in range(len(demand))]
    z_row, z_aisle, z_temp = (solver.NumVar(0.0, solver.infinity(), n) for n in ("z_row", "z_aisle", "z_temp"))
    overs = []
    for z in (z_row, z_aisle, z_temp):
        over = solver.NumVar(0.0, solver.infinity(), f"over_{z.name()}")  # over >= z - 1
        ct = solver.Constraint(-1.0, solver.infinity(), f"limit_{z.name()}")
        ct.SetCoefficient(over, 1.0)
        ct.SetCoefficient(z, -1.0)
        overs.append(over)
    # Step 2's objective, set once step 1 has fixed the excess over the limits.
    obj2: dict = {z: 1.0 for z in (z_row, z_aisle, z_temp)}
    obj2.update({u: W_UNSERVED for u in un})
    ep = inst.saas_endpoint_idx if pools is None else np.asarray(pools, int)
    cons = [solver.Constraint(float(demand[i]), float(demand[i]), f"demand_{i}") for i in range(len(demand))]
    for i, u in enumerate(un):
        cons[i].SetCoefficient(u, 1.0)
    for v in range(len(s)):
        cons[ep[v]].SetCoefficient(lv[v], 1.0)
    row, aisle = s["row"].to_numpy(int), s["aisle"].to_numpy(int)
    for r in range(inst.n_rows):
        lim = float(inst.row_limit_kw[r])
        ct = solver.Constraint(-solver.infinity(), -float(fixed_kw[r]) / lim, f"row_{r}")
        ct.SetCoefficient(z_row, -1.0)
        for v in np.flatnonzero(row == r):
            ct.SetCoefficient(lv[v], float(kw[v]) / lim)
            obj2[lv[v]] = EPS_SPREAD * float(kw[v]) / lim
    for a in range(inst.n_aisles):
        lim = float(inst.aisle_limit_cfm[a])
        ct = solver.Constraint(-solver.infinity(), -float(fixed_cfm[a]) / lim, f"aisle_{a}")
        ct.SetCoefficient(z_aisle, -1.0)
        for v in np.flatnonzero(aisle == a):
            ct.SetCoefficient(lv[v], float(cfm[v]) / lim)
    tl = float(inst.temp_limit_c)
    for v in range(len(s)):
        ct = solver.Constraint(-solver.infinity(), -float(t0[v]) / tl, f"temp_{v}")
        ct.SetCoefficient(z_temp, -1.0)
        ct.SetCoefficient(lv[v], float(t1[v]) / tl)
    word = _solve_limits_first(solver, overs, obj2)
    if word == "failed":
        loads = np.asarray(plan.saas_load, float).copy()
        return RoutingSlot(inst.slot, inst.time, loads, np.nan, np.nan, np.nan, np.zeros(len(demand)), word)
    loads = np.array([x.solution_value() for x in lv])
    return RoutingSlot(inst.slot, inst.time, np.maximum(loads, 0.0), z_row.solution_value(), z_aisle.solution_value(),
                       z_temp.solution_value(), np.array([u.solution_value() for u in un]), word)


def reroute_for_headroom(instance: ReconfigInstance, plan: ReconfigPlan) -> ReconfigPlan:
    """The plan with its load split re-optimised for headroom (the routing LP), its
    configurations, caps and quality unchanged.

    The reconfiguration model prices quality, reloads and limits, not distance from them: when
    no limit binds, any split that serves the load scores the same, and the solver's corner can
    fill one row to its limit and starve the next (the example room, no event: peak row power
    0.91 -> 0.99, hottest GPU 70.8 -> 77.3 C with no configuration changed). Here each endpoint's
    load *per configuration* is split again over that configuration's VMs, so quality and
    slow-down stay exactly the plan's; the result is kept only if it breaks no limit the plan
    meets and serves the same load."""
    from tapas_opt.reconfig.evaluate import check_plan

    if len(instance.saas) == 0:
        return plan
    key = pd.MultiIndex.from_arrays([instance.saas_endpoint_idx, np.asarray(plan.saas_config, int)])
    pools, _ = pd.factorize(key)
    demand = np.bincount(pools, np.asarray(plan.saas_load, float))
    slot = solve_routing_slot(instance, plan, demand_units=demand, pools=pools)
    if slot.status != "optimal" or slot.unserved.sum() > 1e-6 * max(1.0, demand.sum()):
        return plan
    routed = dataclasses.replace(plan, saas_load=slot.loads)
    before = {(v.code, v.subject) for v in check_plan(instance, plan).violations}
    after = {(v.code, v.subject) for v in check_plan(instance, routed).violations}
    return routed if after <= before else plan


def endpoint_shares(instance: ReconfigInstance, loads: np.ndarray) -> np.ndarray:
    """Each SaaS VM's share of its endpoint's load; the shares of an endpoint sum to 1. An
    endpoint with no load at all is split evenly: a load balancer given all-zero weights would
    have nothing to route its first request by."""
    ep = instance.saas_endpoint_idx
    loads = np.asarray(loads, float)
    total = np.bincount(ep, loads, minlength=len(instance.endpoints))
    members = np.bincount(ep, minlength=len(instance.endpoints))
    even = 1.0 / np.maximum(members[ep], 1)
    return np.where(total[ep] > 0, loads / np.maximum(total[ep], 1e-12), even)


def shares_frame(instance: ReconfigInstance, result: RoutingSlot) -> pd.DataFrame:
    """``timestamp, endpoint, vm_id, share, load_units`` of one routing slot."""
    s = instance.saas
    share = endpoint_shares(instance, result.loads)
    return pd.DataFrame({"timestamp": result.time, "endpoint": s["endpoint"].to_numpy(), "vm_id": s["vm_id"].to_numpy(),
                         "share": np.round(share, 6), "load_units": np.round(result.loads, 6)})


# ---- the per-batch router ---------------------------------------------------------------------

def risk_headroom(instance: ReconfigInstance, plan: ReconfigPlan) -> pd.Series:
    """Per SaaS VM, the smallest relative headroom it has left: on its row's power, its aisle's
    airflow, its hottest GPU's temperature and its own throughput (0 = at a limit)."""
    from tapas_opt.reconfig.evaluate import check_plan

    ev = check_plan(instance, plan)
    s = instance.saas
    sp = saas_physics(instance, plan)
    row = 1 - ev.row_kw[s["row"].to_numpy(int)] / ev.row_limit_kw[s["row"].to_numpy(int)]
    aisle = 1 - ev.aisle_cfm[s["aisle"].to_numpy(int)] / ev.aisle_limit_cfm[s["aisle"].to_numpy(int)]
    temp = 1 - ev.saas_temp_c / instance.temp_limit_c
    thr = 1 - np.asarray(plan.saas_load, float) / np.maximum(sp["capacity"], 1e-12)
    return pd.Series(np.minimum.reduce([row, aisle, temp, thr]), index=s["vm_id"].to_numpy())


@dataclass
class Router:
    """Route request batches of each endpoint to its VMs (see the module docstring).

    Parameters
    ----------
    routing : pandas.DataFrame
        ``endpoint, vm_id, share`` (e.g. routing.csv of ``tapas-opt route`` or ``reconfigure``).
    headroom : pandas.Series, optional
        Per vm_id, the relative headroom left (:func:`risk_headroom`); load moves off the VMs
        below ``min_headroom`` as far as the others' headroom allows (:func:`shift_from_risk`).
    affinity_size : int
        Sessions remembered for KV-cache affinity (least recently used are forgotten).
    """

    routing: pd.DataFrame
    headroom: pd.Series | None = None
    min_headroom: float = 0.02
    affinity_size: int = 100_000
    _vms: dict = field(init=False, default_factory=dict)
    _weights: dict = field(init=False, default_factory=dict)
    _credit: dict = field(init=False, default_factory=dict)
    _risky: dict = field(init=False, default_factory=dict)
    _affinity: OrderedDict = field(init=False, default_factory=OrderedDict)

    def __post_init__(self) -> None:
        _check_routing_frame(self.routing)
        for ep, grp in self.routing.groupby("endpoint", sort=False):
            self._vms[ep] = grp["vm_id"].to_numpy(object)
            self._credit[ep] = np.zeros(len(grp))
            self._weights[ep] = self._normalise(ep, grp["share"].to_numpy(float))

    def _normalise(self, endpoint, shares: np.ndarray) -> np.ndarray:
        w = np.clip(np.asarray(shares, float), 0.0, None)
        if w.sum() <= 0:
            w = np.ones(len(w))
        w = w / w.sum()
        if self.headroom is None:
            return w
        # A VM missing from headroom (NaN) keeps its share: it neither sheds load nor takes more
        # (as 1.0 it could take the whole endpoint).
        room = self.headroom.reindex(self._vms[endpoint]).to_numpy(float)
        self._risky[endpoint] = room < self.min_headroom
        return shift_from_risk(w, room, self.min_headroom)

    def update(self, routing: pd.DataFrame | None = None, headroom: pd.Series | None = None) -> None:
        """New shares (next slot's LP) and/or new headroom; session affinity is kept."""
        if headroom is not None:
            self.headroom = headroom
        if routing is not None:
            self.routing = routing
            old = {ep: dict(zip(self._vms[ep], credit)) for ep, credit in self._credit.items()}
            self._vms, self._weights, self._credit, self._risky = {}, {}, {}, {}
            self.__post_init__()
            for ep, credit in old.items():  # by VM: the new frame may list them in another order
                if ep in self._credit:
                    self._credit[ep] = np.array([credit.get(vm, 0.0) for vm in self._vms[ep]])
        else:
            for ep in self._vms:
                shares = self.routing.loc[self.routing["endpoint"] == ep, "share"].to_numpy(float)
                self._weights[ep] = self._normalise(ep, shares)

    def _at_risk(self, endpoint, i: int) -> bool:
        risky = self._risky.get(endpoint)
        return bool(risky is not None and risky[i] and not risky.all())

    def route(self, endpoint, n_requests: int, sessions=None) -> np.ndarray:
        """VM id for each of ``n_requests`` requests of ``endpoint``.

        ``sessions`` (optional, one key per request) keeps a known session on the VM holding its
        KV cache if that VM is not at risk (and still serves the endpoint), and the requests of a
        new session in this batch on one VM; new sessions are remembered.

        Every request of the batch, dealt or kept on its session's VM, counts against the VM's
        share (smooth deficit counting), so the shares hold over time whatever the sessions do.
        """
        if endpoint not in self._vms:
            raise KeyError(f"unknown endpoint {endpoint!r}")
        if isinstance(n_requests, bool) or not isinstance(n_requests, (int, np.integer)) or n_requests < 0:
            raise ValueError(f"n_requests must be a whole number >= 0, not {n_requests!r}")
        if sessions is not None and len(sessions) != n_requests:
            raise ValueError(f"sessions has {len(sessions)} keys for {n_requests} requests: give one per request")
        vms, w = self._vms[endpoint], self._weights[endpoint]
        pos = {vm: i for i, vm in enumerate(vms)} if sessions is not None else {}
        target = self._credit[endpoint] + n_requests * w
        out = np.empty(n_requests, dtype=object)
        deal: list[int] | np.ndarray = np.arange(n_requests) if sessions is None else []
        follows: dict[int, int] = {}  # a repeat of a session first seen in this batch -> its first request
        first_of: dict = {}
        for j, key in enumerate(sessions if sessions is not None else ()):
            vm = self._affinity.get((endpoint, key))
            if vm is not None and vm in pos and w[pos[vm]] > 0 and not self._at_risk(endpoint, pos[vm]):
                out[j] = vm
                target[pos[vm]] -= 1.0
                self._affinity.move_to_end((endpoint, key))
            elif key in first_of:
                follows[j] = first_of[key]
            else:
                first_of[key] = j
                deal.append(j)
        if len(deal):
            counts = _apportion(target, w, len(deal))
            target -= counts
            out[deal] = np.repeat(vms, counts)
        for j, first in follows.items():
            out[j] = out[first]
            target[pos[out[j]]] -= 1.0
        self._credit[endpoint] = target
        if sessions is not None:
            for key, j in first_of.items():
                self._affinity[(endpoint, key)] = out[j]
            while len(self._affinity) > self.affinity_size:
                self._affinity.popitem(last=False)
        return out


def _check_routing_frame(routing: pd.DataFrame) -> None:
    """The shares of one slot, one line per endpoint and VM, finite: route's routing.csv holds
    a line per slot (merging them dealt every slot's shares at once), and a NaN share failed
    deep in the dealing with a numpy message."""
    missing = {"endpoint", "vm_id", "share"} - set(routing.columns)
    if missing:
        raise ValueError(f"routing frame lacks columns {sorted(missing)}; expected endpoint, vm_id, share")
    twice = routing.duplicated(["endpoint", "vm_id"])
    if twice.any():
        first = routing.loc[twice].iloc[0]
        hint = (" (route's routing.csv has a line per slot: pass one slot's lines, "
                "routing[routing['timestamp'] == T])") if "timestamp" in routing.columns else ""
        raise ValueError(f"{int(twice.sum())} line(s) repeat an endpoint and VM (first: {first['endpoint']!r}, "
                         f"{first['vm_id']!r}){hint}")
    share = pd.to_numeric(routing["share"], errors="coerce")
    bad = ~np.isfinite(share.to_numpy(float)) | (share.to_numpy(float) < 0)
    if bad.any():
        first = routing.loc[bad].iloc[0]
        raise ValueError(f"{int(bad.sum())} share(s) are not finite numbers >= 0 (first: endpoint "
                         f"{first['endpoint']!r}, VM {first['vm_id']!r}, share {first['share']})")


def shift_from_risk(w: np.ndarray, headroom: np.ndarray, min_headroom: float) -> np.ndarray:
    """Shares with load moved off the VMs at risk (headroom below ``min_headroom``) onto the
    others, each of which takes at most what its headroom allows: its share may grow to
    ``share / (1 - headroom)``, the load at which its smallest headroom would reach zero (exact
    for its throughput; conservative for its row, aisle and GPU, to which it is one
    contributor). What the others cannot take stays on the VMs at risk, in proportion to
    their shares: dropping them outright sent a whole endpoint to its one VM with headroom,
    5.5 times its throughput, when a plan left the others at their limits. A VM whose headroom
    is unknown (NaN) keeps its share."""
    risky = headroom < min_headroom  # (NaN: unknown, not at risk)
    if not risky.any() or risky.all():
        return w
    known = np.isfinite(headroom)
    cap = np.where(risky | ~known, w, w / np.maximum(1.0 - np.clip(np.nan_to_num(headroom), 0.0, 1.0), 1e-9))
    spare = np.where(risky, 0.0, cap - w)
    moving = w[risky].sum()
    moved = min(moving, spare.sum())
    out = w.copy()
    if moved > 0:
        out[~risky] += spare[~risky] * (moved / spare.sum())
        out[risky] *= (moving - moved) / moving
    return out / out.sum()


def _apportion(target: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    """Whole requests per VM summing to ``n``: the floor of each VM's positive credit, then the
    largest remainders; only VMs with a share (not at risk) get the requests the floors leave."""
    eligible = w > 0
    if not eligible.any():
        eligible = np.ones(len(w), dtype=bool)
    t = np.where(eligible, np.maximum(target, 0.0), 0.0)
    counts = np.floor(t).astype(int)
    over = int(counts.sum()) - n
    if over > 0:
        for i in np.argsort(t - counts, kind="stable"):
            take = min(counts[i], over)
            counts[i] -= take
            over -= take
            if over == 0:
                break
    short = n - int(counts.sum())
    if short > 0:
        idx = np.flatnonzero(eligible)
        order = idx[np.argsort(-(t - counts)[idx], kind="stable")]
        counts[order] += short // len(order)
        counts[order[: short % len(order)]] += 1
    return counts


def unserved_slots(slots: pd.DataFrame) -> int:
    """Slots of a routing run (``route``'s ``slots.csv``) that leave load unserved, beyond
    :data:`UNSERVED_TOL` of their demand."""
    if len(slots) == 0:
        return 0
    demand = slots["demand_units"] if "demand_units" in slots else 1.0
    return int((slots["unserved_units"] > UNSERVED_TOL * np.maximum(demand, 1.0)).sum())
