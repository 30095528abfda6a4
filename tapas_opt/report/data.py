"""What a report draws about one plan, recomputed from the inventory and the plan directory.

:func:`load_plan_view` reads a plan directory (only ``plan.csv`` is required, so plans from
other tools can be reported too), re-evaluates it against the inventory with the physics module
alone -- exactly as ``tapas-opt verify`` does, with the plan's own ``profiles.parquet`` and load
band when present -- and gathers everything the HTML report and the PNG figures draw into one
:class:`PlanView`. The figures therefore show checked numbers, not the solver's claims.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from tapas_opt.inventory.load import Inventory
from tapas_opt.shapes import read_json_value


@dataclass(frozen=True)
class PlanView:
    """One plan, evaluated: the room's layout, per-server peaks and per-row/aisle series.

    Attributes
    ----------
    label : str
        Short name shown in the report ("plan", "baseline", or the policy).
    summary : dict
        ``summary.json`` of the plan directory (empty if the plan has none).
    servers : DataFrame
        Index ``server_id``; columns ``row_id, aisle_id, rack, gpus, used_gpus, idle_kw, max_kw, peak_kw,
        peak_gpu_temp_c`` (NaN on servers without VMs), ``vms``, ``placed_vms``, ``moved_in``
        (comma-separated VM ids) and ``n_placed``.
    warnings : list of str
        What the check warns about (as ``tapas-opt verify`` does): a plan made for another
        inventory, pending VMs missing from plan.csv that its summary does not call unplaced.
    moves : DataFrame
        ``moves.csv`` of a nightly plan (``tapas-opt plan``), in execution order; the room is
        drawn after the moves. Empty for plans without moves.
    rows, aisles : DataFrame
        Index ``row_id`` / ``aisle_id``: limit, peak, peak fraction and when.
    row_kw, aisle_cfm : DataFrame
        Power per row (kW) and airflow per aisle (CFM), indexed by the horizon's time slots.
    """

    label: str
    plan_dir: Path
    inventory_name: str
    summary: dict
    plan: pd.DataFrame
    explanations: list[dict]
    horizon: pd.DatetimeIndex
    quantile: str
    temp_limit_c: float
    servers: pd.DataFrame
    rows: pd.DataFrame
    aisles: pd.DataFrame
    row_kw: pd.DataFrame
    aisle_cfm: pd.DataFrame
    violations: list[dict] = field(default_factory=list)
    preexisting: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unplaced: list[dict] = field(default_factory=list)
    placed: pd.DataFrame = field(default_factory=pd.DataFrame)
    n_running: int = 0
    moves: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["vm_id", "from_server", "to_server"]))

    # ---- headline numbers (recomputed, so they agree with verify) -------------------------
    @property
    def peak_row_power_fraction(self) -> float:
        return float(self.rows["peak_fraction"].max()) if len(self.rows) else float("nan")

    @property
    def peak_aisle_airflow_fraction(self) -> float:
        return float(self.aisles["peak_fraction"].max()) if len(self.aisles) else float("nan")

    @property
    def max_gpu_temp_c(self) -> float:
        temps = self.servers["peak_gpu_temp_c"].dropna()
        return float(temps.max()) if len(temps) else float("nan")

    @property
    def max_placed_gpu_temp_c(self) -> float:
        temps = self.placed["peak_gpu_temp_c"] if len(self.placed) else pd.Series(dtype=float)
        return float(temps.max()) if len(temps) else float("nan")

    @property
    def n_placed(self) -> int:
        return int(len(self.placed))


    @property
    def ok(self) -> bool:
        """True if the plan breaks no limit (limits running VMs break on their own aside)."""
        return not self.violations

    def headline(self) -> dict:
        """The summary numbers of the report, as plain values (JSON-ready)."""
        s = self.summary
        vms = s.get("vms", {})
        return {
            "label": self.label,
            "policy": s.get("policy"),
            "status": s.get("status"),
            "placed": self.n_placed,
            "unplaced": len(self.unplaced),
            "running": self.n_running,
            "peak_row_power_fraction": _r(self.peak_row_power_fraction, 4),
            "peak_row_power_bound": s.get("peak_row_power_bound"),
            "peak_aisle_airflow_fraction": _r(self.peak_aisle_airflow_fraction, 4),
            "max_gpu_temp_c": _r(self.max_gpu_temp_c, 2),
            "max_placed_gpu_temp_c": _r(self.max_placed_gpu_temp_c, 2),
            "gpu_temp_limit_c": self.temp_limit_c,
            "objective": s.get("objective"),
            "gap": s.get("gap"),
            "solve_time_s": s.get("solve_time_s"),
            "pending": vms.get("pending"),
            "moves": int(len(self.moves)),
            "violations": len(self.violations),
            "preexisting_violations": len(self.preexisting),
        }


def _r(x: float, nd: int):
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


def load_plan_view(plan_dir: str | Path, inventory: str | Path | Inventory, label: str = "plan",
                   forecast_method: str = "auto") -> PlanView:
    """Evaluate the plan in ``plan_dir`` against ``inventory`` and gather what a report draws.

    The plan is read and checked by :func:`tapas_opt.api.check_plan_dir`, as ``tapas-opt
    verify`` reads it: the same numbers, violations and warnings (a plan made for another
    inventory is one).

    Parameters
    ----------
    plan_dir : path
        A plan directory (``plan.csv`` required; ``summary.json``, ``explanations.json``,
        ``profiles.parquet`` and a nightly plan's ``moves.csv`` used when present).
    inventory : path or Inventory
        The inventory the plan was made for.
    label : str
        Name of this plan in the report.
    forecast_method : {"auto", "template"}
        Only used for VMs the plan's ``profiles.parquet`` does not cover (all of them when it has
        none): how to forecast their load. ``auto`` (the default) is what ``verify`` uses.

    Raises
    ------
    InventoryError
        The inventory or the plan is malformed (every problem listed).
    """
    from tapas_opt.api import check_plan_dir

    plan_dir = Path(plan_dir)
    checked = check_plan_dir(inventory, plan_dir, forecast_method)
    explanations = read_json_value(plan_dir / "explanations.json", [dict], "re-run the command that wrote the "
                                   "plan, or remove explanations.json", [])
    view = _view(label, plan_dir, checked.room, checked.summary, checked.plan, explanations, checked.report)
    moves = checked.moves
    if len(moves):
        # every step's figures as re-checked (moves.csv's own may be edited or stale)
        recomputed = pd.DataFrame(checked.report.move_steps, index=moves.index)
        moves = moves.assign(**{c: recomputed[c] for c in RECHECKED_MOVE_COLUMNS})
        # A nightly plan ('tapas-opt plan') also moves running SaaS VMs: the room is drawn after them.
        final = moves.drop_duplicates("vm_id", keep="last")
        moved_in = final.groupby("to_server")["vm_id"].agg(",".join)
        view.servers["moved_in"] = view.servers.index.map(moved_in).fillna("")
        view = replace(view, moves=moves)
    return view


RECHECKED_MOVE_COLUMNS = ("in_flight_peak_row_power", "in_flight_violations", "peak_row_power_after",
                          "max_gpu_temp_after_c")
"""moves.csv columns the report shows as verify recomputes them, not as the file gives them."""


def _view(label, plan_dir, name, summary, plan, explanations, report) -> PlanView:
    inst, ev = report.instance, report.evaluation
    p = inst.params
    horizon = pd.DatetimeIndex(inst.horizon)
    n_s = inst.n_servers

    # VMs per server: running ones (kept) and the ones this plan places.
    run = inst.running
    run_srv = run["server"].to_numpy(int)
    placed_idx = np.flatnonzero(ev.assign >= 0)
    placed_srv = ev.assign[placed_idx]
    vm_lists: list[list[str]] = [[] for _ in range(n_s)]
    placed_lists: list[list[str]] = [[] for _ in range(n_s)]
    temp = np.full(n_s, np.nan)
    used = (p.gpus - inst.free_gpus).astype(int)
    for vm_id, s, t in zip(run["vm_id"].astype(str), run_srv, ev.running_peak_temp_c):
        vm_lists[s].append(vm_id)
        temp[s] = np.fmax(temp[s], t)
    for v, s in zip(placed_idx, placed_srv):
        vm_lists[s].append(str(inst.vm_ids[v]))
        placed_lists[s].append(str(inst.vm_ids[v]))
        temp[s] = np.fmax(temp[s], ev.vm_peak_temp_c[v])
        used[s] += int(inst.vm_gpus[v])

    row_of = inst.server_row
    servers = pd.DataFrame({
        "row_id": inst.row_ids[row_of].astype(str),
        "aisle_id": inst.aisle_ids[inst.row_aisle[row_of]].astype(str),
        "rack": inst.server_rack.astype(str),
        "gpus": p.gpus.astype(int),
        "used_gpus": used,
        "idle_kw": p.idle_kw.astype(float),
        "max_kw": p.max_kw.astype(float),
        "peak_kw": ev.server_kw.max(axis=1) if inst.n_slots else np.zeros(n_s),
        "peak_gpu_temp_c": temp,
        "vms": [",".join(v) for v in vm_lists],
        "placed_vms": [",".join(v) for v in placed_lists],
        "n_placed": [len(v) for v in placed_lists],
        "moved_in": "",
    }, index=pd.Index(inst.server_ids.astype(str), name="server_id"))

    row_kw = pd.DataFrame(ev.row_kw.T, index=horizon, columns=inst.row_ids.astype(str))
    aisle_cfm = pd.DataFrame(ev.aisle_cfm.T, index=horizon, columns=inst.aisle_ids.astype(str))
    rows = pd.DataFrame({
        "aisle_id": inst.aisle_ids[inst.row_aisle].astype(str),
        "limit_kw": inst.row_limit_kw.astype(float),
        "peak_kw": row_kw.max().to_numpy(),
        "peak_at": row_kw.idxmax().to_numpy() if len(horizon) else pd.NaT,
    }, index=pd.Index(inst.row_ids.astype(str), name="row_id"))
    rows["peak_fraction"] = rows["peak_kw"] / rows["limit_kw"]
    aisles = pd.DataFrame({
        "limit_cfm": inst.aisle_limit_cfm.astype(float),
        "peak_cfm": aisle_cfm.max().to_numpy(),
        "peak_at": aisle_cfm.idxmax().to_numpy() if len(horizon) else pd.NaT,
    }, index=pd.Index(inst.aisle_ids.astype(str), name="aisle_id"))
    aisles["peak_fraction"] = aisles["peak_cfm"] / aisles["limit_cfm"]

    placed = pd.DataFrame({
        "vm_id": inst.vm_ids[placed_idx].astype(str),
        "kind": inst.vm_kind[placed_idx].astype(str),
        "gpus": inst.vm_gpus[placed_idx].astype(int),
        "server_id": inst.server_ids[placed_srv].astype(str),
        "row_id": inst.row_ids[row_of[placed_srv]].astype(str),
        "peak_gpu_temp_c": ev.vm_peak_temp_c[placed_idx],
    })
    binding = {e.get("vm_id"): e for e in explanations if isinstance(e, dict)}
    placed["binding"] = [binding.get(v, {}).get("binding", "") for v in placed["vm_id"]]
    placed["reason"] = [binding.get(v, {}).get("reason", "") for v in placed["vm_id"]]

    # Unplaced VMs: the plan's own reasons when it has them, else a plain note.
    reasons = {u.get("vm_id"): u for u in summary.get("unplaced", []) if isinstance(u, dict)}
    unplaced = [reasons.get(v, {"vm_id": v, "code": "not_in_plan",
                                "message": "the plan does not put this pending VM on a server"})
                for v in report.unplaced]

    return PlanView(
        label=label, plan_dir=Path(plan_dir), inventory_name=name, summary=summary, plan=plan,
        explanations=explanations, horizon=horizon, quantile=inst.quantile, temp_limit_c=float(inst.temp_limit_c),
        servers=servers, rows=rows, aisles=aisles, row_kw=row_kw, aisle_cfm=aisle_cfm,
        violations=[v.to_dict() for v in report.violations],
        preexisting=[v.to_dict() for v in report.preexisting], warnings=list(report.warnings),
        unplaced=unplaced, placed=placed, n_running=int(len(run)))


def compare_placements(view: PlanView, baseline: PlanView) -> pd.DataFrame:
    """Pending VMs the two plans treat differently: ``vm_id``, server and row in each
    (empty = unplaced there)."""
    a = view.placed.set_index("vm_id")[["server_id", "row_id"]]
    b = baseline.placed.set_index("vm_id")[["server_id", "row_id"]]
    both = a.add_suffix("_plan").join(b.add_suffix("_baseline"), how="outer").fillna("")
    diff = both[both["server_id_plan"] != both["server_id_baseline"]]
    return diff.reset_index().rename(columns={"index": "vm_id"}).sort_values("vm_id", ignore_index=True)
