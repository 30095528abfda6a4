"""How well do borrowed forecasts cover new VMs? (issue 3: new VMs borrow their customer's profile)

A pending IaaS VM without telemetry borrows the profile of its customer's VMs. On the
simulator's generated rooms the planner's history and each new VM's actual week come from the
real traces (``tapas_opt.simulate.traces``: a customer's VMs follow one real source series,
each at its own scale), so the borrowed P99 can be checked against the week the VM then runs.
Two ways of borrowing, side by side, from the same members' forecasts:

* **mean**: the mean of the members' P50/P90/P99 (tapas-opt before 2026-11-22);
* **mixture** (the default now, ``forecast.profiles.mixture_quantiles``): the quantiles of a VM
  drawn from the members, i.e. of the equal mixture of their forecast distributions.

Per room: the share of the new VMs' hours whose actual mean load exceeds the borrowed P99, the
share of new VMs whose week peak exceeds the borrowed peak, and the mean reserved slack
(borrowed P99 above the actual hourly load).

**Real data, no simulator** (``--cornell``): the six Cornell BioHPC GPU servers as one
customer's VMs. At weekly rolling origins each server's next week is forecast from its previous
four weeks (the default forecaster); then each server in turn is treated as new and borrows
from the other five, and its borrowed P99 is checked against its actual week (hourly GPU power
share, as in the forecasting benchmark).

    python benchmarks/borrowed.py ROOM_DIR [ROOM_DIR ...] --seeds 0 [1 ...] --data ../shared/data
    python benchmarks/borrowed.py --cornell --data ../shared/data

Each ROOM_DIR is a room of ``benchmarks/simulate.py`` (``tapas-opt generate --servers 1000
--seed S``) and its seed the one it was simulated with (the trace mapping depends on it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from tapas_opt.config import QUANTILES
from tapas_opt.forecast.backtest import origins
from tapas_opt.forecast.base import ASSUMED_PEAK
from tapas_opt.forecast.profiles import mixture_quantiles
from tapas_opt.forecast.public_data import cornell_history
from tapas_opt.forecast.select import AutoForecaster
from tapas_opt.forecast.series import build_matrix, matrix_from_values
from tapas_opt.simulate.scenario import ScenarioOptions, build_scenario

BORROWED = ("borrowed-customer", "borrowed-endpoint", ASSUMED_PEAK)


def new_iaas_vms(room: Path, seed: int, data: str) -> pd.DataFrame:
    """One line per new IaaS VM that borrowed its customer's profile: borrowed P99 both ways
    against the actual week."""
    sc = build_scenario(room, ScenarioOptions(traces=data, seed=seed))
    prof = sc.prepared.profiles
    vms = sc.prepared.inventory.vms.set_index("vm_id")
    method = prof.method
    pos = {v: i for i, v in enumerate(prof.vm_ids)}
    row = {v: i for i, v in enumerate(sc.vms["vm_id"])}
    known = [v for v in prof.vm_ids if method[v] not in BORROWED]
    per_h = 60 // sc.step_min
    lines = []
    for v in prof.vm_ids:
        if method[v] != "borrowed-customer":
            continue
        members = [m for m in known if vms.at[m, "customer"] == vms.at[v, "customer"]]
        curves = np.stack([np.stack([prof.values[q][pos[m]] for q in QUANTILES]) for m in members])
        actual = sc.vm_load[row[v]]
        n = curves.shape[-1]
        hourly = actual[: n * per_h].reshape(n, per_h).mean(axis=1)
        lines.append({"vm_id": v, "members": len(members), **_both_ways(curves, hourly, actual.max())})
    return pd.DataFrame(lines)


def _both_ways(curves: np.ndarray, actual: np.ndarray, peak: float) -> dict:
    """Scores of the P99 borrowed from ``curves`` [members, 3, T] by the mean and by the
    mixture, against the ``actual`` load per slot and the actual ``peak`` of the week:
    ``exceeded_*`` (share of slots above the band), ``peak_missed_*`` (peak above the band's
    peak) and ``slack_*`` (mean reserved load above the actual)."""
    out = {}
    for name, p99 in (("mean", curves[:, -1].mean(axis=0)), ("mixture", mixture_quantiles(curves)[-1])):
        out[f"exceeded_{name}"] = float((actual > p99 + 1e-9).mean())
        out[f"peak_missed_{name}"] = bool(peak > p99.max() + 1e-9)
        out[f"slack_{name}"] = float(np.maximum(p99 - actual, 0).mean())
    return out


def cornell_leave_one_out(data: str, week_h: int = 168) -> pd.DataFrame:
    """One line per (origin, server): the server's borrowed P99 both ways against its week."""
    m = build_matrix(cornell_history(data), 60)
    lines = []
    for o in origins(m.n_slots, 4 * week_h, week_h, week_h):
        hist, fut = m.values[:, o - 4 * week_h:o], m.values[:, o:o + week_h]
        ok = np.flatnonzero((~np.isnan(hist)).mean(axis=1) >= 0.9)
        ok = ok[(~np.isnan(fut[ok])).mean(axis=1) >= 0.9]
        if len(ok) < 3:
            continue
        sub = matrix_from_values(hist[ok], m.index[o - 4 * week_h:o], 60, [m.vm_ids[i] for i in ok])
        fc = AutoForecaster(60).fit_matrix(sub).predict_array(m.index[o:o + week_h])  # [n, T, 3]
        curves = np.transpose(fc, (0, 2, 1))
        for j, i in enumerate(ok):
            others = np.delete(curves, j, axis=0)
            seen = ~np.isnan(fut[i])
            actual = fut[i][seen]
            lines.append({"origin": str(m.index[o]), "server": m.vm_ids[i], "members": len(others),
                          **_both_ways(others[:, :, seen], actual, actual.max())})
    return pd.DataFrame(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rooms", nargs="*", type=Path)
    ap.add_argument("--seeds", nargs="*", type=int, default=[])
    ap.add_argument("--cornell", action="store_true", help="the real-data leave-one-out on the Cornell servers")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    args = ap.parse_args()
    if args.cornell:
        t = cornell_leave_one_out(args.data)
        print(f"Cornell leave-one-out: {len(t)} server-weeks, {t['origin'].nunique()} origins")
        print("| server | weeks | P99 exceeded, mean | mixture | week peak above borrowed peak, mean | mixture | "
              "slack, mean | mixture |")
        print("|---|---|---|---|---|---|---|---|")
        for server, g in [*t.groupby("server"), ("all", t)]:
            print(f"| {server} | {len(g)} | {100 * g['exceeded_mean'].mean():.1f} % | "
                  f"{100 * g['exceeded_mixture'].mean():.1f} % | {100 * g['peak_missed_mean'].mean():.1f} % | "
                  f"{100 * g['peak_missed_mixture'].mean():.1f} % | {g['slack_mean'].mean():.3f} | "
                  f"{g['slack_mixture'].mean():.3f} |")
        return
    if len(args.seeds) != len(args.rooms):
        raise SystemExit("give one --seeds value per room")
    print("| room | seed | new IaaS VMs | members (median) | P99 exceeded, mean | mixture | week peak above "
          "borrowed peak, mean | mixture | slack, mean | mixture |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for room, seed in zip(args.rooms, args.seeds):
        t = new_iaas_vms(room, seed, args.data)
        print(f"| {room.name} | {seed} | {len(t)} | {t['members'].median():g} | "
              f"{100 * t['exceeded_mean'].mean():.1f} % | {100 * t['exceeded_mixture'].mean():.1f} % | "
              f"{100 * t['peak_missed_mean'].mean():.1f} % | {100 * t['peak_missed_mixture'].mean():.1f} % | "
              f"{t['slack_mean'].mean():.3f} | {t['slack_mixture'].mean():.3f} |")


if __name__ == "__main__":
    main()
