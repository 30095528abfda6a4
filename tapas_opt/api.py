"""The Python API: what the CLI and the notebooks call.

>>> from tapas_opt.api import place
>>> result = place("data/example", out_dir="plan")          # doctest: +SKIP
>>> result.summary["peak_row_power_fraction"]               # doctest: +SKIP

For an online allocator that places one VM at a time, :class:`Planner` keeps the room state in
memory and answers each request in milliseconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tapas_opt.config import QUANTILES, DatacenterConfig
from tapas_opt.errors import InventoryError, Problem
from tapas_opt.forecast.base import LoadProfiles
from tapas_opt.forecast.profiles import build_profiles, load_with_profiles, outside_forecast
from tapas_opt.inventory.load import Inventory, load_inventory
from tapas_opt.placement import heuristics
from tapas_opt.placement.evaluate import server_warmth
from tapas_opt.placement.explain import explain_plan
from tapas_opt.placement.instance import PlacementInstance, build_instance
from tapas_opt.placement.output import build_summary, read_plan, with_plan_queue, write_plan
from tapas_opt.placement.solve import PlacementSolution, solve_placement
from tapas_opt.placement.state import RoomState
from tapas_opt.placement.verify import VerifyReport, verify_plan


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


def verify(inventory: str | Path | Inventory, plan_dir: str | Path) -> VerifyReport:
    """Re-check a plan directory against an inventory (physics only, no solver)."""
    plan_dir = Path(plan_dir)
    inv = with_plan_queue(inventory if isinstance(inventory, Inventory) else load_inventory(inventory), plan_dir)
    plan = read_plan(plan_dir)
    saved = plan_dir / "profiles.parquet"
    # Check at the load band the plan was made for (its summary), else the inventory's.
    quantile, made_for = None, None
    summary_path = plan_dir / "summary.json"
    if summary_path.exists():
        try:
            summary = json.loads(summary_path.read_text())
            quantile, made_for = summary.get("quantile"), summary.get("inventory_dir")
        except (ValueError, AttributeError) as exc:
            raise InventoryError([Problem("unreadable_file", str(summary_path), f"not a JSON object: {exc}",
                                          "re-run place, or remove summary.json to verify at the inventory's "
                                          "load band")]) from None
        if quantile is not None and quantile not in QUANTILES:
            raise InventoryError([Problem("bad_value", str(summary_path), f"quantile {quantile!r} is not one of "
                                          f"{', '.join(QUANTILES)}", "re-run place", column="quantile")])
    prep = prepare(inv, saved if saved.exists() else None, quantile=quantile)
    report = verify_plan(prep.instance, plan)
    if isinstance(made_for, str) and Path(made_for).resolve() != Path(inv.root).resolve():
        report.warnings.append(f"the plan was made for the inventory {made_for} (its summary.json), not "
                               f"{Path(inv.root).resolve()}: its violations may only mean the wrong room")
    return report


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
        horizon, at the placement quantile), or None if no server can take it."""
        inst = self.instance
        load = np.clip(np.asarray(load, float).reshape(1, -1), 0, 1)
        if load.shape[1] != inst.n_slots:
            raise ValueError(f"load has {load.shape[1]} slots; the horizon has {inst.n_slots}")
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
