"""Fast placement policies: the greedy warm start, the baselines, and why a VM cannot be placed.

* :func:`greedy` (tapas-opt's own heuristic and the optimiser's warm start): largest VMs first,
  each to the server that keeps the resulting row peak, the room's peak GPU temperature and the
  soft terms lowest, never breaking a limit.
* :func:`first_fit`: the thermal- and power-oblivious packer the paper compares against (the
  production allocator): the first server in inventory order with enough free GPUs.
* :func:`random_fit`: a uniformly random server with enough free GPUs (seeded).
* :func:`tapas_rules`: the paper's rule-based allocator (TAPAS.md section 4), with the rule
  combination and tie-breaking the paper leaves open fixed as documented on the function.

The baselines process the queue in input order, as an online allocator would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tapas_opt.placement.evaluate import server_warmth
from tapas_opt.placement.instance import PlacementInstance
from tapas_opt.placement.state import RoomState


@dataclass(frozen=True)
class Unplaced:
    """Why a VM could not be placed: a stable code and a message naming the binding limit."""

    vm_id: str
    code: str  # no_gpu_capacity | gpu_temperature | row_power | aisle_airflow | combined_limits
    message: str

    def to_dict(self) -> dict:
        return {"vm_id": self.vm_id, "code": self.code, "message": self.message}


def vm_order_largest_first(instance: PlacementInstance) -> np.ndarray:
    """Pending VMs by decreasing peak power on the first hardware class, then by index."""
    if instance.n_vms == 0:
        return np.zeros(0, int)
    peak = instance.vm_power_kw_by_hw[:, 0, :].max(axis=1)
    return np.lexsort((np.arange(instance.n_vms), -np.round(peak, 9)))


def vm_order_hardest_first(instance: PlacementInstance, temp_cap_c: float) -> np.ndarray:
    """Pending VMs with the fewest servers cool enough for them first, then largest first: the
    greedy then seats the thermally hardest VMs while the cool servers are still free."""
    if instance.n_vms == 0:
        return np.zeros(0, int)
    eligible = (instance.group_peak_temp_c <= temp_cap_c + 1e-9).sum(axis=1)[instance.vm_group]
    peak = instance.vm_power_kw_by_hw[:, 0, :].max(axis=1)
    return np.lexsort((np.arange(instance.n_vms), -np.round(peak, 9), eligible))


def score_candidates(state: RoomState, kind: str, gpus: int, cand, warmth: np.ndarray) -> np.ndarray:
    """Objective-shaped score of putting a VM (kind, size) on each candidate (lower is better)."""
    inst, opts = state.inst, state.inst.options
    room = np.maximum(state.peak_temp_c, cand.peak_temp_c) / inst.temp_limit_c
    placed = np.maximum(state.placed_peak_temp_c, cand.peak_temp_c) / inst.temp_limit_c
    # A small pull towards cooler servers breaks ties below the current peaks.
    tie = 0.01 * cand.peak_temp_c / inst.temp_limit_c
    w = warmth[cand.servers]
    pref = w if kind == "iaas" else 1.0 - w
    full = state.free[cand.servers] == inst.params.gpus[cand.servers]
    small = gpus < inst.params.gpus[cand.servers]
    total_free = max(1, inst.free_gpus.sum())
    strand = np.where(full & small, inst.params.gpus[cand.servers] - gpus,
                      np.where(full, 0, -gpus)) / total_free
    return (opts.power_weight * cand.row_peak_norm + opts.temp_weight * room + opts.placed_temp_weight * placed
            + (opts.temp_weight + opts.placed_temp_weight) * tie
            + opts.thermal_pref_weight * pref + opts.fragmentation_weight * strand)


def choose_server(state: RoomState, v: int, warmth: np.ndarray, temp_cap_c: float | None = None) -> int:
    """Best feasible server for VM v now, or -1."""
    cand = state.candidates(v, temp_cap_c)
    if len(cand.servers) == 0:
        return -1
    score = score_candidates(state, str(state.inst.vm_kind[v]), int(state.inst.vm_gpus[v]), cand, warmth)
    return int(cand.servers[np.argmin(score)])  # argmin takes the lowest index on ties


def greedy(instance: PlacementInstance, order: np.ndarray | None = None,
           state: RoomState | None = None, temp_cap_c: float | None = None) -> np.ndarray:
    """tapas-opt's greedy: largest first, each VM to its best feasible server."""
    state = state or RoomState(instance)
    warmth = server_warmth(instance)
    for v in (vm_order_largest_first(instance) if order is None else order):
        if state.assign[v] >= 0:
            continue
        s = choose_server(state, int(v), warmth, temp_cap_c)
        if s >= 0:
            state.place(int(v), s)
    return state.assign.copy()


def first_fit(instance: PlacementInstance) -> np.ndarray:
    """Oblivious first fit: the first server (inventory order) with enough free GPUs."""
    free = instance.free_gpus.astype(int).copy()
    assign = np.full(instance.n_vms, -1, dtype=int)
    for v in range(instance.n_vms):
        fits = np.flatnonzero(free >= instance.vm_gpus[v])
        if len(fits):
            assign[v] = fits[0]
            free[fits[0]] -= instance.vm_gpus[v]
    return assign


def random_fit(instance: PlacementInstance, seed: int = 0) -> np.ndarray:
    """Oblivious random fit: a uniformly random server with enough free GPUs (seeded)."""
    rng = np.random.default_rng(seed)
    free = instance.free_gpus.astype(int).copy()
    assign = np.full(instance.n_vms, -1, dtype=int)
    for v in range(instance.n_vms):
        fits = np.flatnonzero(free >= instance.vm_gpus[v])
        if len(fits):
            s = int(rng.choice(fits))
            assign[v] = s
            free[s] -= instance.vm_gpus[v]
    return assign


def tapas_rules(instance: PlacementInstance) -> np.ndarray:
    """The paper's rule-based allocator (TAPAS.md section 4), queue order.

    1. Filter: drop rows and aisles whose predicted peak power or airflow, with the VM's
       predicted load added, would break the limit at any slot.
    2. Thermal preference: servers split into cold/medium/warm thirds by projected GPU
       temperature; an IaaS VM tries cold, then medium, then warm; a SaaS VM tries warm, then
       medium, then cold; a server must keep the VM under the temperature limit.
    3. Balance: within the first third that has a candidate, the row where the VM's kind holds
       the smallest share of the row's GPUs. Ties (left open by the paper): lower predicted peak
       row power, then best fit (fewest free GPUs left), then inventory order.
    """
    inst = instance
    state = RoomState(inst)
    warmth = server_warmth(inst)
    third = np.minimum((warmth * 3).astype(int), 2)  # 0 cold, 1 medium, 2 warm
    kind_gpus = {k: np.zeros(inst.n_rows) for k in ("iaas", "saas")}
    run = inst.running
    for k in kind_gpus:
        sel = run["kind"].to_numpy(str) == k
        np.add.at(kind_gpus[k], inst.server_row[run["server"].to_numpy(int)[sel]], run["gpus"].to_numpy(int)[sel])
    for v in range(inst.n_vms):
        cand = state.candidates(v)
        if len(cand.servers) == 0:
            continue
        kind = inst.vm_kind[v]
        prefs = (0, 1, 2) if kind == "iaas" else (2, 1, 0)
        for t in prefs:
            sel = third[cand.servers] == t
            if sel.any():
                break
        servers = cand.servers[sel]
        rows = inst.server_row[servers]
        total = kind_gpus["iaas"][rows] + kind_gpus["saas"][rows]
        share = np.where(total > 0, kind_gpus[kind][rows] / np.maximum(total, 1), 0.0)
        leftover = state.free[servers] - inst.vm_gpus[v]
        order = np.lexsort((servers, leftover, np.round(cand.row_peak_norm[sel], 9), np.round(share, 9)))
        s = int(servers[order[0]])
        state.place(v, s)
        kind_gpus[kind][inst.server_row[s]] += inst.vm_gpus[v]
    return state.assign.copy()


def explain_unplaced(state: RoomState, v: int) -> Unplaced:
    """The limit that keeps VM v out of every server, stated with where and when it binds."""
    inst = state.inst
    vm_id = str(inst.vm_ids[v])
    fits = np.flatnonzero(state.free >= inst.vm_gpus[v])
    if len(fits) == 0:
        return Unplaced(vm_id, "no_gpu_capacity",
                        f"no server has {inst.vm_gpus[v]} free GPUs "
                        f"(largest free block: {int(state.free.max()) if len(state.free) else 0})")
    row_peak, aisle_peak, row_slot, aisle_slot = state.pool_effect(v)
    pools = state.pool_of_server[fits]
    temps = state.vm_peak_temp(v, fits)
    row_ok = row_peak[pools] <= 1 + 1e-9
    aisle_ok = aisle_peak[pools] <= 1 + 1e-9
    temp_ok = temps <= inst.temp_limit_c + 1e-9
    if not temp_ok.any():
        best = int(np.argmin(temps))
        return Unplaced(vm_id, "gpu_temperature",
                        f"even the coolest server with room ({inst.server_ids[fits[best]]}) would reach "
                        f"{temps[best]:.1f} C > {inst.temp_limit_c:.1f} C")
    if not row_ok.any():
        p = pools[np.argmin(row_peak[pools])]
        r = state.pool_row[p]
        return Unplaced(vm_id, "row_power",
                        f"every row with room would exceed its power limit; the least loaded, row "
                        f"{inst.row_ids[r]}, would reach {row_peak[p]:.1%} of {inst.row_limit_kw[r]:g} kW "
                        f"at {inst.slot_label(row_slot[p])}")
    if not aisle_ok.any():
        p = pools[np.argmin(aisle_peak[pools])]
        a = state.pool_aisle[p]
        return Unplaced(vm_id, "aisle_airflow",
                        f"every aisle with room would need more air than its AHU gives; the best, aisle "
                        f"{inst.aisle_ids[a]}, would reach {aisle_peak[p]:.1%} of "
                        f"{inst.aisle_limit_cfm[a]:.0f} CFM at {inst.slot_label(aisle_slot[p])}")
    row_of = inst.server_row[fits]
    breached = inst.rows_over_by_running[row_of] | inst.aisles_over_by_running[inst.row_aisle[row_of]]
    already = (f"; {int(breached.sum())} of them in a row or aisle its running VMs already put over its limit"
               if breached.any() else "")
    return Unplaced(vm_id, "combined_limits",
                    "every server with room breaks one limit: "
                    f"{int((~row_ok).sum())} by row power, {int((~aisle_ok).sum())} by aisle airflow, "
                    f"{int((~temp_ok).sum())} by GPU temperature{already}")
