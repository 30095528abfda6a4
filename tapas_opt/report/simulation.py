"""Simulations in the report: the outputs of ``tapas-opt simulate`` as tables and charts.

Two kinds of directory are read (their formats are the simulator's, see ``docs/cli.md`` and
``tapas_opt/simulate/run.py`` / ``studies.py``):

* a **run** (``comparison.csv``, ``timeseries.parquet``): the policies side by side, each row's
  power over the simulated week per policy against its limit (hourly maxima of the simulator's
  steps, so that a short spike is never hidden), and the room's hottest GPU per policy;
* a **study** (``<study>.csv``, ``summary.json`` with ``study``): one line per sweep point and
  policy, drawn as lines over the sweep (capping and throttling over the oversubscription sweep,
  peaks over the IaaS/SaaS mix) or tabled per event (emergencies).

Columns this module does not know are shown as they are; missing ones are skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from tapas_opt.errors import InventoryError, Problem
from tapas_opt.report.layout import natural_key
from tapas_opt.report.svg import CATEGORICAL, lines_panel_svg, sweep_panel_svg
from tapas_opt.shapes import OPTIONAL, TEXT, numeric_columns, read_json_value, read_table_value, time_column

LABELS = {
    "policy": "policy", "peak_row_power": "peak row power (of limit)", "peak_row_power_change_pct": "vs baseline",
    "max_gpu_temp_c": "max GPU °C", "max_gpu_temp_norm": "max GPU (of limit)", "max_gpu_temp_change_pct": "vs baseline",
    "power_capped_row_time_pct": "row-time power-capped", "power_capped_time_pct": "time power-capped",
    "thermal_throttled_gpu_time_pct": "GPU-time throttled", "thermal_throttled_time_pct": "time throttled",
    "over_limit_after_capping_row_time_pct": "row-time over limit after capping",
    "saas_goodput_pct": "SaaS goodput", "saas_quality": "SaaS quality", "saas_smaller_or_quantised_pct":
    "SaaS served by smaller/quantised", "iaas_perf_lost_pct": "IaaS perf lost", "vms_unplaced": "VMs unplaced",
    "vms": "VMs", "servers": "servers", "extra_servers_pct": "extra servers %", "saas_share_pct": "SaaS share %", "event": "event",
}
HIDDEN = {"placement_s", "engine_s"}
SWEEPS = {
    "oversubscription": ("extra_servers_pct", "extra servers in the same rows (%)",
                         [("power_capped_row_time_pct", "% of row-time power-capped", "%"),
                          ("thermal_throttled_gpu_time_pct", "% of GPU-time throttled", "%"),
                          ("peak_row_power", "peak row power demand / limit", "")]),
    "mix": ("saas_share_pct", "SaaS share of GPUs (%)",
            [("peak_row_power", "peak row power / limit", ""), ("max_gpu_temp_c", "max GPU temperature", "°C")]),
}


@dataclass(frozen=True)
class Simulation:
    """One ``tapas-opt simulate`` output directory (a run or a study)."""

    path: Path
    summary: dict
    table: pd.DataFrame
    study: str | None = None
    timeseries: pd.DataFrame | None = None

    @property
    def room(self) -> str | None:
        """The simulated room's name (datacenter.yaml's), when the run says (a study does not)."""
        name = (self.summary.get("scenario") or {}).get("name")
        return name if isinstance(name, str) else None

    @property
    def title(self) -> str:
        sc = self.summary.get("scenario") or {}
        if self.study:
            return f"{self.study} study ({self.path.name})"
        name = sc.get("name", self.path.name)
        return f"{name}: {sc.get('steps', '?')} steps of {sc.get('step_min', '?')} min ({self.path.name})"


HINT = "pass a directory written by 'tapas-opt simulate', or re-run the command that wrote it"
SHAPE = {"study": TEXT + OPTIONAL, "scenario": (dict, type(None)), "warnings": (list, type(None))}
"""The keys of summary.json the report reads, and their types."""


def _bad(path: Path, message: str) -> InventoryError:
    return InventoryError([Problem("unreadable_file", str(path), message, HINT)])


def _formatted_as_number(col: str) -> bool:
    """Whether :func:`_fmt` formats ``col`` as a number (its cells must be numbers)."""
    return col in ("peak_row_power", "max_gpu_temp_norm") or col.endswith(("_pct", "_c"))


def load_simulation(path: str | Path) -> Simulation:
    """Read a ``tapas-opt simulate`` output directory (run or study); files edited or written by
    something else (keys of another type, text in numeric columns) are malformed input."""
    path = Path(path)
    summary = read_json_value(path / "summary.json", SHAPE, HINT)
    study = summary.get("study")
    csv = path / (f"{study}.csv" if study else "comparison.csv")
    table = read_table_value(csv, HINT)
    if "policy" not in table.columns:
        raise _bad(csv, "it has no 'policy' column")
    table = numeric_columns(table, [c for c in table.columns if _formatted_as_number(c)], csv, HINT)
    ts = None
    if not study and (path / "timeseries.parquet").exists():
        ts = _read_timeseries(path / "timeseries.parquet")
    return Simulation(path, summary, table, study, ts)


def _read_timeseries(file: Path) -> pd.DataFrame:
    ts = read_table_value(file, HINT)
    missing = {"policy", "timestamp", "scope", "id", "metric", "value"} - set(ts.columns)
    if missing:
        raise _bad(file, f"columns {sorted(missing)} are missing")
    ts = time_column(numeric_columns(ts, ["value"], file, HINT, first_line=None), "timestamp", file, HINT,
                     first_line=None)
    for col in ("policy", "scope", "id", "metric"):
        ts[col] = ts[col].astype(str)
    return ts


def _fmt(col: str, v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if col in ("peak_row_power", "max_gpu_temp_norm"):
        return f"{100 * v:.1f} %"
    if col in ("extra_servers_pct", "saas_share_pct"):
        return f"{v:g} %"
    if col.endswith("_change_pct"):
        return f"{v:+.1f} %"
    if col.endswith("_pct"):
        return f"{v:.2f} %"
    if col.endswith("_c"):
        return f"{v:.1f}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def sim_table(frame: pd.DataFrame, reference: str = "baseline") -> str:
    """The simulator's table with readable headers and units; changes are relative to the
    ``reference`` policy (summary.json's ``reference_policy``)."""
    cols = [c for c in frame.columns if c not in HIDDEN]
    labels = {**LABELS, "peak_row_power_change_pct": f"vs {reference}", "max_gpu_temp_change_pct": f"vs {reference}"}
    head = "".join(f'<th{"" if c in ("policy", "event") else " class=n"}>{escape(labels.get(c, c))}</th>' for c in cols)
    body = []
    for _, r in frame.iterrows():
        cells = "".join(f'<td{"" if c in ("policy", "event") else " class=n"}>{escape(_fmt(c, r[c]))}</td>' for c in cols)
        body.append(f"<tr>{cells}</tr>")
    return f'<table class="simulation"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _hourly(ts: pd.DataFrame, scope: str, metric: str, how: str) -> pd.DataFrame:
    """Wide frame (index hour, columns (policy, id)) of one metric, aggregated per hour."""
    sel = ts[(ts["scope"] == scope) & (ts["metric"] == metric)]
    if sel.empty:
        return pd.DataFrame()
    wide = sel.pivot_table(index="timestamp", columns=["policy", "id"], values="value", aggfunc="first")
    wide.index = pd.DatetimeIndex(wide.index)
    return wide.resample("1h").agg(how)


def _colours(policies: list[str]) -> dict[str, str]:
    return {p: CATEGORICAL[i % len(CATEGORICAL)] for i, p in enumerate(policies)}


def run_charts(sim: Simulation) -> str:
    """Per row: power per policy against the row's limit; the room's hottest GPU per policy."""
    ts = sim.timeseries
    if ts is None or ts.empty:
        return ""
    policies = list(dict.fromkeys(sim.table["policy"].astype(str)))
    colours = _colours(policies)
    power = _hourly(ts, "row", "power_kw", "max")
    limit = _hourly(ts, "row", "limit_kw", "min")
    panels = []
    if not power.empty:
        rows = sorted({r for _, r in power.columns}, key=natural_key)
        for row in rows:
            lines = [(p, power[(p, row)].to_numpy(), colours[p]) for p in policies if (p, row) in power.columns]
            lim = None
            if not limit.empty:
                lim_cols = [c for c in limit.columns if c[1] == row]
                lim = limit[lim_cols].min(axis=1).to_numpy() if lim_cols else None
            peaks = ", ".join(f"{p} {np.nanmax(v):.0f}" for p, v, _ in lines)
            panels.append(lines_panel_svg(f"row {row}", f"hourly peak kW: {peaks}", power.index, lines, "kW", lim))
    temp = _hourly(ts, "room", "max_gpu_temp_c", "max")
    if not temp.empty:
        lines = [(p, temp[(p, "room")].to_numpy(), colours[p]) for p in policies if (p, "room") in temp.columns]
        peaks = ", ".join(f"{p} {np.nanmax(v):.1f}" for p, v, _ in lines)
        panels.append(lines_panel_svg("hottest GPU in the room", f"peak °C: {peaks}", temp.index, lines, "°C"))
    keys = "".join(f'<span class="key" style="border-color:{colours[p]}"></span>{escape(p)}' for p in policies)
    return (f'<p class="muted">{keys}<span class="key limit"></span>row limit (lower during an event). Hourly maxima '
            f'of the simulated steps.</p><div class="panels">{"".join(panels)}</div>')


def study_charts(sim: Simulation) -> str:
    """Lines over the sweep per policy (oversubscription, mix); nothing extra for emergencies."""
    spec = SWEEPS.get(sim.study or "")
    f = sim.table
    if spec is None or spec[0] not in f.columns:
        return ""
    x_col, x_label, metrics = spec
    policies = list(dict.fromkeys(f["policy"].astype(str)))
    colours = _colours(policies)
    xs = sorted(f[x_col].unique())
    panels = []
    for col, title, unit in metrics:
        if col not in f.columns:
            continue
        scale = 100.0 if col == "peak_row_power" else 1.0
        lines = []
        for p in policies:
            sub = f[f["policy"].astype(str) == p].set_index(x_col)[col]
            lines.append((p, [float(sub.get(x, np.nan)) * scale for x in xs], colours[p]))
        panels.append(sweep_panel_svg(title + (" (%)" if scale == 100.0 else ""), x_label, [float(x) for x in xs],
                                      lines, "%" if scale == 100.0 else unit))
    keys = "".join(f'<span class="key" style="border-color:{colours[p]}"></span>{escape(p)}' for p in policies)
    return f'<p class="muted">{keys}</p><div class="panels">{"".join(panels)}</div>'


def simulations_section(items: list[Simulation]) -> str:
    """The report's Simulations section: per directory, its table and charts."""
    parts = ["<p class='muted'>From <code>tapas-opt simulate</code>: each VM's actual load replayed over a week "
             "(real traces), rows power-capped over their limits, GPUs throttled over theirs. These are the "
             "simulator's numbers, not this plan's forecast.</p>"]
    for sim in items:
        charts = study_charts(sim) if sim.study else run_charts(sim)
        warnings = sim.summary.get("warnings") or []
        warn = ("<details><summary>warnings</summary><ul>" + "".join(f"<li>{escape(str(w))}</li>" for w in warnings)
                + "</ul></details>") if warnings else ""
        table = sim_table(sim.table, str(sim.summary.get("reference_policy", "baseline")))
        parts.append(f"<h3>{escape(sim.title)}</h3>{table}{charts}{warn}")
    return "".join(parts)
