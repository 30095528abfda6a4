"""The automatic forecaster: per VM, the method that back-tests best on the VM's own history.

For every VM with enough history, each candidate forecasts the last part of the history
(the last week with two weeks or more, else the last day; and the same window before it,
``inner_folds`` = 2) from what came before it, and the losses (mean pinball over P50/P90/P99) are compared per block: the days of the held-out week,
or 4-hour blocks of a held-out day. A VM keeps the default method unless a candidate is better
by a one-sided Diebold-Mariano-style test on the block losses (``switch_alpha``, 5 %) and by at
least ``switch_margin``: on bursty load one held-out week is noisy, and switching on noise
costs more than it gains (measured on the Cornell servers, see BENCHMARKS.md). Among the
candidates that pass, the one with the largest mean improvement wins; it is refitted on the
whole history and forecasts the horizon. Cheap fallbacks, without a back-test:

=====================  ===========================================  ==========================
VM                     rule                                         method reported
=====================  ===========================================  ==========================
no telemetry           left out; ``build_profiles`` borrows the     (borrowed-*, assumed-peak)
                       endpoint's (SaaS) or customer's (IaaS)
                       profile
under ``min_history_h``  the peak seen, every quantile (the paper's   ``short-history-peak``
(or four horizons)     rule for VMs it knows little about)
constant load          the last level, every quantile               ``flat``
gappy (coverage below  ``recent-mix`` (robust to holes)             ``recent-mix``
``min_coverage``)
=====================  ===========================================  ==========================

Only VMs with a daily or weekly cycle (seasonal strength at least ``min_seasonal_strength``,
see :func:`seasonal_strength`) take part in the back-test: on load without a repeating pattern
(batch jobs) the seasonal candidates can only win a held-out week by chance, and the default
``recent-mix`` is kept. statsmodels candidates cost about 0.05-0.15 s per VM and fit, so they
are tried on at most ``max_statsmodels_vms`` of the seasonal VMs with four weeks of history
(three before the held-out week: with less, they could model only the daily cycle and would
average weekends into weekdays): those whose best cheap candidate back-tested worst relative
to their load (where a better model can pay). Everything else is vectorised and runs in chunks
of ``chunk_vms`` VMs to bound memory.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from tapas_opt.config import HISTORY_WEEKS, MINUTES_PER_DAY, QUANTILES, divides_a_day
from tapas_opt.forecast.base import ASSUMED_PEAK, Forecaster
from tapas_opt.forecast.empirical import (CHEAP_METHODS, DAY_MIN, MatrixMethod, RecentMixMethod,
                                          seasonal_profile)
from tapas_opt.forecast.metrics import block_losses, score_rows, significantly_better
from tapas_opt.forecast.series import (SeriesMatrix, aggregate_matrix, build_matrix, describe_quality,
                                      matrix_from_values)
from tapas_opt.forecast.statsmodels_models import STATSMODELS_METHODS, WEEK_H, StatsmodelsMethod, history_seasons
from tapas_opt.forecast.template import WEEK_MIN

Progress = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


class MatrixForecaster(Forecaster):
    """Any :class:`~tapas_opt.forecast.empirical.MatrixMethod` behind the Forecaster interface.

    Parameters
    ----------
    method : MatrixMethod
        The method (e.g. ``RecentMixMethod()``).
    step_min : int
        Time step of the forecast (telemetry is averaged onto it).
    history_weeks : float
        Only the last ``history_weeks`` weeks of telemetry are used.
    """

    def __init__(self, method: MatrixMethod, step_min: int = 60, history_weeks: float = 4):
        self.method = method
        self.step_min = step_min
        self.history_weeks = history_weeks

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.method.name

    def fit(self, history: pd.DataFrame) -> "MatrixForecaster":
        self.matrix_ = build_matrix(history, self.step_min,
                                    int(self.history_weeks * WEEK_MIN // self.step_min))
        self.vm_ids_ = self.matrix_.vm_ids
        return self

    def predict_array(self, horizon: pd.DatetimeIndex) -> np.ndarray:
        """Forecast of every VM; a VM the method cannot forecast (a statsmodels model on a few
        hours of history gives NaN) gets the automatic choice's default instead, recorded in
        :attr:`methods_`, so no profile is ever empty."""
        m = self.matrix_
        self.fallback_ = pd.Index([], dtype=object)
        if len(m.vm_ids) == 0:
            return np.zeros((0, len(horizon), 3))
        horizon = pd.DatetimeIndex(horizon)
        values = self.method.forecast(m.values, m.index, m.step_min, horizon)
        failed = fill_failed(values, m.values, m.index, m.step_min, horizon)
        self.fallback_ = pd.Index(m.vm_ids[failed])
        return values

    @property
    def methods_(self) -> pd.Series:
        methods = pd.Series(self.name, index=pd.Index(self.vm_ids_, name="vm_id"), dtype=object)
        methods[methods.index.isin(getattr(self, "fallback_", []))] = AutoConfig.default
        return methods

    def predict(self, horizon: pd.DatetimeIndex, quantiles: tuple[str, ...] = QUANTILES) -> pd.DataFrame:
        return to_frame(self.vm_ids_, pd.DatetimeIndex(horizon), self.predict_array(horizon), quantiles)


def to_frame(vm_ids: pd.Index, horizon: pd.DatetimeIndex, values: np.ndarray,
             quantiles: tuple[str, ...] = QUANTILES) -> pd.DataFrame:
    """``[n_vm, H, 3]`` quantiles as the Forecaster frame indexed by (vm_id, timestamp)."""
    index = pd.MultiIndex.from_product([pd.Index(vm_ids, name="vm_id"),
                                        pd.DatetimeIndex(horizon, name="timestamp")])
    pos = {q: k for k, q in enumerate(QUANTILES)}
    return pd.DataFrame({q: values[:, :, pos[q]].reshape(-1) for q in quantiles}, index=index)


@dataclass
class AutoConfig:
    """Options of :class:`AutoForecaster` (defaults documented in docs/forecasting.md)."""

    candidates: tuple[str, ...] = ("recent-mix", "profile-mix", "profile", "profile-recent",
                                   "seasonal-naive", "template")
    statsmodels: tuple[str, ...] = ("mstl-ets", "holt-winters", "stl-ar")
    default: str = "recent-mix"
    switch_margin: float = 0.05
    switch_alpha: float = 0.05
    max_statsmodels_vms: int = 10
    statsmodels_folds: int = 1
    min_seasonal_strength: float = 0.3
    min_history_h: float = 24.0
    min_coverage: float = 0.5
    flat_tolerance: float = 1e-3
    history_weeks: float = HISTORY_WEEKS
    inner_folds: int = 2
    select_step_min: int = 60
    chunk_vms: int = 2000
    workers: int = 1
    methods: dict[str, MatrixMethod] = field(default_factory=dict)


def selection_step(step_min: int, target_min: int) -> int:
    """The step methods are compared at: the smallest multiple of the telemetry's step that is at
    least ``target_min`` and still divides a day (a 45-minute room compares at 90 minutes, a
    32-minute one at 96), so that slots aggregate whole and days stay whole."""
    k = 1
    while step_min * k < target_min or not divides_a_day(step_min * k):
        if step_min * k >= MINUTES_PER_DAY:
            return step_min
        k += 1
    return step_min * k


class AutoForecaster(Forecaster):
    """Per-VM choice among forecasting methods by back-test on each VM's own history.

    Parameters
    ----------
    step_min : int
        Time step of telemetry averaging and of the forecast.
    progress : callable, optional
        ``progress(stage, done, total)`` is called as chunks of VMs finish (for long runs).
    **options
        Fields of :class:`AutoConfig` (e.g. ``max_statsmodels_vms=0`` for the cheap path only).

    Attributes
    ----------
    vm_ids_ : pd.Index
        VMs with telemetry, in the order of the forecast.
    methods_ : pd.Series
        Method chosen per VM.
    scores_ : pd.DataFrame
        Back-test mean pinball loss per VM (rows) and candidate (columns); NaN = not tried.
    quality_ : pd.DataFrame
        Per-VM telemetry report (see :class:`~tapas_opt.forecast.series.SeriesMatrix`).
    notes_ : list of str
        Plain-language report of irregular, duplicate and missing telemetry.
    """

    name = "auto"

    def __init__(self, step_min: int = 60, progress: Progress | None = None, **options):
        self.step_min = step_min
        self.progress = progress or _no_progress
        self.config = AutoConfig(**options)

    # ----------------------------------------------------------------- methods

    def _method(self, name: str) -> MatrixMethod:
        if name in self.config.methods:
            return self.config.methods[name]
        if name in CHEAP_METHODS:
            return CHEAP_METHODS[name]
        if name in STATSMODELS_METHODS:
            return StatsmodelsMethod(model=name, workers=self.config.workers)
        raise ValueError(f"unknown forecasting method {name!r}; known: "
                         f"{sorted(CHEAP_METHODS) + list(STATSMODELS_METHODS)}")

    # ----------------------------------------------------------------- fit

    def fit(self, history: pd.DataFrame) -> "AutoForecaster":
        """Regularise ``history`` (timestamp, vm_id, load), back-test and choose per VM."""
        max_slots = int(self.config.history_weeks * WEEK_MIN // self.step_min)
        return self.fit_matrix(build_matrix(history, self.step_min, max_slots))

    def fit_matrix(self, m: SeriesMatrix) -> "AutoForecaster":
        """:meth:`fit` on telemetry already on a regular grid."""
        cfg = self.config
        self.matrix_ = m
        self.vm_ids_ = m.vm_ids
        self.quality_ = m.quality
        self.notes_ = describe_quality(m.quality, self.step_min)
        # Methods are compared on hourly means when telemetry is finer: the choice depends on
        # the shape of the load, and a 5-minute back-test would cost 12 times as much.
        sel = aggregate_matrix(m, selection_step(self.step_min, cfg.select_step_min))
        self.sel_ = sel
        n = len(m.vm_ids)
        names = list(cfg.candidates) + list(cfg.statsmodels)
        self.scores_ = pd.DataFrame(np.nan, index=m.vm_ids, columns=names)
        self.blocks_ = {name: np.full((n, 7 * cfg.inner_folds), np.nan) for name in names}
        self._loss_sum = {name: np.zeros(n) for name in names}
        self._loss_n = {name: np.zeros(n) for name in names}
        chosen = np.full(n, cfg.default, dtype=object)
        if n == 0:
            self.chosen_ = chosen
            return self
        span_h = m.quality["span_slots"].to_numpy(float) * self.step_min / 60
        values = m.values
        seen = ~np.isnan(values)
        spread = np.where(seen, values, -np.inf).max(axis=1) - np.where(seen, values, np.inf).min(axis=1)
        spread = np.where(seen.any(axis=1), spread, 0.0)
        short = span_h < cfg.min_history_h
        flat = ~short & (spread <= cfg.flat_tolerance)
        gappy = ~short & ~flat & (m.quality["coverage"].to_numpy(float) < cfg.min_coverage)
        chosen[short], chosen[flat], chosen[gappy] = "short-history-peak", "flat", "recent-mix"
        # Seasonal candidates are tried only where there is a season to exploit: on load without
        # a repeating daily or weekly pattern they can only win a back-test by chance.
        self.strength_ = pd.Series(np.nan, index=m.vm_ids, name="seasonal_strength")
        rest = np.flatnonzero(~(short | flat | gappy))
        strength = np.zeros(n)
        for chunk in np.array_split(rest, max(1, -(-len(rest) // cfg.chunk_vms))):
            if len(chunk):
                strength[chunk] = seasonal_strength(sel.values[chunk], sel.index, sel.step_min)
        self.strength_.iloc[rest] = strength[rest]
        selectable = ~(short | flat | gappy) & (strength >= cfg.min_seasonal_strength)
        # Hold out the last week when there are two, else the last day (two days at least).
        hold_week = selectable & (span_h >= 2 * WEEK_MIN / 60)
        hold_day = selectable & ~hold_week & (span_h >= 2 * DAY_MIN / 60)
        for hold_slots, rows in ((WEEK_MIN // sel.step_min, hold_week),
                                 (DAY_MIN // sel.step_min, hold_day)):
            self._backtest_rows(np.flatnonzero(rows), hold_slots)
        # statsmodels models get only a daily season below three weeks of history
        # (statsmodels_models.season_h), so they would average weekends into weekdays: they are
        # candidates only where the back-test's training part has three weeks, so that the
        # model back-tested and the model refitted on the whole history both have the weekly season.
        self._backtest_statsmodels(self._weekly_rows(np.flatnonzero(hold_week)), hold_week)
        for name in names:
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(self._loss_n[name] > 0, self._loss_sum[name] / self._loss_n[name], np.nan)
            self.scores_[name] = mean
        chosen[selectable] = self._choose(np.flatnonzero(selectable))
        self.chosen_ = chosen
        return self

    def _backtest_rows(self, rows: np.ndarray, hold_slots: int) -> None:
        """Inner back-test of the cheap candidates on ``rows`` (chunked)."""
        m = self.sel_
        if len(rows) == 0:
            return
        chunks = np.array_split(rows, max(1, -(-len(rows) // self.config.chunk_vms)))
        for k, chunk in enumerate(chunks):
            for fold, cut, end in self._folds(hold_slots):
                train = m.values[chunk, :cut]
                test = m.values[chunk, cut:end]
                for name in self.config.candidates:
                    fc = self._method(name).forecast(train, m.index[:cut], m.step_min, m.index[cut:end])
                    self._record(name, chunk, test, fc, fold)
            self.progress("back-test", int(sum(len(c) for c in chunks[:k + 1])), len(rows))

    def _folds(self, hold_slots: int) -> list[tuple[int, int, int]]:
        """(fold, first held-out slot, end) for the last ``inner_folds`` held-out windows.

        A fold whose training part would be shorter than the held-out window is skipped.
        """
        n = self.sel_.n_slots
        out = []
        for fold in range(self.config.inner_folds):
            end = n - fold * hold_slots
            cut = end - hold_slots
            if cut >= hold_slots:
                out.append((fold, cut, end))
        return out

    def _weekly_rows(self, rows: np.ndarray) -> np.ndarray:
        """The ``rows`` whose every statsmodels training part (a week held out per fold)
        supports the weekly season."""
        m = self.sel_
        folds = self._folds(WEEK_MIN // m.step_min)[:self.config.statsmodels_folds]
        if len(rows) == 0 or not folds:
            return rows[:0]
        cut = min(c for _, c, _ in folds)
        return rows[history_seasons(m.values[rows, :cut], m.index[:cut], m.step_min) == WEEK_H]

    def _backtest_statsmodels(self, rows: np.ndarray, hold_week: np.ndarray) -> None:
        """Inner back-test of the statsmodels candidates where they may pay (see module doc)."""
        cfg = self.config
        if not cfg.statsmodels or cfg.max_statsmodels_vms <= 0 or len(rows) == 0:
            return
        m = self.sel_
        with np.errstate(invalid="ignore", divide="ignore"):
            cheap = np.stack([self._loss_sum[c][rows] / self._loss_n[c][rows] for c in cfg.candidates])
        cheap_best = np.nanmin(np.where(np.isnan(cheap), np.inf, cheap), axis=0)
        # Relative loss: loss / mean level, so that busy and quiet VMs compare fairly.
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: mean of nothing
            level = np.nanmean(m.values[rows], axis=1)
            rel = cheap_best / np.maximum(level, 1e-3)
        order = np.lexsort((np.arange(len(rows)), -np.nan_to_num(rel)))  # worst first, stable
        picked = list(order[:cfg.max_statsmodels_vms])
        self.statsmodels_vms_ = m.vm_ids[rows[picked]] if picked else pd.Index([], name="vm_id")
        for is_week in (True, False):
            sel = np.array([rows[i] for i in picked if hold_week[rows[i]] == is_week], dtype=int)
            if len(sel) == 0:
                continue
            hold = (WEEK_MIN if is_week else DAY_MIN) // m.step_min
            for k, name in enumerate(cfg.statsmodels):
                for fold, cut, end in self._folds(hold)[:cfg.statsmodels_folds]:
                    fc = self._method(name).forecast(m.values[sel, :cut], m.index[:cut], m.step_min,
                                                     m.index[cut:end])
                    self._record(name, sel, m.values[sel, cut:end], fc, fold)
                self.progress("statsmodels back-test", k + 1, len(cfg.statsmodels))

    def _record(self, name: str, rows: np.ndarray, actual: np.ndarray, forecast: np.ndarray,
                fold: int = 0) -> None:
        """Store a candidate's back-test loss (total and per block) for ``rows``.

        A held-out week is split into its 7 days; a held-out day into 6 blocks of 4 hours. A
        forecast with NaN (a failed statsmodels fit) loses: its loss is infinite.
        """
        failed = np.isnan(forecast).any(axis=(1, 2))
        fc = np.nan_to_num(forecast)
        n_blocks = 7 if actual.shape[1] * self.sel_.step_min >= WEEK_MIN else 6
        score = np.where(failed, np.inf, score_rows(actual, fc))
        seen = np.isfinite(score) | failed
        self._loss_sum[name][rows] += np.where(seen, score, 0.0)
        self._loss_n[name][rows] += seen
        blocks = block_losses(actual, fc, n_blocks)
        blocks[failed] = np.inf
        self.blocks_[name][rows, 7 * fold:7 * fold + n_blocks] = blocks

    def _choose(self, rows: np.ndarray) -> np.ndarray:
        """Per row: the default, unless a candidate is significantly and clearly better."""
        from scipy.stats import t as student_t

        cfg = self.config
        choice = np.full(len(rows), cfg.default, dtype=object)
        if cfg.default not in self.blocks_:
            return choice
        base = self.blocks_[cfg.default][rows]
        base_score = self.scores_[cfg.default].to_numpy()[rows]
        n_blocks = (~np.isnan(base)).sum(axis=1)
        t_crit = student_t.ppf(1.0 - cfg.switch_alpha, np.maximum(n_blocks - 1, 1))
        gain_best = np.zeros(len(rows))
        for name, blocks in self.blocks_.items():
            if name == cfg.default:
                continue
            cand = blocks[rows]
            failed = np.isinf(cand).any(axis=1)
            sig, gain = significantly_better(base, np.where(np.isinf(cand), np.nan, cand), t_crit)
            score = self.scores_[name].to_numpy()[rows]
            clear = score <= base_score * (1.0 - cfg.switch_margin)
            take = sig & clear & ~failed & (gain > gain_best)
            choice[take], gain_best[take] = name, gain[take]
        return choice

    # ----------------------------------------------------------------- predict

    @property
    def methods_(self) -> pd.Series:
        """Method per VM: as chosen by :meth:`fit`, as used by the last :meth:`predict`."""
        return pd.Series(getattr(self, "predicted_", self.chosen_), index=self.vm_ids_, dtype=object)

    def predict_array(self, horizon: pd.DatetimeIndex) -> np.ndarray:
        """P50/P90/P99 per VM and horizon slot, ``[n_vm, len(horizon), 3]``."""
        horizon = pd.DatetimeIndex(horizon)
        m = self.matrix_
        n = len(m.vm_ids)
        out = np.zeros((n, len(horizon), 3))
        if n == 0:
            return out
        chosen = self.chosen_.copy()
        # Less than a day is too little for a week ahead, but four horizons of history are
        # enough for a short horizon (an hour ahead from the last few hours): those VMs get
        # the default method instead of their peak.
        horizon_h = len(horizon) * self.step_min / 60
        span_h = m.quality["span_slots"].to_numpy(float) * self.step_min / 60
        enough = (chosen == "short-history-peak") & (span_h >= 4 * horizon_h) & (span_h > 0)
        chosen[enough] = self.config.default
        chosen[span_h <= 0] = ASSUMED_PEAK  # telemetry only before the window: nothing known
        rule_based = {"short-history-peak", "flat", ASSUMED_PEAK}
        seen = ~np.isnan(m.values)
        peak = np.where(seen, m.values, -np.inf).max(axis=1)
        out[chosen == ASSUMED_PEAK] = 1.0
        rows = np.flatnonzero(chosen == "short-history-peak")
        out[rows] = np.clip(peak[rows], 0, 1)[:, None, None]
        rows = np.flatnonzero(chosen == "flat")
        if len(rows):
            last = np.array([m.values[r, np.flatnonzero(seen[r])[-1]] for r in rows])
            out[rows] = np.clip(last, 0, 1)[:, None, None]
        names = [c for c in pd.unique(chosen) if c not in rule_based]
        done = 0
        for name in names:
            rows = np.flatnonzero(chosen == name)
            for chunk in np.array_split(rows, max(1, -(-len(rows) // self.config.chunk_vms))):
                fc = self._method(name).forecast(m.values[chunk], m.index, m.step_min, horizon)
                # a statsmodels refit that failed: the default takes over
                bad = fill_failed(fc, m.values[chunk], m.index, m.step_min, horizon,
                                  self._method(self.config.default))
                chosen[chunk[bad]] = self.config.default
                out[chunk] = fc
                done += len(chunk)
                self.progress("forecast", done, n)
        self.predicted_ = chosen
        return out

    def predict(self, horizon: pd.DatetimeIndex, quantiles: tuple[str, ...] = QUANTILES) -> pd.DataFrame:
        return to_frame(self.vm_ids_, pd.DatetimeIndex(horizon), self.predict_array(horizon), quantiles)

    def summary(self) -> dict:
        """Method counts, mean back-test loss per candidate and the telemetry report."""
        scores = self.scores_.replace(np.inf, np.nan)
        return {
            "methods": {str(k): int(v) for k, v in self.methods_.value_counts().items()},
            "backtest_pinball_mean": {c: (None if scores[c].isna().all() else float(scores[c].mean()))
                                      for c in scores.columns},
            "statsmodels_tried": int(len(getattr(self, "statsmodels_vms_", []))),
            "telemetry_notes": list(self.notes_),
        }


def seasonal_strength(values: np.ndarray, index: pd.DatetimeIndex, step_min: int) -> np.ndarray:
    """Share of a VM's load variance explained by its seasonal profile (0 = none, 1 = all).

    ``max(0, 1 - var(residual) / var(load))`` with the profile of
    :func:`~tapas_opt.forecast.empirical.seasonal_profile` (Hyndman's seasonal strength, with a
    profile instead of an STL component so that it is vectorised).
    """
    fitted, scale, _ = seasonal_profile(values, index, step_min, index[-1:])
    resid = (values - fitted) * scale
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows with < 2 values: no variance
        var_y = np.nanvar(values, axis=1)
        var_r = np.nanvar(resid, axis=1)
        out = 1.0 - var_r / var_y
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0)


class AutoMethod(MatrixMethod):
    """:class:`AutoForecaster` as a matrix method, for rolling-origin back-tests.

    ``choices`` counts the methods chosen over all calls.
    """

    name = "auto"

    def __init__(self, **options):
        self.options = options
        self.choices: dict[str, int] = {}

    def forecast(self, values, index, step_min, horizon):
        auto = AutoForecaster(step_min, **self.options).fit_matrix(matrix_from_values(values, index, step_min))
        out = auto.predict_array(horizon)
        for k, v in auto.methods_.value_counts().items():
            self.choices[str(k)] = self.choices.get(str(k), 0) + int(v)
        return out


def default_forecaster(step_min: int, **options) -> AutoForecaster:
    """The forecaster ``place`` and ``forecast`` use unless told otherwise."""
    return AutoForecaster(step_min, **options)


def fill_failed(values: np.ndarray, history: np.ndarray, index, step_min: int, horizon,
                fallback: MatrixMethod | None = None) -> np.ndarray:
    """Replace, in place, the forecasts ``values`` [VM, slot, band] of the VMs a method could not
    forecast (NaN: a statsmodels fit that failed or was implausible) by ``fallback``'s forecast
    from ``history`` (default: the automatic choice's default method); returns the mask of those
    VMs. The one place a failed forecast is replaced: ``forecast``, ``place`` and the back-test."""
    failed = ~np.isfinite(values).all(axis=(1, 2))
    if failed.any():
        method = CHEAP_METHODS[AutoConfig.default] if fallback is None else fallback
        values[failed] = method.forecast(history[failed], index, step_min, horizon)
    return failed


__all__ = ["AutoForecaster", "AutoConfig", "MatrixForecaster", "RecentMixMethod", "default_forecaster",
           "seasonal_strength", "to_frame"]
