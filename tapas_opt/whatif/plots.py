"""Figures of a what-if sweep (matplotlib, PNG, written atomically).

* ``deployable_servers.png``: max servers deployable per row under a capping budget of X % of
  row-time, one line per group of scenarios (listed scenario and other swept parameters);
* ``capping_vs_servers.png``: % of row-time power-capped and % of GPU-time throttled against
  the servers added per row, with the budgets as dashed lines;
* ``metrics_by_<parameter>.png``: peak normalised row power and max GPU temperature against each
  swept numeric parameter (one line per listed scenario).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from tapas_opt.io import atomic_write_figure

DPI = 110


def _save(fig, path: Path) -> str:
    atomic_write_figure(fig, path, dpi=DPI, bbox_inches="tight")
    return str(path)


def _figure(width: float = 7.0, height: float = 4.2):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def plot_deployable(deploy: pd.DataFrame, path: Path) -> str | None:
    if deploy.empty or deploy["max_servers_per_row"].notna().sum() == 0:
        return None
    fig = _figure()
    ax = fig.subplots()
    for group, grp in deploy.groupby("group", sort=True):
        grp = grp.sort_values("budget_pct")
        ax.plot(grp["budget_pct"], grp["max_servers_per_row"], marker="o", drawstyle="steps-post", label=str(group))
    ax.set_xlabel("capping budget: % of row-time power-capped")
    ax.set_ylabel("max servers deployable per row")
    ax.set_title("Servers deployable per row under a capping budget")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def plot_capping(table: pd.DataFrame, budgets, path: Path) -> str | None:
    if table.empty or table["servers_added_per_row"].nunique() < 2:
        return None
    fig = _figure(9.0, 4.2)
    ax1, ax2 = fig.subplots(1, 2)
    params = [c for c in table.columns if c.startswith("param.") and not c.startswith("param.add_servers.")]
    for key, grp in table.groupby(["name", *params], sort=True, dropna=False):
        grp = grp.sort_values("servers_added_per_row")
        label = ", ".join(str(k) for k in (key if isinstance(key, tuple) else (key,)))
        ax1.plot(grp["servers_added_per_row"], grp["power_capped_row_time_pct"], marker="o", label=label)
        ax2.plot(grp["servers_added_per_row"], grp["thermal_throttled_gpu_time_pct"], marker="o", label=label)
    for b in budgets:
        ax1.axhline(float(b), color="grey", linestyle="--", linewidth=0.8)
    ax1.set_xlabel("servers added per row")
    ax1.set_ylabel("% of row-time power-capped")
    ax2.set_xlabel("servers added per row")
    ax2.set_ylabel("% of GPU-time thermally throttled")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    ax1.set_ylim(bottom=0)
    ax2.set_ylim(bottom=0, top=max(1.0, float(table["thermal_throttled_gpu_time_pct"].max()) * 1.1))
    fig.legend(*ax1.get_legend_handles_labels(), loc="outside right upper", fontsize=7)
    fig.suptitle("Capping and throttling as servers are added")
    return _save(fig, path)


def plot_metrics(table: pd.DataFrame, param: str, path: Path) -> str | None:
    values = pd.to_numeric(table[param], errors="coerce")
    if values.isna().any() or values.nunique() < 2:
        return None
    fig = _figure(9.0, 4.2)
    ax1, ax2 = fig.subplots(1, 2)
    others = [c for c in table.columns if c.startswith("param.") and c != param]
    for key, grp in table.assign(_x=values).groupby(["name", *others], sort=True, dropna=False):
        grp = grp.sort_values("_x")
        label = ", ".join(str(k) for k in (key if isinstance(key, tuple) else (key,)))
        ax1.plot(grp["_x"], grp["peak_row_power_fraction"], marker="o", label=label)
        ax2.plot(grp["_x"], grp["max_gpu_temp_c"], marker="o", label=label)
    name = param.removeprefix("param.")
    ax1.axhline(1.0, color="grey", linestyle="--", linewidth=0.8)
    ax1.set_ylabel("peak row power / limit")
    ax2.set_ylabel("max GPU temperature (C)")
    for ax in (ax1, ax2):
        ax.set_xlabel(name)
        ax.grid(alpha=0.3)
    handles, labels = ax1.get_legend_handles_labels()
    if len(labels) <= 24:
        fig.legend(handles, labels, loc="outside right upper", fontsize=7)
    fig.suptitle(f"Peak row power and GPU temperature vs {name}")
    return _save(fig, path)


def write_plots(table: pd.DataFrame, deploy: pd.DataFrame, out_dir: Path, budgets) -> list[str]:
    """Every figure that the sweep's parameters support; returns the files written."""
    out_dir = Path(out_dir)
    written = [plot_deployable(deploy, out_dir / "deployable_servers.png"),
               plot_capping(table, budgets, out_dir / "capping_vs_servers.png")]
    for param in [c for c in table.columns if c.startswith("param.")]:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", param.removeprefix("param."))
        written.append(plot_metrics(table, param, out_dir / f"metrics_by_{slug}.png"))
    return [w for w in written if w]

