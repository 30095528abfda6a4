"""Run several policies on one scenario side by side, and write the outputs.

Policies that share a placement component share one placement (computed once); each policy is
then simulated by :class:`tapas_opt.simulate.engine.Engine` over the same week, the same actual
load and the same weather. Outputs (``write_run``), all written atomically into ``DIR``:

* ``timeseries.parquet``: tidy ``policy, timestamp, scope, id, metric, value`` (metrics in
  docs/simulation.md);
* ``summary.json``: the scenario, and per policy the metrics of :mod:`tapas_opt.simulate.metrics`
  (and the same restricted to the event window when there is one);
* ``comparison.csv``: the side-by-side table (the TAPAS.md section 5 view);
* ``sources.csv``: which real trace drives each endpoint and customer;
* ``placements.csv``: per VM its arrival and where each placement put it;
* ``row_power.png``, ``max_gpu_temp.png`` (unless plots are off).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tapas_opt.io import atomic_directory, write_json
from tapas_opt.simulate.engine import EngineOptions, SimResult, simulate
from tapas_opt.simulate.metrics import comparison_table, iaas_gpu_temp_floor_c, summarise, timeseries_frame
from tapas_opt.simulate.policies import Placement, Policy, place_scenario


@dataclass
class RunResult:
    """Every policy's result on one scenario."""

    scenario: object
    policies: list[Policy]
    placements: dict[str, Placement]
    results: dict[str, SimResult]
    summaries: list[dict]
    event_summaries: list[dict] = field(default_factory=list)
    table: pd.DataFrame | None = None
    event_table: pd.DataFrame | None = None
    reference: str = "baseline"
    """The policy the tables' ``*_change_pct`` columns compare with: ``baseline`` when it ran,
    else the first policy run."""


def run_policies(scenario, policies: list[Policy], options: EngineOptions = EngineOptions(),
                 time_limit_s: float | None = None, seed: int = 0, progress=None,
                 placements: dict[str, Placement] | None = None, fast_placement: bool = False,
                 must_place: bool = True) -> RunResult:
    """Simulate ``policies`` on ``scenario``.

    ``progress`` (optional) is called as ``progress(label, total)`` and returns a function that
    is called with the number of steps done; ``placements`` may pre-supply placements by method;
    ``fast_placement`` places with tapas-opt's online greedy instead of the optimiser's warm-up
    batch (for large sweeps; recorded in each summary); ``must_place`` places VMs a policy refuses
    where the forecast breaks limits least (:func:`~tapas_opt.simulate.policies.place_least_violating`).
    """
    placements = dict(placements or {})
    results, summaries, event_summaries = {}, [], []
    # The temperature floor depends on the scenario only: once per run, not per policy.
    floor_c = iaas_gpu_temp_floor_c(scenario)
    event_floor_c = iaas_gpu_temp_floor_c(scenario, scenario.event_mask) if scenario.event_mask.any() else None
    for pol in policies:
        method = "greedy" if (fast_placement and pol.placement == "tapas-opt") else pol.placement
        if pol.placement not in placements:
            tick = progress(f"placing ({method})", 1) if progress else None
            placements[pol.placement] = place_scenario(scenario, method, time_limit_s, seed, must_place)
            if tick:
                tick(1)
        pl = placements[pol.placement]
        tick = progress(f"simulating {pol.name}", scenario.n_steps) if progress else None
        res = simulate(scenario, pol, pl, options, tick)
        results[pol.name] = res
        summaries.append(summarise(res, scenario, pl, pol, temp_floor_c=floor_c))
        if scenario.event_mask.any():
            event_summaries.append(summarise(res, scenario, pl, pol, scenario.event_mask, temp_floor_c=event_floor_c))
    ref = "baseline" if any(p.name == "baseline" for p in policies) else policies[0].name
    run = RunResult(scenario, policies, placements, results, summaries, event_summaries,
                    comparison_table(summaries, ref), reference=ref)
    if event_summaries:
        run.event_table = comparison_table(event_summaries, ref)
    return run


def placements_frame(run: RunResult) -> pd.DataFrame:
    sc = run.scenario
    v = sc.vms
    out = pd.DataFrame({"vm_id": v["vm_id"], "kind": v["kind"], "gpus": v["gpus"], "family": v["family"],
                        "initial": v["initial"], "arrival": sc.times[v["arrival_step"].to_numpy()]})
    ids = sc.instance.server_ids
    for method, pl in run.placements.items():
        out[f"server_{method}"] = np.where(pl.server >= 0, ids[np.maximum(pl.server, 0)], "")
    return out


def summary_document(run: RunResult) -> dict:
    sc = run.scenario
    doc = {"scenario": sc.describe(), "warnings": list(sc.warnings),
           "policies": {s["policy"]: s for s in run.summaries}, "reference_policy": run.reference,
           "table": run.table.to_dict(orient="records") if run.table is not None else []}
    if run.event_summaries:
        doc["event_window"] = {"policies": {s["policy"]: s for s in run.event_summaries},
                               "table": run.event_table.to_dict(orient="records")}
    return doc


def write_run(out_dir: str | Path, run: RunResult, plots: bool = True) -> Path:
    """Write the run's outputs (module docstring) atomically into ``out_dir``."""
    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp:
        frames = [timeseries_frame(r) for r in run.results.values()]
        ts = pd.concat(frames, ignore_index=True)
        for col in ("policy", "scope", "id", "metric"):
            ts[col] = ts[col].astype("category")
        ts.to_parquet(tmp / "timeseries.parquet", index=False)
        write_json(tmp / "summary.json", summary_document(run))
        run.table.to_csv(tmp / "comparison.csv", index=False)
        if run.event_table is not None:
            run.event_table.to_csv(tmp / "comparison_event_window.csv", index=False)
        run.scenario.sources.to_csv(tmp / "sources.csv", index=False)
        placements_frame(run).to_csv(tmp / "placements.csv", index=False)
        if plots:
            from tapas_opt.simulate.plots import plot_max_gpu_temp, plot_row_power

            plot_row_power(run, tmp / "row_power.png")
            plot_max_gpu_temp(run, tmp / "max_gpu_temp.png")
    return out_dir


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0
