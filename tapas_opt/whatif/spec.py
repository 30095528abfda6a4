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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tapas_opt.config import MAX_SEED, MAX_TIME_LIMIT_S, QUANTILES
from tapas_opt.errors import InventoryError, Problem
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
               integer: bool = False, lo_open: bool = False) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            self.bad(path, "bad_type", f"{value!r} is not a {'whole ' if integer else ''}number")
            return False
        if integer and float(value) != int(value):
            self.bad(path, "bad_type", f"{value!r} is not a whole number")
            return False
        if lo is not None and (value <= lo if lo_open else value < lo):
            self.bad(path, "out_of_range", f"{value!r} must be {'>' if lo_open else '>='} {lo:g}")
            return False
        if hi is not None and value > hi:
            self.bad(path, "out_of_range", f"{value!r} must be <= {hi:g}")
            return False
        return True

    def choice(self, value, path: tuple, choices) -> bool:
        if value not in choices:
            self.bad(path, "bad_value", f"{value!r} is not one of {', '.join(map(str, choices))}")
            return False
        return True


def _kind(value) -> str:
    return {dict: "a mapping", list: "a list", str: "text", type(None): "empty"}.get(type(value), type(value).__name__)


# ---- the base inventory, for reference checks ---------------------------------------------------

@dataclass(frozen=True)
class BaseFacts:
    """Ids the changes may refer to, read from the base inventory."""

    rows: frozenset
    aisles: frozenset
    customers: frozenset
    endpoints: frozenset


def base_facts(base: Path, inventory=None) -> BaseFacts:
    """The ids scenarios may name: from the loaded ``inventory`` when the base is valid, else
    read from its tables as they are (so that a broken base still gets its ids checked)."""
    from tapas_opt.inventory.load import _find_table, read_table

    def table(name: str) -> pd.DataFrame:
        if inventory is not None:
            return getattr(inventory, name)
        path = _find_table(base, name)
        return read_table(path) if path is not None else pd.DataFrame()

    def ids(frame: pd.DataFrame, col: str) -> frozenset:
        return frozenset(frame[col].dropna().astype(str)) if col in frame.columns else frozenset()

    vms = table("vms")
    return BaseFacts(ids(table("rows"), "row_id"), ids(table("aisles"), "aisle_id"), ids(vms, "customer"),
                     ids(vms, "endpoint"))


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
            c.number(value, p, 0, MAX_TIME_LIMIT_S, lo_open=True)
        elif key == "seed":
            c.number(value, p, 0, MAX_SEED, integer=True)
        elif key == "horizon_h":
            if value is not None:
                c.number(value, p, 1, 24 * 28, integer=True)
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
            lo_open: bool = False) -> None:
    if not c.mapping(value, path):
        return
    for key, v in value.items():
        if known and str(key) not in known:
            c.bad((*path, key), f"unknown_{what}", f"{what} {key!r} is not in the base inventory",
                  f"{what}s: {', '.join(sorted(known)[:12])}{' ...' if len(known) > 12 else ''}")
        c.number(v, (*path, key), lo, integer=integer, lo_open=lo_open)


def check_changes(changes: dict, c: _Checker, path: tuple, facts: BaseFacts, source_dir: Path) -> None:
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


def _check_add_servers(value, c: _Checker, p: tuple, facts: BaseFacts) -> None:
    if not c.mapping(value, p, _ADD_SERVERS_KEYS):
        return
    given = [k for k in ("per_row", "racks_per_row") if k in value]
    if len(given) != 1:
        c.bad(p, "bad_value", "give exactly one of per_row and racks_per_row",
              "per_row: 4 (servers in every row) or racks_per_row: 1 (racks of the row's size)")
    for key in given:
        v = value[key]
        if isinstance(v, dict):
            _id_map(v, c, (*p, key), facts.rows, "row", 0, True)
        else:
            c.number(v, (*p, key), 0, 10_000, integer=True)
    if "rows" in value:
        rows = value["rows"]
        if rows != "all":
            if not isinstance(rows, list) or not rows:
                c.bad((*p, "rows"), "bad_value", "must be 'all' or a list of row ids")
            else:
                for i, r in enumerate(rows):
                    if facts.rows and str(r) not in facts.rows:
                        c.bad((*p, "rows", i), "unknown_row", f"row {r!r} is not in the base inventory")
    if "hardware" in value:
        hw = value["hardware"]
        if hw != "like-row" and c.mapping(hw, (*p, "hardware"), _HARDWARE_KEYS):
            for key, v in hw.items():
                if key in _HARDWARE_KEYS:
                    c.number(v, (*p, "hardware", key), -30 if key == "inlet_offset_c" else 0,
                             integer=key == "gpus")
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
    return re.sub(r"[^A-Za-z0-9_.+=-]+", "-", text).strip("-") or "x"


def short_name(path: list[str]) -> str:
    """The column name of a swept parameter: its path without the ``changes.``/``settings.`` head."""
    return ".".join(path[1:])


def fingerprint(base: Path) -> str:
    """Names, sizes and modification times of the base inventory's files: a changed base re-runs
    every scenario."""
    h = hashlib.sha256()
    for path in sorted(p for p in base.iterdir() if p.is_file()):
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
    name = str(raw.get("name") or path.stem)
    settings = raw.get("settings") or {}
    check_settings(settings, c, ("settings",))
    changes = raw.get("changes") or {}
    check_changes(changes, c, ("changes",), facts, source_dir)
    # Listed scenarios and sweep values are checked merged with the common changes (a rule may
    # span both, e.g. per_row here and racks_per_row there), unless those are already wrong.
    common = changes if not c.problems and isinstance(changes, dict) else {}
    listed = _check_listed(raw, c, common, facts, source_dir)
    axes = _check_sweep_axes(raw, c, common, facts, source_dir)
    report = _check_report(raw, c)
    n = max(1, len(listed)) * math.prod(len(v) for _, v in axes)
    if n > MAX_SCENARIOS:
        c.bad(("sweep",), "out_of_range", f"the file expands to {n} scenarios (more than {MAX_SCENARIOS})",
              "split it into several files")
    if c.problems:
        raise InventoryError(c.problems)
    scenarios = expand(name, base, source_dir, settings, changes, listed, axes)
    _check_expanded(scenarios, c, file)
    return Sweep(name, str(path.resolve()), str(base), scenarios, [short_name(h) for h, _ in axes], report)


def _read_scenario_file(path: Path) -> tuple[dict, "_Checker"]:
    """The file's mapping and a checker that knows each key's line."""
    file = path.name
    if not path.is_file():
        raise InventoryError([Problem("missing_file", str(path), "scenario file not found",
                                      "pass a YAML file (see docs/whatif.md)")])
    raw, lines, said = load_yaml(path, file)
    if unreadable(said):
        raise InventoryError(said)
    c = _Checker(file, lines)
    c.problems += said  # keys given twice
    if not isinstance(raw, dict):
        raise InventoryError([Problem("bad_yaml", file, "the top level must be a mapping (name:, base:, ...)")])
    c.mapping(raw, (), _TOP_KEYS)
    return raw, c


def _check_base(raw: dict, c: "_Checker", source_dir: Path) -> tuple[Path | None, BaseFacts]:
    """The base inventory (checked: a broken base would fail every scenario, so its problems
    are reported once, as bad input) and the ids scenarios may name."""
    base_raw = raw.get("base")
    base = base_inventory = None
    if not isinstance(base_raw, str) or not base_raw:
        c.bad(("base",), "missing_value", "'base' (the inventory directory) is required",
              "base: ../example  (relative to this file)")
    else:
        base = (source_dir / base_raw).resolve()
        if not (base / "datacenter.yaml").is_file():
            c.bad(("base",), "missing_file", f"{base_raw!r} is not an inventory directory ({base} has no datacenter.yaml)",
                  "see docs/inventory-format.md")
            base = None
        else:
            from dataclasses import replace

            from tapas_opt.inventory.load import check_inventory

            base_inventory, base_problems = check_inventory(base)
            c.problems += [replace(p, file=f"{base_raw}/{p.file}") for p in base_problems]
    facts = (base_facts(base, base_inventory) if base is not None
             else BaseFacts(frozenset(), frozenset(), frozenset(), frozenset()))
    return base, facts


def _check_listed(raw: dict, c: "_Checker", common: dict, facts: BaseFacts, source_dir: Path) -> list[dict]:
    """The listed scenarios (default: one, ``base``): unique names, their settings and changes."""
    listed = raw.get("scenarios")
    if listed is None:
        listed = [{"name": "base"}]
    if not isinstance(listed, list) or not listed:
        c.bad(("scenarios",), "bad_value", "must be a non-empty list of scenarios (- name: ...)")
        return []
    names = []
    for i, item in enumerate(listed):
        p = ("scenarios", i)
        if not c.mapping(item, p, {"name", "settings", "changes"}):
            continue
        nm = item.get("name")
        if not isinstance(nm, (str, int, float)) or str(nm) == "":
            c.bad(p, "missing_value", "every listed scenario needs a name")
            nm = f"scenario{i + 1}"
        if str(nm) in names:
            c.bad((*p, "name"), "duplicate_id", f"scenario name {nm!r} is used twice")
        names.append(str(nm))
        check_settings(item.get("settings") or {}, c, (*p, "settings"))
        own = item.get("changes") or {}
        check_changes(deep_merge(common, own) if isinstance(own, dict) else own, c, (*p, "changes"), facts,
                      source_dir)
    return listed


def _check_sweep_axes(raw: dict, c: "_Checker", common: dict, facts: BaseFacts,
                      source_dir: Path) -> list[tuple[list[str], list]]:
    """The cartesian sweep: each key names a change or setting, each value is checked as one."""
    sweep_raw = raw.get("sweep") or {}
    axes: list[tuple[list[str], list]] = []
    if not c.mapping(sweep_raw, ("sweep",)):
        return axes
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
        axes.append((head, values))
        seen: set[tuple[str, str]] = set()
        for j, v in enumerate(values):
            probe: dict = {}
            set_path(probe, head, v)
            before = len(c.problems)
            if head[0] == "settings":
                check_settings(probe["settings"], c, (*p, j))
            else:
                check_changes(deep_merge(common, probe["changes"]), _Sub(c, (*p, j)), ("changes",), facts,
                              source_dir)
            # A wrong key is wrong for every value: say it once, at its first value.
            new = c.problems[before:]
            del c.problems[before:]
            for q in new:
                if (q.code, q.message) not in seen:
                    seen.add((q.code, q.message))
                    c.problems.append(q)
    return axes


def _check_report(raw: dict, c: "_Checker") -> dict:
    report = raw.get("report") or {}
    if c.mapping(report, ("report",), _REPORT_KEYS) and "capping_budgets_pct" in report:
        budgets = report["capping_budgets_pct"]
        if not isinstance(budgets, list) or not budgets:
            c.bad(("report", "capping_budgets_pct"), "bad_value", "must be a list of percentages, e.g. [1, 5, 10]")
        else:
            for j, b in enumerate(budgets):
                c.number(b, ("report", "capping_budgets_pct", j), 0, 100)
    return report


def _check_expanded(scenarios: list[ScenarioSpec], c: "_Checker", file: str) -> None:
    """Rules across the expanded scenarios: load growth needs the predicted evaluator; ids are
    unique."""
    for spec in scenarios:
        if spec.settings["evaluator"] == "simulator" and (spec.changes.get("load_growth") or {}):
            c.bad(("settings", "evaluator"), "bad_value",
                  f"scenario {spec.id!r}: load_growth has no effect with the simulator evaluator (it replaces "
                  "the telemetry with real traces)", "use evaluator: predicted for load growth")
            break
    if c.problems:
        raise InventoryError(c.problems)
    ids = [s.id for s in scenarios]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise InventoryError([Problem("duplicate_id", file, f"scenario id {d!r} arises twice",
                                      "give listed scenarios distinct names") for d in sorted(dup)])


class _Sub(_Checker):
    """A checker that files problems under another path (sweep values checked as changes)."""

    def __init__(self, parent: _Checker, prefix: tuple):
        self.parent, self.prefix = parent, prefix
        self.file, self.lines, self.problems = parent.file, parent.lines, parent.problems

    def bad(self, path: tuple, code: str, message: str, hint: str = "") -> None:
        self.parent.bad(self.prefix, code, f"{'.'.join(map(str, path[1:]))}: {message}", hint)


def expand(name: str, base: Path, source_dir: Path, settings: dict, changes: dict, listed: list[dict],
           axes: list[tuple[list[str], list]]) -> list[ScenarioSpec]:
    """Every listed scenario crossed with every point of the cartesian sweep."""
    base_print = fingerprint(base)
    out = []
    points = list(itertools.product(*[values for _, values in axes])) if axes else [()]
    for item in listed:
        nm = str(item.get("name"))
        s0 = deep_merge(deep_merge(SETTINGS_DEFAULTS, settings), item.get("settings") or {})
        c0 = deep_merge(changes, item.get("changes") or {})
        for point in points:
            spec = {"settings": s0, "changes": c0}
            spec = copy.deepcopy(spec)
            params = {}
            for (head, _), value in zip(axes, point):
                set_path(spec, head, value)
                params[short_name(head)] = value
            sid = "__".join([_slug(nm)] + [f"{k}={_slug(v)}" for k, v in params.items()])
            weather = (spec["changes"].get("outside") or {}).get("weather")
            inputs = {"weather": file_print(source_dir / weather)} if weather else {}
            digest = hashlib.sha256(json.dumps({"settings": spec["settings"], "changes": spec["changes"],
                                                "base": base_print, **inputs}, sort_keys=True, default=str).encode())
            if len(sid) > MAX_ID_CHARS:  # ids name files: keep them short, unique by a hash of the point
                sid = sid[:MAX_ID_CHARS - 9] + "~" + hashlib.sha256(sid.encode()).hexdigest()[:8]
            out.append(ScenarioSpec(sid, nm, str(base), spec["settings"], spec["changes"], params,
                                    digest.hexdigest()[:16], str(source_dir)))
    return out
