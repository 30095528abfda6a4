"""The paper's template forecaster (TAPAS.md section 3).

For every VM and every slot of the week (at the inventory's time step), the P50/P90/P99 of the
VM's load in that slot over up to the last four weeks. A VM with less than a week of history
is assumed to run at the peak it has shown (the paper's rule). Slots of the week with no sample
(gaps) fall back to the VM's quantile over all its history.
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from tapas_opt.config import QUANTILES
from tapas_opt.forecast.base import QUANTILE_LEVELS, Forecaster

WEEK_MIN = 7 * 24 * 60


def slot_of_week(ts: pd.DatetimeIndex | pd.Series, step_min: int) -> np.ndarray:
    """Index of each timestamp's slot in the week (Monday 00:00 = slot 0)."""
    ts = pd.DatetimeIndex(ts)
    minutes = ts.day_of_week * 1440 + ts.hour * 60 + ts.minute
    return np.asarray(minutes // step_min, dtype=int)


def bucket_history(history: pd.DataFrame, step_min: int) -> pd.DataFrame:
    """Mean load per (vm_id, time step): irregular and duplicate samples collapse into buckets."""
    h = history[["timestamp", "vm_id", "load"]].dropna()
    h = h.assign(timestamp=h["timestamp"].dt.floor(f"{step_min}min"))
    return h.groupby(["vm_id", "timestamp"], sort=True, observed=True)["load"].mean().reset_index()


def nanquantile_axis1(ordered: np.ndarray, level: float) -> np.ndarray:
    """Quantile along axis 1 of an array already sorted on that axis with NaNs last.

    Same result as ``np.nanquantile(x, level, axis=1)`` (linear interpolation), vectorised:
    numpy's own nanquantile loops in Python over every (VM, slot), which is far too slow for
    thousands of VMs. All-NaN slices give NaN.
    """
    n = (~np.isnan(ordered)).sum(axis=1)  # valid samples per slice
    pos = np.clip(level * (n - 1), 0, None)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    frac = pos - lo
    take = lambda idx: np.take_along_axis(ordered, idx[:, None, :], axis=1)[:, 0, :]
    out = take(lo) * (1 - frac) + take(hi) * frac
    return np.where(n > 0, out, np.nan)


class TemplateForecaster(Forecaster):
    """Per-slot-of-week quantiles over the last ``weeks`` weeks (TAPAS's templates)."""

    name = "template"

    def __init__(self, step_min: int = 60, weeks: int = 4):
        if step_min <= 0 or WEEK_MIN % step_min:
            raise ValueError(f"step_min={step_min} must divide a week")
        self.step_min = step_min
        self.weeks = weeks

    def fit(self, history: pd.DataFrame) -> "TemplateForecaster":
        b = bucket_history(history, self.step_min)
        self.vm_ids_ = pd.Index(pd.unique(b["vm_id"]), name="vm_id")
        n_slots = WEEK_MIN // self.step_min
        if len(b) == 0:
            self.template_ = {q: np.zeros((0, n_slots)) for q in QUANTILES}
            self.fallback_ = {q: np.zeros(0) for q in QUANTILES}
            self.short_ = np.zeros(0, bool)
            return self
        end = b["timestamp"].max() + pd.Timedelta(minutes=self.step_min)
        vm_pos = self.vm_ids_.get_indexer(b["vm_id"])
        age_min = (end - b["timestamp"]).dt.total_seconds().to_numpy() / 60 - self.step_min
        week = (age_min // WEEK_MIN).astype(int)
        keep = week < self.weeks
        cube = np.full((len(self.vm_ids_), self.weeks, n_slots), np.nan)
        cube[vm_pos[keep], week[keep], slot_of_week(b["timestamp"][keep], self.step_min)] = \
            b["load"].to_numpy()[keep]
        span = b.groupby("vm_id", sort=False)["timestamp"].agg(["min", "max"]).reindex(self.vm_ids_)
        span_min = (span["max"] - span["min"]).dt.total_seconds().to_numpy() / 60 + self.step_min
        self.short_ = span_min < WEEK_MIN
        peak = b.groupby("vm_id", sort=False)["load"].max().reindex(self.vm_ids_).to_numpy()
        self.template_, self.fallback_ = {}, {}
        ordered = np.sort(cube, axis=1)  # NaNs sort last
        for q in QUANTILES:
            level = QUANTILE_LEVELS[q]
            tmpl = nanquantile_axis1(ordered, level)
            fb = b.groupby("vm_id", sort=False)["load"].quantile(level).reindex(self.vm_ids_).to_numpy()
            tmpl = np.where(np.isnan(tmpl), fb[:, None], tmpl)
            tmpl[self.short_] = peak[self.short_, None]
            self.template_[q] = np.clip(tmpl, 0.0, 1.0)
            self.fallback_[q] = fb
        return self

    def predict(self, horizon: pd.DatetimeIndex, quantiles: tuple[str, ...] = QUANTILES) -> pd.DataFrame:
        slots = slot_of_week(horizon, self.step_min)
        index = pd.MultiIndex.from_product([self.vm_ids_, horizon], names=["vm_id", "timestamp"])
        data = {q: self.template_[q][:, slots].reshape(-1) for q in quantiles}
        return pd.DataFrame(data, index=index)

    @property
    def methods_(self) -> pd.Series:
        return pd.Series(np.where(self.short_, "short-history-peak", "template"),
                         index=self.vm_ids_, dtype=object)

