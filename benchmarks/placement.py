"""Placement benchmark: the issue's "Done when" numbers, measured through the CLI and files.

1. Generated 1,000-server rooms (about 50 % occupied, 400 pending VMs, a week of hourly
   slots), one per seed: every policy runs ``tapas-opt place`` side by side (wall time of the
   whole command), every plan is re-checked by ``tapas-opt verify``, and the table reports the
   peak normalised row power (with the LP lower bound), the room's and the placed VMs' peak GPU
   temperature, and violations.
2. Single-VM placement into a generated 10,000-server room through the Python API
   (:class:`tapas_opt.api.Planner`): median and p95 latency over many requests.

Usage (numbers in BENCHMARKS.md come from exactly this):

    python benchmarks/placement.py --seeds 1 2 3 --weather ../shared/data/weather/USA_VA_Leesburg.Exec.epw

Writes ``benchmarks/out/placement.json`` and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from common import machine, run

HERE = Path(__file__).resolve().parent
POLICIES = ["first-fit", "random", "tapas-rules", "greedy", "optimal"]


def placed_peak_temp(plan_dir: Path) -> float:
    plan = pd.read_csv(plan_dir / "plan.csv")
    placed = plan[plan["status"] == "placed"]
    return float(placed["peak_gpu_temp_c"].max()) if len(placed) else float("nan")


def bench_room(seed: int, servers: int, pending: int, weather: str | None, workdir: Path) -> list[dict]:
    room = workdir / f"room-{servers}-seed{seed}"
    cmd = ["tapas-opt", "generate", "--servers", str(servers), "--pending", str(pending), "--seed", str(seed),
           "--out", str(room)]
    if weather:
        cmd += ["--weather", weather]
    code, _, out = run(cmd)
    if code:
        raise SystemExit(out)
    rows = []
    for policy in POLICIES:
        plan = workdir / f"plan-{seed}-{policy}"
        code, wall, out = run(["tapas-opt", "place", str(room), "--out", str(plan), "--policy", policy, "--quiet"])
        if code not in (0, 1):
            raise SystemExit(out)
        summary = json.loads((plan / "summary.json").read_text())
        vcode, _, vout = run(["tapas-opt", "verify", str(room), str(plan), "--quiet"])
        rows.append({
            "seed": seed, "policy": policy, "wall_s": round(wall, 2), "solve_s": summary["solve_time_s"],
            "peak_row_power": summary["peak_row_power_fraction"],
            "lp_bound": summary["peak_row_power_bound"],
            "max_gpu_temp_c": summary["max_gpu_temp_c"],
            "max_placed_gpu_temp_c": round(placed_peak_temp(plan), 2),
            "unplaced": summary["vms"]["unplaced"],
            "violations": len(summary["violations"]),
            "verify_exit": vcode,
            "objective": summary["objective"], "gap": summary["gap"],
        })
        print(f"  seed {seed} {policy:12s} {wall:6.1f}s peak {rows[-1]['peak_row_power']:.4f} "
              f"temp {rows[-1]['max_gpu_temp_c']} placed-temp {rows[-1]['max_placed_gpu_temp_c']} "
              f"viol {rows[-1]['violations']} verify {vcode}", file=sys.stderr)
    return rows


def bench_single_vm(servers: int, requests: int, seed: int, workdir: Path) -> dict:
    from tapas_opt.api import Planner
    from tapas_opt.generate import RoomSpec, write_room

    room = workdir / f"room-{servers}-single"
    write_room(RoomSpec(servers=servers, pending_vms=0, seed=seed), room, fmt="parquet")
    t0 = time.perf_counter()
    planner = Planner.from_inventory(room)
    prep_s = time.perf_counter() - t0
    inst = planner.instance
    rng = np.random.default_rng(seed)
    loads = inst.running_load[rng.integers(len(inst.running_load), size=requests)]
    sizes = rng.choice([8, 8, 8, 8, 4, 2, 1], size=requests)
    kinds = rng.choice(["iaas", "saas"], size=requests)
    lat = []
    placed = 0
    for load, gpus, kind in zip(loads, sizes, kinds):
        t = time.perf_counter()
        sid = planner.place(load, int(gpus), str(kind))
        lat.append(time.perf_counter() - t)
        placed += sid is not None
    lat_ms = np.array(lat) * 1000
    return {"servers": servers, "requests": requests, "placed": placed, "prepare_s": round(prep_s, 2),
            "median_ms": round(float(np.median(lat_ms)), 2), "p95_ms": round(float(np.percentile(lat_ms, 95)), 2),
            "max_ms": round(float(lat_ms.max()), 2)}


def markdown_table(records: list[dict], cols: list[str] | None = None) -> str:
    cols = cols or list(records[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for rec in records:
        lines.append("| " + " | ".join("" if pd.isna(rec[c]) else str(rec[c]) for c in cols) + " |")
    return "\n".join(lines)


def markdown(rows: list[dict]) -> str:
    return markdown_table(rows, ["seed", "policy", "wall_s", "peak_row_power", "lp_bound", "max_gpu_temp_c",
                                 "max_placed_gpu_temp_c", "unplaced", "violations", "verify_exit"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--servers", type=int, default=1000)
    ap.add_argument("--pending", type=int, default=400)
    ap.add_argument("--weather", default=None)
    ap.add_argument("--single-servers", type=int, default=10_000)
    ap.add_argument("--single-requests", type=int, default=200)
    ap.add_argument("--skip-single", action="store_true")
    ap.add_argument("--out", default=str(HERE / "out" / "placement.json"))
    args = ap.parse_args()
    result = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "command": " ".join(sys.argv)}
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for seed in args.seeds:
            rows += bench_room(seed, args.servers, args.pending, args.weather, Path(tmp))
        result["rooms"] = rows
        if not args.skip_single:
            result["single_vm"] = bench_single_vm(args.single_servers, args.single_requests, 0, Path(tmp))
    df = pd.DataFrame(rows)
    summary = []
    for seed, g in df.groupby("seed"):
        g = g.set_index("policy")
        opt = g.loc["optimal"]
        summary.append({"seed": seed,
                        "vs_first_fit_power_pct": round(100 * (opt.peak_row_power / g.loc["first-fit"].peak_row_power - 1), 1),
                        "vs_tapas_rules_power_pct": round(100 * (opt.peak_row_power / g.loc["tapas-rules"].peak_row_power - 1), 1),
                        "gap_to_lp_bound_pct": round(100 * (opt.peak_row_power / opt.lp_bound - 1), 2),
                        "vs_first_fit_temp_c": round(opt.max_gpu_temp_c - g.loc["first-fit"].max_gpu_temp_c, 2),
                        "vs_first_fit_placed_temp_c": round(opt.max_placed_gpu_temp_c - g.loc["first-fit"].max_placed_gpu_temp_c, 2),
                        "vs_tapas_rules_placed_temp_c": round(opt.max_placed_gpu_temp_c - g.loc["tapas-rules"].max_placed_gpu_temp_c, 2),
                        "optimal_wall_s": opt.wall_s})
    result["summary"] = summary
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=float))
    print(markdown(rows))
    print()
    print(markdown_table(summary))
    if "single_vm" in result:
        print()
        print("single VM:", result["single_vm"])


if __name__ == "__main__":
    main()
