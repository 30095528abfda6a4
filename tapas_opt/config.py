"""The datacenter configuration (``datacenter.yaml``): horizon, limits and model defaults.

Every default below comes from a published fact in TAPAS.md or from a real data set in
``../shared/data``; the source is named beside it. Per-server columns in ``servers.csv``
override the server defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from tapas_opt.errors import InventoryError, Problem
from tapas_opt.timestamps import parse_timestamp
from tapas_opt.yamlfile import load_yaml, locate, unreadable

QUANTILES = ("p50", "p90", "p99")
MINUTES_PER_DAY = 1440
HISTORY_WEEKS = 4.0
"""Weeks of telemetry before the horizon that the forecasters use (TAPAS's templates: four)."""
EMPTY_HISTORY_START = "2026-01-05 00:00"
"""First slot of the horizon when there is no telemetry and no ``start``: a Monday, so that a
room without history still plans a defined week (its VMs are planned at peak load anyway)."""


def divides_a_day(step_min: int) -> bool:
    """Time steps must divide a day: daily profiles, weather by hour of day and the simulator's
    steps all repeat on whole days."""
    return step_min > 0 and MINUTES_PER_DAY % step_min == 0


@dataclass(frozen=True)
class ServerDefaults:
    """Per-server model parameters used where ``servers.csv`` gives no override."""

    power_poly: tuple[float, ...] = (0.0, 1.0)
    """g(u) = sum_k c_k u^k: fraction of the dynamic power range drawn by a GPU at load u.
    Linear by default: on the Cornell A100/H100 servers hourly GPU power is close to linear
    in utilisation (quadratic term below 0.06 of the range); ``tapas-opt fit`` refits it."""
    gpu_idle_w: float = 50.0
    """Idle power of one GPU: 8 A100 GPUs idle at about 0.4 kW (TAPAS.md section 1)."""
    gpu_max_w: float = 400.0
    """Maximum power of one GPU: 8 A100 GPUs have a TDP of about 3.2 kW (TAPAS.md section 1)."""
    gpu_temp_intercept_c: float = 2.0
    """Hottest-GPU temperature above inlet at zero power: TAPAS's test GPU, +2 C."""
    gpu_temp_c_per_w: float = 0.053
    """Hottest-GPU temperature rise per GPU watt: TAPAS's test GPU, 0.053 C/W."""


@dataclass(frozen=True)
class InletModel:
    """Inlet temperature from outside temperature and room load (TAPAS.md section 2, model 1).

    ``inlet = clip(floor + slope * (outside - knee), floor, cap)
    + load_gain * room_load * clip((outside - knee) / (load_gain_ref - knee), 0, 1)
    + inlet_offset_c(server)``
    """

    floor_c: float = 19.0
    """Inlet while outside is below the knee: 18-20 C in the paper."""
    knee_outside_c: float = 15.0
    """Outside temperature where free cooling stops holding the floor: about 15 C."""
    slope_c_per_c: float = 0.95
    """Inlet rise per degree outside above the knee: 0.9-1.0 C/C."""
    cap_c: float = 30.0
    """Chillers cap the inlet near 29-31 C."""
    load_gain_c: float = 2.0
    """High room load adds up to about 2 C at 35 C outside."""
    load_gain_ref_outside_c: float = 35.0
    default_outside_c: float = 25.0
    """Outside temperature assumed when ``outside.csv`` is absent (a warm design day)."""


@dataclass(frozen=True)
class PlacementOptions:
    """Objective weights and solver options of the placement model (see models/formulation.md)."""

    quantile: str = "p99"
    power_weight: float = 1.0
    """Weight of the peak normalised row power (peak kW / limit kW) in the objective."""
    temp_weight: float = 1.0
    """Weight of the room's peak normalised GPU temperature (peak C / limit C) in the objective."""
    placed_temp_weight: float = 0.5
    """Weight of the peak normalised GPU temperature among the VMs this plan places. The room's
    peak is often set by running VMs, which placement cannot move; this term keeps the new VMs
    as cool as the power budget allows below it (headroom for heat waves and failures)."""
    balance_weight: float = 0.02
    """Soft: keep every row's IaaS/SaaS GPU mix near the room's mix."""
    spread_weight: float = 0.02
    """Soft: spread an endpoint's VMs over rows (penalise the largest per-row count)."""
    thermal_pref_weight: float = 0.01
    """Soft: IaaS VMs prefer cool servers; SaaS VMs (reconfigurable) may take warmer ones."""
    fragmentation_weight: float = 0.01
    """Soft: put small VMs on partly used servers so whole servers stay free for 8-GPU VMs."""
    time_limit_s: float = 40.0
    """Solver budget (LP sweep + CP-SAT stages); forecasting and writing come on top."""
    workers: int = 2
    seed: int = 0


MAX_SEED = 2**31 - 1
"""Largest seed: CP-SAT's random seed is a 32-bit signed integer."""
MIN_TIME_LIMIT_S = 0.1
MAX_TIME_LIMIT_S = 86_400.0
"""Largest solver budget (a day): the budgets become integer work units and clock limits."""


@dataclass(frozen=True)
class DatacenterConfig:
    """Contents of ``datacenter.yaml``."""

    name: str = "datacenter"
    time_step_min: int = 60
    horizon_h: float = 168.0
    gpu_temp_limit_c: float = 85.0
    start: str | None = None
    """First slot of the horizon; default: the slot after the last telemetry timestamp."""
    server_defaults: ServerDefaults = field(default_factory=ServerDefaults)
    inlet: InletModel = field(default_factory=InletModel)
    placement: PlacementOptions = field(default_factory=PlacementOptions)

    @property
    def n_slots(self) -> int:
        return int(round(self.horizon_h * 60 / self.time_step_min))

    def with_placement(self, **changes: Any) -> "DatacenterConfig":
        """Copy with some placement options replaced (``None`` values are ignored), checked as
        ``datacenter.yaml``'s are: the Python API's callers (``Planner.from_inventory(...,
        time_limit_s=-1)``) get the same refusal as the file's, not a bare KeyError later."""
        file = "placement options"
        problems: list[Problem] = []
        known = {f.name for f in fields(PlacementOptions)}
        for key in sorted(set(changes) - known):
            problems.append(Problem("unknown_key", file, f"unknown placement option {key!r}",
                                    f"known options: {', '.join(sorted(known))}", column=key))
        changes = {k: _coerce(v, getattr(self.placement, k), f"placement.{k}", file, problems)
                   for k, v in changes.items() if v is not None and k in known}
        cfg = replace(self, placement=replace(self.placement, **changes))
        problems += [p for p in check_config(cfg, file) if (p.column or "").startswith("placement.")]
        if problems:
            raise InventoryError(problems)
        return cfg


_SECTIONS = {"server_defaults": ServerDefaults, "inlet": InletModel, "placement": PlacementOptions}


def _coerce(value: Any, default: Any, key: str, file: str, problems: list[Problem]) -> Any:
    """Coerce a YAML value to the type of its default, recording a problem if it cannot be."""
    try:
        if isinstance(default, tuple):
            if not isinstance(value, (list, tuple)) or not value:
                raise ValueError("expected a non-empty list of numbers")
            out = tuple(float(v) for v in value)
            if not all(math.isfinite(v) for v in out):
                raise ValueError("list holds a non-finite number")
            return out
        if isinstance(default, bool):
            return bool(value)
        if isinstance(default, int) and not isinstance(default, bool):
            if float(value) != int(float(value)):
                raise ValueError("expected a whole number")
            return int(float(value))
        if isinstance(default, float):
            out = float(value)
            if not math.isfinite(out):
                raise ValueError("expected a finite number")
            return out
        if default is None or isinstance(default, str):
            return None if value is None else str(value)
    except (TypeError, ValueError) as exc:
        problems.append(Problem("bad_value", file, f"'{key}' = {value!r}: {exc}",
                                f"give a value like {default!r}", column=key))
        return default
    return value


def _build(cls: type, raw: dict, prefix: str, file: str, problems: list[Problem]) -> Any:
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        if key not in known:
            problems.append(Problem("unknown_key", file, f"unknown key '{prefix}{key}'",
                                    f"known keys: {', '.join(sorted(known))}", column=f"{prefix}{key}"))
            continue
        if key in _SECTIONS and cls is DatacenterConfig:
            if not isinstance(value, dict):
                problems.append(Problem("bad_value", file, f"'{key}' must be a mapping", column=key))
                continue
            kwargs[key] = _build(_SECTIONS[key], value, f"{key}.", file, problems)
            continue
        default = getattr(cls(), key)
        kwargs[key] = _coerce(value, default, prefix + key, file, problems)
    return cls(**kwargs)


def _power_poly_falls(poly) -> str:
    """Why a power polynomial g(u) is not a GPU's power curve on loads 0..1 ('' if it is): it
    must rise from g(0) to g(1) and not fall on the way by more than 2 % of its range (a fitted
    curve may dip a little near idle)."""
    u = np.linspace(0.0, 1.0, 101)
    g = sum(float(c) * u**k for k, c in enumerate(poly))
    if not np.isfinite(g).all() or g[-1] <= g[0]:
        return f"gives g(1) = {g[-1]:.3g}, not above g(0) = {g[0]:.3g}: power would not rise with load"
    drop = np.maximum.accumulate(g) - g
    if drop.max() > 0.02 * (g[-1] - g[0]):
        at = int(np.argmax(drop))
        return f"falls with load (g({u[at]:.2f}) = {g[at]:.3g} is below an earlier {g[:at].max():.3g})"
    return ""


MAX_HORIZON_H = int(24 * 7 * HISTORY_WEEKS)
"""Longest planning horizon (hours): the forecasters learn from four weeks of history
(``HISTORY_WEEKS``), and a longer horizon only grows the placement model."""


def check_config(cfg: DatacenterConfig, file: str = "datacenter.yaml") -> list[Problem]:
    """Range checks that the types alone do not catch."""
    problems = []

    def bad(key: str, msg: str, hint: str = "") -> None:
        problems.append(Problem("bad_value", file, f"'{key}' {msg}", hint, column=key))

    if not divides_a_day(cfg.time_step_min):
        bad("time_step_min", f"= {cfg.time_step_min} must be positive and divide a day (1440)",
            "use 5, 10, 15, 30 or 60")
    if cfg.horizon_h <= 0:
        bad("horizon_h", f"= {cfg.horizon_h} must be positive")
    elif cfg.horizon_h > MAX_HORIZON_H:
        bad("horizon_h", f"= {cfg.horizon_h:g} h is beyond the {MAX_HORIZON_H} h (four weeks) tapas-opt plans: its "
            "forecasts learn from four weeks of history", f"use at most {MAX_HORIZON_H} (the default is a week, 168)")
    elif divides_a_day(cfg.time_step_min) and (cfg.horizon_h * 60) % cfg.time_step_min:
        # (a step that is itself wrong is said once, above, not again through the horizon)
        steps = cfg.horizon_h * 60 / cfg.time_step_min
        lower, upper = (math.floor(steps) * cfg.time_step_min / 60, math.ceil(steps) * cfg.time_step_min / 60)
        bad("horizon_h", f"= {cfg.horizon_h:g} h is not a whole number of {cfg.time_step_min}-minute time steps",
            f"use {lower:g} or {upper:g}" if lower > 0 else f"use {upper:g}")
    if cfg.start is not None and parse_timestamp(cfg.start) is None:
        bad("start", f"= {cfg.start!r} is not an ISO 8601 date and time in the years 2000..2099",
            "write it like '2026-06-01 00:00:00' (UTC, or with an offset like +02:00)")
    if not 0 < cfg.gpu_temp_limit_c < 150:
        bad("gpu_temp_limit_c", f"= {cfg.gpu_temp_limit_c} is not a plausible GPU limit",
            "GPUs throttle near 85 C")
    d = cfg.server_defaults
    if d.gpu_idle_w < 0:
        bad("server_defaults.gpu_idle_w", f"= {d.gpu_idle_w:g} must be >= 0")
    if d.gpu_max_w <= d.gpu_idle_w:
        bad("server_defaults.gpu_max_w", f"= {d.gpu_max_w:g} must exceed gpu_idle_w ({d.gpu_idle_w:g})")
    falls = _power_poly_falls(d.power_poly)
    if falls:
        bad("server_defaults.power_poly", f"= {list(d.power_poly)} {falls}",
            "a GPU draws more power at higher load: e.g. [0, 1] (linear), or refit it with tapas-opt fit")
    if d.gpu_temp_c_per_w < 0:
        bad("server_defaults.gpu_temp_c_per_w", "must be >= 0")
    p = cfg.placement
    if p.quantile not in QUANTILES:
        bad("placement.quantile", f"= {p.quantile!r} is not one of {QUANTILES}")
    for key in ("power_weight", "temp_weight", "placed_temp_weight", "balance_weight", "spread_weight",
                "thermal_pref_weight", "fragmentation_weight"):
        if getattr(p, key) < 0:
            bad(f"placement.{key}", "must be >= 0")
    if not MIN_TIME_LIMIT_S <= p.time_limit_s <= MAX_TIME_LIMIT_S:
        bad("placement.time_limit_s", f"= {p.time_limit_s} must be {MIN_TIME_LIMIT_S:g} to {MAX_TIME_LIMIT_S:g} s",
            "the default is 40")
    if p.workers < 1:
        bad("placement.workers", "must be >= 1")
    if not 0 <= p.seed <= MAX_SEED:
        bad("placement.seed", f"= {p.seed} must be 0 to {MAX_SEED}")
    if cfg.inlet.cap_c < cfg.inlet.floor_c:
        bad("inlet.cap_c", "must be >= inlet.floor_c")
    return problems


def load_config(path: Path) -> tuple[DatacenterConfig, list[Problem]]:
    """Read ``datacenter.yaml``; return the config (defaults where invalid) and all problems."""
    file = path.name
    raw, lines, problems = load_yaml(path, file)
    if unreadable(problems):
        return DatacenterConfig(), problems
    if not isinstance(raw, dict):
        return DatacenterConfig(), [Problem("bad_yaml", file, "top level must be a mapping")]
    cfg = _build(DatacenterConfig, raw, "", file, problems)
    problems += check_config(cfg, file)
    return _start_in_utc(cfg), locate(problems, file, lines)


def _start_in_utc(cfg: DatacenterConfig) -> DatacenterConfig:
    """A ``start`` with a time zone, in UTC without one: telemetry timestamps are converted the
    same way, and the two must compare."""
    if cfg.start is None:
        return cfg
    ts = parse_timestamp(cfg.start)
    if ts is None:
        return cfg  # reported by check_config
    return replace(cfg, start=str(ts))
