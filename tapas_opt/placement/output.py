"""The plan directory: ``plan.csv``, ``summary.json``, ``explanations.json``, ``profiles.parquet``
(and ``queue.csv`` in the room plans of ``tapas-opt plan-region``).

The format is documented in ``docs/plan-format.md``. A plan directory is written atomically
(:func:`tapas_opt.io.atomic_directory`): it appears whole or not at all. ``place`` only writes a
plan; nothing is applied to the room.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tapas_opt import __version__
from tapas_opt.errors import InventoryError, Problem, missing_columns
from tapas_opt.forecast.base import ASSUMED_PEAK, LoadProfiles
from tapas_opt.inventory.load import line_mapper, read_user_table
from tapas_opt.inventory.schema import validate_frame
from tapas_opt.io import atomic_directory, write_json
from tapas_opt.placement.evaluate import Evaluation
from tapas_opt.placement.instance import PlacementInstance
from tapas_opt.placement.solve import PlacementSolution
from tapas_opt.shapes import numeric_cells

QUEUE_FILE = "queue.csv"
QUEUE_COLUMNS = ["vm_id", "kind", "customer", "endpoint", "gpus"]
PLAN_COLUMNS = ["vm_id", "kind", "gpus", "status", "server_id", "row_id", "aisle_id", "rack",
                "peak_server_power_kw", "peak_gpu_temp_c", "peak_gpu_temp_at"]


def _round(x, nd=4):
    return None if x is None or (isinstance(x, float) and not np.isfinite(x)) else round(float(x), nd)


def plan_frame(inst: PlacementInstance, ev: Evaluation) -> pd.DataFrame:
    """One row per VM on a server after the plan: running VMs (kept) and placed ones."""
    peak_server_kw = ev.server_kw.max(axis=1)
    run = inst.running
    placed = np.flatnonzero(ev.assign >= 0)
    servers = np.concatenate([run["server"].to_numpy(int), ev.assign[placed]])
    temps = np.concatenate([ev.running_peak_temp_c, ev.vm_peak_temp_c[placed]])
    run_slots = []
    if len(run):
        p = inst.params
        srv = run["server"].to_numpy(int)
        t = p.gpu_temp_c(inst.running_load, inst.inlet_c(srv), srv[:, None])
        run_slots = list(t.argmax(axis=1))
    slots = np.array(run_slots + list(ev.vm_peak_slot[placed]), dtype=int)
    frame = pd.DataFrame({
        "vm_id": np.concatenate([run["vm_id"].to_numpy(str), inst.vm_ids[placed]]),
        "kind": np.concatenate([run["kind"].to_numpy(str), inst.vm_kind[placed]]),
        "gpus": np.concatenate([run["gpus"].to_numpy(int), inst.vm_gpus[placed]]),
        "status": ["running"] * len(run) + ["placed"] * len(placed),
        "server_id": inst.server_ids[servers],
        "row_id": inst.row_ids[inst.server_row[servers]],
        "aisle_id": inst.aisle_ids[inst.row_aisle[inst.server_row[servers]]],
        "rack": inst.server_rack[servers],
        "peak_server_power_kw": np.round(peak_server_kw[servers], 3),
        "peak_gpu_temp_c": np.round(temps, 2),
        "peak_gpu_temp_at": [str(inst.horizon[t]) if t >= 0 else "" for t in slots],
    })
    return frame[PLAN_COLUMNS]


def row_peaks(inst: PlacementInstance, ev: Evaluation) -> list[dict]:
    out = []
    for r in range(inst.n_rows):
        t = int(np.argmax(ev.row_kw[r]))
        out.append({"row_id": str(inst.row_ids[r]), "aisle_id": str(inst.aisle_ids[inst.row_aisle[r]]),
                    "limit_kw": _round(inst.row_limit_kw[r], 2), "peak_kw": _round(ev.row_kw[r, t], 2),
                    "peak_fraction": _round(ev.row_kw[r, t] / inst.row_limit_kw[r]),
                    "peak_at": str(inst.horizon[t])})
    return out


def aisle_peaks(inst: PlacementInstance, ev: Evaluation) -> list[dict]:
    out = []
    for a in range(len(inst.aisle_ids)):
        t = int(np.argmax(ev.aisle_cfm[a]))
        out.append({"aisle_id": str(inst.aisle_ids[a]), "limit_cfm": _round(inst.aisle_limit_cfm[a], 1),
                    "peak_cfm": _round(ev.aisle_cfm[a, t], 1),
                    "peak_fraction": _round(ev.aisle_cfm[a, t] / inst.aisle_limit_cfm[a]),
                    "peak_at": str(inst.horizon[t])})
    return out


def _hottest(inst: PlacementInstance, ev: Evaluation) -> dict:
    placed = np.flatnonzero(ev.assign >= 0)
    best = {"peak_c": None}
    if len(placed):
        v = placed[int(np.argmax(ev.vm_peak_temp_c[placed]))]
        best = {"peak_c": _round(ev.vm_peak_temp_c[v], 2), "vm_id": str(inst.vm_ids[v]),
                "server_id": str(inst.server_ids[ev.assign[v]]), "at": str(inst.horizon[ev.vm_peak_slot[v]])}
    return best


def assumed_peak_note(inst: PlacementInstance) -> list[str]:
    """A line naming the pending VMs planned at full load because nothing is known of them (no
    telemetry, no VM of their endpoint or customer to borrow from): they reserve the most room."""
    ids = [str(v) for v, m in zip(inst.vm_ids, inst.vm_method) if m == ASSUMED_PEAK]
    if not ids:
        return []
    return [f"{len(ids)} pending VM(s) have no recent telemetry and no VM of their endpoint (SaaS) or customer (IaaS) "
            f"to borrow a forecast from, e.g. {ids[0]!r}: planned at full load; give them a forecast with "
            "--profiles to plan them tighter"]


def build_summary(inst: PlacementInstance, sol: PlacementSolution, profiles: LoadProfiles,
                  inventory_name: str, warnings: list[str]) -> dict:
    ev = sol.evaluation
    opts = inst.options
    pending_methods = pd.Series(inst.vm_method).value_counts().to_dict() if inst.n_vms else {}
    hard = [v.to_dict() for v in ev.violations if not v.code.endswith("_preexisting")]
    pre = [v.to_dict() for v in ev.violations if v.code.endswith("_preexisting")]
    return {
        "tapas_opt_version": __version__,
        "inventory": inventory_name,
        "status": sol.status,
        "policy": sol.policy,
        "objective": _round(sol.objective, 6),
        "bound": _round(sol.bound, 6),
        "gap": _round(sol.gap, 6),
        "solve_time_s": _round(sol.solve_time_s, 3),
        "horizon": {"start": str(inst.horizon[0]), "end": str(inst.horizon[-1]), "slots": inst.n_slots,
                    "step_min": int((inst.horizon[1] - inst.horizon[0]).total_seconds() // 60)
                    if inst.n_slots > 1 else None},
        "quantile": inst.quantile,
        "vms": {"pending": int(inst.n_vms), "placed": int((ev.assign >= 0).sum()),
                "unplaced": int(ev.n_unplaced), "running": int(len(inst.running))},
        "peak_row_power_fraction": _round(ev.peak_row_power_norm),
        "peak_row_power_bound": _round(sol.power_bound),
        "peak_row_power_gap": _round(sol.power_gap),
        "max_gpu_temp_c": _round(ev.peak_temp_c, 2),
        "max_gpu_temp_bound_c": _round(sol.temp_bound_c, 2),
        "gpu_temp_limit_c": inst.temp_limit_c,
        "hottest_placed_vm": _hottest(inst, ev),
        "rows": row_peaks(inst, ev),
        "aisles": aisle_peaks(inst, ev),
        "soft_terms": ev.soft.to_dict(),
        "max_placed_gpu_temp_c": _round(ev.peak_placed_temp_c, 2),
        "weights": {k: getattr(opts, k) for k in ("power_weight", "temp_weight", "placed_temp_weight", "balance_weight",
                                                    "spread_weight", "thermal_pref_weight",
                                                    "fragmentation_weight")},
        "solver": {"time_limit_s": opts.time_limit_s, "workers": opts.workers, "seed": opts.seed,
                   "theta_c": _round(sol.theta_c, 2), **sol.stats},
        "profile_methods": {str(k): int(v) for k, v in pending_methods.items()},
        "profile_methods_all_vms": {str(k): int(v) for k, v in profiles.method.value_counts().items()},
        "violations": hard,
        "preexisting_violations": pre,
        "unplaced": [u.to_dict() for u in sol.unplaced],
        "warnings": list(warnings) + assumed_peak_note(inst),
    }


def write_plan(out_dir: Path | str, inst: PlacementInstance, sol: PlacementSolution, profiles: LoadProfiles,
               summary: dict, explanations: list[dict] | None) -> Path:
    """Write the plan directory atomically."""
    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp:
        plan_frame(inst, sol.evaluation).to_csv(tmp / "plan.csv", index=False)
        write_json(tmp / "summary.json", summary)
        if explanations is not None:
            write_json(tmp / "explanations.json", explanations)
        profiles_frame(profiles).to_parquet(tmp / "profiles.parquet", index=False)
    return out_dir


def profiles_frame(profiles: LoadProfiles) -> pd.DataFrame:
    """The profiles a plan was made with, with the forecasting method of each VM, unrounded:
    ``verify`` re-checks the plan against exactly the loads it was made with (rounded to six
    decimals, a peak could differ from the summary's in its last printed digit)."""
    frame = profiles.to_frame(decimals=None)
    frame["method"] = frame["vm_id"].map(profiles.method).astype(str)
    return frame


def read_plan(plan_dir: Path | str) -> pd.DataFrame:
    """Read ``plan.csv`` of a plan directory; problems raise :class:`InventoryError`."""
    plan_dir = Path(plan_dir)
    path = plan_dir / "plan.csv"
    if not path.exists():
        raise InventoryError([Problem("missing_file", str(path), "plan.csv is missing", _not_a_plan_hint(plan_dir))])
    return _read_with_columns(path, ("vm_id", "server_id"), str(path),
                             "pass a plan directory written by tapas-opt (place, plan), or give plan.csv those columns")


def _read_with_columns(path: Path, columns, file: str, hint: str) -> pd.DataFrame:
    """A table of a plan directory (plan.csv, queue.csv, moves.csv) with the ``columns`` its
    reader needs: one ``missing_column`` problem per column it lacks, raised together."""
    frame = read_user_table(path, str(path))
    missing = missing_columns(file, frame.columns, columns, hint)
    if missing:
        raise InventoryError(missing)
    return frame


OTHER_OUTPUTS = (("configs.csv", "reconfigure", "report PLAN --emergency DIR"),
                 ("comparison.csv", "simulate", "report PLAN --simulation DIR"),
                 ("oversubscription.csv", "simulate --study", "report PLAN --simulation DIR"),
                 ("emergencies.csv", "simulate --study", "report PLAN --simulation DIR"),
                 ("mix.csv", "simulate --study", "report PLAN --simulation DIR"),
                 ("results.csv", "whatif", "report PLAN --whatif DIR"))
"""A file that marks another command's output directory, that command, and where it goes."""


def _not_a_plan_hint(plan_dir: Path) -> str:
    """What to do with a directory that has no plan.csv: when it is the output of another
    command (reconfigure, simulate, a simulate study, whatif), say so and which option of report
    takes it; a plan-region output holds one plan per room."""
    for marker, command, usage in OTHER_OUTPUTS:
        if (plan_dir / marker).exists():
            return (f"{plan_dir} is an output of 'tapas-opt {command}', not a plan: give it to "
                    f"'tapas-opt {usage}', with a plan of 'tapas-opt place' as PLAN")
    if (plan_dir / "region.json").exists() and (plan_dir / "rooms").is_dir():
        return (f"{plan_dir} is an output of 'tapas-opt plan-region': each room's plan is "
                f"{plan_dir / 'rooms' / 'ROOM'}; pass that, with the room's inventory")
    return "pass a plan directory written by 'tapas-opt place' or 'tapas-opt plan'"


def read_plan_queue(plan_dir: Path | str) -> pd.DataFrame | None:
    """The pending VMs a plan was made for when they are not the inventory's own: ``queue.csv``
    of a ``plan-region`` room plan (``vm_id, kind, customer, endpoint, gpus``, the VMs the region
    gave that room). None when the plan has no such file. Problems raise, all at once."""
    path = Path(plan_dir) / QUEUE_FILE
    if not path.exists():
        return None
    frame = _read_with_columns(path, QUEUE_COLUMNS, str(path), "pass a room plan written by 'tapas-opt plan-region'")
    frame = frame[QUEUE_COLUMNS].assign(server_id=pd.Series(np.nan, index=frame.index, dtype=object))
    line_of = line_mapper(path)
    frame, problems = validate_frame(frame, "vms", str(path), line_of)
    no_endpoint = (frame["kind"] == "saas") & frame["endpoint"].isna()
    problems += [Problem("missing_endpoint", str(path), f"SaaS VM {frame.at[i, 'vm_id']!r} has no endpoint",
                         "pass a room plan written by 'tapas-opt plan-region'", line_of(i), "endpoint")
                 for i in frame.index[no_endpoint.to_numpy()]]
    if problems:
        raise InventoryError(problems)
    return frame


def _check_not_a_region_room(plan_dir: Path) -> None:
    """A room plan of plan-region (its summary has a ``region`` section) needs its queue.csv:
    without it every VM the region renamed would be reported unknown, one line each."""
    import json

    try:
        summary = json.loads((plan_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return
    if isinstance(summary, dict) and "region" in summary:
        raise InventoryError([Problem("missing_file", str(plan_dir / QUEUE_FILE), "this room plan of "
                                      "'tapas-opt plan-region' has lost its queue.csv (the VMs the region gave the "
                                      "room)", "copy the room's directory whole from the plan-region output")])


def with_plan_queue(inventory, plan_dir: Path | str):
    """The inventory as the plan saw it: when the plan directory carries ``queue.csv`` (a room of
    ``tapas-opt plan-region``), its VMs replace the inventory's pending ones (a region renames
    queued VMs and moves them between rooms); the running VMs stay. Otherwise unchanged."""
    from dataclasses import replace

    queue = read_plan_queue(plan_dir)
    if queue is None:
        _check_not_a_region_room(Path(plan_dir))
        return inventory
    running = inventory.running_vms
    clash = queue["vm_id"].isin(set(running["vm_id"]))
    if clash.any():
        path = Path(plan_dir) / QUEUE_FILE
        line_of = line_mapper(path)
        raise InventoryError([Problem("duplicate_id", str(path), f"VM {v!r} is also a running VM of the inventory",
                                      "verify the room plan against the room it was made for", line=line_of(i),
                                      column="vm_id")
                              for i, v in queue.loc[clash, "vm_id"].items()])
    vms = pd.concat([running, queue], ignore_index=True)
    return replace(inventory, vms=vms)


MOVES_FILE = "moves.csv"
MOVES_NUMBERS = ("step", "in_flight_peak_row_power", "in_flight_violations", "peak_row_power_after",
                 "max_gpu_temp_after_c")
MOVES_HINT = "moves.csv and plan.csv of a nightly plan must agree: re-run 'tapas-opt plan', or edit both"


def read_moves(plan_dir: Path | str, inventory, plan: pd.DataFrame) -> pd.DataFrame:
    """``moves.csv`` of a nightly plan (``tapas-opt plan``): the moves in execution order, or an
    empty frame when the plan has none. It must agree with ``plan.csv`` and the inventory: each
    move starts where the VM is (vms.csv, or its previous move), the last move of a VM ends on
    its server in plan.csv, only running SaaS VMs move, and every running VM plan.csv puts on
    another server has a move. Problems raise, all at once (file moves.csv, line, column)."""
    path = Path(plan_dir) / MOVES_FILE
    if not path.exists():
        return pd.DataFrame(columns=["vm_id", "from_server", "to_server"])
    moves = _read_with_columns(path, ("vm_id", "from_server", "to_server"), str(path),
                               "pass a plan written by 'tapas-opt plan'")
    moves, problems = numeric_cells(moves, MOVES_NUMBERS, path, "re-run 'tapas-opt plan'")  # listed with the rest
    if "step" in moves.columns:
        moves = moves.sort_values("step", kind="stable")
    plan_lines = line_mapper(Path(plan_dir) / "plan.csv")
    problems += _move_problems(moves, inventory, _plan_servers(plan, inventory, plan_lines), str(path), line_mapper(path))
    if problems:
        raise InventoryError(problems)
    return moves.reset_index(drop=True)


def _plan_servers(plan: pd.DataFrame, inventory, line_of) -> dict[str, tuple]:
    """Running VM id -> (its server in plan.csv, the line, whether plan.csv declares it moved)
    for the running VMs plan.csv names."""
    running = set(inventory.running_vms["vm_id"].astype(str))
    first = plan[plan["vm_id"].isin(running)].drop_duplicates("vm_id")
    moved = first["status"] == "moved" if "status" in first.columns else pd.Series(False, index=first.index)
    return {str(v): (s, line_of(i), m) for i, v, s, m in zip(first.index, first["vm_id"], first["server_id"], moved)}


def _move_problems(moves: pd.DataFrame, inventory, planned: dict, file: str, line_of) -> list[Problem]:
    vms = inventory.running_vms.astype({"vm_id": str}).set_index("vm_id")
    servers = set(inventory.servers["server_id"].astype(str))
    where = {v: str(s) for v, s in vms["server_id"].items()}  # each VM's server as the moves go
    last_line: dict[str, int] = {}
    unreadable: set[str] = set()
    problems = []
    for i, vm, src, dst in zip(moves.index, moves["vm_id"], moves["from_server"], moves["to_server"]):
        line = line_of(i)

        def bad(code, column, message):
            problems.append(Problem(code, file, message, MOVES_HINT, line, column))

        if pd.isna(vm) or vm not in where:
            bad("unknown_vm", "vm_id", "vm_id is empty" if pd.isna(vm) else f"moved VM {vm!r} is not running in the "
                "inventory")
            continue
        if vms.at[vm, "kind"] != "saas":
            bad("bad_value", "vm_id", f"VM {vm} is an IaaS VM, which cannot live-migrate")
        if pd.isna(dst) or dst not in servers:
            bad("unknown_server", "to_server", "to_server is empty" if pd.isna(dst) else
                f"server {dst!r} is not in servers.csv")
            unreadable.add(vm)  # where it ends is unknown: nothing more to say about it
            continue
        if src != where[vm]:
            bad("moves_mismatch", "from_server", f"VM {vm} is on {where[vm]} here ("
                + ("vms.csv" if vm not in last_line else f"after its move on line {last_line[vm]}")
                + f"), but the move starts from {src}")
        where[vm], last_line[vm] = dst, line
    for vm, line in last_line.items():
        if vm in unreadable:
            continue
        server, plan_line, declared = planned.get(vm, (vms.at[vm, "server_id"], None, False))
        if where[vm] != server:
            problems.append(Problem("moves_mismatch", file, f"VM {vm} ends on {where[vm]}, but plan.csv "
                                    + (f"line {plan_line} puts it on {server}" if plan_line else
                                       f"does not move it (it stays on {server})"), MOVES_HINT, line, "to_server"))
        elif plan_line and not declared and where[vm] != vms.at[vm, "server_id"]:
            problems.append(Problem("moves_mismatch", file, f"VM {vm} is moved here, but plan.csv line {plan_line} "
                                    "does not give it the status 'moved'", MOVES_HINT, line, "vm_id"))
    problems += [Problem("moves_mismatch", file, f"plan.csv line {plan_line} puts running VM {vm} on {server}, "
                         f"as moved, but moves.csv has no move for it (it is on {where[vm]})", MOVES_HINT,
                         column="vm_id")
                 for vm, (server, plan_line, declared) in planned.items()
                 if declared and vm not in last_line and vm not in unreadable and server != where[vm]]
    return problems
