"""Score a scenario's plan: the pluggable "simulation" step of a what-if sweep.

Two evaluators (``settings.evaluator``):

``predicted`` (the default): the plan's *predicted* week, computed with the physics module from
the forecast profiles, no simulator. Clearly a forecast, not a simulation:

1. The placement policy places the pending VMs; it never breaks a limit at the planning quantile
   (p99 by default) and leaves VMs unplaced instead.
2. **Deploy all**: in a capacity study the added servers are installed and their VMs run anyway.
   Every VM the policy left unplaced is put on the server (with free GPUs) whose row's forecast
   peak grows least, ignoring limits; it is counted in ``vms_forced``. A VM that finds no free
   GPUs at all stays unplaced (``vms_unplaced``).
3. The week is scored at ``evaluate_quantile`` (p50 by default: the expected load) against the
   limits of every slot (failures applied in their window): a row-slot whose power exceeds its
   limit counts as **power-capped**; a VM-slot whose hottest GPU exceeds the GPU limit (inlet
   with hot-air recirculation where an aisle is short of airflow, heat waves added) counts its
   GPUs as **throttled**. Figures are demand figures: capping does not feed back into
   temperature (the simulator's convention for its peak metrics).

``simulator``: the discrete-time simulator (``tapas_opt.simulate``) runs the week at
``settings.sim_step_min`` with real traces (``settings.traces``, default ../shared/data) mapped
onto the VMs, the simulator policy ``settings.sim_policy`` and the failures as its events; the
table gets its summary's metrics. The traces replace the inventory's telemetry, so
``load_growth`` has no effect there (the scenario file check refuses the combination).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from tapas_opt import physics
from tapas_opt.errors import InventoryError, Problem
from tapas_opt.placement.evaluate import evaluate_assignment
from tapas_opt.placement.instance import PlacementInstance, build_instance
from tapas_opt.whatif.changes import FailureWindow

EVALUATOR_LABELS = {
    "predicted": "predicted week (forecast profiles + physics; not a simulation)",
    "simulator": "simulated week (tapas_opt.simulate)",
}
TOL = 1e-6


def deploy_remaining(inst: PlacementInstance, assign: np.ndarray) -> tuple[np.ndarray, int]:
    """Put every unplaced VM on the server whose row's forecast peak grows least, ignoring
    limits (largest VMs first); return the new assignment and how many VMs were forced."""
    assign = np.asarray(assign, int).copy()
    todo = np.flatnonzero(assign < 0)
    if len(todo) == 0:
        return assign, 0
    ev = evaluate_assignment(inst, assign)
    row_kw = ev.row_kw.copy()
    free = inst.free_gpus.astype(int).copy()
    placed = assign >= 0
    np.subtract.at(free, assign[placed], inst.vm_gpus[placed])
    hw_power = inst.vm_power_kw_by_hw  # [V, K, T]
    order = todo[np.argsort(-inst.vm_gpus[todo], kind="stable")]
    forced = 0
    for v in order:
        fits = np.flatnonzero(free >= inst.vm_gpus[v])
        if len(fits) == 0:
            continue
        rows = inst.server_row[fits]
        add = hw_power[v, inst.server_hw[fits]]  # [n, T]
        peak = ((row_kw[rows] + add) / inst.row_limit_kw[rows, None]).max(axis=1)
        k = int(np.argmin(peak))
        s = int(fits[k])
        assign[v] = s
        free[s] -= inst.vm_gpus[v]
        row_kw[inst.server_row[s]] += add[k]
        forced += 1
    return assign, forced


def failure_mask(window: FailureWindow | None, horizon: pd.DatetimeIndex, room_kw: np.ndarray) -> np.ndarray:
    """Slots inside the failure window (all False without failures)."""
    mask = np.zeros(len(horizon), dtype=bool)
    if window is None or not window.events:
        return mask
    if window.start_h is None:
        start = horizon[int(np.argmax(room_kw))].normalize()
    else:
        start = horizon[0] + pd.Timedelta(hours=float(window.start_h))
    end = horizon[-1] + pd.Timedelta(minutes=1) if window.hours is None else start + pd.Timedelta(hours=float(window.hours))
    mask[(horizon >= start) & (horizon < end)] = True
    if not mask.any():
        raise InventoryError([Problem("bad_value", "failures", f"the failure window ({start} for "
                                      f"{window.hours} h) covers no slot of the horizon {horizon[0]} .. {horizon[-1]}",
                                      "set failures.start_h within settings.horizon_h", column="start_h")])
    return mask


def _pct(num, den) -> float:
    return round(100.0 * float(num) / float(den), 4) if den else 0.0


def evaluate_predicted(prepared, solution, evaluate_quantile: str, window: FailureWindow | None) -> dict:
    """The predicted week of a plan (see the module docstring): metrics and per-row figures."""
    from tapas_opt.reconfig.events import apply_events, parse_events

    t0 = time.perf_counter()
    inst = prepared.instance
    assign, forced = deploy_remaining(inst, solution.assign)
    plan_ev = solution.evaluation
    if evaluate_quantile == inst.quantile:
        inst_e = inst
    else:
        inst_e = build_instance(prepared.inventory, prepared.profiles, inst.outside_c,
                                prepared.config.with_placement(quantile=evaluate_quantile))
    ev = evaluate_assignment(inst_e, assign)
    T = inst_e.n_slots
    mask = failure_mask(window, inst_e.horizon, ev.row_kw.sum(axis=0))
    row_limit = np.repeat(inst_e.row_limit_kw[:, None], T, axis=1)
    aisle_limit = np.repeat(inst_e.aisle_limit_cfm[:, None], T, axis=1)
    shift = np.zeros(T)
    if mask.any():
        lim = apply_events(parse_events(window.events, inst_e.aisle_ids), inst_e.row_ids, inst_e.row_limit_kw, inst_e.aisle_ids,
                           inst_e.aisle_limit_cfm)
        row_limit[:, mask] = lim.row_limit_kw[:, None]
        aisle_limit[:, mask] = lim.aisle_limit_cfm[:, None]
        shift[mask] = lim.outside_shift_c
    norm = ev.row_kw / row_limit
    capped = ev.row_kw > row_limit + TOL
    air = ev.aisle_cfm / aisle_limit
    # Temperatures per VM and slot: inlet (heat waves included) + recirculation + GPU power.
    p = inst_e.params
    aisle_of_server = inst_e.row_aisle[inst_e.server_row]
    aisle_kw = np.zeros_like(ev.aisle_cfm)
    np.add.at(aisle_kw, aisle_of_server, ev.server_kw)
    rise = physics.recirculation_rise_c(ev.aisle_cfm, aisle_limit, aisle_kw)
    base_inlet = physics.inlet_temp_c(inst_e.outside_c + shift, inst_e.room_load, prepared.config.inlet, 0.0)
    placed = np.flatnonzero(assign >= 0)
    servers = np.concatenate([inst_e.running["server"].to_numpy(int), assign[placed]])
    loads = np.vstack([inst_e.running_load, inst_e.vm_load[placed]])
    gpus = np.concatenate([inst_e.running["gpus"].to_numpy(int), inst_e.vm_gpus[placed]]).astype(float)
    if len(servers):
        inlet = base_inlet[None, :] + p.inlet_offset_c[servers][:, None] + rise[aisle_of_server[servers]]
        temps = p.gpu_temp_c(loads, inlet, servers[:, None])
        hot = temps > inst_e.temp_limit_c + TOL
        max_temp = float(temps.max())
        throttled_gpu_time = _pct((hot * gpus[:, None]).sum(), gpus.sum() * T)
        throttled_time = _pct(hot.any(axis=0).sum(), T)
    else:
        max_temp, throttled_gpu_time, throttled_time = float("nan"), 0.0, 0.0
    metrics = {
        "peak_row_power_fraction": round(float(norm.max()), 6),
        "max_gpu_temp_c": round(max_temp, 3),
        "max_gpu_temp_fraction": round(max_temp / inst_e.temp_limit_c, 6),
        "power_capped_row_time_pct": _pct(capped.sum(), capped.size),
        "power_capped_time_pct": _pct(capped.any(axis=0).sum(), T),
        "thermal_throttled_gpu_time_pct": throttled_gpu_time,
        "thermal_throttled_time_pct": throttled_time,
        "aisle_over_airflow_time_pct": _pct((air > 1 + TOL).sum(), air.size),
        "peak_aisle_airflow_fraction": round(float(air.max()), 6),
        "planned_peak_row_power_fraction": round(plan_ev.peak_row_power_norm, 6),
        "planned_max_gpu_temp_c": round(plan_ev.peak_temp_c, 3),
        "vms_pending": int(inst.n_vms),
        "vms_placed": int((solution.assign >= 0).sum()),
        "vms_forced": int(forced),
        "vms_unplaced": int((assign < 0).sum()),
        "failure_slots": int(mask.sum()),
        "evaluate_quantile": evaluate_quantile,
        "evaluate_s": round(time.perf_counter() - t0, 3),
    }
    rows = [{"row_id": str(inst_e.row_ids[r]), "limit_kw": round(float(inst_e.row_limit_kw[r]), 2),
             "peak_kw": round(float(ev.row_kw[r].max()), 2), "peak_fraction": round(float(norm[r].max()), 6),
             "capped_time_pct": _pct(capped[r].sum(), T),
             "servers": int((inst_e.server_row == r).sum())} for r in range(inst_e.n_rows)]
    return {"metrics": metrics, "rows": rows}


def evaluate_simulated(inventory, settings: dict, window: FailureWindow | None) -> dict:
    """Run the simulator (``tapas_opt.simulate``) on the changed inventory; its summary's metrics.

    Running VMs stay where they are (``preexisting="history"``); the pending ones are placed by
    the placement component of ``settings.sim_policy`` (tapas-opt's online greedy instead of the
    optimiser when ``settings.policy`` is not ``optimal``) and VMs it refuses are placed anyway
    where the forecast breaks limits least (the simulator's ``must_place``, as ``predicted``'s
    deploy-all).
    """
    from tapas_opt.simulate.policies import POLICIES as SIM_POLICIES
    from tapas_opt.simulate.run import run_policies
    from tapas_opt.simulate.scenario import DEFAULT_TRACES, ScenarioOptions, build_scenario

    t0 = time.perf_counter()
    policy = SIM_POLICIES[settings["sim_policy"]]
    placement_opts = {"time_limit_s": settings["time_limit_s"], "quantile": settings.get("quantile"), "workers": 1}
    opts = ScenarioOptions(step_min=int(settings["sim_step_min"]), preexisting="history", seed=int(settings["seed"]),
                           traces=settings.get("traces") or DEFAULT_TRACES,
                           events=tuple(window.events) if window else (),
                           event_start_h=window.start_h if window else None,
                           event_hours=window.hours if window else 24.0,
                           forecast_method=settings["forecast_method"],
                           placement={k: v for k, v in placement_opts.items() if v is not None})
    scenario = build_scenario(inventory, opts)
    run = run_policies(scenario, [policy], time_limit_s=settings["time_limit_s"], seed=int(settings["seed"]),
                       fast_placement=settings["policy"] != "optimal", must_place=True)
    s = run.summaries[0]
    vms = scenario.vms
    forced = int(s["placement"].get("placed_over_forecast_limits", 0) or 0)
    metrics = {
        "peak_row_power_fraction": s["peak_row_power_fraction"],
        "max_gpu_temp_c": s["max_gpu_temp_c"],
        "max_gpu_temp_fraction": s["max_gpu_temp_fraction"],
        "power_capped_row_time_pct": s["power_capped_row_time_pct"],
        "power_capped_time_pct": s["power_capped_time_pct"],
        "thermal_throttled_gpu_time_pct": s["thermal_throttled_gpu_time_pct"],
        "thermal_throttled_time_pct": s["thermal_throttled_time_pct"],
        "aisle_over_airflow_time_pct": s["aisle_over_airflow_time_pct"],
        "peak_aisle_airflow_fraction": s["peak_aisle_airflow_fraction"],
        "planned_peak_row_power_fraction": s["placement"]["forecast_peak_row_power_fraction"],
        "planned_max_gpu_temp_c": s["placement"]["forecast_max_gpu_temp_c"],
        "vms_pending": int((vms["fixed_server"] < 0).sum()),
        "vms_placed": int(s["vms"]["placed"] - (vms["fixed_server"] >= 0).sum() - forced),
        "vms_forced": forced,
        "vms_unplaced": int(s["vms"]["unplaced"]),
        "failure_slots": int(scenario.event_mask.sum()),
        "saas_goodput_pct": s["saas"]["goodput_pct"],
        "iaas_perf_lost_pct": s["iaas"]["perf_lost_pct"],
        "sim_policy": policy.name,
        "evaluate_s": round(time.perf_counter() - t0, 3),
    }
    inst = scenario.instance
    servers = {str(rid): int((inst.server_row == r).sum()) for r, rid in enumerate(inst.row_ids)}
    rows = [{"row_id": r["row_id"], "limit_kw": r["limit_kw"], "peak_kw": r["peak_kw"],
             "peak_fraction": r["peak_fraction"], "capped_time_pct": r["capped_pct"],
             "servers": servers[r["row_id"]]} for r in s["rows"]]
    return {"metrics": metrics, "rows": rows}
