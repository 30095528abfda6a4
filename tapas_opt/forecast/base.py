"""The forecasting interface and the container of load profiles that placement consumes.

A forecaster follows the scikit-learn shape: ``Forecaster(...).fit(history)`` returns the
fitted forecaster, and ``predict(horizon, quantiles)`` returns a frame indexed by
``(vm_id, timestamp)`` with one column per quantile (``p50``, ``p90``, ``p99``: GPU load
0..1). Methods that cannot forecast a VM (no history) leave it out; :func:`build_profiles`
fills those in by borrowing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tapas_opt.config import EMPTY_HISTORY_START, QUANTILES

QUANTILE_LEVELS = {"p50": 0.50, "p90": 0.90, "p99": 0.99}
#: Forecast method of a VM of which nothing is known (no telemetry in the window, nothing to
#: borrow): planned at full load (TAPAS.md section 3), the most conservative profile.
ASSUMED_PEAK = "assumed-peak"


class Forecaster:
    """Base class: subclasses implement :meth:`fit` and :meth:`predict`."""

    name = "base"

    def fit(self, history: pd.DataFrame) -> "Forecaster":  # pragma: no cover - interface
        raise NotImplementedError

    def predict(self, horizon: pd.DatetimeIndex,
                quantiles: tuple[str, ...] = QUANTILES) -> pd.DataFrame:  # pragma: no cover
        raise NotImplementedError

    @property
    def methods_(self) -> pd.Series:
        """Method used per VM (index vm_id); the base implementation uses the class name."""
        return pd.Series(self.name, index=getattr(self, "vm_ids_", pd.Index([])), dtype=object)


def make_horizon(start: pd.Timestamp, n_slots: int, step_min: int) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n_slots, freq=f"{step_min}min", name="timestamp")


def horizon_start(telemetry: pd.DataFrame, step_min: int, start: str | None = None) -> pd.Timestamp:
    """First slot of the horizon: ``start`` if given, else the slot after the last telemetry."""
    if start is not None:
        return pd.Timestamp(start).floor(f"{step_min}min")
    if len(telemetry) == 0 or telemetry["timestamp"].isna().all():
        return pd.Timestamp(EMPTY_HISTORY_START)
    last = telemetry["timestamp"].max()
    return last.floor(f"{step_min}min") + pd.Timedelta(minutes=step_min)


@dataclass(frozen=True)
class LoadProfiles:
    """Per-VM load per time slot of the horizon, at each quantile, plus how it was obtained.

    ``values[q]`` is an array [n_vms, n_slots] in the order of ``vm_ids``.
    """

    horizon: pd.DatetimeIndex
    vm_ids: pd.Index
    values: dict[str, np.ndarray]
    method: pd.Series

    def at(self, quantile: str) -> np.ndarray:
        return self.values[quantile]

    def for_vms(self, vm_ids, quantile: str) -> np.ndarray:
        """Rows of one quantile in the order of ``vm_ids``."""
        pos = self.vm_ids.get_indexer(pd.Index(vm_ids))
        if (pos < 0).any():
            missing = list(pd.Index(vm_ids)[pos < 0][:5])
            raise KeyError(f"no load profile for VMs {missing}")
        return self.values[quantile][pos]

    def to_frame(self, decimals: int | None = 6) -> pd.DataFrame:
        """Long format of ``profiles.csv``: vm_id, timestamp, p50, p90, p99 (rounded to
        ``decimals`` for text; None keeps every bit, for Parquet)."""
        n_vm, n_t = len(self.vm_ids), len(self.horizon)
        out = pd.DataFrame({
            "vm_id": np.repeat(self.vm_ids.to_numpy(), n_t),
            "timestamp": np.tile(self.horizon.to_numpy(), n_vm),
        })
        for q in QUANTILES:
            values = self.values[q].reshape(-1)
            out[q] = values if decimals is None else np.round(values, decimals)
        return out

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, horizon: pd.DatetimeIndex,
                   method: str = "supplied") -> "LoadProfiles":
        """Inverse of :meth:`to_frame` (the frame must hold every slot of ``horizon``)."""
        vm_ids = pd.Index(pd.unique(frame["vm_id"]), name="vm_id")
        wide = {}
        for q in QUANTILES:
            pivot = frame.pivot_table(index="vm_id", columns="timestamp", values=q, aggfunc="mean")
            wide[q] = pivot.reindex(index=vm_ids, columns=horizon).to_numpy(float)
        return cls(horizon, vm_ids, wide, pd.Series(method, index=vm_ids, dtype=object))
