"""The report's figures with matplotlib: for notebooks, slides and ``tapas-opt report --png-dir``.

Each ``plot_*`` function returns a :class:`matplotlib.figure.Figure` and draws the same thing as
the HTML report, with the same colour scales (:mod:`tapas_opt.report.scales`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from tapas_opt.io import OUTPUT_MARKER, atomic_write_figure
from tapas_opt.report.data import PlanView
from tapas_opt.report.layout import LABEL_W, build_layout, natural_key
from tapas_opt.report.scales import (BASELINE_COLOUR, LIMIT_COLOUR, PLAN_COLOUR, ColourScale, power_scale,
                                     temperature_scale)
from tapas_opt.report.svg import server_value


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg",) and not _interactive():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _interactive() -> bool:
    try:  # inside Jupyter, keep the inline backend
        from IPython import get_ipython

        return get_ipython() is not None
    except ImportError:
        return False


def _scale(view: PlanView, metric: str, baseline: PlanView | None = None) -> ColourScale:
    if metric == "power":
        return power_scale()
    temps = list(view.servers["peak_gpu_temp_c"].dropna())
    if baseline is not None:
        temps += list(baseline.servers["peak_gpu_temp_c"].dropna())
    return temperature_scale(temps, view.temp_limit_c)


def plot_floor_map(view: PlanView, metric: str = "temp", scale: ColourScale | None = None, ax=None):
    """The floor map: servers coloured by ``metric`` (``temp`` or ``power``), placed VMs dotted."""
    plt = _plt()
    from matplotlib.colors import LinearSegmentedColormap, Normalize
    from matplotlib.patches import Rectangle

    scale = scale or _scale(view, metric)
    layout = build_layout(view.servers, view.rows)
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(6.0, layout.width / 70), max(3.0, layout.height / 70) + 0.8),
                               layout="constrained")
    fig = ax.figure
    for _, r in layout.hot_aisles.iterrows():
        ax.add_patch(Rectangle((r.x, r.y), r.w, r.h, color="#fbe4dc", lw=0))
        ax.text(r.x + LABEL_W, r.y + r.h / 2, "hot aisle", va="center", fontsize=7, color="#3d4a5c")
    for _, a in layout.aisles.iterrows():
        info = view.aisles.loc[a.aisle_id]
        ax.add_patch(Rectangle((a.x, a.y), a.w, a.h, color="#dcecfb", lw=0))
        ax.add_patch(Rectangle((a.x + 4, a.y + 3), 34, a.h - 6, color="#7fa9d6", lw=0))
        ax.text(a.x + 21, a.y + a.h / 2, "AHU", ha="center", va="center", fontsize=6, color="white", weight="bold")
        ax.text(a.x + LABEL_W, a.y + a.h / 2, f"{a.aisle_id} cold aisle · AHU peak {info.peak_fraction:.0%} of "
                f"{info.limit_cfm:,.0f} CFM", va="center", fontsize=7, color="#3d4a5c")
    for row_id, r in layout.rows.iterrows():
        info = view.rows.loc[row_id]
        over = info.peak_fraction > 1 + 1e-9
        ax.text(r.x + 6, r.y + r.h / 2 - 5, str(row_id), fontsize=8, weight="bold", va="center")
        ax.text(r.x + 6, r.y + r.h / 2 + 8, f"peak {info.peak_fraction:.0%} of {info.limit_kw:,.0f} kW", fontsize=6.5,
                va="center", color="#b3261e" if over else "#5c6475")
    values = server_value(view, metric)
    for sid, g in layout.servers.iterrows():
        ax.add_patch(Rectangle((g.x, g.y), g.w, g.h, facecolor=scale.colour(values.loc[sid]), edgecolor="white", lw=0.4))
    for _, k in layout.racks.iterrows():
        ax.add_patch(Rectangle((k.x - 1, k.y - 1), k.w + 2, k.h + 2, fill=False, edgecolor="#7a8294", lw=0.6))
    placed = layout.servers.loc[view.servers.index[view.servers["n_placed"] > 0]]
    if len(placed):
        ax.scatter(placed.x + placed.w / 2, placed.y + placed.h / 2, s=9, c="#111", edgecolors="white",
                   linewidths=0.5, zorder=3, label="placed by this plan")
    moved = layout.servers.loc[view.servers.index[view.servers["moved_in"] != ""]]
    if len(moved):
        ax.scatter(moved.x + moved.w / 2, moved.y + moved.h / 2, s=22, facecolors="none", edgecolors="#111",
                   linewidths=1.0, zorder=3, label="moved here by this plan")
    ax.set_xlim(0, layout.width)
    ax.set_ylim(layout.height, 0)
    ax.set_aspect("equal")
    ax.axis("off")
    cmap = LinearSegmentedColormap.from_list("tapas", list(scale.palette))
    sm = plt.cm.ScalarMappable(norm=Normalize(scale.vmin, scale.vmax), cmap=cmap)
    bar = fig.colorbar(sm, ax=ax, orientation="horizontal", fraction=0.05, pad=0.02, aspect=40, shrink=0.6)
    bar.set_label(f"{scale.label} ({scale.unit}); grey: no VM" + ("; dark red: over the limit" if scale.over else ""),
                  fontsize=7)
    bar.ax.tick_params(labelsize=7)
    ax.set_title(f"{view.label}: floor map, {scale.label}", fontsize=9, loc="left")
    if len(placed) or len(moved):
        ax.legend(loc="upper right", fontsize=7, frameon=False, bbox_to_anchor=(1.0, 1.06), ncol=2)
    return fig


def _plot_series(view: PlanView, kind: str, baseline: PlanView | None = None, ncols: int | None = None):
    plt = _plt()
    if kind == "row":
        frame, limits, unit, title = view.row_kw, view.rows["limit_kw"], "kW", "row power"
        other = baseline.row_kw if baseline is not None else None
        name = lambda c: f"row {c} (aisle {view.rows.loc[c, 'aisle_id']})"  # noqa: E731
    else:
        frame, limits, unit, title = view.aisle_cfm, view.aisles["limit_cfm"], "CFM", "aisle airflow"
        other = baseline.aisle_cfm if baseline is not None else None
        name = lambda c: f"aisle {c}"  # noqa: E731
    cols = sorted(frame.columns, key=natural_key)
    ncols = ncols or min(len(cols), 4 if len(cols) > 6 else 2)
    nrows = math.ceil(len(cols) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 2.4 * nrows), squeeze=False, sharex=True,
                             layout="constrained")
    for ax, col in zip(axes.flat, cols):
        s = frame[col]
        limit = float(limits[col])
        if other is not None:
            ax.plot(other.index, other[col], color=BASELINE_COLOUR, lw=1.0, label=baseline.label)
        ax.plot(s.index, s.to_numpy(), color=PLAN_COLOUR, lw=1.3, label=view.label)
        ax.axhline(limit, color=LIMIT_COLOUR, ls="--", lw=1.0, label="limit")
        over = np.where(s.to_numpy() > limit, s.to_numpy(), np.nan)
        if np.isfinite(over).any():
            ax.plot(s.index, over, color=LIMIT_COLOUR, lw=2.0)
        t = int(np.argmax(s.to_numpy()))
        ax.plot(s.index[t], s.iloc[t], "o", color=PLAN_COLOUR, ms=4)
        ax.set_title(f"{name(col)}: peak {s.iloc[t] / limit:.1%} of limit", fontsize=8, loc="left")
        ax.set_ylabel(unit, fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(cols):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="upper right", ncol=len(labels), frameon=False)
    fig.suptitle(f"{title} over the horizon vs its limit", fontsize=10, x=0.01, ha="left")
    for ax in axes[-1]:
        for label in ax.get_xticklabels():
            label.set_rotation(30)
            label.set_ha("right")
    return fig


def plot_row_power(view: PlanView, baseline: PlanView | None = None, ncols: int | None = None):
    """Per-row power over the horizon against each row's limit (baseline in grey)."""
    return _plot_series(view, "row", baseline, ncols)


def plot_aisle_airflow(view: PlanView, baseline: PlanView | None = None, ncols: int | None = None):
    """Per-aisle airflow over the horizon against each AHU's limit (baseline in grey)."""
    return _plot_series(view, "aisle", baseline, ncols)


def write_pngs(out_dir: str | Path, view: PlanView, baseline: PlanView | None = None, dpi: int = 130) -> list[Path]:
    """Write every figure of the report as PNG into ``out_dir`` (marked as tapas-opt's output);
    returns the paths."""
    plt = _plt()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / OUTPUT_MARKER).touch()  # a later run may add to it again; see tapas_opt.io.check_resumable
    figures = {}
    for metric in ("temp", "power"):
        scale = _scale(view, metric, baseline)
        figures[f"floor_map_{metric}.png"] = plot_floor_map(view, metric, scale)
        if baseline is not None:
            figures[f"floor_map_{metric}_baseline.png"] = plot_floor_map(baseline, metric, scale)
    figures["row_power.png"] = plot_row_power(view, baseline)
    figures["aisle_airflow.png"] = plot_aisle_airflow(view, baseline)
    paths = []
    for name, fig in figures.items():
        path = out_dir / name
        atomic_write_figure(fig, path, dpi=dpi)
        plt.close(fig)
        paths.append(path)
    return paths

