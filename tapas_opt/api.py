"""The Python API: what the CLI and the notebooks call.

>>> from tapas_opt.api import place
>>> result = place("data/example", out_dir="plan")          # doctest: +SKIP
>>> result.summary["peak_row_power_fraction"]               # doctest: +SKIP

For an online allocator that places one VM at a time, :class:`Planner` keeps the room state in
memory and answers each request in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from tapas_opt.config import QUANTILES, DatacenterConfig
from tapas_opt.errors import InventoryError, Problem, first_few
from tapas_opt.forecast.base import LoadProfiles
from tapas_opt.forecast.profiles import build_profiles, load_with_profiles, outside_forecast
from tapas_opt.inventory.load import Inventory, line_mapper, load_inventory
from tapas_opt.placement import heuristics
from tapas_opt.placement.evaluate import server_warmth
from tapas_opt.placement.explain import explain_plan
from tapas_opt.placement.instance import PlacementInstance, build_instance
from tapas_opt.placement.output import (MOVES_FILE, QUEUE_FILE, build_summary, read_moves, read_plan, with_plan_queue,
                                        write_plan)
from tapas_opt.placement.solve import PlacementSolution, solve_placement
from tapas_opt.placement.state import RoomState
from tapas_opt.placement.verify import VerifyReport, verify_plan
from tapas_opt.shapes import NUMBER, OPTIONAL, TEXT, read_json_value


@dataclass
class Prepared:
    """An inventory with its profiles and placement instance, ready to solve."""

    inventory: Inventory
    config: DatacenterConfig
    profiles: LoadProfiles
    instance: PlacementInstance


FORECAST_METHODS = ("auto", "template")


def make_forecaster(method: str, step_min: int):
    """``auto``: per VM the method that back-tests best (the default); ``template``: the paper's
    per-slot-of-week quantiles over 4 weeks (fast, no model fitting)."""
    if method == "auto":
        return None  # build_profiles' default
    if method == "template":
        from tapas_opt.forecast.template import TemplateForecaster

        return TemplateForecaster(step_min)
    raise ValueError(f"unknown forecast method {method!r}: use one of {FORECAST_METHODS}")


def prepare(inventory: str | Path | Inventory, profiles_path: str | Path | None = None,
            forecast_method: str = "auto", **placement_options) -> Prepared:
    """Load (if needed), forecast and build the placement instance.

    ``placement_options`` override ``datacenter.yaml``'s ``placement`` section (None = keep).
    """
    inv, supplied = load_with_profiles(inventory, profiles_path)
    config = inv.config.with_placement(**placement_options)
    forecaster = make_forecaster(forecast_method, inv.config.time_step_min)
    profiles = build_profiles(inv, forecaster=forecaster, supplied=supplied)
    outside = outside_forecast(inv, profiles.horizon)
    instance = build_instance(inv, profiles, outside, config)
    return Prepared(inv, config, profiles, instance)


@dataclass
class PlaceResult:
    prepared: Prepared
    solution: PlacementSolution
    summary: dict
    explanations: list[dict] | None = None
    out_dir: Path | None = None


def place(inventory: str | Path | Inventory, out_dir: str | Path | None = None, policy: str = "optimal",
          backend: str = "cp-sat", profiles_path: str | Path | None = None, explain: bool = True,
          forecast_method: str = "auto", **placement_options) -> PlaceResult:
    """Plan the pending VMs of an inventory; write the plan directory if ``out_dir`` is given."""
    prep = prepare(inventory, profiles_path, forecast_method, **placement_options)
    sol = solve_placement(prep.instance, policy, backend)
    warnings = [str(w) for w in prep.inventory.warnings] + list(prep.instance.warnings)
    name = prep.config.name
    summary = build_summary(prep.instance, sol, prep.profiles, name, warnings)
    summary["inventory_dir"] = str(Path(prep.inventory.root).resolve())
    explanations = explain_plan(prep.instance, sol.evaluation) if explain else None
    if out_dir is not None:
        write_plan(out_dir, prep.instance, sol, prep.profiles, summary, explanations)
    return PlaceResult(prep, sol, summary, explanations, Path(out_dir) if out_dir else None)


def verify(inventory: str | Path | Inventory, plan_dir: str | Path, forecast_method: str = "auto") -> VerifyReport:
    """Re-check a plan directory against an inventory (physics only, no solver)."""
    return check_plan_dir(inventory, plan_dir, forecast_method).report


@dataclass
class CheckedPlan:
    """A plan directory re-checked against an inventory (:func:`check_plan_dir`): the check,
    and the files it read (what ``tapas-opt report`` draws)."""

    report: VerifyReport
    summary: dict
    plan: pd.DataFrame
    moves: pd.DataFrame
    room: str


def check_plan_dir(inventory: str | Path | Inventory, plan_dir: str | Path, forecast_method: str = "auto"
                   ) -> CheckedPlan:
    """What ``verify`` and ``report`` share: read a plan directory (``summary.json`` checked,
    ``moves.csv`` checked against ``plan.csv``), evaluate it at the plan's load band with its
    own profiles when saved, and warn when the plan was made for another inventory."""
    plan_dir = Path(plan_dir)
    summary = plan_summary(plan_dir)
    root = Path(inventory.root if isinstance(inventory, Inventory) else inventory).resolve()
    made_for = summary.get("inventory_dir")
    other_room = made_for if made_for is not None and Path(made_for).resolve() != root else None
    try:
        inv = with_plan_queue(inventory if isinstance(inventory, Inventory) else load_inventory(inventory), plan_dir)
        plan = read_plan(plan_dir)
        moves = read_moves(plan_dir, inv, plan)
        saved = plan_dir / "profiles.parquet"
        prep = prepare(inv, saved if saved.exists() else None, forecast_method=forecast_method,
                       quantile=summary.get("quantile"))
        report = verify_plan(prep.instance, plan, line_mapper(plan_dir / "plan.csv"), moves)
    except InventoryError as exc:
        problems = _in_plan_dir(exc.problems, plan_dir)
        if other_room is None:
            raise InventoryError(problems) from None
        raise InventoryError([_other_room_problem(plan_dir, other_room, root), *problems]) from None
    if other_room is not None:
        report.warnings.append(f"the plan was made for the inventory {other_room} (its summary.json), not "
                               f"{root}: its violations may only mean the wrong room")
    report.warnings += _unlisted_unplaced(report.unplaced, summary)
    report.warnings += _moves_without_order(plan, plan_dir)
    report.warnings += _own_profile_warnings(prep.inventory, plan_dir)
    return CheckedPlan(report, summary, plan, moves, prep.config.name)


def _moves_without_order(plan: pd.DataFrame, plan_dir: Path) -> list[str]:
    """A plan that moves running VMs (status ``moved``) but has no moves.csv: checked on where
    the VMs end, not on the order they get there."""
    if "status" not in plan.columns or (plan_dir / MOVES_FILE).exists():
        return []
    moved = int((plan["status"] == "moved").sum())
    return [f"plan.csv moves {moved} running VM(s) but {plan_dir} has no {MOVES_FILE}: the plan is checked after "
            "the moves, not while each runs (restore moves.csv, or re-run 'tapas-opt plan')"] if moved else []


SUMMARY_HINT = "re-run the command that wrote the plan, or remove summary.json to check it at the inventory's load band"
PLAN_SUMMARY = {"quantile": TEXT, "inventory_dir": TEXT, "unplaced": [dict], "vms": dict, "warnings": list,
                "nightly": {"peak_row_power_without_moves": NUMBER + OPTIONAL,
                            "peak_row_power_with_moves": NUMBER + OPTIONAL}}
"""The keys of a plan's summary.json that verify and report read, and their types."""


def plan_summary(plan_dir: str | Path) -> dict:
    """The plan's ``summary.json`` ({} when it has none: plans from other tools need not); the
    keys verify and report read must have their types, and ``quantile`` be a load band."""
    path = Path(plan_dir) / "summary.json"
    summary = read_json_value(path, PLAN_SUMMARY, SUMMARY_HINT, missing={})
    quantile = summary.get("quantile")
    if quantile is not None and quantile not in QUANTILES:
        raise InventoryError([Problem("bad_value", str(path), f"quantile {quantile!r} is not "
                                      f"one of {', '.join(QUANTILES)}", SUMMARY_HINT, column="quantile")])
    return summary


PLAN_FILES = ("plan.csv", "profiles.parquet", "moves.csv")
"""Files of a plan directory that problems name by their bare name (``read_profiles``, the plan checks)."""


def _in_plan_dir(problems: list[Problem], plan_dir: Path) -> list[Problem]:
    """The plan's own files named by their path (``plan.csv`` read as the inventory's
    ``plan.csv``); in a room plan of plan-region, a VM that is neither the inventory's nor in
    queue.csv means the plan's files disagree (queue.csv edited, or files of several runs): said
    so, instead of 'add the VM to the inventory'."""
    region_room = (plan_dir / QUEUE_FILE).exists()
    out = []
    for p in problems:
        if p.file in PLAN_FILES:
            p = replace(p, file=str(plan_dir / p.file))
            if region_room and p.code == "unknown_vm":
                p = replace(p, message=p.message.replace("is not in vms.csv", f"is neither in vms.csv nor in {QUEUE_FILE}"),
                          hint=f"the room plan's files disagree: {plan_dir / QUEUE_FILE} lists the VMs the region "
                               "gave the room; copy the room plan's directory whole, or re-run plan-region")
        out.append(p)
    return out


def _other_room_problem(plan_dir: Path, made_for: str, root: Path) -> Problem:
    return Problem("other_inventory", str(plan_dir / "summary.json"),
                   f"the plan was made for the inventory {made_for}, not {root}: the problems below may only "
                   "mean the wrong room", f"verify it against {made_for}", column="inventory_dir")


def _own_profile_warnings(inventory: Inventory, plan_dir: Path) -> list[str]:
    """A plan's ``profiles.parquet`` that lacks some of the inventory's VMs (or has slots outside
    its horizon) was edited or belongs to another inventory: the missing VMs are forecast here, so
    their figures need not be the ones the plan was made with. Said, not silently absorbed."""
    return [f"{plan_dir / 'profiles.parquet'}: {w.message}" for w in inventory.warnings
            if w.code in ("profiles_incomplete", "profiles_outside_horizon")]


def _unlisted_unplaced(unplaced: list[str], summary: dict) -> list[str]:
    """Pending VMs missing from ``plan.csv`` that the plan's own summary does not call unplaced:
    the plan.csv was cut short or edited after the plan was made, and 'N unplaced' alone would
    pass for the plan's own result."""
    listed = summary.get("unplaced")
    if not isinstance(listed, list) or not unplaced:
        return []
    known = {str(u.get("vm_id")) for u in listed if isinstance(u, dict)}
    missing = [v for v in unplaced if v not in known]
    if not missing:
        return []
    return [f"{len(missing)} pending VM(s) are not in plan.csv although its summary.json does not list them "
            f"as unplaced: {first_few(missing, 10)} (was plan.csv cut short or edited? they are checked as not placed)"]


@dataclass
class Planner:
    """Online placement of one VM at a time against a room kept in memory.

    Build it once from an inventory (forecasting and physics precomputed), then call
    :meth:`place` per request; accepted VMs update the room state.
    """

    instance: PlacementInstance
    state: RoomState = field(init=False)
    warmth: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.state = RoomState(self.instance)
        self.warmth = server_warmth(self.instance)

    @classmethod
    def from_inventory(cls, inventory, forecast_method: str = "auto", **placement_options) -> "Planner":
        return cls(prepare(inventory, forecast_method=forecast_method, **placement_options).instance)

    def place(self, load: np.ndarray, gpus: int = 8, kind: str = "iaas", commit: bool = True) -> str | None:
        """Best feasible server for a VM with this load profile (one value per slot of the
        horizon, at the placement quantile, each in 0..1), or None if no server can take it.

        Raises ValueError for a request that is not one: a load that is not a number in 0..1, a
        GPU count that is not a whole number >= 1, a kind other than iaas/saas (a negative GPU
        count was accepted and gave its server GPUs it does not have)."""
        inst = self.instance
        load = self._checked_request(load, gpus, kind)
        reps = inst.hw_representative
        power = inst.params.vm_power_kw(load, gpus, reps[:, None])
        air = inst.params.vm_airflow_cfm(load, gpus, reps[:, None])
        cand = self.state.candidates_of(power, air, gpus, lambda s: inst.peak_temp_c(load, s)[0])
        if len(cand.servers) == 0:
            return None
        score = heuristics.score_candidates(self.state, kind, gpus, cand, self.warmth)
        k = int(np.argmin(score))
        s = int(cand.servers[k])
        if commit:
            pool = inst.pool_of_server[s]
            self.state.row_kw[inst.pool_row[pool]] += power[inst.pool_hw[pool]]
            self.state.aisle_cfm[inst.pool_aisle[pool]] += air[inst.pool_hw[pool]]
            self.state.free[s] -= gpus
            self.state.peak_temp_c = max(self.state.peak_temp_c, float(cand.peak_temp_c[k]))
            self.state.placed_peak_temp_c = max(self.state.placed_peak_temp_c, float(cand.peak_temp_c[k]))
        return str(inst.server_ids[s])

    def _checked_request(self, load, gpus, kind) -> np.ndarray:
        """The load as one row of the horizon's slots, after checking the request (see :meth:`place`)."""
        if isinstance(gpus, bool) or not isinstance(gpus, (int, np.integer)) or gpus < 1:
            raise ValueError(f"gpus = {gpus!r}: give a whole number of GPUs >= 1")
        if kind not in ("iaas", "saas"):
            raise ValueError(f"kind = {kind!r}: give 'iaas' or 'saas'")
        load = np.asarray(load, float).reshape(1, -1)
        if load.shape[1] != self.instance.n_slots:
            raise ValueError(f"load has {load.shape[1]} slots; the horizon has {self.instance.n_slots}")
        outside = ~np.isfinite(load) | (load < -1e-9) | (load > 1 + 1e-9)
        if outside.any():
            slot = int(np.flatnonzero(outside[0])[0])
            raise ValueError(f"load[{slot}] = {float(load[0, slot])!r}: every slot's load must be a number in 0..1")
        return np.clip(load, 0, 1)
