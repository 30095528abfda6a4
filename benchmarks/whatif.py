"""What-if sweep benchmark: 100 scenarios on a generated 1,000-server room, 1 vs 2 Dask workers.

The issue's "Done when": a 100-scenario sweep on the 1,000-server room runs on a 2-worker
LocalCluster with a speed-up >= 1.7x over one worker (ratio measured in one run), and survives a
worker killed mid-sweep with no scenario lost.

1. Generates the room (``tapas-opt generate --servers 1000 --pending 400 --seed 1``) once.
2. Writes the scenario file: 5 listed scenarios (normal, +10 % load, UPS failure for a day, AHU
   failure of aisle A01 for a day, GPU limit 83 C) x servers added per row 0, 2, ..., 18 x
   outside temperature +0 / +5 C = 100 scenarios. Each scenario: the changes, the paper's
   template forecast, the greedy placement policy (the optimiser's warm start; ~40 s of CP-SAT
   per scenario would make the sweep hours long), and the predicted week (docs/whatif.md).
3. Runs the same 100 scenarios on a LocalCluster with 1 worker, then with 2 workers (one thread
   each), each from scratch (``force``), and reports the wall-time ratio. The clusters are
   started before the clock starts (startup is reported separately).
4. Runs them again on 2 workers and SIGKILLs one worker process after ``--kill-after``
   scenarios have finished: every scenario must still finish, none fail, and every result must
   equal the undisturbed run's.

Usage (numbers in BENCHMARKS.md come from exactly this):

    python benchmarks/whatif.py --workdir /tmp/whatif-bench
    python benchmarks/whatif.py --workdir /tmp/whatif-bench --evaluator simulator --no-kill

``--evaluator simulator`` simulates each scenario's week (``tapas_opt.simulate`` at 60-minute
steps, real traces from ``--traces``) instead of scoring the predicted week; the +10 % load
scenario becomes "row limits at 95 %" there (the simulator's traces ignore load growth).

Writes ``benchmarks/out/whatif.json`` and prints Markdown. Other jobs on the machine slow the
2-worker run more than the 1-worker one (it needs both cores): run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

SCENARIOS = """\
name: room1000-sweep100
base: {room}
settings: {{policy: greedy, forecast_method: template, evaluator: {evaluator}, evaluate_quantile: p50{extra}}}
scenarios:
  - name: normal
  - name: {second}
  - name: ups-failure
    changes: {{failures: [ups-failure]}}
  - name: ahu-failure
    changes: {{failures: [ahu-failure:A01]}}
  - name: gpu-limit-83
    changes: {{limits: {{gpu_temp_limit_c: 83}}}}
sweep:
  changes.add_servers.per_row: [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]
  changes.outside.shift_c: [0, 5]
report:
  capping_budgets_pct: [1, 5, 10]
"""

METRICS = ["peak_row_power_fraction", "max_gpu_temp_c", "power_capped_row_time_pct",
           "thermal_throttled_gpu_time_pct", "vms_placed", "vms_forced", "vms_unplaced"]


def ensure_room(workdir: Path, servers: int, pending: int, seed: int) -> Path:
    from tapas_opt.generate import RoomSpec, write_room

    room = workdir / f"room-{servers}-seed{seed}"
    if not (room / "datacenter.yaml").exists():
        write_room(RoomSpec(servers=servers, pending_vms=pending, seed=seed), room)
    return room


def timed_sweep(sweep, out: Path, workers: int, kill_after: int | None = None) -> dict:
    from tapas_opt.distributed import dask_client
    from tapas_opt.whatif import run_sweep

    t0 = time.perf_counter()
    with dask_client(None, workers) as client:
        client.wait_for_workers(workers)
        startup = time.perf_counter() - t0
        pids = client.run(os.getpid)
        state = {"n": 0, "killed": None}

        def on_result(outcome):
            state["n"] += 1
            if kill_after is not None and state["n"] == kill_after and state["killed"] is None:
                addr, pid = sorted(pids.items())[0]
                os.kill(pid, signal.SIGKILL)
                state["killed"] = {"worker": addr, "pid": pid, "after_scenarios": state["n"]}
                print(f"    killed worker {addr} (pid {pid}) after {state['n']} scenarios", file=sys.stderr)

        t1 = time.perf_counter()
        result = run_sweep(sweep, out, client=client, force=True, plots=kill_after is None, on_result=on_result)
        wall = time.perf_counter() - t1
        pids_after = client.run(os.getpid)
    per = result.table["time.total_s"]
    return {"workers": workers, "wall_s": round(wall, 2), "startup_s": round(startup, 2),
            "finished": int(len(result.table)), "failed": len(result.failed),
            "scenario_s_mean": round(float(per.mean()), 3), "scenario_s_sum": round(float(per.sum()), 1),
            "worker_processes_used": len({json.loads(f.read_text())["worker"]["pid"]
                                          for f in (out / "scenarios").glob("*.json")}),
            "killed": state["killed"], "workers_after": len(pids_after), "table": result.table}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/whatif-bench"))
    ap.add_argument("--servers", type=int, default=1000)
    ap.add_argument("--pending", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kill-after", type=int, default=25, help="SIGKILL a worker after this many results")
    ap.add_argument("--no-kill", action="store_true", help="skip the killed-worker run")
    ap.add_argument("--evaluator", choices=["predicted", "simulator"], default="predicted",
                    help="simulator: each scenario simulates its week (real traces from --traces; the +10 %% load "
                         "scenario becomes row limits at 95 %%, load growth does not apply to traces)")
    ap.add_argument("--traces", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--out", type=Path, default=HERE / "out" / "whatif.json")
    args = ap.parse_args()

    from tapas_opt.whatif import load_sweep

    args.workdir.mkdir(parents=True, exist_ok=True)
    room = ensure_room(args.workdir, args.servers, args.pending, args.seed)
    spec_path = args.workdir / "sweep100.yaml"
    if args.evaluator == "simulator":
        extra = f", traces: {args.traces}, sim_policy: place, sim_step_min: 60"
        second = "limits-95\n    changes: {limits: {row_power_scale: 0.95}}"
    else:
        extra, second = "", "growth-10\n    changes: {load_growth: {all: 1.1}}"
    spec_path.write_text(SCENARIOS.format(room=room, evaluator=args.evaluator, extra=extra, second=second))
    sweep = load_sweep(spec_path)
    print(f"{len(sweep.scenarios)} scenarios on {room}", file=sys.stderr)
    runs = {}
    for workers in (1, 2):
        print(f"  {workers} worker(s) ...", file=sys.stderr)
        runs[workers] = timed_sweep(sweep, args.workdir / f"run-{workers}w", workers)
        print(f"    {runs[workers]['wall_s']} s", file=sys.stderr)
    speedup = runs[1]["wall_s"] / runs[2]["wall_s"]
    kill = None
    if not args.no_kill:
        print("  2 workers, one killed mid-sweep ...", file=sys.stderr)
        kill = timed_sweep(sweep, args.workdir / "run-kill", 2, kill_after=args.kill_after)
        ref = runs[2]["table"].set_index("scenario_id")[METRICS].sort_index()
        got = kill["table"].set_index("scenario_id")[METRICS].sort_index()
        kill["results_equal_undisturbed"] = bool(ref.index.equals(got.index) and ref.equals(got))
    load = os.getloadavg()
    out = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_at_end": [round(x, 2) for x in load],
        "command": "python benchmarks/whatif.py " + " ".join(sys.argv[1:]),
        "room": str(room), "scenarios": len(sweep.scenarios),
        "runs": [{k: v for k, v in r.items() if k != "table"} for r in runs.values()],
        "speedup_2_vs_1": round(speedup, 3),
        "killed_worker_run": None if kill is None else {k: v for k, v in kill.items() if k != "table"},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print("| workers | wall (s) | cluster start (s) | scenarios finished | failed | mean s per scenario |")
    print("|---|---|---|---|---|---|")
    for r in out["runs"]:
        print(f"| {r['workers']} | {r['wall_s']} | {r['startup_s']} | {r['finished']} | {r['failed']} | "
              f"{r['scenario_s_mean']} |")
    print(f"\nspeed-up 2 vs 1 worker: **{speedup:.2f}x** (load average at the end {load[0]:.1f})")
    if kill is not None:
        k = kill
        print(f"\nkilled run: worker SIGKILLed after {k['killed']['after_scenarios'] if k['killed'] else '-'} results; "
              f"{k['finished']} of {len(sweep.scenarios)} finished, {k['failed']} failed, wall {k['wall_s']} s, "
              f"results equal to the undisturbed run: {k['results_equal_undisturbed']}")


if __name__ == "__main__":
    main()
