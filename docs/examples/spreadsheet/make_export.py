"""Write the made-up spreadsheet export that docs/getting-started.md converts.

    python docs/examples/spreadsheet/make_export.py

The export imitates what a DCIM tool, a capacity sheet, a cloud controller and a monitoring
system would hand a capacity engineer, in their own column names and units. Its numbers are
the bundled example room's (data/example/): its first three racks of each row (48 DGX A100
servers), the VMs on them, eight of its pending VMs and four weeks of their GPU load. Row and
aisle limits are the example's scaled to the servers kept. Nothing here is measured.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parents[2] / "data" / "example"
RACKS = ("K01", "K02", "K03")
N_PENDING = 8


def main() -> None:
    servers = pd.read_csv(EXAMPLE / "servers.csv")
    rows = pd.read_csv(EXAMPLE / "rows.csv")
    aisles = pd.read_csv(EXAMPLE / "aisles.csv")
    vms = pd.read_csv(EXAMPLE / "vms.csv")
    tel = pd.read_csv(EXAMPLE / "telemetry.csv")

    keep = servers[servers["rack"].str.split("-").str[1].isin(RACKS)].copy()
    share = len(keep) / len(servers)
    row_share = keep.groupby("row_id").size() / servers.groupby("row_id").size()
    aisle_of = rows.set_index("row_id")["aisle_id"]

    # DCIM asset export: one line per server, its own names and units.
    hall_row = lambda r: f"HALL1-{r}"  # noqa: E731
    dcim = pd.DataFrame({
        "Asset Tag": [f"AT-{i + 10001}" for i in range(len(keep))],
        "Hostname": "dgx-" + keep["server_id"].str.lower(),
        "Site": "Site 1", "Room": "Hall 1",
        "Cold Aisle": "CA-" + keep["row_id"].map(aisle_of).str[1:],
        "Row": keep["row_id"].map(hall_row),
        "Rack": keep["rack"].str.replace("-", "/"),
        "RU": keep["server_id"].str.split("-S").str[1].astype(int).map(lambda s: 2 + 10 * (s - 1)),
        "Make": "NVIDIA", "Model": "DGX A100",
        "GPU Count": keep["gpus"],
        "Nameplate Power (W)": (keep["max_power_kw"] * 1000).round().astype(int),
        "Inlet vs Room Avg (C)": keep["inlet_offset_c"],
    })
    dcim.to_csv(HERE / "dcim_servers.csv", index=False)

    # Capacity sheet: provisioned row power and AHU airflow, numbers with units as text.
    cap = []
    for r in rows.itertuples():
        kw = r.power_limit_kw * row_share[r.row_id]
        cap.append({"Item": "Row power", "Name": hall_row(r.row_id), "Cold Aisle": "CA-" + r.aisle_id[1:],
                    "Provisioned": f"{kw:,.1f} kW"})
    for a in aisles.itertuples():
        cap.append({"Item": "AHU airflow", "Name": "AHU-" + a.aisle_id[1:], "Cold Aisle": "CA-" + a.aisle_id[1:],
                    "Provisioned": f"{a.airflow_limit_cfm * share:,.0f} CFM"})
    pd.DataFrame(cap).to_csv(HERE / "capacity.csv", index=False)

    # Cloud controller VM list: running VMs on the kept servers, then some requests.
    running = vms[vms["server_id"].isin(keep["server_id"])]
    known = set(running["customer"].dropna()) | set(running["endpoint"].dropna())
    pending = vms[vms["server_id"].isna() & (vms["customer"].isin(known) | vms["endpoint"].isin(known))]
    pending = pending.head(N_PENDING)
    both = pd.concat([running, pending])
    vm_list = pd.DataFrame({
        "VM Name": both["vm_id"].str.replace("vm", "vm-"),
        "Offering": both["kind"].map({"iaas": "GPU IaaS", "saas": "LLM endpoint"}),
        "Tenant": both["customer"].fillna(""),
        "Endpoint": both["endpoint"].fillna(""),
        "GPUs": both["gpus"],
        "Host": ("dgx-" + both["server_id"].str.lower()).fillna(""),
        "State": both["server_id"].map(lambda s: "Requested" if pd.isna(s) else "Running"),
    })
    vm_list.to_csv(HERE / "vm_list.csv", index=False)

    # Monitoring export: GPU utilisation in percent, one column per VM, hourly.
    t = tel[tel["vm_id"].isin(running["vm_id"])].copy()
    t["load"] = (100 * t["load"]).round(1)
    wide = t.pivot(index="timestamp", columns="vm_id", values="load")
    wide.columns = [c.replace("vm", "vm-") for c in wide.columns]
    wide.index.name = "Time (UTC)"
    wide.to_csv(HERE / "gpu_utilisation.csv")
    print(f"wrote {len(dcim)} servers, {len(running)} running + {len(pending)} requested VMs, "
          f"{len(wide)} hours of utilisation to {HERE}")


if __name__ == "__main__":
    main()
