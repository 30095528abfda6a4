"""``physics.yaml``: coefficients fitted to the room, read back by the inventory loader.

``tapas-opt fit INVENTORY_DIR`` writes ``INVENTORY_DIR/physics.yaml``; whenever that file is
present, :func:`apply_physics_file` (called by :func:`tapas_opt.inventory.load.check_inventory`)
lets it override, key by key:

* ``server_defaults:`` and ``inlet:`` over the same sections of ``datacenter.yaml``;
* ``servers: {server_id: {column: value}}`` over those columns of ``servers.csv``
  (``idle_power_kw``, ``max_power_kw``, ``idle_airflow_cfm``, ``max_airflow_cfm``,
  ``inlet_offset_c``, ``gpu_idle_w``, ``gpu_max_w``, ``gpu_temp_intercept_c``,
  ``gpu_temp_c_per_w``).

The ``source`` and ``fits`` sections (where the numbers came from, confidence intervals, MAE)
are for people and are not read. Delete the file to go back to ``datacenter.yaml``'s models.
"""

from __future__ import annotations

import math
from dataclasses import fields, replace
from pathlib import Path

import pandas as pd
import yaml

from tapas_opt.config import DatacenterConfig, InletModel, ServerDefaults, check_config
from tapas_opt.errors import Problem
from tapas_opt.io import atomic_write_text
from tapas_opt.yamlfile import KeyLines, load_yaml, locate, unreadable

FILE = "physics.yaml"
SERVER_COLUMNS = ("idle_power_kw", "max_power_kw", "idle_airflow_cfm", "max_airflow_cfm", "inlet_offset_c",
                  "gpu_idle_w", "gpu_max_w", "gpu_temp_intercept_c", "gpu_temp_c_per_w")
SECTIONS = {"server_defaults": ServerDefaults, "inlet": InletModel}
IGNORED = {"source", "fits"}


def _number(value, key: str, problems: list[Problem]) -> float | None:
    try:
        out = float(value)
        if not math.isfinite(out):
            raise ValueError
        return out
    except (TypeError, ValueError):
        problems.append(Problem("bad_value", FILE, f"'{key}' = {value!r} is not a finite number",
                                "re-run tapas-opt fit or fix the value", column=key))
        return None


def _section(cls, current, raw, name: str, problems: list[Problem]):
    """``current`` (a dataclass) with the keys of ``raw`` replaced, each coerced to its type."""
    if not isinstance(raw, dict):
        problems.append(Problem("bad_value", FILE, f"'{name}' must be a mapping", column=name))
        return current
    known = {f.name for f in fields(cls)}
    changes = {}
    for key, value in raw.items():
        if key not in known:
            problems.append(Problem("unknown_key", FILE, f"unknown key '{name}.{key}'",
                                    f"known keys: {', '.join(sorted(known))}", column=f"{name}.{key}"))
            continue
        if isinstance(getattr(current, key), tuple):
            if not isinstance(value, (list, tuple)) or not value:
                problems.append(Problem("bad_value", FILE, f"'{name}.{key}' must be a list of numbers",
                                        column=f"{name}.{key}"))
                continue
            nums = [_number(v, f"{name}.{key}", problems) for v in value]
            if all(n is not None for n in nums):
                changes[key] = tuple(nums)
        else:
            num = _number(value, f"{name}.{key}", problems)
            if num is not None:
                changes[key] = num
    return replace(current, **changes)


def read_physics_file(path: Path | str) -> tuple[dict, KeyLines, list[Problem]]:
    """Parse ``physics.yaml``; return the raw mapping (``{}`` if unusable), the line of every
    key and its problems."""
    raw, lines, problems = load_yaml(path, FILE, "re-run tapas-opt fit")
    if unreadable(problems):
        return {}, lines, problems
    if not isinstance(raw, dict):
        return {}, lines, [Problem("bad_yaml", FILE, "top level must be a mapping")]
    problems += [Problem("unknown_key", FILE, f"unknown section '{k}'",
                         f"known: {', '.join(sorted(set(SECTIONS) | {'servers'} | IGNORED))}", column=str(k))
                 for k in raw if k not in SECTIONS and k not in IGNORED and k != "servers"]
    return raw, lines, problems


def apply_physics_file(path: Path | str, config: DatacenterConfig,
                       servers: pd.DataFrame | None) -> tuple[DatacenterConfig, pd.DataFrame | None, list[Problem]]:
    """Override config sections and servers.csv columns with the values in ``physics.yaml``.

    Returns the new config, the new servers frame (a copy; ``None`` stays ``None``) and every
    problem found (unknown keys or servers, values that are not numbers, overridden values out
    of range), each with its line in the file.
    """
    raw, lines, problems = read_physics_file(path)
    for name, cls in SECTIONS.items():
        if name in raw:
            config = replace(config, **{name: _section(cls, getattr(config, name), raw[name], name, problems)})
    per_server = raw.get("servers") or {}
    if not isinstance(per_server, dict):
        problems.append(Problem("bad_value", FILE, "'servers' must map server ids to column values",
                                column="servers"))
        per_server = {}
    if servers is not None and per_server:
        servers = servers.copy()
        known = pd.Index(servers["server_id"])
        for sid, values in per_server.items():
            if str(sid) not in set(known):
                problems.append(Problem("unknown_server", FILE, f"server {sid!r} is not in servers.csv",
                                        "re-run tapas-opt fit after changing servers.csv", column=f"servers.{sid}"))
                continue
            if not isinstance(values, dict):
                problems.append(Problem("bad_value", FILE, f"'servers.{sid}' must be a mapping",
                                        column=f"servers.{sid}"))
                continue
            row = known.get_loc(str(sid))
            for col, value in values.items():
                if col not in SERVER_COLUMNS:
                    problems.append(Problem("unknown_key", FILE, f"unknown column 'servers.{sid}.{col}'",
                                            f"known: {', '.join(SERVER_COLUMNS)}", column=f"servers.{sid}.{col}"))
                    continue
                num = _number(value, f"servers.{sid}.{col}", problems)
                if num is not None:
                    if col not in servers.columns:
                        servers[col] = float("nan")
                    servers[col] = servers[col].astype(float)
                    servers.iloc[row, servers.columns.get_loc(col)] = num
    # Range checks of the merged config, for the sections this file overrides (datacenter.yaml's
    # own keys are reported against datacenter.yaml).
    problems += [p for p in check_config(config, FILE) if lines.line(p.column) is not None]
    return config, servers, locate(problems, FILE, lines)


def write_physics_file(path: Path | str, physics: dict, header: str) -> Path:
    """Write ``physics.yaml`` atomically, ``header`` as leading comment lines."""
    path = Path(path)
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    atomic_write_text(path, comment + yaml.safe_dump(physics, sort_keys=False, default_flow_style=None))
    return path
