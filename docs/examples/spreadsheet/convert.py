"""Convert a spreadsheet export of a room into a tapas-opt inventory directory.

    python docs/examples/spreadsheet/convert.py EXPORT_DIR INVENTORY_DIR

A worked example for docs/getting-started.md: the four files in this folder stand for what a
DCIM tool, a capacity sheet, a cloud controller and a monitoring system export. Copy this
script and change the column names, units and the MODELS table to match your own exports; then
run ``tapas-opt validate INVENTORY_DIR``, which lists every remaining problem with file, line and
column. The inventory format is docs/inventory-format.md.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd
import yaml

# Per server model: what the DCIM export does not say. Values for the DGX A100 are the bundled
# example's: 840 CFM at 80 % fan speed and 6.5 kW maximum from TAPAS (../shared/TAPAS.md section 1);
# the idle figures are the example's assumptions. Put your vendor's or your BMC's numbers here.
MODELS = {
    "DGX A100": {"idle_power_kw": 2.0, "idle_airflow_cfm": 496.0, "max_airflow_cfm": 840.0},
}
KINDS = {"GPU IaaS": "iaas", "LLM endpoint": "saas"}
UNITS = {"w": 0.001, "kw": 1.0, "mw": 1000.0, "cfm": 1.0, "m3/h": 0.5886}  # to kW or CFM


def quantity(text: str) -> float:
    """'62.4 kW' -> 62.4; '18,144 CFM' -> 18144.0; '30600 m3/h' (or m³/h) -> CFM."""
    m = re.fullmatch(r"\s*([\d,.]+)\s*([A-Za-z0-9/]+)\s*", str(text).replace("³", "3"))
    if not m or m.group(2).lower() not in UNITS:
        raise ValueError(f"cannot read {text!r}: expected a number and one of {sorted(UNITS)}")
    return float(m.group(1).replace(",", "")) * UNITS[m.group(2).lower()]


def convert(export: Path, out: Path, name: str = "my-room") -> None:
    out.mkdir(parents=True, exist_ok=True)

    # Limits: one line per row (power) and per cold aisle (AHU airflow).
    cap = pd.read_csv(export / "capacity.csv")
    cap["value"] = cap["Provisioned"].map(quantity)
    rows = cap[cap["Item"] == "Row power"].rename(columns={"Name": "row_id", "Cold Aisle": "aisle_id",
                                                            "value": "power_limit_kw"})
    aisles = cap[cap["Item"] == "AHU airflow"].rename(columns={"Cold Aisle": "aisle_id",
                                                               "value": "airflow_limit_cfm"})
    rows[["row_id", "aisle_id", "power_limit_kw"]].to_csv(out / "rows.csv", index=False)
    aisles[["aisle_id", "airflow_limit_cfm"]].to_csv(out / "aisles.csv", index=False)

    # Servers: DCIM names, plus per-model figures the DCIM does not hold.
    dcim = pd.read_csv(export / "dcim_servers.csv")
    unknown = sorted(set(dcim["Model"]) - set(MODELS))
    if unknown:
        sys.exit(f"add these server models to MODELS in {__file__}: {unknown}")
    model = pd.DataFrame([MODELS[m] for m in dcim["Model"]])
    servers = pd.DataFrame({
        "server_id": dcim["Hostname"],
        "row_id": dcim["Row"],
        "rack": dcim["Rack"],
        "gpus": dcim["GPU Count"],
        "idle_power_kw": model["idle_power_kw"],
        "max_power_kw": dcim["Nameplate Power (W)"] / 1000.0,
        "idle_airflow_cfm": model["idle_airflow_cfm"],
        "max_airflow_cfm": model["max_airflow_cfm"],
        "inlet_offset_c": dcim["Inlet vs Room Avg (C)"].fillna(0.0),
    })
    servers.to_csv(out / "servers.csv", index=False)

    # VMs: running ones keep their host; requested ones get an empty server_id (to place).
    vm = pd.read_csv(export / "vm_list.csv", dtype=str, keep_default_na=False)
    vms = pd.DataFrame({
        "vm_id": vm["VM Name"],
        "kind": vm["Offering"].map(KINDS),
        "customer": vm["Tenant"],
        "endpoint": vm["Endpoint"],
        "gpus": vm["GPUs"].astype(int),
        "server_id": vm["Host"].where(vm["State"] == "Running", ""),
    })
    vms.to_csv(out / "vms.csv", index=False)

    # Telemetry: the monitoring export is wide (one column per VM, percent); tapas-opt wants
    # one line per VM and time, load in 0..1, in time order per VM.
    wide = pd.read_csv(export / "gpu_utilisation.csv")
    long = wide.melt(id_vars="Time (UTC)", var_name="vm_id", value_name="pct").dropna(subset=["pct"])
    telemetry = pd.DataFrame({"timestamp": long["Time (UTC)"], "vm_id": long["vm_id"],
                              "load": (long["pct"] / 100.0).clip(0.0, 1.0)})
    telemetry.sort_values(["vm_id", "timestamp"]).to_csv(out / "telemetry.csv", index=False)

    config = {"name": name, "time_step_min": 60, "horizon_h": 168, "gpu_temp_limit_c": 85.0}
    (out / "datacenter.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    print(f"wrote {out}: {len(aisles)} aisles, {len(rows)} rows, {len(servers)} servers, "
          f"{(vms['server_id'] != '').sum()} running and {(vms['server_id'] == '').sum()} requested VMs, "
          f"{len(telemetry)} telemetry lines")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
