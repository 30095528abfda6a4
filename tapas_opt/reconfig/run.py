"""The Python API of reconfiguration and routing: what the CLI, benchmarks and notebooks call.

>>> from tapas_opt.reconfig.run import reconfigure
>>> result = reconfigure("room", events=["ups-failure"], out_dir="plan")    # doctest: +SKIP
>>> result.summary["saas"]["quality_loss_pct"]                               # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tapas_opt.errors import InventoryError, Problem
from tapas_opt.io import atomic_directory, write_json
from tapas_opt.inventory.load import read_user_table
from tapas_opt.reconfig.baselines import solve_greedy, solve_uniform_cap
from tapas_opt.reconfig.catalogue import Catalogue, load_catalogue
from tapas_opt.reconfig.evaluate import ReconfigEvaluation, check_plan
from tapas_opt.reconfig.events import parse_events
from tapas_opt.reconfig.instance import ReconfigInstance, ReconfigOptions, build_reconfig_instance
from tapas_opt.reconfig.model import OptimalResult, solve_optimal
from tapas_opt.reconfig.plan import ReconfigPlan
from tapas_opt.reconfig.routing import reroute_for_headroom, shares_frame, solve_routing_slot, unserved_slots
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
    from tapas_opt.forecast.profiles import build_profiles, load_with_profiles, outside_forecast
    from tapas_opt.forecast.run import make_forecaster
    from tapas_opt.placement.instance import build_instance

    inv, supplied = load_with_profiles(inventory, profiles_path)
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
        res.plan = reroute_for_headroom(instance, res.plan)
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
    instance = build_reconfig_instance(prep, cat, parse_events(events, prep.instance.aisle_ids), at, opts)
    plan, opt = solve_policy(instance, policy)
    ev = check_plan(instance, plan)
    summary = build_summary(instance, plan, ev, opt)
    summary["warnings"] = [str(w) for w in prep.inventory.warnings] + summary["warnings"]
    if out_dir is not None:
        write_outputs(out_dir, instance, plan, ev, summary)
    return ReconfigResult(instance, plan, ev, summary, opt, Path(out_dir) if out_dir else None)


def read_configs(path, instance: ReconfigInstance) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Configuration and power level per SaaS VM from a ``configs.csv`` (``vm_id, config_id``,
    optional ``power_level``: the effective dynamic power level ``reconfigure`` writes, which
    may sit below its configuration's own level when the plan caps the GPUs online); VMs it
    does not list keep their current configuration at its level. Returns (catalogue position,
    power level relative to that configuration) per SaaS VM, and warnings for what the file
    leaves to those defaults. Every problem is reported at once: unknown VMs and
    configurations, a configuration of another model family than the VM's, a VM listed twice
    (which row would win is not the user's intent), a level out of range."""
    path = Path(path)
    frame = read_user_table(path)
    problems = [Problem("missing_column", path.name, f"required column '{c}' is missing", "columns: vm_id, config_id")
                for c in ("vm_id", "config_id") if c not in frame.columns]
    if problems:
        raise InventoryError(problems)
    config = instance.saas["current"].to_numpy(int).copy()
    clock = np.ones(len(config))
    pos = {vm: i for i, vm in enumerate(instance.saas["vm_id"])}
    family = instance.saas["family"].to_numpy()
    cat = instance.catalogue
    level_ratio = instance.cfg["level_ratio"]
    twice = frame["vm_id"].duplicated(keep="first") & frame["vm_id"].notna()
    first_row = frame.index.to_series().groupby(frame["vm_id"]).first()  # once, not once per VM listed twice
    for vm, idx in frame[twice].groupby("vm_id", sort=False).groups.items():
        problems.append(Problem("duplicate_id", path.name, f"vm_id {vm!r} is listed {len(idx) + 1} times (first on "
                                f"line {int(first_row[vm]) + 2})", "keep one row per VM", line=int(idx[0]) + 2,
                                column="vm_id"))
    for idx, rec in frame[~twice].iterrows():
        if rec["vm_id"] not in pos:
            problems.append(Problem("unknown_vm", path.name, f"vm_id {rec['vm_id']!r} is not a running SaaS VM",
                                    line=int(idx) + 2, column="vm_id"))
            continue
        if rec["config_id"] not in cat.position.index:
            problems.append(Problem("unknown_config", path.name, f"config_id {rec['config_id']!r} is not in the catalogue",
                                    line=int(idx) + 2, column="config_id"))
            continue
        v, c = pos[rec["vm_id"]], int(cat.position[rec["config_id"]])
        if cat.configs.at[c, "family"] != family[v]:
            problems.append(Problem("config_family", path.name, f"config_id {rec['config_id']!r} belongs to family "
                                    f"{cat.configs.at[c, 'family']!r}, but {rec['vm_id']!r} runs {family[v]!r}",
                                    "pick a configuration of the VM's model family", line=int(idx) + 2,
                                    column="config_id"))
            continue
        config[v] = c
        if "power_level" in frame.columns and pd.notna(rec["power_level"]):
            own = float(level_ratio[c]) if np.isfinite(level_ratio[c]) and level_ratio[c] > 0 else 1.0
            level = pd.to_numeric(rec["power_level"], errors="coerce")
            if not (np.isfinite(level) and 0 < level <= own + 1e-4):
                problems.append(Problem("out_of_range", path.name, f"power_level {rec['power_level']!r} is not in "
                                        f"0..{own:g} (the level of {rec['config_id']})", line=int(idx) + 2,
                                        column="power_level"))
                continue
            clock[v] = min(1.0, float(level) / own)
    if problems:
        raise InventoryError(problems)
    warnings = []
    if "power_level" not in frame.columns:
        warnings.append(f"{path.name} has no power_level column: every configuration runs at its catalogue level "
                        "(reconfigure's configs.csv gives the plan's levels)")
    unlisted = sorted(set(pos) - set(frame["vm_id"]))
    if unlisted:
        warnings.append(f"{len(unlisted)} running SaaS VM(s) are not in {path.name} and keep their current "
                        f"configuration, e.g. {', '.join(repr(v) for v in unlisted[:3])}")
    return config, clock, warnings


def read_caps(path, instance: ReconfigInstance) -> np.ndarray:
    """Highest GPU load per IaaS VM under the caps of a ``caps.csv`` (``vm_id, kind,
    load_after``) that ``reconfigure`` wrote beside its configs.csv; ``inf`` for VMs it does not
    list (uncapped). The order is the instance's, the same at every slot."""
    path = Path(path)
    caps = np.full(len(instance.iaas), np.inf)
    frame = read_user_table(path)
    if frame.empty:
        return caps
    missing = [c for c in ("vm_id", "kind", "load_after") if c not in frame.columns]
    if missing:
        raise InventoryError([Problem("missing_column", path.name, f"required column '{c}' is missing",
                                      "columns: vm_id, kind, load_after (as reconfigure writes them)") for c in missing])
    pos = {vm: i for i, vm in enumerate(instance.iaas["vm_id"])}
    problems = []
    for idx, rec in frame[frame["kind"] == "iaas"].iterrows():
        after = pd.to_numeric(rec["load_after"], errors="coerce")
        if rec["vm_id"] not in pos:
            problems.append(Problem("unknown_vm", path.name, f"vm_id {rec['vm_id']!r} is not a running IaaS VM",
                                    line=int(idx) + 2, column="vm_id"))
        elif not (np.isfinite(after) and 0 <= after <= 1):
            problems.append(Problem("out_of_range", path.name, f"load_after {rec['load_after']!r} is not in 0..1",
                                    line=int(idx) + 2, column="load_after"))
        else:
            caps[pos[rec["vm_id"]]] = float(after)
    if problems:
        raise InventoryError(problems)
    return caps


@dataclass
class RouteResult:
    routing: pd.DataFrame
    slots: pd.DataFrame
    out_dir: Path | None = None
    warnings: list[str] = field(default_factory=list)


def route(inventory, out_dir=None, at=None, events=("none",), configs_path=None, catalogue=None,
          options: ReconfigOptions | None = None, profiles_path=None, prepared=None) -> RouteResult:
    """Routing shares per time slot (every slot of the horizon, or only ``at``).

    Configurations are the VMs' current ones, or those of ``configs_path`` (a configs.csv of
    ``reconfigure``, with its power levels, and the IaaS caps of the caps.csv beside it);
    limits are today's or those after ``events``.
    """
    prep = prepared or _prepare(inventory, profiles_path)
    cat = _catalogue(catalogue)
    opts = options or ReconfigOptions(quantile=prep.config.placement.quantile)
    ev = parse_events(events, prep.instance.aisle_ids)
    horizon = prep.instance.horizon
    times = [at] if at is not None else list(horizon)
    frames, slots = [], []
    config = clock = caps = None
    warnings: list[str] = []
    said = [str(w) for w in prep.inventory.warnings]  # the inventory's, then each slot's instance's
    caps_path = Path(configs_path).with_name("caps.csv") if configs_path else None
    for t in times:
        inst = build_reconfig_instance(prep, cat, ev, t, opts)
        said += inst.warnings
        if config is None:  # the plan's files, read once: VM order is the same at every slot
            config, clock, warnings = (read_configs(configs_path, inst) if configs_path
                                       else (inst.saas["current"].to_numpy(int), np.ones(len(inst.saas)), []))
            caps = read_caps(caps_path, inst) if caps_path is not None and caps_path.exists() else None
        plan = ReconfigPlan.unchanged(inst, "route")
        plan.saas_config, plan.saas_clock = config, clock
        if caps is not None:
            plan.iaas_load = np.minimum(plan.iaas_load, caps)
        res = solve_routing_slot(inst, plan)
        frames.append(shares_frame(inst, res))
        slots.append({"timestamp": inst.time, "status": res.status, "peak_row_power_ratio": round(res.z_row, 5),
                      "peak_aisle_airflow_ratio": round(res.z_aisle, 5), "peak_gpu_temp_ratio": round(res.z_temp, 5),
                      "demand_units": round(float(inst.endpoint_demand.sum()), 6),
                      "unserved_units": round(float(res.unserved.sum()), 6)})
    routing = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["timestamp", "endpoint", "vm_id", "share", "load_units"])
    warnings = list(dict.fromkeys(said + warnings))  # every slot repeats the limits' notes
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
                "unserved_slots": unserved_slots(slot_df),
                "catalogue": cat.path, "warnings": warnings})
    return RouteResult(routing, slot_df, Path(out_dir) if out_dir else None, warnings)
