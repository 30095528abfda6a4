"""statsmodels forecasters with daily and weekly seasonality and residual quantile bands.

Three models, each fitted per VM on hourly means of its history (a statsmodels fit costs
about 0.05-0.3 s per series, so these run where they pay: see :mod:`tapas_opt.forecast.select`):

* ``mstl-ets``: :class:`statsmodels.tsa.seasonal.MSTL` removes the daily and (with three weeks
  of history or more, :func:`season_h`) the weekly cycle; an additive damped-trend ETS
  (:class:`~statsmodels.tsa.exponential_smoothing.ets.ETSModel`) forecasts what is left; the
  seasonal cycles are carried forward. Bands: ``mean + sigma_h * z_q``, with ``sigma_h`` the ETS
  forecast standard deviation at lead ``h`` and ``z_q`` the empirical q-quantile of the
  standardised one-step residuals (so a skewed residual gives a skewed band).
* ``holt-winters``: additive Holt-Winters
  (:class:`~statsmodels.tsa.holtwinters.ExponentialSmoothing`, damped trend, weekly season with
  three weeks of history, else daily; heuristic initial states, which is 3-4 times faster than
  estimating 168 of them). Bands: quantiles of 200 paths simulated by bootstrapping the
  model's own residuals (``simulate(..., random_errors="bootstrap")``).
* ``stl-ar``: :class:`~statsmodels.tsa.forecasting.stl.STLForecast` (STL, weekly or daily) with
  an AR(2) on the seasonally adjusted series, i.e. an ARIMA(2,0,0) fitted by least squares
  (:class:`~statsmodels.tsa.ar_model.AutoReg`; maximum likelihood via ``ARIMA`` took 8 times
  longer for the same forecasts). Bands as for ``mstl-ets``, with the AR forecast standard
  errors.

Gaps are filled (:func:`~tapas_opt.forecast.series.fill_gaps`) before fitting; a fit that fails
(raises, or forecasts far outside the history's range) returns NaN for that VM, which the
automatic choice treats as a loss and a forced ``--method`` replaces by the default.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tapas_opt.forecast.empirical import LEVELS, MatrixMethod, steps_ahead
from tapas_opt.forecast.series import fill_gaps

HOUR_MIN = 60
WEEK_H = 168
DAY_H = 24
MIN_HOURS = 2 * DAY_H + 1
MIN_WEEKLY_CYCLES = 3
"""Weeks of history a weekly season needs. With two, STL's seasonal smoother has two values per
hour of the week and absorbs the noise too: the residuals vanish and the bands with them (stl-ar
gave P50 = P90 = P99 on two weeks of noisy load)."""


def season_h(n_hours: int) -> int:
    """The longest season (hours) a history of ``n_hours`` supports: a week, or else a day."""
    return WEEK_H if n_hours >= MIN_WEEKLY_CYCLES * WEEK_H else DAY_H


def history_seasons(values: np.ndarray, index: pd.DatetimeIndex, step_min: int) -> np.ndarray:
    """:func:`season_h` of each row of a history matrix, from its first measured value to its end
    (the span :class:`StatsmodelsMethod` fits)."""
    hourly, _ = to_hourly(values, index, step_min)
    seen = ~np.isnan(hourly)
    first = np.where(seen.any(axis=1), seen.argmax(axis=1), hourly.shape[1])
    return np.array([season_h(hourly.shape[1] - f) for f in first], dtype=int)


def to_hourly(values: np.ndarray, index: pd.DatetimeIndex, step_min: int) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Mean per whole hour of a history matrix (unchanged if the step is an hour or more)."""
    if step_min >= HOUR_MIN:
        return values, index
    frame = pd.DataFrame(values.T, index=index)
    hourly = frame.resample(f"{HOUR_MIN}min").mean()
    return hourly.to_numpy().T, pd.DatetimeIndex(hourly.index)


def _empirical_z(resid: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Empirical quantiles of standardised residuals (``resid / std``)."""
    r = resid[np.isfinite(resid)]
    sd = r.std()
    if len(r) < 10 or sd <= 0:
        return np.zeros(len(levels))
    return np.quantile(r / sd, levels)


def _seasonal_forward(seasonal: np.ndarray, period: int, n_ahead: int) -> np.ndarray:
    """Carry the last full cycle of a seasonal component forward."""
    last = seasonal[-period:]
    reps = -(-n_ahead // period)
    return np.tile(last, reps)[:n_ahead]


def fit_mstl_ets(y: pd.Series, n_ahead: int, period: int, levels: np.ndarray = LEVELS) -> np.ndarray:
    """MSTL + damped ETS on the adjusted series; quantiles ``[n_ahead, len(levels)]``."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel
    from statsmodels.tsa.seasonal import MSTL

    periods = (DAY_H, WEEK_H) if period == WEEK_H else (DAY_H,)
    dec = MSTL(y, periods=periods).fit()
    seasonal = dec.seasonal
    if isinstance(seasonal, pd.Series):
        seasonal = seasonal.to_frame()
    future = np.zeros(n_ahead)
    for col, period in zip(seasonal.columns, periods):
        future += _seasonal_forward(seasonal[col].to_numpy(), period, n_ahead)
    adjusted = y - seasonal.sum(axis=1)
    res = ETSModel(adjusted, error="add", trend="add", damped_trend=True).fit(disp=False)
    pred = res.get_prediction(start=len(y), end=len(y) + n_ahead - 1)
    mean = np.asarray(pred.predicted_mean) + future
    sd = np.sqrt(np.maximum(np.asarray(pred.forecast_variance, dtype=float), 0.0))
    z = _empirical_z(np.asarray(res.resid), levels)
    return mean[:, None] + sd[:, None] * z[None, :]


def fit_holt_winters(y: pd.Series, n_ahead: int, period: int, levels: np.ndarray = LEVELS,
                     seed: int = 0) -> np.ndarray:
    """Additive damped Holt-Winters; bootstrap-simulated quantiles ``[n_ahead, len(levels)]``."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    res = ExponentialSmoothing(y, trend="add", damped_trend=True, seasonal="add",
                               seasonal_periods=period, initialization_method="heuristic").fit()
    sims = res.simulate(n_ahead, anchor="end", repetitions=200, error="add",
                        random_errors="bootstrap", rng=np.random.default_rng(seed))
    return np.quantile(np.asarray(sims), levels, axis=1).T


def fit_stl_ar(y: pd.Series, n_ahead: int, period: int, levels: np.ndarray = LEVELS) -> np.ndarray:
    """STL + AR(2) on the adjusted series; quantiles ``[n_ahead, len(levels)]``."""
    from statsmodels.tsa.ar_model import AutoReg
    from statsmodels.tsa.forecasting.stl import STLForecast

    res = STLForecast(y, AutoReg, model_kwargs={"lags": 2, "trend": "c"}, period=period).fit()
    pred = res.get_prediction(start=len(y), end=len(y) + n_ahead - 1).summary_frame()
    z = _empirical_z(np.asarray(res.model_result.resid), levels)
    return pred["mean"].to_numpy()[:, None] + pred["mean_se"].to_numpy()[:, None] * z[None, :]


FITTERS = {"mstl-ets": fit_mstl_ets, "holt-winters": fit_holt_winters, "stl-ar": fit_stl_ar}


def _fit_one(name: str, hourly: np.ndarray, start: pd.Timestamp, n_ahead: int) -> np.ndarray:
    """Fit one model to one VM's hourly history, with the season :func:`season_h` of its span;
    NaN rows if the history is too short or the fit fails."""
    seen = np.flatnonzero(~np.isnan(hourly))
    if len(seen) == 0 or seen[-1] - seen[0] + 1 < MIN_HOURS:
        return np.full((n_ahead, len(LEVELS)), np.nan)
    first = seen[0]
    y = hourly[first:]
    period = season_h(len(y))
    y = fill_gaps(y[None, :], period)[0]
    index = pd.date_range(start + pd.Timedelta(hours=int(first)), periods=len(y), freq="60min")
    series = pd.Series(y, index=index)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            out = FITTERS[name](series, n_ahead, period)
    except Exception:  # noqa: BLE001 - a failed fit is a candidate that loses, not a crash
        return np.full((n_ahead, len(LEVELS)), np.nan)
    return out if _plausible(out, y) else np.full((n_ahead, len(LEVELS)), np.nan)


def _plausible(out: np.ndarray, y: np.ndarray) -> bool:
    """A fit's forecast is finite and its median stays within the history's range widened by
    that range, and by at least a whole load (1.0), on each side (the outer bands may go wider:
    they are clipped to the load range). A degenerate fit (STL + AR on a constant or noise-free
    periodic series: a singular regression) returns finite nonsense, -2e9, which clipped to the
    load range became zero load; it fails instead, like a fit that raises."""
    if not np.all(np.isfinite(out)):
        return False
    lo, hi = float(np.min(y)), float(np.max(y))
    room = max(hi - lo, 1.0)
    median = out[:, int(np.argmin(np.abs(LEVELS - 0.5)))]
    return bool(median.min() >= lo - room and median.max() <= hi + room)


def _fit_block(args) -> np.ndarray:
    name, block, start, n_ahead = args
    return np.stack([_fit_one(name, row, start, n_ahead) for row in block]) if len(block) else \
        np.zeros((0, n_ahead, len(LEVELS)))


@dataclass(frozen=True)
class StatsmodelsMethod(MatrixMethod):
    """One of :data:`FITTERS`, fitted per VM on hourly means, mapped back to the horizon.

    ``workers > 1`` fits blocks of VMs in worker processes (worth it from a few dozen VMs).
    """

    model: str = "mstl-ets"
    workers: int = 1
    uses_statsmodels = True

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.model

    def forecast(self, values, index, step_min, horizon):
        n = values.shape[0]
        hourly, h_index = to_hourly(values, index, step_min)
        fit_step = max(step_min, HOUR_MIN)
        last = h_index[-1]
        # Lead of each horizon slot in fitted steps (an hour for sub-hourly telemetry).
        h_floor = pd.DatetimeIndex(horizon).floor(f"{fit_step}min")
        lead = np.maximum(steps_ahead(pd.DatetimeIndex([last]), h_floor, fit_step).astype(int), 1)
        n_ahead = int(lead.max()) if len(lead) else 1
        blocks = np.array_split(np.arange(n), max(1, min(n, self.workers * 4)))
        jobs = [(self.model, hourly[b], h_index[0], n_ahead) for b in blocks]
        if self.workers > 1 and n >= 8:
            with ProcessPoolExecutor(max_workers=self.workers) as pool:
                parts = list(pool.map(_fit_block, jobs))
        else:
            parts = [_fit_block(j) for j in jobs]
        fitted = np.concatenate(parts, axis=0) if parts else np.zeros((0, n_ahead, len(LEVELS)))
        out = fitted[:, lead - 1, :]
        out = np.clip(out, 0.0, 1.0)
        return np.maximum.accumulate(out, axis=2)


STATSMODELS_METHODS = tuple(FITTERS)
