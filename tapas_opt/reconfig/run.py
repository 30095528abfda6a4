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

from tapas_opt.errors import InventoryError, problems_of, value_or_problems
from tapas_opt.inventory.load import Inventory, table_lines
from tapas_opt.io import atomic_directory, write_json
from tapas_opt.reconfig.baselines import solve_greedy, solve_uniform_cap
from tapas_opt.reconfig.catalogue import Catalogue, catalogue_or_problems, load_catalogue
from tapas_opt.reconfig.evaluate import ReconfigEvaluation, check_plan
from tapas_opt.reconfig.events import event_problems, parse_events
from tapas_opt.reconfig.instance import (ReconfigInstance, ReconfigOptions, assign_configs, build_reconfig_instance,
                                         requested_slot, requested_time)
from tapas_opt.reconfig.model import OptimalResult, solve_optimal
from tapas_opt.reconfig.plan import ReconfigPlan
from tapas_opt.reconfig.plan_files import read_caps, read_configs
from tapas_opt.reconfig.routing import reroute_for_headroom, shares_frame, solve_routing_slot, unserved_slots
from tapas_opt.reconfig.summary import build_summary, write_outputs

POLICIES = ("optimal", "greedy", "uniform-cap")
CSV_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass
class ReconfigResult:
    instance: ReconfigInstance
    plan: ReconfigPlan
    evaluation: ReconfigEvaluation
    summary: dict
    optimal: OptimalResult | None = None
    out_dir: Path | None = None


def request_problems(events=None, at=None, inventory=None, root=None) -> list:
    """The problems of the request itself, ``--event`` and ``--at``, found before the forecast
    (minutes on a large room): their syntax alone, or with the loaded ``inventory`` also rows
    and aisles it lacks and times outside its horizon. An inventory that does not load
    (``root`` given instead) still has its rows and aisles checked when rows.csv and
    aisles.csv can be read: a bad vms.csv hid an event's unknown aisle.

    Without the room, an ``ahu-failure`` with a second ':' is left for later: ``A:1.5`` may be
    an aisle's id or aisle ``A`` at a fraction, which only the room's aisles tell apart."""
    from tapas_opt.forecast.profiles import inventory_horizon

    if inventory is None:
        ids = _room_ids(root) if root is not None else None
        if ids is not None:
            return event_problems(events, *ids) + problems_of(lambda: requested_time(at))
        texts = [t for t in events or () if not (t.strip().lower().startswith("ahu-failure:") and t.count(":") > 1)]
        return problems_of(lambda: parse_events(texts)) + problems_of(lambda: requested_time(at))
    problems = event_problems(events, inventory.rows["row_id"], inventory.aisles["aisle_id"])
    return problems + problems_of(lambda: requested_slot(inventory_horizon(inventory), at))


def _room_ids(root) -> tuple[pd.Series, pd.Series] | None:
    """Row and aisle ids of an inventory directory read straight from rows.csv and aisles.csv
    (their own problems are the inventory's to report), or None when either cannot be read."""
    from tapas_opt.inventory.load import find_table, read_user_table

    ids = []
    for name, column in (("rows", "row_id"), ("aisles", "aisle_id")):
        path = find_table(Path(root), name)
        try:
            table = read_user_table(path) if path is not None else None
        except InventoryError:
            return None
        if table is None or column not in table.columns:
            return None
        ids.append(table[column].dropna().astype(str).str.strip())
    return ids[0], ids[1]


def prepare_room(inventory, profiles_path=None, forecast_method: str = "auto", problems_before=(),
                 events=None, at=None, catalogue: Catalogue | None = None):
    """Load, forecast and build the placement instance, as :func:`tapas_opt.api.prepare` does,
    with the forecasting method chosen by name (``template`` is the paper's and fast).

    ``problems_before``: the problems of the command's other inputs, found before (the
    catalogue's); ``events`` and ``at``: the request, checked against the room
    (:func:`request_problems`); ``catalogue``: the SaaS VMs' models and configurations in
    vms.csv are checked against it. Any of them stops the run before the forecast, listed with
    the inventory's own and the profiles'."""
    from tapas_opt.api import Prepared
    from tapas_opt.forecast.profiles import build_profiles, load_with_profiles, outside_forecast, read_profiles
    from tapas_opt.forecast.run import make_forecaster
    from tapas_opt.placement.instance import build_instance

    root = None if isinstance(inventory, Inventory) else inventory
    inv, _ = load_with_profiles(inventory, profiles_path,
                                lambda: list(problems_before) + request_problems(events, at, root=root), read=False)
    # the profiles' problems against the room, listed with the request's and the catalogue's
    supplied, problems = value_or_problems(lambda: read_profiles(profiles_path, inv)) if profiles_path else (None, [])
    problems += list(problems_before) + request_problems(events, at, inv)
    if catalogue is not None:
        problems += problems_of(lambda: assign_configs(inv.vms, catalogue, *table_lines(inv.root, "vms")))
    if problems:
        raise InventoryError(problems)
    profiles = build_profiles(inv, forecaster=make_forecaster(forecast_method, inv.config.time_step_min),
                              supplied=supplied)
    outside = outside_forecast(inv, profiles.horizon)
    return Prepared(inv, inv.config, profiles, build_instance(inv, profiles, outside, inv.config))


def prepare_with_catalogue(inventory, catalogue=None, profiles_path=None, forecast_method: str = "auto",
                           events=None, at=None):
    """The prepared room and the catalogue, loaded first: a broken catalogue, bad events or a
    time outside the horizon are reported before the forecast (minutes on a large room), with
    the inventory's problems when it is broken too."""
    cat, problems = (catalogue, []) if isinstance(catalogue, Catalogue) else catalogue_or_problems(catalogue)
    return prepare_room(inventory, profiles_path, forecast_method, problems, events, at, cat), cat


def _catalogue(catalogue) -> Catalogue:
    return catalogue if isinstance(catalogue, Catalogue) else load_catalogue(catalogue)


def _prepared(inventory, prepared, catalogue, profiles_path, events, at):
    """``prepared`` (and the catalogue), or the room prepared after the catalogue and the
    request (``events``, ``at``) are checked."""
    if prepared is not None:
        return prepared, _catalogue(catalogue)
    return prepare_with_catalogue(inventory, catalogue, profiles_path, events=events, at=at)


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
    prep, cat = _prepared(inventory, prepared, catalogue, profiles_path, events, at)
    opts = options or ReconfigOptions(quantile=prep.config.placement.quantile)
    instance = build_reconfig_instance(prep, cat, parse_events(events, prep.instance.aisle_ids), at, opts)
    plan, opt = solve_policy(instance, policy)
    ev = check_plan(instance, plan)
    summary = build_summary(instance, plan, ev, opt)
    summary["warnings"] = [str(w) for w in prep.inventory.warnings] + summary["warnings"]
    if out_dir is not None:
        write_outputs(out_dir, instance, plan, ev, summary)
    return ReconfigResult(instance, plan, ev, summary, opt, Path(out_dir) if out_dir else None)


@dataclass
class RouteResult:
    routing: pd.DataFrame
    slots: pd.DataFrame
    out_dir: Path | None = None
    warnings: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


LIMIT_TOL = 1e-4
"""A peak ratio this far above 1 counts as over the limit (solver round-off below it)."""
RATIOS = ("peak_row_power_ratio", "peak_aisle_airflow_ratio", "peak_gpu_temp_ratio")


def route_figures(slot_df: pd.DataFrame) -> dict:
    """The peaks over the slots routed (null where no slot has one: no SaaS GPU, no slot), the
    slots with unserved load and the slots over a limit: ``route``'s summary.json and --json."""
    def peak(col: str):
        return float(slot_df[col].max()) if len(slot_df) and slot_df[col].notna().any() else None

    over = int((slot_df[list(RATIOS)] > 1 + LIMIT_TOL).any(axis=1).sum()) if len(slot_df) else 0
    return {"slots": len(slot_df), **{f"max_{c}": peak(c) for c in RATIOS},
            "unserved_slots": unserved_slots(slot_df), "slots_over_a_limit": over}


def _plan_files(inst: ReconfigInstance, configs_path, caps_path):
    """Configuration, power level and IaaS cap per VM from a plan's configs.csv and the caps.csv
    beside it (the VMs' current configurations, uncapped, without them), and the warnings;
    the problems of both files in one error."""
    config, clock, caps, warnings = inst.saas["current"].to_numpy(int), np.ones(len(inst.saas)), None, []
    problems = []
    if configs_path:
        read, problems = value_or_problems(lambda: read_configs(configs_path, inst))
        if read is not None:
            config, clock, warnings = read
    if caps_path is not None and caps_path.exists():
        caps, more = value_or_problems(lambda: read_caps(caps_path, inst))
        problems += more
    if problems:
        raise InventoryError(problems)
    return config, clock, caps, warnings


def route(inventory, out_dir=None, at=None, events=("none",), configs_path=None, catalogue=None,
          options: ReconfigOptions | None = None, profiles_path=None, prepared=None) -> RouteResult:
    """Routing shares per time slot (every slot of the horizon, or only ``at``).

    Configurations are the VMs' current ones, or those of ``configs_path`` (a configs.csv of
    ``reconfigure``, with its power levels, and the IaaS caps of the caps.csv beside it);
    limits are today's or those after ``events``.
    """
    prep, cat = _prepared(inventory, prepared, catalogue, profiles_path, events, at)
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
            config, clock, caps, warnings = _plan_files(inst, configs_path, caps_path)
        plan = ReconfigPlan.unchanged(inst, "route")
        plan.saas_config, plan.saas_clock = config, clock
        if caps is not None:
            plan.iaas_load = np.minimum(plan.iaas_load, caps)
        res = solve_routing_slot(inst, plan)
        frames.append(shares_frame(inst, res))
        slots.append({"timestamp": inst.time, "status": res.status, "peak_row_power_ratio": round(res.z_row, 5),
                      "peak_aisle_airflow_ratio": round(res.z_aisle, 5),
                      "peak_gpu_temp_ratio": round(res.z_temp, 5) if len(inst.saas) else np.nan,
                      "demand_units": round(float(inst.endpoint_demand.sum()), 6),
                      "unserved_units": round(float(res.unserved.sum()), 6)})
    routing = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["timestamp", "endpoint", "vm_id", "share", "load_units"])
    if not len(inst.saas):  # the same VMs at every slot: the running ones
        said.append("the room has no running SaaS VM: there is no load to route (routing.csv is empty; the peaks "
                    "are the room's as it runs)")
    warnings = list(dict.fromkeys(said + warnings))  # every slot repeats the limits' notes
    slot_df = pd.DataFrame(slots)
    summary = {"name": prep.config.name, "events": [e.text for e in ev], "quantile": opts.quantile,
               **route_figures(slot_df), "catalogue": cat.path, "warnings": warnings}
    if out_dir is not None:
        with atomic_directory(out_dir) as tmp:
            # Explicit: pandas writes a column of midnights (--at 00:00) as bare dates.
            routing.to_csv(tmp / "routing.csv", index=False, date_format=CSV_TIME_FORMAT)
            slot_df.to_csv(tmp / "slots.csv", index=False, date_format=CSV_TIME_FORMAT)
            write_json(tmp / "summary.json", summary)
    return RouteResult(routing, slot_df, Path(out_dir) if out_dir else None, warnings, summary)
