"""Evaluate any assignment of pending VMs to servers, without trusting a solver.

:func:`evaluate_assignment` recomputes, from the physics module alone, every row's power and
every aisle's airflow per time slot, every VM's peak hottest-GPU temperature (with hot-air
recirculation where an aisle is short of airflow), the objective terms and every violated
limit. The optimiser, the baselines, ``verify`` and the benchmarks all score plans with it, so
all policies are measured by the same ruler.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tapas_opt import physics
from tapas_opt.placement.instance import PlacementInstance, server_series, sum_by

TOL_KW = 1e-6
TOL_CFM = 1e-6
TOL_C = 1e-6


@dataclass(frozen=True)
class Violation:
    """A broken limit: which family, where, when, how far."""

    code: str  # row_power | aisle_airflow | gpu_temperature | gpu_capacity | running_moved | ...
    subject: str
    slot: int | None
    value: float
    limit: float
    message: str

    def to_dict(self) -> dict:
        return {"code": self.code, "subject": self.subject, "slot": self.slot,
                "value": round(float(self.value), 4), "limit": round(float(self.limit), 4),
                "message": self.message}


@dataclass(frozen=True)
class SoftTerms:
    """Normalised soft terms (0 is ideal); see models/formulation.md."""

    balance: float
    spread: float
    thermal_pref: float
    fragmentation: float

    def weighted(self, opts) -> float:
        return (opts.balance_weight * self.balance + opts.spread_weight * self.spread
                + opts.thermal_pref_weight * self.thermal_pref
                + opts.fragmentation_weight * self.fragmentation)

    def to_dict(self) -> dict:
        return {k: round(float(v), 6) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Evaluation:
    """Physics of one plan over the horizon, its objective and its violations."""

    assign: np.ndarray
    row_limit_kw: np.ndarray
    row_kw: np.ndarray
    aisle_cfm: np.ndarray
    server_kw: np.ndarray
    vm_peak_temp_c: np.ndarray
    vm_peak_slot: np.ndarray
    running_peak_temp_c: np.ndarray
    soft: SoftTerms
    objective: float
    violations: list[Violation] = field(default_factory=list)

    @property
    def row_norm(self) -> np.ndarray:
        return self.row_kw / self.row_limit_kw[:, None]

    @property
    def peak_row_power_norm(self) -> float:
        return float(self.row_norm.max()) if self.row_kw.size else 0.0

    @property
    def peak_temp_c(self) -> float:
        temps = np.concatenate([self.vm_peak_temp_c[self.assign >= 0], self.running_peak_temp_c])
        return float(temps.max()) if temps.size else float("nan")

    @property
    def peak_placed_temp_c(self) -> float:
        """Peak GPU temperature among the VMs this plan places (NaN if none)."""
        temps = self.vm_peak_temp_c[self.assign >= 0]
        return float(temps.max()) if temps.size else float("nan")

    @property
    def n_unplaced(self) -> int:
        return int((self.assign < 0).sum())

    @property
    def feasible(self) -> bool:
        return not self.violations


def server_warmth(instance: PlacementInstance) -> np.ndarray:
    """Rank of each server (0 = coolest, 1 = warmest) by the peak temperature a fully loaded
    GPU would reach on it: the paper's cold/medium/warm split, as a continuous score."""
    full = np.ones((1, instance.n_slots))
    peak = instance.peak_temp_c(full)[0]
    if len(peak) <= 1:
        return np.zeros(len(peak))
    ranks = pd.Series(peak).rank(method="average").to_numpy()
    return (ranks - 1) / (len(peak) - 1)


def soft_terms(instance: PlacementInstance, assign: np.ndarray, warmth: np.ndarray | None = None) -> SoftTerms:
    """The four soft terms of the objective for an assignment (see models/formulation.md)."""
    inst = instance
    placed = assign >= 0
    run = inst.running
    # Balance: |(1 - phi) * IaaS_r - phi * SaaS_r| summed over rows, over all GPUs.
    kinds = np.concatenate([run["kind"].to_numpy(str), inst.vm_kind[placed]])
    gpus = np.concatenate([run["gpus"].to_numpy(int), inst.vm_gpus[placed]])
    rows = np.concatenate([inst.server_row[run["server"].to_numpy(int)],
                           inst.server_row[assign[placed]]]).astype(int)
    total = max(1, gpus.sum())
    phi = gpus[kinds == "iaas"].sum() / total
    iaas = np.bincount(rows[kinds == "iaas"], gpus[kinds == "iaas"], minlength=inst.n_rows)
    saas = np.bincount(rows[kinds == "saas"], gpus[kinds == "saas"], minlength=inst.n_rows)
    balance = float(np.abs((1 - phi) * iaas - phi * saas).sum() / total)
    # Spread: per endpoint with pending VMs, the largest share of its VMs in one row.
    spread_vals = []
    endpoints = pd.Series(inst.vm_endpoint).dropna().unique()
    ep_all = np.concatenate([run["endpoint"].to_numpy(object), inst.vm_endpoint[placed]])
    for ep in endpoints:
        mask = ep_all == ep
        if mask.sum():
            spread_vals.append(np.bincount(rows[mask], minlength=inst.n_rows).max() / mask.sum())
    spread = float(np.mean(spread_vals)) if spread_vals else 0.0
    # Thermal preference: IaaS on cool servers, SaaS on warm ones.
    warmth = server_warmth(inst) if warmth is None else warmth
    pv = np.flatnonzero(placed)
    if len(pv):
        w = warmth[assign[pv]]
        pref = np.where(inst.vm_kind[pv] == "iaas", w, 1.0 - w)
        thermal_pref = float(pref.mean())
    else:
        thermal_pref = 0.0
    # Fragmentation: GPUs left stranded on partly used servers, over the GPUs free before.
    used_new = np.bincount(assign[placed], inst.vm_gpus[placed], minlength=inst.n_servers)
    free_after = inst.free_gpus - used_new
    partial = (free_after > 0) & (free_after < inst.params.gpus)
    fragmentation = float(free_after[partial].sum() / max(1, inst.free_gpus.sum()))
    return SoftTerms(balance, spread, thermal_pref, fragmentation)


def evaluate_assignment(instance: PlacementInstance, assign: np.ndarray,
                        warmth: np.ndarray | None = None) -> Evaluation:
    """Score an assignment (server index per pending VM, -1 = unplaced) with physics alone."""
    inst = instance
    assign = np.asarray(assign, dtype=int)
    p = inst.params
    placed = np.flatnonzero(assign >= 0)
    srv = assign[placed]
    n_t = inst.n_slots

    run_srv = inst.running["server"].to_numpy(int)
    run_gpus = inst.running["gpus"].to_numpy(int)
    server_kw, server_cfm = server_series(p, n_t, [(run_srv, run_gpus, inst.running_load),
                                                   (srv, inst.vm_gpus[placed], inst.vm_load[placed])])
    aisle_of_server = inst.row_aisle[inst.server_row]
    row_kw = sum_by(inst.server_row, server_kw, inst.n_rows)
    aisle_cfm = sum_by(aisle_of_server, server_cfm, len(inst.aisle_ids))
    aisle_kw = sum_by(aisle_of_server, server_kw, len(inst.aisle_ids))

    # Hot-air recirculation where an aisle needs more air than its AHU supplies.
    rise = physics.recirculation_rise_c(aisle_cfm, inst.aisle_limit_cfm[:, None], aisle_kw)

    def peak_temps(loads, servers):
        if len(servers) == 0:
            return np.zeros(0), np.zeros(0, int)
        inlet = inst.inlet_c(servers) + rise[aisle_of_server[servers]]
        t = p.gpu_temp_c(loads, inlet, servers[:, None])
        return t.max(axis=1), t.argmax(axis=1)

    vm_peak = np.full(inst.n_vms, np.nan)
    vm_slot = np.full(inst.n_vms, -1)
    vm_peak[placed], vm_slot[placed] = peak_temps(inst.vm_load[placed], srv)
    run_peak, _ = peak_temps(inst.running_load, run_srv)

    violations = _violations(inst, assign, row_kw, aisle_cfm, vm_peak, vm_slot)
    soft = soft_terms(inst, assign, warmth)
    opts = inst.options
    peak_norm = float((row_kw / inst.row_limit_kw[:, None]).max()) if row_kw.size else 0.0
    temps = np.concatenate([vm_peak[placed], run_peak])
    peak_t = float(temps.max()) if temps.size else 0.0
    placed_t = float(vm_peak[placed].max()) if len(placed) else 0.0
    objective = (opts.power_weight * peak_norm + opts.temp_weight * peak_t / inst.temp_limit_c
                 + opts.placed_temp_weight * placed_t / inst.temp_limit_c + soft.weighted(opts))
    return Evaluation(assign, inst.row_limit_kw, row_kw, aisle_cfm, server_kw, vm_peak, vm_slot,
                      run_peak, soft, objective, violations)


def _limit_violation(code: str, subject: str, t: int, value: float, running_alone: float, limit: float, tol: float,
                     unit: str, fmt: str, what: str, slot_label: str, time) -> Violation:
    """A row power or aisle airflow limit broken at slot t: ``code`` when the plan breaks it,
    ``code_preexisting`` when the running VMs alone already do and the plan adds nothing."""
    message = f"{what} {value:{fmt}} {unit} > {limit:{fmt}} {unit} at {slot_label} ({time})"
    if running_alone <= limit + tol:
        return Violation(code, subject, t, value, limit, message)
    if value <= running_alone + tol:
        return Violation(f"{code}_preexisting", subject, t, value, limit, message)
    return Violation(code, subject, t, value, limit,
                     f"{message}: the plan adds {value - running_alone:{fmt}} {unit} where the running VMs "
                     f"alone already exceed the limit ({running_alone:{fmt}} {unit})")


def _violations(inst: PlacementInstance, assign, row_kw, aisle_cfm, vm_peak, vm_slot) -> list[Violation]:
    out: list[Violation] = []
    placed = assign >= 0
    used = np.bincount(assign[placed], inst.vm_gpus[placed], minlength=inst.n_servers)
    for s in np.flatnonzero(used > inst.free_gpus):
        total = int(used[s] + inst.params.gpus[s] - inst.free_gpus[s])
        given = ", ".join(str(v) for v in inst.vm_ids[np.flatnonzero(assign == s)][:5])
        here = inst.running.loc[inst.running["server"].to_numpy(int) == s, "vm_id"].astype(str)
        moved = [v.removesuffix("@new") for v in here if v in inst.moved_vm_ids][:5]
        why = f"{int(inst.params.gpus[s] - inst.free_gpus[s])} in use by running VMs"
        why += f" ({', '.join(moved)} moved here by the plan)" if moved else ""
        why += f"; placed here: {given}" if given else ""
        out.append(Violation("gpu_capacity", str(inst.server_ids[s]), None, total, inst.params.gpus[s],
                             f"server {inst.server_ids[s]} is given {total} GPUs, it has {int(inst.params.gpus[s])} "
                             f"({why})"))
    # A limit that running VMs break on their own is reported as pre-existing: no placement
    # of the pending VMs can repair it (they are kept out of that row or aisle). Whatever the
    # plan adds on top of such a breach is the plan's own violation.
    for r, t in zip(*np.nonzero(row_kw > inst.row_limit_kw[:, None] + TOL_KW)):
        out.append(_limit_violation("row_power", str(inst.row_ids[r]), int(t), row_kw[r, t], inst.preexisting_row_kw[r, t],
                                    inst.row_limit_kw[r], TOL_KW, "kW", ".1f",
                                    f"row {inst.row_ids[r]} draws", inst.slot_label(t), inst.horizon[t]))
    for a, t in zip(*np.nonzero(aisle_cfm > inst.aisle_limit_cfm[:, None] + TOL_CFM)):
        out.append(_limit_violation("aisle_airflow", str(inst.aisle_ids[a]), int(t), aisle_cfm[a, t],
                                    inst.preexisting_aisle_cfm[a, t], inst.aisle_limit_cfm[a], TOL_CFM, "CFM", ".0f",
                                    f"aisle {inst.aisle_ids[a]} needs", inst.slot_label(t), inst.horizon[t]))
    if len(inst.running):
        peaks = inst.running_peak_temp_c
        for i in np.flatnonzero(np.nan_to_num(peaks) > inst.temp_limit_c + TOL_C):
            vm_id, server = inst.running["vm_id"].iloc[i], int(inst.running["server"].iloc[i])
            if str(vm_id) in inst.moved_vm_ids:  # the plan put it there
                out.append(Violation("gpu_temperature", str(vm_id), None, float(peaks[i]), inst.temp_limit_c,
                                     f"moved VM {vm_id} on server {inst.server_ids[server]} reaches "
                                     f"{peaks[i]:.1f} C > {inst.temp_limit_c:.1f} C (forecast peak)"))
                continue
            out.append(Violation("gpu_temperature_preexisting", str(vm_id), None, float(peaks[i]), inst.temp_limit_c,
                                 f"running VM {vm_id} on server {inst.server_ids[server]} reaches "
                                 f"{peaks[i]:.1f} C > {inst.temp_limit_c:.1f} C (forecast peak) before any "
                                 f"placement: it throttles whatever is placed"))
    for v in np.flatnonzero(placed & (np.nan_to_num(vm_peak) > inst.temp_limit_c + TOL_C)):
        out.append(Violation("gpu_temperature", str(inst.vm_ids[v]), int(vm_slot[v]), vm_peak[v],
                             inst.temp_limit_c,
                             f"VM {inst.vm_ids[v]} on server {inst.server_ids[assign[v]]} reaches "
                             f"{vm_peak[v]:.1f} C > {inst.temp_limit_c:.1f} C at {inst.slot_label(vm_slot[v])}"))
    return out
