"""Reconfiguration benchmark: the issue's "Done when" numbers for ``tapas-opt reconfigure``.

1. Events on generated 1,000-server rooms at their weekly peak (the slot of highest room power),
   50/50 IaaS/SaaS: a UPS failure (every row to 75 %), an AHU failure (the aisle with the least
   airflow headroom to 90 %) and a heat wave (+5 C). Rooms: the default generated room
   (``tapas-opt generate --servers 1000``: 50 % of GPUs in use; its 400 pending VMs are not in
   the room yet) and two fuller variants (70 % and 85 % of GPUs in use, no pending VMs) where
   the events bite harder. Side by side per event: uniform capping, the paper-style greedy
   playbook, tapas-opt; every plan is re-checked by the solver-free checker.
2. Solve time of the optimal policy on a generated room with at least 1,000 SaaS VMs against
   the full catalogue (every family's configurations), median of ``--repeats`` runs: LP +
   integral plan (LP diving), and the optional CBC polish.
3. The per-batch router: microseconds per batch of 64 requests on the largest endpoint.

Run standalone from the repository root (the numbers in BENCHMARKS.md come from exactly this):

    python benchmarks/reconfigure.py                  # all parts, ~3-5 minutes on 2 cores
    python benchmarks/reconfigure.py --parts timing   # one part: events | timing | router
    python benchmarks/reconfigure.py --parts events --seeds 1 2   # held-out rooms

Profiles use the paper's template forecaster (``--forecast-method template``, the same for every
policy; ``auto`` is slower and changes the loads, not the comparison). Writes
``benchmarks/out/reconfigure.json`` and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from common import machine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tapas_opt.generate import RoomSpec, write_room  # noqa: E402
from tapas_opt.reconfig.catalogue import load_catalogue  # noqa: E402
from tapas_opt.reconfig.evaluate import check_plan  # noqa: E402
from tapas_opt.reconfig.events import parse_events  # noqa: E402
from tapas_opt.reconfig.instance import ReconfigOptions, build_reconfig_instance  # noqa: E402
from tapas_opt.reconfig.model import solve_optimal  # noqa: E402
from tapas_opt.reconfig.routing import Router  # noqa: E402
from tapas_opt.reconfig.run import prepare_room, reconfigure  # noqa: E402

POLICIES = ("uniform-cap", "greedy", "optimal")
ROOMS = {"default (50 % used)": dict(servers=1000), "70 % used": dict(servers=1000, occupancy=0.7, pending_vms=0),
         "85 % used": dict(servers=1000, occupancy=0.85, pending_vms=0)}


def md(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for rec in frame.itertuples(index=False):
        out.append("| " + " | ".join(str(v) for v in rec) + " |")
    return "\n".join(out)


def worst_aisle(prep) -> str:
    """The aisle with the least airflow headroom at the weekly peak (where an AHU failure hurts most)."""
    inst = prep.instance
    t = int(np.argmax(inst.base_row_kw.sum(axis=0)))
    return str(inst.aisle_ids[int(np.argmax(inst.base_aisle_cfm[:, t] / inst.aisle_limit_cfm))])


def run_events(tmp: Path, forecast: str, cat, seeds=(0,)) -> list[dict]:
    """Every event and policy on every room of :data:`ROOMS`, generated with each seed (seed 0
    is the room the policies were built on; other seeds are held-out rooms)."""
    rows = []
    for seed in seeds:
        rows += _run_events_seed(tmp, forecast, cat, seed)
    return rows


def _run_events_seed(tmp: Path, forecast: str, cat, seed: int) -> list[dict]:
    rows = []
    for label, spec in ROOMS.items():
        path = tmp / f"{label.split()[0].replace('%', '')}-seed{seed}"
        write_room(RoomSpec(**spec, seed=seed), path)
        prep = prepare_room(path, forecast_method=forecast)
        events = ["ups-failure", f"ahu-failure:{worst_aisle(prep)}", "heatwave:+5C"]
        for event in events:
            for policy in POLICIES:
                t0 = time.perf_counter()
                res = reconfigure(None, [event], policy=policy, catalogue=cat, prepared=prep)
                wall = time.perf_counter() - t0
                s = res.summary
                limits_ok = not any(v["code"] in ("row_power", "aisle_airflow", "gpu_temperature")
                                    for v in s["still_exceeded"])
                solver = s.get("solver", {})
                lp_q = solver.get("lp_terms", {}).get("quality_loss")
                rows.append({
                    "seed": seed, "room": label, "event": event, "policy": policy,
                    "limits_met": limits_ok, "iaas_untouched": s["iaas"]["capped_vms"] == 0,
                    "endpoints_missing_slo": s["saas"]["endpoints_missing_slo"],
                    "served_pct": s["saas"]["served_pct"],
                    "quality_loss_pct": s["saas"]["quality_loss_pct"],
                    "smaller_or_quantised_pct": s["saas"]["smaller_or_quantised_share_pct"],
                    "saas_perf_pct": s["saas"]["perf_change_pct"],
                    "iaas_perf_pct": s["iaas"]["perf_change_pct"],
                    "reloads": s["reconfiguration"]["reloads"],
                    "if_unchanged": ",".join(f"{k}:{v}" for k, v in s["violations_if_unchanged"].items()) or "-",
                    "objective": solver.get("objective"), "lp_bound": solver.get("lp_objective"),
                    "gap_rel": solver.get("gap_rel"), "gap_abs": solver.get("gap_abs"),
                    "lp_quality_loss_pct": round(lp_q, 3) if lp_q is not None else None,
                    "wall_s": round(wall, 2),
                })
                print(f"seed {seed} {label} {event} {policy}: {rows[-1]}", file=sys.stderr)
    return rows


def run_timing(tmp: Path, forecast: str, cat, repeats: int) -> dict:
    """Optimal solve on a room with >= 1,000 SaaS VMs (UPS failure: the hardest event)."""
    path = tmp / "timing"
    write_room(RoomSpec(servers=2100, occupancy=0.85, pending_vms=0, seed=1), path)
    prep = prepare_room(path, forecast_method=forecast)
    out = {}
    for event in ("ups-failure", "ups-failure:0.85"):
        inst = build_reconfig_instance(prep, cat, parse_events([event]))
        fast, polished = [], []
        for _ in range(repeats):
            r = solve_optimal(inst, improve=False)
            fast.append(r)
            polished.append(solve_optimal(inst, improve=True))
        f = fast[len(fast) // 2]
        p = polished[len(polished) // 2]
        out[event] = {
            "saas_vms": int(len(inst.saas)), "endpoints": int(len(inst.endpoints)), "catalogue_rows": int(len(cat.configs)),
            "groups": f.n_groups, "columns": f.n_pairs, "columns_integral": f.n_pairs_integral,
            "plan_s_median": round(statistics.median(r.solve_s for r in fast), 3),
            "plan_s_all": [round(r.solve_s, 3) for r in fast],
            "lp_s": round(f.lp_s, 3), "dive_s": round(f.mip_s, 3),
            "polished_s_median": round(statistics.median(r.solve_s for r in polished), 3),
            "objective_dive": round(f.objective, 4), "objective_polished": round(p.objective, 4),
            "lp_bound": round(f.lp_objective, 4),
            "gap_dive": None if f.gap is None else round(f.gap, 4), "gap_polished": None if p.gap is None else round(p.gap, 4),
            "gap_abs_polished": round(p.gap_abs, 4),
            "feasible": check_plan(inst, p.plan).feasible,
        }
        print(f"timing {event}: {out[event]}", file=sys.stderr)
    return out


def run_router(tmp: Path, forecast: str, cat) -> dict:
    path = tmp / "router"
    if not path.exists():
        write_room(RoomSpec(servers=2100, occupancy=0.85, pending_vms=0, seed=1), path)
    res = reconfigure(path, ["none"], policy="greedy", catalogue=cat, prepared=prepare_room(path, forecast_method=forecast))
    from tapas_opt.reconfig.summary import routing_table

    table = routing_table(res.instance, np.asarray(res.plan.saas_load))
    big = table["endpoint"].value_counts().index[0]
    router = Router(table)
    n_batches, batch = 2000, 64
    t0 = time.perf_counter()
    for _ in range(n_batches):
        router.route(big, batch)
    plain = (time.perf_counter() - t0) / n_batches * 1e6
    sessions = [f"s{i}" for i in range(batch)]
    t0 = time.perf_counter()
    for k in range(n_batches):
        router.route(big, batch, sessions=[f"{s}-{k % 50}" for s in sessions])
    with_sessions = (time.perf_counter() - t0) / n_batches * 1e6
    return {"endpoint_vms": int((table["endpoint"] == big).sum()), "batch": batch,
            "us_per_batch": round(plain, 1), "us_per_batch_with_sessions": round(with_sessions, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=["events", "timing", "router"], choices=["events", "timing", "router"])
    ap.add_argument("--forecast-method", default="template", choices=["template", "auto"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0],
                    help="generator seeds of the event rooms (0: the rooms the policies were built on)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "reconfigure.json"))
    args = ap.parse_args()
    cat = load_catalogue()
    result = {"date": date.today().isoformat(), "machine": machine(), "forecast_method": args.forecast_method,
              "command": "python benchmarks/reconfigure.py " + " ".join(sys.argv[1:]),
              "options": ReconfigOptions().__dict__}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "events" in args.parts:
            rows = run_events(tmp, args.forecast_method, cat, args.seeds)
            result["events"] = rows
            frame = pd.DataFrame(rows)
            print("\n## Events (weekly peak)\n")
            print(md(frame[["seed", "room", "event", "policy", "limits_met", "iaas_untouched", "endpoints_missing_slo", "served_pct",
                            "quality_loss_pct", "smaller_or_quantised_pct", "saas_perf_pct", "iaas_perf_pct", "reloads",
                            "if_unchanged", "wall_s"]]))
            opt = frame[frame["policy"] == "optimal"]
            print("\n## Optimal: integral vs LP relaxation\n")
            print(md(opt[["seed", "room", "event", "objective", "lp_bound", "gap_rel", "gap_abs", "quality_loss_pct",
                          "lp_quality_loss_pct"]]))
        if "timing" in args.parts:
            result["timing"] = run_timing(tmp, args.forecast_method, cat, args.repeats)
            print("\n## Solve time\n")
            print(md(pd.DataFrame(result["timing"]).T.reset_index().rename(columns={"index": "event"})))
        if "router" in args.parts:
            result["router"] = run_router(tmp, args.forecast_method, cat)
            print("\n## Router\n")
            print(json.dumps(result["router"]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwrote {out} ({result['machine']}, {result['date']})")


if __name__ == "__main__":
    main()
