"""What-if sweeps in the report: the outputs of ``tapas-opt whatif`` as tables and sweep charts.

A ``whatif`` output directory (``docs/whatif.md``) has ``results.csv`` (one line per scenario:
its name, the swept parameters as ``param.*`` columns, peaks, capping and throttling) and
``deployable.csv`` (per scenario group and capping budget, the most servers per row that stay
within the budget). The report tables both and draws each metric over the first swept
parameter, one line per scenario name: capping over the oversubscription sweep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from tapas_opt.errors import InventoryError, Problem
from tapas_opt.report.svg import CATEGORICAL, sweep_panel_svg
from tapas_opt.shapes import NUMBER, numeric_columns, read_json_value, read_table_value

METRICS = (("power_capped_row_time_pct", "% of row-time power-capped", "%", 1.0),
           ("thermal_throttled_gpu_time_pct", "% of GPU-time throttled", "%", 1.0),
           ("peak_row_power_fraction", "peak row power / limit (%)", "%", 100.0),
           ("max_gpu_temp_c", "max GPU temperature (°C)", "°C", 1.0))
COLUMNS = {"name": "scenario", "servers_added": "servers added", "vms_added": "VMs added",
           "load_factor_mean": "load ×", "peak_row_power_fraction": "peak row power (of limit)",
           "max_gpu_temp_c": "max GPU °C", "power_capped_row_time_pct": "row-time capped",
           "thermal_throttled_gpu_time_pct": "GPU-time throttled", "vms_unplaced": "VMs unplaced",
           "placement_status": "placement"}


@dataclass(frozen=True)
class WhatIf:
    """One ``tapas-opt whatif`` output directory."""

    path: Path
    sweep: dict
    results: pd.DataFrame
    deployable: pd.DataFrame | None

    @property
    def params(self) -> list[str]:
        return [c for c in self.results.columns if c.startswith("param.")]


HINT = "pass a directory written by 'tapas-opt whatif', or re-run the sweep that wrote it"
NUMBERS = [c for c, *_ in METRICS] + ["servers_added", "vms_added", "load_factor_mean", "vms_unplaced"]
"""results.csv columns the report formats or draws as numbers (their cells must be numbers)."""


def load_whatif(path: str | Path) -> WhatIf:
    """Read a ``tapas-opt whatif`` output directory; files edited or written by something else
    (text in a numeric column, a sweep.json that is no JSON object) are malformed input. A
    results.csv with no line (no scenario finished) is valid: the report says so."""
    path = Path(path)
    csv = path / "results.csv"
    if not csv.exists() and (path / "sweep.json").exists():
        sweep = read_json_value(path / "sweep.json", {"finished": NUMBER, "failures": [dict]}, HINT)
        if sweep.get("finished") == 0:  # whatif writes no tables when every scenario failed
            return WhatIf(path, sweep, pd.DataFrame(columns=["name"]), None)
    results = read_table_value(csv, HINT)
    if "name" not in results.columns:
        raise InventoryError([Problem("missing_column", str(csv), "column 'name' is missing", HINT)])
    results = numeric_columns(results, NUMBERS + _mostly_numbers(results), csv, HINT)
    sweep = read_json_value(path / "sweep.json", {}, HINT, missing={})
    deployable = None
    if (path / "deployable.csv").exists():
        deployable = read_table_value(path / "deployable.csv", HINT)
        deployable = numeric_columns(deployable, [c for c in deployable.columns if c.endswith("_pct")],
                                     path / "deployable.csv", HINT)
    return WhatIf(path, sweep, results, deployable)


def _mostly_numbers(results: pd.DataFrame) -> list[str]:
    """Swept parameters whose cells are numbers but for some text: an edit (a parameter swept
    over names has text in every cell)."""
    counts = {p: (results[p].notna().sum(), pd.to_numeric(results[p], errors="coerce").notna().sum())
              for p in results.columns if p.startswith("param.")}
    return [p for p, (given, numbers) in counts.items() if 0 < numbers < given]


def _sweep_axis(results: pd.DataFrame, params: list[str]) -> str | None:
    """The swept parameter the charts are drawn over: the first whose values are all numbers
    (a parameter swept over names, such as weather files, is shown in the table only)."""
    for p in params:
        values = results[p].dropna()
        if len(values) and pd.to_numeric(values, errors="coerce").notna().all():
            return p
    return None


def _failures(failures: list, shown: int = 10) -> str:
    """The first failures sweep.json lists (scenario and error), so that an empty sweep says why."""
    if not failures:
        return "<p class='muted'>Its sweep.json lists no failure: the sweep may not have run yet.</p>"
    items = "".join(f"<li><code>{escape(str(f.get('scenario_id', '?')))}</code>: {escape(str(f.get('error', '')))}</li>"
                    for f in failures[:shown] if isinstance(f, dict))
    more = f"<p class='muted'>… and {len(failures) - shown} more in sweep.json.</p>" if len(failures) > shown else ""
    return f"<p>{len(failures)} scenario(s) failed:</p><ul>{items}</ul>{more}"


def _fmt(col: str, v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if col == "peak_row_power_fraction":
        return f"{100 * v:.1f} %"
    if col.endswith("_pct"):
        return f"{v:.2f} %"
    if col.endswith("_c"):
        return f"{v:.1f}"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _table(frame: pd.DataFrame, cols: list[str], labels: dict) -> str:
    text = {"name", "placement_status", "group", "metric"}
    head = "".join(f'<th{"" if c in text else " class=n"}>{escape(labels.get(c, c))}</th>' for c in cols)
    body = "".join("<tr>" + "".join(f'<td{"" if c in text else " class=n"}>{escape(_fmt(c, r[c]))}</td>'
                                    for c in cols) + "</tr>" for _, r in frame.iterrows())
    return f'<table class="simulation"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def whatif_section(items: list[WhatIf]) -> str:
    """The report's What-if section."""
    parts = ["<p class='muted'>From <code>tapas-opt whatif</code>: each scenario changes the room (servers added, "
             "load growth, weather, failures), places its pending VMs and scores the week as its evaluator says "
             "(a forecast week or a simulated one).</p>"]
    for w in items:
        r = w.results
        params = w.params
        cols = ["name", *params] + [c for c in COLUMNS if c != "name" and c in r.columns]
        labels = {**COLUMNS, **{p: p.removeprefix("param.") for p in params}}
        title = w.sweep.get("name") or w.path.name
        evaluator = ", ".join(sorted(r["evaluator"].dropna().astype(str).unique())) if "evaluator" in r.columns else ""
        parts.append(f"<h3>{escape(str(title))}</h3><p class='muted'>{len(r)} scenario(s)"
                     + (f", evaluator {escape(evaluator)}" if evaluator else "") + "</p>")
        if r.empty:
            parts.append("<p class='muted'>No scenario of this sweep has finished: nothing to draw.</p>"
                         + _failures(w.sweep.get("failures") or []))
            continue
        x = _sweep_axis(r, params)
        if x is not None:
            names = list(dict.fromkeys(r["name"].astype(str)))
            colours = {n: CATEGORICAL[i % len(CATEGORICAL)] for i, n in enumerate(names)}
            r = r.assign(**{x: pd.to_numeric(r[x])})
            xs = sorted(float(v) for v in r[x].dropna().unique())
            panels = []
            for col, label, unit, scale in METRICS:
                if col not in r.columns:
                    continue
                lines = []
                for n in names:
                    sub = r[r["name"].astype(str) == n].groupby(x)[col].mean()
                    lines.append((n, [float(sub.get(v, np.nan)) * scale for v in xs], colours[n]))
                panels.append(sweep_panel_svg(label, x.removeprefix("param."), xs, lines, unit))
            keys = "".join(f'<span class="key" style="border-color:{colours[n]}"></span>{escape(n)}' for n in names)
            parts.append(f'<p class="muted">{keys}</p><div class="panels">{"".join(panels)}</div>')
        if w.deployable is not None and len(w.deployable):
            d = w.deployable
            parts.append("<h3>Deployable servers within a capping budget</h3>"
                         + _table(d, list(d.columns), {"group": "scenario", "budget_pct": "capping budget",
                                                       "max_servers_per_row": "most servers added per row",
                                                       "metric": "measured by"}))
        parts.append(f"<details><summary>every scenario</summary>{_table(r, cols, labels)}</details>")
    return "".join(parts)
