"""Seeded generator of datacenter inventories whose parameters come from published facts.

Every number below names its source (TAPAS.md sections, or a real data set in ../shared/data
via the small table derived from it). Same parameters and seed, same inventory, byte for byte.

* Layout: racks of 4 DGX A100 servers, 10 racks a row, two rows per cold aisle (TAPAS.md s1).
* Server: 8 GPUs, 6.5 kW max, 840 CFM at 80 % fan speed (s1). Idle 2.0 kW (assumption: 0.4 kW
  of idle GPUs plus CPUs, NVSwitch, NICs and fans; the paper says only that idle is large).
  Idle airflow 0.59 x max: fan power goes with the cube of airflow, and Azure's GreenSKU
  server data show fans drawing 28.6 W at idle and 140 W at full (../shared/data/
  azure_greensku_small), so (28.6 / 140) ** (1/3) = 0.59.
* Spatial inlet offsets: up to 1 C between rows, 2 C between racks, 10 % of servers 2 C warmer
  than their neighbours (s2). Hottest-GPU coefficients drawn so that GPUs at similar inlet and
  typical load span about 45-78 C (s2): slope 0.053-0.09 C/W (0.053 is the paper's test GPU),
  intercept 2 C plus up to 10 C for the hottest of 8 GPUs.
* Limits: each row gets ``power_provision`` of its servers' nameplate power; each aisle's AHU
  ``airflow_provision`` of its servers' maximum airflow.
* Workload (s3): 50/50 IaaS/SaaS GPUs; endpoints sized so that about 40 % have one VM, 90 %
  at most 10, and half of all SaaS VMs are in endpoints of more than 100 VMs (rooms large
  enough). SaaS load follows the real hour-of-week shape of Azure's code or conversation
  service (tapas_opt/data/llm_load_shapes.csv, derived from ../shared/data/
  azure_llm_2024_minutes), shifted by up to +-3 h; IaaS load is periodic, daily with weekday
  peaks, or flat and high (training-like). Most VMs take a whole 8-GPU server.
* History: 4 weeks of telemetry at the room's time step; 10 % of running VMs are younger than a
  week. 10 % of pending VMs belong to customers or endpoints with no history at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tapas_opt.io import atomic_directory
from tapas_opt.weather import read_epw_dry_bulb, shifted_hours

HISTORY_END = pd.Timestamp("2026-06-01 00:00")  # a Monday; the horizon starts here
SERVERS_PER_RACK = 4
RACKS_PER_ROW = 10


@dataclass(frozen=True)
class RoomSpec:
    """Parameters of a generated room (defaults: the published facts above)."""

    servers: int = 1000
    occupancy: float = 0.5
    pending_vms: int = 400
    seed: int = 0
    time_step_min: int = 60
    horizon_h: int = 168
    history_weeks: int = 4
    saas_share: float = 0.5
    power_provision: float = 0.8
    airflow_provision: float = 0.9
    weather_epw: str | None = None
    weather_start: str = "07-13"
    name: str | None = None
    drift: float = 0.0
    """Forecast drift: every customer's or endpoint's load over the last two weeks of history is
    scaled by a factor drawn uniformly from [1 - drift, 1 + drift], so that the running VMs'
    placement, made when they arrived, no longer matches what the room draws (nightly re-planning
    scenarios). Drawn from its own seeded stream: drift 0 leaves a room unchanged."""
    sensors: bool = False
    """Add the calibration columns of ``docs/calibration.md`` to the telemetry (GPU power and
    hottest-GPU temperature per VM; inlet temperature, server power and fan airflow per server),
    computed by :mod:`tapas_opt.physics` from the loads with the room's own published defaults
    plus sensor noise: a room to try ``tapas-opt fit`` on, whose true coefficients are known.
    Drawn from its own seeded stream: the rest of the room is unchanged."""


def _load_shapes() -> pd.DataFrame:
    with resources.files("tapas_opt.data").joinpath("llm_load_shapes.csv").open() as fh:
        return pd.read_csv(fh)


def _layout(spec: RoomSpec, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    per_row = SERVERS_PER_RACK * RACKS_PER_ROW
    n_rows = max(2, 2 * int(np.ceil(spec.servers / (2 * per_row))))
    row_of = np.sort(np.arange(spec.servers) % n_rows)
    rows = [f"R{r + 1:02d}" for r in range(n_rows)]
    aisles = [f"A{a + 1:02d}" for a in range(n_rows // 2)]
    row_offset = rng.uniform(0, 1, n_rows)
    servers = []
    for r in range(n_rows):
        idx = np.flatnonzero(row_of == r)
        rack_offset = rng.uniform(0, 2, int(np.ceil(len(idx) / SERVERS_PER_RACK)))
        for k, _ in enumerate(idx):
            rack = k // SERVERS_PER_RACK
            hot = 2.0 if rng.random() < 0.10 else 0.0
            servers.append({
                "server_id": f"{rows[r]}-K{rack + 1:02d}-S{k % SERVERS_PER_RACK + 1}",
                "row_id": rows[r], "rack": f"{rows[r]}-K{rack + 1:02d}", "gpus": 8,
                "idle_power_kw": 2.0, "max_power_kw": 6.5,
                "idle_airflow_cfm": 496.0, "max_airflow_cfm": 840.0,
                "inlet_offset_c": round(row_offset[r] + rack_offset[rack] + hot, 2),
                "gpu_temp_intercept_c": round(2.0 + rng.uniform(0, 10), 2),
                "gpu_temp_c_per_w": round(rng.uniform(0.053, 0.09), 4),
            })
    servers = pd.DataFrame(servers)
    rows_df = pd.DataFrame({"row_id": rows, "aisle_id": [aisles[r // 2] for r in range(n_rows)]})
    nameplate = servers.groupby("row_id")["max_power_kw"].sum().reindex(rows).to_numpy()
    rows_df["power_limit_kw"] = np.round(spec.power_provision * nameplate, 1)
    airflow = servers.assign(aisle_id=servers["row_id"].map(dict(zip(rows_df.row_id, rows_df.aisle_id))))
    cfm = airflow.groupby("aisle_id")["max_airflow_cfm"].sum().reindex(aisles).to_numpy()
    aisles_df = pd.DataFrame({"aisle_id": aisles, "airflow_limit_cfm": np.round(spec.airflow_provision * cfm, 0)})
    return aisles_df, rows_df, servers


def _endpoint_sizes(n_saas: int, rng: np.random.Generator) -> list[int]:
    """Endpoint sizes per TAPAS.md s3: half of SaaS VMs in endpoints of > 100 VMs (if the room
    has room for them), the rest 40 % singletons, 50 % of 2-10, 10 % of 11-100."""
    sizes: list[int] = []
    left = n_saas
    if n_saas >= 220:
        big_total = n_saas // 2
        n_big = max(1, big_total // 110)
        for k in range(n_big):
            sizes.append(big_total // n_big + (1 if k < big_total % n_big else 0))
        left -= big_total
    while left > 0:
        u = rng.random()
        size = 1 if u < 0.4 else int(rng.integers(2, 11)) if u < 0.9 else int(rng.integers(11, 41))
        size = min(size, left)
        sizes.append(size)
        left -= size
    return sizes


def _vm_size(rng: np.random.Generator) -> int:
    """80 % whole 8-GPU servers; the rest 4, 2 or 1 GPU (TAPAS: a VM typically takes a server)."""
    u = rng.random()
    return 8 if u < 0.8 else 4 if u < 0.9 else 2 if u < 0.96 else 1


def _workload(spec: RoomSpec, total_gpus: int, rng: np.random.Generator) -> tuple[pd.DataFrame, dict]:
    """VMs (running + pending) with the profile family that drives each one's load."""
    target_gpus = spec.occupancy * total_gpus
    avg = 0.8 * 8 + 0.1 * 4 + 0.06 * 2 + 0.04 * 1
    n_running = int(round(target_gpus / avg))
    n_total = n_running + spec.pending_vms
    n_saas = int(round(spec.saas_share * n_total))
    families: dict[str, dict] = {}
    vms = []
    for k, size in enumerate(_endpoint_sizes(n_saas, rng)):
        ep = f"ep{k + 1:03d}"
        families[ep] = {"kind": "saas", "shape": rng.choice(["code", "conversation"]),
                        "shift_h": int(rng.integers(-3, 4)), "floor": rng.uniform(0.1, 0.25),
                        "peak": rng.uniform(0.7, 0.95)}
        for _ in range(size):
            vms.append({"kind": "saas", "customer": "llm-service", "endpoint": ep})
    n_cust = max(3, (n_total - n_saas) // 8)
    for c in range(n_cust):
        flat = rng.random() < 0.2
        families[f"cust{c + 1:03d}"] = {"kind": "iaas", "flat": flat,
                                        "base": rng.uniform(0.15, 0.4), "amp": rng.uniform(0.3, 0.55),
                                        "peak_hour": rng.uniform(10, 17), "weekend": rng.uniform(0.4, 0.9),
                                        "level": rng.uniform(0.75, 0.95)}
    for _ in range(n_total - n_saas):
        c = int(rng.integers(n_cust))
        vms.append({"kind": "iaas", "customer": f"cust{c + 1:03d}", "endpoint": None})
    order = rng.permutation(len(vms))
    vms = [vms[i] for i in order]
    df = pd.DataFrame(vms, columns=["kind", "customer", "endpoint"])  # a room may have no VM at all
    df["gpus"] = [_vm_size(rng) for _ in range(len(df))]
    df["vm_id"] = [f"vm{i + 1:05d}" for i in range(len(df))]
    df["pending"] = False
    df.loc[df.index[-spec.pending_vms:] if spec.pending_vms else [], "pending"] = True
    # 10 % of pending VMs come from customers or endpoints never seen before.
    pend = df.index[df["pending"]]
    fresh = pend[rng.random(len(pend)) < 0.10]
    for i in fresh:
        family = f"new{i:05d}"
        if df.at[i, "kind"] == "saas":
            families[family] = dict(families[df.at[i, "endpoint"]])
            df.at[i, "endpoint"] = family
        else:
            families[family] = dict(families[df.at[i, "customer"]])
            df.at[i, "customer"] = family
    # The queue arrives in deployments: an endpoint scaling out or a customer's request for
    # several VMs comes as one batch of consecutive requests.
    pending = df[df["pending"]]
    family = pending["endpoint"].where(pending["kind"] == "saas", pending["customer"])
    batches = list(pd.unique(family))
    rng.shuffle(batches)
    rank = {f: k for k, f in enumerate(batches)}
    queue = pending.assign(_rank=family.map(rank)).sort_values("_rank", kind="stable").drop(columns="_rank")
    df = pd.concat([df[~df["pending"]], queue], ignore_index=True)
    df["vm_id"] = [f"vm{i + 1:05d}" for i in range(len(df))]
    return df, families


def _family_load(fam: dict, ts: pd.DatetimeIndex, shapes: pd.DataFrame) -> np.ndarray:
    hours = ts.day_of_week * 24 + ts.hour + ts.minute / 60.0
    if fam["kind"] == "saas":
        how = ((hours.to_numpy() - fam["shift_h"]) % 168).astype(int)
        shape = shapes[fam["shape"]].to_numpy()[how]
        return fam["floor"] + (fam["peak"] - fam["floor"]) * shape
    if fam["flat"]:
        return np.full(len(ts), fam["level"])
    hod = ts.hour.to_numpy() + ts.minute.to_numpy() / 60.0
    daily = np.clip(np.cos(2 * np.pi * (hod - fam["peak_hour"]) / 24), 0, None) ** 1.5
    weekend = np.where(ts.day_of_week.to_numpy() >= 5, fam["weekend"], 1.0)
    return fam["base"] + fam["amp"] * daily * weekend


def _telemetry(spec: RoomSpec, vms: pd.DataFrame, families: dict, rng: np.random.Generator) -> pd.DataFrame:
    step = spec.time_step_min
    n = spec.history_weeks * 7 * 24 * 60 // step
    ts = pd.date_range(end=HISTORY_END - pd.Timedelta(minutes=step), periods=n, freq=f"{step}min")
    shapes = _load_shapes()
    cache = {name: _family_load(fam, ts, shapes) for name, fam in families.items()}
    if spec.drift:
        drift_rng = np.random.default_rng([spec.seed, 7919])
        recent = ts >= ts[-1] - pd.Timedelta(days=14)
        for name in sorted(cache):
            factor = drift_rng.uniform(1 - spec.drift, 1 + spec.drift)
            cache[name] = np.where(recent, cache[name] * factor, cache[name])
    parts = []
    for vm in vms[~vms["pending"]].itertuples():
        fam = vm.endpoint if vm.kind == "saas" else vm.customer
        scale = rng.uniform(0.85, 1.1)
        load = np.clip(cache[fam] * scale + rng.normal(0, 0.04, n), 0, 1)
        start = 0 if rng.random() >= 0.10 else int(rng.integers(n - 6 * 24 * 60 // step, n - 1))
        parts.append(pd.DataFrame({"timestamp": ts[start:], "vm_id": vm.vm_id, "load": np.round(load[start:], 4)}))
    if not parts:
        return pd.DataFrame(columns=["timestamp", "vm_id", "load"])
    return pd.concat(parts, ignore_index=True).sort_values(["timestamp", "vm_id"], kind="stable")


SENSOR_NOISE = {"gpu_power_w": 4.0, "inlet_temp_c": 0.15, "gpu_temp_c": 0.4, "server_power_kw": 0.03,
                "airflow_cfm": 3.0}
"""Standard deviation of each generated sensor's noise (W, C, C, kW, CFM): typical of BMC readings."""


def _sensor_columns(spec: RoomSpec, telemetry: pd.DataFrame, vms: pd.DataFrame, servers: pd.DataFrame,
                    outside: pd.DataFrame) -> pd.DataFrame:
    """The telemetry with calibration columns from the physics module at the published defaults
    (``RoomSpec.sensors``)."""
    from tapas_opt import physics
    from tapas_opt.config import InletModel, ServerDefaults

    rng = np.random.default_rng([spec.seed, 4243])
    defaults, inlet_model = ServerDefaults(), InletModel()
    params = physics.ServerParams.from_frame(servers, defaults)
    srv_pos = pd.Series(np.arange(len(servers)), index=servers["server_id"])
    t = telemetry.merge(vms[["vm_id", "server_id", "gpus"]], on="vm_id", how="left")
    s = srv_pos.reindex(t["server_id"]).to_numpy(int)
    u = t["load"].to_numpy(float)
    vm_gpus = t["gpus"].to_numpy(float)
    room = (t["gpus"] * t["load"]).groupby(t["timestamp"]).sum() / float(servers["gpus"].sum())
    out = outside.set_index("timestamp")["temp_c"].sort_index()
    outside_c = out.reindex(t["timestamp"], method="nearest").to_numpy(float)
    inlet = physics.inlet_temp_c(outside_c, t["timestamp"].map(room).to_numpy(float), inlet_model,
                                 params.inlet_offset_c[s])
    gpu_w = physics.gpu_power_w(u, params.gpu_idle_w[s], params.gpu_max_w[s], params.poly)
    key = [t["server_id"], t["timestamp"]]

    def per_server(values: np.ndarray) -> np.ndarray:  # what the server's VMs add together, on each row
        return pd.Series(values).groupby(key).transform("sum").to_numpy()

    noise = {c: rng.normal(0, sd, len(t)) for c, sd in SENSOR_NOISE.items()}
    inlet_read = pd.Series(inlet + noise["inlet_temp_c"]).groupby(key).transform("mean").to_numpy()
    t["gpu_power_w"] = np.round(gpu_w + noise["gpu_power_w"], 1)
    t["gpu_temp_c"] = np.round(physics.gpu_temp_c(inlet_read, gpu_w, params.temp_intercept_c[s], params.temp_c_per_w[s])
                               + noise["gpu_temp_c"], 2)
    t["inlet_temp_c"] = np.round(inlet_read, 2)
    t["server_power_kw"] = np.round(params.idle_kw[s] + per_server(params.vm_power_kw(u, vm_gpus, s))
                                    + noise["server_power_kw"], 3)
    t["airflow_cfm"] = np.round(params.idle_cfm[s] + per_server(params.vm_airflow_cfm(u, vm_gpus, s))
                                + noise["airflow_cfm"], 1)
    return t.drop(columns=["server_id", "gpus"])


def _place_running(vms: pd.DataFrame, servers: pd.DataFrame, rows: pd.DataFrame,
                   rng: np.random.Generator) -> pd.Series:
    """Running VMs sit where years of oblivious allocation left them: rows filled unevenly."""
    fill = rng.uniform(0.3, 1.7, len(rows))
    row_weight = dict(zip(rows["row_id"], fill / fill.sum()))
    free = dict(zip(servers["server_id"], servers["gpus"]))
    by_row = servers.groupby("row_id")["server_id"].apply(list).to_dict()
    where = pd.Series(None, index=vms.index, dtype=object)
    row_ids = list(row_weight)
    p = np.array([row_weight[r] for r in row_ids])
    # No row is filled beyond 85 % of its GPUs by history (operators keep some headroom).
    row_free = {r: 0.15 * sum(free[s] for s in by_row[r]) for r in row_ids}
    for i in vms.index[~vms["pending"]]:
        size = vms.at[i, "gpus"]
        for _ in range(50):
            r = row_ids[int(rng.choice(len(row_ids), p=p))]
            if sum(free[s] for s in by_row[r]) - size < row_free[r]:
                continue
            fits = [s for s in by_row[r] if free[s] >= size]
            if fits:
                s = fits[int(rng.integers(len(fits)))]
                free[s] -= size
                where[i] = s
                break
    return where


def _outside(spec: RoomSpec, rng: np.random.Generator) -> pd.DataFrame:
    """Outside temperature over history and horizon: a real EnergyPlus weather file's dry-bulb
    column when ``weather_epw`` is given (shifted so that ``weather_start`` is the horizon's
    first day), else a warm diurnal cycle (22-32 C)."""
    step = spec.time_step_min
    hist = spec.history_weeks * 7 * 24
    # Below an hour, one more hourly value to interpolate the horizon's last hour towards (the
    # series ended at its first minute: 23:15-23:45 had no outside temperature at 15 minutes).
    extra = int(step != 60)
    ts = pd.date_range(HISTORY_END - pd.Timedelta(hours=hist), periods=hist + spec.horizon_h + extra, freq="60min")
    if spec.weather_epw:
        values = shifted_hours(read_epw_dry_bulb(spec.weather_epw), spec.weather_start, hist, len(ts))
    else:
        values = 27 + 5 * np.sin(2 * np.pi * (ts.hour.to_numpy() - 9) / 24) + rng.normal(0, 0.5, len(ts))
    out = pd.DataFrame({"timestamp": ts, "temp_c": np.round(values, 1)})
    if step != 60:
        out = out.set_index("timestamp").resample(f"{step}min").interpolate().reset_index()
        out = out[out["timestamp"] < ts[-1]].reset_index(drop=True)
    return out


def generate_room(spec: RoomSpec) -> dict[str, pd.DataFrame | dict]:
    """The inventory as frames plus the datacenter.yaml mapping."""
    rng = np.random.default_rng(spec.seed)
    aisles, rows, servers = _layout(spec, rng)
    vms, families = _workload(spec, int(servers["gpus"].sum()), rng)
    vms["server_id"] = _place_running(vms, servers, rows, rng)
    # A running VM that found no room is dropped (rooms near full occupancy).
    vms = vms[vms["pending"] | vms["server_id"].notna()].reset_index(drop=True)
    telemetry = _telemetry(spec, vms, families, rng)
    outside = _outside(spec, rng)
    if spec.sensors:  # a room without history still gets the columns (empty): fit then says why
        telemetry = (_sensor_columns(spec, telemetry, vms, servers, outside) if len(telemetry)
                     else telemetry.reindex(columns=[*telemetry.columns, *SENSOR_NOISE]))
    config = {
        "name": spec.name or f"generated-{spec.servers}-seed{spec.seed}",
        "time_step_min": spec.time_step_min,
        "horizon_h": spec.horizon_h,
        "gpu_temp_limit_c": 85.0,
        "start": str(HISTORY_END),
    }
    vms_out = vms[["vm_id", "kind", "customer", "endpoint", "gpus", "server_id"]]
    return {"datacenter": config, "aisles": aisles, "rows": rows, "servers": servers,
            "vms": vms_out, "telemetry": telemetry, "outside": outside}


def write_room(spec: RoomSpec, out_dir: Path | str, fmt: str = "csv") -> Path:
    """Generate and write an inventory directory atomically; ``fmt`` is csv or parquet."""
    room = generate_room(spec)
    out_dir = Path(out_dir)
    with atomic_directory(out_dir, inventory_ok=True) as tmp:
        (tmp / "datacenter.yaml").write_text(yaml.safe_dump(room["datacenter"], sort_keys=False))
        for name in ("aisles", "rows", "servers", "vms", "telemetry", "outside"):
            frame = room[name]
            if fmt == "parquet" and name in ("telemetry", "outside"):
                frame.to_parquet(tmp / f"{name}.parquet", index=False)
            else:
                frame.to_csv(tmp / f"{name}.csv", index=False)
    return out_dir
