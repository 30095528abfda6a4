"""Forecast (and back-test) a whole inventory: what ``tapas-opt forecast`` runs.

The output directory holds ``profiles.csv`` (``vm_id, timestamp, p50, p90, p99`` for every VM
of ``vms.csv`` and every slot of the horizon ``place`` would plan: the format
``place --profiles`` reads), ``summary.json`` (method per VM, back-test losses, telemetry
report) and, with a back-test, ``backtest.csv``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from tapas_opt.errors import InventoryError, Problem, TapasError
from tapas_opt.forecast.backtest import MIN_COVERAGE, rolling_origin_backtest
from tapas_opt.forecast.base import Forecaster, LoadProfiles
from tapas_opt.forecast.empirical import CHEAP_METHODS
from tapas_opt.forecast.profiles import build_profiles
from tapas_opt.forecast.select import AutoConfig, AutoForecaster, AutoMethod, MatrixForecaster
from tapas_opt.forecast.series import SeriesMatrix, build_matrix, describe_quality
from tapas_opt.forecast.statsmodels_models import STATSMODELS_METHODS, StatsmodelsMethod
from tapas_opt.forecast.template import WEEK_MIN, TemplateForecaster
from tapas_opt.inventory.load import Inventory
from tapas_opt.io import atomic_directory, write_json

METHODS = ("auto",) + tuple(CHEAP_METHODS) + STATSMODELS_METHODS
"""Names accepted by ``--method``: the automatic choice, or one method for every VM."""

Progress = Callable[[str, int, int], None]


def make_forecaster(method: str, step_min: int, progress: Progress | None = None,
                    **auto_options) -> Forecaster:
    """The forecaster behind a ``--method`` name (``auto`` takes the AutoConfig options)."""
    if method == "auto":
        return AutoForecaster(step_min, progress=progress, **auto_options)
    if method == "template":
        return TemplateForecaster(step_min)
    if method in CHEAP_METHODS:
        return MatrixForecaster(CHEAP_METHODS[method], step_min)
    if method in STATSMODELS_METHODS:
        return MatrixForecaster(StatsmodelsMethod(model=method, workers=auto_options.get("workers", 1)), step_min)
    raise TapasError(f"unknown forecasting method {method!r}; choose one of {', '.join(METHODS)}")


@dataclass
class ForecastRun:
    """Profiles of every VM plus what produced them."""

    profiles: LoadProfiles
    forecaster: Forecaster
    summary: dict
    seconds: float
    backtest: pd.DataFrame | None = None
    backtest_params: dict = field(default_factory=dict)


def forecast_inventory(inventory: Inventory, method: str = "auto", progress: Progress | None = None,
                       **auto_options) -> ForecastRun:
    """Forecast every VM of ``inventory`` over the horizon ``place`` plans (see build_profiles)."""
    step = inventory.config.time_step_min
    forecaster = make_forecaster(method, step, progress, **auto_options)
    t0 = time.perf_counter()
    profiles = build_profiles(inventory, forecaster)
    seconds = time.perf_counter() - t0
    return ForecastRun(profiles, forecaster, _summary(inventory, profiles, forecaster, method, seconds), seconds)


def _summary(inventory: Inventory, profiles: LoadProfiles, forecaster: Forecaster, method: str,
             seconds: float) -> dict:
    step = inventory.config.time_step_min
    per_vm = {str(v): {"method": str(m)} for v, m in profiles.method.items()}
    scores = getattr(forecaster, "scores_", None)
    if scores is not None:
        for vm_id, row in scores.replace(np.inf, np.nan).iterrows():
            tried = {c: round(float(v), 6) for c, v in row.items() if pd.notna(v)}
            if tried:
                per_vm[str(vm_id)]["backtest_pinball"] = tried
    strength = getattr(forecaster, "strength_", None)
    if strength is not None:
        for vm_id, v in strength.dropna().items():
            per_vm[str(vm_id)]["seasonal_strength"] = round(float(v), 3)
    quality = getattr(forecaster, "quality_", None)
    if quality is None:
        matrix = getattr(forecaster, "matrix_", None)
        quality = matrix.quality if matrix is not None else build_matrix(inventory.telemetry, step).quality
    notes = describe_quality(quality, step)
    counts = profiles.method.value_counts()
    return {
        "inventory": str(inventory.root),
        "method": method,
        "horizon": {"start": profiles.horizon[0] if len(profiles.horizon) else None,
                    "slots": len(profiles.horizon), "step_min": step},
        "vms": len(profiles.vm_ids),
        "methods": {str(k): int(v) for k, v in counts.items()},
        "seconds": round(seconds, 3),
        "telemetry_notes": notes,
        "warnings": [str(w) for w in inventory.warnings],
        "telemetry_quality": _quality_totals(quality),
        "per_vm": per_vm,
    }


def _quality_totals(quality: pd.DataFrame) -> dict:
    cols = ("samples", "invalid", "off_grid", "merged", "missing_slots")
    out = {c: int(pd.to_numeric(quality[c], errors="coerce").fillna(0).sum()) for c in cols if c in quality}
    if "longest_gap_slots" in quality and len(quality):
        out["longest_gap_slots"] = int(pd.to_numeric(quality["longest_gap_slots"]).max())
    return out


def backtest_inventory(inventory: Inventory, origins: int = 7, every_h: float = 24.0,
                       statsmodels_vms: int = 10, seed: int = 0, progress: Progress | None = None,
                       **auto_options) -> tuple[pd.DataFrame, dict]:
    """Rolling-origin back-test of every method on the inventory's own telemetry.

    The horizon is the inventory's (at most a week); origins are ``every_h`` apart, the last
    one a horizon before the end of the telemetry; each origin sees up to four weeks before
    it. Vectorised methods and ``auto`` run on every VM; the statsmodels methods on a seeded
    sample of ``statsmodels_vms`` VMs, so their ``vs_template`` column compares them with the
    template on the same VMs.

    Returns
    -------
    table : pd.DataFrame
        One row per method: ``vms``, ``n`` (VM-slots scored), ``mae``, ``mape``,
        ``within_10pct``, ``pinball_p50/p90/p99``, ``pinball_mean``, ``exceeded_p50/p90/p99``,
        ``vs_template`` (pinball_mean over the template's, same VMs), ``seconds_per_series``.
    params : dict
        The windows used.
    """
    step = inventory.config.time_step_min
    m = build_matrix(inventory.telemetry, step)
    horizon_slots = int(min(inventory.config.horizon_h, 168) * 60 // step)
    every = max(1, int(every_h * 60 // step))
    history_slots = min(4 * WEEK_MIN // step, _typical_span(m) - horizon_slots - (origins - 1) * every)
    if history_slots < 24 * 60 // step:  # the typical VM is too young: the oldest ones, then
        history_slots = min(4 * WEEK_MIN // step, m.n_slots - horizon_slots - (origins - 1) * every)
    if history_slots < 24 * 60 // step:
        need_h = (24 * 60 // step + horizon_slots + (origins - 1) * every) * step / 60
        one_origin = 24 * 60 // step + horizon_slots <= m.n_slots  # would fewer origins help at all?
        raise InventoryError([Problem(
            "short_telemetry", _telemetry_file(inventory), f"covers {m.n_slots * step / 60:.0f} h: a back-test with "
            f"{origins} origins {every_h:g} h apart and a {horizon_slots * step / 60:.0f} h horizon needs "
            f"{need_h:.0f} h", "use fewer --origins" if origins > 1 and one_origin else
            "a back-test needs at least a day of history before a whole horizon of telemetry: add telemetry, or "
            "run forecast without --backtest")])
    first = m.n_slots - horizon_slots - (origins - 1) * every
    start = first - history_slots  # drop telemetry older than the first origin needs
    m_bt = SeriesMatrix(m.vm_ids, m.index[start:], m.values[:, start:], m.step_min, m.quality)
    methods = {"auto": AutoMethod(**auto_options), **{k: v for k, v in CHEAP_METHODS.items()}}
    tick = (lambda k, n: progress("back-test origins", k, n)) if progress else None
    main = rolling_origin_backtest(m_bt, methods, history_slots, horizon_slots, every, progress=tick)
    if main.overall.empty or "pinball_mean" not in main.overall.columns:
        raise InventoryError([_unscored_problem(m, inventory.telemetry, origins, _telemetry_file(inventory))])
    scored = _scored_vms(main, m.vm_ids)
    table = main.overall.copy()
    table["vms"] = len(scored)
    table["seconds_per_series"] = pd.Series(main.seconds_per_series)
    table["vs_template"] = _ratio(table["pinball_mean"], table.loc["template", "pinball_mean"])
    warnings = []
    if len(scored) < len(m.vm_ids):
        warnings.append(f"{len(scored)} of {len(m.vm_ids)} VMs were scored: the others lack {history_slots * step / 60:g} h "
                        f"of history (90 % measured) before an origin, or a measured horizon after it (the history "
                        "is sized by the median VM's telemetry; with fewer --origins more VMs qualify)")
    if statsmodels_vms > 0 and len(scored):
        rng = np.random.default_rng(seed)
        # Among the scored VMs: an unscorable sample left the statsmodels rows empty (a KeyError).
        pick = np.sort(scored[rng.choice(len(scored), size=min(statsmodels_vms, len(scored)), replace=False)])
        sub = m_bt.rows(pick)
        sm_methods = {"template": CHEAP_METHODS["template"],
                      **{k: StatsmodelsMethod(model=k, workers=auto_options.get("workers", 1))
                         for k in STATSMODELS_METHODS}}
        tick = (lambda k, n: progress("statsmodels back-test", k, n)) if progress else None
        sm = rolling_origin_backtest(sub, sm_methods, history_slots, horizon_slots, every, progress=tick)
        extra = sm.overall.drop(index="template").copy()
        extra["vms"] = len(pick)
        extra["seconds_per_series"] = pd.Series(sm.seconds_per_series)
        extra["vs_template"] = _ratio(extra["pinball_mean"], sm.overall.loc["template", "pinball_mean"])
        table = pd.concat([table, extra])
    cols = ["vms", "n", "mae", "mape", "within_10pct", "pinball_p50", "pinball_p90", "pinball_p99",
            "pinball_mean", "vs_template", "exceeded_p50", "exceeded_p90", "exceeded_p99", "seconds_per_series",
            "fallback_share"]
    warnings += _fallback_warnings(table["fallback_share"])
    params = {"origins": main.n_origins, "every_h": every * step / 60, "history_h": history_slots * step / 60,
              "horizon_h": horizon_slots * step / 60, "vms_scored": int(len(scored)), "vms": int(len(m.vm_ids)),
              "warnings": warnings, "auto_choices": main.choices.get("auto", {})}
    return table[cols].astype({"vms": "Int64", "n": "Int64"}), params


def _fallback_warnings(share: pd.Series) -> list[str]:
    """One warning per method that could not forecast some VMs at some origins."""
    return [f"{method} could not forecast {100 * v:.1f} % of the VM-origins it was back-tested on (a failed or "
            f"implausible statsmodels fit); they are scored on what forecast and place use instead, the "
            f"{AutoConfig.default} forecast" for method, v in share.items() if v > 0]


def _telemetry_file(inventory) -> str:
    """The name of the inventory's telemetry file (CSV or Parquet) for a problem's file."""
    root = Path(inventory.root)
    return next((name for name in ("telemetry.csv", "telemetry.parquet") if (root / name).exists()), "telemetry.csv")


def _unscored_problem(m, telemetry: pd.DataFrame, origins: int, file: str = "telemetry.csv") -> Problem:
    """Why no VM could be scored: gaps or short series, or (when even the best-covered VM has
    fewer than 90 % of its slots measured) telemetry sampled less often than the time step:
    hourly samples on a 45-minute grid leave every fourth slot empty, which is no gap to fill."""
    measured = ~np.isnan(m.values)
    first, last = measured.argmax(axis=1), m.n_slots - measured[:, ::-1].argmax(axis=1)
    span = np.where(measured.any(axis=1), last - first, 0)
    coverage = np.divide(measured.sum(axis=1), span, out=np.zeros(len(span)), where=span > 0)
    best = float(coverage.max()) if len(coverage) else 0.0
    if 0 < best < MIN_COVERAGE:
        samples = pd.DataFrame({"vm_id": telemetry["vm_id"], "t": pd.to_datetime(telemetry["timestamp"])})
        samples = samples.drop_duplicates().sort_values(["vm_id", "t"])
        interval = samples.groupby("vm_id")["t"].diff().median() / pd.Timedelta(minutes=1)
        return Problem(
            "short_telemetry", file,
            f"at most {100 * best:.0f} % of any VM's {m.step_min}-minute slots hold a sample (telemetry about "
            f"every {interval:.0f} min); a back-test scores a VM only with {100 * MIN_COVERAGE:.0f} % of its slots "
            "measured", "set time_step_min in datacenter.yaml to the telemetry's interval (or a multiple of it) "
            "for the back-test")
    return Problem(
        "short_telemetry", file, f"no VM has enough telemetry around any of the {origins} back-test "
        f"origin(s) to be scored (gaps in the history, or series that end early)",
        ("use fewer --origins, or " if origins > 1 else "") + f"fill the gaps in {file}")


def _typical_span(m) -> int:
    """Slots from the median VM's first measurement to the end of the telemetry. The back-test's
    history is sized by it, not by the whole span: one VM with eight weeks of telemetry among
    VMs with four asked every VM for four weeks before the first origin, and scored that one
    VM alone."""
    measured = ~np.isnan(m.values)
    has = measured.any(axis=1)
    if not has.any():
        return m.n_slots
    first = measured[has].argmax(axis=1)
    return int(m.n_slots - np.median(first))


def _scored_vms(result, vm_ids) -> np.ndarray:
    """Positions of the VMs the back-test scored at some origin (enough history and future)."""
    if result.per_series.empty:
        return np.zeros(0, int)
    names = set(result.per_series.loc["template"].index)
    return np.array([i for i, v in enumerate(vm_ids) if v in names], dtype=int)


def _ratio(loss: pd.Series, reference: float) -> pd.Series:
    """Losses relative to the template's; undefined (NaN, an empty cell) when the template's
    loss is 0 (a room with no load), not infinite."""
    return loss / reference if reference > 0 else pd.Series(np.nan, index=loss.index)


def write_forecast(out_dir: Path | str, run: ForecastRun) -> Path:
    """Write profiles.csv, summary.json (and backtest.csv) into ``out_dir`` atomically."""
    out_dir = Path(out_dir)
    summary = dict(run.summary)
    if run.backtest is not None:
        summary["backtest"] = {"params": run.backtest_params,
                               "methods": _records(run.backtest)}
    with atomic_directory(out_dir) as tmp:
        frame = run.profiles.to_frame()
        frame["timestamp"] = pd.DatetimeIndex(frame["timestamp"]).strftime("%Y-%m-%d %H:%M:%S")
        frame.to_csv(tmp / "profiles.csv", index=False)
        write_json(tmp / "summary.json", summary)
        if run.backtest is not None:
            run.backtest.round(6).to_csv(tmp / "backtest.csv", index_label="method")
    return out_dir


def _records(table: pd.DataFrame) -> dict:
    return {str(k): {c: (None if pd.isna(v) else (int(v) if c in ("vms", "n") else round(float(v), 6)))
                     for c, v in row.items()} for k, row in table.iterrows()}
