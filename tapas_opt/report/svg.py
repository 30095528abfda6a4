"""Inline SVG figures for the HTML report: no scripts, tooltips as SVG ``<title>`` elements.

Every function returns an SVG string; text is escaped here. The floor map draws the room from a
:class:`~tapas_opt.report.layout.FloorLayout`; the time-series panels draw one row (or aisle) per
panel against its limit, with an optional baseline plan in grey.
"""

from __future__ import annotations

import math
from html import escape
from itertools import count

import numpy as np
import pandas as pd

from tapas_opt.report.data import PlanView
from tapas_opt.report.layout import LABEL_W, FloorLayout, natural_key
from tapas_opt.report.scales import BASELINE_COLOUR, LIMIT_COLOUR, PLAN_COLOUR, ColourScale

_ids = count()


def _uid(prefix: str) -> str:
    return f"{prefix}{next(_ids)}"


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def fmt_num(x: float, nd: int = 1) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:,.{nd}f}"


def slot_label(ts: pd.Timestamp) -> str:
    return ts.strftime("%a %d %b %H:%M")


# ---- floor map --------------------------------------------------------------------------------

def server_value(view: PlanView, metric: str) -> pd.Series:
    """Colour value per server: ``temp`` = peak hottest-GPU temperature (°C, NaN if no VM),
    ``power`` = peak server power between idle (0 %) and maximum (100 %) (NaN if no VM)."""
    s = view.servers
    if metric == "temp":
        return s["peak_gpu_temp_c"]
    if metric == "power":
        span = (s["max_kw"] - s["idle_kw"]).where(s["max_kw"] > s["idle_kw"])
        return (100.0 * (s["peak_kw"] - s["idle_kw"]) / span).clip(0, 100).fillna(100.0).where(s["vms"] != "")
    raise ValueError(f"unknown floor-map metric {metric!r}: use 'temp' or 'power'")


def floor_map_svg(view: PlanView, layout: FloorLayout, metric: str, scale: ColourScale, svg_id: str) -> str:
    """The room seen from above: aisles, rows, racks, servers coloured by ``metric``; servers
    that receive a VM in this plan carry a dark dot."""
    values = server_value(view, metric)
    srv = view.servers
    w, h = layout.width, layout.height
    out = [f'<svg id="{escape(svg_id)}" class="floor-map" role="img" viewBox="0 0 {_f(w)} {_f(h)}" '
           f'width="{_f(w)}" height="{_f(h)}" style="max-width:{_f(1.5 * w)}px" xmlns="http://www.w3.org/2000/svg" '
           f'aria-label="floor map of {escape(view.label)} coloured by {escape(scale.label)}">']
    for _, r in layout.hot_aisles.iterrows():
        out.append(f'<rect class="hot-aisle" x="{_f(r.x)}" y="{_f(r.y)}" width="{_f(r.w)}" height="{_f(r.h)}"/>'
                   f'<text class="strip-label" x="{_f(r.x + LABEL_W)}" y="{_f(r.y + r.h / 2 + 4)}">hot aisle</text>')
    for _, a in layout.aisles.iterrows():
        info = view.aisles.loc[a.aisle_id]
        text = f"{a.aisle_id} cold aisle · AHU peak {info.peak_fraction:.0%} of {fmt_num(info.limit_cfm, 0)} CFM"
        tip = (f"cold aisle {a.aisle_id}: the servers pull at most {fmt_num(info.peak_cfm, 0)} CFM, "
               f"{info.peak_fraction:.1%} of the {fmt_num(info.limit_cfm, 0)} CFM its AHU supplies, "
               f"at {slot_label(info.peak_at)}")
        out.append(f'<g class="cold-aisle"><title>{escape(tip)}</title>'
                   f'<rect x="{_f(a.x)}" y="{_f(a.y)}" width="{_f(a.w)}" height="{_f(a.h)}"/>'
                   f'<rect class="ahu" x="{_f(a.x + 4)}" y="{_f(a.y + 3)}" width="34" height="{_f(a.h - 6)}"/>'
                   f'<text class="ahu-label" x="{_f(a.x + 21)}" y="{_f(a.y + a.h / 2 + 4)}">AHU</text>'
                   f'<text class="strip-label" x="{_f(a.x + LABEL_W)}" y="{_f(a.y + a.h / 2 + 4)}">{escape(text)}</text></g>')
    for row_id, r in layout.rows.iterrows():
        info = view.rows.loc[row_id]
        cls = "row-label over" if info.peak_fraction > 1 + 1e-9 else "row-label"
        out.append(f'<g class="{cls}"><title>{escape(f"row {row_id}: peak {info.peak_kw:.1f} of {info.limit_kw:.1f} kW at {slot_label(info.peak_at)}")}</title>'
                   f'<text x="{_f(r.x + 6)}" y="{_f(r.y + r.h / 2 - 2)}" class="row-name">{escape(str(row_id))}</text>'
                   f'<text x="{_f(r.x + 6)}" y="{_f(r.y + r.h / 2 + 12)}" class="row-peak">peak {info.peak_fraction:.0%} of '
                   f'{fmt_num(info.limit_kw, 0)} kW</text></g>')
    for _, k in layout.racks.iterrows():
        out.append(f'<rect class="rack" x="{_f(k.x - 1)}" y="{_f(k.y - 1)}" width="{_f(k.w + 2)}" height="{_f(k.h + 2)}">'
                   f'<title>{escape(f"rack {k.rack} (row {k.row_id})")}</title></rect>')
    dots = []
    for sid, g in layout.servers.iterrows():
        info = srv.loc[sid]
        v = values.loc[sid]
        colour = scale.colour(v)
        tip = [f"server {sid} (rack {info.rack}, row {info.row_id}, aisle {info.aisle_id})",
               f"GPUs used {info.used_gpus} of {info.gpus}"]
        if info.vms:
            tip.append(f"peak hottest GPU {info.peak_gpu_temp_c:.1f} °C (limit {view.temp_limit_c:.0f} °C)")
            tip.append(f"peak power {info.peak_kw:.2f} of {info.max_kw:.2f} kW")
            running = [x for x in info.vms.split(",") if x not in set(info.placed_vms.split(","))]
            if running:
                tip.append("running: " + ", ".join(running))
            if info.placed_vms:
                tip.append("placed by this plan: " + info.placed_vms)
            if info.moved_in:
                tip.append("moved here by this plan: " + info.moved_in)
        else:
            tip.append("no VM")
        out.append(f'<rect class="server" x="{_f(g.x)}" y="{_f(g.y)}" width="{_f(g.w)}" height="{_f(g.h)}" '
                   f'fill="{colour}"><title>{escape(chr(10).join(tip))}</title></rect>')
        if info.moved_in:
            r = max(1.8, min(3.6, g.h / 2 - 0.8))
            dots.append(f'<circle class="moved" cx="{_f(g.x + g.w / 2)}" cy="{_f(g.y + g.h / 2)}" r="{_f(r)}">'
                        f'<title>{escape("moved here by this plan: " + info.moved_in)}</title></circle>')
        if info.n_placed:
            r = max(1.6, min(3.2, g.h / 2 - 1))
            dots.append(f'<circle class="placed" cx="{_f(g.x + g.w / 2)}" cy="{_f(g.y + g.h / 2)}" r="{_f(r)}">'
                        f'<title>{escape("placed by this plan: " + info.placed_vms)}</title></circle>')
    out.extend(dots)
    out.append("</svg>")
    return "".join(out)


def legend_svg(scale: ColourScale, width: float = 420.0, moved: bool = False) -> str:
    """Colour bar of ``scale`` with ticks, plus the 'no VM' and 'placed' keys."""
    gid = _uid("grad")
    stops = "".join(f'<stop offset="{i / (len(scale.palette) - 1):.3f}" stop-color="{c}"/>'
                    for i, c in enumerate(scale.palette))
    width = width + (60 if moved else 0)
    bar_w = width - 200 - (60 if moved else 0)
    parts = [f'<svg class="legend" viewBox="-10 0 {_f(width)} 46" width="{_f(width)}" height="46" '
             f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="legend: {escape(scale.label)}">',
             f'<defs><linearGradient id="{gid}" x1="0" x2="1" y1="0" y2="0">{stops}</linearGradient></defs>',
             f'<rect x="0" y="6" width="{_f(bar_w)}" height="12" fill="url(#{gid})" stroke="#777" stroke-width="0.5"/>']
    for t in scale.ticks(5):
        x = bar_w * scale.fraction(t)
        parts.append(f'<line x1="{_f(x)}" x2="{_f(x)}" y1="18" y2="22" stroke="#555"/>'
                     f'<text class="tick" x="{_f(x)}" y="33" text-anchor="middle">{t:.0f}</text>')
    x0 = bar_w + 14
    if scale.over:
        parts.append(f'<rect x="{_f(x0)}" y="6" width="12" height="12" fill="{scale.over}"/>'
                     f'<text class="tick" x="{_f(x0 + 16)}" y="16">over</text>')
        x0 += 52
    parts.append(f'<rect x="{_f(x0)}" y="6" width="12" height="12" fill="#e4e4e4" stroke="#999" stroke-width="0.5"/>'
                 f'<text class="tick" x="{_f(x0 + 16)}" y="16">no VM</text>'
                 f'<circle cx="{_f(x0 + 72)}" cy="12" r="3.2" class="placed"/>'
                 f'<text class="tick" x="{_f(x0 + 80)}" y="16">placed</text>'
                 + (f'<circle cx="{_f(x0 + 132)}" cy="12" r="3.4" class="moved"/>'
                    f'<text class="tick" x="{_f(x0 + 140)}" y="16">moved</text>' if moved else "")
                 + f'<text class="tick" x="0" y="43">{escape(scale.label)} ({escape(scale.unit)})</text></svg>')
    return "".join(parts)


# ---- time series ------------------------------------------------------------------------------

def _nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    span = max(hi - lo, 1e-9)
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _day_ticks(index: pd.DatetimeIndex) -> list[int]:
    """Slot positions of midnights (every day up to 14 days, else Mondays)."""
    mid = np.flatnonzero((index.hour == 0) & (index.minute == 0))
    if len(index) and (index[-1] - index[0]) > pd.Timedelta(days=14):
        mid = np.array([i for i in mid if index[i].dayofweek == 0], int)
    return list(mid)


def series_panel_svg(name: str, series: pd.Series, limit: float, unit: str, nd: int,
                     baseline: pd.Series | None = None, width: float = 360.0, height: float = 165.0) -> str:
    """One subject (row or aisle) over the horizon: the plan's series, its limit (red dashed),
    the peak marked; the baseline's series in grey if given; the stretch above the limit red."""
    left, right, top, bottom = 52.0, 12.0, 30.0, 22.0
    pw, ph = width - left - right, height - top - bottom
    values = series.to_numpy(float)
    n = len(values)
    all_vals = [values] + ([baseline.to_numpy(float)] if baseline is not None else [])
    vmax = max(float(np.nanmax(v)) for v in all_vals)
    vmin = min(float(np.nanmin(v)) for v in all_vals)
    hi = max(limit, vmax) * 1.06
    lo = 0.0 if vmin < 0.35 * limit else vmin - 0.12 * (hi - vmin)
    ticks = _nice_ticks(lo, hi)
    lo = min(lo, ticks[0])

    def px(i):
        return left + (pw * i / max(n - 1, 1))

    def py(v):
        return top + ph * (1 - (v - lo) / (hi - lo))

    def path(vals):
        return " ".join(f"{'M' if i == 0 else 'L'}{_f(px(i))},{_f(py(v))}" for i, v in enumerate(vals))

    clip = _uid("over")
    t_peak = int(np.nanargmax(values))
    peak = values[t_peak]
    frac = peak / limit
    title = f"{name}: peak {fmt_num(peak, nd)} {unit} = {frac:.1%} of limit, {slot_label(series.index[t_peak])}"
    if baseline is not None:
        b = baseline.to_numpy(float)
        title += f"; baseline peak {fmt_num(float(np.nanmax(b)), nd)} {unit} = {np.nanmax(b) / limit:.1%}"
    parts = [f'<svg class="chart" data-subject="{escape(name)}" viewBox="0 0 {_f(width)} {_f(height)}" '
             f'width="{_f(width)}" height="{_f(height)}" xmlns="http://www.w3.org/2000/svg" role="img" '
             f'aria-label="{escape(title)}">',
             f'<defs><clipPath id="{clip}"><rect x="{_f(left)}" y="{_f(top - 2)}" width="{_f(pw)}" '
             f'height="{_f(max(py(limit) - top + 2, 0))}"/></clipPath></defs>',
             f'<text class="panel-title" x="{_f(left)}" y="13">{escape(name)}</text>',
             f'<text class="panel-sub" x="{_f(left)}" y="25">peak {fmt_num(peak, nd)} {escape(unit)} '
             f'({frac:.1%} of limit), {escape(slot_label(series.index[t_peak]))}</text>']
    for t in ticks:
        y = py(t)
        parts.append(f'<line class="grid" x1="{_f(left)}" x2="{_f(left + pw)}" y1="{_f(y)}" y2="{_f(y)}"/>'
                     f'<text class="tick" x="{_f(left - 4)}" y="{_f(y + 3)}" text-anchor="end">{t:,.0f}</text>')
    for i in _day_ticks(series.index):
        x = px(i)
        parts.append(f'<line class="grid" x1="{_f(x)}" x2="{_f(x)}" y1="{_f(top)}" y2="{_f(top + ph)}"/>'
                     f'<text class="tick" x="{_f(x + 2)}" y="{_f(top + ph + 13)}">{series.index[i].strftime("%a")}</text>')
    parts.append(f'<rect class="frame" x="{_f(left)}" y="{_f(top)}" width="{_f(pw)}" height="{_f(ph)}"/>')
    if baseline is not None:
        parts.append(f'<path class="baseline-line" d="{path(baseline.to_numpy(float))}" stroke="{BASELINE_COLOUR}">'
                     f'<title>baseline</title></path>')
    parts.append(f'<path class="plan-line" d="{path(values)}" stroke="{PLAN_COLOUR}"><title>{escape(title)}</title></path>')
    if peak > limit:
        parts.append(f'<path class="over-line" d="{path(values)}" stroke="{LIMIT_COLOUR}" clip-path="url(#{clip})"/>')
    parts.append(f'<line class="limit" x1="{_f(left)}" x2="{_f(left + pw)}" y1="{_f(py(limit))}" y2="{_f(py(limit))}" '
                 f'stroke="{LIMIT_COLOUR}"><title>limit {fmt_num(limit, nd)} {escape(unit)}</title></line>'
                 f'<text class="limit-label" x="{_f(left + pw - 2)}" y="{_f(py(limit) - 3)}" text-anchor="end">'
                 f'limit {fmt_num(limit, nd)} {escape(unit)}</text>')
    parts.append(f'<circle class="peak" cx="{_f(px(t_peak))}" cy="{_f(py(peak))}" r="3.2"><title>{escape(title)}</title></circle>')
    parts.append(f'<text class="tick" x="4" y="{_f(top + ph / 2)}" transform="rotate(-90 10 {_f(top + ph / 2)})" '
                 f'text-anchor="middle">{escape(unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def series_panels(frame: pd.DataFrame, limits: pd.Series, unit: str, nd: int, label_of,
                  baseline: pd.DataFrame | None = None) -> list[str]:
    """One :func:`series_panel_svg` per column of ``frame``, in natural order of the names."""
    out = []
    for col in sorted(frame.columns, key=natural_key):
        base = baseline[col] if baseline is not None and col in baseline.columns else None
        out.append(series_panel_svg(label_of(col), frame[col], float(limits[col]), unit, nd, base))
    return out


CATEGORICAL = ("#1f5fa8", "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
               "#666666", "#17becf", "#bcbd22", "#8c564b")
"""Line colours for several policies (ColorBrewer Dark2 and Tableau tones, colour-blind aware first)."""


def lines_panel_svg(title: str, subtitle: str, index: pd.DatetimeIndex, lines: list[tuple[str, np.ndarray, str]],
                    unit: str, limit: np.ndarray | None = None, width: float = 360.0, height: float = 165.0) -> str:
    """Several labelled series over one time index, with an optional (possibly time-varying)
    limit drawn as a red dashed step line."""
    left, right, top, bottom = 52.0, 12.0, 30.0, 22.0
    pw, ph = width - left - right, height - top - bottom
    n = len(index)
    arrays = [np.asarray(v, float) for _, v, _ in lines] + ([np.asarray(limit, float)] if limit is not None else [])
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays]) if arrays else np.zeros(1)
    if finite.size == 0:
        finite = np.zeros(1)
    vmax, vmin = float(finite.max()), float(finite.min())
    hi = vmax + 0.06 * max(vmax - vmin, abs(vmax), 1e-9)
    ref = float(np.nanmax(limit)) if limit is not None and np.isfinite(limit).any() else vmax
    lo = 0.0 if vmin < 0.35 * ref else vmin - 0.12 * (hi - vmin)
    ticks = _nice_ticks(lo, hi)
    lo = min(lo, ticks[0])

    def px(i):
        return left + pw * i / max(n - 1, 1)

    def py(v):
        return top + ph * (1 - (v - lo) / (hi - lo if hi > lo else 1.0))

    def path(vals):
        pts = [(px(i), py(v)) for i, v in enumerate(vals) if np.isfinite(v)]
        return " ".join(f"{'M' if k == 0 else 'L'}{_f(x)},{_f(y)}" for k, (x, y) in enumerate(pts))

    parts = [f'<svg class="chart sim-chart" data-subject="{escape(title)}" viewBox="0 0 {_f(width)} {_f(height)}" '
             f'width="{_f(width)}" height="{_f(height)}" xmlns="http://www.w3.org/2000/svg" role="img" '
             f'aria-label="{escape(title)}: {escape(subtitle)}">',
             f'<text class="panel-title" x="{_f(left)}" y="13">{escape(title)}</text>',
             f'<text class="panel-sub" x="{_f(left)}" y="25">{escape(subtitle)}</text>']
    for t in ticks:
        parts.append(f'<line class="grid" x1="{_f(left)}" x2="{_f(left + pw)}" y1="{_f(py(t))}" y2="{_f(py(t))}"/>'
                     f'<text class="tick" x="{_f(left - 4)}" y="{_f(py(t) + 3)}" text-anchor="end">{t:,.0f}</text>')
    for i in _day_ticks(index):
        parts.append(f'<line class="grid" x1="{_f(px(i))}" x2="{_f(px(i))}" y1="{_f(top)}" y2="{_f(top + ph)}"/>'
                     f'<text class="tick" x="{_f(px(i) + 2)}" y="{_f(top + ph + 13)}">{index[i].strftime("%a")}</text>')
    parts.append(f'<rect class="frame" x="{_f(left)}" y="{_f(top)}" width="{_f(pw)}" height="{_f(ph)}"/>')
    for label, values, colour in lines:
        values = np.asarray(values, float)
        peak = np.nanmax(values) if np.isfinite(values).any() else float("nan")
        parts.append(f'<path class="plan-line" d="{path(values)}" stroke="{colour}">'
                     f'<title>{escape(f"{label}: peak {fmt_num(peak)} {unit}")}</title></path>')
    if limit is not None:
        lim = np.asarray(limit, float)
        steps = []
        for i, v in enumerate(lim):
            if not np.isfinite(v):
                continue
            x0, x1 = px(i), px(min(i + 1, n - 1))
            steps.append(f"{'M' if not steps else 'L'}{_f(x0)},{_f(py(v))} L{_f(x1)},{_f(py(v))}")
        parts.append(f'<path class="limit-step" d="{" ".join(steps)}" stroke="{LIMIT_COLOUR}" fill="none" '
                     f'stroke-dasharray="5 3" stroke-width="1.2"><title>limit ({escape(unit)})</title></path>')
    parts.append(f'<text class="tick" x="4" y="{_f(top + ph / 2)}" transform="rotate(-90 10 {_f(top + ph / 2)})" '
                 f'text-anchor="middle">{escape(unit)}</text></svg>')
    return "".join(parts)


def sweep_panel_svg(title: str, x_label: str, xs: list[float], lines: list[tuple[str, list[float], str]],
                    unit: str, width: float = 360.0, height: float = 190.0) -> str:
    """Metric over a sweep (e.g. extra servers): one line with markers per policy."""
    left, right, top, bottom = 52.0, 12.0, 22.0, 34.0
    pw, ph = width - left - right, height - top - bottom
    vals = [v for _, ys, _ in lines for v in ys if v is not None and np.isfinite(v)] or [0.0]
    hi = max(vals) * 1.08 if max(vals) > 0 else 1.0
    ticks = _nice_ticks(0.0, hi)
    hi = max(hi, ticks[-1])
    x_lo, x_hi = min(xs), max(xs)

    def px(x):
        return left + pw * ((x - x_lo) / (x_hi - x_lo) if x_hi > x_lo else 0.5)

    def py(v):
        return top + ph * (1 - v / hi)

    parts = [f'<svg class="chart sweep-chart" data-subject="{escape(title)}" viewBox="0 0 {_f(width)} {_f(height)}" '
             f'width="{_f(width)}" height="{_f(height)}" xmlns="http://www.w3.org/2000/svg" role="img" '
             f'aria-label="{escape(title)}">',
             f'<text class="panel-title" x="{_f(left)}" y="13">{escape(title)}</text>']
    for t in ticks:
        parts.append(f'<line class="grid" x1="{_f(left)}" x2="{_f(left + pw)}" y1="{_f(py(t))}" y2="{_f(py(t))}"/>'
                     f'<text class="tick" x="{_f(left - 4)}" y="{_f(py(t) + 3)}" text-anchor="end">{t:g}</text>')
    for x in xs:
        parts.append(f'<text class="tick" x="{_f(px(x))}" y="{_f(top + ph + 13)}" text-anchor="middle">{x:g}</text>')
    parts.append(f'<text class="tick" x="{_f(left + pw / 2)}" y="{_f(height - 4)}" text-anchor="middle">'
                 f'{escape(x_label)}</text>'
                 f'<rect class="frame" x="{_f(left)}" y="{_f(top)}" width="{_f(pw)}" height="{_f(ph)}"/>')
    for label, ys, colour in lines:
        pts = [(px(x), py(y), x, y) for x, y in zip(xs, ys) if y is not None and np.isfinite(y)]
        d = " ".join(f"{'M' if k == 0 else 'L'}{_f(a)},{_f(b)}" for k, (a, b, _, _) in enumerate(pts))
        parts.append(f'<path class="plan-line" d="{d}" stroke="{colour}"><title>{escape(label)}</title></path>')
        for a, b, x, y in pts:
            parts.append(f'<circle cx="{_f(a)}" cy="{_f(b)}" r="2.6" fill="{colour}">'
                         f'<title>{escape(f"{label} at {x:g}: {y:g} {unit}")}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)
