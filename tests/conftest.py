"""Shared fixtures: tiny hand-built rooms with known answers, the example, the real data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import settings

# Property tests: reproducible by default (CI must not fail on a room no one can replay);
# HYPOTHESIS_PROFILE=explore searches fresh random rooms.
settings.register_profile("ci", max_examples=25, derandomize=True)
settings.register_profile("explore", max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "data" / "example"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or skip: tests that claim something about reality read real data."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


def hourly_history(vm_ids, loads, weeks: int = 4, end: str = "2026-06-01 00:00") -> pd.DataFrame:
    """Telemetry with a constant or per-hour-of-week load for each VM, hourly, ending at ``end``."""
    ts = pd.date_range(end=pd.Timestamp(end) - pd.Timedelta(hours=1), periods=int(weeks * 168), freq="60min")
    parts = []
    for vm, load in zip(vm_ids, loads):
        if callable(load):
            values = load(ts)
        else:
            values = np.full(len(ts), float(load))
        parts.append(pd.DataFrame({"timestamp": ts, "vm_id": vm, "load": values}))
    return pd.concat(parts, ignore_index=True).sort_values(["timestamp", "vm_id"], kind="stable")


def write_inventory(root: Path, *, config: dict | None = None, aisles=None, rows=None, servers=None,
                    vms=None, telemetry=None, outside=None) -> Path:
    """Write an inventory directory from frames / lists of dicts (None = a tiny default room)."""
    root.mkdir(parents=True, exist_ok=True)
    cfg = {"name": "tiny", "time_step_min": 60, "horizon_h": 24, "gpu_temp_limit_c": 85,
           "start": "2026-06-01 00:00"}
    cfg.update(config or {})
    (root / "datacenter.yaml").write_text(yaml.safe_dump(cfg))
    tables = {"aisles": aisles, "rows": rows, "servers": servers, "vms": vms, "telemetry": telemetry,
              "outside": outside}
    for name, table in tables.items():
        if table is None:
            continue
        frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
        frame.to_csv(root / f"{name}.csv", index=False)
    return root


def server(server_id, row_id, rack="K1", gpus=8, idle=2.0, max_kw=6.5, idle_cfm=500.0, max_cfm=840.0,
           offset=0.0, **extra) -> dict:
    return {"server_id": server_id, "row_id": row_id, "rack": rack, "gpus": gpus, "idle_power_kw": idle,
            "max_power_kw": max_kw, "idle_airflow_cfm": idle_cfm, "max_airflow_cfm": max_cfm,
            "inlet_offset_c": offset, **extra}


def vm(vm_id, kind="iaas", customer="c1", endpoint=None, gpus=8, server_id=None) -> dict:
    return {"vm_id": vm_id, "kind": kind, "customer": customer, "endpoint": endpoint, "gpus": gpus,
            "server_id": server_id}


@pytest.fixture
def two_row_room(tmp_path) -> Path:
    """Two rows of three 8-GPU servers (idle 2 kW, max 6.5 kW) in one aisle, 20 kW per row.

    A1 runs a VM at full load; two pending VMs of the same customer (so they borrow its full
    load). Any split that does not put both new VMs in row A peaks at 15 kW = 0.75 of the limit
    (both in B: 6.5 + 6.5 + 2; one each: row A 6.5 + 6.5 + 2); both in A would draw 19.5 kW.
    Known optimum of the peak normalised row power: 0.75.
    """
    servers = [server(f"{r}{i}", r) for r in "AB" for i in (1, 2, 3)]
    vms = [vm("run1", server_id="A1"), vm("new1"), vm("new2")]
    telemetry = hourly_history(["run1"], [1.0])
    return write_inventory(
        tmp_path / "two_row_room",
        aisles=[{"aisle_id": "X", "airflow_limit_cfm": 1e5}],
        rows=[{"row_id": "A", "aisle_id": "X", "power_limit_kw": 20.0},
              {"row_id": "B", "aisle_id": "X", "power_limit_kw": 20.0}],
        servers=servers, vms=vms, telemetry=telemetry)
