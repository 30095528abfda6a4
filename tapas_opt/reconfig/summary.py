"""What a reconfiguration plan costs and does, in tables and a summary, and writing them.

Outputs (docs/reconfiguration.md, 'Outputs'): ``configs.csv`` (one row per SaaS VM),
``routing.csv`` (each endpoint's load share per VM), ``caps.csv`` (power caps, usually none)
and ``summary.json``. The directory is written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tapas_opt import physics
from tapas_opt.io import atomic_directory, write_json
from tapas_opt.reconfig.evaluate import ReconfigEvaluation, check_plan, saas_physics
from tapas_opt.reconfig.instance import ReconfigInstance
from tapas_opt.reconfig.plan import ReconfigPlan
from tapas_opt.reconfig.routing import endpoint_shares

CAP_TOL = 1e-9


def configs_table(instance: ReconfigInstance, plan: ReconfigPlan, ev: ReconfigEvaluation) -> pd.DataFrame:
    """One row per SaaS VM: its configuration and knobs, load, capacity, power and temperature."""
    s, c = instance.saas, instance.cfg
    cfg = np.asarray(plan.saas_config, int)
    cur = s["current"].to_numpy(int)
    sp = saas_physics(instance, plan)
    p = instance.params
    srv = s["server"].to_numpy(int)
    idle_share = s["gpus"].to_numpy(float) / p.gpus[srv] * p.idle_kw[srv]
    default_tput = pd.Series(instance.catalogue.configs["throughput_tok_s"].to_numpy()[list(instance.catalogue.default_of.values())],
                             index=list(instance.catalogue.default_of.keys()))
    tok_per_unit = s["family"].map(default_tput).to_numpy(float) / 8.0
    demand = instance.endpoint_demand[instance.saas_endpoint_idx]
    return pd.DataFrame({
        "vm_id": s["vm_id"], "endpoint": s["endpoint"], "family": s["family"],
        "config_id": c["config_id"][cfg], "previous_config_id": c["config_id"][cur],
        "model": c["model"][cfg], "size": c["size"][cfg], "precision": c["precision"][cfg], "tp": c["tp"][cfg],
        "replicas": c["replicas"][cfg], "max_batch": c["max_batch"][cfg],
        "power_level": np.round(c["level_ratio"][cfg] * plan.clock(len(s)), 4),
        "tbt_ms": np.round(sp["tbt_ms"], 2),
        "reload": c["reload_key"][cfg] != c["reload_key"][cur],
        "share": np.round(np.where(demand > 0, np.asarray(plan.saas_load) / np.maximum(demand, 1e-12),
                                   endpoint_shares(instance, plan.saas_load)), 6),
        "load_units": np.round(plan.saas_load, 6), "capacity_units": np.round(sp["capacity"], 6),
        "predicted_power_kw": np.round(idle_share + sp["kw"], 4),
        "throughput_tok_s": np.round(sp["capacity"] * tok_per_unit, 1),
        "served_tok_s": np.round(np.asarray(plan.saas_load) * tok_per_unit, 1),
        "gpu_temp_c": np.round(ev.saas_temp_c, 2), "quality": c["quality"][cfg],
    })


def routing_table(instance: ReconfigInstance, loads: np.ndarray) -> pd.DataFrame:
    """``endpoint, vm_id, share``: each endpoint's load split over its VMs (shares sum to 1)."""
    s = instance.saas
    share = endpoint_shares(instance, loads)
    return pd.DataFrame({"endpoint": s["endpoint"], "vm_id": s["vm_id"], "share": np.round(share, 6)})


def iaas_cap(instance: ReconfigInstance, i: int, load: float) -> tuple[float, float]:
    """The caps of IaaS VM ``i`` (instance order) whose GPUs may run up to ``load``: the VM's
    power in kW (with its share of its server's idle power) and one GPU's power in W, as
    caps.csv gives them beside ``load_after``."""
    p = instance.params
    s = int(instance.iaas.at[i, "server"])
    k = float(instance.iaas.at[i, "gpus"])
    kw = k / p.gpus[s] * p.idle_kw[s] + float(p.vm_power_kw(load, k, s))
    return kw, float(physics.gpu_power_w(load, p.gpu_idle_w[s], p.gpu_max_w[s], p.poly))


def caps_table(instance: ReconfigInstance, plan: ReconfigPlan) -> pd.DataFrame:
    """Power caps: IaaS VMs whose GPU load the plan lowers (and, for the uniform cap, SaaS VMs),
    with the VM's power cap in kW, the GPU power limit in W and the performance kept."""
    p = instance.params
    rows = []
    iaas = instance.iaas
    new = np.asarray(plan.iaas_load, float)
    for i in np.flatnonzero(new < iaas["load"].to_numpy(float) - CAP_TOL):
        s = int(iaas.at[i, "server"])
        k = float(iaas.at[i, "gpus"])
        u0 = float(iaas.at[i, "load"])
        kw, gpu_w = iaas_cap(instance, i, new[i])
        dyn_ratio = float(physics.power_fraction(new[i], p.poly) / max(physics.power_fraction(u0, p.poly), 1e-12))
        rows.append({"vm_id": iaas.at[i, "vm_id"], "kind": "iaas", "server_id": instance.server_ids[s], "gpus": int(k),
                     "power_cap_kw": round(kw, 4), "gpu_power_cap_w": round(gpu_w, 1),
                     "load_before": round(u0, 4), "load_after": round(float(new[i]), 4),
                     "perf_fraction": round(float(physics.throughput_fraction_at_power(dyn_ratio, instance.cap_alpha)), 4)})
    if plan.saas_clock is not None and plan.policy == "uniform-cap":
        sp = saas_physics(instance, plan)
        s_df = instance.saas
        for v in np.flatnonzero(np.asarray(plan.saas_clock) < 1 - CAP_TOL):
            s = int(s_df.at[v, "server"])
            k = float(s_df.at[v, "gpus"])
            rows.append({"vm_id": s_df.at[v, "vm_id"], "kind": "saas", "server_id": instance.server_ids[s], "gpus": int(k),
                         "power_cap_kw": round(k / p.gpus[s] * p.idle_kw[s] + float(sp["kw"][v]), 4),
                         "gpu_power_cap_w": round(float(physics.gpu_power_w(sp["gpu_load"][v], p.gpu_idle_w[s], p.gpu_max_w[s], p.poly)), 1),
                         "load_before": round(float(s_df.at[v, "load"]), 4), "load_after": round(float(sp["gpu_load"][v]), 4),
                         "perf_fraction": round(float(sp["speed"][v]), 4)})
    cols = ["vm_id", "kind", "server_id", "gpus", "power_cap_kw", "gpu_power_cap_w", "load_before", "load_after", "perf_fraction"]
    return pd.DataFrame(rows, columns=cols)


def saas_metrics(instance: ReconfigInstance, plan: ReconfigPlan, ev: ReconfigEvaluation) -> dict:
    """Quality loss, the paper's metric, speed and served load of the SaaS VMs."""
    c = instance.cfg
    demand = instance.total_demand
    cfg = np.asarray(plan.saas_config, int)
    cur = instance.saas["current"].to_numpy(int)
    load = np.asarray(plan.saas_load, float)
    d0 = instance.saas["demand"].to_numpy(float)
    speed = c["speed_ratio"][cfg] * saas_physics(instance, plan)["speed"]
    speed0 = float((d0 * c["speed_ratio"][cur]).sum() / max(demand, 1e-12))
    served = float(load.sum())
    missing = [str(instance.endpoints[e]) for e in np.flatnonzero(ev.served < ev.demand * (1 - 1e-6) - 1e-5)]
    # kept in a configuration that already missed its SLO (a warning, not the event's doing)
    kept_slow = (cfg == cur) & ~c["slo_ok"][cfg].astype(bool)
    if demand <= 1e-12:  # no SaaS load at this slot: nothing to lose, nothing left unserved
        return {"vms": int(len(load)), "endpoints": int(len(instance.endpoints)), "demand_units": 0.0,
                "served_units": 0.0, "served_pct": 100.0, "quality_loss_pct": 0.0, "quality_loss_pct_before": 0.0,
                "smaller_or_quantised_share_pct": 0.0, "speed_change_pct": 0.0, "perf_change_pct": 0.0,
                "endpoints_missing_slo": len(missing), "endpoints_missing_slo_list": missing[:50],
                "vms_kept_over_slo": 0}
    return {
        "vms": int(len(load)), "endpoints": int(len(instance.endpoints)),
        "demand_units": round(demand, 4), "served_units": round(served, 4),
        "served_pct": round(100.0 * served / max(demand, 1e-12), 3),
        "quality_loss_pct": round(100.0 * float((load * (1 - c["quality"][cfg])).sum()) / max(demand, 1e-12), 3),
        "quality_loss_pct_before": round(100.0 * float((d0 * (1 - c["quality"][cur])).sum()) / max(demand, 1e-12), 3),
        "smaller_or_quantised_share_pct": round(100.0 * float(load[c["quantised_or_smaller"][cfg]].sum()) / max(served, 1e-12), 3),
        "speed_change_pct": round(100.0 * (float((load * speed).sum()) / max(served, 1e-12) / max(speed0, 1e-12) - 1), 3),
        "perf_change_pct": round(100.0 * (float((load * speed).sum()) / max(demand * speed0, 1e-12) - 1), 3),
        "endpoints_missing_slo": len(missing), "endpoints_missing_slo_list": missing[:50],
        "vms_kept_over_slo": int((kept_slow & (load > 1e-9)).sum()),
    }


def iaas_metrics(instance: ReconfigInstance, plan: ReconfigPlan) -> dict:
    """How many IaaS VMs are capped and what that costs in IaaS performance (GPU-weighted)."""
    iaas = instance.iaas
    if len(iaas) == 0:
        return {"vms": 0, "capped_vms": 0, "perf_change_pct": 0.0, "capped_kw": 0.0}
    u0 = iaas["load"].to_numpy(float)
    u1 = np.asarray(plan.iaas_load, float)
    poly = instance.params.poly
    ratio = physics.power_fraction(u1, poly) / np.maximum(physics.power_fraction(u0, poly), 1e-12)
    perf = np.where(u0 > 0, physics.throughput_fraction_at_power(ratio, instance.cap_alpha), 1.0)
    w = u0 * iaas["gpus"].to_numpy(float)
    kw = (iaas["kw_unit"].to_numpy(float) * iaas["gpus"].to_numpy(float) * (u0 - u1)).sum()
    return {"vms": int(len(iaas)), "capped_vms": int((u1 < u0 - CAP_TOL).sum()),
            "perf_change_pct": round(100.0 * float(((perf - 1) * w).sum() / max(w.sum(), 1e-12)), 3),
            "capped_kw": round(float(kw), 3)}


def reconfig_metrics(instance: ReconfigInstance, plan: ReconfigPlan) -> dict:
    c = instance.cfg
    cfg = np.asarray(plan.saas_config, int)
    cur = instance.saas["current"].to_numpy(int)
    reload = c["reload_key"][cfg] != c["reload_key"][cur]
    same = (cfg == cur) & (plan.clock(len(cfg)) >= 1.0 - 1e-9)
    change = ~same & ~reload
    return {"reloads": int(reload.sum()), "online_changes": int(change.sum()),
            "unchanged": int(same.sum()), "reload_s": instance.options.reload_s,
            "out_of_rotation_instance_s": round(float(reload.sum() * instance.options.reload_s), 1)}


def limits_report(instance: ReconfigInstance, before: ReconfigEvaluation, unchanged: ReconfigEvaluation,
                  after: ReconfigEvaluation) -> dict:
    """Every row and aisle: limit and draw before the event, with no action, and with the plan."""
    rows = [{"row_id": str(instance.row_ids[r]), "limit_kw_before": round(float(instance.row_limit_kw_before[r]), 3),
             "kw_before": round(float(before.row_kw[r]), 3), "limit_kw": round(float(instance.row_limit_kw[r]), 3),
             "kw_if_unchanged": round(float(unchanged.row_kw[r]), 3), "kw_after": round(float(after.row_kw[r]), 3)}
            for r in range(instance.n_rows)]
    aisles = [{"aisle_id": str(instance.aisle_ids[a]), "limit_cfm_before": round(float(instance.aisle_limit_cfm_before[a]), 1),
               "cfm_before": round(float(before.aisle_cfm[a]), 1), "limit_cfm": round(float(instance.aisle_limit_cfm[a]), 1),
               "cfm_if_unchanged": round(float(unchanged.aisle_cfm[a]), 1), "cfm_after": round(float(after.aisle_cfm[a]), 1)}
              for a in range(instance.n_aisles)]

    def trio(attr):
        return {"before": round(getattr(before, attr), 4), "if_unchanged": round(getattr(unchanged, attr), 4),
                "after": round(getattr(after, attr), 4)}

    return {"peak_row_power_ratio": trio("peak_row_ratio"), "peak_aisle_airflow_ratio": trio("peak_aisle_ratio"),
            "max_gpu_temp_c": trio("max_temp_c"), "gpu_temp_limit_c": instance.temp_limit_c,
            "rows": rows, "aisles": aisles}


def build_summary(instance: ReconfigInstance, plan: ReconfigPlan, after: ReconfigEvaluation, optimal=None) -> dict:
    """The summary.json of a plan (see docs/reconfiguration.md, 'Outputs')."""
    unchanged_plan = ReconfigPlan.unchanged(instance)
    before = check_plan(instance, unchanged_plan, before_event=True)
    unchanged = check_plan(instance, unchanged_plan)
    out = {
        "name": instance.name, "policy": plan.policy,
        "events": [{"event": e.text, "kind": e.kind, "target": e.target, "value": e.value, "description": e.describe()}
                   for e in instance.events],
        "time": instance.time.isoformat(), "slot": instance.slot, "quantile": instance.options.quantile,
        "feasible": after.feasible,
        "status": "ok" if after.feasible else "infeasible",
        "saas": saas_metrics(instance, plan, after),
        "iaas": iaas_metrics(instance, plan),
        "reconfiguration": reconfig_metrics(instance, plan),
        "limits": limits_report(instance, before, unchanged, after),
        "violations_if_unchanged": unchanged.by_code(),
        "still_exceeded": [v.to_dict() for v in after.violations],
        "notes": list(plan.notes),
        "warnings": list(instance.warnings) + _solver_warnings(instance, optimal),
        "catalogue": instance.catalogue.path,
    }
    if optimal is not None:
        out["solver"] = {
            "method": optimal.method, "status": optimal.status,
            "objective": _r(optimal.objective), "lp_objective": _r(optimal.lp_objective),
            "gap_rel": _r(optimal.gap), "gap_abs": _r(optimal.gap_abs),
            "groups": optimal.n_groups, "columns": optimal.n_pairs, "columns_integral": optimal.n_pairs_integral,
            "build_s": round(optimal.build_s, 3), "lp_s": round(optimal.lp_s, 3), "mip_s": round(optimal.mip_s, 3),
            "max_nodes": instance.options.max_nodes, "polish_stopped_by": optimal.polish_stopped_by,
            "terms": {k: _r(v) for k, v in optimal.terms.items()},
            "lp_terms": {k: _r(v) for k, v in optimal.lp_terms.items()},
        }
    return out


def _solver_warnings(instance: ReconfigInstance, optimal) -> list[str]:
    """A plan is reproducible only when the polish stopped on its node limit or gap, not on the
    clock: say so when the clock stopped it."""
    if optimal is None or optimal.polish_stopped_by != "time":
        return []
    o = instance.options
    return [f"the integral polish was stopped by the {o.time_limit_s:g} s safety net before its "
            f"{o.max_nodes} nodes: on a faster or less loaded machine the plan may differ. For a "
            f"reproducible plan raise --time-limit (or lower the node limit)."]


def _r(x, digits: int = 6):
    return None if x is None else round(float(x), digits)


def write_outputs(out_dir: str | Path, instance: ReconfigInstance, plan: ReconfigPlan, ev: ReconfigEvaluation,
                  summary: dict) -> Path:
    """configs.csv, routing.csv, caps.csv, summary.json, written atomically."""
    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp:
        configs_table(instance, plan, ev).to_csv(tmp / "configs.csv", index=False)
        routing_table(instance, np.asarray(plan.saas_load, float)).to_csv(tmp / "routing.csv", index=False)
        caps_table(instance, plan).to_csv(tmp / "caps.csv", index=False)
        write_json(tmp / "summary.json", summary)
    return out_dir
