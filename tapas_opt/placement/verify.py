"""Re-check any plan against an inventory with physics alone (``tapas-opt verify``).

The plan may come from tapas-opt or from anywhere else: only ``vm_id`` and ``server_id`` are
read from ``plan.csv``. The load profiles are the plan's own (``profiles.parquet`` beside it)
when present, else forecast afresh from the inventory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tapas_opt.errors import InventoryError, Problem
from tapas_opt.inventory.load import csv_row_line, listed_twice
from tapas_opt.placement.evaluate import Evaluation, Violation, evaluate_assignment
from tapas_opt.placement.instance import PlacementInstance


@dataclass
class VerifyReport:
    """What :func:`tapas_opt.api.verify` found; ``ok`` when no limit is broken. Its repr lists
    the findings, not the instance and evaluation arrays behind them (megabytes in a big room)."""

    instance: PlacementInstance = field(repr=False)
    evaluation: Evaluation = field(repr=False)
    violations: list[Violation] = field(default_factory=list)
    preexisting: list[Violation] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    move_steps: list[dict] = field(default_factory=list)
    """A nightly plan's moves.csv replayed in its order (:func:`tapas_opt.fleet.moves.replay_moves`)."""

    @property
    def ok(self) -> bool:
        return not self.violations


def assignment_from_plan(inst: PlacementInstance, plan: pd.DataFrame, file: str = "plan.csv", line_of=None
                         ) -> tuple[np.ndarray, list[Violation], dict[int, int]]:
    """Server index per pending VM from a plan frame, and the moves of running SaaS VMs that
    the plan declares (``status`` = ``moved``, from ``tapas-opt plan``) as {running index:
    server}. Structural problems raise; any other change of a running VM's server, and moving
    an IaaS VM, are violations. ``line_of`` maps a row to its file line (row + 2 by default;
    :func:`tapas_opt.inventory.load.line_mapper` counts the blank lines a CSV may hold)."""
    line_of = line_of or csv_row_line
    violations: list[Violation] = []
    moves: dict[int, int] = {}
    run_pos = pd.Series(np.arange(len(inst.running)), index=inst.running["vm_id"])
    run_kind = inst.running.set_index("vm_id")["kind"]
    dup, problems = listed_twice(plan, file, line_of, "each VM goes on one server")
    server_pos = pd.Series(np.arange(inst.n_servers), index=inst.server_ids)
    running = inst.running.set_index("vm_id")["server_id"]
    pending_pos = pd.Series(np.arange(inst.n_vms), index=inst.vm_ids)
    assign = np.full(inst.n_vms, -1, dtype=int)
    for idx, row in plan.iterrows():
        vm, server = row["vm_id"], row["server_id"]
        if pd.isna(vm):  # (said as "vm_id nan is not in vms.csv")
            problems.append(Problem("missing_value", file, "vm_id is empty", "give the VM's id, or remove the line",
                                    line=line_of(idx), column="vm_id"))
            continue
        if pd.isna(server):
            continue
        if server not in server_pos.index:
            problems.append(Problem("unknown_server", file, f"server_id {server!r} is not in servers.csv",
                                    line=line_of(idx), column="server_id"))
            continue
        if vm in running.index:
            declared = "status" in plan.columns and row.get("status") == "moved"
            if running[vm] != server and declared and run_kind[vm] == "saas":
                moves[int(run_pos[vm])] = int(server_pos[server])
            elif running[vm] != server:
                why = ("IaaS VMs cannot live-migrate" if declared else
                       "running VMs stay where they are (only SaaS moves declared as 'moved')")
                violations.append(Violation("running_moved", str(vm), None, 0, 0,
                                            f"running VM {vm} is on {running[vm]} but the plan puts it on "
                                            f"{server}: {why}"))
            continue
        if vm not in pending_pos.index:
            problems.append(Problem("unknown_vm", file, f"vm_id {vm!r} is not in vms.csv",
                                    line=line_of(idx), column="vm_id"))
            continue
        if not dup[idx]:
            assign[pending_pos[vm]] = server_pos[server]
    too_big = [v for v in np.flatnonzero(assign >= 0)
               if inst.vm_gpus[v] > inst.params.gpus[assign[v]]]
    for v in too_big:
        violations.append(Violation("gpu_capacity", str(inst.vm_ids[v]), None, inst.vm_gpus[v],
                                    inst.params.gpus[assign[v]],
                                    f"VM {inst.vm_ids[v]} needs {inst.vm_gpus[v]} GPUs; server "
                                    f"{inst.server_ids[assign[v]]} has {inst.params.gpus[assign[v]]}"))
    if problems:
        raise InventoryError(problems)
    return assign, violations, moves


def verify_plan(inst: PlacementInstance, plan: pd.DataFrame, line_of=None, moves: pd.DataFrame | None = None
                ) -> VerifyReport:
    """Evaluate ``plan`` (the room after it) and, when a nightly plan's ``moves`` are given
    (``moves.csv``, checked against ``plan`` by :func:`tapas_opt.placement.output.read_moves`),
    every step of them in their order: a limit broken while a move is in flight (old and new
    instance both running) is a violation ``move_in_flight``, as one broken after all of them."""
    from tapas_opt.fleet.moves import Move, moved_instance

    assign, structural, final_moves = assignment_from_plan(inst, plan, line_of=line_of)
    steps = replay_moves_frame(inst, assign, moves) if moves is not None and len(moves) else []
    final = inst
    if final_moves:
        final = moved_instance(inst, [Move(str(inst.running["vm_id"].iloc[i]), i,
                                           int(inst.running["server"].iloc[i]), s) for i, s in final_moves.items()])
    ev = evaluate_assignment(final, assign)
    hard = structural + [v for v in ev.violations if not v.code.endswith("_preexisting")]
    hard += [_in_flight_violation(step, v) for step in steps for v in step["violations"]]
    pre = [v for v in ev.violations if v.code.endswith("_preexisting")]
    unplaced = [str(final.vm_ids[v]) for v in np.flatnonzero(assign < 0)]
    return VerifyReport(final, ev, hard, pre, unplaced,
                        move_steps=[{k: v for k, v in step.items() if k != "violations"} for step in steps])


def replay_moves_frame(inst: PlacementInstance, assign: np.ndarray, moves: pd.DataFrame) -> list[dict]:
    """:func:`tapas_opt.fleet.moves.replay_moves` on the rows of a ``moves.csv`` frame (in its order)."""
    from tapas_opt.fleet.moves import Move, replay_moves

    run_pos = pd.Series(np.arange(len(inst.running)), index=inst.running["vm_id"])
    server_pos = pd.Series(np.arange(inst.n_servers), index=inst.server_ids)
    sequence = [Move(str(r.vm_id), int(run_pos[r.vm_id]), int(server_pos[r.from_server]), int(server_pos[r.to_server]))
                for r in moves[["vm_id", "from_server", "to_server"]].itertuples(index=False)]
    return replay_moves(inst, assign, sequence)


def _in_flight_violation(step: dict, v: Violation) -> Violation:
    """A limit broken while a move of moves.csv runs, said as such."""
    return Violation("move_in_flight", f"step {step['step']}: {v.subject}", v.slot, v.value, v.limit,
                     f"while step {step['step']} of moves.csv moves {step['vm_id']} from {step['from_server']} to "
                     f"{step['to_server']} (both instances running): {v.message}")
