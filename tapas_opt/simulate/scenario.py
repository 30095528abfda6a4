"""A simulation scenario: the room, the VMs with their arrival times, their actual load over the
simulated week, the weather and the limits per step, and what the planner sees.

:func:`build_scenario` turns an inventory into a :class:`Scenario`:

* **Which VMs the policy places.** ``preexisting="policy"`` (the default): every VM of the
  inventory is placed by the policy. The VMs the inventory lists as running form the *initial
  population*, placed in a warm-up at the first step (the room as the policy would have left it),
  and the pending VMs *arrive over the week* in deployment batches (consecutive VMs of one
  endpoint or customer in the queue), each batch at a seeded uniform time in
  ``[0, arrival_hours)``. ``preexisting="history"``: running VMs stay on the servers the
  inventory names (placed by whatever allocator ran the room before); only arrivals are placed
  by the policy.
* **Actual load**: real traces mapped onto the VMs (:mod:`tapas_opt.simulate.traces`), which
  also replace the inventory's telemetry as the history the planner forecasts from; or, with
  ``actual=FILE``, a table of per-VM loads for the week (the inventory's telemetry is then the
  history).
* **Events** (``ups-failure``, ``ahu-failure:AISLE``, ``heatwave:+5C``, ``row-power:ROW:KW``;
  parsed by :mod:`tapas_opt.reconfig.events`) change limits and outside temperature during a
  window of the week; the planner does not know about them.

Study transforms on an inventory: :func:`oversubscribe` (more servers and VMs in the same rows
and limits) and :func:`remix` (another IaaS/SaaS share).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tapas_opt.api import Prepared, prepare
from tapas_opt.config import divides_a_day
from tapas_opt.errors import (InventoryError, Problem, first_problems, missing_columns, problems_of,
                              value_or_problems)
from tapas_opt.forecast.profiles import inventory_horizon
from tapas_opt.inventory.load import Inventory, line_mapper, load_inventory_with, read_user_table
from tapas_opt.simulate.traces import MappedLoad, TraceMapping, family_of, map_loads
from tapas_opt.timestamps import ISO_HINT, describe, parse_timestamps
from tapas_opt.weather import read_epw_dry_bulb, shifted_hours

PREEXISTING = ("policy", "history")
ACTUAL_MIN_COVERAGE = 0.9
"""A VM whose ``--actual`` series covers less of the simulated week than this gets a warning."""
DEFAULT_TRACES = Path("..") / "shared" / "data"


@dataclass(frozen=True)
class ScenarioOptions:
    """How an inventory becomes a simulation (see the module docstring)."""

    step_min: int = 5
    """Simulation time step (minutes); the planner's forecast keeps the inventory's step."""
    preexisting: str = "policy"
    arrival_hours: float | None = None
    """Arrivals spread over ``[0, arrival_hours)``; default: the whole simulated week."""
    seed: int = 0
    """Seed of arrivals, trace mapping and study transforms."""
    traces: str | Path | None = DEFAULT_TRACES
    actual: str | Path | None = None
    mapping: TraceMapping | None = None
    events: tuple[str, ...] = ()
    event_start_h: float | None = None
    """Start of the event window (hours after the week's start); default: midnight of the day
    in which the demand of the room's whole simulated population (every VM, arrived or not)
    peaks: the day follows from the load traces, not from a policy's arrivals."""
    event_hours: float | None = 24.0
    """Length of the event window; None = until the end of the week."""
    forecast_method: str = "template"
    weather: str | Path | None = None
    """An EnergyPlus .epw file: its dry-bulb temperature replaces outside.csv (history and week)."""
    weather_start: str = "07-13"
    """Month-day of the weather file that the simulated week starts on."""
    placement: dict = field(default_factory=dict)
    """Placement options (``time_limit_s``, ``quantile``, ...) passed to :func:`tapas_opt.api.prepare`."""


@dataclass(frozen=True, eq=False)
class Scenario:
    """Everything the engine needs, as arrays, plus the planner's prepared room."""

    name: str
    prepared: Prepared
    times: pd.DatetimeIndex
    step_min: int
    vms: pd.DataFrame
    """One line per simulated VM: vm_id, kind, gpus, family, endpoint_idx (-1 for IaaS),
    arrival_step, initial (bool), fixed_server (-1 unless running in history mode),
    pending_pos (position among the planner's pending VMs, -1 for fixed)."""
    vm_load: np.ndarray
    """[V, T] actual GPU load of each IaaS VM (NaN for SaaS)."""
    endpoint_ids: np.ndarray
    endpoint_load: np.ndarray
    """[E, T] actual per-GPU load of each SaaS endpoint (its demand per GPU of its VMs)."""
    outside_c: np.ndarray
    outside_shift_c: np.ndarray
    row_limit_kw: np.ndarray
    """[R, T] row power limits per step (events applied)."""
    aisle_limit_cfm: np.ndarray
    event_mask: np.ndarray
    """[T] steps inside the event window (all False without events)."""
    events: tuple[str, ...]
    sources: pd.DataFrame
    options: ScenarioOptions
    warnings: list[str] = field(default_factory=list)

    @property
    def n_steps(self) -> int:
        return len(self.times)

    @property
    def instance(self):
        return self.prepared.instance

    def describe(self) -> dict:
        v = self.vms
        inst = self.instance
        return {
            "name": self.name, "start": str(self.times[0]), "steps": self.n_steps, "step_min": self.step_min,
            "servers": int(inst.n_servers), "rows": int(inst.n_rows), "aisles": int(len(inst.aisle_ids)),
            "gpus": int(inst.params.gpus.sum()),
            "vms": int(len(v)), "vm_gpus": int(v["gpus"].sum()),
            "saas_gpu_share": round(float(v.loc[v["kind"] == "saas", "gpus"].sum() / max(1, v["gpus"].sum())), 4),
            "initial_population": int(v["initial"].sum()), "arrivals": int((~v["initial"]).sum()),
            "preexisting": self.options.preexisting,
            "placed_by_policy": int((v["fixed_server"] < 0).sum()),
            "fixed_by_history": int((v["fixed_server"] >= 0).sum()),
            "endpoints": int(len(self.endpoint_ids)),
            "load_source": "actual-file" if self.options.actual else "traces",
            "forecast_method": self.options.forecast_method,
            "events": list(self.events),
            "event_window": ([str(self.times[self.event_mask][0]), str(self.times[self.event_mask][-1])]
                             if self.event_mask.any() else None),
        }


# ---- study transforms -----------------------------------------------------------------------

def _with_initial(inv: Inventory) -> pd.DataFrame:
    vms = inv.vms.copy()
    if "sim_initial" not in vms.columns:
        vms["sim_initial"] = vms["server_id"].notna()
    return vms


def oversubscribe(inv: Inventory, extra: float, seed: int = 0) -> Inventory:
    """``extra`` (e.g. 0.5 = +50 %) more servers in every row and as many more VMs, limits kept.

    Each added server clones a random server of its row (hardware, inlet offset, GPU thermal
    coefficients) in new racks; each added VM clones a random VM (kind, customer or endpoint,
    size), so it follows its family's load; clones of running VMs join the initial population,
    clones of pending VMs arrive over the week. Rows keep their power limit and aisles their
    airflow limit: this is oversubscription of the power and cooling infrastructure.
    """
    if extra <= 0:
        return inv
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 5150]))
    servers = inv.servers.reset_index(drop=True)
    added = []
    for row_id, grp in servers.groupby("row_id", sort=True):
        n_add = int(round(extra * len(grp)))
        src = grp.iloc[rng.integers(0, len(grp), n_add)].copy()
        src["server_id"] = [f"{row_id}-X{j + 1:03d}" for j in range(n_add)]
        src["rack"] = [f"{row_id}-KX{j // 4 + 1:02d}" for j in range(n_add)]
        added.append(src)
    servers = pd.concat([servers, *added], ignore_index=True)
    vms = _with_initial(inv).reset_index(drop=True)
    n_add = int(round(extra * len(vms)))
    src = vms.iloc[rng.integers(0, len(vms), n_add)].copy()
    src["sim_clone_of"] = src["vm_id"]
    src["vm_id"] = [f"{v}-x{j + 1}" for j, v in enumerate(src["vm_id"])]
    src["server_id"] = np.nan
    vms = pd.concat([vms, src], ignore_index=True)
    return dataclasses.replace(inv, servers=servers, vms=vms)


def _oversubscription_warnings(before: Inventory, after: Inventory, extra: float) -> list[str]:
    """Each row gets a whole number of servers: in small rows a small share rounds to none (or
    to far more than asked), while the VMs added follow the share asked. Said when the servers
    added miss the share by more than a percentage point."""
    n_before, n_added = len(before.servers), len(after.servers) - len(before.servers)
    got = n_added / max(1, n_before)
    if abs(got - extra) <= 0.01:
        return []
    rows = before.servers.groupby("row_id").size()
    sizes = f"{rows.min()}" if rows.min() == rows.max() else f"{rows.min()}-{rows.max()}"
    vms_added = len(after.vms) - len(before.vms)
    return [f"+{extra:.1%} servers rounds to {n_added} server(s) (+{got:.1%}) in rows of {sizes} servers; "
            f"{vms_added} VM(s) are added for the share asked"]


def _mix_warnings(remixed: Inventory, asked: float) -> list[str]:
    """VMs are relabelled whole (the first VMs whose GPUs reach the share): with few or large
    VMs the share reached can miss the one asked, which the study's label would hide. Said when
    it misses by more than a percentage point."""
    gpus = remixed.vms["gpus"].to_numpy(float)
    got = gpus[(remixed.vms["kind"] == "saas").to_numpy()].sum() / max(gpus.sum(), 1.0)
    if abs(got - asked) <= 0.01:
        return []
    return [f"SaaS share {asked:.0%} of the GPUs rounds to {got:.1%} with this room's {len(gpus)} VM(s) "
            f"(whole VMs are relabelled)"]


def remix(inv: Inventory, saas_share: float, seed: int = 0) -> Inventory:
    """Relabel the VMs so that ``saas_share`` of their GPUs are SaaS (TAPAS.md section 3 mix).

    VMs are taken in a seeded order; SaaS ones are grouped into endpoints with the generator's
    size distribution (40 % singletons, 90 % at most 10, half of SaaS VMs in endpoints of > 100
    VMs when there are enough), IaaS ones into customers of about eight VMs. Placement of running
    VMs, sizes and the initial/arrival split are kept; loads follow the new families.
    """
    from tapas_opt.generate import _endpoint_sizes  # read-only reuse of the generator's rule

    if not 0.0 <= saas_share <= 1.0:
        raise ValueError(f"saas_share {saas_share} must be in 0..1")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7070]))
    vms = _with_initial(inv).reset_index(drop=True)
    order = rng.permutation(len(vms))
    gpus = vms["gpus"].to_numpy(float)[order]
    cum = np.cumsum(gpus) / gpus.sum()
    n_saas = int(np.searchsorted(cum, saas_share - 1e-9) + 1) if saas_share > 0 else 0
    n_saas = min(n_saas, len(vms)) if saas_share < 1 else len(vms)
    saas_idx, iaas_idx = order[:n_saas], order[n_saas:]
    vms["kind"] = "iaas"
    vms["endpoint"] = None
    vms.loc[saas_idx, "kind"] = "saas"
    vms.loc[saas_idx, "customer"] = "llm-service"
    pos = 0
    for k, size in enumerate(_endpoint_sizes(len(saas_idx), rng) if len(saas_idx) else []):
        vms.loc[saas_idx[pos:pos + size], "endpoint"] = f"mx-ep{k + 1:03d}"
        pos += size
    n_cust = max(3, len(iaas_idx) // 8)
    vms.loc[iaas_idx, "customer"] = [f"mx-cust{c + 1:03d}" for c in rng.integers(0, n_cust, len(iaas_idx))]
    for col in ("model", "config_id"):
        if col in vms.columns:
            vms[col] = None
    return dataclasses.replace(inv, vms=vms)


# ---- pieces of the scenario ---------------------------------------------------------------------

def read_epw(path: str | Path, start: pd.Timestamp, weather_start: str, hours_before: int, hours_after: int) -> pd.DataFrame:
    """Hourly outside temperature from an EnergyPlus weather file (data from line 9, dry-bulb in
    column 7), shifted so that month-day ``weather_start`` falls on ``start``."""
    temp = read_epw_dry_bulb(path)
    ts = pd.date_range(start - pd.Timedelta(hours=hours_before), periods=hours_before + hours_after, freq="60min")
    return pd.DataFrame({"timestamp": ts, "temp_c": shifted_hours(temp, weather_start, hours_before, len(ts))})


OUTSIDE_HOLD = pd.Timedelta(days=1)
"""Steps further than this before or after outside.csv are warned about (they hold its end value)."""


def _outside_series(inv: Inventory, times: pd.DatetimeIndex, warnings: list[str] | None = None) -> np.ndarray:
    """Outside temperature at each simulation step: outside.csv interpolated in time and held
    at its first and last value beyond them, else the inventory's default.

    Held, not the default: an hourly file ends at 23:00, and the default (25 C) in the last
    55 minutes of a cold week raised the week's hottest GPU by 10 C. Steps more than
    :data:`OUTSIDE_HOLD` beyond the file are a warning (appended to ``warnings``)."""
    default = inv.config.inlet.default_outside_c
    out = inv.outside
    if out is None or len(out) == 0:
        return np.full(len(times), default)
    series = out.dropna().groupby("timestamp")["temp_c"].mean().sort_index()
    if series.empty:
        return np.full(len(times), default)
    union = series.index.union(times)
    values = series.reindex(union).interpolate(method="time", limit_direction="both").reindex(times)
    far = (times < series.index[0] - OUTSIDE_HOLD) | (times > series.index[-1] + OUTSIDE_HOLD)
    if far.any() and warnings is not None:
        warnings.append(f"outside.csv covers {series.index[0]} to {series.index[-1]}: {int(far.sum())} simulation "
                        f"step(s) lie more than {OUTSIDE_HOLD.days} day(s) beyond it and hold its "
                        f"{'first' if times[far][0] < series.index[0] else 'last'} value (give outside "
                        "temperatures for the simulated week, or --weather)")
    return values.to_numpy(float)


def _arrivals(vms: pd.DataFrame, initial: np.ndarray, n_steps: int, step_min: int, hours: float,
              seed: int) -> np.ndarray:
    """Arrival step of each VM: 0 for the initial population; deployment batches (consecutive
    VMs of one family in queue order) at sorted seeded uniform times in [0, hours)."""
    arrival = np.zeros(len(vms), dtype=int)
    later = np.flatnonzero(~initial)
    if len(later) == 0:
        return arrival
    fam = family_of(vms).to_numpy()[later]
    batch = np.concatenate([[0], np.cumsum(fam[1:] != fam[:-1])])
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 4242]))
    times_h = np.sort(rng.uniform(0, hours, batch.max() + 1))
    steps = np.minimum((times_h * 60 // step_min).astype(int), n_steps - 1)
    arrival[later] = steps[batch]
    return arrival


def read_actual(path: str | Path, vms: pd.DataFrame, times: pd.DatetimeIndex, step_min: int,
                warnings: list[str] | None = None) -> pd.DataFrame:
    """A table ``vm_id, timestamp, load`` of actual per-VM loads over the week, averaged into
    the simulation steps; every simulated VM must appear, except VMs added by
    :func:`oversubscribe`, which follow the VM they clone. Steps a VM's series does not cover
    are interpolated (held at the ends); a VM covering none of the week is an error, one
    covering under :data:`ACTUAL_MIN_COVERAGE` of it a warning (appended to ``warnings``).
    Every problem is reported at once."""
    path = Path(path)
    frame, bad_load, problems = _actual_rows(path)
    if frame is None:
        raise InventoryError(problems)
    line_of = line_mapper(path)  # CSV lines count the header; Parquet rows from 1
    known = set(vms["vm_id"])
    unknown = frame["vm_id"].notna() & ~frame["vm_id"].isin(known)
    first_rows = frame.index[unknown].to_series().groupby(frame.loc[unknown, "vm_id"]).first()
    problems += first_problems("unknown_vm", path.name, first_rows.items(), lambda item: Problem(
        "unknown_vm", path.name, f"VM {item[0]!r} is not in the inventory's vms.csv "
        f"({int((frame['vm_id'] == item[0]).sum())} row(s), the first here)",
        "remove its rows, or add the VM to the inventory", line=line_of(item[1]), column="vm_id"))
    frame = frame[~(frame["timestamp"].isna() | bad_load)]
    twice = frame.duplicated(["vm_id", "timestamp"], keep=False)
    if twice.any() and warnings is not None:
        clash = frame[twice].groupby(["vm_id", "timestamp"])["load"].nunique()
        if (clash > 1).any():
            (v, t) = clash.index[clash > 1][0]
            warnings.append(f"{path.name}: {int((clash > 1).sum())} (vm_id, timestamp) pair(s) appear more than once "
                            f"with different loads, e.g. {v!r} at {t}; their loads are averaged")
    frame = frame.assign(timestamp=frame["timestamp"].dt.floor(f"{step_min}min"))
    wide = frame.pivot_table(index="vm_id", columns="timestamp", values="load", aggfunc="mean")
    wide = wide.reindex(columns=times)
    if "sim_clone_of" in vms.columns:  # VMs added by oversubscribe() follow the VM they clone
        clones = vms[vms["sim_clone_of"].notna() & ~vms["vm_id"].isin(wide.index)]
        clones = clones[clones["sim_clone_of"].isin(wide.index)]
        if len(clones):
            extra = wide.loc[clones["sim_clone_of"]]
            extra.index = clones["vm_id"].to_numpy()
            wide = pd.concat([wide, extra])
    span = f"{times[0]} to {times[-1]}"
    problems += first_problems("unknown_vm", path.name, sorted(known - set(wide.index)), lambda v: Problem(
        "unknown_vm", path.name, f"no actual load for VM {v!r}", "give every simulated VM a load series",
        column="vm_id"))
    coverage = _span_coverage(wide.notna().to_numpy(), step_min)
    coverage = pd.Series(coverage, index=wide.index)
    empty = [v for v in coverage.index[coverage == 0] if v in known]
    if empty:
        covers = f"{frame['timestamp'].min()} to {frame['timestamp'].max()}" if len(frame) else "nothing"
        problems.append(Problem("out_of_range", path.name,
                                f"{len(empty)} VM(s) have no load in the simulated week ({span}), e.g. "
                                f"{', '.join(repr(v) for v in empty[:5])}; the file covers {covers}",
                                "give loads for the week being simulated (see --actual in docs/simulation.md)",
                                column="timestamp"))
    if problems:
        raise InventoryError(problems)
    thin = coverage[(coverage < ACTUAL_MIN_COVERAGE) & coverage.index.isin(known)]
    if len(thin) and warnings is not None:
        warnings.append(f"{path.name}: {len(thin)} VM(s) have actual load for under {ACTUAL_MIN_COVERAGE:.0%} of "
                        f"the simulated week ({span}), e.g. {thin.index[0]!r} {thin.iloc[0]:.0%}; the rest is "
                        f"interpolated and held at the ends")
    wide = wide.T.interpolate(limit_direction="both").T
    return wide.reindex(vms["vm_id"])


def _actual_sources(family: pd.Series, kind: pd.Series, actual) -> pd.DataFrame:
    """``sources.csv`` under ``--actual``: every endpoint and customer, and how the file drives it
    (an endpoint's load is the GPU-weighted mean of its VMs' rows, routed over them; an IaaS VM
    runs its own rows)."""
    families = pd.DataFrame({"family": family, "kind": kind}).drop_duplicates(ignore_index=True)
    how = np.where(families["kind"] == "saas", "the GPU-weighted mean of its VMs' series, routed",
                   "each VM its own series")
    return families.assign(source=[f"actual file {actual}: {h}" for h in how])


def _actual_rows(path: Path) -> tuple[pd.DataFrame | None, pd.Series | None, list[Problem]]:
    """The ``--actual`` table with parsed timestamps and loads, which rows' loads are unusable,
    and the problems of the file on its own (columns, timestamps, loads): those need no
    inventory, so they are reported together with the inventory's (frame None: unusable)."""
    frame = read_user_table(path)
    found = ", ".join(repr(str(c)) for c in frame.columns) or "none"
    missing = missing_columns(path.name, frame.columns, ("vm_id", "timestamp", "load"),
                              f"columns: vm_id, timestamp, load (the file has {found})")
    if missing:
        return None, None, missing
    raw = frame
    times_read, reasons = parse_timestamps(frame["timestamp"])
    frame = frame.assign(timestamp=times_read, load=pd.to_numeric(frame["load"], errors="coerce"))
    problems = []
    line_of = line_mapper(path)
    problems += first_problems("bad_timestamp", path.name, frame.index[reasons.notna()], lambda i: Problem(
        "bad_timestamp", path.name, f"timestamp {describe(raw.at[i, 'timestamp'])} {reasons[i]}", ISO_HINT,
        line=line_of(i), column="timestamp"))
    not_number = frame["load"].isna()
    outside = (frame["load"] < 0) | (frame["load"] > 1)
    problems += first_problems("bad_type", path.name, frame.index[not_number], lambda i: Problem(
        "bad_type", path.name, f"load {describe(raw.at[i, 'load'])} is not a number",
        "a fraction in 0..1 with a decimal point (0.5, not 0,5 or 50%)", line=line_of(i), column="load"))
    problems += first_problems("out_of_range", path.name, frame.index[outside], lambda i: Problem(
        "out_of_range", path.name, f"load {describe(raw.at[i, 'load'])} is outside 0..1",
        "load is the VM's GPU utilisation as a fraction", line=line_of(i), column="load"))
    no_vm = frame["vm_id"].isna()
    problems += first_problems("missing_value", path.name, frame.index[no_vm], lambda i: Problem(
        "missing_value", path.name, "vm_id is empty", "give the VM each load belongs to", line=line_of(i),
        column="vm_id"))
    return frame, not_number | outside | no_vm, problems


def _span_coverage(present: np.ndarray, step_min: int) -> np.ndarray:
    """Share of the steps with a sample in the hour up to them (a sample covers its own step and
    the rest of its hour, so an hourly series covers the week at any step): two samples a week
    apart span the week but cover two hours of it, the rest interpolated."""
    if present.shape[1] == 0:
        return np.zeros(present.shape[0])
    window = max(1, 60 // max(step_min, 1))
    seen = np.cumsum(present, axis=1)
    before = np.zeros_like(seen)
    before[:, window:] = seen[:, :-window]
    return ((seen - before) > 0).mean(axis=1)


def _event_window(opts: ScenarioOptions, times: pd.DatetimeIndex, demand: np.ndarray) -> np.ndarray:
    mask = np.zeros(len(times), dtype=bool)
    if not opts.events or all(e.strip().lower() == "none" for e in opts.events):
        return mask
    if opts.event_start_h is None:
        peak = times[int(np.argmax(demand))]
        start = peak.normalize()
    else:
        start = times[0] + pd.Timedelta(hours=opts.event_start_h)
    end = times[-1] + pd.Timedelta(minutes=1) if opts.event_hours is None else start + pd.Timedelta(hours=opts.event_hours)
    mask[(times >= start) & (times < end)] = True
    return mask


def event_window_warnings(opts: ScenarioOptions, events: tuple[str, ...], times: pd.DatetimeIndex,
                           mask: np.ndarray) -> list[str]:
    """What the user asked of the event window that the simulated week cannot give."""
    if not events:
        return ["--event-start has no effect without --event"] if opts.event_start_h is not None else []
    step = times[1] - times[0] if len(times) > 1 else pd.Timedelta(hours=1)
    if not mask.any():
        start = times[0] + pd.Timedelta(hours=opts.event_start_h)
        if times[0] <= start < times[-1] + step:
            return [f"the event window (from {opts.event_start_h:g} h, {opts.event_hours:g} h long) holds no "
                    f"step of the simulated week (a step every {step / pd.Timedelta(minutes=1):g} min): the "
                    f"events never happen"]
        return [f"the event window (from {opts.event_start_h:g} h) lies outside the simulated week "
                f"({times[0]} .. {times[-1]}): the events never happen"]
    got_h = mask.sum() * step / pd.Timedelta(hours=1)
    if opts.event_hours is not None and got_h < opts.event_hours - 1e-9:
        return [f"the event window is cut to the simulated week: {got_h:g} h of the {opts.event_hours:g} h "
                f"asked ({times[mask][0]} .. {times[mask][-1]})"]
    return []


# ---- building ---------------------------------------------------------------------------------

def _option_problems(opts: ScenarioOptions, events: tuple[str, ...], inv: Inventory | None = None) -> list[Problem]:
    """Every problem of the options, found before any trace is read or load forecast: the
    events (their syntax; with the inventory ``inv``, the rows and aisles they name), the
    weather file, the traces directory, and (with ``inv``) a step that does not divide a day
    and the horizon."""
    from tapas_opt.reconfig.events import event_problems, parse_event

    problems = []
    if inv is None:
        for text in events:
            problems += problems_of(lambda: parse_event(text))
    else:
        problems += event_problems(events, inv.rows["row_id"], inv.aisles["aisle_id"])
        if not _step_fits(inv, opts):
            problems.append(Problem("bad_value", "--step", f"step {opts.step_min} min does not divide both a day "
                                    f"and the {inv.config.horizon_h:g} h horizon", "use 5, 10, 15, 30 or 60"))
    if opts.weather:
        problems += problems_of(lambda: read_epw_dry_bulb(opts.weather))
    if not opts.actual and (opts.traces is None or not Path(opts.traces).is_dir()):
        where = "no directory given" if opts.traces is None else f"{Path(opts.traces).resolve()} does not exist"
        problems.append(Problem("missing_file", str(opts.traces), f"real traces directory not found ({where})",
                                "give the directory that holds the real traces in ../shared/data's layout "
                                "(--traces DIR for simulate, settings: traces: DIR in a what-if file; a "
                                "relative path is taken from where tapas-opt runs), or --actual FILE"))
    return problems


def _inventory_warnings(inv: Inventory, opts: ScenarioOptions) -> list[str]:
    """The inventory's warnings that hold for the simulation: with the real traces, the
    inventory's telemetry is not the planner's history (the traces' are), so its warnings
    are left out."""
    return [str(w) for w in inv.warnings if opts.actual or Path(str(w.file)).name not in TELEMETRY_FILES]


TELEMETRY_FILES = {"telemetry.csv", "telemetry.parquet"}


def _events(opts: ScenarioOptions) -> tuple[str, ...]:
    return tuple(e for e in opts.events if e and e.strip().lower() != "none")


def _checked_inventory(inventory: str | Path | Inventory, opts: ScenarioOptions, events) -> Inventory:
    """The inventory, once it and the options are known good; else every problem at once: with
    an unusable inventory, the --actual file's and the options' own too. Before the traces and
    the forecast, not after."""
    checks = [lambda: _actual_rows(Path(opts.actual))[2]] if opts.actual else []
    inv = load_inventory_with(inventory, *checks, lambda: _option_problems(opts, events))
    problems = _option_problems(opts, events, inv)
    if problems:  # with the --actual file's: a bad weather file hid them
        raise InventoryError(problems + _actual_problems(inv, opts))
    return inv


def _actual_problems(inv: Inventory, opts: ScenarioOptions) -> list[Problem]:
    """The ``--actual`` file's problems against the room (its rows alone when the step is bad,
    which the simulated times depend on)."""
    if not opts.actual:
        return []
    if not _step_fits(inv, opts):
        rows, unreadable = value_or_problems(lambda: _actual_rows(Path(opts.actual)))
        return unreadable or list(rows[2])
    return problems_of(lambda: read_actual(opts.actual, _with_initial(inv).reset_index(drop=True),
                                           _simulated_times(inv, opts), opts.step_min))


def _step_fits(inv: Inventory, opts: ScenarioOptions) -> bool:
    """The simulation step divides both a day and the inventory's horizon."""
    return divides_a_day(opts.step_min) and (inv.config.horizon_h * 60) % opts.step_min == 0


def _simulated_times(inv: Inventory, opts: ScenarioOptions) -> pd.DatetimeIndex:
    """The simulated steps: the inventory's horizon at the simulation step."""
    return pd.date_range(inventory_horizon(inv)[0], periods=int(inv.config.horizon_h * 60 // opts.step_min),
                         freq=f"{opts.step_min}min")


def scenario_problems(inventory: str | Path | Inventory, options: ScenarioOptions) -> list[Problem]:
    """What :func:`build_scenario` would refuse before reading a trace (the inventory, the
    ``--actual`` file, the options): for a caller that found problems of its own, so that
    one run lists them all."""
    return problems_of(lambda: _checked_inventory(inventory, options, _events(options)))


def build_scenario(inventory: str | Path | Inventory, options: ScenarioOptions = ScenarioOptions(),
                   oversubscription: float = 0.0, saas_share: float | None = None) -> Scenario:
    """The scenario of an inventory (see the module docstring); study transforms first."""
    from tapas_opt.reconfig.events import apply_events, parse_events

    opts = options
    if opts.preexisting not in PREEXISTING:
        raise ValueError(f"preexisting must be one of {PREEXISTING}, not {opts.preexisting!r}")
    events = _events(opts)
    inv = _checked_inventory(inventory, opts, events)
    warnings: list[str] = _inventory_warnings(inv, opts)
    cfg = inv.config
    start = inventory_horizon(inv)[0]
    inv = dataclasses.replace(inv, config=dataclasses.replace(cfg, start=str(start)))
    if saas_share is not None:
        inv = remix(inv, saas_share, opts.seed)
        warnings += _mix_warnings(inv, saas_share)
    if oversubscription:
        before = inv
        inv = oversubscribe(inv, oversubscription, opts.seed)
        warnings += _oversubscription_warnings(before, inv, oversubscription)
    vms = _with_initial(inv).reset_index(drop=True)
    if vms.empty:
        raise InventoryError([Problem("empty_file", "vms.csv", "the inventory has no VMs: nothing to simulate",
                                      "add running or pending VMs to vms.csv")])
    times = _simulated_times(inv, opts)
    n_steps = len(times)
    if opts.weather:
        outside = read_epw(opts.weather, start, opts.weather_start, 24 * 7 * 5, int(np.ceil(cfg.horizon_h)) + 1)
        inv = dataclasses.replace(inv, outside=outside)

    initial = vms["sim_initial"].to_numpy(bool)
    hours = cfg.horizon_h if opts.arrival_hours is None else opts.arrival_hours
    if hours > cfg.horizon_h:
        warnings.append(f"--arrival-hours {hours:g} is longer than the simulated {cfg.horizon_h:g} h: arrivals "
                        f"drawn after its end arrive at its last step")
    arrival = _arrivals(vms, initial, n_steps, opts.step_min, hours, opts.seed)

    # Actual load and the history the planner sees.
    if opts.actual:
        wide = read_actual(opts.actual, vms, times, opts.step_min, warnings).to_numpy(float)
        saas = (vms["kind"] == "saas").to_numpy()
        vm_load = np.where(saas[:, None], np.nan, wide)
        fam = family_of(vms)
        endpoint_ids = np.asarray(pd.unique(fam[saas]), dtype=object)
        gp = vms["gpus"].to_numpy(float)
        endpoint_load = np.array([(wide[(fam == e).to_numpy()] * gp[(fam == e).to_numpy(), None]).sum(0)
                                  / gp[(fam == e).to_numpy()].sum() for e in endpoint_ids]).reshape(len(endpoint_ids), n_steps)
        sources = _actual_sources(fam, vms["kind"], opts.actual)
        history = inv.telemetry
    else:
        mapped: MappedLoad = map_loads(vms, start, times, opts.step_min, cfg.time_step_min, initial, opts.traces,
                                       opts.mapping or TraceMapping(seed=opts.seed))
        vm_load, endpoint_ids, endpoint_load = mapped.vm_load, mapped.endpoint_ids, mapped.endpoint_load
        sources, history = mapped.sources, mapped.history
        warnings += mapped.warnings

    # The planner's view: history, and the VMs to place in arrival order.
    fixed = np.full(len(vms), -1)
    if opts.preexisting == "history":
        running = vms["server_id"].notna().to_numpy()
    else:
        running = np.zeros(len(vms), dtype=bool)
    order = np.lexsort((np.arange(len(vms)), arrival, (~initial).astype(int), running.astype(int) * -1))
    plan_vms = vms.iloc[order].copy()
    plan_vms.loc[~running[order], "server_id"] = np.nan
    plan_inv = dataclasses.replace(inv, vms=plan_vms.drop(columns=["sim_initial", "sim_clone_of"], errors="ignore")
                                   .reset_index(drop=True),
                                   telemetry=history)
    prepared = prepare(plan_inv, forecast_method=opts.forecast_method, **opts.placement)
    inst = prepared.instance
    server_pos = pd.Series(np.arange(inst.n_servers), index=inst.server_ids)
    fixed[running] = server_pos.reindex(vms.loc[running, "server_id"]).to_numpy(int)
    pend_pos = pd.Series(np.arange(inst.n_vms), index=inst.vm_ids).reindex(vms["vm_id"]).fillna(-1).to_numpy(int)

    fam = family_of(vms)
    ep_pos = pd.Series(np.arange(len(endpoint_ids)), index=endpoint_ids)
    endpoint_idx = np.where(vms["kind"] == "saas", ep_pos.reindex(fam).fillna(-1).to_numpy(), -1).astype(int)
    table = pd.DataFrame({
        "vm_id": vms["vm_id"].to_numpy(str), "kind": vms["kind"].to_numpy(str),
        "customer": vms["customer"].to_numpy(object), "endpoint": vms["endpoint"].to_numpy(object),
        "gpus": vms["gpus"].to_numpy(int), "family": fam.to_numpy(object), "endpoint_idx": endpoint_idx,
        "arrival_step": arrival, "initial": initial, "fixed_server": fixed, "pending_pos": pend_pos,
    })
    for col in ("model", "config_id"):
        if col in vms.columns:
            table[col] = vms[col].to_numpy(object)

    outside = _outside_series(inv, times, warnings)
    # Events: limits and outside temperature inside the window.
    parsed = parse_events(events, inst.aisle_ids)
    limits = apply_events(parsed, inst.row_ids, inst.row_limit_kw, inst.aisle_ids, inst.aisle_limit_cfm)
    warnings += list(limits.notes)
    gp = table["gpus"].to_numpy(float)
    iaas_demand = np.nansum(np.nan_to_num(vm_load) * gp[:, None], axis=0)
    ep_gpus = np.bincount(endpoint_idx[endpoint_idx >= 0], gp[endpoint_idx >= 0], minlength=len(endpoint_ids))
    demand = iaas_demand + (endpoint_load * ep_gpus[:, None]).sum(axis=0)
    mask = _event_window(dataclasses.replace(opts, events=events), times, demand)
    warnings += event_window_warnings(opts, events, times, mask)
    row_limit = np.where(mask[None, :], limits.row_limit_kw[:, None], inst.row_limit_kw[:, None])
    aisle_limit = np.where(mask[None, :], limits.aisle_limit_cfm[:, None], inst.aisle_limit_cfm[:, None])
    shift = np.where(mask, limits.outside_shift_c, 0.0)
    name = f"{inst.name}" + (f" +{oversubscription:.0%} servers" if oversubscription else "") + \
        (f" SaaS {saas_share:.0%}" if saas_share is not None else "")
    return Scenario(name=name, prepared=prepared, times=times, step_min=opts.step_min, vms=table,
                    vm_load=vm_load, endpoint_ids=endpoint_ids, endpoint_load=endpoint_load, outside_c=outside,
                    outside_shift_c=shift, row_limit_kw=row_limit, aisle_limit_cfm=aisle_limit, event_mask=mask,
                    events=events, sources=sources, options=opts, warnings=warnings)
