"""Region planning: many rooms, one queue, decomposed so that each room is solved on its own.

A region is a directory (``docs/whatif.md``, "Region directory")::

    REGION_DIR/region.yaml      name, rooms, scope of the rooms' queues (all optional)
    REGION_DIR/ROOM/...         one inventory directory per room (docs/inventory-format.md)
    REGION_DIR/pending.csv      optional region-level queue: vm_id, kind, customer, endpoint, gpus[, room]

The decomposition (each stage a set of independent Dask tasks, :mod:`tapas_opt.distributed`):

1. **Rooms, in parallel**: load each inventory and forecast every VM with the automatic
   forecaster, as ``tapas-opt place`` does (about 7 s of CPU per generated 1,000-server room with
   hourly telemetry, against 0.3 s for the paper's template: ``forecast_method="template"`` when
   that matters; ``docs/whatif.md``). What the next stage needs is projected out (row limits and
   base power per slot, aisle airflow, free GPUs per server, the queued VMs' loads); the room
   itself stays on its worker.
2. **Which room takes which VM** (one fast aggregate decision, on the client): largest VMs
   first, each VM goes to the row of the whole region whose forecast peak (as a fraction of its
   limit) grows least, among rows with a server that has room for it and whose aisle keeps its
   airflow; rows are modelled with their mean server hardware. Only the room is kept from this
   decision. The queue is water-filled over the region's rows.
3. **Rooms, in parallel**: each room places the VMs it was given, exactly as ``tapas-opt place``
   does (the two-stage rows-then-servers model). ``room_policy="auto"`` (the default) first
   takes the greedy plan (the optimiser's warm start) and the LP relaxation's lower bound on the
   room's peak normalised row power; if the plan is more than ``gap_target`` above the bound, or
   leaves VMs unplaced that the LP can seat, the full optimiser (``policy="optimal"``) runs.
   Every plan is re-checked with :func:`tapas_opt.placement.verify.verify_plan`.
4. **Repair**: VMs a room could not seat go back to stage 2 without that room, with the VMs
   stage 2 gave to no room (GPUs it held for VMs a room then refused are free again), on the
   rooms' plans; the rooms that receive them place them on top of their plan (at most
   ``repair_rounds`` times).

Queued VMs are renamed ``HOME/VM_ID`` (HOME: the room whose queue or history they come from, or
``region`` for pending.csv), so that ids stay unique when VMs change rooms; running VMs keep
theirs. Outputs (written atomically): ``region.json``, ``assignment.csv`` and
``rooms/ROOM/{plan.csv,summary.json,profiles.parquet,queue.csv}`` (the formats of ``tapas-opt
place``; ``queue.csv`` lists the VMs the region gave the room, so that ``verify`` and ``report``
re-check a room plan against the room's own inventory).
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tapas_opt.config import QUANTILES
from tapas_opt.errors import (EXIT_BAD_INPUT, EXIT_INTERNAL, InventoryError, Problem, TapasError, missing_columns,
                              value_or_problems)
from tapas_opt.forecast.base import LoadProfiles
from tapas_opt.inventory.load import Inventory
from tapas_opt.placement.output import QUEUE_COLUMNS, QUEUE_FILE
from tapas_opt.yamlfile import KeyLines, load_yaml, locate, unreadable

REGION_FILE = "region.yaml"
SCOPES = ("region", "room")
ROOM_POLICIES = ("auto", "optimal", "greedy")
REGION_HOME = "region"
_REGION_KEYS = {"name", "rooms", "scope", "pending"}


class RegionError(TapasError):
    """A stage failed for some rooms (bad input in a room: exit code 2; else 3)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


# ---- the region directory -----------------------------------------------------------------------

@dataclass(frozen=True)
class RoomRef:
    room_id: str
    path: str


@dataclass(frozen=True)
class RegionSpec:
    """A validated region directory."""

    root: str
    name: str
    rooms: tuple[RoomRef, ...]
    scope: str = "region"
    """``region``: every room's pending VMs join the region's queue and may go to any room;
    ``room``: a room's pending VMs stay in it (only pending.csv is split over rooms)."""
    pending: str | None = None


def load_region(root: str | Path) -> RegionSpec:
    """Read ``region.yaml`` (optional) and check the rooms; every problem is listed at once."""
    root = Path(root).resolve()  # "." names the region after the directory, not ""
    problems: list[Problem] = []
    if not root.is_dir():
        raise InventoryError([Problem("no_region", str(root), "is not a directory",
                                      "pass a region directory (see docs/whatif.md)")])
    raw: dict = {}
    lines = KeyLines()
    cfg = root / REGION_FILE
    if cfg.exists():
        raw, lines, said = load_yaml(cfg, REGION_FILE)
        if unreadable(said):
            raise InventoryError(said)
        problems += said  # keys given twice
        if not isinstance(raw, dict):
            raise InventoryError([Problem("bad_yaml", REGION_FILE, "the top level must be a mapping")])
        for key in raw:
            if key not in _REGION_KEYS:
                problems.append(Problem("unknown_key", REGION_FILE, f"unknown key {key!r}",
                                        f"known keys: {', '.join(sorted(_REGION_KEYS))}", column=str(key)))
    rooms: list[RoomRef] = []
    item_of: dict[str, str] = {}  # room id -> key path of its entry in region.yaml
    listed = raw.get("rooms")
    if listed is None:
        for sub in sorted(p for p in root.iterdir() if p.is_dir() and (p / "datacenter.yaml").exists()):
            rooms.append(RoomRef(sub.name, str(sub)))
            problems += _room_id_problems(sub.name, None, "the directory's name")
        problems += _rooms_without_config(root)
    elif not isinstance(listed, list) or not listed:
        problems.append(Problem("bad_value", REGION_FILE, "'rooms' must be a list of room directories",
                                column="rooms"))
    else:
        for i, item in enumerate(listed):
            room = _room_entry(item, i, root, problems)
            if room is not None:
                rooms.append(room)
                item_of[room.room_id] = item_of.get(room.room_id, f"rooms.{i}")  # the first listing, for the line
    ids = [r.room_id for r in rooms]
    for rid in sorted({i for i in ids if ids.count(i) > 1 and not bad_room_id(i)}):  # a bad id is said once
        problems.append(Problem("duplicate_id", REGION_FILE, f"room id {rid!r} is used {ids.count(rid)} times",
                                "give each room its own id ({id, path})", column=item_of.get(rid)))
    same: dict[Path, list[str]] = {}
    for r in rooms:
        same.setdefault(Path(r.path).resolve(), []).append(r.room_id)
    for path, named in same.items():
        named = list(dict.fromkeys(named))  # an id listed twice is a duplicate_id (above)
        if len(named) > 1:
            problems.append(Problem("duplicate_room", REGION_FILE, f"rooms {', '.join(map(repr, named))} are the same "
                                    f"directory {path}: its servers would be planned {len(named)} times",
                                    "list each room once", column=item_of.get(named[1])))
    if REGION_HOME in ids:
        problems.append(Problem("bad_value", REGION_FILE, f"a room may not be called {REGION_HOME!r} (reserved)",
                                column=item_of.get(REGION_HOME)))
    if not rooms and not problems:
        problems.append(Problem("missing_file", str(root), "no rooms: no sub-directory holds a datacenter.yaml",
                                "add room inventories or list them under 'rooms' in region.yaml"))
    if raw.get("name") is not None and _text(raw["name"]) is None:
        problems.append(Problem("bad_value", REGION_FILE, f"name {raw['name']!r} is not text", "e.g. name: west-1",
                                column="name"))
    scope = raw.get("scope", "region")
    if scope not in SCOPES:
        problems.append(Problem("bad_value", REGION_FILE, f"scope {scope!r} is not one of {', '.join(SCOPES)}",
                                column="scope"))
    pending = raw.get("pending")
    if pending is None and (root / "pending.csv").exists():
        pending = "pending.csv"
    if pending is not None and not (root / str(pending)).is_file():
        problems.append(Problem("missing_file", REGION_FILE, f"pending queue {pending!r} not found",
                                column="pending"))
    if problems:
        raise InventoryError(locate(problems, REGION_FILE, lines))
    return RegionSpec(str(root), str(_text(raw.get("name")) or root.name), tuple(rooms), scope,
                      str(root / pending) if pending is not None else None)


def _rooms_without_config(root: Path) -> list[Problem]:
    """A sub-directory with an inventory's tables but no datacenter.yaml (misspelt, say) was
    skipped silently: its servers left out of the region and its pending VMs never planned."""
    from tapas_opt.inventory.load import TABLES

    out = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not (p / "datacenter.yaml").exists()):
        tables = sorted(f.name for f in sub.iterdir() if f.stem in TABLES and f.suffix in (".csv", ".parquet"))
        if tables:
            out.append(Problem("missing_file", f"{sub.name}/datacenter.yaml", f"{sub.name} holds {', '.join(tables)} "
                               "but no datacenter.yaml: it is not a room of the region, and its VMs would not be planned",
                               "add its datacenter.yaml, or list the rooms under 'rooms' in region.yaml"))
    return out


_ROOM_KEYS = {"id", "path"}
MAX_ROOM_ID = 64
_ROOM_ID = re.compile(r"[\w+=-][\w.+=-]*")
"""A room id names the room's output folder (``rooms/ROOM``) and its queued VMs (``ROOM/VM_ID``):
letters, digits and ``_.+=-``, not starting with a dot (no ``.``, ``..`` or hidden folders)."""


def _text(value) -> str | None:
    """A YAML scalar given as text (a number reads as its digits); None for a list, a mapping, a
    boolean or nothing."""
    if isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return str(value)
    return None


def bad_room_id(room_id: str) -> str | None:
    """Why ``room_id`` cannot name a room (None if it can)."""
    if not room_id.strip():
        return "is empty"
    if len(room_id) > MAX_ROOM_ID:
        return f"is {len(room_id)} characters long (at most {MAX_ROOM_ID})"
    if not _ROOM_ID.fullmatch(room_id):
        return "may hold only letters, digits and _.+=- and may not start with a dot"
    return None


def check_room_ids(room_ids) -> None:
    """Refuse ids that cannot name an output folder: :func:`load_region` reports them with their
    lines; this guards a hand-built :class:`RegionSpec` and every folder written (never outside
    ``--out``)."""
    bad = [Problem("bad_room_id", str(room), f"room id {room!r} {bad_room_id(str(room))}",
                   "a room id names the folder rooms/ROOM of the output")
           for room in room_ids if bad_room_id(str(room))]
    if bad:
        raise InventoryError(bad)


def _room_id_problems(room_id: str, key: str | None, named: str) -> list[Problem]:
    """``bad_room_id`` if ``room_id`` (given in region.yaml at ``key``, or derived from the
    room's path: ``named`` says which) cannot name the room's output folder. A sub-directory
    found without region.yaml (``key`` None) is named by its own path."""
    why = bad_room_id(room_id)
    if why is None:
        return []
    if key is None:
        return [Problem("bad_room_id", room_id, f"room id {room_id!r} ({named}) {why}",
                        "rename the directory, or list it in region.yaml as {id: hall-b, path: ...}")]
    hint = "e.g. id: hall-b" if key.endswith(".id") else "give the room an id: {id: hall-b, path: ...}"
    return [Problem("bad_room_id", REGION_FILE, f"room id {room_id!r} ({named}) {why}", hint, column=key)]


def _room_entry(item, i: int, root: Path, problems: list[Problem]) -> RoomRef | None:
    """Room ``i`` of region.yaml's ``rooms`` (a path or ``{id, path}``); its problems go to ``problems``."""
    key = f"rooms.{i}"
    if isinstance(item, dict):
        for extra in sorted(set(map(str, item)) - _ROOM_KEYS):
            problems.append(Problem("unknown_key", REGION_FILE, f"room {i + 1}: unknown key {extra!r}",
                                    "a room is a path or {id, path}", column=f"{key}.{extra}"))
        rel = item.get("path")
        if not isinstance(rel, str):
            problems.append(Problem("bad_value" if "path" in item else "missing_value", REGION_FILE,
                                    f"room {i + 1}: 'path' must be the room's directory", column=key))
            return None
        given = item.get("id") is not None
        rid = _text(item["id"]) if given else Path(rel).name
        if rid is None:
            problems.append(Problem("bad_room_id", REGION_FILE, f"room {i + 1}: id {item['id']!r} is not text",
                                    "e.g. id: hall-b", column=f"{key}.id"))
            return None
        problems += (_room_id_problems(rid, f"{key}.id", "given") if given
                     else _room_id_problems(rid, key, f"from path {rel!r}"))
    elif isinstance(item, str):
        rid, rel = Path(item).name, item
        problems += _room_id_problems(rid, key, f"from path {rel!r}")
    else:
        problems.append(Problem("bad_value", REGION_FILE, f"room {item!r}: give a path or {{id, path}}", column=key))
        return None
    path = root / rel
    if not (path / "datacenter.yaml").exists():
        problems.append(Problem("missing_file", REGION_FILE, f"room {rid!r}: {path} is not an inventory "
                                "directory (no datacenter.yaml)", "see docs/inventory-format.md", column=key))
    return RoomRef(rid, str(path))


def largest_server_gpus(spec: "RegionSpec") -> int | None:
    """GPUs of the region's largest server (from each room's servers table; None if unreadable:
    the room's own loading reports that)."""
    from tapas_opt.inventory.load import find_table, read_table

    most = None
    for room in spec.rooms:
        path = find_table(Path(room.path), "servers")
        try:
            gpus = pd.to_numeric(read_table(path)["gpus"], errors="coerce").max() if path else np.nan
        except Exception:  # noqa: BLE001 - reported when the room itself is loaded
            continue
        if np.isfinite(gpus):
            most = int(gpus) if most is None else max(most, int(gpus))
    return most


def _named(column: str, value) -> str:
    """A cell for a message: ``gpus 'x'``, or ``an empty gpus`` for a blank one (not ``nan``)."""
    if pd.isna(value):
        return f"an empty {column}"
    return f"{column} {value.item() if isinstance(value, np.generic) else value!r}"  # 2.5, not np.float64(2.5)


def region_file(spec: RegionSpec, path: str | Path) -> str:
    """A file of the region as problems name it: relative to REGION_DIR (``queues/pending.csv``),
    as a room's files are named under their room (``room01/vms.csv``)."""
    path = Path(path)
    return path.relative_to(spec.root).as_posix() if path.is_relative_to(spec.root) else str(path)


def _blank_file(path: Path, most: int = 4096) -> bool:
    """A file of nothing but blanks (read only when short: a queue of any length is not)."""
    return path.stat().st_size <= most and not path.read_bytes().strip()


def read_region_pending(path: str | Path, room_ids: set[str], max_gpus: int | None = None,
                        file: str | None = None) -> pd.DataFrame:
    """The region-level queue; problems raise :class:`InventoryError` (all of them), naming it
    ``file`` (default: its name). A VM larger than ``max_gpus`` (the region's largest server)
    is reported: no room could take it."""
    from tapas_opt.inventory.load import line_mapper, read_user_table

    path = Path(path)
    file = file or path.name
    if path.suffix == ".csv" and _blank_file(path):  # an empty file: an empty queue (as documented)
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ("vm_id", "kind", "customer", "endpoint", "room")}
                            ).assign(gpus=pd.Series(dtype=int))
    frame = read_user_table(path, file)
    line_of = line_mapper(path)
    problems = missing_columns(file, frame.columns, ("vm_id", "kind", "gpus"),
                               "columns: vm_id, kind, customer, endpoint, gpus[, room]")
    if problems:
        raise InventoryError(problems)
    for col in ("customer", "endpoint", "room"):
        if col not in frame.columns:
            frame[col] = None
    gpus = pd.to_numeric(frame["gpus"], errors="coerce")
    for i in frame.index[gpus.isna() | (gpus <= 0) | (gpus != gpus.round())]:
        problems.append(Problem("bad_type", file, f"{_named('gpus', frame.at[i, 'gpus'])} is not a whole number > 0",
                                line=line_of(i), column="gpus"))
    for i in frame.index[~frame["kind"].isin(["iaas", "saas"])]:
        problems.append(Problem("out_of_range", file, f"{_named('kind', frame.at[i, 'kind'])} must be iaas or saas",
                                line=line_of(i), column="kind"))
    for i in frame.index[(frame["kind"] == "saas") & frame["endpoint"].isna()]:
        problems.append(Problem("missing_endpoint", file, "a SaaS VM needs an endpoint", line=line_of(i), column="endpoint"))
    for i in frame.index[frame["vm_id"].isna()]:
        problems.append(Problem("missing_value", file, "the VM has no vm_id", "give every queued VM an id",
                                line=line_of(i), column="vm_id"))
    for i in frame.index[frame["vm_id"].notna() & frame["vm_id"].duplicated()]:
        problems.append(Problem("duplicate_id", file, f"vm_id {frame.at[i, 'vm_id']!r} appears twice",
                                line=line_of(i), column="vm_id"))
    if max_gpus is not None:
        for i in frame.index[gpus > max_gpus]:
            problems.append(Problem("vm_too_large", file, f"{_named('vm_id', frame.at[i, 'vm_id'])} needs "
                                    f"{int(gpus[i])} GPUs; the region's largest server has {max_gpus}", "split the VM or add larger servers",
                                    line=line_of(i), column="gpus"))
    for i in frame.index[frame["room"].notna() & ~frame["room"].astype(str).isin(room_ids)]:
        problems.append(Problem("unknown_room", file, f"room {frame.at[i, 'room']!r} is not a room of the region",
                                line=line_of(i), column="room"))
    if problems:
        raise InventoryError(problems)
    return frame.assign(gpus=gpus.astype(int))


# ---- stage 1: each room, on its own ----------------------------------------------------------------

@dataclass
class Queue:
    """VMs offered to the region: one line each, with their load profiles ([n, T] per quantile)."""

    vms: pd.DataFrame  # vm_id (region id), source_id, home, kind, customer, endpoint, gpus, fixed_room
    values: dict[str, np.ndarray]

    @classmethod
    def empty(cls, n_slots: int) -> "Queue":
        cols = ["vm_id", "source_id", "home", "kind", "customer", "endpoint", "gpus", "fixed_room"]
        return cls(pd.DataFrame(columns=cols), {q: np.zeros((0, n_slots)) for q in QUANTILES})

    def take(self, idx) -> "Queue":
        idx = np.asarray(idx, dtype=int)
        return Queue(self.vms.iloc[idx].reset_index(drop=True), {q: v[idx] for q, v in self.values.items()})

    @staticmethod
    def concat(parts: list["Queue"]) -> "Queue":
        parts = [p for p in parts if len(p.vms)]
        if not parts:
            return Queue.empty(0)
        return Queue(pd.concat([p.vms for p in parts], ignore_index=True),
                     {q: np.vstack([p.values[q] for p in parts]) for q in QUANTILES})


@dataclass
class RoomData:
    """A room after stage 1: its running VMs, their profiles, and what the aggregate step needs."""

    room_id: str
    inventory: Inventory  # running VMs only; telemetry dropped (profiles are known)
    profiles: LoadProfiles  # of the running VMs
    outside_c: np.ndarray
    queue: Queue  # this room's pending VMs, offered to the region (or fixed to the room)
    families: dict  # ("endpoint"|"customer", name) -> {q: [T]} for pending.csv
    timing: dict = field(default_factory=dict)

    @property
    def horizon(self) -> pd.DatetimeIndex:
        return self.profiles.horizon


@dataclass
class RoomView:
    """The aggregate view of a room (small: what the client needs for stage 2)."""

    room_id: str
    horizon: pd.DatetimeIndex
    quantile: str
    poly: tuple
    row_ids: np.ndarray
    row_limit_kw: np.ndarray
    row_aisle: np.ndarray
    aisle_ids: np.ndarray
    aisle_limit_cfm: np.ndarray
    row_kw: np.ndarray  # [R, T] idle + running (+ placed, after stage 3)
    aisle_cfm: np.ndarray  # [A, T]
    server_row: np.ndarray
    free_gpus: np.ndarray
    dkw_per_gpu: np.ndarray  # per row: mean (max - idle) / gpus of its servers
    dcfm_per_gpu: np.ndarray
    queue: Queue
    families: dict
    timing: dict = field(default_factory=dict)


def _running_only(inv: Inventory) -> Inventory:
    return dataclasses.replace(inv, vms=inv.vms[inv.vms["server_id"].notna()].reset_index(drop=True))


def _family_profiles(inv: Inventory, profiles: LoadProfiles) -> dict:
    out = {}
    pos = pd.Series(np.arange(len(profiles.vm_ids)), index=profiles.vm_ids)
    running = inv.running_vms
    for col in ("endpoint", "customer"):
        for name, members in running.dropna(subset=[col]).groupby(col)["vm_id"]:
            idx = pos.reindex(members).dropna().to_numpy(int)
            if len(idx):
                out[(col, str(name))] = {q: profiles.values[q][idx].mean(axis=0) for q in QUANTILES}
    return out


def analyse_room(ref: RoomRef, forecast_method: str = "auto", scope: str = "region",
                 families: bool = False) -> RoomData:
    """Stage 1 for one room: load, forecast every VM, split off the queue."""
    from tapas_opt.api import make_forecaster
    from tapas_opt.forecast.profiles import build_profiles, inventory_horizon, outside_forecast
    from tapas_opt.inventory.load import load_inventory

    t0 = time.perf_counter()
    try:
        inv = load_inventory(ref.path)
    except InventoryError as exc:
        raise InventoryError(_in_room(exc.problems, ref.room_id)) from None
    t1 = time.perf_counter()
    horizon = inventory_horizon(inv)
    inv = dataclasses.replace(inv, config=dataclasses.replace(inv.config, start=str(horizon[0])))
    profiles = build_profiles(inv, forecaster=make_forecaster(forecast_method, inv.config.time_step_min))
    outside = outside_forecast(inv, horizon)
    t2 = time.perf_counter()
    pending = inv.pending_vms
    pos = profiles.vm_ids.get_indexer(pending["vm_id"])
    queue = Queue(pd.DataFrame({
        "vm_id": [f"{ref.room_id}/{v}" for v in pending["vm_id"]],
        "source_id": pending["vm_id"].to_numpy(str), "home": ref.room_id,
        "kind": pending["kind"].to_numpy(str), "customer": pending["customer"].to_numpy(object),
        "endpoint": pending["endpoint"].to_numpy(object), "gpus": pending["gpus"].to_numpy(int),
        "fixed_room": ref.room_id if scope == "room" else None,
    }), {q: profiles.values[q][pos] for q in QUANTILES})
    run_pos = profiles.vm_ids.get_indexer(inv.running_vms["vm_id"])
    run_profiles = LoadProfiles(horizon, profiles.vm_ids[run_pos], {q: profiles.values[q][run_pos] for q in QUANTILES},
                                profiles.method.iloc[run_pos])
    fams = _family_profiles(inv, profiles) if families else {}
    inv = _running_only(inv)
    inv = dataclasses.replace(inv, telemetry=inv.telemetry.iloc[0:0])
    return RoomData(ref.room_id, inv, run_profiles, outside, queue, fams,
                    {"load_s": round(t1 - t0, 3), "forecast_s": round(t2 - t1, 3)})


def _view(data: RoomData, row_kw: np.ndarray | None = None, aisle_cfm: np.ndarray | None = None,
          free: np.ndarray | None = None, inst=None) -> RoomView:
    from tapas_opt.placement.instance import build_instance

    inv = data.inventory
    if inst is None:
        inst = build_instance(inv, data.profiles, data.outside_c, inv.config)
    p = inst.params
    dkw = (p.max_kw - p.idle_kw) / p.gpus
    dcfm = (p.max_cfm - p.idle_cfm) / p.gpus
    n_rows = inst.n_rows
    count = np.maximum(np.bincount(inst.server_row, minlength=n_rows), 1)
    return RoomView(
        data.room_id, data.horizon, inst.quantile, tuple(p.poly), inst.row_ids, inst.row_limit_kw, inst.row_aisle,
        inst.aisle_ids, inst.aisle_limit_cfm,
        inst.base_row_kw if row_kw is None else row_kw, inst.base_aisle_cfm if aisle_cfm is None else aisle_cfm,
        inst.server_row, inst.free_gpus.astype(int) if free is None else free,
        np.bincount(inst.server_row, dkw, minlength=n_rows) / count,
        np.bincount(inst.server_row, dcfm, minlength=n_rows) / count,
        data.queue, data.families, dict(data.timing))


def view_room(data: RoomData) -> RoomView:
    """Stage 1's projection for the client."""
    return _view(data)


# ---- stage 2: which room takes which VM --------------------------------------------------------------

@dataclass
class RegionState:
    """Row power, aisle airflow and free GPUs of every row of the region, rooms side by side."""

    room_ids: list[str]
    row_room: np.ndarray
    row_limit: np.ndarray
    row_aisle: np.ndarray  # global aisle index
    aisle_limit: np.ndarray
    row_kw: np.ndarray
    aisle_cfm: np.ndarray
    dkw: np.ndarray
    dcfm: np.ndarray
    server_row: np.ndarray  # global row of every server
    free: np.ndarray
    row_max_free: np.ndarray

    @classmethod
    def from_views(cls, views: list[RoomView]) -> "RegionState":
        row_room, row_aisle, parts = [], [], {k: [] for k in ("row_limit", "aisle_limit", "row_kw", "aisle_cfm",
                                                                "dkw", "dcfm", "server_row", "free")}
        n_rows = n_aisles = 0
        for k, v in enumerate(views):
            row_room.append(np.full(len(v.row_ids), k))
            row_aisle.append(v.row_aisle + n_aisles)
            parts["row_limit"].append(v.row_limit_kw)
            parts["aisle_limit"].append(v.aisle_limit_cfm)
            parts["row_kw"].append(v.row_kw)
            parts["aisle_cfm"].append(v.aisle_cfm)
            parts["dkw"].append(v.dkw_per_gpu)
            parts["dcfm"].append(v.dcfm_per_gpu)
            parts["server_row"].append(v.server_row + n_rows)
            parts["free"].append(v.free_gpus)
            n_rows += len(v.row_ids)
            n_aisles += len(v.aisle_ids)
        cat = {k: np.concatenate(p) if k not in ("row_kw", "aisle_cfm") else np.vstack(p) for k, p in parts.items()}
        server_row = cat["server_row"]
        free = cat["free"].astype(int)
        max_free = np.zeros(n_rows, int)
        np.maximum.at(max_free, server_row, free)
        return cls([v.room_id for v in views], np.concatenate(row_room), cat["row_limit"], np.concatenate(row_aisle),
                   cat["aisle_limit"], cat["row_kw"].copy(), cat["aisle_cfm"].copy(), cat["dkw"], cat["dcfm"],
                   server_row, free, max_free)

    def rows_of_rooms(self, rooms: set[int]) -> np.ndarray:
        return np.isin(self.row_room, list(rooms))


def split_queue(views: list[RoomView], queue: Queue, exclude: dict[str, set[str]] | None = None
                ) -> tuple[np.ndarray, dict]:
    """Stage 2: the room (index into ``views``) for every queued VM, -1 if no row has a server
    with room for it. ``exclude``: region vm id -> rooms it may not go to (repair rounds).

    Largest VMs first (peak power), each to the row whose peak fraction of its limit grows
    least among rows with a free server for it whose aisle keeps its airflow; rows over their
    limits are used only if no row can take the VM within them (the room's solve then decides).
    """
    from tapas_opt import physics

    t0 = time.perf_counter()
    st = RegionState.from_views(views)
    q = views[0].quantile
    poly = views[0].poly
    room_index = {v.room_id: k for k, v in enumerate(views)}
    load = queue.values[q]
    g = physics.power_fraction(load, poly)
    gpus = queue.vms["gpus"].to_numpy(int)
    order = np.argsort(-(gpus * g.max(axis=1) if len(g) else gpus), kind="stable")
    fixed = queue.vms["fixed_room"].to_numpy(object)
    ids = queue.vms["vm_id"].to_numpy(str)
    # Fixed VMs first: their room is not a choice, but they take capacity.
    order = np.concatenate([order[pd.notna(fixed[order])], order[pd.isna(fixed[order])]])
    room_of = np.full(len(queue.vms), -1, dtype=int)
    over = 0
    for v in order:
        allowed = st.row_max_free >= gpus[v]
        if pd.notna(fixed[v]):
            allowed &= st.row_room == room_index[str(fixed[v])]
        if exclude and ids[v] in exclude:
            allowed &= ~st.rows_of_rooms({room_index[r] for r in exclude[ids[v]] if r in room_index})
        rows = np.flatnonzero(allowed)
        if len(rows) == 0:
            continue
        add_kw = gpus[v] * st.dkw[rows, None] * g[v][None, :]
        peak = ((st.row_kw[rows] + add_kw) / st.row_limit[rows, None]).max(axis=1)
        add_cfm = gpus[v] * st.dcfm[rows, None] * load[v][None, :]
        air = ((st.aisle_cfm[st.row_aisle[rows]] + add_cfm) / st.aisle_limit[st.row_aisle[rows], None]).max(axis=1)
        ok = (peak <= 1.0 + 1e-9) & (air <= 1.0 + 1e-9)
        if ok.any():
            k = int(np.flatnonzero(ok)[np.argmin(peak[ok])])
        else:
            k = int(np.argmin(np.maximum(peak, air)))
            over += 1
        r = int(rows[k])
        st.row_kw[r] += add_kw[k]
        st.aisle_cfm[st.row_aisle[r]] += add_cfm[k]
        servers = np.flatnonzero((st.server_row == r) & (st.free >= gpus[v]))
        s = int(servers[np.argmin(st.free[servers])])  # best fit keeps whole servers whole
        st.free[s] -= gpus[v]
        st.row_max_free[r] = int(st.free[st.server_row == r].max())
        room_of[v] = int(st.row_room[r])
    stats = {"vms": int(len(queue.vms)), "assigned": int((room_of >= 0).sum()), "no_capacity": int((room_of < 0).sum()),
             "over_limits": int(over), "split_s": round(time.perf_counter() - t0, 3),
             "region_peak_row_power_estimate": round(float((st.row_kw / st.row_limit[:, None]).max()), 6)
             if len(st.row_limit) else None}
    return room_of, stats


def family_queue(frame: pd.DataFrame, views: list[RoomView]) -> Queue:
    """Profiles of the region's pending.csv VMs: their endpoint's (SaaS) or customer's mean
    profile in their ``room`` (or pooled over every room), else full load (the paper's "assume
    the peak")."""
    n_slots = len(views[0].horizon)
    values = {q: np.ones((len(frame), n_slots)) for q in QUANTILES}
    for i, vm in enumerate(frame.itertuples(index=False)):
        rooms = [v for v in views if pd.isna(vm.room) or v.room_id == str(vm.room)]
        for col, name in (("endpoint", vm.endpoint if vm.kind == "saas" else None), ("customer", vm.customer)):
            if name is None or pd.isna(name):
                continue
            found = [v.families[(col, str(name))] for v in rooms if (col, str(name)) in v.families]
            if found:
                for q in QUANTILES:
                    values[q][i] = np.mean([f[q] for f in found], axis=0)
                break
    vms = pd.DataFrame({"vm_id": [f"{REGION_HOME}/{v}" for v in frame["vm_id"]],
                        "source_id": frame["vm_id"].astype(str).to_numpy(),
                        "home": frame["room"].where(frame["room"].notna(), REGION_HOME).astype(str).to_numpy(),
                        "kind": frame["kind"].to_numpy(str), "customer": frame["customer"].to_numpy(object),
                        "endpoint": frame["endpoint"].to_numpy(object), "gpus": frame["gpus"].to_numpy(int),
                        "fixed_room": None})
    values["p90"] = np.maximum(values["p90"], values["p50"])
    values["p99"] = np.maximum(values["p99"], values["p90"])
    return Queue(vms, values)


# ---- stage 3: each room places what it was given ----------------------------------------------------

@dataclass(frozen=True)
class RoomOptions:
    policy: str = "auto"
    gap_target: float = 0.02
    time_limit_s: float | None = None
    seed: int | None = None


@dataclass
class RoomResult:
    """A solved room: small figures for the client, the plan, and the room for a repair round."""

    room_id: str
    round: int
    summary: dict
    plan: pd.DataFrame
    placed: pd.DataFrame  # queued VMs placed here: vm_id, server_id
    unplaced: Queue
    view: RoomView  # the room after the plan (for repair rounds)
    state: RoomData  # the room with this round's VMs running (for repair rounds)
    verify_violations: int
    figures: dict
    queued: pd.DataFrame  # this round's queued VMs as the room saw them (``queue.csv`` of its plan)
    profiles: LoadProfiles  # every VM of this round's plan (``profiles.parquet``)


def _room_inventory(data: RoomData, incoming: Queue) -> tuple[Inventory, LoadProfiles]:
    inv = data.inventory
    new = incoming.vms.assign(server_id=np.nan)
    # Customers and endpoints of another room are other families: keep their names apart.
    foreign = new["home"].astype(str) != data.room_id
    for col in ("customer", "endpoint"):
        named = foreign & new[col].notna()
        new.loc[named, col] = new.loc[named, "home"].astype(str) + "/" + new.loc[named, col].astype(str)
    new = new[["vm_id", "kind", "customer", "endpoint", "gpus", "server_id"]]
    vms = pd.concat([inv.vms, new], ignore_index=True)
    prof = data.profiles
    values = {q: np.vstack([prof.values[q], incoming.values[q]]) for q in QUANTILES}
    ids = pd.Index(list(prof.vm_ids) + list(new["vm_id"]), name="vm_id")
    method = pd.Series(list(prof.method.to_numpy()) + ["region-queue"] * len(new), index=ids, dtype=object)
    return dataclasses.replace(inv, vms=vms), LoadProfiles(prof.horizon, ids, values, method)


def _greedy_with_bound(inst, stats: dict):
    from tapas_opt.placement import heuristics
    from tapas_opt.placement.evaluate import evaluate_assignment
    from tapas_opt.placement.solve import PlacementSolution, peak_power_bound

    t0 = time.perf_counter()
    assign = heuristics.greedy(inst)
    ev = evaluate_assignment(inst, assign)
    t1 = time.perf_counter()
    bound = None
    lp_unplaced = None
    if inst.n_vms:
        lp = peak_power_bound(inst)
        lp_unplaced = lp.unplaced
        bound = lp.z if lp.unplaced < 1e-6 else None
    t2 = time.perf_counter()
    stats.update(greedy_s=round(t1 - t0, 3), lp_s=round(t2 - t1, 3),
                 lp_unplaced=None if lp_unplaced is None else round(float(lp_unplaced), 6))
    status = "partial" if ev.n_unplaced else "feasible"
    if any(not v.code.endswith("_preexisting") for v in ev.violations):
        status = "violates"
    sol = PlacementSolution("greedy", status, assign, ev, [], t2 - t0, ev.objective, None, bound,
                            stats=dict(stats))
    return sol, lp_unplaced


def solve_room(data: RoomData, incoming: Queue, options: RoomOptions = RoomOptions(), round_: int = 1) -> RoomResult:
    """Stage 3 for one room: place its share of the queue (see the module docstring)."""
    from tapas_opt.placement.heuristics import explain_unplaced
    from tapas_opt.placement.instance import build_instance
    from tapas_opt.placement.output import build_summary, plan_frame
    from tapas_opt.placement.solve import solve_placement
    from tapas_opt.placement.state import RoomState
    from tapas_opt.placement.verify import verify_plan

    t0 = time.perf_counter()
    inv, profiles = _room_inventory(data, incoming)
    config = inv.config.with_placement(workers=1, time_limit_s=options.time_limit_s, seed=options.seed)
    inst = build_instance(inv, profiles, data.outside_c, config)
    t_build = time.perf_counter()
    stats: dict = {"mode": options.policy}
    if options.policy == "optimal":
        sol = solve_placement(inst, "optimal")
    else:
        sol, lp_unplaced = _greedy_with_bound(inst, stats)
        gap = sol.power_gap
        escalate = options.policy == "auto" and inst.n_vms and (
            (gap is not None and gap > options.gap_target)
            or (sol.evaluation.n_unplaced and lp_unplaced is not None and lp_unplaced < sol.evaluation.n_unplaced - 1e-6))
        if escalate:
            stats["escalated"] = {"greedy_power_gap": None if gap is None else round(gap, 6),
                                  "greedy_unplaced": int(sol.evaluation.n_unplaced)}
            opt = solve_placement(inst, "optimal")
            if opt.evaluation.n_unplaced <= sol.evaluation.n_unplaced:
                opt.stats.update(stats)
                sol = opt
    if sol.evaluation.n_unplaced and not sol.unplaced:
        state = RoomState.from_assignment(inst, sol.assign)
        sol.unplaced = [explain_unplaced(state, int(v)) for v in np.flatnonzero(sol.assign < 0)]
    t_solve = time.perf_counter()
    ev = sol.evaluation
    summary = build_summary(inst, sol, profiles, f"{data.room_id}", [])
    plan = plan_frame(inst, ev)
    report = verify_plan(inst, plan)
    placed_idx = np.flatnonzero(ev.assign >= 0)
    placed = pd.DataFrame({"vm_id": inst.vm_ids[placed_idx], "server_id": inst.server_ids[ev.assign[placed_idx]],
                           "row_id": inst.row_ids[inst.server_row[ev.assign[placed_idx]]]})
    unplaced_idx = np.flatnonzero(ev.assign < 0)
    pos = pd.Index(incoming.vms["vm_id"]).get_indexer(inst.vm_ids[unplaced_idx])
    unplaced = incoming.take(pos)
    # The room after this round: placed VMs become running (repair rounds build on it).
    vms_after = inv.vms.copy()
    where = pd.Series(inst.server_ids[ev.assign[placed_idx]], index=inst.vm_ids[placed_idx])
    is_new = vms_after["vm_id"].isin(where.index)
    vms_after.loc[is_new, "server_id"] = vms_after.loc[is_new, "vm_id"].map(where)
    vms_after = vms_after[vms_after["server_id"].notna()].reset_index(drop=True)
    keep = profiles.vm_ids.get_indexer(vms_after["vm_id"])
    state = RoomData(data.room_id, dataclasses.replace(inv, vms=vms_after),
                     LoadProfiles(profiles.horizon, profiles.vm_ids[keep], {q: v[keep] for q, v in profiles.values.items()},
                                  profiles.method.iloc[keep]),
                     data.outside_c, Queue.empty(len(profiles.horizon)), data.families, data.timing)
    used = np.bincount(ev.assign[placed_idx], inst.vm_gpus[placed_idx], minlength=inst.n_servers)
    view = _view(data, ev.row_kw, ev.aisle_cfm, (inst.free_gpus - used).astype(int), inst)
    figures = {
        "room": data.room_id, "round": round_, "servers": int(inst.n_servers), "rows": int(inst.n_rows),
        "vms_given": int(inst.n_vms), "vms_placed": int(len(placed_idx)), "vms_unplaced": int(len(unplaced_idx)),
        "mode": "optimal" if sol.policy == "optimal" else "greedy+lp-bound",
        "escalated": "escalated" in stats,
        "peak_row_power_fraction": round(ev.peak_row_power_norm, 6),
        "peak_row_power_bound": None if sol.power_bound is None else round(float(sol.power_bound), 6),
        "peak_row_power_gap": None if sol.power_gap is None else round(float(sol.power_gap), 6),
        "objective": round(float(sol.objective), 6), "objective_gap": None if sol.gap is None else round(sol.gap, 6),
        "max_gpu_temp_c": round(ev.peak_temp_c, 3), "violations": len(report.violations),
        "build_s": round(t_build - t0, 3), "solve_s": round(t_solve - t_build, 3),
        "total_s": round(time.perf_counter() - t0, 3), **{f"stage1_{k}": v for k, v in data.timing.items()},
    }
    summary["region"] = figures
    summary["inventory_dir"] = str(Path(inv.root).resolve())
    queued = inv.vms.loc[inv.vms["vm_id"].isin(set(incoming.vms["vm_id"])), QUEUE_COLUMNS]
    return RoomResult(data.room_id, round_, summary, plan, placed, unplaced, view, state, len(report.violations),
                      figures, queued.reset_index(drop=True), profiles)


def brief(result: RoomResult) -> dict:
    """What the client gathers from a solved room (the plan and the room stay on the worker)."""
    reasons = {str(u["vm_id"]): f"room {result.room_id}: {u['code']}: {u['message']}"
               for u in result.summary.get("unplaced", [])}
    return {"figures": result.figures, "placed": result.placed, "unplaced": result.unplaced, "view": result.view,
            "reasons": reasons}


# ---- the whole region ---------------------------------------------------------------------------------

@dataclass
class RegionResult:
    summary: dict
    rooms: list[dict]
    assignment: pd.DataFrame
    out_dir: Path | None = None


def _check_horizons(views: list[RoomView]) -> None:
    """Every room plans the same time slots with the same load band and power model (the
    region's rows are compared slot by slot): after stage 1, where a start that follows from the
    telemetry is known."""
    ref = views[0]
    problems = []
    for v in views[1:]:
        if not v.horizon.equals(ref.horizon):
            problems.append(Problem("horizon_mismatch", f"{v.room_id}/datacenter.yaml",
                                    f"the horizon {_horizon_text(v.horizon)} differs from room {ref.room_id}'s "
                                    f"{_horizon_text(ref.horizon)}", SAME_HORIZON_HINT))
        if v.quantile != ref.quantile:
            problems.append(Problem("model_mismatch", f"{v.room_id}/datacenter.yaml", f"placement.quantile "
                                    f"{v.quantile} differs from room {ref.room_id}'s {ref.quantile}",
                                    SAME_MODEL_HINT, column="placement.quantile"))
        if v.poly != ref.poly:
            problems.append(Problem("model_mismatch", v.room_id, f"the GPU power polynomial {list(v.poly)} "
                                    f"(datacenter.yaml server_defaults.power_poly, or physics.yaml) differs from "
                                    f"room {ref.room_id}'s {list(ref.poly)}", SAME_MODEL_HINT))
    if problems:
        raise InventoryError(problems)


SAME_HORIZON_HINT = "give every room the same start, time_step_min and horizon_h"
SAME_MODEL_HINT = "plan the rooms with the same quantile and power model"


def _horizon_text(horizon: pd.DatetimeIndex) -> str:
    step = (horizon[1] - horizon[0]) if len(horizon) > 1 else None
    every = f" every {int(step.total_seconds() // 60)} min" if step is not None else ""
    return f"(from {horizon[0]}, {len(horizon)} slots{every})"


def _settings_apart(spec: RegionSpec) -> list[Problem]:
    """The settings every room must share, read from the rooms' datacenter.yaml before anything
    is loaded or forecast, so that they are listed with the rooms' other problems (a start
    that follows from the telemetry is compared after stage 1). A room whose file has problems
    of its own is left to them."""
    from tapas_opt.config import load_config

    configs = []
    for room in spec.rooms:
        cfg, problems = load_config(Path(room.path) / "datacenter.yaml")
        if not problems:
            configs.append((room.room_id, cfg))
    if len(configs) < 2:
        return []
    (ref_id, ref), out = configs[0], []
    for rid, cfg in configs[1:]:
        for key, code, mine, theirs in _shared_settings(cfg, ref):
            if mine != theirs:
                out.append(Problem(code, f"{rid}/datacenter.yaml", f"{key} {mine} differs from room {ref_id}'s {theirs}",
                                   SAME_HORIZON_HINT if code == "horizon_mismatch" else SAME_MODEL_HINT, column=key))
    return out


def _shared_settings(cfg, ref):
    """(key, code, this room's value, the first room's) of each setting the rooms share."""
    yield "time_step_min", "horizon_mismatch", cfg.time_step_min, ref.time_step_min
    yield "horizon_h", "horizon_mismatch", cfg.horizon_h, ref.horizon_h
    if cfg.start is not None and ref.start is not None:
        yield "start", "horizon_mismatch", pd.Timestamp(cfg.start), pd.Timestamp(ref.start)
    yield "placement.quantile", "model_mismatch", cfg.placement.quantile, ref.placement.quantile
    yield ("server_defaults.power_poly", "model_mismatch", list(cfg.server_defaults.power_poly),
           list(ref.server_defaults.power_poly))


def plan_region(region: str | Path | RegionSpec, out_dir: str | Path | None = None, *, client=None,
                scheduler: str | None = None, workers: int = 2, forecast_method: str = "auto",
                options: RoomOptions = RoomOptions(), repair_rounds: int = 2, retries: int = 1,
                progress=None) -> RegionResult:
    """Plan a region (see the module docstring); write ``out_dir`` if given."""
    from tapas_opt.distributed import dask_client

    spec = region if isinstance(region, RegionSpec) else load_region(region)
    check_room_ids(r.room_id for r in spec.rooms)
    if client is not None:
        return _plan(spec, out_dir, client, forecast_method, options, repair_rounds, retries, progress)
    with dask_client(scheduler, workers) as c:
        return _plan(spec, out_dir, c, forecast_method, options, repair_rounds, retries, progress)


def _gather(futures: dict, what: str) -> dict:
    from tapas_opt.distributed import collect

    out, failed = {}, []
    for outcome in collect(futures):
        if outcome.ok:
            out[outcome.key] = outcome.value
        else:
            failed.append(outcome)
    if failed:
        bad_input = all(o.error.startswith("InventoryError") for o in failed)
        raise RegionError(f"{what} failed for {len(failed)} room(s):\n"
                          + "\n".join(f"  room {o.key}: {o.error.removeprefix('InventoryError: ')}" for o in failed),
                          EXIT_BAD_INPUT if bad_input else EXIT_INTERNAL)
    return out


def _rooms_problems(spec: RegionSpec) -> list[Problem]:
    """Every room's inventory problems, each file named under its room."""
    from tapas_opt.inventory.load import check_inventory

    return [p for room in spec.rooms for p in _in_room(check_inventory(room.path)[1], room.room_id)]


def _in_room(problems, room_id: str) -> list[Problem]:
    """A room's inventory problems named as files of the region (``room01/vms.csv``)."""
    return [dataclasses.replace(p, file=f"{room_id}/{p.file}") for p in problems]


def _submit(client, fn, *args, key: str, retries: int):
    from tapas_opt.distributed import guarded

    return client.submit(guarded, fn, *args, key=f"region-{key}-{time.time_ns()}", retries=retries, pure=False)


def _state_of(result: RoomResult) -> RoomData:
    return result.state


def _plan(spec: RegionSpec, out_dir, client, forecast_method: str, options: RoomOptions, repair_rounds: int,
          retries: int, progress) -> RegionResult:
    t0 = time.perf_counter()
    say = progress or (lambda msg: None)
    rid = [r.room_id for r in spec.rooms]
    # The region's queue and the settings the rooms share are checked first: a bad file fails
    # before the rooms are forecast, with the rooms' own problems listed too (every problem at once).
    pending, problems = (value_or_problems(lambda: read_region_pending(
        spec.pending, set(rid), largest_server_gpus(spec), region_file(spec, spec.pending)))
        if spec.pending is not None else (None, []))
    problems += _settings_apart(spec)
    if problems:
        raise InventoryError(problems + _rooms_problems(spec))
    # Stage 1: rooms load and forecast in parallel; the rooms stay on the workers.
    say(f"stage 1: loading and forecasting {len(rid)} rooms")
    room_f = {r.room_id: _submit(client, analyse_room, r, forecast_method, spec.scope, spec.pending is not None,
                                 key=f"analyse-{r.room_id}", retries=retries) for r in spec.rooms}
    views_by = _gather({k: _submit(client, view_room, f, key=f"view-{k}", retries=retries) for k, f in room_f.items()},
                       "loading and forecasting")
    views = [views_by[k] for k in rid]
    _check_horizons(views)
    t1 = time.perf_counter()
    # Stage 2: which room takes which VM.
    queue = Queue.concat([v.queue for v in views])
    if pending is not None:
        queue = Queue.concat([queue, family_queue(pending, views)])
    say(f"stage 2: splitting {len(queue.vms)} queued VMs over {len(rid)} rooms")
    room_of, split_stats = split_queue(views, queue)
    t2 = time.perf_counter()
    # Stage 3 (+ repair rounds): rooms place their share in parallel.
    results_f: dict[str, list] = {}
    rounds, figures, placed_parts = [], [], []
    exclude: dict[str, set[str]] = {}
    refused: dict[str, str] = {}  # VM -> the binding limit in the last room that could not seat it
    unsplit: dict[str, str] = {}  # VM -> why the last split gave it to no room
    offered = queue
    for round_ in range(1, repair_rounds + 2):
        unsplit.update(_not_offered(offered, room_of, exclude, round_))
        given = {rid[k]: np.flatnonzero(room_of == k) for k in range(len(rid)) if (room_of == k).any()}
        if not given:
            break
        say(f"stage 3, round {round_}: placing {sum(map(len, given.values()))} VMs in {len(given)} rooms")
        futs = {room: _submit(client, solve_room, room_f[room], offered.take(idx), options, round_,
                              key=f"solve-{room}-r{round_}", retries=retries) for room, idx in given.items()}
        briefs = _gather({k: _submit(client, brief, f, key=f"brief-{k}-r{round_}", retries=retries)
                          for k, f in futs.items()}, f"room placement (round {round_})")
        unplaced_parts = []
        for room, f in futs.items():
            results_f.setdefault(room, []).append(f)
            room_f[room] = _submit(client, _state_of, f, key=f"state-{room}-r{round_}", retries=retries)
            b = briefs[room]
            views_by[room] = b["view"]
            figures.append(b["figures"])
            placed_parts.append(b["placed"].assign(room=room, round=round_, status="placed"))
            unplaced_parts.append(b["unplaced"])
            for vm_id, why in b["reasons"].items():
                refused[vm_id] = why
                unsplit.pop(vm_id, None)  # a room tried it after that split
            for vm_id in b["unplaced"].vms["vm_id"]:
                exclude.setdefault(str(vm_id), set()).add(room)
        unplaced = Queue.concat(unplaced_parts)
        # Offered again on the rooms' plans: the VMs a room could not seat (to the other rooms)
        # and those the split gave to no room (the GPUs it kept for others may be free now).
        left = Queue.concat([unplaced, offered.take(np.flatnonzero(room_of < 0))])
        rounds.append({"round": round_, "rooms": len(given), "vms": int(sum(map(len, given.values()))),
                       "unplaced": int(len(unplaced.vms)), "not_given": int((room_of < 0).sum())})
        if len(left.vms) == 0 or round_ > repair_rounds:
            break
        repair_views = [dataclasses.replace(views_by[k], queue=Queue.empty(len(views_by[k].horizon))) for k in rid]
        offered = left
        room_of, _ = split_queue(repair_views, left, exclude)
    t3 = time.perf_counter()
    exports = _gather({k: _submit(client, _export_all, fs, key=f"export-{k}", retries=retries)
                       for k, fs in results_f.items()}, "collecting the plans")
    t4 = time.perf_counter()
    reasons = {v: "; then ".join(filter(None, (refused.get(v), unsplit.get(v)))) for v in {*refused, *unsplit}}
    assignment = _assignment(queue, placed_parts, reasons)
    final = {f["room"]: f for f in figures}  # a room's last round describes its final plan
    room_rows = [final[k] for k in rid if k in final]
    first = {f["room"]: f for f in reversed(figures)}
    gaps = [first[k]["peak_row_power_gap"] for k in rid if k in first and first[k]["peak_row_power_gap"] is not None]
    summary = {
        "region": spec.name, "rooms": len(rid), "scope": spec.scope,
        "servers": int(sum(len(v.server_row) for v in views)),
        "queued_vms": int(len(queue.vms)), "placed": int((assignment["status"] == "placed").sum()),
        "unplaced": int((assignment["status"] == "unplaced").sum()),
        "forecast_method": forecast_method, "room_policy": options.policy, "gap_target": options.gap_target,
        "max_room_peak_row_power_gap": max(gaps) if gaps else None,
        "rooms_within_gap_target": int(sum(g <= options.gap_target + 1e-12 for g in gaps)),
        "rooms_escalated": len({f["room"] for f in figures if f["escalated"]}),
        "rooms_repaired": sorted({f["room"] for f in figures if f["round"] > 1}),
        "violations": int(sum(r["violations"] for r in room_rows)),
        "split": split_stats, "rounds": rounds,
        "timing": {"stage1_load_forecast_s": round(t1 - t0, 2), "stage2_split_s": round(t2 - t1, 2),
                   "stage3_rooms_s": round(t3 - t2, 2), "collect_s": round(t4 - t3, 2),
                   "wall_s": round(time.perf_counter() - t0, 2)},
        "room_results": [first[k] for k in rid if k in first],
        "repair_results": [f for f in figures if f["round"] > 1],
    }
    result = RegionResult(summary, room_rows, assignment)
    if out_dir is not None:
        result.out_dir = write_region(out_dir, summary, assignment, exports)
    return result


def _not_offered(offered: Queue, room_of: np.ndarray, exclude: dict[str, set[str]], round_: int) -> dict[str, str]:
    """Why the split of ``round_`` gave some VMs to no room: when it ran, no server left in the
    region (outside the rooms that already refused them) had enough free GPUs. (Row power does
    not leave a VM without a room: the split then takes the row it breaks least, and the room's
    solve names the limit.)"""
    when = ("when the queue was split over the rooms (they went to the VMs split before it, largest first)"
            if round_ == 1 else f"when the VMs left were split again in round {round_} (the rooms' plans so far and "
            "the VMs split before it, largest first, had taken them)")
    out = {}
    for v in np.flatnonzero(room_of < 0):
        vm_id = str(offered.vms["vm_id"].iloc[v])
        tried = sorted(exclude.get(vm_id, ()))
        where = f"outside the rooms that could not seat it ({', '.join(tried)})" if tried else "in the region"
        out[vm_id] = (f"no_gpu_capacity: no server {where} had {int(offered.vms['gpus'].iloc[v])} free GPUs "
                      f"left for it {when}")
    return out


def _assignment(queue: Queue, placed_parts: list[pd.DataFrame], reasons: dict[str, str]) -> pd.DataFrame:
    """One line per queued VM: where it went, or ``unplaced`` and why (the last room that tried
    it, with the limit that binds there, or why no room was offered it)."""
    cols = ["vm_id", "server_id", "row_id", "room", "round", "status"]
    placed = pd.concat(placed_parts, ignore_index=True) if placed_parts else pd.DataFrame(columns=cols)
    left = queue.vms[~queue.vms["vm_id"].isin(set(placed["vm_id"]))]
    out = pd.concat([placed[cols], pd.DataFrame({"vm_id": left["vm_id"], "status": "unplaced"})], ignore_index=True)
    home = queue.vms.set_index("vm_id")[["source_id", "home", "kind", "gpus"]]
    out = out.join(home, on="vm_id")
    out["reason"] = [reasons.get(v, "") if st == "unplaced" else "" for v, st in zip(out["vm_id"], out["status"])]
    out["round"] = out["round"].astype("Int64")  # whole rounds, empty for unplaced VMs (the concat made them 1.0)
    return out[["vm_id", "source_id", "home", "kind", "gpus", "room", "server_id", "row_id", "round", "status",
                "reason"]]


def _export_all(results: list[RoomResult]) -> dict:
    """A room's final plan (its last round), with the VMs of earlier rounds marked ``placed``;
    its queue (the VMs the region gave it that the plan places or leaves out: earlier rounds'
    placed ones and all of the last round's) and the profiles of every VM, so that ``verify``
    and ``report`` can re-check the room plan on their own."""
    last = results[-1]
    plan = last.plan.copy()
    ids = set().union(*[set(r.placed["vm_id"]) for r in results])
    plan.loc[plan["vm_id"].isin(ids), "status"] = "placed"
    earlier = [r.queued[r.queued["vm_id"].isin(set(r.placed["vm_id"]))] for r in results[:-1]]
    queue = pd.concat([*earlier, last.queued], ignore_index=True)
    summary = dict(last.summary)
    summary["region_rounds"] = [r.figures for r in results]
    # The room's VM counts cover every round (the last round's summary counts its own VMs only).
    n_placed = int(plan["vm_id"].isin(ids).sum())
    earlier_placed = sum(len(r.placed) for r in results[:-1])  # running in the last round's room
    vms = summary.get("vms", {})
    summary["vms"] = {**vms, "pending": int(len(queue)), "placed": n_placed, "unplaced": int(len(queue)) - n_placed,
                      "running": int(vms.get("running", 0)) - earlier_placed}
    return {"plan": plan, "summary": summary, "queue": queue, "profiles": last.profiles}


def write_region(out_dir: str | Path, summary: dict, assignment: pd.DataFrame, exports: dict) -> Path:
    """Write the region's plan directory atomically."""
    from tapas_opt.io import atomic_directory, write_json
    from tapas_opt.placement.output import profiles_frame

    out_dir = Path(out_dir)
    check_room_ids(exports)
    with atomic_directory(out_dir) as tmp:
        write_json(tmp / "region.json", summary)
        assignment.to_csv(tmp / "assignment.csv", index=False)
        for room, files in sorted(exports.items()):
            d = tmp / "rooms" / room
            d.mkdir(parents=True)
            files["plan"].to_csv(d / "plan.csv", index=False)
            write_json(d / "summary.json", files["summary"])
            files["queue"].to_csv(d / QUEUE_FILE, index=False)
            profiles_frame(files["profiles"]).to_parquet(d / "profiles.parquet", index=False)
    return out_dir


# ---- generated regions (benchmarks, tests, docs) ---------------------------------------------------

def write_generated_region(out_dir: str | Path, rooms: int, servers: int, pending: int, seed: int = 0,
                           weather_epw: str | None = None, scope: str = "region") -> Path:
    """A region of ``rooms`` generated rooms (``tapas-opt generate``, seeds ``seed`` ...) and its
    region.yaml. Rooms share the horizon (the generator's fixed start)."""
    from tapas_opt.generate import RoomSpec, write_room
    from tapas_opt.io import atomic_write_text

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ids = [f"room{k + 1:02d}" for k in range(rooms)]
    for k, room in enumerate(ids):
        if not (out_dir / room / "datacenter.yaml").exists():
            write_room(RoomSpec(servers=servers, pending_vms=pending, seed=seed + k, name=room,
                                weather_epw=weather_epw), out_dir / room)
    atomic_write_text(out_dir / REGION_FILE, yaml.safe_dump({"name": out_dir.name, "scope": scope, "rooms": ids},
                                                            sort_keys=False))
    return out_dir
