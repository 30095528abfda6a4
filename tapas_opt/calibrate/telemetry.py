"""The optional calibration columns of an inventory's telemetry, checked and joined.

Telemetry rows (``timestamp, vm_id, load``) may carry any of these columns (documented in
``docs/calibration.md``); empty cells are fine, each model uses the rows that have its inputs:

==================  ======  ==============================================================
column              unit    meaning
==================  ======  ==============================================================
``gpu_power_w``     W       mean power of one of the VM's GPUs
``gpu_temp_c``      C       temperature of the VM's hottest GPU
``inlet_temp_c``    C       inlet air temperature of the VM's server
``server_power_kw`` kW      total power of the VM's server (all its VMs, fans, CPUs)
``airflow_cfm``     CFM     fan airflow of the VM's server
==================  ======  ==============================================================

A VM's server is its ``server_id`` in ``vms.csv`` (telemetry of a VM that moved during the
window is attributed to its current server). Values that are not numbers, or outside a
plausible range, are reported with file, line and column, all at once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tapas_opt.errors import Problem, first_problems
from tapas_opt.inventory.load import Inventory, find_table, line_mapper
from tapas_opt.physics import power_fraction

CALIBRATION_COLUMNS = {
    "gpu_power_w": (0.0, 5000.0),
    "gpu_temp_c": (-20.0, 150.0),
    "inlet_temp_c": (-20.0, 70.0),
    "server_power_kw": (0.0, 1000.0),
    "airflow_cfm": (0.0, 1e6),
}


def calibration_columns(inventory: Inventory) -> tuple[pd.DataFrame, list[Problem]]:
    """Telemetry with the calibration columns as numbers, joined to each VM's server.

    Returns the frame (columns ``timestamp, vm_id, load, server_id, vm_gpus, server_gpus`` and
    whichever calibration columns exist) and the problems found in those columns.
    """
    tel = inventory.telemetry
    path = find_table(inventory.root, "telemetry") or inventory.root / "telemetry.csv"
    file, line_of = path.name, line_mapper(path)
    present = [c for c in CALIBRATION_COLUMNS if c in tel.columns]
    frame = tel[["timestamp", "vm_id", "load"]].copy()
    frame["load"] = pd.to_numeric(frame["load"], errors="coerce")
    problems: list[Problem] = []
    for col in present:
        raw = tel[col]
        num = pd.to_numeric(raw, errors="coerce")
        lo, hi = CALIBRATION_COLUMNS[col]
        bad_type = num.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
        bad_range = num.notna() & ((num < lo) | (num > hi))
        problems += first_problems("bad_type", file, tel.index[bad_type.to_numpy()], lambda idx: Problem(
            "bad_type", file, f"value {raw[idx]!r} cannot be read as a number", "fix or empty the cell",
            line_of(idx), col))
        problems += first_problems("out_of_range", file, tel.index[bad_range.to_numpy()], lambda idx: Problem(
            "out_of_range", file, f"value {float(num[idx]):g} is outside {lo:g}..{hi:g}",
            "check the unit (see docs/calibration.md)", line_of(idx), col))
        frame[col] = num.where(~bad_range)
    vms = inventory.vms.set_index("vm_id")
    servers = inventory.servers.set_index("server_id")
    frame["server_id"] = frame["vm_id"].map(vms["server_id"])
    frame["vm_gpus"] = frame["vm_id"].map(vms["gpus"]).astype(float)
    frame["server_gpus"] = frame["server_id"].map(servers["gpus"]).astype(float)
    return frame, problems


def slot_of(timestamps: pd.Series, step_min: int) -> pd.Series:
    """The inventory's time slot (``time_step_min`` grid) of each timestamp."""
    return pd.to_datetime(timestamps).dt.floor(f"{int(step_min)}min")


def _per_vm_slot(f: pd.DataFrame, step_min: int, means: list[str]) -> pd.DataFrame:
    """One row per VM and slot: the mean of ``means`` over the VM's samples in the slot. Sums
    over a server's or the room's VMs need them on one clock: summed per raw timestamp, two VMs
    sampled 30 s apart never met (a server's power fitted against half its load), and a sample
    given twice counted twice."""
    f = f.assign(timestamp=slot_of(f["timestamp"], step_min))
    keys = ["vm_id", "timestamp"]
    first = [c for c in f.columns if c not in means and c not in keys]
    agg = {**{c: "mean" for c in means}, **{c: "first" for c in first}}
    return f.groupby(keys, sort=True).agg(agg).reset_index()


def server_rows(frame: pd.DataFrame, poly, step_min: int) -> pd.DataFrame:
    """One row per (server, slot): mean of the server-level columns over its VMs' samples, and
    the load terms of the physics (``x_power``: GPU-share-weighted ``g(u)``; ``x_load``: the
    GPU-share-weighted load; VMs without a sample in the slot count as idle)."""
    f = frame[frame["server_id"].notna() & frame["load"].notna()].copy()
    share = f["vm_gpus"] / f["server_gpus"]
    f["x_power"] = share * power_fraction(f["load"].to_numpy(float), poly)
    f["x_load"] = share * f["load"]
    server_cols = [c for c in ("server_power_kw", "airflow_cfm", "inlet_temp_c") if c in f.columns]
    f = _per_vm_slot(f[["vm_id", "timestamp", "server_id", "x_power", "x_load", *server_cols]], step_min,
                     ["x_power", "x_load", *server_cols])
    agg = {"x_power": "sum", "x_load": "sum", **{c: "mean" for c in server_cols}}
    return f.groupby(["server_id", "timestamp"], sort=True).agg(agg).reset_index()


def room_load(frame: pd.DataFrame, total_gpus: float, step_min: int) -> pd.Series:
    """Mean GPU load of the room per slot (VMs without a sample in the slot count as idle)."""
    f = frame[frame["load"].notna() & frame["vm_gpus"].notna()]
    f = _per_vm_slot(f[["vm_id", "timestamp", "vm_gpus", "load"]], step_min, ["load"])
    return (f["vm_gpus"] * f["load"]).groupby(f["timestamp"]).sum() / max(float(total_gpus), 1.0)


def with_outside(rows: pd.DataFrame, outside: pd.DataFrame | None, tolerance_min: int = 60) -> pd.DataFrame:
    """Add ``outside_c``: the outside temperature nearest in time (within ``tolerance_min``)."""
    if outside is None or len(outside) == 0:
        return rows.assign(outside_c=np.nan)
    out = outside[["timestamp", "temp_c"]].dropna().sort_values("timestamp")
    out = out.assign(temp_c=pd.to_numeric(out["temp_c"], errors="coerce"))
    left = rows.sort_values("timestamp")
    merged = pd.merge_asof(left, out.rename(columns={"temp_c": "outside_c"}), on="timestamp",
                           direction="nearest", tolerance=pd.Timedelta(minutes=tolerance_min))
    return merged
