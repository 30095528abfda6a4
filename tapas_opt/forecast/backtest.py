"""Rolling-origin back-tests of forecasting methods on a history matrix.

At every origin (every ``every_slots`` slots), each method sees the ``history_slots`` slots
before the origin and forecasts the ``horizon_slots`` after it; VMs whose history or future
window is less than ``min_coverage`` observed are skipped at that origin. Scores are
accumulated per method and VM without keeping the forecasts, so large rooms fit in memory.
The scores are those of :mod:`tapas_opt.forecast.metrics`.

A method that cannot forecast a VM at an origin (a statsmodels fit that fails or is implausible
gives NaN) is scored on what ``forecast`` and ``place`` would use instead, the automatic
choice's default (:func:`~tapas_opt.forecast.select.fill_failed`); the share of such
forecasts is reported as ``fallback_share``. Scoring the NaN itself made the method's MAE and
pinball loss NaN and, as a NaN band is never "exceeded", its exceedance too good.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from tapas_opt.forecast.empirical import MatrixMethod
from tapas_opt.forecast.metrics import LEVELS, pinball
from tapas_opt.forecast.select import fill_failed
from tapas_opt.forecast.series import SeriesMatrix

MIN_COVERAGE = 0.9
"""Share of a window's slots that must be measured for a VM to be scored at an origin."""

QUANTILE_NAMES = ("p50", "p90", "p99")


@dataclass
class _Totals:
    """Streaming sums per VM for one method."""

    n_vm: int
    n: np.ndarray = field(init=False)
    abs_err: np.ndarray = field(init=False)
    ape: np.ndarray = field(init=False)
    n_pos: np.ndarray = field(init=False)
    within: np.ndarray = field(init=False)
    loss: np.ndarray = field(init=False)
    exceeded: np.ndarray = field(init=False)
    origins: np.ndarray = field(init=False)
    seconds: float = 0.0
    series_fits: int = 0
    fallbacks: int = 0

    def __post_init__(self) -> None:
        z = lambda *shape: np.zeros(shape)  # noqa: E731
        self.n, self.abs_err, self.ape, self.n_pos = z(self.n_vm), z(self.n_vm), z(self.n_vm), z(self.n_vm)
        self.within, self.origins = z(self.n_vm), z(self.n_vm)
        self.loss, self.exceeded = z(self.n_vm, 3), z(self.n_vm, 3)

    def add(self, rows: np.ndarray, actual: np.ndarray, forecast: np.ndarray) -> None:
        seen = ~np.isnan(actual)
        y = np.where(seen, actual, 0.0)
        err = np.abs(forecast[:, :, 0] - y)
        pos = seen & (y > 0)
        self.n[rows] += seen.sum(axis=1)
        self.abs_err[rows] += np.where(seen, err, 0).sum(axis=1)
        self.ape[rows] += np.where(pos, err / np.where(pos, y, 1.0), 0).sum(axis=1)
        self.n_pos[rows] += pos.sum(axis=1)
        self.within[rows] += (seen & (err <= 0.1 * np.abs(y) + 1e-12)).sum(axis=1)
        self.loss[rows] += np.where(seen[..., None], pinball(y, forecast, LEVELS), 0).sum(axis=1)
        self.exceeded[rows] += (seen[..., None] & (y[..., None] > forecast + 1e-12)).sum(axis=1)
        self.origins[rows] += 1

    def table(self, rows: np.ndarray | None = None) -> dict:
        """Pooled scores over ``rows`` (default all)."""
        sl = slice(None) if rows is None else rows
        n = self.n[sl].sum()
        if n == 0:
            return {"n": 0}
        loss = self.loss[sl].sum(axis=0) / n
        out = {
            "n": int(n),
            "origins": int(self.origins[sl].max()) if rows is not None and np.size(rows) == 1 else int(self.origins[sl].sum()),
            "mae": float(self.abs_err[sl].sum() / n),
            "mape": float(self.ape[sl].sum() / max(self.n_pos[sl].sum(), 1)),
            "within_10pct": float(self.within[sl].sum() / n),
            "pinball_mean": float(loss.mean()),
        }
        out.update({f"pinball_{q}": float(v) for q, v in zip(QUANTILE_NAMES, loss)})
        out.update({f"exceeded_{q}": float(v) for q, v in zip(QUANTILE_NAMES, self.exceeded[sl].sum(axis=0) / n)})
        if rows is None:
            out["fallback_share"] = self.fallbacks / self.series_fits if self.series_fits else 0.0
        return out


@dataclass
class BacktestResult:
    """Scores of a rolling-origin back-test.

    ``overall`` has one row per method (every VM and slot pooled); ``per_series`` one row per
    (method, vm_id); ``seconds_per_series`` the mean forecasting time per VM and origin.
    """

    overall: pd.DataFrame
    per_series: pd.DataFrame
    seconds_per_series: dict[str, float]
    n_origins: int
    choices: dict[str, dict[str, int]]

    def relative_to(self, baseline: str, column: str = "pinball_mean") -> pd.DataFrame:
        """``column`` of every method over the baseline's, per VM (e.g. 0.7 = 30 % lower)."""
        wide = self.per_series[column].unstack("method")
        return wide.div(wide[baseline], axis=0)


def origins(n_slots: int, history_slots: int, horizon_slots: int, every_slots: int,
            first: int | None = None) -> np.ndarray:
    """Origin positions (index of the first forecast slot) that leave a full window both sides."""
    start = history_slots if first is None else max(first, history_slots)
    return np.arange(start, n_slots - horizon_slots + 1, every_slots)


def rolling_origin_backtest(matrix: SeriesMatrix, methods: dict[str, MatrixMethod], history_slots: int,
                            horizon_slots: int, every_slots: int, min_coverage: float = MIN_COVERAGE,
                            progress: Callable[[int, int], None] | None = None) -> BacktestResult:
    """Back-test ``methods`` on ``matrix`` at rolling origins (see the module docstring)."""
    n_vm = len(matrix.vm_ids)
    totals = {name: _Totals(n_vm) for name in methods}
    positions = origins(matrix.n_slots, history_slots, horizon_slots, every_slots)
    used = 0
    for k, o in enumerate(positions):
        hist = matrix.values[:, o - history_slots:o]
        fut = matrix.values[:, o:o + horizon_slots]
        ok = ((~np.isnan(hist)).mean(axis=1) >= min_coverage) & ((~np.isnan(fut)).mean(axis=1) >= min_coverage)
        rows = np.flatnonzero(ok)
        if len(rows):
            used += 1
            h_index = matrix.index[o - history_slots:o]
            f_index = matrix.index[o:o + horizon_slots]
            for name, method in methods.items():
                t0 = time.perf_counter()
                fc = method.forecast(hist[rows], h_index, matrix.step_min, f_index)
                totals[name].seconds += time.perf_counter() - t0
                totals[name].fallbacks += int(fill_failed(fc, hist[rows], h_index, matrix.step_min, f_index).sum())
                totals[name].series_fits += len(rows)
                totals[name].add(rows, fut[rows], fc)
        if progress:
            progress(k + 1, len(positions))
    overall = pd.DataFrame({name: t.table() for name, t in totals.items()}).T
    overall.index.name = "method"
    per = []
    for name, t in totals.items():
        for i, vm in enumerate(matrix.vm_ids):
            row = t.table(np.array([i]))
            if row.get("n", 0):
                per.append({"method": name, "vm_id": vm, **row})
    per_series = pd.DataFrame(per).set_index(["method", "vm_id"]) if per else pd.DataFrame()
    seconds = {name: (t.seconds / t.series_fits if t.series_fits else float("nan")) for name, t in totals.items()}
    choices = {name: dict(getattr(m, "choices", {})) for name, m in methods.items() if hasattr(m, "choices")}
    return BacktestResult(overall, per_series, seconds, used, choices)
