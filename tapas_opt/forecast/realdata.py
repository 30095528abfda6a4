"""Back-tests on the public data sets: the protocols behind BENCHMARKS.md's forecasting numbers.

Shared by ``tests/test_forecast_realdata.py`` (which asserts the targets) and
``benchmarks/forecast.py`` (which reports them), so that both measure the same thing.

* :func:`cornell_backtest`: each Cornell server's GPU power, a week ahead from the previous four
  weeks, at weekly rolling origins over its whole history (hourly).
* :func:`azure_day_ahead`: each of the last two days of each Azure service, hourly requests,
  forecast from all the days before it.
* :func:`alibaba_backtest`: each Alibaba serving container's GPU duty cycle, one hour ahead
  (5-minute slots) from the previous 12 hours, at hourly origins.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tapas_opt.forecast.backtest import BacktestResult, rolling_origin_backtest
from tapas_opt.forecast.empirical import CHEAP_METHODS, MatrixMethod
from tapas_opt.forecast.public_data import (CORNELL_SERVERS, cornell_history, read_alibaba_duty,
                                            read_azure_minutes)
from tapas_opt.forecast.select import AutoForecaster, AutoMethod
from tapas_opt.forecast.series import build_matrix, matrix_from_values

WEEK_H = 168


def default_methods(**auto_options) -> dict[str, MatrixMethod]:
    """The default forecaster (``auto``) and every cheap method, keyed by name."""
    return {"auto": AutoMethod(**auto_options), **CHEAP_METHODS}


def cornell_backtest(data_dir, methods: dict[str, MatrixMethod] | None = None, servers=CORNELL_SERVERS,
                     every_weeks: int = 1, start: str | None = None, min_coverage: float = 0.9) -> BacktestResult:
    """Week-ahead back-test of each Cornell server (one "VM" per server), hourly.

    Origins every ``every_weeks`` weeks from four weeks into the data (or ``start``); a server
    is scored at an origin when 90 % of its history and future hours are present.
    """
    m = build_matrix(cornell_history(data_dir, servers), 60)
    if start is not None:
        keep = m.index >= pd.Timestamp(start) - pd.Timedelta(hours=4 * WEEK_H)
        m = type(m)(m.vm_ids, m.index[keep], m.values[:, keep], m.step_min, m.quality)
    return rolling_origin_backtest(m, methods or default_methods(), 4 * WEEK_H, WEEK_H, every_weeks * WEEK_H,
                                   min_coverage=min_coverage)


def azure_day_ahead(data_dir, forecaster_options: dict | None = None, days=(5, 6)) -> pd.DataFrame:
    """Day-ahead hourly forecasts of the Azure services' requests; one row per service-hour.

    Requests per hour are scaled to a load in 0..1 by twice the highest hour of the history
    (only a scale: the within-10 % share does not depend on it). Columns: ``service``, ``day``,
    ``timestamp``, ``actual``, ``p50``, ``p90``, ``p99`` (requests), ``method`` (the one the
    default forecaster chose), ``yesterday`` (same hour the day before: the naive baseline).
    """
    rows = []
    for service, per_minute in read_azure_minutes(data_dir).items():
        hourly = per_minute.resample("60min").sum()
        for day in days:
            cut = day * 24
            hist, fut = hourly.iloc[:cut], hourly.iloc[cut:cut + 24]
            scale = 2.0 * float(hist.max())
            m = matrix_from_values((hist / scale).to_numpy()[None, :], hist.index, 60, [service])
            auto = AutoForecaster(60, **(forecaster_options or {})).fit_matrix(m)
            fc = auto.predict_array(fut.index)[0] * scale
            rows.append(pd.DataFrame({
                "service": service, "day": fut.index[0].day_name(), "timestamp": fut.index,
                "actual": fut.to_numpy(), "p50": fc[:, 0], "p90": fc[:, 1], "p99": fc[:, 2],
                "method": auto.methods_.iloc[0], "yesterday": hourly.iloc[cut - 24:cut].to_numpy()}))
    return pd.concat(rows, ignore_index=True)


def within(forecast, actual, tolerance: float = 0.1) -> np.ndarray:
    """|forecast - actual| <= tolerance * actual, per element."""
    forecast, actual = np.asarray(forecast, float), np.asarray(actual, float)
    return np.abs(forecast - actual) <= tolerance * np.abs(actual)


def alibaba_backtest(data_dir, methods: dict[str, MatrixMethod] | None = None, history_h: int = 12,
                     horizon_h: int = 1, step_min: int = 5) -> BacktestResult:
    """Short-horizon back-test of the Alibaba containers' GPU duty cycle (hourly origins)."""
    m = build_matrix(read_alibaba_duty(data_dir), step_min)
    per_h = 60 // step_min
    return rolling_origin_backtest(m, methods or default_methods(), history_h * per_h, horizon_h * per_h,
                                   per_h, min_coverage=0.8)
