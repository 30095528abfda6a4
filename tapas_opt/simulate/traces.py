"""Real load for the simulator: a seeded, documented mapping of public traces onto VMs.

Every VM belongs to a *family*: its endpoint (SaaS) or its customer (IaaS; a VM without a
customer is its own family). Each family draws one real source series; each VM of an IaaS
family follows it with its own scale. The mapping gives, for the same VMs, both the **history**
the planner forecasts from (hourly, four weeks before the simulated week) and the **actual**
load of the simulated week (at the simulator's step): the planner never sees the week it is
judged on. The rules (every number is a field of :class:`TraceMapping`, documented in
docs/simulation.md):

SaaS endpoints: the Azure LLM inference week (``azure_llm_2024_minutes``; requests per minute
of the code or the conversation service, aligned by minute of the week), averaged over each
step, shifted by a whole number of hours (users in other time zones) and mapped affinely to a
per-GPU load between ``floor`` (the quietest five minutes of the week) and ``peak`` (the
busiest five minutes); each week's level is multiplied by a growth factor.

IaaS customers: either a Cornell BioHPC GPU server (``cornell_biohpc_gpu_servers``, hourly GPU
utilisation; a random window of consecutive weeks starting on a Monday, history and simulated
week being consecutive real weeks) or an Alibaba GenAI serving container
(``alibaba_genai_2026``, GPU duty cycle per minute over one day, normalised by its own maximum,
repeated every day with a per-day level factor and a random phase). The source value ``x`` in
0..1 becomes ``floor + (peak - floor) * x``.

Random draws come from ``numpy.random.SeedSequence([seed, crc32(name)])`` per family and per
VM, so a family's mapping does not change when other VMs are added (oversubscription study)
or removed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from tapas_opt.errors import InventoryError, Problem, problems_of

WEEK_MIN = 7 * 24 * 60
DAY_MIN = 24 * 60


@dataclass(frozen=True)
class TraceMapping:
    """Parameters of the seeded mapping from public traces to VMs (docs/simulation.md)."""

    seed: int = 0
    saas_floor: tuple[float, float] = (0.10, 0.25)
    """Per-GPU load of an endpoint in the trace's quietest 5 minutes: U(0.10, 0.25) (generate.py)."""
    saas_peak: tuple[float, float] = (0.70, 0.95)
    """Per-GPU load in the trace's busiest 5 minutes: U(0.70, 0.95) (generate.py)."""
    saas_shift_h: int = 3
    """Endpoint time shift: a whole number of hours in [-3, 3] (generate.py)."""
    week_growth: tuple[float, float] = (0.95, 1.05)
    """Each week's level (history weeks and the simulated week) x U(0.95, 1.05): week-to-week
    change that a weekly template cannot know in advance (assumption; the Azure data hold one week)."""
    saas_noise: float = 0.0
    """Standard deviation of added noise on a SaaS VM's history. Default none: under
    round-robin every VM of an endpoint carries the endpoint's per-GPU load."""
    iaas_alibaba_share: float = 0.5
    """Share of IaaS customers driven by an Alibaba serving container (the rest: Cornell servers)."""
    iaas_floor: tuple[float, float] = (0.05, 0.20)
    """IaaS load when the source shows an idle GPU: U(0.05, 0.20) (assumption: a rented GPU VM
    keeps some work resident)."""
    iaas_peak: tuple[float, float] = (0.80, 1.00)
    """IaaS load when the source is at its maximum: U(0.80, 1.00)."""
    vm_scale: tuple[float, float] = (0.85, 1.10)
    """Each IaaS VM's load is its customer's x U(0.85, 1.10) (generate.py), clipped to 0..1."""
    alibaba_day_factor: tuple[float, float] = (0.90, 1.10)
    """Alibaba containers cover one day: each day repeats it x U(0.90, 1.10)."""
    cornell_min_mean: float = 0.10
    """Cornell windows whose mean utilisation is below this are not used (idle research
    servers would be VMs nobody uses)."""
    cornell_min_coverage: float = 0.90
    """Cornell windows need this share of their hours measured (gaps are interpolated)."""
    alibaba_min_coverage: float = 0.90
    """Alibaba containers need this share of a day's minutes."""
    azure_min_coverage: float = 0.90
    """Each Azure service needs this share of the week's minutes (gaps are interpolated): a
    truncated file would otherwise be stretched flat over the week."""


@dataclass
class MappedLoad:
    """The mapping's output for one set of VMs.

    ``history``: long telemetry (``timestamp, vm_id, load``) of the VMs that have history;
    ``vm_load``: actual per-VM load [V, T] of IaaS VMs (NaN rows for SaaS VMs);
    ``endpoint_load``: actual per-GPU load of each endpoint [E, T];
    ``sources``: one line per family saying which trace drives it and how.
    """

    history: pd.DataFrame
    vm_load: np.ndarray
    endpoint_ids: np.ndarray
    endpoint_load: np.ndarray
    sources: pd.DataFrame
    warnings: list[str] = field(default_factory=list)


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(str(name).encode())]))


def family_of(vms: pd.DataFrame) -> pd.Series:
    """Family of each VM: endpoint for SaaS, customer for IaaS, else the VM itself."""
    endpoint = vms["endpoint"].astype(object)
    customer = vms["customer"].astype(object)
    fam = np.where((vms["kind"] == "saas") & endpoint.notna(), endpoint,
                   np.where(customer.notna(), customer, vms["vm_id"]))
    return pd.Series(fam, index=vms.index, dtype=object)


# ---- sources ----------------------------------------------------------------------------------

def _missing(data_dir: Path, *what: str) -> InventoryError:
    return InventoryError([Problem("missing_file", str(data_dir), f"real traces not found: {w}",
                                   "pass --traces DIR pointing at ../shared/data, or --actual FILE") for w in what])


def missing_traces(data_dir: str | Path, saas: bool, iaas: bool) -> list[str]:
    """The trace files :func:`map_loads` reads for a room with SaaS and/or IaaS VMs that
    ``data_dir`` lacks, each with what needs it: a what-if file says so when it is read, instead
    of every scenario failing when it runs (:func:`unusable_traces` then reads those present)."""
    from tapas_opt.forecast.public_data import CORNELL_SERVERS, alibaba_duty_path, azure_minutes_path, cornell_path

    data_dir = Path(data_dir)
    missing = []
    if saas and not azure_minutes_path(data_dir).is_file():
        missing.append(f"{azure_minutes_path(data_dir).relative_to(data_dir)} (SaaS endpoints)")
    if iaas and not any(cornell_path(data_dir, s).is_file() for s in CORNELL_SERVERS):
        first, last = cornell_path(data_dir, CORNELL_SERVERS[0]), cornell_path(data_dir, CORNELL_SERVERS[-1])
        missing.append(f"{first.parent.name}/{first.name} .. {last.name} (IaaS customers; any one will do)")
    if iaas and not alibaba_duty_path(data_dir).is_file():
        missing.append(f"{alibaba_duty_path(data_dir).relative_to(data_dir)} (IaaS customers)")
    return missing


def unusable_traces(data_dir: str | Path, saas: bool, iaas: bool, history_weeks: int = 4,
                    mapping: TraceMapping = TraceMapping()) -> list[str]:
    """What is wrong with trace files :func:`missing_traces` found present: each one
    :func:`map_loads` needs is read as it would be (cached, so a run in the same process reads
    it once), and the problem of a file that is not the expected one, or holds no usable
    series, is returned instead of failing every scenario when it runs."""
    return [str(p) for p in _present_trace_problems(str(data_dir), saas, iaas, mapping, history_weeks + 1)]


def _present_trace_problems(data_dir: str, saas: bool, iaas: bool, m: TraceMapping, weeks: int) -> list[Problem]:
    """The problems of the trace files a room with SaaS and/or IaaS VMs needs that are there
    (read as :func:`map_loads` reads them; ``weeks`` of Cornell windows): for a what-if file
    before any scenario runs, and beside the missing ones when a run stops on those."""
    from tapas_opt.forecast.public_data import CORNELL_SERVERS, alibaba_duty_path, azure_minutes_path, cornell_path

    readers = []
    if saas and azure_minutes_path(data_dir).is_file():
        readers.append(lambda: azure_minute_of_week(data_dir, m.azure_min_coverage))
    if iaas and any(cornell_path(data_dir, s).is_file() for s in CORNELL_SERVERS):
        readers.append(lambda: cornell_windows(data_dir, weeks, m.cornell_min_mean, m.cornell_min_coverage))
    if iaas and alibaba_duty_path(data_dir).is_file():
        readers.append(lambda: alibaba_days(data_dir, m.alibaba_min_coverage))
    return [p for read in readers for p in problems_of(read)]


@lru_cache(maxsize=4)
def azure_minute_of_week(data_dir: str, min_coverage: float = 0.90) -> dict[str, np.ndarray]:
    """Requests per minute of each Azure service by minute of the week (Monday 00:00 = 0); a
    service measured in under ``min_coverage`` of the week's minutes is a problem (one per
    service, raised together)."""
    from tapas_opt.forecast.public_data import azure_minutes_path, read_azure_minutes

    path = azure_minutes_path(data_dir)
    if not path.exists():
        raise _missing(Path(data_dir), str(path))
    out, problems = {}, []
    for service, series in read_azure_minutes(data_dir).items():
        idx = series.index
        mow = (idx.day_of_week * DAY_MIN + idx.hour * 60 + idx.minute).to_numpy()
        arr = np.full(WEEK_MIN, np.nan)
        arr[mow] = series.to_numpy(float)
        covered = np.isfinite(arr).mean()
        if covered < min_coverage:
            problems.append(Problem("bad_traces", str(path), f"service {service!r} has requests for {covered:.1%} "
                                    f"of the week's minutes, under the {min_coverage:.0%} the simulation needs (the "
                                    "rest would be interpolated flat)", "give the whole week's file (../shared/data's "
                                    "azure_llm_2024_minutes), or --actual FILE"))
        out[service] = pd.Series(arr).interpolate(limit_direction="both").to_numpy()
    if problems:
        raise InventoryError(problems)
    return out


@lru_cache(maxsize=4)
def cornell_windows(data_dir: str, weeks: int, min_mean: float, min_coverage: float) -> list[tuple[str, np.ndarray]]:
    """Every usable window of ``weeks`` consecutive weeks (Monday 00:00 starts) of each Cornell
    server's hourly utilisation (0..1), gaps interpolated: a list of (label, values[weeks*168])."""
    from tapas_opt.forecast.public_data import CORNELL_SERVERS, cornell_path, read_cornell

    out = []
    for server in CORNELL_SERVERS:
        path = cornell_path(data_dir, server)
        if not path.exists():
            continue
        util = (read_cornell(path)["utilave"] / 100.0).clip(0, 1)
        util = util[~util.index.duplicated()]
        first = util.index.min().normalize()
        first = first + pd.Timedelta(days=(7 - first.day_of_week) % 7)
        full = pd.date_range(first, util.index.max(), freq="60min")
        series = util.reindex(full)
        n = weeks * 168
        for start in range(0, len(series) - n + 1, 168):
            win = series.iloc[start:start + n]
            if win.notna().mean() < min_coverage:
                continue
            values = win.interpolate(limit_direction="both").to_numpy(float)
            if values.mean() < min_mean:
                continue
            out.append((f"{server}@{full[start].date()}", values))
    if not out:
        raise _missing(Path(data_dir), "cornell_biohpc_gpu_servers (no usable window)")
    return out


@lru_cache(maxsize=4)
def alibaba_days(data_dir: str, min_coverage: float) -> list[tuple[str, np.ndarray]]:
    """Each Alibaba container with enough of a day: (container, duty cycle per minute of its
    day [1440] normalised by its own maximum)."""
    from tapas_opt.forecast.public_data import alibaba_duty_path, read_alibaba_duty

    path = alibaba_duty_path(data_dir)
    if not path.exists():
        raise _missing(Path(data_dir), str(path))
    duty = read_alibaba_duty(data_dir)
    out = []
    for vm, grp in duty.groupby("vm_id", sort=True):
        ts = grp["timestamp"]
        minute = ((ts - ts.min()).dt.total_seconds() // 60).astype(int).to_numpy()
        minute = minute[minute < DAY_MIN]
        arr = np.full(DAY_MIN, np.nan)
        arr[minute] = grp["load"].to_numpy(float)[: len(minute)]
        if np.isfinite(arr).mean() < min_coverage:
            continue
        arr = pd.Series(arr).interpolate(limit_direction="both").to_numpy()
        top = arr.max()
        if top <= 0:
            continue
        out.append((vm, arr / top))
    if not out:
        raise _missing(Path(data_dir), "alibaba_genai_2026 (no usable container)")
    return out


def _step_mean(values: np.ndarray, period_min: int, offsets_min: np.ndarray, step_min: int,
               res_min: int = 1) -> np.ndarray:
    """Mean of a periodic series (sampled every ``res_min`` minutes) over [t, t + step) for
    each offset (minutes since the period's start), wrapping around the period."""
    per = np.asarray(values, float)
    n = len(per)
    cum = np.concatenate([[0.0], np.cumsum(np.concatenate([per, per]))])
    start = (np.asarray(offsets_min) // res_min) % n
    width = max(1, step_min // res_min)
    return (cum[start + width] - cum[start]) / width


def _weeks_since(ts: pd.DatetimeIndex, week0: pd.Timestamp) -> np.ndarray:
    return np.floor((ts - week0) / pd.Timedelta(days=7)).astype(int)


# ---- the mapping ------------------------------------------------------------------------------

def map_loads(vms: pd.DataFrame, start: pd.Timestamp, sim_times: pd.DatetimeIndex, sim_step_min: int,
              history_step_min: int, with_history: np.ndarray, data_dir: str | Path,
              mapping: TraceMapping = TraceMapping(), history_weeks: int = 4) -> MappedLoad:
    """Map real traces onto ``vms`` (columns vm_id, kind, customer, endpoint, gpus).

    ``start`` is the first instant of the simulated week (the planner's horizon start);
    ``with_history`` flags the VMs that ran before it (they get ``history_weeks`` of hourly
    telemetry). Returns :class:`MappedLoad`.
    """
    data_dir = str(data_dir)
    vms = vms.reset_index(drop=True)
    fam = family_of(vms)
    hist_times = pd.date_range(start - pd.Timedelta(days=7 * history_weeks), start, freq=f"{history_step_min}min",
                               inclusive="left")
    week0 = start - pd.Timedelta(days=7 * history_weeks)
    n_weeks = history_weeks + 1
    m = mapping

    def mow(ts: pd.DatetimeIndex) -> np.ndarray:
        return (ts.day_of_week * DAY_MIN + ts.hour * 60 + ts.minute).to_numpy()

    sources = []
    family_series: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # family -> (history, actual)
    kinds = vms.groupby(fam, sort=True)["kind"].first()
    need_iaas = (kinds == "iaas").any()
    need_saas = bool((kinds == "saas").any())
    missing = missing_traces(data_dir, need_saas, need_iaas)
    problems = _missing(Path(data_dir), *missing).problems if missing else []
    problems += _present_trace_problems(data_dir, need_saas, need_iaas, m, n_weeks)  # (cached reads)
    if problems:  # every file's at once
        raise InventoryError(problems)
    azure = azure_minute_of_week(data_dir, m.azure_min_coverage) if need_saas else None
    cornell = cornell_windows(data_dir, n_weeks, m.cornell_min_mean, m.cornell_min_coverage) if need_iaas else []
    alibaba = alibaba_days(data_dir, m.alibaba_min_coverage) if need_iaas else []
    five = {}
    if azure is not None:
        for service, arr in azure.items():
            per5 = _step_mean(arr, WEEK_MIN, np.arange(0, WEEK_MIN, 5), 5)
            five[service] = (per5.min(), per5.max())

    for name, kind in kinds.items():
        rng = _rng(m.seed, f"family:{name}")
        growth = rng.uniform(*m.week_growth, n_weeks)
        if kind == "saas":
            service = "code" if rng.random() < 0.5 else "conv"
            shift = int(rng.integers(-m.saas_shift_h, m.saas_shift_h + 1))
            floor, peak = rng.uniform(*m.saas_floor), rng.uniform(*m.saas_peak)
            lo, hi = five[service]

            def series(ts, step, service=service, shift=shift, floor=floor, peak=peak, lo=lo, hi=hi):
                x = _step_mean(azure[service], WEEK_MIN, mow(ts) - 60 * shift, step)
                shape = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
                w = np.clip(_weeks_since(ts, week0), 0, n_weeks - 1)
                return np.clip(floor + (peak - floor) * shape * growth[w], 0.0, 1.0)

            desc = f"azure-2024 {service} shift {shift:+d} h, floor {floor:.2f}, peak {peak:.2f}"
        elif rng.random() < m.iaas_alibaba_share:
            label, day = alibaba[int(rng.integers(len(alibaba)))]
            phase = int(rng.integers(0, 24)) * 60
            floor, peak = rng.uniform(*m.iaas_floor), rng.uniform(*m.iaas_peak)
            day_factor = rng.uniform(*m.alibaba_day_factor, 7 * n_weeks)

            def series(ts, step, day=day, phase=phase, floor=floor, peak=peak, day_factor=day_factor):
                mod = (ts.hour * 60 + ts.minute).to_numpy()
                x = _step_mean(day, DAY_MIN, mod + phase, step)
                d = np.clip(np.floor((ts - week0) / pd.Timedelta(days=1)).astype(int), 0, len(day_factor) - 1)
                return np.clip(floor + (peak - floor) * np.clip(x * day_factor[d], 0, 1), 0.0, 1.0)

            desc = f"alibaba-2026 container {label[:12]} phase {phase // 60} h, floor {floor:.2f}, peak {peak:.2f}"
        else:
            label, values = cornell[int(rng.integers(len(cornell)))]
            floor, peak = rng.uniform(*m.iaas_floor), rng.uniform(*m.iaas_peak)

            def series(ts, step, values=values, floor=floor, peak=peak):
                h = np.clip(np.floor((ts - week0) / pd.Timedelta(hours=1)).astype(int), 0, len(values) - 1)
                return np.clip(floor + (peak - floor) * values[h], 0.0, 1.0)

            desc = f"cornell {label} (5 consecutive weeks), floor {floor:.2f}, peak {peak:.2f}"
        family_series[name] = (series(hist_times, history_step_min), series(sim_times, sim_step_min))
        sources.append({"family": name, "kind": kind, "source": desc,
                        "week_growth": " ".join(f"{g:.3f}" for g in growth)})

    # Per VM: IaaS scale; SaaS history noise.
    n_t = len(sim_times)
    vm_load = np.full((len(vms), n_t), np.nan)
    parts = []
    for i, vm in enumerate(vms.itertuples(index=False)):
        rng = _rng(m.seed, f"vm:{vm.vm_id}")
        hist, actual = family_series[fam[i]]
        if vm.kind == "saas":
            h = np.clip(hist + rng.normal(0.0, m.saas_noise, len(hist)), 0.0, 1.0)
        else:
            scale = rng.uniform(*m.vm_scale)
            h = np.clip(hist * scale, 0.0, 1.0)
            vm_load[i] = np.clip(actual * scale, 0.0, 1.0)
        if with_history[i]:
            parts.append(pd.DataFrame({"timestamp": hist_times, "vm_id": vm.vm_id, "load": np.round(h, 4)}))
    history = (pd.concat(parts, ignore_index=True).sort_values(["timestamp", "vm_id"], kind="stable")
               .reset_index(drop=True) if parts else pd.DataFrame({"timestamp": pd.to_datetime([]), "vm_id": [],
                                                                   "load": []}))
    saas = vms[vms["kind"] == "saas"]
    endpoint_ids = np.asarray(pd.unique(fam[saas.index]), dtype=object)
    endpoint_load = np.array([family_series[e][1] for e in endpoint_ids]).reshape(len(endpoint_ids), n_t)
    return MappedLoad(history, vm_load, endpoint_ids, endpoint_load, pd.DataFrame(sources))
