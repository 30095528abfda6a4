"""Regressions that estimate the physics coefficients, with confidence intervals and MAE.

Every fit is an ordinary least-squares model from statsmodels on the exact functional form of
:mod:`tapas_opt.physics`, so a fitted coefficient means what the physics module means by it:

=================  ==========================================================  ==================
model              form (physics.py)                                           coefficients
=================  ==========================================================  ==================
GPU power          ``P = idle + (max - idle) g(u)``, ``g`` a quadratic with    ``gpu_idle_w``,
                   ``g(0) = 0, g(1) = 1``: OLS of ``P`` on ``1, u, u^2``         ``gpu_max_w``,
                                                                               ``power_poly``
GPU temperature    ``T_gpu = T_inlet + a + b P``: OLS of ``T_gpu - T_inlet``     ``gpu_temp_intercept_c``,
                   on ``1, P``                                                 ``gpu_temp_c_per_w``
server power       ``P_srv = idle + (max - idle) x``, ``x`` the GPU share-      ``idle_power_kw``,
                   weighted ``g(u)`` of its VMs: OLS on ``1, x``                 ``max_power_kw``
airflow            ``Q = idle + (max - idle) x``, ``x`` the share-weighted      ``idle_airflow_cfm``,
                   load: OLS on ``1, x``                                         ``max_airflow_cfm``
inlet              ``clip(floor + slope (out - knee), floor, cap)`` + load      ``floor_c, knee_outside_c,
                   term + server offset: OLS for each (knee, cap-knee) on a     slope_c_per_c, cap_c,
                   grid, the best kept                                         load_gain_c``, offsets
=================  ==========================================================  ==================

Each result reports the coefficients with 95 % confidence intervals, the in-sample MAE and a
hold-out MAE (fitted on the first 80 % of the time span, tested on the rest), and the number of
samples. Derived coefficients (``gpu_max_w = a + b + c``) get their interval from the linear
combination's standard error (``t_test``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tapas_opt.config import InletModel
from tapas_opt.physics import inlet_temp_c

MIN_SAMPLES = 24
HOLDOUT_SHARE = 0.2
MIN_OUTSIDE_SPAN_C = 2.0
"""Least spread of outside temperature (1st to 99th percentile) to fit the inlet model: its knee
is searched on a 0.5 C grid between them."""


DISPLAY_UNITS = {"w": "W", "kw": "kW", "cfm": "CFM", "c": "C"}
"""How each model's error unit is written for people (summary keys keep the lower-case form)."""


@dataclass
class Coefficient:
    value: float
    low: float | None = None
    high: float | None = None

    def to_dict(self) -> dict:
        out = {"value": round(float(self.value), 6)}
        if self.low is not None and self.high is not None:
            out["ci95"] = [round(float(self.low), 6), round(float(self.high), 6)]
        return out


@dataclass
class FitResult:
    """One fitted model: coefficients (with 95 % CIs), MAE in-sample and on the hold-out."""

    model: str
    coefficients: dict[str, Coefficient]
    n: int
    mae: float
    holdout_mae: float | None
    unit: str
    notes: list[str] = field(default_factory=list)
    per_server: pd.DataFrame | None = None

    def value(self, name: str) -> float:
        return float(self.coefficients[name].value)

    def to_dict(self) -> dict:
        out = {"model": self.model, "n": self.n, f"mae_{self.unit}": round(self.mae, 4),
               f"holdout_mae_{self.unit}": None if self.holdout_mae is None else round(self.holdout_mae, 4),
               "coefficients": {k: c.to_dict() for k, c in self.coefficients.items()}}
        if self.notes:
            out["notes"] = list(self.notes)
        if self.per_server is not None:
            out["servers_fitted"] = int(len(self.per_server))
        return out


class Unidentifiable(ValueError):
    """The telemetry does not vary enough to determine every coefficient (a rank-deficient
    design: constant load, a single outside temperature, ...)."""


def _ols(y: np.ndarray, X: np.ndarray, names: list[str]):
    import statsmodels.api as sm

    X = np.asarray(X, float)
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise Unidentifiable(f"the rows do not vary enough to determine {', '.join(names)} (rank-deficient design)")
    return sm.OLS(np.asarray(y, float), pd.DataFrame(X, columns=names)).fit()


def _coef(res, name: str) -> Coefficient:
    lo, hi = res.conf_int().loc[name]
    return Coefficient(float(res.params[name]), float(lo), float(hi))


def _combo(res, weights: dict[str, float]) -> Coefficient:
    """A linear combination of coefficients with its 95 % interval (statsmodels t_test)."""
    r = np.array([[weights.get(n, 0.0) for n in res.params.index]])
    t = res.t_test(r)
    lo, hi = np.asarray(t.conf_int()).ravel()
    return Coefficient(float(np.asarray(t.effect).ravel()[0]), float(lo), float(hi))


def _split(times: pd.Series) -> np.ndarray:
    """True for the training part: the first 80 % of the time span (hold-out: the rest)."""
    t = pd.to_datetime(times)
    cut = t.min() + (t.max() - t.min()) * (1 - HOLDOUT_SHARE)
    return (t <= cut).to_numpy()


def _holdout_mae(y, X, names, train, predict=None) -> float | None:
    if train.sum() < MIN_SAMPLES or (~train).sum() < 1:
        return None
    try:
        res = _ols(y[train], X[train], names)
    except Unidentifiable:  # the training part alone is too uniform: no hold-out score
        return None
    pred = np.asarray(res.predict(pd.DataFrame(X[~train], columns=names)))
    if predict is not None:
        pred = predict(pred, ~train)
    return float(np.mean(np.abs(pred - y[~train])))


def fit_gpu_power(frame: pd.DataFrame) -> FitResult:
    """GPU power vs load: ``gpu_power_w = a + b u + c u^2`` per GPU.

    ``gpu_idle_w = a``, ``gpu_max_w = a + b + c`` and ``power_poly = (0, b, c) / (b + c)`` (so
    that ``g(0) = 0`` and ``g(1) = 1``, as :func:`tapas_opt.physics.power_fraction` assumes).

    Parameters
    ----------
    frame : pd.DataFrame
        Columns ``timestamp``, ``load`` (0..1) and ``gpu_power_w``.
    """
    u = frame["load"].to_numpy(float)
    y = frame["gpu_power_w"].to_numpy(float)
    X = np.column_stack([np.ones_like(u), u, u ** 2])
    names = ["const", "u", "u2"]
    res = _ols(y, X, names)
    a, b, c = (float(res.params[n]) for n in names)
    span = b + c
    coefs = {"gpu_idle_w": _coef(res, "const"), "gpu_max_w": _combo(res, {"const": 1, "u": 1, "u2": 1}),
             "poly_u": Coefficient(b / span if span else 1.0), "poly_u2": Coefficient(c / span if span else 0.0)}
    notes = []
    if abs(c) < 2 * float(res.bse["u2"]):
        notes.append("the quadratic term is not significant: power is close to linear in load")
    return FitResult("gpu_power", coefs, len(y), float(np.mean(np.abs(res.resid))),
                     _holdout_mae(y, X, names, _split(frame["timestamp"])), "w", notes)


def fit_gpu_temp(frame: pd.DataFrame, per_server: bool = True) -> FitResult:
    """Hottest-GPU temperature: ``gpu_temp_c - inlet_temp_c = a + b gpu_power_w``.

    Pooled over the room, and per server where a server has at least ``MIN_SAMPLES`` rows
    (``per_server`` frame: ``gpu_temp_intercept_c``, ``gpu_temp_c_per_w``, ``mae_c``, ``n``).

    Parameters
    ----------
    frame : pd.DataFrame
        Columns ``timestamp``, ``gpu_temp_c``, ``inlet_temp_c``, ``gpu_power_w`` and (for
        per-server fits) ``server_id``.
    """
    y = (frame["gpu_temp_c"] - frame["inlet_temp_c"]).to_numpy(float)
    p = frame["gpu_power_w"].to_numpy(float)
    X = np.column_stack([np.ones_like(p), p])
    names = ["const", "power_w"]
    res = _ols(y, X, names)
    coefs = {"gpu_temp_intercept_c": _coef(res, "const"), "gpu_temp_c_per_w": _coef(res, "power_w")}
    servers = None
    if per_server and "server_id" in frame.columns and frame["server_id"].nunique() > 1:
        rows = []
        for sid, g in frame.groupby("server_id", sort=True):
            if len(g) < MIN_SAMPLES or g["gpu_power_w"].std() <= 0:
                continue
            gy = (g["gpu_temp_c"] - g["inlet_temp_c"]).to_numpy(float)
            gp = g["gpu_power_w"].to_numpy(float)
            try:
                r = _ols(gy, np.column_stack([np.ones_like(gp), gp]), names)
            except Unidentifiable:  # this server keeps the pooled coefficients
                continue
            rows.append({"server_id": sid, "gpu_temp_intercept_c": float(r.params["const"]),
                         "gpu_temp_c_per_w": max(float(r.params["power_w"]), 0.0),
                         "mae_c": float(np.mean(np.abs(r.resid))), "n": len(g)})
        servers = pd.DataFrame(rows).set_index("server_id") if rows else None
    notes = []
    if servers is not None:
        notes.append(f"per-server fits for {len(servers)} servers: median MAE {servers['mae_c'].median():.2f} C")
    return FitResult("gpu_temp", coefs, len(y), float(np.mean(np.abs(res.resid))),
                     _holdout_mae(y, X, names, _split(frame["timestamp"])), "c", notes, servers)


def _fit_linear_per_server(frame: pd.DataFrame, target: str, x: str, names: tuple[str, str],
                           model: str, unit: str) -> FitResult:
    """``target = lo + (hi - lo) x`` pooled (shape check) and per server (the coefficients)."""
    y = frame[target].to_numpy(float)
    xv = frame[x].to_numpy(float)
    X = np.column_stack([np.ones_like(xv), xv])
    res = _ols(y, X, ["const", "x"])
    coefs = {names[0]: _coef(res, "const"), names[1]: _combo(res, {"const": 1, "x": 1})}
    rows = []
    for sid, g in frame.groupby("server_id", sort=True):
        if len(g) < MIN_SAMPLES or g[x].std() <= 0:
            continue
        try:
            r = _ols(g[target].to_numpy(float), np.column_stack([np.ones(len(g)), g[x].to_numpy(float)]),
                     ["const", "x"])
        except Unidentifiable:  # this server keeps the pooled coefficients
            continue
        lo = float(r.params["const"])
        rows.append({"server_id": sid, names[0]: lo, names[1]: lo + float(r.params["x"]),
                     f"mae_{unit}": float(np.mean(np.abs(r.resid))), "n": len(g)})
    servers = pd.DataFrame(rows).set_index("server_id") if rows else None
    pooled_resid = float(np.mean(np.abs(res.resid)))
    notes = []
    if servers is not None:
        notes.append(f"per-server fits for {len(servers)} servers: median MAE "
                     f"{servers[f'mae_{unit}'].median():.3g} {DISPLAY_UNITS.get(unit, unit)}")
        mae = float((servers[f"mae_{unit}"] * servers["n"]).sum() / servers["n"].sum())
    else:
        mae = pooled_resid
    return FitResult(model, coefs, len(y), mae, _holdout_mae(y, X, ["const", "x"], _split(frame["timestamp"])),
                     unit, notes, servers)


def fit_server_power(frame: pd.DataFrame) -> FitResult:
    """Server power vs the GPU-share-weighted ``g(u)`` of its VMs (column ``x_power``)."""
    return _fit_linear_per_server(frame, "server_power_kw", "x_power", ("idle_power_kw", "max_power_kw"),
                                  "server_power", "kw")


def fit_airflow(frame: pd.DataFrame) -> FitResult:
    """Fan airflow vs the GPU-share-weighted load of its VMs (column ``x_load``)."""
    return _fit_linear_per_server(frame, "airflow_cfm", "x_load", ("idle_airflow_cfm", "max_airflow_cfm"),
                                  "airflow", "cfm")


MIN_SHARE_BELOW_KNEE = 0.01
"""Share of the rows that must lie below the fitted knee for the floor to be measured rather
than extrapolated (the grid starts at the 1st percentile of outside temperature)."""


def _inlet_design(out: np.ndarray, load: np.ndarray, knee: float, knee2: float, ref: float) -> np.ndarray:
    rise = np.maximum(out - knee, 0.0) - np.maximum(out - knee2, 0.0)
    heat = np.clip((out - knee) / max(ref - knee, 1e-6), 0.0, 1.0)
    return np.column_stack([np.ones_like(out), rise, load * heat])


def _refine_knees(out, load, y, knee, knee2, ref):
    """Polish the grid's knees with Nelder-Mead on the profiled sum of squares (OLS inside)."""
    from scipy.optimize import minimize

    def sse(k):
        if k[1] <= k[0] + 0.1:
            return np.inf
        X = _inlet_design(out, load, k[0], k[1], ref)
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        return float(np.sum((y - X @ coef) ** 2))

    res = minimize(sse, x0=[knee, knee2], method="Nelder-Mead", options={"xatol": 0.01, "fatol": 1e-9})
    return (float(res.x[0]), float(res.x[1])) if np.isfinite(res.fun) and res.fun <= sse([knee, knee2]) \
        else (knee, knee2)


def fit_inlet(frame: pd.DataFrame, ref_outside_c: float = InletModel.load_gain_ref_outside_c,
              iterations: int = 3) -> FitResult:
    """Inlet temperature vs outside temperature and room load, plus a fixed offset per server.

    The knee (where free cooling stops holding the floor) and the outside temperature where
    the chillers cap the inlet are found on a 0.5 C grid and polished by Nelder-Mead; floor,
    slope and load gain by OLS for each candidate; per-server offsets as the median residual of each server (the coolest
    server at 0, as in servers.csv), alternating with the pooled fit ``iterations`` times.

    Parameters
    ----------
    frame : pd.DataFrame
        Columns ``timestamp``, ``server_id``, ``inlet_temp_c``, ``outside_c``, ``room_load``.
    """
    y = frame["inlet_temp_c"].to_numpy(float)
    out = frame["outside_c"].to_numpy(float)
    load = frame["room_load"].to_numpy(float)
    sid = frame["server_id"].to_numpy()
    offsets = pd.Series(0.0, index=pd.unique(sid))
    lo_out, hi_out = np.nanpercentile(out, [1, 99])
    if hi_out - lo_out < MIN_OUTSIDE_SPAN_C:
        raise Unidentifiable(f"the outside temperature spans only {hi_out - lo_out:.1f} C ({lo_out:.1f} to "
                             f"{hi_out:.1f} C): the knee and slope need weather that varies by "
                             f"{MIN_OUTSIDE_SPAN_C:g} C or more")
    grid = np.arange(np.floor(lo_out * 2) / 2, np.ceil(hi_out * 2) / 2 + 0.5, 0.5)
    names = ["floor", "slope", "gain"]
    # The grid search runs on a seeded sample of at most 5,000 rows (the final fit uses all).
    sample = np.sort(np.random.default_rng(0).choice(len(y), size=min(len(y), 5000), replace=False))
    best = None
    for _ in range(iterations):
        yy = y - offsets.reindex(sid).to_numpy()
        best = None
        for knee in grid:
            for knee2 in grid[grid > knee]:
                X = _inlet_design(out[sample], load[sample], knee, knee2, ref_outside_c)
                coef, *_ = np.linalg.lstsq(X, yy[sample], rcond=None)
                sse = float(np.sum((yy[sample] - X @ coef) ** 2))
                if best is None or sse < best[0]:
                    best = (sse, knee, knee2)
        _, knee, knee2 = best
        knee, knee2 = _refine_knees(out[sample], load[sample], yy[sample], knee, knee2, ref_outside_c)
        best = (best[0], knee, knee2)
        X = _inlet_design(out, load, knee, knee2, ref_outside_c)
        coef, *_ = np.linalg.lstsq(X, yy, rcond=None)
        resid = y - X @ coef
        med = pd.Series(resid).groupby(sid).median()
        offsets = med - med.min()
    _, knee, knee2 = best
    X = _inlet_design(out, load, knee, knee2, ref_outside_c)
    yy = y - offsets.reindex(sid).to_numpy()
    res = _ols(yy, X, names)
    slope = float(res.params["slope"])
    floor = _coef(res, "floor")
    coefs = {"floor_c": floor, "knee_outside_c": Coefficient(float(knee)),
             "slope_c_per_c": _coef(res, "slope"),
             "cap_c": _combo(res, {"floor": 1.0, "slope": float(knee2 - knee)}),
             "load_gain_c": _coef(res, "gain")}
    notes = [f"knee and cap found on a 0.5 C grid, then polished (knee {knee:.2f} C, cap reached at "
             f"{knee2:.2f} C outside); intervals are conditional on them"]
    if np.mean(out < knee) < MIN_SHARE_BELOW_KNEE:
        notes.append(f"outside temperature was below the knee ({knee:.1f} C) in under {100 * MIN_SHARE_BELOW_KNEE:g} % "
                     "of the rows: knee_outside_c and floor_c are an extrapolation (a lower knee with a lower floor "
                     "fits as well); refit with colder weather in the telemetry")
    if hi_out <= knee2:
        notes.append("outside temperature never passed the cap knee: cap_c is an extrapolation")
    model = InletModel(floor_c=floor.value, knee_outside_c=float(knee), slope_c_per_c=slope,
                       cap_c=coefs["cap_c"].value, load_gain_c=float(res.params["gain"]),
                       load_gain_ref_outside_c=ref_outside_c)
    pred = inlet_temp_c(out, load, model, offsets.reindex(sid).to_numpy())
    servers = offsets.rename("inlet_offset_c").to_frame()
    train = _split(frame["timestamp"])
    holdout = None
    if train.sum() >= MIN_SAMPLES and (~train).any():
        try:
            r = _ols(yy[train], X[train], names)
        except Unidentifiable:
            r = None
        if r is not None:
            p = X[~train] @ r.params.to_numpy() + offsets.reindex(sid[~train]).to_numpy()
            holdout = float(np.mean(np.abs(p - y[~train])))
            notes.append("hold-out MAE uses server offsets estimated on all the data")
    return FitResult("inlet", coefs, len(y), float(np.mean(np.abs(pred - y))), holdout, "c", notes, servers)
