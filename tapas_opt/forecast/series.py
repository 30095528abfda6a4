"""Telemetry on a regular grid: one row per VM, one column per time step, NaN where unseen.

Every vectorised forecaster works on this matrix, so irregular timestamps, duplicates and gaps
are resolved once, here, and reported per VM (:class:`SeriesMatrix.quality`) instead of being
dropped silently:

* a sample whose timestamp is not on the step grid (irregular or finer telemetry) is averaged
  into the slot that contains it (``off_grid``);
* several samples in one slot (duplicates, or finer telemetry) are averaged (``merged``);
* a slot between a VM's first and last sample with no sample is a gap (``missing_slots``,
  ``longest_gap_slots``); methods treat it as missing, :func:`fill_gaps` fills it for the
  models that need a complete series;
* rows with an unparseable timestamp or a missing load are counted (``invalid``).

The matrix is built with integer arithmetic and ``numpy.bincount`` rather than a pandas
group-by, because 10,000 VMs x 4 weeks at 5 minutes is 80 million samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

NS_PER_MIN = 60 * 1_000_000_000

QUALITY_COLUMNS = ("samples", "invalid", "off_grid", "merged", "missing_slots",
                   "longest_gap_slots", "first", "last", "span_slots", "coverage")


@dataclass(frozen=True)
class SeriesMatrix:
    """Regular-grid telemetry of many VMs.

    Attributes
    ----------
    vm_ids : pd.Index
        Row labels, in order of first appearance in the history.
    index : pd.DatetimeIndex
        Start of every time slot (column), regular at ``step_min``.
    values : np.ndarray
        Mean load per VM and slot, shape ``(len(vm_ids), len(index))``; NaN = no sample.
    step_min : int
        Width of a slot in minutes.
    quality : pd.DataFrame
        Per VM (index ``vm_id``): the counts listed in the module docstring.
    """

    vm_ids: pd.Index
    index: pd.DatetimeIndex
    values: np.ndarray
    step_min: int
    quality: pd.DataFrame

    @property
    def n_slots(self) -> int:
        return len(self.index)

    @property
    def end(self) -> pd.Timestamp:
        """First slot after the history (where a forecast starts by default)."""
        if len(self.index) == 0:
            return pd.NaT
        return self.index[-1] + pd.Timedelta(minutes=self.step_min)

    def head(self, n_slots: int) -> "SeriesMatrix":
        """The first ``n_slots`` columns (for back-tests: the history before an origin)."""
        return SeriesMatrix(self.vm_ids, self.index[:n_slots], self.values[:, :n_slots],
                            self.step_min, self.quality)

    def rows(self, positions: np.ndarray) -> "SeriesMatrix":
        """A subset of VMs (by row position)."""
        return SeriesMatrix(self.vm_ids[positions], self.index, self.values[positions],
                            self.step_min, self.quality.iloc[positions])


def _empty(step_min: int) -> SeriesMatrix:
    quality = pd.DataFrame(columns=list(QUALITY_COLUMNS), index=pd.Index([], name="vm_id"))
    return SeriesMatrix(pd.Index([], name="vm_id"), pd.DatetimeIndex([], name="timestamp"),
                        np.zeros((0, 0)), step_min, quality)


def build_matrix(history: pd.DataFrame, step_min: int, max_slots: int | None = None,
                 end: pd.Timestamp | None = None, dtype=np.float64) -> SeriesMatrix:
    """Average long telemetry (``timestamp, vm_id, load``) onto a regular grid.

    Parameters
    ----------
    history : pd.DataFrame
        Columns ``timestamp`` (datetime64), ``vm_id`` and ``load``; any order.
    step_min : int
        Slot width in minutes; slots are aligned to multiples of the step since the epoch
        (so 60 gives whole hours).
    max_slots : int, optional
        Keep only the last ``max_slots`` slots before ``end`` (e.g. four weeks).
    end : pd.Timestamp, optional
        First slot after the history; default: the slot after the last valid sample.
    dtype : numpy dtype
        dtype of the matrix (float32 halves memory for very large rooms).

    Returns
    -------
    SeriesMatrix
    """
    if step_min <= 0:
        raise ValueError(f"step_min={step_min} must be positive")
    if len(history) == 0:
        return _empty(step_min)
    # Integer time in the column's own unit (no conversion copy of tens of millions of stamps).
    stamps = pd.to_datetime(history["timestamp"]).to_numpy()
    unit = np.datetime_data(stamps.dtype)[0]
    per_min = {"s": 60, "ms": 60_000, "us": 60_000_000, "ns": NS_PER_MIN}[unit]
    ts = stamps.view(np.int64)
    step = step_min * per_min
    load = pd.to_numeric(history["load"], errors="coerce").to_numpy(np.float64)
    codes, uniques = pd.factorize(history["vm_id"], sort=False)
    vm_ids = pd.Index(uniques, name="vm_id")
    n_vm = len(vm_ids)
    nat = np.iinfo(np.int64).min
    valid = (ts != nat) & ~np.isnan(load) & (codes >= 0)
    all_valid = bool(valid.all())
    invalid = np.zeros(n_vm, np.int64) if all_valid else np.bincount(codes[~valid & (codes >= 0)], minlength=n_vm)
    if not valid.any():
        return _empty(step_min)
    ts_valid = ts if all_valid else ts[valid]
    end_u = (ts_valid.max() // step + 1) * step if end is None else \
        int(pd.Timestamp(end).value) // (NS_PER_MIN // per_min)
    start_u = (ts_valid.min() // step) * step
    if max_slots is not None:
        start_u = max(start_u, end_u - max_slots * step)
    n_t = max(int((end_u - start_u) // step), 0)
    slot = (ts - start_u) // step  # floor division: the slot that contains each sample
    keep = valid & (slot >= 0) & (slot < n_t)
    if keep.all():
        flat = codes.astype(np.int64) * n_t + slot
        kept_load, kept_codes, kept_ts = load, codes, ts
    else:
        flat = codes[keep].astype(np.int64) * n_t + slot[keep]
        kept_load, kept_codes, kept_ts = load[keep], codes[keep], ts[keep]
    counts = np.bincount(flat, minlength=n_vm * n_t).reshape(n_vm, n_t)
    if counts.max(initial=0) <= 1:  # one sample per slot (the usual case): place them directly
        values = np.full(n_vm * n_t, np.nan, dtype=dtype)
        values[flat] = kept_load
        values = values.reshape(n_vm, n_t)
    else:
        sums = np.bincount(flat, weights=kept_load, minlength=n_vm * n_t).reshape(n_vm, n_t)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = (sums / counts).astype(dtype, copy=False)
    index = pd.DatetimeIndex((start_u + np.arange(n_t) * step) * (NS_PER_MIN // per_min), name="timestamp")
    off_grid = np.bincount(kept_codes[(kept_ts - start_u) % step != 0], minlength=n_vm)
    samples = np.bincount(kept_codes, minlength=n_vm)
    quality = _quality(counts > 0, off_grid, invalid, index, vm_ids, samples)
    return SeriesMatrix(vm_ids, index, values, step_min, quality)


def matrix_from_values(values: np.ndarray, index: pd.DatetimeIndex, step_min: int,
                       vm_ids=None) -> SeriesMatrix:
    """A :class:`SeriesMatrix` around an existing regular-grid array (quality from its NaNs)."""
    values = np.asarray(values, dtype=float)
    vm_ids = pd.Index(np.arange(values.shape[0]) if vm_ids is None else vm_ids, name="vm_id")
    seen = ~np.isnan(values)
    zeros = np.zeros(values.shape[0], dtype=np.int64)
    quality = _quality(seen, zeros, zeros, pd.DatetimeIndex(index), vm_ids, seen.sum(axis=1))
    return SeriesMatrix(vm_ids, pd.DatetimeIndex(index, name="timestamp"), values, step_min, quality)


def aggregate_matrix(m: SeriesMatrix, step_min: int) -> SeriesMatrix:
    """Means over coarser slots (``step_min`` a multiple of ``m.step_min``); NaN-aware.

    Slots are aligned to multiples of ``step_min`` since the epoch, like :func:`build_matrix`.
    Returns ``m`` itself when the step is unchanged.
    """
    if step_min == m.step_min or len(m.index) == 0:
        return m
    if step_min % m.step_min:
        raise ValueError(f"step_min={step_min} is not a multiple of {m.step_min}")
    k = step_min // m.step_min
    step_ns = step_min * NS_PER_MIN
    start = (m.index[0].value // step_ns) * step_ns
    offset = int((m.index[0].value - start) // (m.step_min * NS_PER_MIN))
    n_coarse = -(-(offset + m.n_slots) // k)
    padded = np.full((len(m.vm_ids), n_coarse * k), np.nan)
    padded[:, offset:offset + m.n_slots] = m.values
    folded = padded.reshape(len(m.vm_ids), n_coarse, k)
    seen = (~np.isnan(folded)).sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(seen > 0, np.nansum(folded, axis=2) / np.maximum(seen, 1), np.nan)
    index = pd.DatetimeIndex(start + np.arange(n_coarse) * step_ns, name="timestamp")
    quality = _quality(seen > 0, np.zeros(len(m.vm_ids), np.int64), np.zeros(len(m.vm_ids), np.int64),
                       index, m.vm_ids, m.quality["samples"].to_numpy())
    return SeriesMatrix(m.vm_ids, index, values, step_min, quality)


def _runs_of_missing(seen: np.ndarray) -> np.ndarray:
    """Longest run of unseen slots strictly between the first and last seen slot of each row."""
    n_vm = seen.shape[0]
    longest = np.zeros(n_vm, dtype=np.int64)
    rows, cols = np.nonzero(seen)  # row-major: columns ascend within each row
    if len(rows) < 2:
        return longest
    gaps = np.zeros(len(rows), dtype=np.int64)
    same_row = rows[1:] == rows[:-1]
    gaps[1:] = np.where(same_row, cols[1:] - cols[:-1] - 1, 0)
    starts = np.flatnonzero(np.r_[True, ~same_row])  # first seen slot of each row with any
    longest[rows[starts]] = np.maximum.reduceat(gaps, starts)
    return longest


def _quality(seen: np.ndarray, off_grid: np.ndarray, invalid: np.ndarray,
             index: pd.DatetimeIndex, vm_ids: pd.Index, samples: np.ndarray) -> pd.DataFrame:
    """Per-VM report from the slots seen ``[n_vm, n_t]`` and the samples counted per VM."""
    n_t = seen.shape[1]
    any_seen = seen.any(axis=1)
    first = np.where(any_seen, seen.argmax(axis=1), 0)
    last = np.where(any_seen, n_t - 1 - seen[:, ::-1].argmax(axis=1), -1)
    span = np.where(any_seen, last - first + 1, 0)
    n_seen = seen.sum(axis=1)
    missing = span - n_seen
    longest = np.zeros(len(vm_ids), dtype=np.int64)
    gappy = np.flatnonzero(missing > 0)
    if len(gappy):
        longest[gappy] = _runs_of_missing(seen[gappy])
    first_ts = pd.DatetimeIndex(index[first]) if n_t else pd.DatetimeIndex([pd.NaT] * len(vm_ids))
    last_ts = pd.DatetimeIndex(index[np.maximum(last, 0)]) if n_t else first_ts
    quality = pd.DataFrame({
        "samples": samples,
        "invalid": invalid,
        "off_grid": off_grid,
        "merged": samples - n_seen,
        "missing_slots": missing,
        "longest_gap_slots": longest,
        "first": first_ts.where(any_seen),
        "last": last_ts.where(any_seen),
        "span_slots": span,
        "coverage": np.where(span > 0, n_seen / np.maximum(span, 1), 0.0),
    }, index=vm_ids)
    return quality


def fill_gaps(values: np.ndarray, period: int | None = None) -> np.ndarray:
    """A complete copy of each row for models that cannot take NaN.

    Interior gaps are filled with the value one ``period`` earlier (or later) when that is
    known, else by linear interpolation; leading and trailing NaN take the nearest value.
    Rows with no value at all become zeros.
    """
    out = np.array(values, dtype=float, copy=True)
    if period and period < out.shape[1]:
        # Repeat so that a gap longer than one period is filled from further back.
        for shift in [period] * (out.shape[1] // period) + [-period] * (out.shape[1] // period):
            miss = np.isnan(out)
            if not miss.any():
                break
            src = np.full_like(out, np.nan)
            if shift > 0:
                src[:, shift:] = out[:, :-shift]
            else:
                src[:, :shift] = out[:, -shift:]
            out = np.where(miss, src, out)
    miss = np.isnan(out)
    if miss.any():
        x = np.arange(out.shape[1])
        for i in np.flatnonzero(miss.any(axis=1)):
            ok = ~miss[i]
            out[i] = np.interp(x, x[ok], out[i, ok]) if ok.any() else 0.0
    return out


def describe_quality(quality: pd.DataFrame, step_min: int) -> list[str]:
    """Plain-language lines about irregular, duplicate, gappy or invalid telemetry.

    Each line names the VMs it concerns (the first few, then how many more), so that the
    operator can look at their telemetry without searching the whole room.
    """
    lines = []
    if len(quality) == 0:
        return lines

    def affected(col: str) -> tuple[pd.Series, int]:
        vals = pd.to_numeric(quality[col], errors="coerce").fillna(0)
        return vals[vals > 0], int(vals.sum())

    worst_gap = int(pd.to_numeric(quality["longest_gap_slots"], errors="coerce").fillna(0).max()) * step_min
    notes = {
        "invalid": "{n} telemetry rows of {vms} have no valid timestamp or load and were skipped",
        "off_grid": f"{{n}} samples of {{vms}} are not on the {step_min}-minute grid: averaged into their slot",
        "merged": "{n} samples of {vms} share a slot with another sample (duplicates or finer telemetry): averaged",
        "missing_slots": f"{{vms}} have gaps ({{n}} missing slots in all; longest {worst_gap} min): "
                         f"treated as missing, not as zero load",
    }
    for column, text in notes.items():
        vms, n = affected(column)
        if len(vms):
            lines.append(text.format(n=n, vms=_name_vms(vms)))
    return lines


def _name_vms(counts: pd.Series, shown: int = 5) -> str:
    """'3 VMs (vm-a, vm-b, vm-c)' or '40 VMs (vm-a, ... and 35 more)', worst VMs first."""
    worst_first = counts.sort_values(ascending=False, kind="stable")
    ids = [str(v) for v in worst_first.index[:shown]]
    more = f" and {len(counts) - shown} more" if len(counts) > shown else ""
    noun = "VM" if len(counts) == 1 else "VMs"
    return f"{len(counts)} {noun} ({', '.join(ids)}{more})"
