"""GPU temperature from GPU power when no inlet sensor exists (the Cornell BioHPC servers).

The physics is ``T_gpu = T_inlet + a + b P_gpu`` (TAPAS.md model 2; :func:`tapas_opt.physics.gpu_temp_c`).
Without an inlet reading, a plain regression of ``T_gpu`` on power leaves the inlet's drift in
the error (a quadratic in average power: about 2.2 C median MAE on the six Cornell servers).
The GPU itself is a thermometer of its inlet: ``T_gpu - b P_gpu`` is the inlet plus a
constant. So the inlet is estimated as the median of ``T_gpu - b P_gpu`` over the
``window_h`` hours that end ``lag_h`` hours before the hour being predicted (an "inlet proxy";
only earlier telemetry is used), and ``a``, ``b`` are fitted by OLS on
``T_gpu - proxy = a + b P_gpu`` (alternating with the proxy, which depends on ``b``).

With ``lag_h = 1`` this is a now-cast (what routing, which re-plans every few minutes, can
use); with ``lag_h = 24`` a day-ahead model; ``lag_h = 168`` is what a week-ahead placement
knows. :func:`evaluate_servers` measures all of them, train on the first 80 % of each
server's rows and test on the rest, as BENCHMARKS.md reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TRAIN_SHARE = 0.8


def inlet_proxy(temp_c: pd.Series, power_w: pd.Series, c_per_w: float, lag_h: int = 1,
                window_h: int = 24) -> pd.Series:
    """Median of ``T - b P`` over ``[t - lag - window, t - lag)`` on the hourly grid (NaN if none).

    ``temp_c`` and ``power_w`` share a DatetimeIndex (hourly, gaps allowed).
    """
    level = (temp_c - c_per_w * power_w).resample("60min").mean()
    rolled = level.rolling(f"{window_h}h", min_periods=max(1, window_h // 4)).median()
    return rolled.shift(lag_h, freq="60min").reindex(temp_c.index)


@dataclass
class ProxyFit:
    """``T_gpu = proxy + a + b P`` fitted on the training rows."""

    intercept_c: float
    c_per_w: float
    c_per_w_ci: tuple[float, float]
    lag_h: int
    window_h: int

    def predict(self, temp_c: pd.Series, power_w: pd.Series) -> pd.Series:
        """Prediction at every row (the proxy reads only earlier rows of ``temp_c``)."""
        proxy = inlet_proxy(temp_c, power_w, self.c_per_w, self.lag_h, self.window_h)
        return proxy + self.intercept_c + self.c_per_w * power_w


def fit_with_proxy(temp_c: pd.Series, power_w: pd.Series, train: np.ndarray, lag_h: int = 1,
                   window_h: int = 24, iterations: int = 3) -> ProxyFit:
    """Fit ``a``, ``b`` of ``T_gpu - proxy = a + b P`` on the ``train`` rows (see module doc)."""
    import statsmodels.api as sm

    X = sm.add_constant(power_w.rename("power_w").to_frame())
    b = float(sm.OLS(temp_c[train], X[train]).fit().params["power_w"])
    res = None
    for _ in range(iterations):
        proxy = inlet_proxy(temp_c, power_w, b, lag_h, window_h)
        ok = train & proxy.notna().to_numpy()
        res = sm.OLS((temp_c - proxy)[ok], X[ok]).fit()
        b = float(res.params["power_w"])
    lo, hi = res.conf_int().loc["power_w"]
    return ProxyFit(float(res.params["const"]), b, (float(lo), float(hi)), lag_h, window_h)


def _mae(pred: pd.Series, actual: pd.Series, rows: np.ndarray) -> float:
    err = (pred - actual)[rows].abs()
    return float(err.mean())


def evaluate_server(frame: pd.DataFrame, lags_h=(1, 24, 168), window_h: int = 24) -> dict:
    """MAE on the last 20 % of one server's rows, for each model (see module docstring).

    Parameters
    ----------
    frame : pd.DataFrame
        Hourly, indexed by timestamp, columns ``powerave`` (W) and ``tempave`` (C), as
        :func:`tapas_opt.forecast.public_data.read_cornell` returns.
    """
    import statsmodels.api as sm

    f = frame.dropna(subset=["powerave", "tempave"])
    temp, power = f["tempave"], f["powerave"]
    n = len(f)
    train = np.arange(n) < int(TRAIN_SHARE * n)
    test = ~train
    out: dict = {"n_train": int(train.sum()), "n_test": int(test.sum())}
    quad = sm.add_constant(pd.DataFrame({"p": power, "p2": power ** 2}))
    out["mae_quadratic_c"] = _mae(sm.OLS(temp[train], quad[train]).fit().predict(quad), temp, test)
    lin = sm.add_constant(power.rename("p").to_frame())
    out["mae_linear_c"] = _mae(sm.OLS(temp[train], lin[train]).fit().predict(lin), temp, test)
    for lag in lags_h:
        fit = fit_with_proxy(temp, power, train, lag, window_h)
        pred = fit.predict(temp, power)
        scored = test & pred.notna().to_numpy()
        out[f"mae_proxy_{lag}h_c"] = _mae(pred, temp, scored)
        out[f"scored_proxy_{lag}h"] = float(scored.sum() / max(test.sum(), 1))
        if lag == lags_h[0]:
            out["c_per_w"] = fit.c_per_w
            out["c_per_w_ci"] = fit.c_per_w_ci
            out["intercept_c"] = fit.intercept_c
    return out


def evaluate_servers(data_dir, servers=None) -> pd.DataFrame:
    """:func:`evaluate_server` on each Cornell server; one row per server."""
    from tapas_opt.forecast.public_data import CORNELL_SERVERS, cornell_path, read_cornell

    rows = {}
    for server in servers or CORNELL_SERVERS:
        rows[server] = evaluate_server(read_cornell(cornell_path(data_dir, server)))
    return pd.DataFrame(rows).T
