"""The self-contained HTML report: one file, inline CSS and SVG, no scripts, no network.

A Content-Security-Policy in the page forbids every script and every external resource, so the
file opens offline and shows the same in any browser. Collapsible sections use ``<details>``.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from html import escape
from pathlib import Path


from tapas_opt import __version__
from tapas_opt.io import atomic_write_text
from tapas_opt.report.data import PlanView, compare_placements
from tapas_opt.report.layout import build_layout, natural_key
from tapas_opt.report.scales import BASELINE_COLOUR, PLAN_COLOUR, power_scale, temperature_scale
from tapas_opt.report.svg import floor_map_svg, fmt_num, legend_svg, series_panels, slot_label

CSS = """
:root { --fg:#1d2330; --muted:#5c6475; --line:#d5d9e0; --bg:#ffffff; --soft:#f4f6f9; --ok:#1e7b3a; --bad:#b3261e; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color:var(--fg); background:var(--bg); }
header { padding:18px 28px 10px; border-bottom:1px solid var(--line); }
h1 { font-size:22px; margin:0 0 4px; } h2 { font-size:18px; margin:28px 0 8px; } h3 { font-size:15px; margin:14px 0 6px; }
.meta { color:var(--muted); font-size:13px; }
nav { padding:6px 28px; background:var(--soft); border-bottom:1px solid var(--line); font-size:13px; }
nav a { margin-right:14px; color:#1f5fa8; text-decoration:none; }
main { padding:0 28px 40px; max-width:1600px; }
.verdict { margin:16px 0 4px; padding:10px 14px; border-radius:6px; font-weight:600; }
.verdict.ok { background:#e7f4ea; color:var(--ok); border:1px solid #b9dfc3; }
.verdict.bad { background:#fbe9e7; color:var(--bad); border:1px solid #f1b8b2; }
.verdict.warn { background:#fff4e0; color:#8a5300; border:1px solid #f0cf8f; }
.cards { display:flex; flex-wrap:wrap; gap:10px; margin:12px 0; }
.card { border:1px solid var(--line); border-radius:6px; padding:8px 12px; min-width:170px; background:var(--soft); }
.card .k { color:var(--muted); font-size:12px; } .card .v { font-size:20px; font-weight:600; }
.card .s { color:var(--muted); font-size:12px; }
table { border-collapse:collapse; margin:8px 0; font-size:13px; }
th, td { border-bottom:1px solid var(--line); padding:4px 10px; text-align:left; vertical-align:top; }
th { background:var(--soft); font-weight:600; } td.n, th.n { text-align:right; font-variant-numeric:tabular-nums; }
.better { color:var(--ok); } .worse { color:var(--bad); }
.maps { display:flex; flex-wrap:wrap; gap:24px; align-items:flex-start; }
.map { flex:1 1 520px; min-width:0; overflow-x:auto; }
.map svg.floor-map { width:100%; height:auto; }
.panels { display:grid; grid-template-columns:repeat(auto-fill, minmax(340px, 1fr)); gap:10px 18px; }
.panels svg { width:100%; height:auto; }
table.emergencies td, table.emergencies th, table.simulation td, table.simulation th { font-size:12px; }
.emergency-charts { display:grid; grid-template-columns:repeat(auto-fill, minmax(560px, 1fr)); gap:10px 24px; }
.emergency-charts svg { width:100%; height:auto; max-width:760px; }
.key { display:inline-block; width:22px; height:0; border-top:2px solid; vertical-align:middle; margin:0 4px 0 10px; }
.key.limit { border-top:2px dashed #c0392b; }
svg text { font-family: inherit; }
svg .server { stroke:#ffffff; stroke-width:0.6; }
svg .rack { fill:none; stroke:#7a8294; stroke-width:0.8; }
svg .placed { fill:#111; stroke:#fff; stroke-width:0.9; }
svg .moved { fill:none; stroke:#111; stroke-width:1.4; }
svg .cold-aisle rect { fill:#dcecfb; } svg .cold-aisle rect.ahu { fill:#7fa9d6; }
svg .hot-aisle { fill:#fbe4dc; }
svg .ahu-label { font-size:10px; fill:#fff; text-anchor:middle; font-weight:600; }
svg .strip-label { font-size:11px; fill:#3d4a5c; }
svg .row-name { font-size:13px; font-weight:600; fill:#1d2330; } svg .row-peak { font-size:11px; fill:#5c6475; }
svg .row-label.over .row-peak { fill:#b3261e; font-weight:600; }
svg .tick { font-size:10px; fill:#5c6475; }
svg .panel-title { font-size:12px; font-weight:600; fill:#1d2330; } svg .panel-sub { font-size:10.5px; fill:#5c6475; }
svg .grid { stroke:#eceef2; stroke-width:1; } svg .frame { fill:none; stroke:#c9ced7; }
svg .plan-line, svg .baseline-line, svg .over-line { fill:none; stroke-width:1.6; stroke-linejoin:round; }
svg .baseline-line { stroke-width:1.2; } svg .over-line { stroke-width:2.2; }
svg .limit { stroke-dasharray:5 3; stroke-width:1.2; } svg .limit-label { font-size:10px; fill:#c0392b; }
svg .peak { fill:#1f5fa8; stroke:#fff; stroke-width:1; }
details { margin:6px 0; } summary { cursor:pointer; color:#1f5fa8; }
.muted { color:var(--muted); } code { background:var(--soft); padding:0 3px; border-radius:3px; }
footer { color:var(--muted); font-size:12px; padding:16px 28px; border-top:1px solid var(--line); }
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'none'"


def _pct(x, nd: int = 1) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{100 * x:.{nd}f} %"


def _temp(x) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.1f} °C"


def _table(headers: list[str], rows: list[list], numeric: set[int] = frozenset(), cls: str = "") -> str:
    head = "".join(f'<th class="n">{escape(h)}</th>' if i in numeric else f"<th>{escape(h)}</th>"
                   for i, h in enumerate(headers))
    body = []
    for r in rows:
        cells = []
        for i, c in enumerate(r):
            raw = c if isinstance(c, _Raw) else escape("" if c is None else str(c))
            cells.append(f'<td class="n">{raw}</td>' if i in numeric else f"<td>{raw}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


class _Raw(str):
    """Already-escaped HTML for a table cell."""


def _delta(plan, base, fmt, lower_is_better: bool = True) -> _Raw:
    if plan is None or base is None or any(isinstance(x, float) and not math.isfinite(x) for x in (plan, base)):
        return _Raw("–")
    d = plan - base
    if abs(d) < 1e-12:
        return _Raw("same")
    good = (d < 0) == lower_is_better
    return _Raw(f'<span class="{"better" if good else "worse"}">{escape(fmt(d))}</span>')


def _cards(view: PlanView) -> str:
    h = view.headline()
    worst_row = view.rows["peak_fraction"].idxmax() if len(view.rows) else None
    worst_aisle = view.aisles["peak_fraction"].idxmax() if len(view.aisles) else None
    bound = h["peak_row_power_bound"]
    cards = [
        ("VMs placed", f"{h['placed']}", f"{h['unplaced']} unplaced · {h['running']} running"
         + (f" · {h['moves']} moved" if h["moves"] else "")),
        ("peak row power", _pct(h["peak_row_power_fraction"]),
         f"of limit, row {worst_row}" + (f" · LP bound {_pct(bound)}" if bound is not None else "")),
        ("max GPU temperature", _temp(h["max_gpu_temp_c"]), f"limit {view.temp_limit_c:.0f} °C · "
                                                           f"placed VMs {_temp(h['max_placed_gpu_temp_c'])}"),
        ("peak aisle airflow", _pct(h["peak_aisle_airflow_fraction"]), f"of AHU limit, aisle {worst_aisle}"),
    ]
    if h["objective"] is not None:
        gap = h["gap"]
        cards.append(("objective", f"{h['objective']:.4f}",
                      (f"gap {gap:.2%} · " if gap is not None else "") + f"solved in {h['solve_time_s'] or 0:.1f} s"))
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="k">{escape(k)}</div><div class="v">{escape(v)}</div>'
        f'<div class="s">{escape(s)}</div></div>' for k, v, s in cards) + "</div>"


def _comparison(view: PlanView, base: PlanView) -> str:
    a, b = view.headline(), base.headline()
    pp = lambda d: f"{100 * d:+.1f} pts"  # noqa: E731
    cc = lambda d: f"{d:+.1f} °C"  # noqa: E731
    nn = lambda d: f"{d:+d}"  # noqa: E731
    rows = [
        ["policy", a["policy"] or "–", b["policy"] or "–", ""],
        ["VMs placed", a["placed"], b["placed"], _delta(a["placed"], b["placed"], nn, lower_is_better=False)],
        ["VMs unplaced", a["unplaced"], b["unplaced"], _delta(a["unplaced"], b["unplaced"], nn)],
        ["peak row power (of limit)", _pct(a["peak_row_power_fraction"]), _pct(b["peak_row_power_fraction"]),
         _delta(a["peak_row_power_fraction"], b["peak_row_power_fraction"], pp)],
        ["peak aisle airflow (of AHU limit)", _pct(a["peak_aisle_airflow_fraction"]),
         _pct(b["peak_aisle_airflow_fraction"]),
         _delta(a["peak_aisle_airflow_fraction"], b["peak_aisle_airflow_fraction"], pp)],
        ["max GPU temperature", _temp(a["max_gpu_temp_c"]), _temp(b["max_gpu_temp_c"]),
         _delta(a["max_gpu_temp_c"], b["max_gpu_temp_c"], cc)],
        ["max GPU temperature of placed VMs", _temp(a["max_placed_gpu_temp_c"]), _temp(b["max_placed_gpu_temp_c"]),
         _delta(a["max_placed_gpu_temp_c"], b["max_placed_gpu_temp_c"], cc)],
        ["limits broken", a["violations"], b["violations"], _delta(a["violations"], b["violations"], nn)],
    ]
    if a["peak_row_power_fraction"] and b["peak_row_power_fraction"]:
        rel = a["peak_row_power_fraction"] / b["peak_row_power_fraction"] - 1
        rows.append(["peak row power, relative", "", "", _Raw(
            f'<span class="{"better" if rel < 0 else "worse" if rel > 0 else ""}">{100 * rel:+.1f} %</span>')])
    return _table(["", view.label, base.label, "difference"], rows, numeric={1, 2, 3})


def _check_warnings(view: PlanView) -> str:
    """What the check warns about (as verify does): above the verdict, since a plan checked
    against another room makes every number below doubtful."""
    return "".join(f'<div class="verdict warn">Warning ({escape(view.label)}): {escape(w)}</div>'
                   for w in view.warnings)


def _verdict(view: PlanView) -> str:
    n_slots = len(view.horizon)
    if view.violations:
        return (f'<div class="verdict bad">The plan breaks {len(view.violations)} limit(s): see '
                f'<a href="#violations">violations</a>.</div>')
    pre = (f" ({len(view.preexisting)} limit(s) are broken by running VMs on their own; see "
           f'<a href="#violations">below</a>)') if view.preexisting else ""
    return (f'<div class="verdict ok">Checked with physics alone (as <code>tapas-opt verify</code>): no row, aisle '
            f'or GPU limit is broken at any of the {n_slots} time slots{pre}.</div>')


def _maps(view: PlanView, base: PlanView | None, metric: str) -> str:
    views = [view] + ([base] if base is not None else [])
    if metric == "temp":
        temps = [t for v in views for t in v.servers["peak_gpu_temp_c"].dropna()]
        scale = temperature_scale(temps, view.temp_limit_c)
    else:
        scale = power_scale()
    layout = build_layout(view.servers, view.rows)
    blocks = []
    for v in views:
        svg_id = f"floor-map-{metric}" + ("" if v is view else "-baseline")
        blocks.append(f'<div class="map"><h3>{escape(v.label)}</h3>{floor_map_svg(v, layout, metric, scale, svg_id)}</div>')
    moved = any(len(v.moves) for v in views)
    return f'<div class="maps">{"".join(blocks)}</div>{legend_svg(scale, moved=moved)}'


def _series_section(view: PlanView, base: PlanView | None, kind: str) -> str:
    if kind == "row":
        frame, limits, unit, nd = view.row_kw, view.rows["limit_kw"], "kW", 1
        aisle = view.rows["aisle_id"]
        label_of = lambda r: f"row {r} (aisle {aisle[r]})"  # noqa: E731
        other = base.row_kw if base is not None else None
    else:
        frame, limits, unit, nd = view.aisle_cfm, view.aisles["limit_cfm"], "CFM", 0
        label_of = lambda a: f"aisle {a}"  # noqa: E731
        other = base.aisle_cfm if base is not None else None
    keys = (f'<span class="key" style="border-color:{PLAN_COLOUR}"></span>{escape(view.label)}'
            + (f'<span class="key" style="border-color:{BASELINE_COLOUR}"></span>{escape(base.label)}' if base else "")
            + '<span class="key limit"></span>limit')
    return f'<p class="muted">{keys}</p><div class="panels">{"".join(series_panels(frame, limits, unit, nd, label_of, other))}</div>'


def _peak_tables(view: PlanView, base: PlanView | None) -> str:
    rows = []
    for r in sorted(view.rows.index, key=natural_key):
        x = view.rows.loc[r]
        line = [r, x.aisle_id, fmt_num(x.limit_kw), fmt_num(x.peak_kw), _pct(x.peak_fraction), slot_label(x.peak_at)]
        if base is not None:
            y = base.rows.loc[r]
            line += [_pct(y.peak_fraction), _delta(x.peak_fraction, y.peak_fraction, lambda d: f"{100 * d:+.1f} pts")]
        rows.append(line)
    head = ["row", "aisle", "limit kW", "peak kW", "peak of limit", "when"]
    if base is not None:
        head += [f"{base.label}: peak of limit", "difference"]
    out = "<h3>Rows</h3>" + _table(head, rows, numeric={2, 3, 4, 6, 7})
    rows = []
    for a in sorted(view.aisles.index, key=natural_key):
        x = view.aisles.loc[a]
        line = [a, fmt_num(x.limit_cfm, 0), fmt_num(x.peak_cfm, 0), _pct(x.peak_fraction), slot_label(x.peak_at)]
        if base is not None:
            y = base.aisles.loc[a]
            line += [_pct(y.peak_fraction), _delta(x.peak_fraction, y.peak_fraction, lambda d: f"{100 * d:+.1f} pts")]
        rows.append(line)
    head = ["aisle", "AHU limit CFM", "peak CFM", "peak of limit", "when"]
    if base is not None:
        head += [f"{base.label}: peak of limit", "difference"]
    return out + "<h3>Aisles</h3>" + _table(head, rows, numeric={1, 2, 3, 5, 6})


def _unplaced(view: PlanView) -> str:
    if not view.unplaced:
        return '<p class="muted">Every pending VM has a server.</p>'
    rows = [[u.get("vm_id"), u.get("code"), u.get("message")] for u in view.unplaced]
    return _table(["VM", "code", "why (the limit that binds)"], rows)


def _violations(view: PlanView) -> str:
    parts = []
    if view.violations:
        parts.append(_table(["limit", "where", "value", "limit value", "message"],
                            [[v["code"], v["subject"], v["value"], v["limit"], v["message"]] for v in view.violations],
                            numeric={2, 3}))
    else:
        parts.append('<p class="muted">The plan breaks no limit.</p>')
    if view.preexisting:
        parts.append(f"<details><summary>{len(view.preexisting)} limit(s) broken by running VMs on their own "
                     "(no placement can repair them; new VMs are kept out of those rows and aisles)</summary>"
                     + _table(["limit", "where", "message"],
                              [[v["code"], v["subject"], v["message"]] for v in view.preexisting]) + "</details>")
    return "".join(parts)


def _placed(view: PlanView) -> str:
    if view.placed.empty:
        return '<p class="muted">This plan places no VM.</p>'
    p = view.placed.sort_values("vm_id", key=lambda s: s.map(natural_key))
    rows = [[r.vm_id, r.kind, r.gpus, r.server_id, r.row_id, _temp(r.peak_gpu_temp_c), r.binding, r.reason]
            for r in p.itertuples()]
    return (f"<details><summary>{len(p)} VM(s) placed by this plan, with the limit that binds each</summary>"
            + _table(["VM", "kind", "GPUs", "server", "row", "peak GPU", "binding", "why this server"], rows,
                     numeric={2, 5}) + "</details>")


def _moves(view: PlanView) -> str:
    m = view.moves
    nightly = view.summary.get("nightly") or {}
    intro = (f"<p>This plan moves {len(m)} running VM(s); the figures show the room after every move. ")
    if nightly.get("peak_row_power_without_moves") is not None:
        intro += (f"The plan's own numbers: peak row power {_pct(nightly['peak_row_power_without_moves'])} without "
                  f"the moves, {_pct(nightly.get('peak_row_power_with_moves'))} with them. ")
    intro += "Moves run in the order below; a hollow ring on the floor map marks where a VM moves to.</p>"
    cols = [c for c in ("step", "vm_id", "from_server", "to_server", "from_row", "to_row", "in_flight_peak_row_power",
                        "in_flight_violations", "peak_row_power_after", "max_gpu_temp_after_c") if c in m.columns]
    rows = []
    for r in m[cols].itertuples(index=False):
        rows.append([_pct(v) if c.endswith("row_power") or c == "peak_row_power_after" else
                     (f"{v:.1f}" if isinstance(v, float) else v) for c, v in zip(cols, r)])
    numeric = {i for i, c in enumerate(cols) if c not in ("vm_id", "from_server", "to_server", "from_row", "to_row")}
    names = {"vm_id": "VM", "from_server": "from server", "to_server": "to server", "from_row": "from row",
             "to_row": "to row", "in_flight_peak_row_power": "peak row power while moving",
             "in_flight_violations": "limits broken while moving", "peak_row_power_after": "peak row power after",
             "max_gpu_temp_after_c": "max GPU °C after"}
    return intro + _table([names.get(c, c) for c in cols], rows, numeric=numeric)


def _differences(view: PlanView, base: PlanView) -> str:
    diff = compare_placements(view, base)
    if diff.empty:
        return '<p class="muted">Both plans put every pending VM on the same server.</p>'
    same_row = (diff["row_id_plan"] == diff["row_id_baseline"]).sum()
    rows = [[r.vm_id, r.server_id_plan or "unplaced", r.row_id_plan, r.server_id_baseline or "unplaced",
             r.row_id_baseline] for r in diff.itertuples()]
    return (f"<p>{len(diff)} pending VM(s) go to a different server ({same_row} of them in the same row).</p>"
            f"<details><summary>VMs placed differently</summary>"
            + _table(["VM", f"server ({view.label})", "row", f"server ({base.label})", "row"], rows) + "</details>")


def render_report(view: PlanView, baseline: PlanView | None = None, title: str | None = None,
                  generated_at: datetime | None = None, emergencies: list | None = None,
                  simulations: list | None = None, whatifs: list | None = None) -> str:
    """The whole report as one HTML string (see the module docstring). ``emergencies`` are
    :class:`~tapas_opt.report.emergency.Emergency` outputs of ``tapas-opt reconfigure``,
    ``simulations`` :class:`~tapas_opt.report.simulation.Simulation` outputs of ``tapas-opt simulate``,
    ``whatifs`` :class:`~tapas_opt.report.whatif.WhatIf` outputs of ``tapas-opt whatif``."""
    s = view.summary
    title = title or f"tapas-opt report: {view.inventory_name}"
    when = (generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    h = view.horizon
    step = int((h[1] - h[0]).total_seconds() // 60) if len(h) > 1 else 0
    meta = (f"plan <code>{escape(str(view.plan_dir))}</code> · policy {escape(str(s.get('policy', 'unknown')))} · "
            f"status {escape(str(s.get('status', 'unknown')))} · horizon {h[0]:%Y-%m-%d %H:%M} – {h[-1]:%Y-%m-%d %H:%M} "
            f"({len(h)} slots of {step} min) · load band {escape(view.quantile)}")
    if baseline is not None:
        meta += f"<br>baseline <code>{escape(str(baseline.plan_dir))}</code> · policy {escape(str(baseline.summary.get('policy', 'unknown')))}"
    nav = [("summary", "Summary"), ("floor-temp", "Floor map: temperature"), ("floor-power", "Floor map: power"),
           ("row-power", "Row power"), ("aisle-airflow", "Aisle airflow"), ("peaks", "Peaks"),
           ("unplaced", "Unplaced VMs"), ("violations", "Violations"), ("placed", "Placed VMs")]
    if baseline is not None:
        nav.append(("differences", "Differences"))
    sections = [
        ("summary", "Summary", _check_warnings(view) + (_check_warnings(baseline) if baseline else "")
         + _verdict(view) + _cards(view) + (_comparison(view, baseline) if baseline else "")
         + (f"<p class='muted'>{escape(baseline.label)}: " + ("no limit broken." if baseline.ok else
            f"breaks {len(baseline.violations)} limit(s).") + "</p>" if baseline else "")),
        ("floor-temp", "Floor map: peak GPU temperature",
         "<p class='muted'>Each server is coloured by the peak over the horizon of its hottest GPU (the hottest of its "
         "VMs); grey servers have no VM. A dark dot marks a server that receives a VM in this plan. Hover a server "
         "for its numbers.</p>" + _maps(view, baseline, "temp")),
        ("floor-power", "Floor map: server power",
         "<p class='muted'>Each server is coloured by its peak power over the horizon, from its idle power (0 %) to its "
         "maximum (100 %); "
         "each row's label gives its peak against the row's power limit, each cold aisle's its AHU peak.</p>"
         + _maps(view, baseline, "power")),
        ("row-power", "Row power over the horizon", _series_section(view, baseline, "row")),
        ("aisle-airflow", "Aisle airflow over the horizon", _series_section(view, baseline, "aisle")),
        ("peaks", "Peaks per row and aisle", _peak_tables(view, baseline)),
        ("unplaced", f"Unplaced VMs ({len(view.unplaced)})", _unplaced(view)),
        ("violations", "Violations", _violations(view)),
        ("placed", "Placed VMs", _placed(view)),
    ]
    if len(view.moves):
        sections.insert(1, ("moves", f"Moves ({len(view.moves)})", _moves(view)))
        nav.insert(1, ("moves", "Moves"))
    if baseline is not None:
        sections.append(("differences", f"Differences from {baseline.label}", _differences(view, baseline)))
    if emergencies:
        from tapas_opt.report.emergency import emergencies_section

        sections.append(("emergencies", f"Emergencies ({len(emergencies)})", emergencies_section(emergencies)))
        nav.append(("emergencies", "Emergencies"))
    if simulations:
        from tapas_opt.report.simulation import simulations_section

        sections.append(("simulations", f"Simulations ({len(simulations)})", simulations_section(simulations)))
        nav.append(("simulations", "Simulations"))
    if whatifs:
        from tapas_opt.report.whatif import whatif_section

        sections.append(("whatif", f"What-if ({len(whatifs)})", whatif_section(whatifs)))
        nav.append(("whatif", "What-if"))
    warnings = s.get("warnings") or []
    if warnings:
        sections.append(("warnings", "Input warnings", "<ul>" + "".join(f"<li>{escape(str(w))}</li>" for w in warnings)
                         + "</ul>"))
    body = "".join(f'<section id="{sid}"><h2>{escape(head)}</h2>{html}</section>' for sid, head, html in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<header><h1>{escape(title)}</h1><div class="meta">{meta}</div></header>
<nav>{"".join(f'<a href="#{sid}">{escape(text)}</a>' for sid, text in nav)}</nav>
<main>{body}</main>
<footer>Made by tapas-opt {escape(__version__)} on {when}. Every number and figure of the plan is recomputed from the
inventory and the plan with the physics module alone (the check <code>tapas-opt verify</code> makes), using the plan's
own load profiles (<code>profiles.parquet</code>) at its load band. Temperatures are the hottest GPU of each VM; row
power and aisle airflow include idle servers. Emergencies, simulations and what-if sweeps, when shown, are the
outputs of <code>tapas-opt reconfigure</code>, <code>simulate</code> and <code>whatif</code> as they wrote them.</footer>
</body>
</html>
"""


def write_report(path: str | Path, view: PlanView, baseline: PlanView | None = None, title: str | None = None,
                 emergencies: list | None = None, simulations: list | None = None, whatifs: list | None = None) -> Path:
    """Write :func:`render_report` to ``path`` atomically; returns the path."""
    path = Path(path)
    atomic_write_text(path, render_report(view, baseline, title, emergencies=emergencies, simulations=simulations,
                                          whatifs=whatifs))
    return path
