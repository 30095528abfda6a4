"""The what-if scenario file: schema, validation with every problem at once, sweep expansion.

The format is documented in ``docs/whatif.md``. In short::

    name: summer-capacity
    base: ../example              # the inventory every scenario starts from (relative to this file)
    settings: {policy: greedy}    # how each scenario is planned and scored
    changes: {...}                # applied to every scenario
    scenarios:                    # listed scenarios (default: one, "base")
      - name: ups-failure
        changes: {failures: [ups-failure]}
    sweep:                        # a cartesian product, crossed with every listed scenario
      changes.add_servers.per_row: [0, 4, 8]

:func:`load_sweep` reads and validates a file and returns a :class:`Sweep` whose
:attr:`Sweep.scenarios` are fully resolved (settings and changes merged, sweep values set), each
with a stable id and a hash of everything its result depends on (so a re-run skips only
scenarios whose inputs did not change).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from tapas_opt import __version__
from tapas_opt.config import MAX_HORIZON_H, MAX_SEED, MAX_TIME_LIMIT_S, MIN_TIME_LIMIT_S, QUANTILES
from tapas_opt.errors import InventoryError, Problem
from tapas_opt.inventory.schema import Bounds, column_bounds
from tapas_opt.weather import day_of_year_hour, read_epw_dry_bulb
from tapas_opt.yamlfile import KeyLines, load_yaml, unreadable

MAX_SCENARIOS = 10_000
MAX_ID_CHARS = 150
EVALUATORS = ("predicted", "simulator")
POLICIES = ("optimal", "greedy", "tapas-rules", "first-fit", "random")
FORECAST_METHODS = ("auto", "template")

SETTINGS_DEFAULTS: dict[str, Any] = {
    "policy": "greedy",
    "forecast_method": "template",
    "evaluator": "predicted",
    "evaluate_quantile": "p50",
    "quantile": None,
    "time_limit_s": 20.0,
    "seed": 0,
    "horizon_h": None,
    "sim_policy": "place",
    "sim_step_min": 60,
    "traces": None,
}
"""Settings of a scenario and their defaults (docs/whatif.md explains each)."""

CHANGE_KINDS = ("add_servers", "load_growth", "outside", "failures", "limits")
_ADD_SERVERS_KEYS = {"per_row", "racks_per_row", "rows", "hardware", "fill"}
SERVER_COUNT_KEYS = ("per_row", "racks_per_row")
_HARDWARE_KEYS = {"gpus", "idle_power_kw", "max_power_kw", "idle_airflow_cfm", "max_airflow_cfm", "inlet_offset_c",
                  "gpu_temp_intercept_c", "gpu_temp_c_per_w"}
_LOAD_GROWTH_KEYS = {"all", "iaas", "saas", "customers", "endpoints"}
_OUTSIDE_KEYS = {"shift_c", "weather", "weather_start"}
_FAILURE_KEYS = {"events", "start_h", "hours"}
_LIMITS_KEYS = {"row_power_scale", "row_power_kw", "aisle_airflow_scale", "aisle_airflow_cfm", "gpu_temp_limit_c"}
_TOP_KEYS = {"name", "base", "settings", "changes", "scenarios", "sweep", "report"}
_REPORT_KEYS = {"capping_budgets_pct"}


@dataclass(frozen=True)
class ScenarioSpec:
    """One fully resolved scenario: what a worker needs to run it, and nothing else."""

    id: str
    name: str
    base: str
    settings: dict
    changes: dict
    parameters: dict
    spec_hash: str
    source_dir: str = "."

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "base": self.base, "settings": self.settings,
                "changes": self.changes, "parameters": self.parameters, "spec_hash": self.spec_hash}


@dataclass(frozen=True)
class Sweep:
    """A validated scenario file with its scenarios expanded."""

    name: str
    path: str
    base: str
    scenarios: list[ScenarioSpec]
    swept: list[str]
    report: dict = field(default_factory=dict)

    def by_id(self) -> dict[str, ScenarioSpec]:
        return {s.id: s for s in self.scenarios}


class _Checker:
    """Collects problems with the file, the line and the key path of each."""

    def __init__(self, file: str, lines: KeyLines):
        self.file, self.lines, self.problems = file, lines, []

    def bad(self, path: tuple, code: str, message: str, hint: str = "") -> None:
        where = ".".join(str(p) for p in path) or None
        self.problems.append(Problem(code, self.file, message, hint, self.lines.line(path), where))

    def mapping(self, value, path: tuple, allowed: set[str] | None = None) -> bool:
        if not isinstance(value, dict):
            self.bad(path, "bad_value", f"must be a mapping (key: value lines), not {_kind(value)}")
            return False
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    self.bad((*path, key), "unknown_key", f"unknown key {key!r}",
                             f"known keys: {', '.join(sorted(allowed))}")
        return True

    def number(self, value, path: tuple, lo: float | None = None, hi: float | None = None,
               integer: bool = False, lo_open: bool = False, hi_open: bool = False) -> bool:
        if not is_number(value):
            self.bad(path, "bad_type", f"{value!r} is not a {'whole ' if integer else ''}number")
            return False
        if integer and float(value) != int(value):
            self.bad(path, "bad_type", f"{value!r} is not a whole number")
            return False
        if lo is not None and (value <= lo if lo_open else value < lo):
            self.bad(path, "out_of_range", f"{value!r} must be {'>' if lo_open else '>='} {show(lo)}")
            return False
        if hi is not None and (value >= hi if hi_open else value > hi):
            self.bad(path, "out_of_range", f"{value!r} must be {'<' if hi_open else '<='} {show(hi)}")
            return False
        return True

    def bounded(self, value, path: tuple, bounds: Bounds) -> bool:
        """A number within ``bounds`` (an inventory column's, see :func:`column_bounds`)."""
        return self.number(value, path, bounds.lo, bounds.hi, bounds.integer, bounds.lo_open, bounds.hi_open)

    def choice(self, value, path: tuple, choices) -> bool:
        if value not in choices:
            self.bad(path, "bad_value", f"{value!r} is not one of {', '.join(map(str, choices))}")
            return False
        return True


def _kind(value) -> str:
    return {dict: "a mapping", list: "a list", str: "text", type(None): "empty"}.get(type(value), type(value).__name__)


def is_number(value) -> bool:
    """A finite int or float as YAML reads it (not a bool, whose type is an int)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(float(value))


def show(x: float) -> str:
    """A number as written: 2147483647 and 1000000, not 2.14748e+09 and 1e+06 (1e+300 stays)."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


# ---- the base inventory, for reference checks ---------------------------------------------------

POWER_PAIRS = (("idle_power_kw", "max_power_kw", "bad_power_range"),
               ("idle_airflow_cfm", "max_airflow_cfm", "bad_airflow_range"))
"""Server columns whose idle figure must not exceed the max (as servers.csv's check)."""


@dataclass(frozen=True)
class BaseFacts:
    """What the changes may refer to and are checked against, read from the base inventory.

    ``horizon_h``, ``time_step_min``, ``vm_kinds`` and ``hardware`` are known only for a valid
    base (a broken one is reported as such): ``hardware`` maps each row, and ``None`` the whole
    room, to the (lowest, highest) figure of each of :data:`POWER_PAIRS`' columns over its servers.
    """

    rows: frozenset
    aisles: frozenset
    customers: frozenset
    endpoints: frozenset
    horizon_h: float | None = None
    time_step_min: int | None = None
    vm_kinds: frozenset = frozenset()
    hardware: dict = field(default_factory=dict)


def base_facts(base: Path, inventory=None) -> BaseFacts:
    """The ids scenarios may name: from the loaded ``inventory`` when the base is valid, else
    read from its tables as they are (so that a broken base still gets its ids checked); the
    horizon, VM kinds and server figures of a valid base."""
    from tapas_opt.inventory.load import find_table, read_table

    def table(name: str) -> pd.DataFrame:
        if inventory is not None:
            return getattr(inventory, name)
        path = find_table(base, name)
        return read_table(path) if path is not None else pd.DataFrame()

    def ids(frame: pd.DataFrame, col: str) -> frozenset:
        return frozenset(frame[col].dropna().astype(str)) if col in frame.columns else frozenset()

    vms = table("vms")
    facts = BaseFacts(ids(table("rows"), "row_id"), ids(table("aisles"), "aisle_id"), ids(vms, "customer"),
                      ids(vms, "endpoint"))
    if inventory is None:
        return facts
    return replace(facts, horizon_h=float(inventory.config.horizon_h), time_step_min=int(inventory.config.time_step_min),
                   vm_kinds=ids(vms, "kind"), hardware=_hardware_ranges(inventory.servers))


def _hardware_ranges(servers: pd.DataFrame) -> dict:
    """Per row (and ``None``: the whole room) the lowest and highest of each idle/max column and
    of ``gpus``: added servers are clones of their row's servers (of the room's in a row without
    any)."""
    cols = [c for pair in POWER_PAIRS for c in pair[:2]] + ["gpus"]
    out = {None: {c: (float(servers[c].min()), float(servers[c].max())) for c in cols}} if len(servers) else {}
    for row, grp in servers.groupby(servers["row_id"].astype(str)):
        out[row] = {c: (float(grp[c].min()), float(grp[c].max())) for c in cols}
    return out


# ---- validation of one scenario's settings and changes -------------------------------------------

def check_settings(settings: dict, c: _Checker, path: tuple) -> None:
    if not c.mapping(settings, path, set(SETTINGS_DEFAULTS)):
        return
    for key, value in settings.items():
        p = (*path, key)
        if key == "policy":
            c.choice(value, p, POLICIES)
        elif key == "forecast_method":
            c.choice(value, p, FORECAST_METHODS)
        elif key == "evaluator":
            c.choice(value, p, EVALUATORS)
        elif key == "evaluate_quantile":
            c.choice(value, p, QUANTILES)
        elif key == "quantile":
            if value is not None:
                c.choice(value, p, QUANTILES)
        elif key == "time_limit_s":
            c.number(value, p, MIN_TIME_LIMIT_S, MAX_TIME_LIMIT_S)
        elif key == "seed":
            c.number(value, p, 0, MAX_SEED, integer=True)
        elif key == "horizon_h":
            if value is not None:
                c.number(value, p, 1, MAX_HORIZON_H, integer=True)
        elif key == "sim_step_min":
            c.number(value, p, 1, 60, integer=True)
            if isinstance(value, int) and 1 <= value <= 60 and 60 % value:
                c.bad(p, "bad_value", f"{value} does not divide an hour", "use 5, 10, 15, 30 or 60")
        elif key == "sim_policy":
            from tapas_opt.simulate.policies import POLICIES as SIM_POLICIES

            if value is not None:
                c.choice(value, p, tuple(SIM_POLICIES))
        elif key == "traces":
            if value is not None and not isinstance(value, str):
                c.bad(p, "bad_type", f"{value!r} must be text")
            elif value is not None and not Path(value).is_dir():
                c.bad(p, "missing_file", f"traces directory {value!r} not found",
                      "the folder of the real traces (../shared/data), relative to where tapas-opt runs")


def _id_map(value, c: _Checker, path: tuple, known: frozenset, what: str, lo: float, integer: bool,
            lo_open: bool = False, hi: float | None = None) -> None:
    if not c.mapping(value, path):
        return
    for key, v in value.items():
        if known and str(key) not in known:
            c.bad((*path, key), f"unknown_{what}", f"{what} {key!r} is not in the base inventory",
                  f"{what}s: {', '.join(sorted(known)[:12])}{' ...' if len(known) > 12 else ''}")
        c.number(v, (*path, key), lo, hi, integer=integer, lo_open=lo_open)


def check_changes(changes: dict, c: _Checker, path: tuple, facts: BaseFacts, source_dir: Path) -> None:
    """Each value of one part of a file (its common changes, a listed scenario's own, a sweep
    value) as written. Rules that tie keys together (per_row or racks_per_row, idle below max,
    a failure within the horizon) may be met by another part: :func:`check_scenarios` applies
    them to every scenario as merged."""
    if not c.mapping(changes, path, set(CHANGE_KINDS)):
        return
    for kind, value in changes.items():
        p = (*path, kind)
        if value is None:
            continue
        if kind == "add_servers":
            _check_add_servers(value, c, p, facts)
        elif kind == "load_growth":
            if not c.mapping(value, p, _LOAD_GROWTH_KEYS):
                continue
            for key in ("all", "iaas", "saas"):
                if key in value:
                    c.number(value[key], (*p, key), 0, lo_open=True)
            if "customers" in value:
                _id_map(value["customers"], c, (*p, "customers"), facts.customers, "customer", 0, False, True)
            if "endpoints" in value:
                _id_map(value["endpoints"], c, (*p, "endpoints"), facts.endpoints, "endpoint", 0, False, True)
        elif kind == "outside":
            if not c.mapping(value, p, _OUTSIDE_KEYS):
                continue
            if "shift_c" in value:
                c.number(value["shift_c"], (*p, "shift_c"), -30, 30)
            if "weather" in value:
                w = value["weather"]
                if not isinstance(w, str) or not (source_dir / w).is_file():
                    c.bad((*p, "weather"), "missing_file", f"weather file {w!r} not found",
                          f"give an EnergyPlus .epw path relative to {source_dir}")
                else:
                    try:
                        read_epw_dry_bulb(source_dir / w)
                    except InventoryError as exc:
                        c.bad((*p, "weather"), "bad_weather_file", f"{w!r}: {exc.problems[0].message}",
                              exc.problems[0].hint)
            if "weather_start" in value:
                ws = value["weather_start"]
                try:
                    day_of_year_hour(ws)
                except ValueError as exc:
                    c.bad((*p, "weather_start"), "bad_value", str(exc))
        elif kind == "failures":
            _check_failures(value, c, p, facts)
        elif kind == "limits":
            if not c.mapping(value, p, _LIMITS_KEYS):
                continue
            for key in ("row_power_scale", "aisle_airflow_scale"):
                if key in value:
                    c.number(value[key], (*p, key), 0, 10, lo_open=True)
            if "row_power_kw" in value:
                _id_map(value["row_power_kw"], c, (*p, "row_power_kw"), facts.rows, "row", 0, False, True)
            if "aisle_airflow_cfm" in value:
                _id_map(value["aisle_airflow_cfm"], c, (*p, "aisle_airflow_cfm"), facts.aisles, "aisle", 0, False,
                        True)
            if "gpu_temp_limit_c" in value:
                c.number(value["gpu_temp_limit_c"], (*p, "gpu_temp_limit_c"), 0, 150, lo_open=True)


MAX_ADDED_PER_ROW = 10_000
"""Servers (or racks) ``add_servers`` may add to one row: far beyond any room, short of a
number that exhausts a worker's memory."""


def _check_add_servers(value, c: _Checker, p: tuple, facts: BaseFacts) -> None:
    if not c.mapping(value, p, _ADD_SERVERS_KEYS):
        return
    for key in [k for k in SERVER_COUNT_KEYS if k in value]:
        v = value[key]
        if isinstance(v, dict):  # per row: the same bound as one number for every row
            _id_map(v, c, (*p, key), facts.rows, "row", 0, True, hi=MAX_ADDED_PER_ROW)
        else:
            c.number(v, (*p, key), 0, MAX_ADDED_PER_ROW, integer=True)
    if "rows" in value:
        rows = value["rows"]
        if rows != "all":
            if not isinstance(rows, list) or not rows:
                c.bad((*p, "rows"), "bad_value", "must be 'all' or a list of row ids")
            else:
                for i, r in enumerate(rows):
                    if facts.rows and str(r) not in facts.rows:
                        c.bad((*p, "rows", i), "unknown_row", f"row {r!r} is not in the base inventory")
                    elif str(r) in map(str, rows[:i]):
                        c.bad((*p, "rows", i), "bad_value", f"row {r!r} is listed twice (it would get its "
                              "servers twice)", "list each row once")
    if "hardware" in value:
        hw = value["hardware"]
        if hw != "like-row" and c.mapping(hw, (*p, "hardware"), _HARDWARE_KEYS):
            # The figures become servers.csv columns: the same bounds as that file.
            for key, v in hw.items():
                if key in _HARDWARE_KEYS:
                    c.bounded(v, (*p, "hardware", key), column_bounds("servers", key))
    if "fill" in value:
        c.number(value["fill"], (*p, "fill"), 0, 1)


def _check_failures(value, c: _Checker, p: tuple, facts: BaseFacts) -> None:
    from tapas_opt.reconfig.events import parse_event

    if isinstance(value, list):
        value = {"events": value}
    if not c.mapping(value, p, _FAILURE_KEYS):
        return
    events = value.get("events", [])
    if not isinstance(events, list):
        c.bad((*p, "events"), "bad_value", "must be a list of events, e.g. [ups-failure]")
        events = []
    for i, text in enumerate(events):
        if not isinstance(text, str):
            c.bad((*p, i), "bad_type", f"{text!r} is not an event")
            continue
        try:
            ev = parse_event(text, facts.aisles or None)
        except InventoryError as exc:
            for prob in exc.problems:
                c.bad((*p, i), "bad_event", prob.message, prob.hint)
            continue
        if ev.kind == "ahu-failure" and facts.aisles and ev.target not in facts.aisles:
            c.bad((*p, i), "unknown_aisle", f"{text!r}: aisle {ev.target!r} is not in the base inventory")
        if ev.kind == "row-power" and facts.rows and ev.target not in facts.rows:
            c.bad((*p, i), "unknown_row", f"{text!r}: row {ev.target!r} is not in the base inventory")
    if value.get("start_h") is not None:
        c.number(value["start_h"], (*p, "start_h"), 0)
    if value.get("hours") is not None:
        c.number(value["hours"], (*p, "hours"), 0, lo_open=True)


# ---- merging and expansion ---------------------------------------------------------------------

def deep_merge(base: dict, over: dict) -> dict:
    """``over`` on top of ``base``: mappings merge key by key, anything else (lists too) replaces."""
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def set_path(target: dict, path: list[str], value) -> None:
    node = target
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = copy.deepcopy(value)


def normalise_sweep_key(key: str) -> list[str] | None:
    """``changes.add_servers.per_row`` or the shorthand ``add_servers.per_row``; ``settings.policy``
    or ``policy``. None if the key names neither a change nor a setting."""
    parts = str(key).split(".")
    if parts[0] in ("changes", "settings") and len(parts) >= 2:
        head = parts
    elif parts[0] in CHANGE_KINDS:
        head = ["changes", *parts]
    elif parts[0] in SETTINGS_DEFAULTS and len(parts) == 1:
        head = ["settings", *parts]
    else:
        return None
    if head[0] == "changes" and head[1] not in CHANGE_KINDS:
        return None
    if head[0] == "settings" and (len(head) != 2 or head[1] not in SETTINGS_DEFAULTS):
        return None
    return head


def _slug(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (list, tuple)):
        text = "+".join(_slug(v) for v in value)
    elif isinstance(value, dict):
        text = "+".join(f"{k}-{_slug(v)}" for k, v in value.items())
    else:
        text = str(value)
    slug = re.sub(r"[^A-Za-z0-9_.+=-]+", "-", text)
    # Separators the substitution made are trimmed; a sign or dash of the value is kept (-5 and
    # 5 are two scenarios: stripping gave both the id part '5').
    slug = slug if text.startswith("-") else slug.lstrip("-")
    slug = slug if text.endswith("-") else slug.rstrip("-")
    return slug or "x"


def short_name(path: list[str]) -> str:
    """The column name of a swept parameter: its path without the ``changes.``/``settings.`` head."""
    return ".".join(path[1:])


RESULTS_REVISION = 5
"""Bumped when a change to tapas-opt changes what a scenario computes (a fix, a new result
field): it is part of every ``spec_hash``, so results written by an older tapas-opt are not
taken as finished on a re-run. 2: ``add_servers.fill`` no longer overshoots (2026-11-21).
3: ``add_servers`` draws its VMs server by server, and the simulator evaluator's rows carry
``servers`` (2026-11-22). 4: forecasts of slots the history never saw, and degenerate
statsmodels fits (2026-11-22). 5: ``servers_added_per_row`` is over the rows that got servers
(2026-11-22)."""


def fingerprint(base: Path) -> str:
    """Names, sizes and modification times of the files the base inventory is read from: a
    changed base re-runs every scenario. Other files beside them (a scenario file kept in the
    base, notes) are not the base: editing one scenario there re-ran every scenario."""
    from tapas_opt.inventory.load import TABLES

    read = {"datacenter.yaml", "physics.yaml", *(f"{t}{ext}" for t in TABLES for ext in (".csv", ".parquet"))}
    h = hashlib.sha256()
    for path in sorted(p for p in base.iterdir() if p.is_file() and p.name in read):
        h.update(f"{path.name}:{file_print(path)};".encode())
    return h.hexdigest()[:16]


def file_print(path: Path) -> str:
    """Size and modification time of a file a scenario reads (the base's files, its weather
    file): replacing it re-runs the scenario."""
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a scenario file; raise :class:`InventoryError` listing every problem."""
    path = Path(path)
    file = path.name
    raw, c = _read_scenario_file(path)
    source_dir = path.resolve().parent
    base, facts = _check_base(raw, c, source_dir)
    name = _sweep_name(raw, c, path)
    settings = _section(raw, "settings")
    check_settings(settings, c, ("settings",))
    changes = _section(raw, "changes")
    check_changes(changes, c, ("changes",), facts, source_dir)
    # Each part of the file is checked as written; the rules that tie parts together (per_row
    # here, racks_per_row there; a failure's start and the horizon) on every merged scenario.
    listed = _check_listed(raw, c, facts, source_dir)
    axes, keys = _check_sweep_axes(raw, c, facts, source_dir)
    report = _check_report(raw, c)
    n = max(1, len(listed)) * math.prod(len(v) for _, v in axes)
    merged: list[Merged] = []
    if n > MAX_SCENARIOS:
        c.bad(("sweep",), "out_of_range", f"the file expands to {n} scenarios (more than {MAX_SCENARIOS})",
              "split it into several files")
    elif _mergeable(settings, changes, listed):  # (parts that cannot merge are problems already)
        merged = list(merged_scenarios(settings, changes, listed, axes))  # merged once: checked, then hashed
        check_scenarios(merged, _Origins(raw, axes, keys, c), c, facts, many=n > 1)
    if c.problems:
        raise InventoryError(c.problems)
    scenarios = expand(base, source_dir, merged)
    _check_ids(scenarios, file)
    return Sweep(name, str(path.resolve()), str(base), scenarios, [short_name(h) for h, _ in axes], report)


def _section(part: dict, key: str):
    """A section of the file: absent or empty (``settings:`` with nothing under it) is an empty
    mapping; anything else as written, so that ``settings: []`` or ``changes: ""`` is reported
    as not a mapping instead of read as empty."""
    value = part.get(key)
    return {} if value is None else value


def _sweep_name(raw: dict, c: "_Checker", path: Path) -> str:
    """The sweep's name (default: the file's stem): text, or a number written as one."""
    value = raw.get("name")
    if value is None:
        return path.stem
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or str(value).strip() == "":
        c.bad(("name",), "bad_value", f"must be a text, not {_kind(value)}", "e.g. name: july-capacity")
        return path.stem
    return str(value)


def _read_scenario_file(path: Path) -> tuple[dict, "_Checker"]:
    """The file's mapping and a checker that knows each key's line."""
    file = path.name
    if not path.is_file():
        raise InventoryError([Problem("missing_file", str(path), "scenario file not found",
                                      "pass a YAML file (see docs/whatif.md)")])
    raw, lines, said = load_yaml(path, file)
    if unreadable(said):
        raise InventoryError(said)
    raw = _text_keys(raw)
    c = _Checker(file, lines)
    c.problems += said  # keys given twice
    if not isinstance(raw, dict):
        raise InventoryError([Problem("bad_yaml", file, "the top level must be a mapping (name:, base:, ...)")])
    c.mapping(raw, (), _TOP_KEYS)
    return raw, c


def _text_keys(value):
    """Every mapping key as text: YAML reads ``{1: 4}`` with the number 1, but row, customer and
    endpoint ids are text in the inventory (``1`` in rows.csv is the id "1"). Mixed keys crashed
    the sweep's hashing, and a numeric row key was accepted but matched no row."""
    if isinstance(value, dict):
        return {str(k): _text_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_text_keys(v) for v in value]
    return value


def _check_base(raw: dict, c: "_Checker", source_dir: Path) -> tuple[Path | None, BaseFacts]:
    """The base inventory (checked: a broken base would fail every scenario, so its problems
    are reported once, as bad input) and the ids scenarios may name."""
    base_raw = raw.get("base")
    base = base_inventory = None
    if base_raw is None or base_raw == "":
        c.bad(("base",), "missing_value", "'base' (the inventory directory) is required",
              "base: ../example  (relative to this file)")
    elif not isinstance(base_raw, str):
        # YAML reads base: 5 or base: 2026-01-01 as a number or a date, not a directory name.
        quoted = f"; quote a name YAML reads otherwise: base: '{base_raw}'" if not isinstance(base_raw, (dict, list)) else ""
        c.bad(("base",), "bad_type", f"'base' must be a path (text), not {_kind(base_raw)}",
              f"base: ../example  (the inventory directory, relative to this file){quoted}")
    else:
        base = (source_dir / base_raw).resolve()
        if not (base / "datacenter.yaml").is_file():
            c.bad(("base",), "missing_file", f"{base_raw!r} is not an inventory directory ({base} has no datacenter.yaml)",
                  "see docs/inventory-format.md")
            base = None
        else:
            from tapas_opt.inventory.load import check_inventory

            base_inventory, base_problems = check_inventory(base)
            c.problems += [replace(p, file=f"{base_raw}/{p.file}") for p in base_problems]
    facts = (base_facts(base, base_inventory) if base is not None
             else BaseFacts(frozenset(), frozenset(), frozenset(), frozenset()))
    return base, facts


def _check_listed(raw: dict, c: "_Checker", facts: BaseFacts, source_dir: Path) -> list[dict]:
    """The listed scenarios (default: one, ``base``): names giving distinct ids, their settings
    and changes."""
    listed = raw.get("scenarios")
    if listed is None:
        listed = [{"name": "base"}]
    if not isinstance(listed, list) or not listed:
        c.bad(("scenarios",), "bad_value", "must be a non-empty list of scenarios (- name: ...)")
        return []
    ids: dict[str, tuple[str, tuple]] = {}
    for i, item in enumerate(listed):
        p = ("scenarios", i)
        if not c.mapping(item, p, {"name", "settings", "changes"}):
            continue
        nm = item.get("name")
        if not isinstance(nm, (str, int, float)) or str(nm) == "":
            c.bad(p, "missing_value", "every listed scenario needs a name")
        else:
            _check_distinct_id(str(nm), (*p, "name"), ids, c)
        check_settings(_section(item, "settings"), c, (*p, "settings"))
        check_changes(_section(item, "changes"), c, (*p, "changes"), facts, source_dir)
    return listed


def _check_distinct_id(name: str, path: tuple, ids: dict, c: "_Checker") -> None:
    """Ids are names made file-safe ('hot july' -> 'hot-july'): two names may give one id, and
    the second scenario's results would overwrite the first's."""
    sid = _slug(name)
    if sid not in ids:
        ids[sid] = (name, path)
        return
    first, first_path = ids[sid]
    line = c.lines.line(first_path)
    message = (f"scenario name {name!r} is used twice (first at line {line})" if first == name
               else f"scenario names {first!r} (line {line}) and {name!r} both give the id {sid!r}")
    c.bad(path, "duplicate_id", message,
          "rename one of them (ids keep letters, digits and _.+=-, other characters become '-')")


def _check_sweep_axes(raw: dict, c: "_Checker", facts: BaseFacts,
                      source_dir: Path) -> tuple[list[tuple[list[str], list]], list]:
    """The cartesian sweep: each key names a change or setting no other key sweeps, each value
    is checked as one and gives its own id. Returns the axes and their keys as written."""
    sweep_raw = _section(raw, "sweep")
    axes: list[tuple[list[str], list]] = []
    keys: list = []
    if not c.mapping(sweep_raw, ("sweep",)):
        return axes, keys
    for key, values in sweep_raw.items():
        p = ("sweep", key)
        head = normalise_sweep_key(key)
        if head is None:
            c.bad(p, "unknown_key", f"{key!r} names no change or setting",
                  f"use changes.KIND.KEY (KIND: {', '.join(CHANGE_KINDS)}) or settings.NAME")
            continue
        if not isinstance(values, list) or not values:
            c.bad(p, "bad_value", "must be a non-empty list of values, e.g. [0, 4, 8]")
            continue
        if not _check_axis_apart(key, head, axes, keys, c):
            continue
        axes.append((head, values))
        keys.append(key)
        _check_axis_values(head, values, p, c, facts, source_dir)
        _check_distinct_values(values, p, short_name(head), c)
    return axes, keys


def _check_axis_apart(key, head: list[str], axes: list, keys: list, c: "_Checker") -> bool:
    """A sweep key must not name what an earlier one sweeps: the same path (one list of values
    would silently replace the other), a key inside a mapping whose values are not all mappings,
    or a whole mapping that an earlier key sets a key of (its values would be lost)."""
    p = ("sweep", key)

    def named(k) -> str:
        return f"{k!r} (line {c.lines.line(('sweep', k))})"

    for (other, other_values), other_key in zip(axes, keys):
        if other == head:
            c.bad(p, "duplicate_key", f"{named(other_key)} and {key!r} both sweep {'.'.join(head)}: one list of "
                  "values would be dropped", "keep one of the two keys, with every value")
            return False
        if head[:len(other)] == other and not all(isinstance(v, dict) for v in other_values):
            c.bad(p, "duplicate_key", f"{key!r} sets a key inside {named(other_key)}, whose values are not all "
                  "mappings: they would be replaced", f"sweep {short_name(other)} or {short_name(head)}, not both")
            return False
    inside = [k for (other, _), k in zip(axes, keys) if other[:len(head)] == head]
    if inside:
        c.bad(p, "duplicate_key", f"{key!r} replaces the whole {short_name(head)} mapping that "
              f"{' and '.join(named(k) for k in inside)} set{'s' if len(inside) == 1 else ''} a key of: those "
              "values would be lost", f"put {key!r} first, or sweep only one of them")
        return False
    return True


def _check_axis_values(head: list[str], values: list, p: tuple, c: "_Checker", facts: BaseFacts,
                       source_dir: Path) -> None:
    """Every value of one sweep key, checked alone (its combinations: :func:`check_scenarios`)."""
    seen: set[tuple[str, str]] = set()
    for j, v in enumerate(values):
        probe: dict = {}
        set_path(probe, head, v)
        before = len(c.problems)
        if head[0] == "settings":
            check_settings(probe["settings"], c, (*p, j))
        else:
            check_changes(probe["changes"], _Sub(c, (*p, j)), ("changes",), facts, source_dir)
        # A wrong key is wrong for every value: say it once, at its first value.
        new = c.problems[before:]
        del c.problems[before:]
        for q in new:
            if (q.code, q.message) not in seen:
                seen.add((q.code, q.message))
                c.problems.append(q)


def _check_distinct_values(values: list, p: tuple, name: str, c: "_Checker") -> None:
    """Each value of a sweep key once: a repeated value (or two that read alike, 0.5 and '0.5')
    gives two scenarios one id."""
    first: dict[str, int] = {}
    for j, v in enumerate(values):
        part = _slug(v)
        if part not in first:
            first[part] = j
            continue
        k = first[part]
        w, line = values[k], c.lines.line((*p, k))
        message = (f"{v!r} is given twice (first as value {k + 1}, line {line})" if repr(w) == repr(v)
                   else f"{w!r} (value {k + 1}, line {line}) and {v!r} give one scenario id part, {name}={part}")
        c.bad((*p, j), "duplicate_value", message, "give each value once")


def _check_report(raw: dict, c: "_Checker") -> dict:
    report = _section(raw, "report")
    if c.mapping(report, ("report",), _REPORT_KEYS) and "capping_budgets_pct" in report:
        budgets = report["capping_budgets_pct"]
        if not isinstance(budgets, list) or not budgets:
            c.bad(("report", "capping_budgets_pct"), "bad_value", "must be a list of percentages, e.g. [1, 5, 10]")
        else:
            for j, b in enumerate(budgets):
                c.number(b, ("report", "capping_budgets_pct", j), 0, 100)
    return report


def _check_ids(scenarios: list[ScenarioSpec], file: str) -> None:
    """Ids are unique (listed names and sweep values are checked for it where they are written;
    this is the last word, on the ids themselves)."""
    counts = Counter(s.id for s in scenarios)
    dup = sorted(i for i, n in counts.items() if n > 1)
    if dup:
        raise InventoryError([Problem("duplicate_id", file, f"scenario id {d!r} arises twice",
                                      "give listed scenarios distinct names") for d in dup])


class _Sub(_Checker):
    """A checker that files problems under another path (sweep values checked as changes)."""

    def __init__(self, parent: _Checker, prefix: tuple):
        self.parent, self.prefix = parent, prefix
        self.file, self.lines, self.problems = parent.file, parent.lines, parent.problems

    def bad(self, path: tuple, code: str, message: str, hint: str = "") -> None:
        self.parent.bad(self.prefix, code, f"{'.'.join(map(str, path[1:]))}: {message}", hint)


# ---- merged scenarios and the rules across their parts -----------------------------------------

@dataclass(frozen=True)
class Merged:
    """One scenario as merged, before hashing: which listed entry (``item``) and which value of
    each sweep axis (``point``) it comes from."""

    item: int
    point: tuple
    name: str
    id: str
    parameters: dict
    settings: dict
    changes: dict


def merged_scenarios(settings: dict, changes: dict, listed: list[dict], axes: list[tuple[list[str], list]]):
    """Every listed scenario crossed with every point of the cartesian sweep, merged (a generator)."""
    points = list(itertools.product(*[range(len(values)) for _, values in axes]))
    for i, item in enumerate(listed):
        nm = str(item.get("name"))
        s0 = deep_merge(deep_merge(SETTINGS_DEFAULTS, settings), _section(item, "settings"))
        c0 = deep_merge(changes, _section(item, "changes"))
        for point in points:
            spec = copy.deepcopy({"settings": s0, "changes": c0})
            params = {}
            for (head, values), j in zip(axes, point):
                set_path(spec, head, values[j])
                params[short_name(head)] = values[j]
            sid = "__".join([_slug(nm)] + [f"{k}={_slug(v)}" for k, v in params.items()])
            if len(sid) > MAX_ID_CHARS:  # ids name files: keep them short, unique by a hash of the point
                sid = sid[:MAX_ID_CHARS - 9] + "~" + hashlib.sha256(sid.encode()).hexdigest()[:8]
            yield Merged(i, point, nm, sid, params, spec["settings"], spec["changes"])


def _mergeable(settings, changes, listed: list) -> bool:
    """Can the parts be merged (mappings where mappings merge)? Else their problems are reported
    and the rules across parts wait for a file that can."""
    parts = [settings, changes] + [x for item in listed if isinstance(item, dict)
                                   for x in (_section(item, "settings"), _section(item, "changes"))]
    return all(isinstance(item, dict) for item in listed) and all(isinstance(x, dict) for x in parts)


def _has(node, path) -> bool:
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


class _Origins:
    """Where a part of a merged scenario was written: the most specific of its sweep values,
    its listed entry and the file's common settings and changes (the order they merge in)."""

    def __init__(self, raw: dict, axes: list, keys: list, c: "_Checker"):
        self.listed = raw.get("scenarios") if isinstance(raw.get("scenarios"), list) else None
        self.raw, self.axes, self.keys, self.lines = raw, axes, keys, c.lines

    def of(self, m: Merged, path: tuple) -> tuple[int, tuple]:
        """(rank, YAML path) of the place that set ``path`` (or wrote inside it) for scenario
        ``m``: sweep values rank above the listed entry, which ranks above the common part."""
        for pos in reversed(range(len(self.axes))):
            head, values = self.axes[pos]
            n = min(len(head), len(path))
            if tuple(head[:n]) == tuple(path[:n]) and (len(path) <= len(head)
                                                      or _has(values[m.point[pos]], path[len(head):])):
                return pos + 2, ("sweep", self.keys[pos], m.point[pos])
        if self.listed is not None and _has(self.listed[m.item], path):
            return 1, ("scenarios", m.item, *path)
        return 0, tuple(path)

    def describe(self, where: tuple) -> str:
        if where[0] == "sweep":
            return f"sweep key {where[1]!r} (line {self.lines.line(where[:2])})"
        return f"{'.'.join(map(str, where))} (line {self.lines.line(where)})"


def _key_level(where: tuple) -> tuple:
    """A sweep value's place as its key's: a rule about which keys are given holds for every value."""
    return where[:2] if where[0] == "sweep" else where


def _same_part(a: tuple, b: tuple) -> bool:
    """Two places in one mapping of the file (or in one sweep value)?"""
    return a[:3] == b[:3] if a[0] == "sweep" else a[:-1] == b[:-1]


def check_scenarios(merged, origins: _Origins, c: "_Checker", facts: BaseFacts, many: bool) -> None:
    """The rules that tie keys together, on every scenario as merged: each distinct problem once
    (a bad pair of sweep keys spoils thousands of combinations), at the most specific place it
    was written, naming the first scenario it spoils when several share that place. Dictionary
    work only (each trace folder is looked at once), so 10,000 scenarios take about a second."""
    seen: set = set()
    traces: dict = {}
    for m in merged:
        for rule in _SCENARIO_RULES:
            for where, code, message, hint in rule(m, origins, facts, traces):
                if (code, where, message) in seen:
                    continue
                seen.add((code, where, message))
                shared = many and not (where[0] == "scenarios" and not origins.axes)
                c.bad(where, code, message + (f" (first in scenario {m.id!r})" if shared else ""), hint)


def _one_server_count(m: Merged, at: _Origins, facts: BaseFacts, traces: dict):
    add = m.changes.get("add_servers")
    if not isinstance(add, dict):
        return
    given = [k for k in SERVER_COUNT_KEYS if k in add]
    if len(given) == 1:
        return
    hint = "per_row: 4 (servers in every row) or racks_per_row: 1 (racks of the row's size)"
    if not given:
        _, where = at.of(m, ("changes", "add_servers"))
        yield _key_level(where), "bad_value", "give exactly one of per_row and racks_per_row (neither is given)", hint
        return
    (ra, a), (rb, b) = (at.of(m, ("changes", "add_servers", k)) for k in SERVER_COUNT_KEYS)
    a, b = _key_level(a), _key_level(b)
    if a == b or _same_part(a, b):
        yield (a if a == b else a[:-1]), "bad_value", "give exactly one of per_row and racks_per_row", hint
    else:
        yield (a if ra > rb else b), "bad_value", ("give exactly one of per_row and racks_per_row: per_row is "
                                                   f"given at {at.describe(a)}, racks_per_row at {at.describe(b)}"), hint


def _counts_for_rows_that_get_servers(m: Merged, at: _Origins, facts: BaseFacts, traces: dict):
    """``per_row: {R01: 8}`` with ``rows: [R02]`` added nothing, silently: a count for a row that
    ``rows`` leaves out is a mistake in one of the two."""
    add = m.changes.get("add_servers")
    rows = add.get("rows", "all") if isinstance(add, dict) else "all"
    if not isinstance(rows, list):
        return
    chosen = {str(r) for r in rows}
    for key in SERVER_COUNT_KEYS:
        counts = add.get(key)
        if not isinstance(counts, dict):
            continue
        left_out = [str(r) for r, n in counts.items() if str(r) not in chosen and is_number(n) and n > 0]
        if left_out:
            yield at.of(m, ("changes", "add_servers", key))[1], "bad_value", \
                (f"{key} gives servers to {', '.join(left_out)}, which add_servers.rows "
                 f"({', '.join(sorted(chosen))}) leaves out: they would get none"), \
                "add the rows to add_servers.rows, or leave rows out (every row named in the mapping gets its count)"


def _gpus_with_their_power(m: Merged, at: _Origins, facts: BaseFacts, traces: dict):
    """``hardware: {gpus: 64}`` alone kept the cloned 8-GPU servers' power: 64 GPUs at full load
    drew what 8 did, and the room looked cooler with more of them."""
    add = m.changes.get("add_servers")
    hw = add.get("hardware") if isinstance(add, dict) else None
    if not isinstance(hw, dict) or "max_power_kw" in hw:
        return
    if not column_bounds("servers", "gpus").admits(hw.get("gpus")):
        return  # (a count out of servers.csv's bounds is reported as such)
    others = sorted({int(g) for _, rng in _clone_ranges(add, facts) for g in rng["gpus"] if g != hw["gpus"]})
    if others:
        yield at.of(m, ("changes", "add_servers", "hardware", "gpus"))[1], "bad_value", \
            (f"gpus {show(hw['gpus'])} without max_power_kw: the new servers would keep the power of the "
             f"{'/'.join(map(str, others))}-GPU servers they are cloned from"), \
            "give the new hardware's max_power_kw (and idle_power_kw, airflow) too"


def _idle_below_max(m: Merged, at: _Origins, facts: BaseFacts, traces: dict):
    """Idle figures of added servers at most their max: both given, or one given and the other
    that of the servers they are cloned from."""
    add = m.changes.get("add_servers")
    hw = add.get("hardware") if isinstance(add, dict) else None
    if not isinstance(hw, dict):
        return
    for idle_key, max_key, code in POWER_PAIRS:
        idle, top = hw.get(idle_key), hw.get(max_key)

        def where(key: str) -> tuple[int, tuple]:
            return at.of(m, ("changes", "add_servers", "hardware", key))

        if is_number(idle) and is_number(top):
            if idle > top:
                (ri, pi), (rt, pt) = where(idle_key), where(max_key)
                apart = "" if _same_part(pi, pt) else f" ({idle_key} at {at.describe(pi)}, {max_key} at {at.describe(pt)})"
                yield (pt if rt > ri else pi), code, f"{idle_key} {show(idle)} is above {max_key} {show(top)}{apart}", \
                    f"{max_key} must be >= {idle_key}"
        elif is_number(idle) or is_number(top):
            for problem in _against_cloned(add, idle_key, max_key, code, idle, top, facts):
                yield (where(idle_key if is_number(idle) else max_key)[1], *problem)


def _against_cloned(add: dict, idle_key: str, max_key: str, code: str, idle, top, facts: BaseFacts):
    """One of an idle/max pair given: the other comes from the row's servers (each new server
    is a clone of one of them), so the worst of those must still fit. (code, message, hint)."""
    ranges = _clone_ranges(add, facts)
    if not ranges:
        return
    if is_number(idle):
        row, worst = min(((r, rng[max_key][0]) for r, rng in ranges), key=lambda x: x[1])
        if idle > worst:
            yield code, (f"{idle_key} {show(idle)} is above the {max_key} of the servers it is cloned from "
                                f"({show(worst)} in row {row})"), f"give {max_key} too, or at most {show(worst)}"
    else:
        row, worst = max(((r, rng[idle_key][1]) for r, rng in ranges), key=lambda x: x[1])
        if top < worst:
            yield code, (f"{max_key} {show(top)} is below the {idle_key} of the servers it is cloned from "
                                f"({show(worst)} in row {row})"), f"give {idle_key} too, or at least {show(worst)}"


def _clone_ranges(add: dict, facts: BaseFacts) -> list[tuple[str, dict]]:
    """(row, figure ranges of the servers its new servers are cloned from) for each row that
    gets servers: its own servers', or the room's for a row without any (a valid base only)."""
    if not facts.hardware:
        return []
    rows = add.get("rows", "all")
    rows = sorted(facts.rows) if rows == "all" else [str(r) for r in rows] if isinstance(rows, list) else []
    return [(r, facts.hardware.get(r, facts.hardware[None])) for r in rows if r in facts.rows]


def _horizon_in_steps(m: Merged, at: _Origins, facts: BaseFacts, traces: dict):
    hours, step = m.settings.get("horizon_h"), facts.time_step_min
    if is_number(hours) and step and (hours * 60) % step:
        _, where = at.of(m, ("settings", "horizon_h"))
        yield where, "bad_value", f"{show(hours)} h is not a whole number of the base's {step}-minute time steps", \
            f"use a multiple of {show(step / 60)} h"


def _failure_in_horizon(m: Merged, at: _Origins, facts: BaseFacts, traces: dict):
    """A failure window must cover a time step of the horizon (settings.horizon_h, else the
    base's): else it never happens (the predicted evaluator refused it at run time, the
    simulator ran the week without it)."""
    from tapas_opt.whatif.changes import DEFAULT_FAILURE_HOURS

    failures = m.changes.get("failures")
    if not isinstance(failures, dict):
        return  # a plain list of events starts at the peak day: always inside
    events = failures.get("events")
    start, length = failures.get("start_h"), failures.get("hours", DEFAULT_FAILURE_HOURS)
    if not _names_events(events) or not is_number(start) or not (length is None or is_number(length)):
        return
    horizon, own = m.settings.get("horizon_h"), is_number(m.settings.get("horizon_h"))
    horizon = horizon if own else facts.horizon_h
    sim_step = m.settings.get("sim_step_min")
    step = sim_step if m.settings.get("evaluator") == "simulator" and is_number(sim_step) else facts.time_step_min
    if horizon is None or not step or step <= 0:
        return
    slots = int(round(horizon * 60 / step))
    first = math.ceil(start * 60 / step - 1e-9)
    if first < slots and (length is None or first * step < (start + length) * 60):
        return
    _, where = at.of(m, ("changes", "failures", "start_h"))
    if first >= slots:
        source = f"settings.horizon_h at {at.describe(at.of(m, ('settings', 'horizon_h'))[1])}" if own else "datacenter.yaml"
        yield where, "out_of_range", (f"start_h {show(start)} is past the end of the {show(horizon)} h horizon "
                                      f"({source}): the failure would never happen"), \
            (f"give 0 to {show((slots - 1) * step / 60)} (hours after the horizon's start), or leave start_h out "
             "for midnight of the day the room's power peaks")
    else:
        yield where, "out_of_range", (f"the failure window ({show(start)} h for {show(length)} h) covers no "
                                      f"{show(step)}-minute time step"), \
            f"start it at a multiple of {show(step / 60)} h, or make it longer"


def _names_events(events) -> bool:
    """Does a failures.events value name a failure ('none' names none)?"""
    return isinstance(events, list) and any(str(e).strip().lower() != "none" for e in events)


def _failure_timing_without_events(m: Merged, at: _Origins, facts: BaseFacts, traces: dict):
    """``failures: {start_h: 10}`` with no events ran the scenario without a failure, silently
    (like weather_start without weather)."""
    failures = m.changes.get("failures")
    if not isinstance(failures, dict):
        return
    if _names_events(failures.get("events")):
        return
    for key in ("start_h", "hours"):
        if key in failures:
            yield _key_level(at.of(m, ("changes", "failures", key))[1]), "bad_value", \
                f"failures.{key} has no effect without failure events", \
                "give failures.events too (e.g. [ups-failure]), or leave the failure's timing out"


def _simulator_without_load_growth(m: Merged, at: _Origins, facts: BaseFacts, traces: dict):
    if m.settings.get("evaluator") == "simulator" and m.changes.get("load_growth"):
        yield at.of(m, ("settings", "evaluator"))[1], "bad_value", \
            ("load_growth has no effect with the simulator evaluator (it replaces the telemetry with real "
             "traces)"), "use evaluator: predicted for load growth"


def _weather_start_without_weather(m: Merged, at: _Origins, facts: BaseFacts, traces: dict):
    """weather_start says which day of a weather file falls on the horizon's first day: with
    no weather file it would be silently ignored (the scenario ran on outside.csv)."""
    outside = m.changes.get("outside")
    if isinstance(outside, dict) and "weather_start" in outside and "weather" not in outside:
        yield at.of(m, ("changes", "outside", "weather_start"))[1], "bad_value", \
            "weather_start has no effect without a weather file", \
            "give outside.weather: FILE.epw too, or leave weather_start out"


def _simulator_traces(m: Merged, at: _Origins, facts: BaseFacts, traces: dict):
    """The simulator evaluator reads real traces: a folder without the ones this room's VMs
    need failed every scenario at run time. Each folder is looked at once (``traces``)."""
    from tapas_opt.simulate.scenario import DEFAULT_TRACES
    from tapas_opt.simulate.traces import missing_traces, unusable_traces

    given = m.settings.get("traces")
    if m.settings.get("evaluator") != "simulator" or not (given is None or isinstance(given, str)):
        return
    folder = given if given is not None else str(DEFAULT_TRACES)
    if folder not in traces:
        exists = Path(folder).is_dir()
        kinds = ("saas" in facts.vm_kinds, "iaas" in facts.vm_kinds)
        missing = missing_traces(folder, *kinds) if exists else []
        traces[folder] = (exists, missing, unusable_traces(folder, *kinds) if exists and not missing else [])
    exists, missing, unusable = traces[folder]
    hint = ("give settings.traces: the folder of the real traces (../shared/data; a relative path is taken "
            "from where tapas-opt runs)")
    where = at.of(m, ("settings", "traces") if given is not None else ("settings", "evaluator"))[1]
    if given is None and not exists:
        yield at.of(m, ("settings", "evaluator"))[1], "missing_file", \
            (f"the simulator reads real traces from {folder} (the default of settings.traces), and "
             f"{Path(folder).resolve()} does not exist"), hint
    elif missing:  # (a given folder that does not exist is reported with settings.traces' value)
        yield where, "missing_file", (f"traces folder {folder!r} lacks what the simulator reads for this room's "
                                      f"VMs: {'; '.join(missing)}"), hint
    elif unusable:
        yield where, "bad_traces", (f"traces folder {folder!r} holds files the simulator cannot use for this "
                                    f"room's VMs: {'; '.join(unusable)}"), hint


_SCENARIO_RULES = (_one_server_count, _counts_for_rows_that_get_servers, _idle_below_max, _gpus_with_their_power,
                   _horizon_in_steps, _failure_in_horizon, _failure_timing_without_events,
                   _simulator_without_load_growth, _weather_start_without_weather, _simulator_traces)
"""The rules :func:`check_scenarios` applies to each merged scenario (file place, code, message, hint)."""


def expand(base: Path, source_dir: Path, merged: list[Merged]) -> list[ScenarioSpec]:
    """The merged scenarios (:func:`merged_scenarios`), each with the hash of everything its
    result depends on."""
    base_print = fingerprint(base)
    out = []
    for m in merged:
        weather = (m.changes.get("outside") or {}).get("weather")
        inputs = {"weather": file_print(source_dir / weather)} if weather else {}
        digest = hashlib.sha256(json.dumps({"settings": m.settings, "changes": m.changes, "base": base_print,
                                            "tapas_opt": [__version__, RESULTS_REVISION], **inputs},
                                           sort_keys=True, default=str).encode())
        out.append(ScenarioSpec(m.id, m.name, str(base), m.settings, m.changes, m.parameters,
                                digest.hexdigest()[:16], str(source_dir)))
    return out
