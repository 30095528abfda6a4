"""Run a what-if sweep: each scenario a Dask task, each result written the moment it finishes.

:func:`run_scenario` is what a worker runs: base inventory (loaded once per worker process and
kept), changes, placement, evaluation. :func:`run_sweep` sends the scenarios that have no
result yet to the cluster (:mod:`tapas_opt.distributed`), writes each result as it arrives
(:class:`ResultStore`), then the tidy tables and the plots.

The output directory::

    OUT/sweep.json                  the sweep: scenarios, evaluator, counts, timing, failures
    OUT/scenarios/ID.json           one per finished scenario, written atomically as it completes
    OUT/failed/ID.json              one per failed scenario (error and traceback)
    OUT/results.csv, results.parquet  one line per scenario (parameters, changes, metrics)
    OUT/rows.csv                    one line per scenario and row
    OUT/deployable.csv              max servers deployable per row under each capping budget
    OUT/plots/*.png                 the figures (tapas_opt.whatif.plots)

A re-run skips every scenario whose result file holds the same ``spec_hash`` (same settings,
changes and base inventory); failed scenarios are tried again.
"""

from __future__ import annotations

import io
import json
import os
import socket
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import pandas as pd

from tapas_opt.distributed import DEFAULT_WORKERS, TaskOutcome, dask_client, run_local, run_tasks
from tapas_opt.io import atomic_write_bytes, write_json
from tapas_opt.whatif.spec import SERVER_COUNT_KEYS, ScenarioSpec, Sweep, fingerprint

DEFAULT_BUDGETS_PCT = (1.0, 5.0, 10.0)


# ---- one scenario (runs on a worker) -------------------------------------------------------------

@lru_cache(maxsize=4)
def _base_inventory(path: str, print_: str):
    """The base inventory, loaded once per worker process (keyed by its files' fingerprint)."""
    from tapas_opt.inventory.load import load_inventory

    return load_inventory(path)


def run_scenario(spec: ScenarioSpec) -> dict:
    """Changes, placement and evaluation of one scenario; the result record (JSON-ready)."""
    from tapas_opt.api import prepare
    from tapas_opt.placement.solve import solve_placement
    from tapas_opt.whatif.changes import apply_changes
    from tapas_opt.whatif.evaluate import EVALUATOR_LABELS, evaluate_predicted, evaluate_simulated

    t0 = time.perf_counter()
    cpu0 = time.process_time()
    st = spec.settings
    base = _base_inventory(spec.base, fingerprint(Path(spec.base)))
    inv, applied = apply_changes(base, spec.changes, int(st["seed"]), spec.source_dir, st.get("horizon_h"))
    t_changes = time.perf_counter()
    timing = {"changes_s": round(t_changes - t0, 3)}
    if st["evaluator"] == "simulator":
        scored = evaluate_simulated(inv, st, applied.failures)
        timing["place_s"] = None
    else:
        prep = prepare(inv, forecast_method=st["forecast_method"], quantile=st.get("quantile"),
                       time_limit_s=float(st["time_limit_s"]), workers=1, seed=int(st["seed"]))
        t_prep = time.perf_counter()
        sol = solve_placement(prep.instance, st["policy"])
        t_place = time.perf_counter()
        timing.update(prepare_s=round(t_prep - t_changes, 3), place_s=round(t_place - t_prep, 3))
        scored = evaluate_predicted(prep, sol, st["evaluate_quantile"], applied.failures)
        scored["metrics"]["placement_status"] = sol.status
        scored["metrics"]["peak_row_power_bound"] = (None if sol.power_bound is None
                                                     else round(float(sol.power_bound), 6))
    scored["metrics"]["servers"] = int(len(inv.servers))
    scored["metrics"]["gpus"] = int(inv.servers["gpus"].sum())
    timing["total_s"] = round(time.perf_counter() - t0, 3)
    timing["cpu_s"] = round(time.process_time() - cpu0, 3)
    return {
        "scenario_id": spec.id, "name": spec.name, "spec_hash": spec.spec_hash,
        "evaluator": st["evaluator"], "evaluator_label": EVALUATOR_LABELS[st["evaluator"]],
        "parameters": spec.parameters, "settings": spec.settings, "changes": spec.changes,
        "applied": applied.to_dict(), "metrics": scored["metrics"], "rows": scored["rows"],
        "timing": timing, "worker": {"host": socket.gethostname(), "pid": os.getpid()},
    }


# ---- results on disk ---------------------------------------------------------------------------------

def frame_bytes(frame: pd.DataFrame, path: Path) -> bytes:
    """The bytes of ``frame`` as the CSV or Parquet file ``path`` names."""
    if path.suffix == ".parquet":
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        return buf.getvalue()
    return frame.to_csv(index=False).encode()


class ResultStore:
    """Per-scenario result files in ``OUT/scenarios`` (and failures in ``OUT/failed``)."""

    def __init__(self, out_dir: str | Path):
        self.root = Path(out_dir)
        self.done_dir = self.root / "scenarios"
        self.failed_dir = self.root / "failed"

    def result_path(self, sid: str) -> Path:
        return self.done_dir / f"{sid}.json"

    def read(self, sid: str) -> dict | None:
        path = self.result_path(sid)
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def is_done(self, spec: ScenarioSpec) -> bool:
        record = self.read(spec.id)
        return record is not None and record.get("spec_hash") == spec.spec_hash

    def record(self, outcome: TaskOutcome, spec: ScenarioSpec) -> None:
        if outcome.ok:
            write_json(self.result_path(spec.id), outcome.value)
            (self.failed_dir / f"{spec.id}.json").unlink(missing_ok=True)
        else:
            write_json(self.failed_dir / f"{spec.id}.json",
                       {"scenario_id": spec.id, "name": spec.name, "spec_hash": spec.spec_hash,
                        "parameters": spec.parameters, "error": outcome.error, "traceback": outcome.traceback})

    def failures(self, sweep: Sweep) -> list[dict]:
        out = []
        for spec in sweep.scenarios:
            path = self.failed_dir / f"{spec.id}.json"
            if path.exists() and not self.is_done(spec):
                out.append(json.loads(path.read_text()))
        return out


# ---- tidy tables -----------------------------------------------------------------------------------

def results_table(records: list[dict]) -> pd.DataFrame:
    """One line per scenario: id, name, swept parameters, what the changes did, metrics, timing."""
    lines = []
    for r in records:
        line = {"scenario_id": r["scenario_id"], "name": r["name"], "evaluator": r["evaluator"],
                "policy": r["settings"]["policy"]}
        line.update({f"param.{k}": _scalar(v) for k, v in r["parameters"].items()})
        line.update({k: _scalar(v) for k, v in r["applied"].items()})
        line.update({k: _scalar(v) for k, v in r["metrics"].items()})
        line.update({f"time.{k}": v for k, v in r["timing"].items()})
        lines.append(line)
    return _one_type_per_column(pd.DataFrame(lines))


def _one_type_per_column(frame: pd.DataFrame) -> pd.DataFrame:
    """A column that mixes text and numbers (a swept value that is 0 in one scenario and
    ``{R01: 4}`` in the next) as text throughout: Parquet holds one type per column."""
    for column in frame.columns[frame.dtypes == object]:
        is_text = frame[column].dropna().map(lambda v: isinstance(v, str))
        if is_text.any() and not is_text.all():
            frame[column] = frame[column].map(lambda v: v if v is None or isinstance(v, str) or pd.isna(v)
                                              else json.dumps(v))
    return frame


def rows_table(records: list[dict]) -> pd.DataFrame:
    parts = [pd.DataFrame(r["rows"]).assign(scenario_id=r["scenario_id"]) for r in records if r["rows"]]
    if not parts:
        return pd.DataFrame(columns=["scenario_id", "row_id"])
    frame = pd.concat(parts, ignore_index=True)
    return frame[["scenario_id", *[c for c in frame.columns if c != "scenario_id"]]]


def _scalar(value):
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return value


def deployable_table(table: pd.DataFrame, budgets_pct=DEFAULT_BUDGETS_PCT,
                     metric: str = "power_capped_row_time_pct") -> pd.DataFrame:
    """Max servers deployable per row under a capping budget of X % of row-time.

    Scenarios are grouped by everything that varies except the number of added servers (the
    listed scenario's name and the other swept parameters, ``add_servers.fill`` included);
    within a group, the answer for budget X is
    the largest ``servers_added_per_row`` such that it and every smaller value in the group keep
    ``metric`` at or below X (a conservative reading when the curve is not monotone). NaN when
    even the smallest value breaks the budget.
    """
    if table.empty or "servers_added_per_row" not in table.columns:
        return pd.DataFrame(columns=["group", "budget_pct", "max_servers_per_row", "metric"])
    # Only the server count is the x-axis; other add_servers knobs (fill, hardware) are groups.
    keys = ["name", *[c for c in table.columns if c.startswith("param.") and not _server_count_param(c)]]
    grouping = table.assign(**{c: table[c].map(_without_server_count) for c in keys if c == "param.add_servers"})
    out = []
    for group_key, grp in grouping.groupby(keys, sort=True, dropna=False):
        grp = grp.sort_values("servers_added_per_row")
        label = ", ".join(f"{k.removeprefix('param.')}={v}" if k != "name" else str(v)
                          for k, v in zip(keys, group_key if isinstance(group_key, tuple) else (group_key,)))
        for budget in budgets_pct:
            ok = (grp[metric].to_numpy(float) <= float(budget) + 1e-9)
            best = float("nan")
            for n, good in zip(grp["servers_added_per_row"].to_numpy(float), ok):
                if not good:
                    break
                best = n
            out.append({"group": label, "budget_pct": float(budget), "max_servers_per_row": best, "metric": metric})
    return pd.DataFrame(out)


def _server_count_param(column: str) -> bool:
    """A swept server count: ``add_servers.per_row``, or one row's (``add_servers.per_row.R01``)."""
    name = column.removeprefix("param.")
    return any(name == f"add_servers.{k}" or name.startswith(f"add_servers.{k}.") for k in SERVER_COUNT_KEYS)


def _without_server_count(value):
    """A swept whole ``add_servers`` mapping (as JSON text) without its server count: the
    scenarios that differ only in it are one group."""
    try:
        spec = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value
    if not isinstance(spec, dict):
        return value
    return json.dumps({k: v for k, v in spec.items() if k not in SERVER_COUNT_KEYS}, sort_keys=True)


def _remove_stale(out: Path, written: set[str], plots: list[str]) -> None:
    """Remove the tables and figures an earlier run into ``out`` wrote and this one did not (a
    sweep that no longer varies the servers, or whose scenarios all failed): left in place they
    would read as this sweep's results."""
    for name in SUMMARY_FILES:
        if name not in written:
            (out / name).unlink(missing_ok=True)
    keep = {Path(p).name for p in plots}
    if (out / "plots").is_dir():
        for png in (out / "plots").glob("*.png"):
            if png.name not in keep:
                png.unlink()


# ---- the sweep -----------------------------------------------------------------------------------

@dataclass
class SweepResult:
    out_dir: Path
    table: pd.DataFrame
    total: int
    ran: int
    skipped: int
    failed: list[dict] = field(default_factory=list)
    wall_s: float = 0.0
    workers: int | str = DEFAULT_WORKERS
    plots: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def run_sweep(sweep: Sweep, out_dir: str | Path, *, scheduler: str | None = None, workers: int = DEFAULT_WORKERS,
              retries: int = 1, force: bool = False, plots: bool = True, client=None,
              on_result: Callable[[TaskOutcome], None] | None = None,
              task: Callable[[ScenarioSpec], dict] = run_scenario) -> SweepResult:
    """Run every scenario without a current result, write results as they finish, then the tables.

    ``client``: an existing :class:`distributed.Client` (else one is made from ``scheduler`` /
    ``workers``; ``workers=0`` runs the scenarios one by one in this process, without Dask);
    ``on_result`` is called after each scenario's result is written (progress).
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    store = ResultStore(out)
    specs = sweep.by_id()
    todo = {sid: s for sid, s in specs.items() if force or not store.is_done(s)}
    skipped = len(specs) - len(todo)

    def record(outcome: TaskOutcome) -> None:
        store.record(outcome, specs[outcome.key])
        if on_result is not None:
            on_result(outcome)

    if todo:
        if client is not None:
            run_tasks(client, task, todo, retries=retries, on_outcome=record, prefix="whatif")
        elif workers == 0 and scheduler is None:
            run_local(task, todo, on_outcome=record)
        else:
            with dask_client(scheduler, workers) as c:
                run_tasks(c, task, todo, retries=retries, on_outcome=record, prefix="whatif")
    records = [r for r in (store.read(s.id) for s in sweep.scenarios) if r and r.get("spec_hash") == specs[r["scenario_id"]].spec_hash]
    table = results_table(records)
    failed = store.failures(sweep)
    wall = time.perf_counter() - t0
    result = SweepResult(out, table, len(specs), len(todo), skipped, failed, wall,
                         scheduler or workers)
    write_outputs(sweep, result, records, plots)
    return result


SUMMARY_FILES = ("results.csv", "results.parquet", "rows.csv", "deployable.csv")
"""The tables a sweep writes from its finished results (rewritten, or removed, on every run)."""


def write_outputs(sweep: Sweep, result: SweepResult, records: list[dict], plots: bool = True) -> None:
    out = result.out_dir
    table = result.table
    budgets = sweep.report.get("capping_budgets_pct") or list(DEFAULT_BUDGETS_PCT)
    written: set[str] = set()
    if not table.empty:
        tables = {"results.csv": table, "results.parquet": table, "rows.csv": rows_table(records)}
        deploy = deployable_table(table, budgets)
        if deploy.empty or table["servers_added_per_row"].nunique() < 2:
            deploy = deploy.iloc[0:0]  # one server count: no table and no plot ('0 deployable' said nothing)
        else:
            tables["deployable.csv"] = deploy
        # All encoded before any is written: a table that cannot be encoded leaves the others as they were.
        encoded = {name: frame_bytes(frame, Path(name)) for name, frame in tables.items()}
        for name, data in encoded.items():
            atomic_write_bytes(out / name, data)
        written |= set(encoded)
        if plots:
            from tapas_opt.whatif.plots import write_plots

            result.plots = write_plots(table, deploy, out / "plots", budgets)
    _remove_stale(out, written, result.plots)
    evaluators = sorted(set(table["evaluator"])) if not table.empty else []
    from tapas_opt.whatif.evaluate import EVALUATOR_LABELS

    result.summary = {
        "name": sweep.name, "file": sweep.path, "base": sweep.base,
        "scenarios": result.total, "finished": int(len(table)), "ran_now": result.ran,
        "skipped_finished": result.skipped, "failed": len(result.failed),
        "evaluator": {e: EVALUATOR_LABELS[e] for e in evaluators},
        "swept": sweep.swept, "workers": result.workers, "wall_s": round(result.wall_s, 2),
        "failures": [{"scenario_id": f["scenario_id"], "error": f["error"]} for f in result.failed],
        "plots": result.plots,
        "scenario_ids": [s.id for s in sweep.scenarios],
    }
    write_json(out / "sweep.json", result.summary)
