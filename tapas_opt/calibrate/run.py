"""Fit every model the telemetry allows and assemble ``physics.yaml``: what ``tapas-opt fit`` runs.

Which model needs which columns (see :mod:`tapas_opt.calibrate.telemetry`):

===============  =========================================================================
model            needs
===============  =========================================================================
GPU power        ``gpu_power_w`` (and ``load``)
GPU temperature  ``gpu_temp_c``, ``gpu_power_w`` and the inlet: ``inlet_temp_c``, or else
                 ``outside.csv`` through the inlet model (fitted here if possible)
server power     ``server_power_kw``
airflow          ``airflow_cfm``
inlet            ``inlet_temp_c`` and ``outside.csv``
===============  =========================================================================

A model without its columns, or with fewer than ``MIN_SAMPLES`` complete rows, is skipped and
said so; the others are fitted and written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tapas_opt.calibrate.regress import (MIN_SAMPLES, FitResult, Unidentifiable, fit_airflow, fit_gpu_power, fit_gpu_temp,
                                         fit_inlet, fit_server_power)
from tapas_opt.calibrate.telemetry import calibration_columns, room_load, server_rows, slot_of, with_outside
from tapas_opt.errors import InventoryError
from tapas_opt.inventory.load import Inventory
from tapas_opt.physics import inlet_temp_c


@dataclass
class Calibration:
    """Fitted models, the skipped ones (with the reason) and the physics.yaml content."""

    fits: dict[str, FitResult]
    skipped: dict[str, str]
    physics: dict = field(default_factory=dict)


PLAUSIBLE = {
    "gpu_power": {"gpu_idle_w": (0.0, 2000.0), "gpu_max_w": (1.0, 3000.0)},
    "server_power": {"idle_power_kw": (0.0, 1000.0), "max_power_kw": (0.01, 1000.0)},
    "airflow": {"idle_airflow_cfm": (0.0, 1e6), "max_airflow_cfm": (1.0, 1e6)},
    "gpu_temp": {"gpu_temp_c_per_w": (0.0, 1.0), "gpu_temp_intercept_c": (-30.0, 80.0)},
    "inlet": {"floor_c": (0.0, 45.0), "knee_outside_c": (-40.0, 60.0), "slope_c_per_c": (-1e-6, 5.0),
              "cap_c": (0.0, 60.0), "load_gain_c": (-5.0, 30.0)},
}
"""Ranges a fitted coefficient must fall in to be used: outside them the data could not identify
the model (a constant load, outside temperatures that never reach the knee, ...) and the values
would make every later command on the inventory fail or mislead."""


RISING = {"gpu_power": ("gpu_idle_w", "gpu_max_w"), "server_power": ("idle_power_kw", "max_power_kw"),
          "airflow": ("idle_airflow_cfm", "max_airflow_cfm")}
"""Models whose full-load figure must be above their idle one."""

MIN_RISE = 0.01
"""Least rise from idle to full load, as a share of full load, for a fit to be believed: a sensor
stuck at one value (or reporting 0) gives idle = max up to rounding, which every later command
would read as a server whose power or airflow never moves with load."""


def rises(idle: float, full: float) -> bool:
    """Does a fitted figure rise with load by at least :data:`MIN_RISE` of its full-load value?"""
    return bool(np.isfinite(idle) and np.isfinite(full) and full > 0 and full - idle >= MIN_RISE * full)


def implausible(name: str, fit: FitResult) -> str | None:
    """Why a fit's coefficients cannot be used, or None when they can."""
    bad = []
    for key, (lo, hi) in PLAUSIBLE.get(name, {}).items():
        if key in fit.coefficients:
            value = fit.value(key)
            if not (np.isfinite(value) and lo <= value <= hi):
                bad.append(f"{key} = {value:.6g} (expected {lo:g}..{hi:g})")
    pair = RISING.get(name)
    if pair is not None and not bad and not rises(fit.value(pair[0]), fit.value(pair[1])):
        bad.append(f"{pair[1]} {fit.value(pair[1]):.6g} is not above {pair[0]} {fit.value(pair[0]):.6g}: it does "
                   "not rise with load (a stuck or dead sensor?)")
    if name == "inlet" and not bad and fit.value("cap_c") < fit.value("floor_c") - 1e-6:
        bad.append(f"cap_c {fit.value('cap_c'):.6g} < floor_c {fit.value('floor_c'):.6g}")
    if not bad:
        return None
    if name == "gpu_power" and fit.value("gpu_max_w") < 10.0:  # no GPU peaks at 10 W: kW given as W
        return (f"the fitted full-load GPU power is {fit.value('gpu_max_w'):.3g} W: gpu_power_w looks like kW "
                "(or another unit), not watts: not written; give gpu_power_w in W (see docs/calibration.md)")
    if name == "gpu_temp" and fit.value("gpu_temp_c_per_w") > 1.0:  # a GPU warms ~0.1 C per W
        return (f"the fitted slope is {fit.value('gpu_temp_c_per_w'):.3g} C per W of GPU power (GPUs warm about "
                "0.1 C per W): gpu_power_w looks like kW, not watts: not written (see docs/calibration.md)")
    return ("the telemetry does not identify this model (" + "; ".join(bad) + "): not written; "
            "it needs rows that vary over the model's range (see docs/calibration.md)")


def _enough(frame: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    return frame.dropna(subset=cols)


USER_NAMES = {"x_power": "load", "x_load": "load", "room_load": "load", "outside_c": "outside.csv's temp_c"}
"""What the user knows the fit's derived columns as (x_power: the server's GPU-share-weighted
g(load) of its VMs, computed from telemetry's load)."""


def _as_the_user_knows(cols: list[str]) -> str:
    """``cols`` named as in the user's files, each once, in order."""
    return ", ".join(dict.fromkeys(USER_NAMES.get(c, c) for c in cols))


def fit_inventory(inventory: Inventory) -> Calibration:
    """Fit the models the telemetry supports; raise InventoryError on bad calibration values."""
    frame, problems = calibration_columns(inventory)
    if problems:
        raise InventoryError(problems)
    cfg = inventory.config
    fits: dict[str, FitResult] = {}
    skipped: dict[str, str] = {}
    poly = cfg.server_defaults.power_poly

    def attempt(name: str, cols: list[str], data: pd.DataFrame, fitter, why: str = "") -> FitResult | None:
        missing = [c for c in cols if c not in data.columns]
        if missing:
            skipped[name] = why or f"telemetry has no {', '.join(missing)} column"
            return None
        rows = _enough(data, cols)
        if len(rows) < MIN_SAMPLES:
            skipped[name] = f"{len(rows)} complete rows of {_as_the_user_knows(cols)} (need {MIN_SAMPLES})"
            return None
        try:
            fit = fitter(rows)
        except Unidentifiable as exc:
            skipped[name] = f"{exc}: not written (see docs/calibration.md)"
            return None
        why = implausible(name, fit)
        if why is not None:
            skipped[name] = why
            return None
        fits[name] = fit
        return fit

    power = attempt("gpu_power", ["load", "gpu_power_w"], frame, fit_gpu_power)
    if power is not None:
        poly = (0.0, power.value("poly_u"), power.value("poly_u2"))
    step = int(cfg.time_step_min)
    srv = server_rows(frame, poly, step)
    attempt("server_power", ["x_power", "server_power_kw"], srv, fit_server_power)
    attempt("airflow", ["x_load", "airflow_cfm"], srv, fit_airflow)
    total_gpus = float(inventory.servers["gpus"].sum())
    load_by_time = room_load(frame, total_gpus, step)
    inlet_model = cfg.inlet
    if "inlet_temp_c" in srv.columns and inventory.outside is not None:
        rows = with_outside(srv, inventory.outside).assign(
            room_load=lambda d: d["timestamp"].map(load_by_time).fillna(0.0))
        inlet = attempt("inlet", ["inlet_temp_c", "outside_c", "room_load"], rows, fit_inlet)
        if inlet is not None:
            inlet_model = _inlet_model(inlet, cfg.inlet)
    else:
        skipped["inlet"] = "needs an inlet_temp_c column and outside.csv"
    gpu = frame.copy()
    if "inlet_temp_c" not in gpu.columns or gpu["inlet_temp_c"].isna().all():
        if inventory.outside is not None and {"gpu_temp_c", "gpu_power_w"} <= set(gpu.columns):
            # No inlet sensor: the inlet model (fitted above or datacenter.yaml's) stands in.
            offsets = inventory.servers.set_index("server_id")["inlet_offset_c"]
            gpu = with_outside(gpu, inventory.outside)
            gpu["inlet_temp_c"] = inlet_temp_c(gpu["outside_c"].to_numpy(float),
                                               slot_of(gpu["timestamp"], step).map(load_by_time).fillna(0.0)
                                               .to_numpy(float),
                                               inlet_model, gpu["server_id"].map(offsets).fillna(0.0).to_numpy(float))
            fit = None
            if gpu["outside_c"].notna().any() or gpu["gpu_temp_c"].notna().sum() == 0:
                fit = attempt("gpu_temp", ["gpu_temp_c", "gpu_power_w", "inlet_temp_c"], gpu, fit_gpu_temp)
            else:
                skipped["gpu_temp"] = ("outside.csv has no temperature within an hour of any telemetry row (their "
                                       "times do not overlap), so there is no inlet estimate to fit against")
            if fit is not None:
                fit.notes.append("no inlet_temp_c: the inlet is the inlet model's estimate from outside.csv")
        else:
            skipped["gpu_temp"] = "needs gpu_temp_c, gpu_power_w and an inlet (inlet_temp_c or outside.csv)"
    else:
        attempt("gpu_temp", ["gpu_temp_c", "gpu_power_w", "inlet_temp_c"], gpu, fit_gpu_temp)
    calib = Calibration(fits, skipped)
    calib.physics = physics_mapping(calib, inventory)
    return calib


def _inlet_model(fit: FitResult, base):
    from dataclasses import replace

    return replace(base, floor_c=fit.value("floor_c"), knee_outside_c=fit.value("knee_outside_c"),
                   slope_c_per_c=fit.value("slope_c_per_c"), cap_c=fit.value("cap_c"),
                   load_gain_c=fit.value("load_gain_c"))


def physics_mapping(calib: Calibration, inventory: Inventory) -> dict:
    """The content of physics.yaml: overrides the loader applies, plus the fit report."""
    f = calib.fits
    defaults: dict = {}
    if "gpu_power" in f:
        p = f["gpu_power"]
        defaults.update(power_poly=[0.0, round(p.value("poly_u"), 6), round(p.value("poly_u2"), 6)],
                        gpu_idle_w=round(p.value("gpu_idle_w"), 3), gpu_max_w=round(p.value("gpu_max_w"), 3))
    if "gpu_temp" in f:
        t = f["gpu_temp"]
        defaults.update(gpu_temp_intercept_c=round(t.value("gpu_temp_intercept_c"), 4),
                        gpu_temp_c_per_w=round(max(t.value("gpu_temp_c_per_w"), 0.0), 6))
    inlet = {}
    if "inlet" in f:
        inlet = {k: round(f["inlet"].value(k), 4) for k in ("floor_c", "knee_outside_c", "slope_c_per_c",
                                                          "cap_c", "load_gain_c")}
    servers: dict[str, dict] = {}

    def per_server(fit_name: str, columns: tuple[str, ...]):
        fit = f.get(fit_name)
        if fit is None or fit.per_server is None:
            return
        for sid, row in fit.per_server.iterrows():
            entry = servers.setdefault(str(sid), {})
            for col in columns:
                if col in row and pd.notna(row[col]):
                    entry[col] = round(float(row[col]), 4)

    per_server("server_power", ("idle_power_kw", "max_power_kw"))
    per_server("airflow", ("idle_airflow_cfm", "max_airflow_cfm"))
    per_server("inlet", ("inlet_offset_c",))
    per_server("gpu_temp", ("gpu_temp_intercept_c", "gpu_temp_c_per_w"))
    for entry in servers.values():  # a server whose figures do not rise keeps the inventory's
        for lo, hi in (RISING["server_power"], RISING["airflow"]):
            if lo in entry and hi in entry and not rises(entry[lo], entry[hi]):
                entry.pop(lo), entry.pop(hi)
    _note_what_is_not_written(f, servers, inventory)
    tel = inventory.telemetry
    out: dict = {"source": {"inventory": str(inventory.root), "telemetry_rows": int(len(tel)),
                            "from": str(tel["timestamp"].min()) if len(tel) else None,
                            "to": str(tel["timestamp"].max()) if len(tel) else None,
                            "skipped": dict(calib.skipped)}}
    if defaults:
        out["server_defaults"] = defaults
    if inlet:
        out["inlet"] = inlet
    if servers:
        out["servers"] = servers
    out["fits"] = {name: fit.to_dict() for name, fit in f.items()}
    return _plain(out)


def _note_what_is_not_written(fits: dict, servers: dict[str, dict], inventory: Inventory) -> None:
    """Say, in the fits' notes (printed by ``fit`` and kept in physics.yaml), what a fit shows
    that place will not use: server power and airflow are written per server only (a room-wide
    idle/max mixes hardware), and the pooled GPU-temperature model (``server_defaults``) does not
    reach servers whose servers.csv gives their own coefficients."""
    for name in ("server_power", "airflow"):
        lo, hi = RISING[name]
        if name in fits and not any(lo in e and hi in e for e in servers.values()):
            fits[name].notes.append("not written: per server only, and no server has 24 rows of its own that vary "
                                    "(every server keeps its servers.csv figures; the room-wide fit is a report)")
    if "gpu_temp" in fits:
        cols = [c for c in ("gpu_temp_intercept_c", "gpu_temp_c_per_w") if c in inventory.servers.columns]
        own = inventory.servers[cols].notna().any(axis=1) if cols else pd.Series(False, index=inventory.servers.index)
        fitted = {sid for sid, e in servers.items() if "gpu_temp_c_per_w" in e}
        kept = [sid for sid in inventory.servers.loc[own, "server_id"].astype(str) if sid not in fitted]
        if kept:
            fits["gpu_temp"].notes.append(f"{len(kept)} server(s) without a fit of their own keep the coefficients "
                                          f"servers.csv gives them (e.g. {kept[0]}), not server_defaults: remove "
                                          "those cells to use the room's fit there")


def _plain(obj):
    """numpy scalars to Python numbers, so that yaml.safe_dump accepts the mapping."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
