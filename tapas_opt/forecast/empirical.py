"""Cheap forecasting methods, vectorised over VMs: every VM of a room in one numpy pass.

Each method maps a history matrix (VMs x regular time slots, NaN = missing; see
:mod:`tapas_opt.forecast.series`) to P50/P90/P99 load over a horizon. They are the candidates
of the automatic choice (:mod:`tapas_opt.forecast.select`) and its fallbacks, and they are
what makes 10,000 VMs at 5-minute resolution affordable.

* ``template``: the paper's method (per slot of the week, quantiles over four weeks; peak
  with less than a week), identical to :class:`~tapas_opt.forecast.template.TemplateForecaster`.
* ``seasonal-naive``: last week's value at the same slot (last day's with less than two
  weeks), bands from the empirical distribution of week-on-week (day-on-day) differences.
* ``recent-mix``: a mixture of two empirical distributions. Near the origin the load is likely
  to stay where it is (a running job keeps running); further out it is a draw from the VM's
  own recency-weighted history. The weight of "stay" decays as ``exp(-h / persistence_h)``.
  P99 gets headroom above the highest load seen, because a week ahead a VM can start work it
  has not shown in four weeks. Suits bursty, weakly periodic load (batch jobs, the Cornell
  servers).
* ``profile-mix``: a seasonal profile (recency-weighted mean per slot of the week with two
  weeks of history or more; otherwise per slot of the day, separately for weekdays and
  weekend days, so that weekends are not averaged into weekdays) plus ``recent-mix`` on the
  residual. Residuals are leave-one-out, so the bands are not too narrow when the profile is
  the mean of few weeks. Suits periodic load (LLM endpoints, office-hours IaaS).
* ``profile``: the same without the "stay" component (the profile plus the residual
  distribution), and ``profile-recent``: the same with a 48-hour half-life, so that the
  latest days dominate (load that grows or shrinks from week to week).

Quantiles of weighted samples are read from per-VM histograms (``numpy.bincount``) rather
than by sorting, which keeps the cost linear in the number of samples.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tapas_opt.forecast.base import QUANTILE_LEVELS
from tapas_opt.forecast.template import WEEK_MIN, nanquantile_axis1, slot_of_week

DAY_MIN = 24 * 60
QUANTILE_NAMES = ("p50", "p90", "p99")
LEVELS = np.array([QUANTILE_LEVELS[q] for q in QUANTILE_NAMES])
HIST_BINS = 512
LEVEL_GRID = 1000  # the quantile function is tabulated at levels 0, 0.001, ..., 1


# --------------------------------------------------------------------------- helpers


def steps_ahead(index: pd.DatetimeIndex, horizon: pd.DatetimeIndex, step_min: int) -> np.ndarray:
    """Lead time of each horizon slot in steps after the last history slot (1 = next slot)."""
    last = index[-1]
    delta = (pd.DatetimeIndex(horizon) - last) / pd.Timedelta(minutes=step_min)
    return np.maximum(np.asarray(delta, dtype=float), 1.0)


def recency_weights(n_slots: int, step_min: int, half_life_h: float | None) -> np.ndarray:
    """Weight of each history slot: 1 for the newest, halving every ``half_life_h`` hours."""
    if not half_life_h:
        return np.ones(n_slots)
    age_h = (n_slots - 1 - np.arange(n_slots)) * step_min / 60.0
    return 0.5 ** (age_h / half_life_h)


def quantile_table(x: np.ndarray, weights: np.ndarray | None = None,
                   bins: int = HIST_BINS) -> np.ndarray:
    """Weighted quantile function of each row, tabulated at levels ``0, 1/LEVEL_GRID, ..., 1``.

    The samples of a row are binned into ``bins`` equal bins between the row's minimum and
    maximum, and the quantile is interpolated linearly inside a bin; the error is at most one
    bin width (range / 512). Rows without samples give NaN.

    Parameters
    ----------
    x : np.ndarray
        ``[n_rows, n_samples]``, NaN = missing.
    weights : np.ndarray, optional
        Broadcastable to ``x``; default equal weights.

    Returns
    -------
    np.ndarray
        ``[n_rows, LEVEL_GRID + 1]``.
    """
    n, m = x.shape
    levels = np.linspace(0.0, 1.0, LEVEL_GRID + 1)
    out = np.full((n, LEVEL_GRID + 1), np.nan)
    if n == 0 or m == 0:
        return out
    ok = ~np.isnan(x)
    has = ok.any(axis=1)
    with np.errstate(all="ignore"):
        lo = np.where(has, np.nanmin(np.where(ok, x, np.inf), axis=1), 0.0)
        hi = np.where(has, np.nanmax(np.where(ok, x, -np.inf), axis=1), 0.0)
    width = (hi - lo) / bins
    safe_width = np.where(width > 0, width, 1.0)
    b = (x - lo[:, None]) * (1.0 / safe_width)[:, None]
    np.clip(b, 0, bins - 1, out=b)
    b += (np.arange(n) * bins)[:, None]  # global bin number; NaN stays NaN
    flat = b[ok].astype(np.int64)
    if weights is None:
        mass = np.bincount(flat, minlength=n * bins).reshape(n, bins).astype(float)
    else:
        w = np.broadcast_to(weights, x.shape)[ok]
        mass = np.bincount(flat, weights=w, minlength=n * bins).reshape(n, bins)
    total = mass.sum(axis=1)
    cdf = np.cumsum(mass, axis=1) / np.where(total > 0, total, 1.0)[:, None]
    # First bin whose cumulative mass reaches each level, for all rows in one searchsorted:
    # row r's CDF (values in 0..1) is shifted by 2 r, which makes the flattened array sorted.
    shift = 2.0 * np.arange(n)[:, None]
    flat_cdf = (cdf + shift).ravel()
    targets = (levels[None, :] - 1e-12 + shift).ravel()
    k = np.searchsorted(flat_cdf, targets, side="left").reshape(n, -1) - np.arange(n)[:, None] * bins
    k = np.clip(k, 0, bins - 1)
    prev = np.where(k > 0, np.take_along_axis(cdf, np.maximum(k - 1, 0), axis=1), 0.0)
    cur = np.take_along_axis(cdf, k, axis=1)
    frac = np.clip((levels[None, :] - prev) / np.where(cur > prev, cur - prev, 1.0), 0.0, 1.0)
    out[:] = lo[:, None] + (k + frac) * width[:, None]
    out[:, 0] = lo
    out[:, -1] = hi
    out[~has] = np.nan
    return out


def table_quantile(table: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Evaluate tabulated quantile functions (rows of ``table``) at ``level`` ``[n_rows, k]``."""
    pos = np.clip(level, 0.0, 1.0) * LEVEL_GRID
    j = np.minimum(np.floor(pos).astype(np.int64), LEVEL_GRID - 1)
    frac = pos - j
    lo = np.take_along_axis(table, j, axis=1)
    hi = np.take_along_axis(table, j + 1, axis=1)
    return lo + (hi - lo) * frac


def table_cdf(table: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Share of the distribution at or below ``x`` (one value per row) from a quantile table."""
    below = (table <= x[:, None]).sum(axis=1)
    return np.clip((below - 1) / LEVEL_GRID, 0.0, 1.0)


def mixture_quantiles(table: np.ndarray, recent: np.ndarray, stay: np.ndarray,
                      levels: np.ndarray = LEVELS) -> np.ndarray:
    """Quantiles of ``stay * point_mass(recent) + (1 - stay) * F`` per row and lead time.

    ``F`` is given by its quantile ``table`` ``[n, LEVEL_GRID + 1]``; ``recent`` ``[n]`` is the
    current level (NaN = unknown: no persistence); ``stay`` ``[H]`` the weight of staying at
    each lead time (the same for every row). With ``p0 = F(recent)``, the q-quantile is
    ``F^-1(q / (1 - a))`` below the point mass, ``recent`` on it, and ``F^-1((q - a) / (1 - a))``
    above it. Each distinct weight is evaluated once. Returns ``[n, H, len(levels)]``.
    """
    n = table.shape[0]
    uniq, inverse = np.unique(np.clip(np.asarray(stay, float), 0.0, 1.0 - 1e-9), return_inverse=True)
    a = np.where(np.isnan(recent)[:, None], 0.0, uniq[None, :])
    x0 = np.nan_to_num(recent)
    p0 = table_cdf(table, x0)[:, None]
    small = np.empty((n, len(uniq), len(levels)))
    for k, q in enumerate(levels):
        below = q < (1.0 - a) * p0
        on = ~below & (q <= (1.0 - a) * p0 + a)
        lev = np.where(below, q / (1.0 - a), (q - a) / (1.0 - a))
        val = table_quantile(table, lev)
        small[:, :, k] = np.where(on, x0[:, None], val)
    return small[:, inverse.reshape(-1), :]


def recent_level(x: np.ndarray, n_slots: int) -> np.ndarray:
    """Mean of the last ``n_slots`` values of each row (NaN if none is known)."""
    tail = x[:, -n_slots:]
    with np.errstate(invalid="ignore"), np.errstate(all="ignore"):
        ok = ~np.isnan(tail)
        return np.where(ok.any(axis=1), np.nansum(tail, axis=1) / np.maximum(ok.sum(axis=1), 1), np.nan)


def _fold(x: np.ndarray, index: pd.DatetimeIndex, step_min: int, period_min: int) -> tuple[np.ndarray, int]:
    """Reshape ``[n, T]`` into ``[n, cycles, slots_per_period]`` aligned to the calendar.

    Slot 0 of a weekly fold is Monday 00:00 (of a daily fold, 00:00). Returns the folded array
    (NaN padding before the first and after the last slot) and the offset of the first slot.
    """
    per = period_min // step_min
    if period_min == WEEK_MIN:
        offset = int(slot_of_week(index[:1], step_min)[0])
    else:
        first = index[0]
        offset = int((first.hour * 60 + first.minute) // step_min)
    total = offset + x.shape[1]
    cycles = -(-total // per)
    padded = np.full((x.shape[0], cycles * per), np.nan)
    padded[:, offset:offset + x.shape[1]] = x
    return padded.reshape(x.shape[0], cycles, per), offset


def _unfold(folded: np.ndarray, offset: int, n_slots: int) -> np.ndarray:
    return folded.reshape(folded.shape[0], -1)[:, offset:offset + n_slots]


def _weighted_cycle_mean(folded: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean over cycles (axis 1) ignoring NaN; returns (mean, weight sum)."""
    ok = ~np.isnan(folded)
    w = np.where(ok, weights, 0.0)
    wsum = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(wsum > 0, (w * np.nan_to_num(folded)).sum(axis=1) / wsum, np.nan)
    return mean, wsum


def _smooth_circular(profile: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of width ``width`` along the last axis (wrapping), NaN-aware."""
    if width <= 1:
        return profile
    half = width // 2
    ok = ~np.isnan(profile)
    v = np.where(ok, profile, 0.0)
    num = np.zeros_like(v)
    den = np.zeros_like(v)
    for s in range(-half, width - half):
        num += np.roll(v, s, axis=-1)
        den += np.roll(ok, s, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


# --------------------------------------------------------------------------- methods


class MatrixMethod:
    """A forecasting method over a history matrix; subclasses implement :meth:`forecast`."""

    name = "base"
    uses_statsmodels = False

    def forecast(self, values: np.ndarray, index: pd.DatetimeIndex, step_min: int,
                 horizon: pd.DatetimeIndex) -> np.ndarray:  # pragma: no cover - interface
        """P50/P90/P99 ``[n_vm, len(horizon), 3]`` from history ``values`` ``[n_vm, len(index)]``."""
        raise NotImplementedError


@dataclass(frozen=True)
class TemplateMethod(MatrixMethod):
    """The paper's templates (see :mod:`tapas_opt.forecast.template`) on a history matrix."""

    weeks: int = 4
    name = "template"

    def forecast(self, values, index, step_min, horizon):
        per = WEEK_MIN // step_min
        keep = min(values.shape[1], self.weeks * per)
        x = values[:, values.shape[1] - keep:]
        idx = index[len(index) - keep:]
        # Weeks are counted back from the end of the history, as TemplateForecaster does.
        age = keep - 1 - np.arange(keep)
        week = age // per
        slot = slot_of_week(idx, step_min)
        cube = np.full((x.shape[0], self.weeks, per), np.nan)
        cube[:, week, slot] = x
        ordered = np.sort(cube, axis=1)
        seen = ~np.isnan(values)
        any_seen = seen.any(axis=1)
        first = np.where(any_seen, seen.argmax(axis=1), values.shape[1])
        last = np.where(any_seen, values.shape[1] - 1 - seen[:, ::-1].argmax(axis=1), -1)
        short = (last - first + 1) * step_min < WEEK_MIN
        with np.errstate(all="ignore"):
            peak = np.nanmax(np.where(seen, values, -np.inf), axis=1)
        h_slot = slot_of_week(horizon, step_min)
        out = np.empty((values.shape[0], len(horizon), 3))
        for k, q in enumerate(QUANTILE_NAMES):
            tmpl = nanquantile_axis1(ordered, QUANTILE_LEVELS[q])
            gaps = np.isnan(tmpl).any(axis=1) & any_seen
            if gaps.any():  # slots never seen fall back to the VM's quantile over all its history
                fb = np.array([np.quantile(values[r][seen[r]], QUANTILE_LEVELS[q])
                               for r in np.flatnonzero(gaps)])
                tmpl[gaps] = np.where(np.isnan(tmpl[gaps]), fb[:, None], tmpl[gaps])
            tmpl[short] = peak[short, None]
            out[:, :, k] = np.clip(tmpl[:, h_slot], 0.0, 1.0)
        return out


@dataclass(frozen=True)
class SeasonalNaiveMethod(MatrixMethod):
    """Last week's (or, with less than two weeks, last day's) value, with empirical bands."""

    half_life_h: float | None = 168.0
    name = "seasonal-naive"

    def forecast(self, values, index, step_min, horizon):
        n, t = values.shape
        span = _span_slots(values)
        lead = steps_ahead(index, horizon, step_min).astype(np.int64)
        out = np.empty((n, len(horizon), 3))
        for period_min, rows in ((WEEK_MIN, span * step_min >= 2 * WEEK_MIN),
                                 (DAY_MIN, span * step_min < 2 * WEEK_MIN)):
            if not rows.any():
                continue
            per = period_min // step_min
            x = values[rows]
            # Value one period before each horizon slot, going back whole periods until seen.
            back = t - 1 - ((per - lead % per) % per)  # latest history slot of the same phase
            point = np.full((x.shape[0], len(horizon)), np.nan)
            for k in range(max(1, t // per + 1)):
                col = back - k * per
                valid = col >= 0
                cand = np.full_like(point, np.nan)
                cand[:, valid] = x[:, col[valid]]
                point = np.where(np.isnan(point), cand, point)
            diff = np.full_like(x, np.nan)
            if t > per:
                diff[:, per:] = x[:, per:] - x[:, :-per]
            table = quantile_table(diff, recency_weights(t, step_min, self.half_life_h)[None, :])
            no_diff = np.isnan(table[:, 0])
            table[no_diff] = 0.0
            seen = ~np.isnan(x)
            fallback = np.where(seen, x, 0.0).sum(axis=1) / np.maximum(seen.sum(axis=1), 1)
            point = np.where(np.isnan(point), fallback[:, None], point)
            for k, q in enumerate(LEVELS):
                off = table_quantile(table, np.full((x.shape[0], 1), q))
                out[rows, :, k] = np.clip(point + off, 0.0, 1.0)
        return np.maximum.accumulate(out, axis=2)


@dataclass(frozen=True)
class RecentMixMethod(MatrixMethod):
    """Mixture of "stay at the current level" and the recency-weighted history.

    Parameters
    ----------
    persistence_h : float
        Time constant of the decay of the "stay" weight (hours).
    half_life_h : float or None
        Half-life of the recency weights of the history distribution (hours); None = equal.
    recent_min : int
        The current level is the mean of the last ``recent_min`` minutes.
    p99_headroom : float
        P99 is at least ``peak + p99_headroom * (1 - peak)``, ``peak`` the highest load seen.
    """

    persistence_h: float = 24.0
    half_life_h: float | None = 168.0
    recent_min: int = 60
    p99_headroom: float = 0.25
    name = "recent-mix"

    def forecast(self, values, index, step_min, horizon):
        return _mix_forecast(values, None, None, index, step_min, horizon,
                             self.persistence_h, self.half_life_h, self.recent_min, self.p99_headroom)


@dataclass(frozen=True)
class ProfileMixMethod(MatrixMethod):
    """Seasonal profile plus :class:`RecentMixMethod` on the leave-one-out residual.

    ``persistence_h = 0`` gives the plain profile with residual bands (no "stay where you are"
    component); a short ``half_life_h`` lets the latest days dominate the profile.
    """

    persistence_h: float = 24.0
    half_life_h: float | None = 168.0
    recent_min: int = 60
    smooth_min: int = 60
    label: str = "profile-mix"

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.label

    def forecast(self, values, index, step_min, horizon):
        fitted, resid_scale, future = seasonal_profile(values, index, step_min, horizon,
                                                       self.half_life_h, self.smooth_min)
        return _mix_forecast(values, fitted, future, index, step_min, horizon, self.persistence_h,
                             self.half_life_h, self.recent_min, 0.0, resid_scale)


def _span_slots(values: np.ndarray) -> np.ndarray:
    seen = ~np.isnan(values)
    any_seen = seen.any(axis=1)
    first = np.where(any_seen, seen.argmax(axis=1), 0)
    last = np.where(any_seen, values.shape[1] - 1 - seen[:, ::-1].argmax(axis=1), -1)
    return np.where(any_seen, last - first + 1, 0)


def seasonal_profile(values: np.ndarray, index: pd.DatetimeIndex, step_min: int,
                     horizon: pd.DatetimeIndex, half_life_h: float | None = 168.0,
                     smooth_min: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A seasonal profile per VM, over the history and over the horizon.

    With two weeks of history or more: the recency-weighted mean per slot of the week. With
    less: the mean per slot of the day, separately for weekdays and weekend days (a horizon
    day whose type was never seen takes the all-days profile). The profile is smoothed over
    ``smooth_min`` minutes (a centred moving average) so that 5-minute noise is not
    mistaken for a pattern.

    Returns
    -------
    fitted : np.ndarray
        Profile value at every history slot ``[n, T]``.
    loo_scale : np.ndarray
        Leave-one-out inflation of each residual ``[n, T]``: ``1 / (1 - w_i / sum w)``.
    future : np.ndarray
        Profile value at every horizon slot ``[n, H]``.
    """
    n, t = values.shape
    span = _span_slots(values)
    weekly = span * step_min >= 2 * WEEK_MIN
    fitted = np.full((n, t), np.nan)
    scale = np.ones((n, t))
    future = np.full((n, len(horizon)), np.nan)
    w = recency_weights(t, step_min, half_life_h)
    width = max(1, smooth_min // step_min)
    if weekly.any():
        f, s, fut = _weekly_profile(values[weekly], index, step_min, horizon, w, width)
        fitted[weekly], scale[weekly], future[weekly] = f, s, fut
    if (~weekly).any():
        f, s, fut = _daytype_profile(values[~weekly], index, step_min, horizon, w, width)
        fitted[~weekly], scale[~weekly], future[~weekly] = f, s, fut
    return fitted, scale, future


def _fill_unseen(profile: np.ndarray) -> np.ndarray:
    """The profile ``[n, slots]`` with each slot never observed (NaN: telemetry coarser than the
    step, or an hour with no sample) interpolated linearly from the nearest observed slots on
    either side, around the cycle; a VM with no observed slot stays NaN. Left NaN, the slot
    was forecast at zero load (the residual bands then added to nothing)."""
    out = profile.copy()
    n_slots = profile.shape[1]
    pos = np.arange(n_slots)
    for i in np.flatnonzero(np.isnan(profile).any(axis=1)):
        seen = np.flatnonzero(~np.isnan(profile[i]))
        if len(seen) == 0:
            continue
        xp = np.concatenate([seen - n_slots, seen, seen + n_slots])  # around the cycle
        out[i] = np.interp(pos, xp, np.tile(profile[i, seen], 3))
    return out


def _loo_scale(folded_w: np.ndarray, wsum: np.ndarray, width: int) -> np.ndarray:
    """1 / (1 - own weight share): how much a residual from a mean that includes it shrinks."""
    share = folded_w / np.where(wsum > 0, wsum * width, 1.0)[:, None, :]
    with np.errstate(divide="ignore"):
        return np.where(share < 1.0, 1.0 / (1.0 - share), np.nan)


def _weekly_profile(values, index, step_min, horizon, w, width):
    folded, offset = _fold(values, index, step_min, WEEK_MIN)
    wf, _ = _fold(np.broadcast_to(w, values.shape), index, step_min, WEEK_MIN)
    ok = ~np.isnan(folded)
    wf = np.where(ok, wf, 0.0)
    profile, wsum = _weighted_cycle_mean(folded, wf)
    profile = _smooth_circular(profile, width)
    per_day = DAY_MIN // step_min
    by_day = profile.reshape(len(profile), -1, per_day)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a slot of the day never seen: NaN, filled next
        any_day = np.nanmean(by_day, axis=1)  # the slot of the day on the days that saw it
    profile = _fill_unseen(np.where(np.isnan(by_day), any_day[:, None, :], by_day).reshape(profile.shape))
    fitted = _unfold(np.broadcast_to(profile[:, None, :], folded.shape), offset, values.shape[1])
    scale = _unfold(_loo_scale(wf, wsum, width), offset, values.shape[1])
    future = profile[:, slot_of_week(horizon, step_min)]
    return fitted, scale, future


def _daytype_profile(values, index, step_min, horizon, w, width):
    folded, offset = _fold(values, index, step_min, DAY_MIN)
    wf, _ = _fold(np.broadcast_to(w, values.shape), index, step_min, DAY_MIN)
    ok = ~np.isnan(folded)
    wf = np.where(ok, wf, 0.0)
    first_day = index[0].normalize()
    days = pd.date_range(first_day, periods=folded.shape[1], freq="D")
    weekend = np.asarray(days.day_of_week >= 5)
    prof_all, wsum_all = _weighted_cycle_mean(folded, wf)
    smooth_all = _smooth_circular(prof_all, width)  # fills the slots a day type never saw
    profiles, wsums = {}, {}
    for kind, mask in (("weekday", ~weekend), ("weekend", weekend)):
        p, ws = _weighted_cycle_mean(folded[:, mask], wf[:, mask])
        missing = ws.sum(axis=1) <= 0  # this VM never showed this day type
        p[missing], ws[missing] = prof_all[missing], wsum_all[missing]
        p = _smooth_circular(p, width)
        profiles[kind], wsums[kind] = _fill_unseen(np.where(np.isnan(p), smooth_all, p)), ws
    day_kind = np.where(weekend, "weekend", "weekday")
    fitted_f = np.stack([profiles[k] for k in day_kind], axis=1)
    scale_f = np.concatenate([_loo_scale(wf[:, [d]], wsums[k], width) for d, k in enumerate(day_kind)],
                             axis=1)
    fitted = _unfold(fitted_f, offset, values.shape[1])
    scale = _unfold(scale_f, offset, values.shape[1])
    h_slot = np.asarray((horizon.hour * 60 + horizon.minute) // step_min)
    h_weekend = np.asarray(horizon.day_of_week >= 5)
    future = np.where(h_weekend[None, :], profiles["weekend"][:, h_slot], profiles["weekday"][:, h_slot])
    return fitted, scale, future


def _mix_forecast(values, fitted, future, index, step_min, horizon, persistence_h, half_life_h,
                  recent_min, p99_headroom, resid_scale=None) -> np.ndarray:
    """Shared core of recent-mix (``fitted`` None: no profile) and profile-mix."""
    n, t = values.shape
    resid = values if fitted is None else values - fitted
    weights = recency_weights(t, step_min, half_life_h)[None, :]
    table = quantile_table(resid if resid_scale is None else resid * resid_scale, weights)
    # The current level uses plain (not leave-one-out) residuals: it is an observation.
    level = recent_level(resid, max(1, recent_min // step_min))
    # The "stay" weight is evaluated per whole hour of lead time (finer is not worth its cost).
    lead_h = np.ceil(steps_ahead(index, horizon, step_min) * step_min / 60.0 - 1e-9)
    stay = np.exp(-lead_h / persistence_h) if persistence_h > 0 else np.zeros_like(lead_h)
    out = mixture_quantiles(np.nan_to_num(table), level, stay)
    if future is not None:
        out = out + np.nan_to_num(future)[:, :, None]
    if p99_headroom:
        with np.errstate(all="ignore"):  # a series without any value: peak -inf, floor NaN, unused
            peak = np.nanmax(np.where(np.isnan(values), -np.inf, values), axis=1)
            floor = peak + p99_headroom * (1.0 - peak)
        out[:, :, 2] = np.maximum(out[:, :, 2], np.where(np.isfinite(floor), floor, 0.0)[:, None])
    out = np.clip(out, 0.0, 1.0)
    return np.maximum.accumulate(out, axis=2)


CHEAP_METHODS = {m.name: m for m in (
    TemplateMethod(), SeasonalNaiveMethod(), RecentMixMethod(), ProfileMixMethod(),
    ProfileMixMethod(persistence_h=0.0, label="profile"),
    ProfileMixMethod(persistence_h=0.0, half_life_h=48.0, label="profile-recent"))}
