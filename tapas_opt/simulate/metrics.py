"""Metrics of a simulated week: the summary of one policy, the side-by-side table, the tidy
time series.

Definitions (docs/simulation.md):

* ``peak_row_power_fraction``: max over rows and steps of the row's *demand* power (after the
  policy's routing and configuration, before capping and throttling) over its limit.
* ``room_power_fraction_peak``: max over steps of the room's demand power over the sum of the
  row limits: no placement or routing of the same load can bring the peak row power fraction
  below it (only reconfiguration, which changes the load, can).
* ``max_gpu_temp_c``: max over VMs and steps of the hottest-GPU temperature at the demand load
  (``_fraction``: over the GPU limit, the paper's "normalised to provisioned").
* ``iaas_gpu_temp_floor_c``: no policy that places every IaaS VM gets ``max_gpu_temp_c`` below
  it (:func:`iaas_gpu_temp_floor_c`), the temperature counterpart of ``room_power_fraction_peak``.
* ``power_capped_row_time_pct``: share of row-steps in which the row was power-capped;
  ``power_capped_time_pct``: share of steps in which any row was.
* ``thermal_throttled_gpu_time_pct``: share of busy GPU-steps (GPUs of placed, arrived VMs) in
  which the VM's hottest GPU was throttled; ``thermal_throttled_time_pct``: share of steps with
  any throttling.
* SaaS ``goodput_pct``: tokens served (after routing overflow, reconfiguration, capping,
  throttling and reloads) over tokens demanded; ``quality``: served-load-weighted quality of the
  configurations used (1 = the default's); both null when there is no SaaS demand (or nothing
  served). IaaS ``perf_lost_pct``: GPU work lost to capping and
  throttling over the work of placed IaaS VMs; ``unplaced_work_pct``: work of IaaS VMs the
  policy could not place.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tapas_opt import physics


def _present_vm_steps(vms: pd.DataFrame, which: np.ndarray, mask: np.ndarray) -> float:
    """VM-steps of the ``which`` VMs inside ``mask`` from their arrival on: the steps in which
    they run, so that a share of them is not diluted by VMs that have not arrived yet."""
    steps = np.flatnonzero(mask)
    arrival = vms["arrival_step"].to_numpy(int)[which]
    return float((len(steps) - np.searchsorted(steps, arrival, side="left")).sum())


def _pct(num, den) -> float:
    return round(100.0 * float(num) / float(den), 4) if den else 0.0


def iaas_gpu_temp_floor_c(scenario, mask: np.ndarray | None = None) -> float | None:
    """A lower bound on the week's max GPU temperature under any placement, routing or
    configuration that places every IaaS VM.

    An IaaS VM's load is its trace whatever the policy, and it stays on one server; the inlet is
    at least the model's inlet at the room load of the IaaS VMs alone (the inlet rises with room
    load, recirculation only adds). So each IaaS VM reaches at least ``min over servers of max
    over its steps`` of the physics module's hottest-GPU temperature, and the room's maximum is
    at least the largest of these. Servers enter by thermal class (GPU power range, intercept,
    slope) with the class's coolest inlet offset.

    The hottest-GPU temperature rises with the inlet and with g(u), the share of the GPU's power
    range drawn, on every server whose slope and range are not negative (the inventory's bounds). So a step whose inlet and g(u) are both at most another's is
    never a VM's hottest anywhere, and only each VM's other steps (its Pareto front in
    (g(u), inlet), a few dozen of 2,016) are evaluated on every class: the same bound, 100x
    cheaper than every step on every class (10 s of a 1,000-server week)."""
    inst, vms = scenario.instance, scenario.vms
    iaas = np.flatnonzero(vms["kind"].to_numpy(str) != "saas")
    if len(iaas) == 0:
        return None
    T = len(scenario.times)
    steps = np.arange(T)
    m = np.ones(T, bool) if mask is None else np.asarray(mask, bool)
    arrived = (vms["arrival_step"].to_numpy(int)[iaas, None] <= steps[None, :]) & m[None, :]
    u = np.nan_to_num(scenario.vm_load[iaas]) * arrived
    p = inst.params
    k = vms["gpus"].to_numpy(float)[iaas]
    room = physics.room_load(u, k, int(p.gpus.sum()))
    base = physics.inlet_temp_c(scenario.outside_c + scenario.outside_shift_c, room,
                                scenario.prepared.config.inlet)
    classes = pd.DataFrame({"idle": p.gpu_idle_w, "max": p.gpu_max_w, "a": p.temp_intercept_c,
                            "b": p.temp_c_per_w, "offset": p.inlet_offset_c})
    coolest = classes.groupby(["idle", "max", "a", "b"], sort=True)["offset"].min().reset_index()
    col = {c: coolest[c].to_numpy(float)[:, None] for c in coolest.columns}
    rising = (col["b"] >= 0).all() and (col["max"] >= col["idle"]).all()   # (else every step is a candidate)
    candidates = (_hottest_candidates(physics.power_fraction(u, p.poly), base, arrived) if rising
                  else [np.flatnonzero(row) for row in arrived])
    per_vm = []
    for v, steps_v in enumerate(candidates):
        if len(steps_v):
            watts = physics.gpu_power_w(u[v, steps_v][None, :], col["idle"], col["max"], p.poly)
            temp = physics.gpu_temp_c(base[steps_v][None, :] + col["offset"], watts, col["a"], col["b"])
            per_vm.append(temp.max(axis=1).min())
    return round(float(max(per_vm)), 3) if per_vm else None


def _hottest_candidates(g: np.ndarray, inlet: np.ndarray, arrived: np.ndarray) -> list[np.ndarray]:
    """Per row of ``g`` [V, T], the steps of ``arrived`` on the Pareto front of (g, inlet): no
    other arrived step has both at least as high and one higher. Ties are kept (a superset of
    the front is as good)."""
    order = np.argsort(np.where(arrived, -g, np.inf), axis=1, kind="stable")   # highest g first
    inlet_sorted = inlet[order]
    best_before = np.maximum.accumulate(inlet_sorted, axis=1)
    keep = np.ones_like(arrived)
    keep[:, 1:] = inlet_sorted[:, 1:] > best_before[:, :-1]
    keep &= np.take_along_axis(arrived, order, axis=1)
    return [order[v, keep[v]] for v in range(len(g))]


def _max_or_none(values: np.ndarray) -> float | None:
    """The largest finite value (3 decimals), or None if there is none."""
    finite = values[np.isfinite(values)]
    return round(float(finite.max()), 3) if finite.size else None


def summarise(result, scenario, placement, policy, mask: np.ndarray | None = None,
              temp_floor_c: float | None = None) -> dict:
    """The summary of one policy's run; ``mask`` restricts it to some steps (an event window).

    ``temp_floor_c``: :func:`iaas_gpu_temp_floor_c` of the scenario and mask, when the caller
    has it (it is the same for every policy); computed here otherwise."""
    T = len(result.times)
    m = np.ones(T, bool) if mask is None else np.asarray(mask, bool)
    st = {k: v[m] for k, v in result.step.items()}
    norm = result.row_kw[:, m] / result.row_limit_kw[:, m]
    norm_del = result.row_kw_delivered[:, m] / result.row_limit_kw[:, m]
    r, t = np.unravel_index(int(np.argmax(norm)), norm.shape)
    times = result.times[m]
    air = result.aisle_cfm[:, m] / result.aisle_limit_cfm[:, m]
    temps = st["max_gpu_temp_c"]
    t_lim = float(scenario.instance.temp_limit_c)
    hot_t = int(np.argmax(temps))
    vms = scenario.vms
    hv = int(np.argmax(result.vm_peak_temp_c)) if mask is None else None
    saas_dem, iaas_dem = st["saas_demand"].sum(), st["iaas_demand"].sum()
    served = st["saas_served"].sum()
    kinds = vms["kind"].to_numpy(str)
    placed = placement.server >= 0
    s_mask = kinds == "saas"
    out = {
        "policy": policy.name,
        "components": {"placement": policy.placement, "routing": policy.route, "configuration": policy.config,
                       "power_capping": policy.capping},
        "steps": int(m.sum()),
        "peak_row_power_fraction": round(float(norm.max()), 4),
        "peak_row_power_fraction_delivered": round(float(norm_del.max()), 4),
        "room_power_fraction_peak": round(float((result.row_kw[:, m].sum(0) / result.row_limit_kw[:, m].sum(0)).max()), 4),
        "peak_row_power_at": {"row": str(result.row_ids[r]), "time": str(times[t]),
                              "kw": round(float(result.row_kw[:, m][r, t]), 2),
                              "limit_kw": round(float(result.row_limit_kw[:, m][r, t]), 2)},
        "max_gpu_temp_c": round(float(temps.max()), 3),
        "iaas_gpu_temp_floor_c": iaas_gpu_temp_floor_c(scenario, m) if temp_floor_c is None else temp_floor_c,
        "max_gpu_temp_fraction": round(float(temps.max()) / t_lim, 4),
        "max_gpu_temp_at": str(times[hot_t]),
        "max_gpu_temp_delivered_c": round(float(st["max_gpu_temp_delivered_c"].max()), 3),
        "power_capped_row_time_pct": _pct(result.row_capped[:, m].sum(), result.row_capped[:, m].size),
        "power_capped_time_pct": _pct(result.row_capped[:, m].any(axis=0).sum(), m.sum()),
        "over_limit_after_capping_row_time_pct": _pct(result.row_over_after_cap[:, m].sum(), result.row_capped[:, m].size),
        "thermal_throttled_gpu_time_pct": _pct(st["throttled_gpus"].sum(), st["busy_gpus"].sum()),
        "thermal_throttled_time_pct": _pct((st["throttled_vms"] > 0).sum(), m.sum()),
        "aisle_over_airflow_time_pct": _pct((air > 1 + 1e-9).sum(), air.size),
        "peak_aisle_airflow_fraction": round(float(air.max()), 4),
        "max_recirculation_rise_c": round(float(result.aisle_rise_c[:, m].max()), 3),
        "saas": {
            # Without SaaS demand (or nothing served) these are 0/0: null, not a perfect score.
            "goodput_pct": _pct(served, saas_dem) if saas_dem else None,
            "routed_pct": _pct(st["saas_routed"].sum(), saas_dem) if saas_dem else None,
            "quality": round(float(st["saas_quality_served"].sum() / served), 5) if served else None,
            "served_by_smaller_or_quantised_pct": _pct(st["saas_smaller_or_quantised"].sum(), served) if served else None,
            "reconfigured_vm_time_pct": _pct(st["reconfigured_vms"].sum(),
                                             max(1.0, _present_vm_steps(vms, s_mask & placed, m))),
            "reloads": int(st["reloads"].sum()),
        },
        "iaas": {
            "perf_lost_pct": _pct(iaas_dem - st["iaas_delivered"].sum(), iaas_dem) if iaas_dem else 0.0,
            "unplaced_work_pct": _pct(st["iaas_unplaced_demand"].sum(), iaas_dem + st["iaas_unplaced_demand"].sum())
            if iaas_dem + st["iaas_unplaced_demand"].sum() else 0.0,
        },
        "vms": {"simulated": int(len(vms)), "placed": int(placed.sum()), "unplaced": int((~placed).sum()),
                "placed_over_forecast_limits": int(placement.stats.get("placed_over_forecast_limits", 0)),
                "unplaced_saas": int((~placed & s_mask).sum()), "unplaced_iaas": int((~placed & ~s_mask).sum())},
    }
    if hv is not None and np.isfinite(result.vm_peak_temp_c[hv]):
        out["hottest_vm"] = {"vm_id": str(vms.at[hv, "vm_id"]), "kind": str(vms.at[hv, "kind"]),
                             "server_id": str(scenario.instance.server_ids[placement.server[hv]]),
                             "peak_gpu_temp_c": round(float(result.vm_peak_temp_c[hv]), 3)}
        out["max_gpu_temp_by_kind_c"] = {kind: _max_or_none(result.vm_peak_temp_c[(kinds == kind) & placed])
                                         for kind in ("iaas", "saas")}
    # Per row and aisle, the step where it is nearest its limit (or furthest over), with the
    # draw and the limit of that step: under an event the limit changes, and the week's largest
    # draw (max_kw, max_cfm) may fall outside the event, against the normal limit.
    row_kw, row_lim = result.row_kw[:, m], result.row_limit_kw[:, m]
    aisle_cfm, aisle_lim = result.aisle_cfm[:, m], result.aisle_limit_cfm[:, m]
    at_r, at_a = np.argmax(norm, axis=1), np.argmax(air, axis=1)
    out["rows"] = [{"row_id": str(result.row_ids[j]), "limit_kw": round(float(row_lim[j, at_r[j]]), 2),
                    "peak_kw": round(float(row_kw[j, at_r[j]]), 2), "max_kw": round(float(row_kw[j].max()), 2),
                    "peak_fraction": round(float(norm[j, at_r[j]]), 4), "at": str(times[int(at_r[j])]),
                    "capped_pct": _pct(result.row_capped[j, m].sum(), m.sum())} for j in range(len(result.row_ids))]
    out["aisles"] = [{"aisle_id": str(result.aisle_ids[j]), "limit_cfm": round(float(aisle_lim[j, at_a[j]]), 1),
                      "peak_cfm": round(float(aisle_cfm[j, at_a[j]]), 1), "max_cfm": round(float(aisle_cfm[j].max()), 1),
                      "peak_fraction": round(float(air[j, at_a[j]]), 4), "at": str(times[int(at_a[j])]),
                      "over_pct": _pct((air[j] > 1 + 1e-9).sum(), m.sum()),
                      "max_recirculation_rise_c": round(float(result.aisle_rise_c[j, m].max()), 3)}
                     for j in range(len(result.aisle_ids))]
    out["placement"] = {"method": placement.method, "solve_time_s": round(placement.solve_time_s, 2),
                        "forecast_peak_row_power_fraction": round(placement.forecast_peak_row_power, 4),
                        "forecast_max_gpu_temp_c": round(placement.forecast_max_gpu_temp_c, 3),
                        "unplaced": placement.unplaced[:50], **placement.stats}
    out["timing"] = {"placement_s": round(placement.solve_time_s, 2), "engine_s": round(result.engine_time_s, 2)}
    return out


TABLE_COLUMNS = ["policy", "peak_row_power", "peak_row_power_change_pct", "max_gpu_temp_c", "max_gpu_temp_norm",
                 "max_gpu_temp_change_pct", "power_capped_row_time_pct", "power_capped_time_pct",
                 "thermal_throttled_gpu_time_pct", "saas_goodput_pct", "saas_quality", "iaas_perf_lost_pct",
                 "vms_unplaced"]


def comparison_table(summaries: list[dict], reference: str = "baseline") -> pd.DataFrame:
    """The side-by-side table (TAPAS.md section 5): one line per policy, changes vs ``reference``."""
    ref = next((s for s in summaries if s["policy"] == reference), None)
    rows = []
    for s in summaries:
        p, t = s["peak_row_power_fraction"], s["max_gpu_temp_fraction"]
        rows.append({
            "policy": s["policy"], "peak_row_power": p,
            "peak_row_power_change_pct": round(100 * (p / ref["peak_row_power_fraction"] - 1), 2) if ref else np.nan,
            "max_gpu_temp_c": s["max_gpu_temp_c"], "max_gpu_temp_norm": t,
            "max_gpu_temp_change_pct": round(100 * (t / ref["max_gpu_temp_fraction"] - 1), 2) if ref else np.nan,
            "power_capped_row_time_pct": s["power_capped_row_time_pct"],
            "power_capped_time_pct": s["power_capped_time_pct"],
            "thermal_throttled_gpu_time_pct": s["thermal_throttled_gpu_time_pct"],
            "saas_goodput_pct": s["saas"]["goodput_pct"], "saas_quality": s["saas"]["quality"],
            "iaas_perf_lost_pct": s["iaas"]["perf_lost_pct"], "vms_unplaced": s["vms"]["unplaced"],
        })
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


ROW_METRICS = (("power_kw", "row_kw"), ("power_delivered_kw", "row_kw_delivered"), ("limit_kw", "row_limit_kw"),
               ("capped", "row_capped"))
AISLE_METRICS = (("airflow_cfm", "aisle_cfm"), ("airflow_delivered_cfm", "aisle_cfm_delivered"),
                 ("limit_cfm", "aisle_limit_cfm"), ("recirculation_rise_c", "aisle_rise_c"))


def timeseries_frame(result) -> pd.DataFrame:
    """Tidy time series: ``policy, timestamp, scope (row|aisle|room), id, metric, value``."""
    T = len(result.times)
    parts = []

    def block(scope, ids, metric, values):
        values = np.asarray(values, float).reshape(len(ids), T)
        parts.append(pd.DataFrame({
            "timestamp": np.tile(result.times.to_numpy(), len(ids)), "scope": scope,
            "id": np.repeat(np.asarray(ids, dtype=object), T), "metric": metric, "value": values.reshape(-1)}))

    for metric, attr in ROW_METRICS:
        block("row", result.row_ids, metric, getattr(result, attr))
    for metric, attr in AISLE_METRICS:
        block("aisle", result.aisle_ids, metric, getattr(result, attr))
    for metric, values in result.step.items():
        block("room", ["room"], metric, values[None, :])
    out = pd.concat(parts, ignore_index=True)
    out.insert(0, "policy", result.policy)
    for col in ("policy", "scope", "id", "metric"):
        out[col] = out[col].astype("category")
    return out
