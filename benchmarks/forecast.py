"""Forecasting and calibration benchmarks: the numbers in BENCHMARKS.md's "Forecasting" section.

Run from the repository root (reads ../shared/data):

    python benchmarks/forecast.py all                 # everything below, markdown on stdout
    python benchmarks/forecast.py cornell [--statsmodels]
    python benchmarks/forecast.py azure
    python benchmarks/forecast.py alibaba
    python benchmarks/forecast.py gpu-temp
    python benchmarks/forecast.py tuning              # recent-mix parameters: chosen before 2024, tested after
    python benchmarks/forecast.py scale [--vms 10000] [--step-min 5] [--statsmodels-vms 20]

``scale`` times the default forecaster (``AutoForecaster``: fit + predict of a week) on a
seeded synthetic room: a third each of daily-periodic, flat and bursty on/off VMs with noise,
four weeks at ``--step-min``, 10 % of VMs younger than a week; the input is the long telemetry
frame the inventory loader produces. It prints progress on stderr and the peak memory.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from common import machine

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

from tapas_opt.forecast.empirical import CHEAP_METHODS, RecentMixMethod  # noqa: E402
from tapas_opt.forecast.realdata import (alibaba_backtest, azure_day_ahead, cornell_backtest,  # noqa: E402
                                         default_methods, within)
from tapas_opt.forecast.select import AutoForecaster  # noqa: E402
from tapas_opt.forecast.statsmodels_models import STATSMODELS_METHODS, StatsmodelsMethod  # noqa: E402


def md(frame: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A markdown table without extra dependencies."""
    cols = [frame.index.name or ""] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, row in frame.iterrows():
        cells = [str(idx)]
        for v in row:
            cells.append(format(v, floatfmt) if isinstance(v, (float, np.floating)) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_cornell(with_statsmodels: bool) -> str:
    methods = default_methods()
    if with_statsmodels:
        methods.update({k: StatsmodelsMethod(model=k) for k in STATSMODELS_METHODS})
    t0 = time.perf_counter()
    res = cornell_backtest(DATA, methods)
    seconds = time.perf_counter() - t0
    rel = res.relative_to("template")
    per = res.per_series
    table = pd.DataFrame({
        "origins": per.loc["auto", "origins"].astype(int),
        "auto pinball vs template": rel["auto"],
        "auto P99 exceeded": per.loc["auto", "exceeded_p99"],
        "template P99 exceeded": per.loc["template", "exceeded_p99"],
        "auto within 10 %": per.loc["auto", "within_10pct"],
        "template within 10 %": per.loc["template", "within_10pct"],
    })
    table.index.name = "server"
    overall = res.overall[["pinball_p50", "pinball_p90", "pinball_p99", "pinball_mean", "exceeded_p50",
                           "exceeded_p90", "exceeded_p99", "within_10pct", "mae"]].copy()
    overall["vs template"] = overall["pinball_mean"] / overall.loc["template", "pinball_mean"]
    overall["ms per series"] = pd.Series(res.seconds_per_series) * 1000
    out = [f"Cornell week-ahead back-test: {res.n_origins} weekly origins ({int(per.loc['auto', 'origins'].sum())} "
           f"server-weeks), 4 weeks of hourly history each; {seconds:.0f} s.",
           "", md(table), "", "All servers pooled:", "", md(overall, ".4f"), "",
           f"Methods the default chose: {res.choices.get('auto', {})}"]
    return "\n".join(out)


def run_tuning() -> str:
    """recent-mix's parameters on a tuning period (origins before 2024, servers 05/06 only)
    and the chosen defaults on the later, held-out origins of all six servers."""
    grid = {f"persistence {p} h, half-life {h} h, headroom {c}": RecentMixMethod(p, h, 60, c)
            for p in (12, 24, 72) for h in (72, 168) for c in (0.0, 0.25, 0.5)}
    grid["template"] = CHEAP_METHODS["template"]
    # Tuning period: only origins before 2024-01-01 (05/06 are the only servers with data then).
    from tapas_opt.forecast.public_data import cornell_history
    from tapas_opt.forecast.series import build_matrix
    from tapas_opt.forecast.backtest import rolling_origin_backtest

    m = build_matrix(cornell_history(DATA, ("cbsugpu05", "cbsugpu06")), 60)
    keep = m.index < pd.Timestamp("2024-01-01")
    m_early = type(m)(m.vm_ids, m.index[keep], m.values[:, keep], 60, m.quality)
    tune = rolling_origin_backtest(m_early, grid, 672, 168, 168, min_coverage=0.9)
    ov = tune.overall
    tab = pd.DataFrame({"pinball vs template": ov["pinball_mean"] / ov.loc["template", "pinball_mean"],
                        "P99 exceeded": ov["exceeded_p99"]}).drop(index="template").sort_values("pinball vs template")
    tab.index.name = "recent-mix on origins before 2024 (cbsugpu05/06)"
    later = cornell_backtest(DATA, {"auto": default_methods()["auto"], "template": CHEAP_METHODS["template"]},
                             start="2024-01-01")
    rel = later.relative_to("template")["auto"]
    ex = later.per_series["exceeded_p99"].unstack("method")["auto"]
    held = pd.DataFrame({"auto pinball vs template": rel, "auto P99 exceeded": ex})
    held.index.name = "held-out: origins from 2024-01-01"
    return "\n".join([f"Tuning period: {tune.n_origins} origins.", "", md(tab.head(8)), "", md(held)])


def run_azure() -> str:
    table = azure_day_ahead(DATA)
    g = table.groupby(["service", "day"], sort=False)
    summary = pd.DataFrame({
        "method chosen": g["method"].first(),
        "within 10 % (default)": g.apply(lambda d: within(d["p50"], d["actual"]).mean()),
        "within 10 % (same hour yesterday)": g.apply(lambda d: within(d["yesterday"], d["actual"]).mean()),
        "P90 exceeded": g.apply(lambda d: (d["actual"] > d["p90"]).mean()),
        "P99 exceeded": g.apply(lambda d: (d["actual"] > d["p99"]).mean()),
    })
    summary.index = [f"{s} {d}" for s, d in summary.index]
    summary.index.name = "service, day"
    total = within(table["p50"], table["actual"]).mean()
    naive = within(table["yesterday"], table["actual"]).mean()
    return "\n".join([md(summary), "", f"All {len(table)} service-hours: default {total:.1%} within 10 %, "
                      f"same hour yesterday {naive:.1%}."])


def run_alibaba() -> str:
    res = alibaba_backtest(DATA)
    ov = res.overall[["n", "mae", "within_10pct", "pinball_mean", "exceeded_p50", "exceeded_p90",
                      "exceeded_p99"]].copy()
    ov["vs template"] = ov["pinball_mean"] / ov.loc["template", "pinball_mean"]
    return "\n".join([f"{res.n_origins} hourly origins, 12 h of 5-minute history, 1 h ahead, "
                      f"{len(res.per_series.loc['auto'])} containers.", "", md(ov, ".4f"), "",
                      f"Methods the default chose: {res.choices.get('auto', {})}"])


def run_gpu_temp() -> str:
    from tapas_opt.calibrate.gpu_temp import evaluate_servers

    t = evaluate_servers(DATA)
    cols = ["mae_quadratic_c", "mae_linear_c", "mae_proxy_1h_c", "mae_proxy_24h_c", "mae_proxy_168h_c"]
    table = t[cols].astype(float)
    table["slope C/W (proxy 1 h)"] = t["c_per_w"].astype(float)
    table["n train / test"] = [f"{a} / {b}" for a, b in zip(t["n_train"], t["n_test"])]
    table.loc["median"] = list(table[cols + ["slope C/W (proxy 1 h)"]].median()) + [""]
    table.index.name = "server"
    return md(table, ".2f")


def synthetic_history(n_vms: int, step_min: int, seed: int = 0) -> pd.DataFrame:
    """Seeded long telemetry: a third each daily-periodic, flat, bursty; 10 % younger than a week."""
    rng = np.random.default_rng(seed)
    n_t = 4 * 7 * 24 * 60 // step_min
    ts = pd.date_range(end=pd.Timestamp("2026-06-01") - pd.Timedelta(minutes=step_min), periods=n_t,
                       freq=f"{step_min}min")
    hours = np.asarray(ts.day_of_week * 24 + ts.hour + ts.minute / 60, dtype=np.float32)
    values = np.empty((n_vms, n_t), dtype=np.float32)
    kind = rng.integers(0, 3, n_vms)
    per_h = max(1, 60 // step_min)
    for i in range(n_vms):
        if kind[i] == 0:
            values[i] = 0.5 + 0.3 * np.sin(2 * np.pi * (hours - rng.uniform(0, 24)) / 24)
        elif kind[i] == 1:
            values[i] = rng.uniform(0.2, 0.9)
        else:
            on = np.repeat(rng.random(n_t // per_h + 1) < 0.3, per_h)[:n_t]
            values[i] = np.where(on, 0.9, 0.1)
    values += rng.normal(0, 0.04, values.shape).astype(np.float32)
    np.clip(values, 0, 1, out=values)
    young = rng.random(n_vms) < 0.1
    values[young, : n_t - 5 * 24 * per_h] = np.nan
    vm = np.array([f"vm{i:05d}" for i in range(n_vms)])
    frame = pd.DataFrame({"timestamp": np.tile(ts.to_numpy(), n_vms), "vm_id": np.repeat(vm, n_t),
                          "load": values.ravel()})
    return frame[frame["load"].notna()].reset_index(drop=True)


def run_scale(n_vms: int, step_min: int, statsmodels_vms: int) -> str:
    t0 = time.perf_counter()
    hist = synthetic_history(n_vms, step_min)
    gen_s = time.perf_counter() - t0
    horizon = pd.date_range("2026-06-01", periods=7 * 24 * 60 // step_min, freq=f"{step_min}min")
    last = {"stage": None}

    def progress(stage, done, total):
        if stage != last["stage"] or done == total:
            print(f"  [{time.perf_counter() - t1:6.1f} s] {stage}: {done}/{total}", file=sys.stderr, flush=True)
            last["stage"] = stage

    t1 = time.perf_counter()
    cpu0 = time.process_time()
    f = AutoForecaster(step_min, progress=progress, max_statsmodels_vms=statsmodels_vms).fit(hist)
    fit_s = time.perf_counter() - t1
    out = f.predict_array(horizon)
    total_s = time.perf_counter() - t1
    cpu_s = time.process_time() - cpu0  # CPU time of this process: what a quiet machine's wall time would be
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    counts = f.methods_.value_counts().to_dict()
    return (f"{n_vms} VMs x {hist.groupby('vm_id').size().max()} slots of {step_min} min "
            f"({len(hist):,} telemetry rows; generated in {gen_s:.0f} s, not counted); statsmodels tried on "
            f"{len(getattr(f, 'statsmodels_vms_', []))} VMs: fit {fit_s:.1f} s, predict {total_s - fit_s:.1f} s, "
            f"**total {total_s:.1f} s** (CPU time of the process {cpu_s:.1f} s); output {out.shape}; "
            f"peak memory {peak_gb:.1f} GB; methods {counts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["all", "cornell", "azure", "alibaba", "gpu-temp", "tuning", "scale"])
    parser.add_argument("--statsmodels", action="store_true", help="cornell: also back-test the statsmodels models")
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--step-min", type=int, default=5)
    parser.add_argument("--statsmodels-vms", type=int, default=10)
    args = parser.parse_args()
    if args.what != "scale" and not DATA.is_dir():
        sys.exit(f"real data not found at {DATA}")
    print(f"<!-- python benchmarks/forecast.py {' '.join(sys.argv[1:])}; {machine()}; {date.today()} -->")
    parts = {"cornell": lambda: run_cornell(args.statsmodels), "tuning": run_tuning, "azure": run_azure,
             "alibaba": run_alibaba, "gpu-temp": run_gpu_temp,
             "scale": lambda: run_scale(args.vms, args.step_min, args.statsmodels_vms)}
    for name, fn in parts.items():
        if args.what in (name, "all"):
            print(f"\n### {name}\n")
            print(fn(), flush=True)


if __name__ == "__main__":
    main()
