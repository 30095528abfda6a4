"""PNG plots of runs and studies (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_row_power(run, path: str | Path) -> None:
    """Peak row power over the rows (demand, as a share of each row's limit) per step and policy,
    with the limit; below it, the row that peaks for the first policy, demand vs delivered."""
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    for name, res in run.results.items():
        ax.plot(res.times, (res.row_kw / res.row_limit_kw).max(axis=0), lw=0.8, label=name)
    ax.axhline(1.0, color="k", ls="--", lw=1, label="row limit")
    ax.set_ylabel("max row power / limit")
    ax.set_title(f"{run.scenario.name}: peak row power per step (demand)")
    ax.legend(fontsize=7, ncol=3, loc="lower right")
    first = next(iter(run.results.values()))
    r = int(np.argmax((first.row_kw / first.row_limit_kw).max(axis=1)))
    ax2.plot(first.times, first.row_kw[r], lw=0.8, label=f"{first.policy}: demand")
    ax2.plot(first.times, first.row_kw_delivered[r], lw=0.8, label=f"{first.policy}: delivered")
    ax2.plot(first.times, first.row_limit_kw[r], "k--", lw=1, label="limit")
    ax2.set_ylabel(f"row {first.row_ids[r]} power (kW)")
    ax2.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_max_gpu_temp(run, path: str | Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(11, 4))
    for name, res in run.results.items():
        ax.plot(res.times, res.step["max_gpu_temp_c"], lw=0.8, label=name)
    ax.axhline(run.scenario.instance.temp_limit_c, color="k", ls="--", lw=1, label="GPU limit")
    ax.set_ylabel("hottest GPU in the room (C)")
    ax.set_title(f"{run.scenario.name}: max GPU temperature per step (demand)")
    ax.legend(fontsize=7, ncol=3, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_sweep(frame: pd.DataFrame, x: str, metrics: list[tuple[str, str]], path: str | Path, title: str,
               xlabel: str) -> None:
    """One panel per metric, one line per policy."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    for ax, (col, label) in zip(axes[0], metrics):
        for policy, grp in frame.groupby("policy", sort=False):
            ax.plot(grp[x], grp[col], marker="o", label=policy)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_bars(frame: pd.DataFrame, group: str, metrics: list[tuple[str, str]], path: str | Path, title: str) -> None:
    """Grouped bars: one group per ``group`` value, one bar per policy, one panel per metric."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    groups = list(pd.unique(frame[group]))
    policies = list(pd.unique(frame["policy"]))
    width = 0.8 / max(1, len(policies))
    for ax, (col, label) in zip(axes[0], metrics):
        for j, policy in enumerate(policies):
            sub = frame[frame["policy"] == policy].set_index(group).reindex(groups)
            ax.bar(np.arange(len(groups)) + j * width, sub[col].to_numpy(float), width, label=policy)
        ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2)
        ax.set_xticklabels(groups, fontsize=7, rotation=15)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
