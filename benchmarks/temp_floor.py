"""How low could the simulated week's max GPU temperature go? (issue 5, the -20 % target)

Three numbers per simulated room, each scored on the real traces the simulator replays and the
physics module, next to what the policies reach (the third chooses with the planner's forecast):

* **Capacity bound** (a valid lower bound for every policy that serves all load without quality
  loss): VMs whose load no policy can change - IaaS VMs (their trace) and SaaS VMs that are
  their endpoint's only VM (the endpoint's demand, at the quality-neutral catalogue
  configuration with the lowest per-GPU load that carries it) - must each sit on a server whose
  GPUs then stay below ``theta`` at every step; every VM needs its GPUs somewhere. The smallest
  ``theta`` for which a fractional assignment exists (max-flow, bisection) bounds the max GPU
  temperature from below. The inlet is the model's at the week's room load (placement does not
  change it) without recirculation (which only adds heat).
* **Clairvoyant sort** (not a bound; what perfect knowledge of the week buys): every VM,
  multi-VM endpoints' VMs at their endpoint's average per-GPU load, hottest first to the server
  that keeps it coolest, whole VMs, ignoring row power and aisle airflow limits.
* **Forecast sort** (not a bound; what the planner's own information buys if nothing else
  mattered): the same sort, but hottest first and coolest server *by the planner's forecast*
  (P99 profiles, the placement instance's), every VM known at the start (arrivals included),
  row power and aisle airflow ignored; the resulting assignment is then scored on the actual
  loads, like the clairvoyant sort.

    python benchmarks/temp_floor.py ROOM_DIR [ROOM_DIR ...] --seeds 0 [1 ...] --data ../shared/data

Each ROOM_DIR is a room of ``benchmarks/simulate.py`` (``tapas-opt generate --servers 1000
--seed S``) and its seed the one it was simulated with (the trace mapping depends on it).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from ortools.graph.python import max_flow

from tapas_opt import physics
from tapas_opt.reconfig.catalogue import load_catalogue
from tapas_opt.reconfig.instance import assign_configs
from tapas_opt.simulate.scenario import ScenarioOptions, build_scenario


def actual_loads(sc) -> tuple[np.ndarray, np.ndarray]:
    """[V, T] per-GPU load of every VM (SaaS: its endpoint's per-GPU demand) and whether it has
    arrived."""
    vms = sc.vms
    steps = np.arange(len(sc.times))
    arrived = vms["arrival_step"].to_numpy(int)[:, None] <= steps[None, :]
    saas = vms["kind"].to_numpy(str) == "saas"
    ep = vms["endpoint_idx"].to_numpy(int)
    u = np.nan_to_num(sc.vm_load)
    u[saas] = sc.endpoint_load[ep[saas]]
    return u * arrived, arrived


def lightest_neutral_load(sc, u: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Per-GPU load of SaaS VMs ``which`` at the quality-neutral, SLO-meeting configuration with
    the lowest per-GPU load that still carries their load (energy ratio / active share)."""
    cat = load_catalogue(None)
    c = cat.arrays()
    energy, active = c["energy_ratio"].astype(float), c["active_share"].astype(float)
    neutral = (c["quality"].astype(float) >= 1 - 1e-9) & c["slo_ok"].astype(bool)
    capacity = np.minimum(c["capacity_ratio"].astype(float), active / energy)
    families, _ = assign_configs(sc.vms.iloc[which].assign(server_id=None), cat)
    out = u.copy()
    for v, family in zip(which, families.reindex(sc.vms["vm_id"].iloc[which]).to_numpy(object)):
        rows = cat.rows_of(family)
        for r in rows[neutral[rows]]:
            carries = u[v] <= capacity[r] + 1e-9
            out[v] = np.where(carries, np.minimum(out[v], np.minimum(energy[r] / active[r] * u[v], 1.0)), out[v])
    return out


def peak_temps(sc, u: np.ndarray, arrived: np.ndarray, vms_idx: np.ndarray) -> np.ndarray:
    """[len(vms_idx), S]: each VM's hottest-GPU peak over the week on each server."""
    inst, p = sc.instance, sc.instance.params
    k = sc.vms["gpus"].to_numpy(float)
    room = physics.room_load(u, k, int(p.gpus.sum()))
    inlet = physics.inlet_temp_c(sc.outside_c + sc.outside_shift_c, room, sc.prepared.config.inlet)
    out = np.empty((len(vms_idx), inst.n_servers))
    # Servers differ in GPU power range, intercept, slope and inlet offset: group by the first
    # three (few values) and add the per-server rest.
    keys = pd.DataFrame({"idle": p.gpu_idle_w, "max": p.gpu_max_w, "b": p.temp_c_per_w})
    for (idle, mx, b), servers in keys.groupby(["idle", "max", "b"]).groups.items():
        watts = physics.gpu_power_w(u[vms_idx], idle, mx, p.poly)
        peak = np.where(arrived[vms_idx], inlet[None, :] + b * watts, -np.inf).max(axis=1)
        servers = np.asarray(servers)
        out[:, servers] = peak[:, None] + (p.temp_intercept_c + p.inlet_offset_c)[servers][None, :]
    return out


def fits_below(theta: float, temps: np.ndarray, fixed: np.ndarray, gpus: np.ndarray, capacity: np.ndarray) -> bool:
    """A fractional assignment of every VM's GPUs where each fixed-load VM stays below theta."""
    g = max_flow.SimpleMaxFlow()
    n_v, n_s = len(gpus), len(capacity)
    source, sink = n_v + n_s, n_v + n_s + 1
    g.add_arcs_with_capacity(np.full(n_v, source), np.arange(n_v), gpus)
    g.add_arcs_with_capacity(n_v + np.arange(n_s), np.full(n_s, sink), capacity)
    allowed = np.ones((n_v, n_s), bool)
    allowed[fixed] = temps <= theta
    vi, si = np.nonzero(allowed)
    g.add_arcs_with_capacity(vi, n_v + si, gpus[vi])
    g.solve(source, sink)
    return g.optimal_flow() == gpus.sum()


def measure(room: Path, seed: int, data: str) -> dict:
    t0 = time.perf_counter()
    sc = build_scenario(room, ScenarioOptions(seed=seed, traces=data))
    vms = sc.vms
    gpus = vms["gpus"].to_numpy(np.int64)
    capacity = sc.instance.params.gpus.astype(np.int64)
    u, arrived = actual_loads(sc)
    saas = vms["kind"].to_numpy(str) == "saas"
    ep = vms["endpoint_idx"].to_numpy(int)
    size = pd.Series(ep[saas]).value_counts()
    alone = saas & np.isin(ep, size.index[size == 1])
    u_bound = lightest_neutral_load(sc, u, np.flatnonzero(alone))
    fixed = np.flatnonzero(~saas | alone)
    temps = peak_temps(sc, u_bound, arrived, fixed)
    lo, hi = float(temps.min(axis=1).max()), float(temps.max())
    while hi - lo > 0.01:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if fits_below(mid, temps, fixed, gpus, capacity) else (mid, hi)
    every = np.arange(len(vms))
    all_temps = peak_temps(sc, u, arrived, every)
    # Clairvoyant sort: every VM at its own (endpoint-average) load, hottest first.
    clairvoyant = sort_hottest_first(all_temps, gpus, capacity)
    # Forecast sort: the same, ordered and matched by the planner's forecast instead.
    pending = vms["pending_pos"].to_numpy(int)
    forecast = sort_hottest_first(sc.instance.vm_peak_temp_c[pending], gpus, capacity) if (pending >= 0).all() else None
    return {"room": str(room), "seed": seed, "vms": len(vms), "fixed_load_vms": int(len(fixed)),
            "capacity_bound_c": round(hi, 2),
            "clairvoyant_sort_c": round(float(all_temps[every, clairvoyant].max()), 2),
            "forecast_sort_c": None if forecast is None else round(float(all_temps[every, forecast].max()), 2),
            "seconds": round(time.perf_counter() - t0, 1)}


def sort_hottest_first(temps: np.ndarray, gpus: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Server of each VM when VMs go hottest first (by their coolest possible ``temps``) to the
    server with room where ``temps`` is lowest (whole VMs; no row or aisle limit)."""
    free = capacity.copy()
    assign = np.full(len(gpus), -1)
    for v in np.argsort(-temps.min(axis=1), kind="stable"):
        room_ok = np.flatnonzero(free >= gpus[v])
        assign[v] = room_ok[np.argmin(temps[v, room_ok])]
        free[assign[v]] -= gpus[v]
    return assign


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rooms", nargs="+", type=Path)
    ap.add_argument("--seeds", nargs="+", type=int, required=True)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "temp_floor.json")
    args = ap.parse_args()
    if len(args.rooms) != len(args.seeds):
        raise SystemExit("give one --seeds value per room")
    rows = [measure(room, seed, args.data) for room, seed in zip(args.rooms, args.seeds)]
    for r in rows:
        print(r, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows},
                                   indent=2))


if __name__ == "__main__":
    main()
