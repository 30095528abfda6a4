"""Emergencies in the report: the outputs of ``tapas-opt reconfigure`` as a table and a chart.

Each emergency directory holds the ``summary.json`` that ``reconfigure`` writes (see
``docs/reconfiguration.md``): the event, what the SaaS endpoints and IaaS VMs lose, and every
row's power before the event, if nothing were done, and with the reconfiguration plan, against
the reduced limit. The report shows one line per emergency and, per emergency, the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path

from tapas_opt.errors import InventoryError, Problem
from tapas_opt.report.layout import natural_key
from tapas_opt.report.scales import BASELINE_COLOUR, LIMIT_COLOUR, PLAN_COLOUR
from tapas_opt.shapes import NUMBER, OPTIONAL, TEXT, read_json_value

REQUIRED = ("events", "status", "saas", "iaas", "limits")
HINT = "pass a directory written by 'tapas-opt reconfigure', or re-run the command that wrote it"
_N = NUMBER + OPTIONAL
SHAPE = {"events": [{"description": TEXT + OPTIONAL, "event": TEXT + OPTIONAL}], "status": TEXT,
         "saas": {"served_pct": _N, "quality_loss_pct": _N, "perf_change_pct": _N},
         "iaas": {"perf_change_pct": _N, "capped_vms": _N, "vms": _N},
         "reconfiguration": {"reloads": _N, "online_changes": _N},
         "limits": {"peak_row_power_ratio": {"before": _N, "if_unchanged": _N, "after": _N},
                    "max_gpu_temp_c": {"after": _N},
                    "rows": [{"row_id": TEXT, "kw_if_unchanged": _N, "kw_after": _N, "limit_kw_before": _N,
                              "limit_kw": _N}]}}
"""The keys of summary.json the report reads, and their types."""


@dataclass(frozen=True)
class Emergency:
    """One ``tapas-opt reconfigure`` output directory."""

    path: Path
    summary: dict

    @property
    def room(self) -> str | None:
        """The room the plan was made for (summary.json ``name``), if it says."""
        name = self.summary.get("name")
        return None if name is None else str(name)

    @property
    def policy(self) -> str:
        return str(self.summary.get("policy") or "–")

    @property
    def event(self) -> str:
        return "; ".join(e.get("description") or e.get("event", "?") for e in self.summary["events"]) or "none"


def load_emergency(path: str | Path) -> Emergency:
    """Read a ``reconfigure`` output directory; a missing, foreign or edited ``summary.json``
    (keys missing or of another type) is malformed input."""
    file = Path(path) / "summary.json"
    summary = read_json_value(file, SHAPE, HINT)
    missing = [k for k in REQUIRED if k not in summary]
    if missing:
        raise InventoryError([Problem("missing_column", str(file), f"key {k!r} is missing", HINT) for k in missing])
    return Emergency(Path(path), summary)


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _num(x, fmt: str) -> str:
    if x is None:
        return "–"
    text = format(x, fmt)
    return text.replace("-", "", 1).replace("+", "", 1) if float(text.replace("+", "")) == 0 else text


def emergencies_table(items: list[Emergency]) -> str:
    """One line per emergency: what it costs and how close the rows come to their limits."""
    head = ["event", "at", "policy", "status", "SaaS load served", "SaaS quality loss", "SaaS performance",
            "IaaS VMs capped", "IaaS performance", "reloads / online changes",
            "peak row power: before / if nothing is done / with the plan", "max GPU with the plan"]
    rows = []
    for e in items:
        s = e.summary
        saas, iaas, lim = s["saas"], s["iaas"], s["limits"]
        rc = s.get("reconfiguration", {})
        rp = lim.get("peak_row_power_ratio", {})
        temp = lim.get("max_gpu_temp_c", {})
        cls = "better" if s["status"] == "ok" else "worse"
        rows.append(
            f"<tr><td>{escape(e.event)}</td><td>{escape(str(s.get('time', '')))}</td><td>{escape(e.policy)}</td>"
            f'<td><span class="{cls}">{escape(str(s["status"]))}</span></td>'
            f'<td class="n">{_num(saas.get("served_pct"), ".1f")} %</td>'
            f'<td class="n">{_num(saas.get("quality_loss_pct"), ".2f")} %</td>'
            f'<td class="n">{_num(saas.get("perf_change_pct"), "+.1f")} %</td>'
            f'<td class="n">{iaas.get("capped_vms", "–")} of {iaas.get("vms", "–")}</td>'
            f'<td class="n">{_num(iaas.get("perf_change_pct"), "+.1f")} %</td>'
            f'<td class="n">{rc.get("reloads", "–")} / {rc.get("online_changes", "–")}</td>'
            f'<td class="n">{_pct(rp.get("before"))} / {_pct(rp.get("if_unchanged"))} / {_pct(rp.get("after"))}</td>'
            f'<td class="n">{_num(temp.get("after"), ".1f")} °C</td></tr>')
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    return f'<table class="emergencies"><thead><tr>{th}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def emergency_rows_svg(e: Emergency, width: float = 620.0) -> str:
    """Per row: power if nothing is done (grey) and with the plan (blue), against the reduced
    limit (red) and the normal limit (dashed)."""
    rows = sorted(e.summary["limits"].get("rows", []), key=lambda r: natural_key(r.get("row_id", "?")))
    if not rows:
        return ""
    left, right, bar_h, gap, top = 70.0, 16.0, 9.0, 10.0, 22.0
    hi = max(max(r.get("kw_if_unchanged") or 0, r.get("kw_after") or 0, r.get("limit_kw_before") or 0,
                 r.get("limit_kw") or 0) for r in rows) * 1.05 or 1.0
    pw = width - left - right
    height = top + len(rows) * (2 * bar_h + gap) + 20

    def x(v):
        return left + pw * (v or 0) / hi

    parts = [f'<svg class="emergency-chart" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
             f'height="{height:.0f}" xmlns="http://www.w3.org/2000/svg" role="img" '
             f'aria-label="row power during {escape(e.event)}">',
             f'<text class="panel-title" x="{left:.0f}" y="13">{escape(e.event)}: row power (kW)</text>']
    y = top
    for r in rows:
        kw = {k: _num(r.get(k), ".1f") for k in ("kw_if_unchanged", "kw_after", "limit_kw", "limit_kw_before")}
        tip = (f"row {r.get('row_id', '?')}: {kw['kw_if_unchanged']} kW if nothing is done, "
               f"{kw['kw_after']} kW with the plan; limit {kw['limit_kw']} kW during the event "
               f"({kw['limit_kw_before']} kW normally)")
        parts.append(f'<g><title>{escape(tip)}</title>'
                     f'<text class="tick" x="{left - 6:.0f}" y="{y + bar_h + 3:.1f}" text-anchor="end">{escape(r.get("row_id", "?"))}</text>'
                     f'<rect x="{left:.1f}" y="{y:.1f}" width="{x(r.get("kw_if_unchanged")) - left:.1f}" height="{bar_h}" '
                     f'fill="{BASELINE_COLOUR}"/>'
                     f'<rect x="{left:.1f}" y="{y + bar_h:.1f}" width="{x(r.get("kw_after")) - left:.1f}" height="{bar_h}" '
                     f'fill="{PLAN_COLOUR}"/>'
                     f'<line x1="{x(r.get("limit_kw")):.1f}" x2="{x(r.get("limit_kw")):.1f}" y1="{y - 2:.1f}" '
                     f'y2="{y + 2 * bar_h + 2:.1f}" stroke="{LIMIT_COLOUR}" stroke-width="2"/>'
                     f'<line x1="{x(r.get("limit_kw_before")):.1f}" x2="{x(r.get("limit_kw_before")):.1f}" '
                     f'y1="{y - 2:.1f}" y2="{y + 2 * bar_h + 2:.1f}" stroke="#555" stroke-dasharray="3 2"/></g>')
        y += 2 * bar_h + gap
    parts.append(f'<text class="tick" x="{left:.0f}" y="{height - 5:.0f}">grey: if nothing is done · blue: with the '
                 f'plan · red: limit during the event · dashed: normal limit</text></svg>')
    return "".join(parts)


def emergencies_section(items: list[Emergency]) -> str:
    """The report's Emergencies section."""
    charts = "".join(f'<div class="emergency">{emergency_rows_svg(e)}</div>' for e in items)
    return ("<p class='muted'>From <code>tapas-opt reconfigure</code>: what SaaS endpoints and IaaS VMs give up so "
            "that every row, aisle and GPU fits the limits left by each event, at the time given.</p>"
            + emergencies_table(items) + f'<div class="emergency-charts">{charts}</div>')
