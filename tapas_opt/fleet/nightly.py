"""``tapas-opt plan``: the nightly batch plan: place the queue, then at most N SaaS moves.

Outputs (a plan directory, written atomically, same files as ``place`` plus):

* ``moves.csv``: the moves in execution order (create on target, drain, retire source), each
  with the room's peak row power while the move is in flight and after it;
* ``summary.json`` gains ``nightly``: peak row power and max GPU temperature before moves (the
  placed queue only) and after, per row, the moves dropped because no safe order exists;
* ``diff.csv`` (with ``--previous``): VMs whose server differs from the previous night's plan.

Plans are deterministic (same inventory, options and seed, same plan), so two nights diff
cleanly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tapas_opt.api import Prepared, prepare
from tapas_opt.errors import InventoryError, first_few, problems_of
from tapas_opt.fleet.moves import MovePlan, choose_moves, moved_instance, order_moves
from tapas_opt.inventory.load import Inventory, line_mapper, listed_twice, load_inventory
from tapas_opt.io import atomic_directory, write_json
from tapas_opt.placement.evaluate import evaluate_assignment
from tapas_opt.placement.explain import explain_plan
from tapas_opt.placement.output import build_summary, plan_frame, profiles_frame, read_plan, row_peaks
from tapas_opt.placement.solve import solve_placement


@dataclass
class NightlyResult:
    prepared: Prepared
    summary: dict
    plan: pd.DataFrame
    moves: pd.DataFrame
    move_plan: MovePlan
    diff: pd.DataFrame | None


def diff_plans(current: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    """VMs whose server changed, appeared or disappeared between two plan.csv frames."""
    a = previous[["vm_id", "server_id"]].rename(columns={"server_id": "previous_server"})
    b = current[["vm_id", "server_id"]].rename(columns={"server_id": "server"})
    both = a.merge(b, on="vm_id", how="outer")
    changed = both[both["previous_server"].fillna("") != both["server"].fillna("")]
    change = np.where(changed["previous_server"].isna(), "added",
                      np.where(changed["server"].isna(), "removed", "moved"))
    return changed.assign(change=change).sort_values("vm_id").reset_index(drop=True)


def read_previous_plan(previous: str | Path) -> pd.DataFrame:
    """The previous night's ``plan.csv``, checked before any work: a VM listed twice is bad input
    (which of its servers would the diff compare with?)."""
    frame = read_plan(previous)
    path = Path(previous) / "plan.csv"
    _, problems = listed_twice(frame, str(path), line_mapper(path),
                               "pass a plan directory written by 'tapas-opt place' or 'plan'")
    if problems:
        raise InventoryError(problems)
    frame.attrs["room"] = _previous_room(previous)
    return frame


def _previous_plan_with_inventory(previous, inventory) -> pd.DataFrame:
    """:func:`read_previous_plan`; when it has problems, the inventory's own are listed with them."""

    try:
        return read_previous_plan(previous)
    except InventoryError as exc:
        own = [] if isinstance(inventory, Inventory) else problems_of(lambda: load_inventory(inventory))
        raise InventoryError(list(exc.problems) + own) from None


def previous_plan_warnings(previous, previous_plan: pd.DataFrame, plan: pd.DataFrame, inventory) -> list[str]:
    """Signs that ``--previous`` is not this room's last plan: the diff would then list every VM
    as moved, added or removed, and read as a night of churn. (Where the previous plan's
    inventory lived is no sign: nightly jobs export each night's inventory to a new directory.)"""
    warnings = []
    room = previous_plan.attrs.get("room")
    if room is not None and room != inventory.config.name:
        warnings.append(f"the previous plan ({previous}) is of the room {room!r} (its summary.json), not "
                        f"{inventory.config.name!r}: is it another room's?")
    if not previous_plan["vm_id"].isin(plan["vm_id"]).any():
        warnings.append(f"the previous plan ({previous}) shares no VM with this inventory: is it another room's?")
    changed = _changed_vms(previous_plan, plan)
    if changed:
        warnings.append(f"{len(changed)} VM(s) of the previous plan ({previous}) have another kind or GPU count "
                        f"tonight, e.g. {first_few(changed, 3)}: is it another room's, or were the ids reused?")
    known = set(inventory.servers["server_id"])
    unknown = sorted(set(previous_plan["server_id"].dropna().astype(str)) - known)
    if unknown:
        warnings.append(f"the previous plan ({previous}) puts VMs on {len(unknown)} server(s) this inventory does "
                        f"not have: {first_few(unknown, 5)}")
    return warnings


def _previous_room(previous) -> str | None:
    """The room name in the previous plan's summary.json (None when it has none or no name)."""
    from tapas_opt.shapes import read_json_value

    summary = read_json_value(Path(previous) / "summary.json", {"inventory": str}, "pass a plan directory written "
                              "by 'tapas-opt place' or 'plan'", missing={})
    return summary.get("inventory")  # (the shape makes it a JSON object)


def _changed_vms(previous_plan: pd.DataFrame, plan: pd.DataFrame) -> list[str]:
    """VMs in both plans whose kind or GPU count differ (plans from tapas-opt list both)."""
    cols = [c for c in ("kind", "gpus") if c in previous_plan.columns and c in plan.columns]
    if not cols:
        return []
    both = previous_plan[["vm_id", *cols]].merge(plan[["vm_id", *cols]], on="vm_id", suffixes=("_before", "_now"))
    differ = np.zeros(len(both), bool)
    for c in cols:
        differ |= both[f"{c}_before"].astype(str) != both[f"{c}_now"].astype(str)
    return sorted(both.loc[differ, "vm_id"].astype(str))


MIN_GAIN_PCT = 0.5
"""Default least cut in the week's peak normalised row power (percentage points of the row
limit) that a night's moves must buy together: each move drains and re-creates an instance,
which is not worth a rounding-error gain."""


def _why_no_moves(max_moves: int, mp: MovePlan, peak: float, dropped: list[str], min_gain_pct: float) -> str | None:
    """Why a nightly plan proposes no move, in words (None when moves were not allowed)."""
    if max_moves <= 0:
        return None
    if not mp.stats.get("candidates"):
        return ("no running SaaS VM sits in a row near the peak: only running SaaS VMs move, and the rows near "
                "the peak hold none")
    bound = mp.stats.get("peak_bound")
    if bound is not None and peak - bound < max(min_gain_pct / 100, 1e-4):
        # before the order: had a safe order been found, these moves would have been held back anyway
        return (f"no choice of at most {max_moves} move(s) among the {mp.stats['candidates']} SaaS VMs of the rows "
                f"near the peak lowers it by {min_gain_pct:g} points or more (peak {peak:.4f}, the move search's "
                f"bound {bound:.4f}): what sets the peak cannot move (IaaS VMs, idle servers) or has nowhere to go "
                "within the limits")
    if dropped:
        return f"no safe order was found for the chosen move(s) ({', '.join(dropped)}): none proposed"
    return (f"the move search found no move that lowers the peak ({peak:.4f}; its bound {bound:.4f}) within its "
            "budget: a larger --time-limit may find one" if bound is not None else
            "the move search found no move that lowers the peak within its budget: a larger --time-limit may find one")


def plan_nightly(inventory, max_moves: int, out_dir: str | Path | None = None, previous: str | Path | None = None,
                 forecast_method: str = "auto", explain: bool = True, min_gain_pct: float = MIN_GAIN_PCT,
                 **options) -> NightlyResult:
    previous_plan = _previous_plan_with_inventory(previous, inventory) if previous else None  # before any work
    prep = prepare(inventory, forecast_method=forecast_method, **options)
    inst = prep.instance
    opts = inst.options
    sol = solve_placement(inst, "optimal")
    before = sol.evaluation
    mp = choose_moves(inst, sol.assign, max_moves, time_limit_s=max(5.0, opts.time_limit_s / 2),
                      workers=opts.workers, seed=opts.seed)
    steps, dropped = order_moves(inst, sol.assign, mp.moves)
    done = [m for m in mp.moves if m.vm_id not in set(dropped)]
    final_inst = moved_instance(inst, done)
    after = evaluate_assignment(final_inst, sol.assign)
    gain_pct = 100 * (before.peak_row_power_norm - after.peak_row_power_norm)
    held_back = None
    if done and gain_pct < min_gain_pct:
        held_back = (f"{len(done)} move(s) would cut the peak by only {gain_pct:.3f} percentage points "
                     f"(< --min-gain {min_gain_pct:g}): none proposed" if gain_pct >= 0.0005 else
                     f"{len(done)} move(s) would not lower the peak ({before.peak_row_power_norm:.4f} -> "
                     f"{after.peak_row_power_norm:.4f}): none proposed")
        steps, done, final_inst, after = [], [], inst, before  # dropped ones stay listed
    why_none = None if done or held_back else _why_no_moves(max_moves, mp, before.peak_row_power_norm, dropped,
                                                              min_gain_pct)
    sol.evaluation = after
    sol.objective = after.objective
    warnings = [str(w) for w in prep.inventory.warnings]
    summary = build_summary(final_inst, sol, prep.profiles, prep.config.name, warnings)
    summary["policy"] = "nightly"
    summary["inventory_dir"] = str(Path(prep.inventory.root).resolve())
    # The placement bound does not cover moves: the move search reports its own.
    summary.update(bound=None, gap=None, peak_row_power_bound=None, peak_row_power_gap=None)
    summary["nightly"] = {
        "max_moves": max_moves, "moves": len(steps), "dropped": dropped,
        "peak_row_power_without_moves": round(before.peak_row_power_norm, 6),
        "peak_row_power_with_moves": round(after.peak_row_power_norm, 6),
        "peak_row_power_change_pct": round(100 * (after.peak_row_power_norm / before.peak_row_power_norm - 1), 2),
        "max_gpu_temp_without_moves_c": round(before.peak_temp_c, 2),
        "max_gpu_temp_with_moves_c": round(after.peak_temp_c, 2),
        "rows_without_moves": row_peaks(inst, before), "move_search": mp.stats,
        "min_gain_pct": min_gain_pct, "held_back": held_back, "why_no_moves": why_none,
    }
    plan = plan_frame(final_inst, after)
    moved_ids = {m.vm_id for m in done}
    plan.loc[plan["vm_id"].isin(moved_ids), "status"] = "moved"
    moves = pd.DataFrame(steps, columns=["step", "vm_id", "from_server", "to_server", "from_row", "to_row",
                                         "in_flight_peak_row_power", "in_flight_violations",
                                         "peak_row_power_after", "max_gpu_temp_after_c"])
    diff = diff_plans(plan, previous_plan) if previous_plan is not None else None
    if previous_plan is not None:
        summary["warnings"] = summary.get("warnings", []) + previous_plan_warnings(
            previous, previous_plan, plan, prep.inventory)
    if out_dir is not None:
        explanations = explain_plan(final_inst, after) if explain else None
        with atomic_directory(out_dir) as tmp:
            plan.to_csv(tmp / "plan.csv", index=False)
            moves.to_csv(tmp / "moves.csv", index=False)
            write_json(tmp / "summary.json", summary)
            if explanations is not None:
                write_json(tmp / "explanations.json", explanations)
            profiles_frame(prep.profiles).to_parquet(tmp / "profiles.parquet", index=False)
            if diff is not None:
                diff.to_csv(tmp / "diff.csv", index=False)
    return NightlyResult(prep, summary, plan, moves, mp, diff)
