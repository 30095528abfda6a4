"""Why each VM got its server: the limit that binds, the headroom left, the runner-up servers.

For a placed VM the explanation names, for its row, its aisle and its GPUs, the tightest slot
of the horizon and the headroom left there; the *binding* limit is the one with the least
headroom relative to its limit. Runner-ups are the next-best feasible servers under the same
score the greedy uses, with what each would have done to its row and GPUs.
"""

from __future__ import annotations

import numpy as np

from tapas_opt.placement.evaluate import Evaluation, server_warmth
from tapas_opt.placement.heuristics import score_candidates
from tapas_opt.placement.instance import PlacementInstance
from tapas_opt.placement.state import RoomState


def _limit_entry(kind: str, subject: str, value: float, limit: float, unit: str, when: str) -> dict:
    return {"limit": kind, "subject": subject, "peak": round(float(value), 2), "limit_value": round(float(limit), 2),
            "unit": unit, "at": when, "headroom": round(float(limit - value), 2),
            "headroom_pct": round(float(100 * (limit - value) / limit), 2)}


def explain_vm(inst: PlacementInstance, ev: Evaluation, state: RoomState, v: int, warmth: np.ndarray,
               runner_ups: int = 3) -> dict:
    s = int(ev.assign[v])
    r = int(inst.server_row[s])
    a = int(inst.row_aisle[r])
    t_row = int(np.argmax(ev.row_kw[r]))
    t_air = int(np.argmax(ev.aisle_cfm[a]))
    t_gpu = int(ev.vm_peak_slot[v])
    limits = [
        _limit_entry("row_power", str(inst.row_ids[r]), ev.row_kw[r, t_row], inst.row_limit_kw[r], "kW",
                     inst.slot_label(t_row)),
        _limit_entry("aisle_airflow", str(inst.aisle_ids[a]), ev.aisle_cfm[a, t_air], inst.aisle_limit_cfm[a],
                     "CFM", inst.slot_label(t_air)),
        _limit_entry("gpu_temperature", str(inst.server_ids[s]), ev.vm_peak_temp_c[v], inst.temp_limit_c, "C",
                     inst.slot_label(t_gpu)),
    ]
    binding = min(limits, key=lambda e: e["headroom_pct"])
    # Runner-ups: take the VM out, score every feasible server, put it back.
    state.remove(v)
    cand = state.candidates(v)
    others = []
    if len(cand.servers):
        score = score_candidates(state, str(inst.vm_kind[v]), int(inst.vm_gpus[v]), cand, warmth)
        for k in np.argsort(score, kind="stable"):
            srv = int(cand.servers[k])
            if srv == s:
                continue
            others.append({"server_id": str(inst.server_ids[srv]), "row_id": str(inst.row_ids[inst.server_row[srv]]),
                           "row_peak_pct": round(100 * float(cand.row_peak_norm[k]), 2),
                           "gpu_peak_c": round(float(cand.peak_temp_c[k]), 2)})
            if len(others) >= runner_ups:
                break
    state.place(v, s)
    b = binding
    reason = (f"{inst.row_ids[r]}/{inst.server_ids[s]}: tightest limit is {b['limit'].replace('_', ' ')} of "
              f"{b['subject']} at {b['at']} ({b['peak']} of {b['limit_value']} {b['unit']}, "
              f"{b['headroom_pct']}% headroom)")
    return {"vm_id": str(inst.vm_ids[v]), "server_id": str(inst.server_ids[s]), "row_id": str(inst.row_ids[r]),
            "aisle_id": str(inst.aisle_ids[a]), "binding": b["limit"], "reason": reason, "limits": limits,
            "runner_ups": others}


def explain_plan(inst: PlacementInstance, ev: Evaluation, runner_ups: int = 3) -> list[dict]:
    """Explanations of every placed VM, in the order of the inventory."""
    state = RoomState.from_assignment(inst, ev.assign)
    warmth = server_warmth(inst)
    return [explain_vm(inst, ev, state, int(v), warmth, runner_ups) for v in np.flatnonzero(ev.assign >= 0)]
