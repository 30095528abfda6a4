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
3. Runs the same 100 scenarios on a LocalCluster with 1 worker and on one with 2 workers (one
   thread each), each from scratch (``force``), and reports the wall-time ratio. The machine is
   shared, so the two runs are interleaved in ``--chunks`` blocks of every 4th scenario, in ABBA
   order (1, 2, 2, 1, ...), and each configuration's block walls are summed: both see the same
   background load. The clusters are started before the clock starts.
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
2-worker run more than the 1-worker one (it needs both cores): run it on a quiet machine. To
show how quiet it was, each run reports the CPU seconds its scenarios used and the CPU seconds
the rest of the machine used meanwhile (``/proc/stat``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from common import machine

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


def busy_core_s() -> float | None:
    """CPU seconds the whole machine has been busy (all processes, all cores), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _stats(table, workers: int, wall: float, busy: float | None, startup: float) -> dict:
    per = table["time.total_s"]
    cpu = float(table["time.cpu_s"].sum())
    return {"workers": workers, "wall_s": round(wall, 2), "startup_s": round(startup, 2),
            "finished": int(len(table)), "scenario_s_mean": round(float(per.mean()), 3),
            "scenario_s_sum": round(float(per.sum()), 1), "scenario_cpu_s_sum": round(cpu, 1),
            "workers_busy_share": round(float(per.sum()) / (workers * wall), 3),
            "machine_busy_core_s": None if busy is None else round(busy, 1),
            "other_processes_core_s": None if busy is None else round(busy - cpu, 1)}


def interleaved(sweep, workdir: Path, chunks: int) -> dict[int, dict]:
    """The same scenarios on 1 and on 2 workers, in ``chunks`` interleaved blocks (ABBA order),
    so that both see the same background load on a shared machine; walls are summed."""
    import dataclasses

    from tapas_opt.distributed import dask_client
    from tapas_opt.whatif import run_sweep

    parts = [sweep.scenarios[k::chunks] for k in range(chunks)]
    acc = {w: {"wall": 0.0, "busy": 0.0, "failed": 0} for w in (1, 2)}
    t0 = time.perf_counter()
    with dask_client(None, 1) as c1, dask_client(None, 2) as c2:
        clients = {1: c1, 2: c2}
        c1.wait_for_workers(1)
        c2.wait_for_workers(2)
        startup = time.perf_counter() - t0
        for k, part in enumerate(parts):
            for w in ((1, 2) if k % 2 == 0 else (2, 1)):
                sub = dataclasses.replace(sweep, scenarios=part)
                b0, t1 = busy_core_s(), time.perf_counter()
                res = run_sweep(sub, workdir / f"run-{w}w", client=clients[w], force=True, plots=False)
                wall = time.perf_counter() - t1
                acc[w]["wall"] += wall
                acc[w]["busy"] += (busy_core_s() - b0) if b0 is not None else float("nan")
                acc[w]["failed"] += len(res.failed)
                print(f"    block {k + 1}/{chunks}: {len(part)} scenarios on {w} worker(s) in {wall:.1f} s",
                      file=sys.stderr)
        out = {}
        for w in (1, 2):
            table = run_sweep(sweep, workdir / f"run-{w}w", client=clients[w], plots=(w == 2)).table
            out[w] = {**_stats(table, w, acc[w]["wall"], acc[w]["busy"], startup), "failed": acc[w]["failed"],
                      "table": table}
    return out


def killed_run(sweep, out: Path, kill_after: int) -> dict:
    """2 workers; SIGKILL one worker process after ``kill_after`` results."""
    from tapas_opt.distributed import dask_client
    from tapas_opt.whatif import run_sweep

    with dask_client(None, 2) as client:
        client.wait_for_workers(2)
        pids = client.run(os.getpid)
        state = {"n": 0, "killed": None}

        def on_result(outcome):
            state["n"] += 1
            if state["n"] == kill_after and state["killed"] is None:
                addr, pid = sorted(pids.items())[0]
                os.kill(pid, signal.SIGKILL)
                state["killed"] = {"worker": addr, "pid": pid, "after_scenarios": state["n"]}
                print(f"    killed worker {addr} (pid {pid}) after {state['n']} scenarios", file=sys.stderr)

        t1, b0 = time.perf_counter(), busy_core_s()
        result = run_sweep(sweep, out, client=client, force=True, plots=False, on_result=on_result)
        wall = time.perf_counter() - t1
        busy = (busy_core_s() - b0) if b0 is not None else None
    pids_used = {json.loads(f.read_text())["worker"]["pid"] for f in (out / "scenarios").glob("*.json")}
    return {**_stats(result.table, 2, wall, busy, 0.0), "failed": len(result.failed), "killed": state["killed"],
            "worker_processes_used": len(pids_used), "table": result.table}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/whatif-bench"))
    ap.add_argument("--servers", type=int, default=1000)
    ap.add_argument("--pending", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kill-after", type=int, default=25, help="SIGKILL a worker after this many results")
    ap.add_argument("--chunks", type=int, default=4,
                    help="interleave the 1- and 2-worker runs in this many blocks (1: one after the other)")
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
    runs = interleaved(sweep, args.workdir, args.chunks)
    speedup = runs[1]["wall_s"] / runs[2]["wall_s"]
    kill = None
    if not args.no_kill:
        print("  2 workers, one killed mid-sweep ...", file=sys.stderr)
        kill = killed_run(sweep, args.workdir / "run-kill", args.kill_after)
        ref = runs[2]["table"].set_index("scenario_id")[METRICS].sort_index()
        got = kill["table"].set_index("scenario_id")[METRICS].sort_index()
        kill["results_equal_undisturbed"] = bool(ref.index.equals(got.index) and ref.equals(got))
    load = os.getloadavg()
    out = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "load_average_at_end": [round(x, 2) for x in load],
        "command": "python benchmarks/whatif.py " + " ".join(sys.argv[1:]),
        "room": str(room), "scenarios": len(sweep.scenarios), "evaluator": args.evaluator,
        "design": f"1 and 2 workers interleaved in {args.chunks} blocks (ABBA), walls summed",
        "runs": [{k: v for k, v in r.items() if k != "table"} for r in runs.values()],
        "speedup_2_vs_1": round(speedup, 3),
        "killed_worker_run": None if kill is None else {k: v for k, v in kill.items() if k != "table"},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print("| workers | wall (s) | scenarios finished | failed | mean s per scenario | scenario CPU s | "
          "CPU s used by everything else meanwhile (other jobs, client, scheduler) |")
    print("|---|---|---|---|---|---|---|")
    for r in out["runs"]:
        print(f"| {r['workers']} | {r['wall_s']} | {r['finished']} | {r['failed']} | {r['scenario_s_mean']} | "
              f"{r['scenario_cpu_s_sum']} | {r['other_processes_core_s']} |")
    print(f"\nspeed-up 2 vs 1 worker: **{speedup:.2f}x** (load average at the end {load[0]:.1f})")
    if kill is not None:
        k = kill
        print(f"\nkilled run: worker SIGKILLed after {k['killed']['after_scenarios'] if k['killed'] else '-'} results; "
              f"{k['finished']} of {len(sweep.scenarios)} finished, {k['failed']} failed, wall {k['wall_s']} s, "
              f"{k['worker_processes_used']} worker processes served scenarios, results equal to the undisturbed run: "
              f"{k['results_equal_undisturbed']}")


if __name__ == "__main__":
    main()
