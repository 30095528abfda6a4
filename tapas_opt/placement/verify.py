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
    instance: PlacementInstance
    evaluation: Evaluation
    violations: list[Violation] = field(default_factory=list)
    preexisting: list[Violation] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

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


def verify_plan(inst: PlacementInstance, plan: pd.DataFrame, line_of=None) -> VerifyReport:
    assign, structural, moves = assignment_from_plan(inst, plan, line_of=line_of)
    if moves:
        from tapas_opt.fleet.moves import Move, moved_instance

        inst = moved_instance(inst, [Move(str(inst.running["vm_id"].iloc[i]), i,
                                          int(inst.running["server"].iloc[i]), s) for i, s in moves.items()])
    ev = evaluate_assignment(inst, assign)
    hard = structural + [v for v in ev.violations if not v.code.endswith("_preexisting")]
    pre = [v for v in ev.violations if v.code.endswith("_preexisting")]
    unplaced = [str(inst.vm_ids[v]) for v in np.flatnonzero(assign < 0)]
    return VerifyReport(inst, ev, hard, pre, unplaced)
