"""Scores of probabilistic load forecasts, vectorised over VMs.

Arrays follow one convention: ``actual`` is ``[n_vm, n_slots]`` and ``forecast`` is
``[n_vm, n_slots, n_quantiles]`` in the order of ``levels``; NaN actuals (gaps) are ignored.

* pinball (quantile) loss at level q: ``max(q (y - f), (q - 1) (y - f))``, the proper score of a
  q-quantile forecast (Gneiting & Raftery 2007); its mean over P50/P90/P99 is what the
  automatic choice of method minimises;
* exceedance of a band: share of slots with ``y > f_q`` (a calibrated P99 is exceeded 1 % of
  the time);
* MAE and MAPE of the P50; "within 10 %": share of slots with ``|f_50 - y| <= 0.1 y`` (the
  TAPAS paper's accuracy measure).
"""

from __future__ import annotations

import numpy as np

from tapas_opt.forecast.base import QUANTILE_LEVELS

LEVELS = np.array([QUANTILE_LEVELS[q] for q in ("p50", "p90", "p99")])


def pinball(actual: np.ndarray, forecast: np.ndarray, levels: np.ndarray = LEVELS) -> np.ndarray:
    """Pinball loss per slot and level, NaN where the actual is missing: ``[..., n_levels]``."""
    diff = actual[..., None] - forecast
    return np.maximum(levels * diff, (levels - 1.0) * diff)


def mean_pinball(actual: np.ndarray, forecast: np.ndarray, levels: np.ndarray = LEVELS,
                 axis=1) -> np.ndarray:
    """Mean pinball loss over slots (``axis``) per row and level, ignoring missing actuals."""
    with np.errstate(invalid="ignore"):
        return np.nanmean(pinball(actual, forecast, levels), axis=axis)


def score_rows(actual: np.ndarray, forecast: np.ndarray, levels: np.ndarray = LEVELS) -> np.ndarray:
    """One number per VM: pinball loss averaged over slots and levels (lower is better).

    Rows without any actual value score ``inf`` so that they never win a comparison.
    """
    seen = ~np.isnan(actual)
    loss = np.where(seen[..., None], pinball(np.nan_to_num(actual), forecast, levels), 0.0)
    n = seen.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = loss.sum(axis=(1, 2)) / (n * len(levels))
    return np.where(n > 0, out, np.inf)


def summarise(actual: np.ndarray, forecast: np.ndarray, levels: np.ndarray = LEVELS,
              names: tuple[str, ...] = ("p50", "p90", "p99")) -> dict:
    """Pooled accuracy of a set of forecasts (every VM and slot weighs the same).

    Returns a dict with ``n`` (slots scored), ``mae``, ``mape`` (over slots with actual > 0),
    ``within_10pct``, ``pinball`` per level, ``pinball_mean`` and ``exceeded`` per level.
    """
    y = np.asarray(actual, dtype=float)
    f = np.asarray(forecast, dtype=float)
    seen = ~np.isnan(y)
    n = int(seen.sum())
    if n == 0:
        return {"n": 0}
    y_s = y[seen]
    f_s = f[seen]  # [n, levels]
    p50 = f_s[:, 0]
    err = np.abs(p50 - y_s)
    pos = y_s > 0
    loss = pinball(y_s, f_s, levels).mean(axis=0)
    return {
        "n": n,
        "mae": float(err.mean()),
        "mape": float((err[pos] / y_s[pos]).mean()) if pos.any() else None,
        "within_10pct": float((err <= 0.1 * np.abs(y_s) + 1e-12).mean()),
        "pinball": {q: float(v) for q, v in zip(names, loss)},
        "pinball_mean": float(loss.mean()),
        "exceeded": {q: float((y_s > f_s[:, k] + 1e-12).mean()) for k, q in enumerate(names)},
    }


def block_losses(actual: np.ndarray, forecast: np.ndarray, n_blocks: int,
                 levels: np.ndarray = LEVELS) -> np.ndarray:
    """Mean pinball loss (over levels) in ``n_blocks`` consecutive blocks of slots: ``[n, n_blocks]``.

    Blocks (days of a held-out week) are what the automatic choice compares, because losses of
    neighbouring slots are correlated and a test on single slots would be overconfident.
    Blocks without any actual are NaN.
    """
    seen = ~np.isnan(actual)
    loss = np.where(seen[..., None], pinball(np.nan_to_num(actual), forecast, levels), 0.0).mean(axis=2)
    edges = np.linspace(0, actual.shape[1], n_blocks + 1).astype(int)
    sums = np.add.reduceat(loss, edges[:-1], axis=1)
    counts = np.add.reduceat(seen.astype(float), edges[:-1], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def significantly_better(default_blocks: np.ndarray, candidate_blocks: np.ndarray,
                         t_crit: float) -> tuple[np.ndarray, np.ndarray]:
    """Diebold-Mariano style one-sided test on block mean losses, per row.

    ``d = default - candidate`` per block; the candidate is significantly better when
    ``mean(d) > t_crit * sd(d) / sqrt(B)``. Returns (significant, mean(d)); rows with fewer
    than three valid blocks are never significant.
    """
    d = default_blocks - candidate_blocks
    ok = ~np.isnan(d)
    b = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(b > 0, np.nansum(d, axis=1) / np.maximum(b, 1), np.nan)
        var = np.nansum(np.where(ok, (d - mean[:, None]) ** 2, 0.0), axis=1) / np.maximum(b - 1, 1)
        se = np.sqrt(var / np.maximum(b, 1))
    sig = (b >= 3) & (mean > 0) & (mean > t_crit * se)
    return sig, np.nan_to_num(mean, nan=-np.inf)
