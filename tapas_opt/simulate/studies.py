"""Studies: the same simulation over a sweep, as a tidy CSV and PNG plots.

* ``oversubscription``: +0 ... +60 % servers in the same rows under the same power and cooling
  limits, with as many more VMs (:func:`tapas_opt.simulate.scenario.oversubscribe`): % of
  row-time power-capped and % of GPU-time throttled per policy.
* ``emergencies``: a UPS failure (every row to 75 % of its power), an AHU failure in every aisle
  (90 % of the airflow), a heat wave (+10 C outside) and all three together, each during the
  event window (default: the 24 h of the day in which the room's demand peaks): IaaS
  performance lost, SaaS goodput and quality, capping and throttling inside the window.
* ``mix``: IaaS/SaaS GPU share from 100/0 to 0/100 (:func:`tapas_opt.simulate.scenario.remix`):
  peak row power and max GPU temperature per policy.

Each point is a full simulated week with every requested policy; ``<study>.csv`` has one line
per point and policy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tapas_opt.errors import InventoryError, Problem
from tapas_opt.inventory.load import Inventory, load_inventory
from tapas_opt.io import atomic_directory, write_json
from tapas_opt.reconfig.events import event_problems
from tapas_opt.simulate.engine import EngineOptions
from tapas_opt.simulate.policies import Policy
from tapas_opt.simulate.run import run_policies
from tapas_opt.simulate.scenario import ScenarioOptions, build_scenario, event_window_warnings

STUDIES = ("oversubscription", "emergencies", "mix")
DEFAULT_POLICIES = ("baseline", "tapas-rules", "full")
OVERSUBSCRIPTION_LEVELS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
MIX_LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)
EMERGENCIES = ("ups-failure", "ahu-failure", "heatwave:+10C", "all")


@dataclass
class StudyResult:
    study: str
    frame: pd.DataFrame
    points: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """The points' scenario warnings, each once (with the points it applies to when not all)."""


def study_warnings(per_point: list[tuple[str, list[str]]]) -> list[str]:
    """Each point's scenario warnings once, in order: a warning every point gives (the same
    traces, the same inputs) is said once; one only some points give names them."""
    labels: dict[str, list[str]] = {}
    for label, warnings in per_point:
        for w in warnings:
            labels.setdefault(w, []).append(label)
    return [w if len(at) == len(per_point) else f"{w} (at {', '.join(at)})" for w, at in labels.items()]


def emergency_problems(names, inv: Inventory) -> list[Problem]:
    """Every emergency name of a sweep that cannot run, before any point does: ``none`` (no
    event window to measure), a malformed event, a row or aisle the room lacks."""
    aisles = inv.aisles["aisle_id"].astype(str).tolist()
    problems = []
    for name in names:
        if str(name).strip().lower() == "none":
            problems.append(Problem("bad_value", "--levels", "'none' is no emergency: the study measures each "
                                    "event's window", "drop it, or name events: " + ", ".join(EMERGENCIES) + " or any --event "
                                    "value; a plain week is 'tapas-opt simulate' without --study"))
            continue
        problems += [dataclasses.replace(p, file="--levels")
                     for p in event_problems(_events_for(str(name), aisles), inv.rows["row_id"], aisles)]
    return problems


def _events_for(name: str, aisle_ids) -> tuple[str, ...]:
    if name == "ahu-failure":
        return tuple(f"ahu-failure:{a}" for a in aisle_ids)
    if name == "all":
        return ("ups-failure", *(f"ahu-failure:{a}" for a in aisle_ids), "heatwave:+10C")
    return (name,)


def _line(point: dict, s: dict) -> dict:
    return {**point, "policy": s["policy"],
            "peak_row_power": s["peak_row_power_fraction"], "max_gpu_temp_c": s["max_gpu_temp_c"],
            "max_gpu_temp_norm": s["max_gpu_temp_fraction"],
            "power_capped_row_time_pct": s["power_capped_row_time_pct"],
            "power_capped_time_pct": s["power_capped_time_pct"],
            "thermal_throttled_gpu_time_pct": s["thermal_throttled_gpu_time_pct"],
            "thermal_throttled_time_pct": s["thermal_throttled_time_pct"],
            "over_limit_after_capping_row_time_pct": s["over_limit_after_capping_row_time_pct"],
            "saas_goodput_pct": s["saas"]["goodput_pct"], "saas_quality": s["saas"]["quality"],
            "saas_smaller_or_quantised_pct": s["saas"]["served_by_smaller_or_quantised_pct"],
            "iaas_perf_lost_pct": s["iaas"]["perf_lost_pct"], "vms_unplaced": s["vms"]["unplaced"],
            "vms": s["vms"]["simulated"], "placement_s": s["timing"]["placement_s"],
            "engine_s": s["timing"]["engine_s"]}


def run_study(study: str, inventory: str | Path | Inventory, options: ScenarioOptions, policies: list[Policy],
              engine_options: EngineOptions = EngineOptions(), levels=None, time_limit_s: float | None = None,
              fast_placement: bool = False, progress=None, log=None, oversubscription: float = 0.0) -> StudyResult:
    """Run a study (module docstring); ``levels`` overrides the default sweep points (extra
    server share, SaaS share, or emergency names); ``oversubscription`` is applied to every
    point of the emergencies and mix studies (a stressed room)."""
    if study not in STUDIES:
        raise ValueError(f"unknown study {study!r}: use one of {STUDIES}")
    inv = inventory if isinstance(inventory, Inventory) else load_inventory(inventory)
    lines, points, said = [], [], []
    if study == "emergencies":
        names = tuple(levels) if levels else EMERGENCIES
        aisles = inv.aisles["aisle_id"].astype(str).tolist()
        problems = emergency_problems(names, inv)
        if problems:
            raise InventoryError(problems)
        placements = None
        for name in names:
            opts = dataclasses.replace(options, events=_events_for(str(name), aisles))
            if log:
                log(f"emergency {name}")
            sc = build_scenario(inv, opts, oversubscription=oversubscription)
            if not sc.event_mask.any():  # the same window for every point: said before any runs
                window = event_window_warnings(opts, sc.events, sc.times, sc.event_mask)[0]
                raise InventoryError([Problem("bad_value", "--event-start", f"{window}: the emergencies "
                                              "study measures inside that window", "give an --event-start and "
                                              "--event-hours that cover at least one step of the week")])
            run = run_policies(sc, policies, engine_options, time_limit_s, options.seed, progress, placements,
                               fast_placement=fast_placement)
            placements = run.placements  # placement does not depend on the event (the planner cannot know)
            for s in run.event_summaries:
                lines.append(_line({"event": str(name), "extra_servers_pct": round(100 * oversubscription, 1)}, s))
            points.append({"event": str(name), "scenario": sc.describe(), "event_window": run.event_summaries})
            said.append((str(name), sc.warnings))
    else:
        values = tuple(levels) if levels else (OVERSUBSCRIPTION_LEVELS if study == "oversubscription" else MIX_LEVELS)
        for x in values:
            x = float(x)
            if log:
                log(f"{study} {x:g}")
            if study == "oversubscription":
                sc = build_scenario(inv, options, oversubscription=x)
                point = {"extra_servers_pct": round(100 * x, 1), "servers": int(sc.instance.n_servers)}
            else:
                sc = build_scenario(inv, options, saas_share=x, oversubscription=oversubscription)
                point = {"saas_share_pct": round(100 * x, 1)}
            run = run_policies(sc, policies, engine_options, time_limit_s, options.seed, progress,
                               fast_placement=fast_placement)
            for s in run.summaries:
                lines.append(_line(point, s))
            points.append({**point, "scenario": sc.describe(), "policies": run.summaries})
            said.append((f"{x:g}", sc.warnings))
    return StudyResult(study, pd.DataFrame(lines), points, study_warnings(said))


def study_document(result: StudyResult) -> dict:
    """A study's ``summary.json`` (and ``simulate --study --json``): the study, its warnings,
    its points and the table."""
    return {"study": result.study, "warnings": result.warnings, "points": result.points,
            "table": result.frame.to_dict(orient="records")}


def write_study(out_dir: str | Path, result: StudyResult, plots: bool = True) -> Path:
    """``<study>.csv``, ``summary.json`` and the study's PNG plots, atomically."""
    from tapas_opt.simulate import plots as P

    out_dir = Path(out_dir)
    f = result.frame
    with atomic_directory(out_dir) as tmp:
        f.to_csv(tmp / f"{result.study}.csv", index=False)
        write_json(tmp / "summary.json", study_document(result))
        if plots and len(f):
            if result.study == "oversubscription":
                P.plot_sweep(f, "extra_servers_pct", [("power_capped_row_time_pct", "% of row-time power-capped"),
                                                      ("thermal_throttled_gpu_time_pct", "% of GPU-time throttled"),
                                                      ("peak_row_power", "peak row power / limit (demand)")],
                             tmp / "oversubscription.png", "Oversubscription: servers added to the same rows",
                             "extra servers (%)")
            elif result.study == "mix":
                P.plot_sweep(f, "saas_share_pct", [("peak_row_power", "peak row power / limit"),
                                                   ("max_gpu_temp_c", "max GPU temperature (C)")],
                             tmp / "mix.png", "IaaS/SaaS mix", "SaaS share of GPUs (%)")
            else:
                P.plot_bars(f, "event", [("iaas_perf_lost_pct", "IaaS performance lost (%)"),
                                         ("saas_goodput_pct", "SaaS goodput (%)"),
                                         ("saas_quality", "SaaS quality (1 = default)"),
                                         ("power_capped_row_time_pct", "% row-time capped")],
                            tmp / "emergencies.png", "Emergencies (event window)")
    return out_dir
