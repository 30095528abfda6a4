"""The frozen reconfiguration instance: the room at one time slot, after an event, as arrays.

:func:`build_reconfig_instance` takes the placement engine's prepared room (inventory, load
profiles, :class:`~tapas_opt.placement.instance.PlacementInstance`, used read-only), a catalogue
and the events, and computes through :mod:`tapas_opt.physics` everything the reconfiguration
models and the checker need at the chosen slot:

* the limits before and after the events and every server's inlet temperature (a heat wave
  shifts the outside temperature through ``physics.inlet_temp_c``);
* per SaaS VM: its endpoint's model family, its current configuration, the load it serves now
  in *units* (one unit = one GPU of the family's default configuration at full load), the kW
  and CFM one unit of dynamic load adds on its server, and the hottest-GPU load its server can
  take before the GPU temperature limit;
* per IaaS VM: the same physics, its load, and how far a power cap may take it down.

Units and the mapping from the catalogue to the room
----------------------------------------------------
The room's physics is the truth for what runs today: a SaaS VM with ``k`` GPUs at telemetry load
``u`` running configuration ``c0`` serves ``k * u / energy_ratio[c0]`` units. Any configuration
``c`` serving ``l`` units adds ``kw_unit * energy_ratio[c] * l`` kW and ``cfm_unit *
energy_ratio[c] * l`` CFM, and drives each of its ``k * active_share[c]`` busy GPUs at the
equivalent load ``energy_ratio[c] * l / (k * active_share[c])`` (at most 1, the GPU's maximum).
Pending VMs (not yet placed) are not part of the room.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from tapas_opt import physics
from tapas_opt.errors import InventoryError, Problem
from tapas_opt.inventory.load import csv_row_line, table_lines
from tapas_opt.reconfig.catalogue import Catalogue
from tapas_opt.reconfig.events import Event, Limits, apply_events
from tapas_opt.timestamps import parse_timestamp, parse_timestamps

FAMILY_MIX = ("llama-70b", "llama-70b", "mixtral-8x7b", "llama-8b")
"""Family of an endpoint when vms.csv has no ``model`` column: ``crc32(endpoint) % 4`` picks
from this list (half Llama-70B, as in the paper's setting; a quarter each Mixtral and Llama-8B)."""
DEFAULT_CAP_ALPHA = 0.5742
"""Throughput exponent of a power cap when knob_effects.csv is absent (its median, MLPerf)."""


@dataclass(frozen=True)
class ReconfigOptions:
    """Weights and solver settings of the reconfiguration model (see
    models/formulation-reconfiguration.md). Objective terms are in percent of the endpoint load
    so that the weights read as exchange rates between them."""

    quantile: str = "p99"
    """Load band the plan must carry."""
    reload_s: float = 30.0
    """Seconds an instance is out of rotation while it reloads a model (size, precision or TP
    change; TAPAS.md: seconds). Batch and power level change online."""
    iaas_cap_floor_w: float = 100.0
    """Lowest GPU power an IaaS VM may be capped to (an A100's minimum settable power limit)."""
    w_unserved: float = 1e5
    """Per % of SaaS load left unserved, or of a limit still exceeded: only if nothing else works."""
    w_iaas: float = 1e2
    """Per % of SaaS load-equivalent of IaaS dynamic power capped: 100x the worst quality loss."""
    w_quality: float = 1.0
    """Per % of load-weighted quality loss."""
    w_perf: float = 1e-3
    """Per % of load-weighted slow-down of time between tokens (performance knobs)."""
    w_reload: float = 1e-3
    """Per instance reloading (out of rotation)."""
    w_change: float = 1e-5
    """Per instance changing batch or power level online (keeps unneeded changes out)."""
    max_nodes: int = 1000
    """Branch-and-bound nodes of the polish (the integral solve after LP diving). A work limit,
    not a clock: the search stops at the same node on any machine at any load, so the same
    input gives the same plan (a wall-clock limit does not: on a busy machine CBC stopped
    earlier and returned a worse plan). About 15 s on a 1,000-server room at 70 % use."""
    time_limit_s: float = 120.0
    """Wall-clock safety net of the polish. Should it stop the search before ``max_nodes``, the
    plan may depend on the machine's speed; the summary then says so (``solver.stopped_by``)."""
    threads: int = 1
    """CBC threads: 1 keeps the search, and so the plan, deterministic."""
    mip_gap: float = 5e-3
    """The integral solve stops within this relative gap of its own bound..."""
    mip_gap_abs: float = 1e-2
    """...or within this absolute gap (objective units: 0.01 = 0.01 % of load-weighted quality)."""
    dive_share: float = 1.0
    """Share of the fractional groups rounded per LP-diving round (1 = round all at once)."""
    temp_bucket: float = 0.01
    """VMs whose hottest-GPU load limits differ by less than this share one LP group (the
    group uses the lowest)."""


@dataclass(frozen=True, eq=False)
class ReconfigInstance:
    """The room at one slot after the events (see the module docstring)."""

    name: str
    time: pd.Timestamp
    slot: int
    events: tuple[Event, ...]
    options: ReconfigOptions
    catalogue: Catalogue
    cap_alpha: float
    temp_limit_c: float
    row_ids: np.ndarray
    row_aisle: np.ndarray
    aisle_ids: np.ndarray
    row_limit_kw: np.ndarray
    row_limit_kw_before: np.ndarray
    aisle_limit_cfm: np.ndarray
    aisle_limit_cfm_before: np.ndarray
    server_ids: np.ndarray
    server_row: np.ndarray
    params: physics.ServerParams
    inlet_c: np.ndarray
    inlet_c_before: np.ndarray
    idle_row_kw: np.ndarray
    idle_aisle_cfm: np.ndarray
    saas: pd.DataFrame
    iaas: pd.DataFrame
    warnings: list[str] = field(default_factory=list)

    # ---- sizes and lookups ------------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        return len(self.row_ids)

    @property
    def n_aisles(self) -> int:
        return len(self.aisle_ids)

    @cached_property
    def endpoints(self) -> np.ndarray:
        return np.asarray(pd.unique(self.saas["endpoint"]), dtype=object)

    @cached_property
    def saas_endpoint_idx(self) -> np.ndarray:
        pos = {e: i for i, e in enumerate(self.endpoints)}
        return self.saas["endpoint"].map(pos).to_numpy(int)

    @cached_property
    def endpoint_demand(self) -> np.ndarray:
        """Units of load each endpoint must serve at the slot."""
        return np.bincount(self.saas_endpoint_idx, self.saas["demand"].to_numpy(float), minlength=len(self.endpoints))

    @property
    def total_demand(self) -> float:
        return float(self.saas["demand"].sum())

    @cached_property
    def cfg(self) -> dict[str, np.ndarray]:
        """Catalogue columns as arrays (row positions are configuration indices)."""
        return self.catalogue.arrays()

    def server_aisle(self, servers) -> np.ndarray:
        return self.row_aisle[self.server_row[np.asarray(servers, int)]]


def _family_of(endpoint: str) -> str:
    return FAMILY_MIX[zlib.crc32(str(endpoint).encode()) % len(FAMILY_MIX)]


def assign_configs(vms: pd.DataFrame, catalogue: Catalogue, file: str = "vms.csv", line_of=None
                   ) -> tuple[pd.Series, pd.Series]:
    """Model family and current configuration (catalogue position) of every SaaS VM, by vm_id.

    Optional vms.csv columns: ``model`` (a catalogue family) and ``config_id`` (the configuration
    the VM runs now; default: its family's default). Without ``model`` the family follows from
    the endpoint id (:data:`FAMILY_MIX`). Every VM of an endpoint must share one family.

    Raises
    ------
    InventoryError
        Naming each bad cell (line, column) and the accepted values.
    """
    line_of = line_of or csv_row_line
    problems: list[Problem] = []
    saas = vms[vms["kind"] == "saas"]
    families = set(catalogue.families)
    given = saas["model"].notna() if "model" in vms.columns else pd.Series(False, index=saas.index)
    fam = saas["model"].astype(object).where(given, saas["endpoint"].map(_family_of)) if given.any() \
        else saas["endpoint"].map(_family_of)
    unknown = ~fam.isin(families)
    for idx in saas.index[unknown & given]:
        problems.append(Problem("unknown_model", file, f"model {fam[idx]!r} is not a family of the catalogue",
                                f"families: {', '.join(sorted(families))}", line_of(idx), "model"))
    # Without a model, the family follows from the endpoint id; a catalogue may lack it.
    inferred = saas[unknown & ~given]
    for ep, idx in inferred.groupby("endpoint", sort=False).groups.items():
        problems.append(Problem("unknown_model", file, f"endpoint {ep!r} ({len(idx)} VM(s)) has no model, and the "
                                f"family inferred from its id, {fam[idx[0]]!r}, is not in the catalogue",
                                f"give its VMs a 'model' column value ({', '.join(sorted(families))}), or use a "
                                f"catalogue with {fam[idx[0]]!r}", line_of(idx[0]), "model"))
    # Unknown families are reported above; they do not make an endpoint mixed as well.
    known = fam[fam.isin(families)]
    for ep, per_vm in known.groupby(saas.loc[known.index, "endpoint"]):
        if per_vm.nunique() < 2:
            continue
        first = per_vm.groupby(per_vm).head(1)  # one VM of each family, in file order
        named = ", ".join(f"{f} ({saas.at[i, 'vm_id']}{'' if _has_model(saas, i) else ', inferred from the endpoint'})"
                          for i, f in first.items())
        problems.append(Problem("mixed_models", file, f"endpoint {ep!r} has VMs of several model families: {named}",
                                "one endpoint serves one model family: give every VM of the endpoint the same model",
                                line_of(first.index[-1]), "model"))
    current = fam.map(catalogue.default_of)
    if "config_id" in vms.columns:
        given = saas["config_id"]
        for idx in saas.index[given.notna()]:
            cid = given[idx]
            if cid not in catalogue.position.index:
                problems.append(Problem("unknown_config", file, f"config_id {cid!r} is not in the catalogue",
                                        f"use a config_id of {catalogue.path} or leave it empty",
                                        line_of(idx), "config_id"))
                continue
            pos = int(catalogue.position[cid])
            if catalogue.configs.at[pos, "family"] != fam[idx]:
                problems.append(Problem("config_family", file, f"config_id {cid!r} belongs to family "
                                        f"{catalogue.configs.at[pos, 'family']!r}, not {fam[idx]!r}",
                                        "pick a configuration of the VM's model family", line_of(idx), "config_id"))
                continue
            current[idx] = pos
    if problems:
        raise InventoryError(problems)
    ids = saas["vm_id"].to_numpy()
    return pd.Series(fam.to_numpy(), index=ids), pd.Series(current.to_numpy(int), index=ids)


def config_warnings(vms: pd.DataFrame, catalogue: Catalogue, current: pd.Series, file: str = "vms.csv",
                    line_of=None) -> list[Problem]:
    """Warnings on vms.csv's ``model`` and ``config_id``: one per SaaS VM whose current
    configuration misses its latency SLO (``slo_ok`` false: reconfigure may keep a VM as it is,
    so it would miss its SLO before and after the event, and the plan's status read "ok"), and
    one per IaaS VM that names either (only SaaS VMs run catalogue configurations: it was
    ignored without a word)."""
    line_of = line_of or csv_row_line
    named = [col for col in ("model", "config_id") if col in vms.columns]
    iaas = vms[(vms["kind"] == "iaas") & vms[named].notna().any(axis=1)] if named else vms.iloc[0:0]
    out = []
    for i, rec in iaas.iterrows():
        given = [col for col in named if pd.notna(rec[col])]
        out.append(Problem("config_ignored", file, f"IaaS VM {rec['vm_id']!r} names a {' and '.join(given)}: ignored "
                           "(only SaaS VMs run catalogue configurations)", "leave model and config_id empty for IaaS VMs",
                           line_of(i), given[0]))
    c = catalogue.configs
    slow = current[~c["slo_ok"].astype(bool).to_numpy()[current.to_numpy(int)]]
    if slow.empty:
        return out
    row = pd.Series(vms.index, index=vms["vm_id"].to_numpy())
    return out + [Problem("config_over_slo", file, f"SaaS VM {vm!r} runs {c.at[pos, 'config_id']!r}, whose "
                          f"{c.at[pos, 'tbt_ms']:g} ms between tokens miss its SLO of {c.at[pos, 'slo_tbt_ms']:g} ms",
                          "reconfigure may keep it as it is (it then misses its SLO before and after the event): "
                          "give it a configuration with slo_ok true, or leave config_id empty for the family's default",
                          line_of(row[vm]) if vm in row.index else None, "config_id")
                  for vm, pos in slow.items()]


def _has_model(saas: pd.DataFrame, idx) -> bool:
    return "model" in saas.columns and pd.notna(saas.at[idx, "model"])


def read_cap_alpha(catalogue: Catalogue) -> float:
    """The IaaS power-cap exponent from ``knob_effects.csv`` beside the catalogue, if present."""
    path = Path(catalogue.path).with_name("knob_effects.csv")
    if path.exists():
        effects = pd.read_csv(path)
        row = effects[effects["effect_id"] == "iaas_cap_alpha"]
        if len(row):
            return float(row["value"].iloc[0])
    return DEFAULT_CAP_ALPHA


def peak_slot(instance) -> int:
    """The slot of the horizon where the room draws the most power (placement instance)."""
    return int(np.argmax(instance.base_row_kw.sum(axis=0)))


def requested_time(at: str | pd.Timestamp | None) -> pd.Timestamp | None:
    """The time ``--at`` names (UTC, no time zone), or None for the weekly peak (None/'peak')."""
    if at is None or (isinstance(at, str) and at.strip().lower() == "peak"):
        return None
    ts = at if isinstance(at, pd.Timestamp) and at.tzinfo is None else parse_timestamp(at)
    if ts is None:
        why = parse_timestamps(pd.Series([str(at)], dtype=object))[1].iloc[0]
        raise InventoryError([Problem("bad_time", "--at", f"{at!r} {why}",
                                      "use ISO 8601, e.g. 2026-06-02 14:00, or 'peak'")])
    return ts


def requested_slot(horizon: pd.DatetimeIndex, at: str | pd.Timestamp | None) -> int | None:
    """Slot index of the time ``at`` names inside the horizon, or None for the weekly peak
    (None/'peak'): known before the forecast, which only fills the horizon's values."""
    ts = requested_time(at)
    if ts is None:
        return None
    step = horizon[1] - horizon[0] if len(horizon) > 1 else pd.Timedelta(hours=1)
    if ts < horizon[0] or ts >= horizon[-1] + step:
        raise InventoryError([Problem("bad_time", "--at", f"{ts} is outside the forecast horizon",
                                      f"pick a time from {horizon[0]} to {horizon[-1]}, or 'peak'")])
    return int(horizon.searchsorted(ts, side="right") - 1)


def slot_at(horizon: pd.DatetimeIndex, at: str | pd.Timestamp | None, instance) -> int:
    """Slot index of ``at`` (a time inside the horizon), or the weekly peak if ``at`` is None/'peak'."""
    slot = requested_slot(horizon, at)
    return peak_slot(instance) if slot is None else slot


def _unit_coefficients(params: physics.ServerParams, servers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """kW and CFM one GPU adds between load 0 and load 1 on each server (the chord of g)."""
    one = np.ones(len(servers))
    kw = params.vm_power_kw(one, one, servers) - params.vm_power_kw(0 * one, one, servers)
    cfm = params.vm_airflow_cfm(one, one, servers) - params.vm_airflow_cfm(0 * one, one, servers)
    return kw, cfm


def gpu_load_limit(params: physics.ServerParams, inlet_c: np.ndarray, servers: np.ndarray,
                   temp_limit_c: float) -> np.ndarray:
    """Largest hottest-GPU load on each server that keeps it at the temperature limit.

    Negative (-1) when even an idle GPU breaks the limit (no configuration can repair it)."""
    p_max = physics.gpu_power_limit_w(temp_limit_c, inlet_c, params.temp_intercept_c[servers],
                                      params.temp_c_per_w[servers])
    u = physics.load_for_gpu_power(p_max, params.gpu_idle_w[servers], params.gpu_max_w[servers], params.poly)
    return np.where(p_max < params.gpu_idle_w[servers], -1.0, u)


def build_reconfig_instance(prepared, catalogue: Catalogue, events: tuple[Event, ...], at=None,
                            options: ReconfigOptions | None = None) -> ReconfigInstance:
    """The reconfiguration instance of a prepared room (``tapas_opt.api.prepare``) at ``at``.

    Parameters
    ----------
    prepared : tapas_opt.api.Prepared
        Inventory, load profiles and placement instance (read only).
    catalogue : Catalogue
        Configurations per model family.
    events : tuple of Event
        Applied in order to the limits and the outside temperature.
    at : str or pandas.Timestamp, optional
        A time inside the forecast horizon; default: the weekly peak of room power.
    options : ReconfigOptions, optional
    """
    opts = options or ReconfigOptions(quantile=prepared.config.placement.quantile)
    inst = prepared.instance
    inv = prepared.inventory
    slot = slot_at(inst.horizon, at, inst)
    run = inst.running.reset_index(drop=True)
    load = prepared.profiles.for_vms(run["vm_id"], opts.quantile)[:, slot] if len(run) else np.zeros(0)
    limits: Limits = apply_events(events, inst.row_ids, inst.row_limit_kw, inst.aisle_ids, inst.aisle_limit_cfm)
    params = inst.params

    # Inlet at the slot: room load of the running VMs, outside temperature shifted by heat waves.
    room = physics.room_load(load[:, None], run["gpus"].to_numpy(float), int(params.gpus.sum()))[0] if len(run) else 0.0
    outside = float(inst.outside_c[slot])
    inlet_before = physics.inlet_temp_c(outside, room, prepared.config.inlet, params.inlet_offset_c)
    inlet = physics.inlet_temp_c(outside + limits.outside_shift_c, room, prepared.config.inlet, params.inlet_offset_c)

    idle_kw = params.idle_kw
    idle_cfm = params.idle_cfm
    idle_row_kw = np.bincount(inst.server_row, idle_kw, minlength=len(inst.row_ids))
    idle_aisle_cfm = np.bincount(inst.row_aisle[inst.server_row], idle_cfm, minlength=len(inst.aisle_ids))

    run = run.assign(load=load, row=inst.server_row[run["server"].to_numpy(int)])
    run["aisle"] = inst.row_aisle[run["row"].to_numpy(int)]
    saas = run[run["kind"] == "saas"].reset_index(drop=True)
    iaas = run[run["kind"] == "iaas"].reset_index(drop=True)

    vms_file = table_lines(inv.root, "vms")
    fam, current = assign_configs(inv.vms, catalogue, *vms_file)
    slow = [str(w) for w in config_warnings(inv.vms, catalogue, current.reindex(saas["vm_id"]), *vms_file)]
    saas["family"] = fam.reindex(saas["vm_id"]).to_numpy()
    saas["current"] = current.reindex(saas["vm_id"]).to_numpy(int)
    e0 = catalogue.configs["energy_ratio"].to_numpy()[saas["current"].to_numpy(int)]
    s_srv = saas["server"].to_numpy(int)
    saas["demand"] = saas["gpus"].to_numpy(float) * saas["load"].to_numpy(float) / e0
    saas["kw_unit"], saas["cfm_unit"] = _unit_coefficients(params, s_srv)
    saas["gpu_load_limit"] = gpu_load_limit(params, inlet[s_srv], s_srv, prepared.config.gpu_temp_limit_c)

    i_srv = iaas["server"].to_numpy(int)
    iaas["kw_unit"], iaas["cfm_unit"] = _unit_coefficients(params, i_srv)
    iaas["gpu_load_limit"] = gpu_load_limit(params, inlet[i_srv], i_srv, prepared.config.gpu_temp_limit_c)
    floor = physics.load_for_gpu_power(opts.iaas_cap_floor_w, params.gpu_idle_w[i_srv], params.gpu_max_w[i_srv], params.poly)
    iaas["cap_floor"] = floor  # the lowest load a cap may set (the GPUs' minimum power limit)
    iaas["floor_load"] = np.minimum(floor, iaas["load"].to_numpy(float))

    warnings = list(limits.notes) + slow
    asked = requested_time(at)
    if asked is not None and asked != inst.horizon[slot]:
        warnings.append(f"--at {at} falls inside the slot that starts at {inst.horizon[slot]}: that slot is planned")
    if len(inv.pending_vms):
        warnings.append(f"{len(inv.pending_vms)} pending VMs are not in the room yet and are ignored")
    return ReconfigInstance(
        name=prepared.config.name, time=inst.horizon[slot], slot=slot, events=tuple(events), options=opts,
        catalogue=catalogue, cap_alpha=read_cap_alpha(catalogue), temp_limit_c=prepared.config.gpu_temp_limit_c,
        row_ids=inst.row_ids, row_aisle=inst.row_aisle, aisle_ids=inst.aisle_ids,
        row_limit_kw=limits.row_limit_kw, row_limit_kw_before=inst.row_limit_kw,
        aisle_limit_cfm=limits.aisle_limit_cfm, aisle_limit_cfm_before=inst.aisle_limit_cfm,
        server_ids=inst.server_ids, server_row=inst.server_row, params=params,
        inlet_c=np.asarray(inlet, float), inlet_c_before=np.asarray(inlet_before, float),
        idle_row_kw=idle_row_kw, idle_aisle_cfm=idle_aisle_cfm, saas=saas, iaas=iaas, warnings=warnings,
    )
