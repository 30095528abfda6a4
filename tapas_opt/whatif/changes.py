"""Scenario changes as transformations of an inventory (the documented frames, never files).

Each change takes an :class:`~tapas_opt.inventory.load.Inventory` and returns a new one (the
input is never modified: workers keep the base inventory in memory for every scenario):

* ``add_servers``: new servers in the rows (``per_row`` servers or ``racks_per_row`` racks of the
  row's usual rack size), each a clone of a random server of its row (hardware, inlet offset,
  GPU thermal coefficients; seeded) unless ``hardware`` gives the figures; ``fill`` (default 1)
  of the new GPUs come with demand: new pending VMs cloned from random VMs of the room (kind,
  customer or endpoint, size), so they borrow their family's load profile; their GPUs add up
  to ``round(fill x new GPUs)``, never more (less only by less than the room's smallest VM).
  Row power and aisle airflow limits are kept (oversubscription of the power and cooling
  infrastructure).
* ``load_growth``: loads in the telemetry multiplied by ``all`` x ``iaas``/``saas`` x the
  customer's x the endpoint's factor (clipped at full load); forecasts follow.
* ``outside``: the weather: ``shift_c`` added to outside.csv (or to ``inlet.default_outside_c``
  without one); ``weather``: an EnergyPlus file's dry-bulb temperature replaces outside.csv,
  ``weather_start`` (month-day) falling on the horizon's first day.
* ``limits``: provisioned limits the planner knows about: every row's power limit x
  ``row_power_scale`` or set per row (``row_power_kw``), the same for aisle airflow,
  ``gpu_temp_limit_c``.
* ``failures`` do not change the inventory: the planner does not see them coming. They are
  returned as a :class:`FailureWindow` that the evaluator applies to a window of the horizon.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tapas_opt.errors import InventoryError, Problem
from tapas_opt.inventory.load import Inventory
from tapas_opt.weather import read_epw_dry_bulb, shifted_hours

DEFAULT_FAILURE_HOURS = 24.0


@dataclass(frozen=True)
class FailureWindow:
    """Unforeseen events (``tapas-opt reconfigure --event`` grammar) over a window of the horizon.

    ``start_h`` None: midnight of the day in which the room's forecast power peaks (the
    simulator's convention); ``hours`` None: to the end of the horizon.
    """

    events: tuple[str, ...]
    start_h: float | None = None
    hours: float | None = DEFAULT_FAILURE_HOURS


@dataclass
class Applied:
    """What the changes did to the base inventory (columns of the results table)."""

    servers_added: int = 0
    servers_added_per_row: float = 0.0
    vms_added: int = 0
    gpus_added: int = 0
    load_factor_mean: float = 1.0
    outside_shift_c: float = 0.0
    weather: str | None = None
    failures: FailureWindow | None = None

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["failures"] = "; ".join(self.failures.events) if self.failures else ""
        return out


def _rng(seed: int, salt: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), salt]))


def _unique_ids(prefix_of, n: int, taken: set) -> list[str]:
    out, j = [], 0
    while len(out) < n:
        j += 1
        candidate = prefix_of(j)
        if candidate not in taken:
            out.append(candidate)
            taken.add(candidate)
    return out


def _servers_per_rack(servers: pd.DataFrame) -> int:
    sizes = servers.groupby("rack").size()
    return int(round(sizes.median())) if len(sizes) else 4


def _vms_filling(gpus: np.ndarray, servers_gpus: np.ndarray, target: int, rng: np.random.Generator) -> list[int]:
    """Random VMs (indices into ``gpus``, repeats allowed) whose GPUs add up to ``target`` and
    never more, packed onto the new servers' GPUs (``servers_gpus``) one server after another:
    each draw is among the VMs that fit both what is left of the target and of the server, so
    the new VMs fit on the new servers as ``fill`` promises, whatever their hardware. Short of
    ``target`` only where no VM of the room is small enough for the GPUs left. Drawing against
    the total alone gave 8-GPU VMs to 4-GPU servers (they went onto the old ones)."""
    picks: list[int] = []
    left = target
    for capacity in servers_gpus:
        free = int(capacity)
        while left > 0 and free > 0:
            fits = np.flatnonzero(gpus <= min(free, left))
            if len(fits) == 0:
                break
            i = int(fits[rng.integers(0, len(fits))])
            picks.append(i)
            left -= int(gpus[i])
            free -= int(gpus[i])
        if left <= 0:
            break
    return picks


def add_servers(inv: Inventory, spec: dict, seed: int, applied: Applied) -> Inventory:
    """New servers per row, cloned or given, and the pending VMs that come with them."""
    rng = _rng(seed, 6161)
    servers = inv.servers.reset_index(drop=True)
    rows = [str(r) for r in inv.rows["row_id"]]
    selected = rows if spec.get("rows", "all") == "all" else [str(r) for r in spec["rows"]]
    key = "per_row" if "per_row" in spec else "racks_per_row"
    how = spec[key]
    hardware = spec.get("hardware", "like-row")
    taken = set(servers["server_id"].astype(str))
    added = []
    rows_given = 0
    for row in selected:
        n = int(how.get(row, 0)) if isinstance(how, dict) else int(how)
        in_row = servers[servers["row_id"].astype(str) == row]
        spr = _servers_per_rack(in_row) if len(in_row) else 4
        if key == "racks_per_row":
            n *= spr
        if n <= 0:
            continue
        rows_given += 1
        pool = in_row if len(in_row) else servers
        clones = pool.iloc[rng.integers(0, len(pool), n)].copy()
        clones["row_id"] = row
        if isinstance(hardware, dict):
            for col, value in hardware.items():
                clones[col] = value
        clones["server_id"] = _unique_ids(lambda j: f"{row}-W{j:03d}", n, taken)
        clones["rack"] = [f"{row}-KW{k // spr + 1:02d}" for k in range(n)]
        added.append(clones)
    if not added:
        return inv
    new = pd.concat(added, ignore_index=True)
    new_servers = pd.concat([servers, new], ignore_index=True)
    applied.servers_added += len(new)
    # per row that gets servers: {R01: 8} adds 8 per row, not 8 over every row of the room
    applied.servers_added_per_row = round(applied.servers_added / max(1, rows_given), 3)
    vms = inv.vms.reset_index(drop=True)
    target = int(round(float(spec.get("fill", 1.0)) * int(new["gpus"].sum())))
    picks = _vms_filling(vms["gpus"].to_numpy(int), new["gpus"].to_numpy(int), target, rng)
    if not picks:
        return dataclasses.replace(inv, servers=new_servers)
    clones = vms.iloc[picks].copy()
    taken_vm = set(vms["vm_id"].astype(str))
    clones["vm_id"] = _unique_ids(lambda j: f"vmw{j:05d}", len(clones), taken_vm)
    clones["server_id"] = np.nan
    applied.vms_added += len(clones)
    applied.gpus_added += int(clones["gpus"].sum())
    return dataclasses.replace(inv, servers=new_servers, vms=pd.concat([vms, clones], ignore_index=True))


def load_growth(inv: Inventory, spec: dict, applied: Applied) -> Inventory:
    """Scale the telemetry's loads per VM by the product of the factors that apply to it."""
    vms = inv.vms
    factor = pd.Series(float(spec.get("all", 1.0)), index=vms["vm_id"].to_numpy())
    kind = vms["kind"].to_numpy(str)
    for k in ("iaas", "saas"):
        if k in spec:
            factor[kind == k] *= float(spec[k])
    for col, key in (("customer", "customers"), ("endpoint", "endpoints")):
        for name, f in (spec.get(key) or {}).items():
            factor[(vms[col].astype(str) == str(name)).to_numpy()] *= float(f)
    tel = inv.telemetry
    scale = tel["vm_id"].map(factor).fillna(1.0).to_numpy(float)
    tel = tel.assign(load=np.clip(tel["load"].to_numpy(float) * scale, 0.0, 1.0))
    applied.load_factor_mean = round(float(factor.mean()), 6) if len(factor) else 1.0
    return dataclasses.replace(inv, telemetry=tel)


def outside(inv: Inventory, spec: dict, source_dir: Path, applied: Applied) -> Inventory:
    """Replace or shift the outside temperature."""
    from tapas_opt.forecast.profiles import inventory_horizon

    out = inv.outside
    if spec.get("weather"):
        path = source_dir / spec["weather"]
        temp = read_epw_dry_bulb(path)
        start = inventory_horizon(inv)[0].floor("h")
        before = 5 * 7 * 24
        after = int(np.ceil(inv.config.horizon_h)) + 24
        ts = pd.date_range(start - pd.Timedelta(hours=before), periods=before + after, freq="60min")
        values = shifted_hours(temp, str(spec.get("weather_start", "07-13")), before, len(ts))
        out = pd.DataFrame({"timestamp": ts, "temp_c": values})
        applied.weather = path.name
    shift = float(spec.get("shift_c", 0.0))
    config = inv.config
    if shift:
        if out is not None and len(out):
            out = out.assign(temp_c=out["temp_c"].to_numpy(float) + shift)
        else:
            config = dataclasses.replace(config, inlet=dataclasses.replace(
                config.inlet, default_outside_c=config.inlet.default_outside_c + shift))
        applied.outside_shift_c = shift
    return dataclasses.replace(inv, outside=out, config=config)


def limits(inv: Inventory, spec: dict) -> Inventory:
    """Provisioned limits changed (the planner plans with them)."""
    rows = inv.rows.copy()
    aisles = inv.aisles.copy()
    config = inv.config
    if "row_power_scale" in spec:
        rows["power_limit_kw"] = rows["power_limit_kw"].astype(float) * float(spec["row_power_scale"])
    for row, kw in (spec.get("row_power_kw") or {}).items():
        rows.loc[rows["row_id"].astype(str) == str(row), "power_limit_kw"] = float(kw)
    if "aisle_airflow_scale" in spec:
        aisles["airflow_limit_cfm"] = aisles["airflow_limit_cfm"].astype(float) * float(spec["aisle_airflow_scale"])
    for aisle, cfm in (spec.get("aisle_airflow_cfm") or {}).items():
        aisles.loc[aisles["aisle_id"].astype(str) == str(aisle), "airflow_limit_cfm"] = float(cfm)
    if "gpu_temp_limit_c" in spec:
        config = dataclasses.replace(config, gpu_temp_limit_c=float(spec["gpu_temp_limit_c"]))
    return dataclasses.replace(inv, rows=rows, aisles=aisles, config=config)


def failure_window(spec) -> FailureWindow | None:
    if spec is None:
        return None
    if isinstance(spec, list):
        spec = {"events": spec}
    events = tuple(str(e) for e in spec.get("events", []) if str(e).strip().lower() != "none")
    if not events:
        return None
    return FailureWindow(events, spec.get("start_h"), spec.get("hours", DEFAULT_FAILURE_HOURS))


def set_horizon(inv: Inventory, horizon_h: float | None) -> Inventory:
    """A shorter (or longer) planning horizon than datacenter.yaml's (faster sweeps)."""
    if horizon_h is None:
        return inv
    cfg = inv.config
    if (horizon_h * 60) % cfg.time_step_min:
        raise InventoryError([Problem("bad_value", "settings.horizon_h",
                                      f"{horizon_h} h is not a whole number of {cfg.time_step_min}-minute slots")])
    return dataclasses.replace(inv, config=dataclasses.replace(cfg, horizon_h=float(horizon_h)))


def apply_changes(inv: Inventory, changes: dict, seed: int = 0, source_dir: Path | str = ".",
                  horizon_h: float | None = None) -> tuple[Inventory, Applied]:
    """All changes of a scenario, in a fixed order (limits, weather, load, servers)."""
    applied = Applied()
    inv = set_horizon(inv, horizon_h)
    if changes.get("limits"):
        inv = limits(inv, changes["limits"])
    if changes.get("outside"):
        inv = outside(inv, changes["outside"], Path(source_dir), applied)
    if changes.get("load_growth"):
        inv = load_growth(inv, changes["load_growth"], applied)
    if changes.get("add_servers"):
        inv = add_servers(inv, changes["add_servers"], seed, applied)
    applied.failures = failure_window(changes.get("failures"))
    return inv, applied
