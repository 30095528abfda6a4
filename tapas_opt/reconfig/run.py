"""The Python API of reconfiguration and routing: what the CLI, benchmarks and notebooks call.

>>> from tapas_opt.reconfig.run import reconfigure
>>> result = reconfigure("room", events=["ups-failure"], out_dir="plan")    # doctest: +SKIP
>>> result.summary["saas"]["quality_loss_pct"]                               # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tapas_opt.errors import InventoryError, Problem
from tapas_opt.io import atomic_directory, write_json
from tapas_opt.reconfig.baselines import solve_greedy, solve_uniform_cap
from tapas_opt.reconfig.catalogue import Catalogue, load_catalogue
from tapas_opt.reconfig.evaluate import ReconfigEvaluation, check_plan
from tapas_opt.reconfig.events import parse_events
from tapas_opt.reconfig.instance import ReconfigInstance, ReconfigOptions, build_reconfig_instance
from tapas_opt.reconfig.model import OptimalResult, solve_optimal
from tapas_opt.reconfig.plan import ReconfigPlan
from tapas_opt.reconfig.routing import shares_frame, solve_routing_slot
from tapas_opt.reconfig.summary import build_summary, write_outputs

POLICIES = ("optimal", "greedy", "uniform-cap")


@dataclass
class ReconfigResult:
    instance: ReconfigInstance
    plan: ReconfigPlan
    evaluation: ReconfigEvaluation
    summary: dict
    optimal: OptimalResult | None = None
    out_dir: Path | None = None


def prepare_room(inventory, profiles_path=None, forecast_method: str = "auto"):
    """Load, forecast and build the placement instance, as :func:`tapas_opt.api.prepare` does,
    with the forecasting method chosen by name (``template`` is the paper's and fast)."""
    from tapas_opt.api import Prepared
    from tapas_opt.forecast.profiles import build_profiles, outside_forecast, read_profiles
    from tapas_opt.forecast.run import make_forecaster
    from tapas_opt.inventory.load import Inventory, load_inventory
    from tapas_opt.placement.instance import build_instance

    inv = inventory if isinstance(inventory, Inventory) else load_inventory(inventory)
    supplied = read_profiles(profiles_path, inv) if profiles_path else None
    profiles = build_profiles(inv, forecaster=make_forecaster(forecast_method, inv.config.time_step_min),
                              supplied=supplied)
    outside = outside_forecast(inv, profiles.horizon)
    return Prepared(inv, inv.config, profiles, build_instance(inv, profiles, outside, inv.config))


_prepare = prepare_room


def _catalogue(catalogue) -> Catalogue:
    return catalogue if isinstance(catalogue, Catalogue) else load_catalogue(catalogue)


def solve_policy(instance: ReconfigInstance, policy: str = "optimal") -> tuple[ReconfigPlan, OptimalResult | None]:
    """The plan of one policy (all on the same instance and plan type)."""
    if policy == "optimal":
        res = solve_optimal(instance)
        return res.plan, res
    if policy == "greedy":
        return solve_greedy(instance), None
    if policy == "uniform-cap":
        return solve_uniform_cap(instance), None
    raise ValueError(f"unknown policy {policy!r}: use one of {POLICIES}")


def reconfigure(inventory, events=("none",), at=None, policy: str = "optimal", catalogue=None,
                out_dir=None, options: ReconfigOptions | None = None, profiles_path=None,
                prepared=None) -> ReconfigResult:
    """Plan the SaaS reconfiguration (and IaaS caps, last) that meets every limit after ``events``.

    Parameters
    ----------
    inventory : str, Path or Inventory
        The room (``docs/inventory-format.md``); SaaS VMs may carry ``model`` and ``config_id``.
    events : sequence of str
        Event texts (:mod:`tapas_opt.reconfig.events`), applied in order.
    at : str or Timestamp, optional
        Time inside the forecast horizon; default: the weekly peak of room power.
    policy : {'optimal', 'greedy', 'uniform-cap'}
    catalogue : path or Catalogue, optional
        Default: the bundled ``models/catalogue/llm_configs.csv``.
    out_dir : path, optional
        Write configs.csv, routing.csv, caps.csv and summary.json there (atomically).
    prepared : tapas_opt.api.Prepared, optional
        Reuse an already prepared room (benchmarks: several policies on one room).
    """
    prep = prepared or _prepare(inventory, profiles_path)
    cat = _catalogue(catalogue)
    opts = options or ReconfigOptions(quantile=prep.config.placement.quantile)
    instance = build_reconfig_instance(prep, cat, parse_events(events), at, opts)
    plan, opt = solve_policy(instance, policy)
    ev = check_plan(instance, plan)
    summary = build_summary(instance, plan, ev, opt)
    summary["warnings"] = [str(w) for w in prep.inventory.warnings] + summary["warnings"]
    if out_dir is not None:
        write_outputs(out_dir, instance, plan, ev, summary)
    return ReconfigResult(instance, plan, ev, summary, opt, Path(out_dir) if out_dir else None)


def read_configs(path, instance: ReconfigInstance) -> np.ndarray:
    """Configuration per SaaS VM from a ``configs.csv`` (``vm_id, config_id``); VMs it does not
    list keep their current configuration. Unknown VMs or configurations are reported at once."""
    path = Path(path)
    frame = pd.read_csv(path, dtype=str)
    problems = [Problem("missing_column", path.name, f"required column '{c}' is missing", "columns: vm_id, config_id")
                for c in ("vm_id", "config_id") if c not in frame.columns]
    if problems:
        raise InventoryError(problems)
    config = instance.saas["current"].to_numpy(int).copy()
    pos = {vm: i for i, vm in enumerate(instance.saas["vm_id"])}
    cat = instance.catalogue
    for idx, rec in frame.iterrows():
        if rec["vm_id"] not in pos:
            problems.append(Problem("unknown_vm", path.name, f"vm_id {rec['vm_id']!r} is not a running SaaS VM",
                                    line=int(idx) + 2, column="vm_id"))
            continue
        if rec["config_id"] not in cat.position.index:
            problems.append(Problem("unknown_config", path.name, f"config_id {rec['config_id']!r} is not in the catalogue",
                                    line=int(idx) + 2, column="config_id"))
            continue
        config[pos[rec["vm_id"]]] = int(cat.position[rec["config_id"]])
    if problems:
        raise InventoryError(problems[:40])
    return config


@dataclass
class RouteResult:
    routing: pd.DataFrame
    slots: pd.DataFrame
    out_dir: Path | None = None


def route(inventory, out_dir=None, at=None, events=("none",), configs_path=None, catalogue=None,
          options: ReconfigOptions | None = None, profiles_path=None, prepared=None) -> RouteResult:
    """Routing shares per time slot (every slot of the horizon, or only ``at``).

    Configurations are the VMs' current ones, or those of ``configs_path`` (a configs.csv of
    ``reconfigure``); limits are today's or those after ``events``.
    """
    prep = prepared or _prepare(inventory, profiles_path)
    cat = _catalogue(catalogue)
    opts = options or ReconfigOptions(quantile=prep.config.placement.quantile)
    ev = parse_events(events)
    horizon = prep.instance.horizon
    times = [at] if at is not None else list(horizon)
    frames, slots = [], []
    config = None
    for t in times:
        inst = build_reconfig_instance(prep, cat, ev, t, opts)
        if config is None:
            config = read_configs(configs_path, inst) if configs_path else inst.saas["current"].to_numpy(int)
        plan = ReconfigPlan.unchanged(inst, "route")
        plan.saas_config = config
        res = solve_routing_slot(inst, plan)
        frames.append(shares_frame(inst, res))
        slots.append({"timestamp": inst.time, "status": res.status, "peak_row_power_ratio": round(res.z_row, 5),
                      "peak_aisle_airflow_ratio": round(res.z_aisle, 5), "peak_gpu_temp_ratio": round(res.z_temp, 5),
                      "unserved_units": round(float(res.unserved.sum()), 6)})
    routing = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["timestamp", "endpoint", "vm_id", "share", "load_units"])
    slot_df = pd.DataFrame(slots)
    if out_dir is not None:
        with atomic_directory(out_dir) as tmp:
            routing.to_csv(tmp / "routing.csv", index=False)
            slot_df.to_csv(tmp / "slots.csv", index=False)
            write_json(tmp / "summary.json", {
                "name": prep.config.name, "events": [e.text for e in ev], "slots": len(slot_df),
                "max_peak_row_power_ratio": float(slot_df["peak_row_power_ratio"].max()) if len(slot_df) else None,
                "max_peak_aisle_airflow_ratio": float(slot_df["peak_aisle_airflow_ratio"].max()) if len(slot_df) else None,
                "max_peak_gpu_temp_ratio": float(slot_df["peak_gpu_temp_ratio"].max()) if len(slot_df) else None,
                "unserved_slots": int((slot_df["unserved_units"] > 1e-6).sum()) if len(slot_df) else 0,
                "catalogue": cat.path})
    return RouteResult(routing, slot_df, Path(out_dir) if out_dir else None)
