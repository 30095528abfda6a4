"""Reading a reconfiguration plan's files back: ``configs.csv`` and the ``caps.csv`` beside it.

``tapas-opt route --configs`` routes with a plan that ``reconfigure`` wrote and an operator may
have edited (docs/reconfiguration.md). Both files are read strictly, the same way: each cell
against a schema (an empty cell is ``missing_value`` on its line, not an unknown id 'nan'), a VM
listed twice refused (which row would win is not the user's intent), then the rules that need
the room; every problem of a file at once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from tapas_opt import physics
from tapas_opt.errors import InventoryError, Problem
from tapas_opt.inventory.load import line_mapper, listed_twice, read_user_table
from tapas_opt.inventory.schema import InputSchema, validate_frame, with_column_hint
from tapas_opt.reconfig.evaluate import over_slo
from tapas_opt.reconfig.instance import ReconfigInstance
from tapas_opt.reconfig.model import capacity_units
from tapas_opt.reconfig.summary import iaas_cap

KINDS = ("iaas", "saas")
CAP_RTOL = 1e-3
"""Relative gap between a written power cap and the one its ``load_after`` gives that is still
the rounding of the file (caps to 4 decimals of kW and 1 of W, loads to 4 decimals), not an edit."""
CAP_ATOL = {"power_cap_kw": 1e-3, "gpu_power_cap_w": 0.1}


class ConfigsFileSchema(InputSchema):
    """configs.csv: the configuration (and effective power level) a plan gives each SaaS VM."""

    vm_id: Series[str]
    config_id: Series[str]
    power_level: Series[float] | None = pa.Field(gt=0, le=1)  # optional column; its cells are not


class CapsFileSchema(InputSchema):
    """caps.csv: the highest GPU load of each capped VM, and the same cap in kW and W."""

    vm_id: Series[str]
    kind: Series[str] = pa.Field(isin=list(KINDS))
    load_after: Series[float] = pa.Field(ge=0, le=1)
    power_cap_kw: Series[float] | None = pa.Field(ge=0, nullable=True)
    gpu_power_cap_w: Series[float] | None = pa.Field(ge=0, nullable=True)
    server_id: Series[str] | None = pa.Field(nullable=True)
    gpus: Series[float] | None = pa.Field(gt=0, nullable=True)


def _read_plan_file(path: Path, raw: pd.DataFrame, schema: type[InputSchema],
                    columns: str) -> tuple[pd.DataFrame, list[Problem], pd.Series]:
    """The file (``raw``, as read from ``path``), the problems of its cells and of VMs listed twice, and the rows those leave
    out of the rules that follow (every row of a VM listed twice: none of them is the one).
    A missing column is raised at once: no row can be read without it."""
    line_of = line_mapper(path)
    frame, problems = validate_frame(raw, schema, path.name, line_of)
    problems = with_column_hint(problems, f"columns: {columns} (as reconfigure writes them)")
    if any(p.code == "missing_column" for p in problems):
        raise InventoryError(problems)
    twice, repeated = listed_twice(frame, path.name, line_of)
    problems += repeated
    bad_lines = {p.line for p in problems}
    skip = twice | frame.index.to_series().map(lambda i: line_of(i) in bad_lines)
    return frame, problems, skip


def read_configs(path, instance: ReconfigInstance) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Configuration and power level per SaaS VM from a ``configs.csv`` (``vm_id, config_id``,
    optional ``power_level``: the effective dynamic power level ``reconfigure`` writes, which
    may sit below its configuration's own level when the plan caps the GPUs online); VMs it
    does not list keep their current configuration at its level. Returns (catalogue position,
    power level relative to that configuration) per SaaS VM, and warnings for what the file
    leaves to those defaults. Every problem is reported at once: empty cells, unknown VMs and
    configurations, a configuration of another model family than the VM's, a VM listed twice,
    a level out of range."""
    path = Path(path)
    frame, problems, skip = _read_plan_file(path, read_user_table(path), ConfigsFileSchema, "vm_id, config_id")
    line_of = line_mapper(path)
    config = instance.saas["current"].to_numpy(int).copy()
    clock = np.ones(len(config))
    pos = {vm: i for i, vm in enumerate(instance.saas["vm_id"])}
    family = instance.saas["family"].to_numpy()
    cat = instance.catalogue
    level_ratio = instance.cfg["level_ratio"]
    for idx, rec in frame[~skip].iterrows():
        if rec["vm_id"] not in pos:
            problems.append(Problem("unknown_vm", path.name, f"vm_id {rec['vm_id']!r} is not a running SaaS VM",
                                    line=line_of(idx), column="vm_id"))
            continue
        if rec["config_id"] not in cat.position.index:
            problems.append(Problem("unknown_config", path.name, f"config_id {rec['config_id']!r} is not in the catalogue",
                                    column="config_id", line=line_of(idx)))
            continue
        v, c = pos[rec["vm_id"]], int(cat.position[rec["config_id"]])
        if cat.configs.at[c, "family"] != family[v]:
            problems.append(Problem("config_family", path.name, f"config_id {rec['config_id']!r} belongs to family "
                                    f"{cat.configs.at[c, 'family']!r}, but {rec['vm_id']!r} runs {family[v]!r}",
                                    "pick a configuration of the VM's model family", column="config_id", line=line_of(idx)))
            continue
        config[v] = c
        if "power_level" in frame.columns and pd.notna(rec["power_level"]):
            own = float(level_ratio[c]) if np.isfinite(level_ratio[c]) and level_ratio[c] > 0 else 1.0
            level = float(rec["power_level"])
            if level > own + 1e-4:
                problems.append(Problem("out_of_range", path.name, f"power_level {level:g} is not in "
                                        f"0..{own:g} (the level of {rec['config_id']})", column="power_level", line=line_of(idx)))
                continue
            lowest = own * float(_lowest_clock(instance, v, c))
            if level < lowest - 1e-4:
                problems.append(Problem("out_of_range", path.name, f"power_level {level:g} of {rec['vm_id']!r} is below "
                                        f"the lowest its GPUs can be held to ({lowest:.4g}: "
                                        f"{instance.options.iaas_cap_floor_w:g} W per GPU at full throughput)",
                                        "a GPU cannot be capped below its minimum power limit: raise power_level",
                                        line_of(idx), "power_level"))
                continue
            clock[v] = min(1.0, level / own)
    if problems:
        raise InventoryError(problems)
    warnings = _slo_warnings(instance, config, clock, path.name)
    if "power_level" not in frame.columns:
        warnings.append(f"{path.name} has no power_level column: every configuration runs at its catalogue level "
                        "(reconfigure's configs.csv gives the plan's levels)")
    unlisted = sorted(set(pos) - set(frame["vm_id"]))
    if unlisted:
        warnings.append(f"{len(unlisted)} running SaaS VM(s) are not in {path.name} and keep their current "
                        f"configuration, e.g. {', '.join(repr(v) for v in unlisted[:3])}")
    return config, clock, warnings


def _lowest_clock(instance: ReconfigInstance, v: int, c: int) -> float:
    """Lowest power level (relative to configuration ``c``'s own) for SaaS VM ``v``: the one at
    which its busy GPUs draw the GPUs' minimum power limit at full throughput (the same floor as
    an IaaS cap, ``ReconfigOptions.iaas_cap_floor_w``)."""
    cfg, params = instance.cfg, instance.params
    srv = int(instance.saas.at[v, "server"])
    floor = float(physics.load_for_gpu_power(instance.options.iaas_cap_floor_w, params.gpu_idle_w[srv],
                                             params.gpu_max_w[srv], params.poly))
    # the busy GPUs' load at full throughput, at the configuration's level
    full = cfg["energy_ratio"][c] * float(capacity_units(instance, 1.0, [c])[0]) / cfg["active_share"][c]
    return min(1.0, floor / full) if full > 0 else 0.0


def _slo_warnings(instance: ReconfigInstance, config: np.ndarray, clock: np.ndarray, file: str) -> list[str]:
    """A warning naming the VMs whose power level makes their time between tokens longer than
    their SLO: route serves their load, slower than promised (a uniform cap does that; the
    optimal plan does not)."""
    slow = np.flatnonzero(over_slo(instance, config, clock))
    if not len(slow):
        return []
    names = ", ".join(repr(v) for v in instance.saas["vm_id"].to_numpy()[slow[:3]])
    return [f"{len(slow)} SaaS VM(s) of {file} run at a power level too low for their latency SLO (time between "
            f"tokens above it), e.g. {names}: the load routed to them misses the SLO"]


def read_caps(path, instance: ReconfigInstance) -> np.ndarray:
    """Highest GPU load per IaaS VM under the caps of a ``caps.csv`` (``vm_id, kind,
    load_after``, optional ``power_cap_kw``, ``gpu_power_cap_w``) that ``reconfigure`` wrote
    beside its configs.csv; ``inf`` for VMs it does not list (uncapped). The order is the
    instance's, the same at every slot.

    ``load_after`` is the cap route applies; the kW and W columns are the same cap in other
    units, so one that disagrees with it (an edit that would change nothing) is bad input, as
    are a VM listed twice, an empty cell and a kind other than iaas/saas (in any case). SaaS
    rows (``uniform-cap``) are not read: configs.csv's ``power_level`` carries those caps."""
    path = Path(path)
    raw = read_user_table(path)
    if "kind" in raw.columns:
        raw["kind"] = raw["kind"].map(lambda v: v.strip().lower() if isinstance(v, str) else v)
    frame, problems, skip = _read_plan_file(path, raw, CapsFileSchema, "vm_id, kind, load_after")
    line_of = line_mapper(path)
    caps = np.full(len(instance.iaas), np.inf)
    pos = {vm: i for i, vm in enumerate(instance.iaas["vm_id"])}
    for idx, rec in frame[~skip & (frame["kind"] == "iaas")].iterrows():
        if rec["vm_id"] not in pos:
            problems.append(Problem("unknown_vm", path.name, f"vm_id {rec['vm_id']!r} is not a running IaaS VM",
                                    line=line_of(idx), column="vm_id"))
            continue
        after = float(rec["load_after"])
        floor = float(instance.iaas.at[pos[rec["vm_id"]], "cap_floor"])
        if after < floor - 1e-4:
            problems.append(Problem("out_of_range", path.name, f"load_after {after:g} is below the lowest cap of "
                                    f"{rec['vm_id']!r} ({floor:.4g}: {instance.options.iaas_cap_floor_w:g} W per GPU)",
                                    "a GPU cannot be capped below that: raise load_after", line_of(idx), "load_after"))
            continue
        problems += _cap_mismatches(rec, iaas_cap(instance, pos[rec["vm_id"]], after), path.name, line_of(idx))
        problems += _placement_mismatches(rec, instance, pos[rec["vm_id"]], path.name, line_of(idx))
        caps[pos[rec["vm_id"]]] = after
    if problems:
        raise InventoryError(problems)
    return caps


def _placement_mismatches(rec: pd.Series, instance: ReconfigInstance, i: int, file: str, line: int) -> list[Problem]:
    """A problem per ``server_id`` / ``gpus`` cell of a caps.csv row that is not where IaaS VM
    ``i`` (instance order) runs or how many GPUs it has: route caps the VM where it runs, so an
    edit there (a cap meant for another server, a VM resized since the plan) would change
    nothing. An empty or absent cell says nothing."""
    vm = rec["vm_id"]
    actual = {"server_id": str(instance.server_ids[int(instance.iaas.at[i, "server"])]),
              "gpus": int(instance.iaas.at[i, "gpus"])}
    problems = []
    for col, want in actual.items():
        given = rec.get(col)
        if given is None or pd.isna(given) or (given == want if col == "server_id" else float(given) == want):
            continue
        shown = repr(str(given)) if col == "server_id" else f"{float(given):g}"
        problems.append(Problem("cap_mismatch", file, f"{col} {shown} is not {vm!r}'s: it runs on "
                                f"{actual['server_id']!r} with {actual['gpus']} GPUs; route caps the VM where it runs",
                                "the plan is for another inventory: run reconfigure again, or correct the cell",
                                line, col))
    return problems


def _cap_mismatches(rec: pd.Series, expected: tuple[float, float], file: str, line: int) -> list[Problem]:
    """A problem per cap column of a caps.csv row that is not the cap its ``load_after`` gives
    (``expected``: kW, W); an empty or absent one says nothing."""
    problems = []
    for col, want in zip(("power_cap_kw", "gpu_power_cap_w"), expected):
        given = rec.get(col)
        if given is None or pd.isna(given) or np.isclose(float(given), want, rtol=CAP_RTOL, atol=CAP_ATOL[col]):
            continue
        problems.append(Problem("cap_mismatch", file, f"{col} {float(given):g} is not the cap load_after "
                                f"{float(rec['load_after']):g} gives ({want:.4g}); route applies load_after",
                                "change load_after to the cap you mean and the other cap columns with it, or "
                                "leave them empty", line, col))
    return problems
