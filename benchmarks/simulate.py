"""Simulation benchmark: the issue's "Done when" numbers, measured through the CLI and files.

1. A generated 1,000-server room (the generator's defaults: about 50 % of GPUs running, 400
   pending VMs, DGX A100, 50/50 IaaS/SaaS), a week at 5-minute steps with the real traces
   (``tapas-opt simulate ROOM --policy all``): the TAPAS.md section 5 table, every policy side
   by side, with the room-level bound on peak row power and the wall time of each policy's
   engine and of each placement.
2. Oversubscription (+0 ... +60 % servers in the same rows): % of row-time power-capped and
   % of GPU-time throttled for baseline, tapas-rules and full.
3. Emergencies (UPS 75 %, AHU 90 % in every aisle, heat wave +10 C, all three) in the 24 h of
   the peak-demand day, on the room as generated and with +30 % servers (``--stressed``);
4. IaaS/SaaS mix from 100/0 to 0/100.

Usage (numbers in BENCHMARKS.md come from exactly this; one seed takes about an hour on two
busy cores, most of it in the studies):

    python benchmarks/simulate.py --data ../shared/data \\
        --weather ../shared/data/weather/USA_VA_Leesburg.Exec.epw --seeds 0

``--studies none`` runs the week only; ``--fast-placement`` makes the studies use tapas-opt's
online greedy instead of the optimiser's warm-up batch. Writes ``benchmarks/out/simulate.json``
and the run directories under ``benchmarks/out/simulate/``, and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd

from common import run

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "date": str(date.today()),
            "commit": commit, "load_average_start": os.getloadavg()}


def week(room: Path, out: Path, data: str, extra: list[str]) -> dict:
    code, wall, text = run(["tapas-opt", "simulate", str(room), "--out", str(out), "--traces", data, "--policy", "all",
                            "--quiet", *extra])
    if code:
        raise SystemExit(text)
    doc = json.loads((out / "summary.json").read_text())
    pol = doc["policies"]
    table = pd.read_csv(out / "comparison.csv")
    table["engine_s"] = [pol[p]["timing"]["engine_s"] for p in table["policy"]]
    table["placement_s"] = [pol[p]["timing"]["placement_s"] for p in table["policy"]]
    return {"wall_s": round(wall, 1), "scenario": doc["scenario"], "table": table.to_dict(orient="records"),
            "room_power_fraction_peak": pol["baseline"]["room_power_fraction_peak"],
            "iaas_gpu_temp_floor_c": pol["baseline"].get("iaas_gpu_temp_floor_c"),
            "hottest_vm": {p: pol[p].get("hottest_vm") for p in pol},
            "placement": {p: {k: v for k, v in pol[p]["placement"].items() if k != "unplaced"} for p in pol}}


def study(room: Path, out: Path, data: str, name: str, extra: list[str]) -> dict:
    code, wall, text = run(["tapas-opt", "simulate", str(room), "--out", str(out), "--traces", data, "--study", name,
                            "--quiet", *extra])
    if code:
        raise SystemExit(text)
    return {"wall_s": round(wall, 1), "table": pd.read_csv(out / f"{name}.csv").to_dict(orient="records")}


def md(records: list[dict], cols: list[str]) -> str:
    frame = pd.DataFrame(records)[cols]
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    return head + "\n".join("| " + " | ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in row) + " |"
                            for row in frame.itertuples(index=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--weather", default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--servers", type=int, default=1000)
    ap.add_argument("--studies", nargs="+", default=["oversubscription", "emergencies", "mix"],
                    choices=["oversubscription", "emergencies", "mix", "none"])
    ap.add_argument("--fast-placement", action="store_true", help="studies: tapas-opt placement by its greedy only")
    ap.add_argument("--preexisting", default="policy", choices=["policy", "history"])
    ap.add_argument("--stressed", type=float, default=0.3,
                    help="also run the emergencies on the room with this share of servers added (0: skip)")
    ap.add_argument("--out", default=str(HERE / "out"))
    args = ap.parse_args()
    out = Path(args.out)
    work = out / "simulate"
    work.mkdir(parents=True, exist_ok=True)
    result = {"machine": machine(), "command": " ".join([Path(sys.executable).name, *sys.argv]), "seeds": {}}
    extra = ["--preexisting", args.preexisting]
    for seed in args.seeds:
        room = work / f"room-{args.servers}-seed{seed}"
        cmd = ["tapas-opt", "generate", "--servers", str(args.servers), "--seed", str(seed), "--out", str(room)]
        if args.weather:
            cmd += ["--weather", args.weather]
        code, _, text = run(cmd)
        if code:
            raise SystemExit(text)
        res = {"week": week(room, work / f"week-seed{seed}", args.data, extra + ["--seed", str(seed)])}
        w = res["week"]
        print(f"\n### Seed {seed}: {w['scenario']['servers']} servers, {w['scenario']['vms']} VMs, "
              f"{w['scenario']['steps']} steps; room-level bound on peak row power {w['room_power_fraction_peak']:.4f}; "
              f"floor of the max GPU temperature {w['iaas_gpu_temp_floor_c']} C; "
              f"command wall {w['wall_s']} s\n")
        print(md(w["table"], ["policy", "peak_row_power", "peak_row_power_change_pct", "max_gpu_temp_c",
                              "max_gpu_temp_change_pct", "power_capped_row_time_pct", "thermal_throttled_gpu_time_pct",
                              "saas_goodput_pct", "saas_quality", "iaas_perf_lost_pct", "vms_unplaced", "engine_s",
                              "placement_s"]))
        sflags = extra + ["--seed", str(seed)] + (["--fast-placement"] if args.fast_placement else [])
        runs = [(n, 0.0) for n in args.studies if n != "none"]
        if "emergencies" in args.studies and args.stressed:
            runs.append(("emergencies", args.stressed))
        for name, over in runs:
            label = name if not over else f"{name}+{over:g}"
            flags = sflags + (["--oversubscribe", str(over)] if over else [])
            res[label] = study(room, work / f"{label}-seed{seed}", args.data, name, flags)
            key = {"oversubscription": "extra_servers_pct", "mix": "saas_share_pct", "emergencies": "event"}[name]
            print(f"\n#### {label} (wall {res[label]['wall_s']} s)\n")
            print(md(res[label]["table"], [key, "policy", "peak_row_power", "max_gpu_temp_c", "power_capped_row_time_pct",
                                          "power_capped_time_pct", "thermal_throttled_gpu_time_pct",
                                          "saas_goodput_pct", "saas_quality", "iaas_perf_lost_pct"]))
        result["seeds"][str(seed)] = res
    result["machine"]["load_average_end"] = os.getloadavg()
    (out / "simulate.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwrote {out / 'simulate.json'}")


if __name__ == "__main__":
    main()
