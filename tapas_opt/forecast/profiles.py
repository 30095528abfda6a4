"""Turn an inventory into load profiles for every VM over the horizon.

Order of preference per VM: a profile the operator supplied (``--profiles``); the
forecaster's own forecast from the VM's telemetry; the profile of a VM drawn from the same
endpoint (SaaS) or customer (IaaS); full load (the paper's "assume the peak" for a VM nothing is
known about). The method each VM got is kept and reported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tapas_opt.config import QUANTILES
from tapas_opt.errors import InventoryError, Problem, first_problems, missing_columns
from tapas_opt.forecast.base import (ASSUMED_PEAK, QUANTILE_LEVELS, Forecaster, LoadProfiles, horizon_start,
                                     make_horizon)
from tapas_opt.forecast.select import default_forecaster
from tapas_opt.inventory.load import Inventory, line_mapper, load_inventory_with, read_user_table
from tapas_opt.timestamps import ISO_HINT, describe, parse_timestamps


def inventory_horizon(inventory: Inventory) -> pd.DatetimeIndex:
    cfg = inventory.config
    start = horizon_start(inventory.telemetry, cfg.time_step_min, cfg.start)
    return make_horizon(start, cfg.n_slots, cfg.time_step_min)


def _first_row(frame: pd.DataFrame, i) -> int:
    """Index of the first row with the same VM and timestamp as row ``i``."""
    same = (frame["vm_id"] == frame.at[i, "vm_id"]) & (frame["timestamp"] == frame.at[i, "timestamp"])
    return frame.index[same][0]


def _load_problem_code(raw, value) -> str:
    """Why a load cell was refused: empty, not a number, or a number outside 0..1."""
    if pd.isna(raw) or (isinstance(raw, str) and not raw.strip()):
        return "missing_value"
    return "bad_type" if pd.isna(value) else "out_of_range"


def _load_problem_text(raw, code: str) -> str:
    if code == "missing_value":
        return "the load is empty"
    if code == "bad_type":
        return f"{str(raw)!r} is not a number (decimal point '.', no unit or %)"
    return f"load {float(raw):g} is outside 0..1"


MIXTURE_TOLERANCE = 1e-6
"""Load tolerance of :func:`mixture_quantiles` (loads are shares of a GPU, 0..1)."""
MIXTURE_MAX_MEMBERS = 200
"""Members a mixture is computed over: a larger group is represented by this many of its VMs,
evenly spaced in the order of their mean P99 (the busy tail stays in), to bound the time."""


def _member_cdf(x: np.ndarray, knots: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Each member's load CDF at ``x`` [T]: linear between its quantile knots [M, K, T], which
    lie at ``levels`` [K] (from load 0 at level 0 to load 1 at level 1); right-continuous where
    two knots coincide."""
    seg = np.minimum((x[None, None, :] >= knots[:, 1:]).sum(axis=1), len(levels) - 2)  # [M, T]
    lo = np.take_along_axis(knots, seg[:, None, :], axis=1)[:, 0]
    hi = np.take_along_axis(knots, seg[:, None, :] + 1, axis=1)[:, 0]
    width = hi - lo
    frac = np.divide(x - lo, width, out=(x >= hi).astype(float), where=width > 1e-12)
    return levels[seg] + (levels[seg + 1] - levels[seg]) * np.clip(frac, 0.0, 1.0)


def _representatives(members: np.ndarray) -> np.ndarray:
    """At most MIXTURE_MAX_MEMBERS of ``members`` [M, 3, T], spread over their mean P99."""
    if len(members) <= MIXTURE_MAX_MEMBERS:
        return members
    order = np.argsort(members[:, -1].mean(axis=1), kind="stable")
    return members[order[np.linspace(0, len(members) - 1, MIXTURE_MAX_MEMBERS).round().astype(int)]]


def mixture_quantiles(members: np.ndarray) -> np.ndarray:
    """P50/P90/P99 [3, T] of a VM drawn at random from ``members`` [M, 3, T] (their P50/P90/P99).

    A new VM borrows its endpoint's or customer's profile because it is expected to behave like
    one of their VMs, not like their average: its load at a slot follows the equal mixture of
    the members' distributions, each read from its three quantiles (linear in between, load 0 at
    level 0 and 1 at level 1). The mixture's P50 is near the members' mean P50, but its P99 sits
    near the P99 of the busier members: the mean of the members' P99, used before, is exceeded
    by a VM drawn from a customer of unlike VMs far more than 1 % of the time (on the
    simulator's generated rooms, by new IaaS VMs in 26-41 % of their hours; the mixture in
    13-20 %; BENCHMARKS.md). Members with identical profiles give their own profile back.
    Solved per slot by bisection between the lowest and highest member quantile (the mixture's
    lies between them), on the slots whose bracket is still wider than MIXTURE_TOLERANCE."""
    m = np.clip(np.maximum.accumulate(np.asarray(members, float), axis=1), 0.0, 1.0)
    m = _representatives(m)
    n, _, n_slots = m.shape
    knots = np.concatenate([np.zeros((n, 1, n_slots)), m, np.ones((n, 1, n_slots))], axis=1)
    levels = np.array([0.0, *(QUANTILE_LEVELS[q] for q in QUANTILES), 1.0])
    out = np.empty((len(QUANTILES), n_slots))
    for j, q in enumerate(QUANTILES):
        level = QUANTILE_LEVELS[q]
        lo, hi = m[:, j].min(axis=0), m[:, j].max(axis=0)
        open_ = np.flatnonzero(hi - lo > MIXTURE_TOLERANCE)
        while len(open_):
            mid = 0.5 * (lo[open_] + hi[open_])
            enough = _member_cdf(mid, knots[:, :, open_], levels).mean(axis=0) >= level - 1e-12
            hi[open_[enough]], lo[open_[~enough]] = mid[enough], mid[~enough]
            open_ = open_[hi[open_] - lo[open_] > MIXTURE_TOLERANCE]
        out[j] = hi
    return out


def _borrow(vms: pd.DataFrame, known: dict[str, dict[str, np.ndarray]], key: str,
            wanted: set) -> dict[str, dict[str, np.ndarray]]:
    """Per value of ``key`` (endpoint or customer) in ``wanted``: the profile of a VM drawn from
    the VMs of that value that have one (:func:`mixture_quantiles`)."""
    groups: dict[str, dict[str, np.ndarray]] = {}
    sub = vms[vms["vm_id"].isin(known.keys()) & vms[key].isin(wanted)]
    for value, members in sub.groupby(key, sort=True)["vm_id"]:
        stacked = np.stack([np.stack([known[v][q] for q in QUANTILES]) for v in members])
        groups[value] = dict(zip(QUANTILES, mixture_quantiles(stacked)))
    return groups


def build_profiles(inventory: Inventory, forecaster: Forecaster | None = None,
                   supplied: LoadProfiles | None = None) -> LoadProfiles:
    """Profiles for every VM of the inventory (running and pending), with the method per VM.

    The default forecaster is :class:`~tapas_opt.forecast.select.AutoForecaster`: per VM, the
    method that back-tests best on the VM's own history (statsmodels models where they win),
    the paper's templates among the candidates. Pass ``TemplateForecaster(step)`` for the
    paper's method alone.

    A VM without telemetry borrows as the paper says (TAPAS.md section 3): an IaaS VM from its
    customer's VMs, a SaaS VM from its endpoint's (the profile of one more of their VMs,
    :func:`mixture_quantiles`); with nothing to borrow it is assumed at full load. A SaaS VM of a
    new endpoint does not borrow its customer's: the customer of SaaS
    VMs is the provider's LLM service, whose endpoints serve other models and traffic, and the
    mean of their P99 curves, peaking at different hours, lies below the peak of any one of
    them (on the simulator's generated rooms it planned new endpoints at P99 0.68 that peaked
    at 0.81-0.94 of their GPUs).
    """
    horizon = inventory_horizon(inventory)
    n_slots = len(horizon)
    forecaster = forecaster or default_forecaster(inventory.config.time_step_min)
    known: dict[str, dict[str, np.ndarray]] = {}
    method: dict[str, str] = {}
    # VMs whose profile the operator supplied need no forecast.
    history = inventory.telemetry
    if supplied is not None:
        history = history[~history["vm_id"].isin(set(supplied.vm_ids))]
    if len(history):
        forecaster.fit(history)
        if hasattr(forecaster, "predict_array"):  # vectorised forecasters skip the long frame
            values = forecaster.predict_array(horizon)
            methods = forecaster.methods_  # after predicting: a failed refit changes the method
            for i, vm_id in enumerate(forecaster.vm_ids_):
                known[vm_id] = {q: values[i, :, k] for k, q in enumerate(QUANTILES)}
                method[vm_id] = str(methods.get(vm_id, forecaster.name))
        else:
            frame = forecaster.predict(horizon)
            methods = forecaster.methods_
            for vm_id, block in frame.groupby(level="vm_id", sort=False):
                known[vm_id] = {q: block[q].to_numpy(float) for q in QUANTILES}
                method[vm_id] = str(methods.get(vm_id, forecaster.name))
    if supplied is not None:
        for i, vm_id in enumerate(supplied.vm_ids):
            known[vm_id] = {q: supplied.values[q][i] for q in QUANTILES}
            method[vm_id] = "supplied"
    vms = inventory.vms
    unknown = vms[~vms["vm_id"].isin(known.keys())]
    by_endpoint = _borrow(vms, known, "endpoint", set(unknown.loc[unknown["kind"] == "saas", "endpoint"].dropna()))
    by_customer = _borrow(vms, known, "customer", set(unknown.loc[unknown["kind"] == "iaas", "customer"].dropna()))
    full = {q: np.ones(n_slots) for q in QUANTILES}
    values = {q: np.empty((len(vms), n_slots)) for q in QUANTILES}
    for i, vm in enumerate(vms.itertuples(index=False)):
        if vm.vm_id in known:
            prof = known[vm.vm_id]
        elif vm.kind == "saas" and isinstance(vm.endpoint, str) and vm.endpoint in by_endpoint:
            prof, method[vm.vm_id] = by_endpoint[vm.endpoint], "borrowed-endpoint"
        elif vm.kind == "iaas" and isinstance(vm.customer, str) and vm.customer in by_customer:
            prof, method[vm.vm_id] = by_customer[vm.customer], "borrowed-customer"
        else:
            prof, method[vm.vm_id] = full, ASSUMED_PEAK
        for q in QUANTILES:
            values[q][i] = prof[q]
    vm_ids = pd.Index(vms["vm_id"], name="vm_id")
    # Quantile bands must not cross (p50 <= p90 <= p99) whatever the source.
    values["p90"] = np.maximum(values["p90"], values["p50"])
    values["p99"] = np.maximum(values["p99"], values["p90"])
    return LoadProfiles(horizon, vm_ids, values, pd.Series(method).reindex(vm_ids))


def _profile_rows(path: Path) -> tuple[pd.DataFrame, list[Problem], pd.Series]:
    """The rows of a ``profiles.csv`` parsed, the problems they have on their own (no inventory
    needed: timestamps, values, crossed bands, a VM and slot given twice) and which rows have a
    bad timestamp. Missing columns raise at once."""
    file = path.name
    problems: list[Problem] = []
    frame = read_user_table(path)
    missing = missing_columns(file, frame.columns, ("vm_id", "timestamp", *QUANTILES),
                              "columns: vm_id, timestamp, p50, p90, p99")
    if missing:
        raise InventoryError(missing)
    frame = frame.copy()
    raw = frame.copy()
    frame["timestamp"], reasons = parse_timestamps(raw["timestamp"])
    for q in QUANTILES:
        frame[q] = pd.to_numeric(frame[q], errors="coerce")
    line_of = line_mapper(path)

    def listed(code: str, items, make) -> None:
        problems.extend(first_problems(code, file, items, make))

    listed("missing_value", frame.index[frame["vm_id"].isna()], lambda i: Problem(
        "missing_value", file, "the vm_id is empty", "give the VM each row is about", line_of(i), "vm_id"))
    listed("bad_timestamp", frame.index[reasons.notna()], lambda i: Problem(
        "bad_timestamp", file, f"timestamp {describe(raw.at[i, 'timestamp'])} {reasons[i]}", ISO_HINT,
        line_of(i), "timestamp"))
    cells: dict[str, list] = {"missing_value": [], "bad_type": [], "out_of_range": []}
    for q in QUANTILES:
        for i in frame.index[frame[q].isna() | (frame[q] < 0) | (frame[q] > 1)]:
            cells[_load_problem_code(raw.at[i, q], frame.at[i, q])].append((i, q))
    for code, where in cells.items():
        listed(code, where, lambda c, code=code: Problem(code, file, _load_problem_text(raw.at[c[0], c[1]], code),
                                                         "loads are fractions of the VM's GPUs, 0..1",
                                                         line_of(c[0]), c[1]))
    crossed = (frame["p50"] > frame["p90"] + 1e-9) | (frame["p90"] > frame["p99"] + 1e-9)
    listed("crossed_bands", frame.index[crossed], lambda i: Problem(
        "crossed_bands", file, f"p50 {frame.at[i, 'p50']:g}, p90 {frame.at[i, 'p90']:g}, p99 {frame.at[i, 'p99']:g}: "
        "the bands cross", "give p50 <= p90 <= p99 (each band a quantile of the same load: higher bands, "
        "higher loads)", line_of(i), "p90" if frame.at[i, "p50"] > frame.at[i, "p90"] + 1e-9 else "p99"))
    twice = frame["timestamp"].notna() & frame.duplicated(["vm_id", "timestamp"], keep="first")
    listed("duplicate_row", frame.index[twice], lambda i: Problem(
        "duplicate_row", file, f"VM {frame.at[i, 'vm_id']!r} at {frame.at[i, 'timestamp']} is given again (first "
        f"on line {line_of(_first_row(frame, i))})", "give one row per VM and slot", line=line_of(i),
        column="timestamp"))
    return frame, problems, reasons.notna()


def load_with_profiles(inventory, profiles_path: Path | str | None, *file_checks,
                       read: bool = True) -> tuple[Inventory, LoadProfiles | None]:
    """The inventory (loaded unless given loaded) and the operator's profiles, if any; when both
    are broken, every problem of both (and of the command's other ``file_checks``, as
    :func:`~tapas_opt.inventory.load.load_inventory_with` takes them) in one error. ``read``
    False leaves reading the profiles against the loaded room to the caller (None), which can
    then list their problems with its own."""
    checks = [lambda: _profile_rows(Path(profiles_path))[1]] if profiles_path else []
    inv = load_inventory_with(inventory, *checks, *file_checks)
    return inv, (read_profiles(profiles_path, inv) if profiles_path and read else None)


def read_profiles(path: Path | str, inventory: Inventory) -> LoadProfiles:
    """Read an operator's ``profiles.csv`` (format of ``tapas-opt forecast``) for this inventory.

    Raises :class:`InventoryError` listing every problem at once: unknown VMs, a VM and slot
    given twice (which row holds the peak is not ours to guess), slots of the horizon missing,
    rows between slots, values that are not numbers or outside 0..1, quantile bands that cross
    (the first 20 of each kind, then how many more). VMs of the inventory the file does not
    cover are forecast by ``place`` itself; that is added to the inventory's warnings.
    """
    path = Path(path)
    file = path.name
    frame, problems, bad_time = _profile_rows(path)
    line_of = line_mapper(path)
    known = set(inventory.vms["vm_id"])
    unknown = frame["vm_id"].notna() & ~frame["vm_id"].isin(known)
    first_of = frame.index[unknown].to_series().groupby(frame.loc[unknown, "vm_id"], sort=False).agg(["first", "size"])
    problems += first_problems("unknown_vm", file, first_of.itertuples(), lambda r: Problem(
        "unknown_vm", file, f"vm_id {r.Index!r} is not in vms.csv ({r.size} row(s), the first here)",
        "remove its rows, or add the VM to the inventory", line=line_of(r.first), column="vm_id"))
    horizon = inventory_horizon(inventory)
    step = inventory.config.time_step_min
    inside = frame["timestamp"].between(horizon[0], horizon[-1])
    off_grid = inside & ~frame["timestamp"].isin(horizon)
    if off_grid.any():
        first = frame.index[off_grid][0]
        problems.append(Problem("off_grid", file, f"{int(off_grid.sum())} row(s) fall between the horizon's "
                                f"{step}-minute slots (e.g. {frame.at[first, 'timestamp']}): "
                                f"they would be dropped, with any peak they hold",
                                f"give one row per VM and slot, every {step} min from "
                                f"{horizon[0]} (forecast the room with its own step)", line=line_of(first),
                                column="timestamp"))
    # Gaps of the VMs the file is about (known VMs; one with a bad timestamp has that reported).
    covered = frame[frame["timestamp"].isin(horizon)].groupby("vm_id")["timestamp"].nunique()
    timeless = set(frame.loc[bad_time, "vm_id"])
    vms = [v for v in pd.unique(frame["vm_id"]) if v in known and v not in timeless]
    counts = covered.reindex(vms).fillna(0)
    problems += first_problems("profile_gap", file, counts[counts < len(horizon)].items(), lambda item: Problem(
        "profile_gap", file, f"VM {item[0]!r} covers {int(item[1])} of the {len(horizon)} slots from "
        f"{horizon[0]} every {step} min", "give every slot of the horizon (see datacenter.yaml start/horizon_h)"))
    if problems:
        raise InventoryError(problems)
    outside = frame["timestamp"].notna() & ~inside
    if outside.any():
        times = frame.loc[outside, "timestamp"]
        inventory.warnings.append(Problem(
            "profiles_outside_horizon", file, f"{int(outside.sum())} row(s) from {times.min()} to {times.max()} fall "
            f"outside the horizon ({horizon[0]} to {horizon[-1]}) and are not used",
            "check datacenter.yaml start and horizon_h, or drop those rows", line=line_of(times.index[0]),
            column="timestamp"))
    left = inventory.vms.loc[~inventory.vms["vm_id"].isin(set(frame["vm_id"])), "vm_id"]
    if len(left):
        inventory.warnings.append(Problem(
            "profiles_incomplete", file, f"{len(left)} of the inventory's {len(inventory.vms)} VM(s) have no rows "
            f"here (e.g. {', '.join(repr(v) for v in left[:3])}) and are forecast by tapas-opt instead (from their telemetry, or borrowed from their customer or endpoint)",
            "give them rows too if these are meant to be your forecasts"))
    return LoadProfiles.from_frame(frame[frame["timestamp"].isin(horizon)], horizon)


def outside_forecast(inventory: Inventory, horizon: pd.DatetimeIndex) -> np.ndarray:
    """Outside temperature per horizon slot.

    Values in ``outside.csv`` that fall in the horizon are used as the weather forecast; other
    slots take the hottest value seen at that hour of day over the last 14 days of the file; with
    no file, ``inlet.default_outside_c`` from datacenter.yaml.
    """
    default = inventory.config.inlet.default_outside_c
    out = inventory.outside
    if out is None or len(out) == 0:
        return np.full(len(horizon), default)
    step = f"{inventory.config.time_step_min}min"
    series = out.dropna().groupby(out["timestamp"].dt.floor(step))["temp_c"].mean()
    result = series.reindex(horizon).to_numpy(float)
    past = series[series.index < horizon[0]]
    past = past[past.index >= horizon[0] - pd.Timedelta(days=14)]
    if len(past):
        hourly_max = past.groupby(past.index.hour).max()
        fill = hourly_max.reindex(horizon.hour).to_numpy(float)
        fill = np.where(np.isnan(fill), past.max(), fill)
    else:
        fill = np.full(len(horizon), default)
    return np.where(np.isnan(result), fill, result)
