"""The frozen placement instance: the only place that indexes, scales and filters.

:func:`build_instance` turns an inventory and load profiles into arrays indexed by integer
positions (rows, aisles, servers, VMs, time slots). Everything the models need is computed
here once, through :mod:`tapas_opt.physics`:

* the base row power and aisle airflow per slot (idle servers plus running VMs);
* what each pending VM would add to a row's power and an aisle's airflow, per server hardware
  class (servers with the same GPUs, power and airflow figures);
* each pending VM's peak hottest-GPU temperature on every server (placement-independent,
  because inlet depends on outside temperature and total room load only, and a GPU's
  temperature on its own power).

Pending VMs with identical profile, size, kind, endpoint and customer form a *group*: the
row-level model decides how many VMs of each group go to each row, not which ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from tapas_opt import physics
from tapas_opt.config import DatacenterConfig, PlacementOptions
from tapas_opt.forecast.base import LoadProfiles
from tapas_opt.inventory.load import Inventory

_HW_COLUMNS = ("gpus", "idle_kw", "max_kw", "idle_cfm", "max_cfm")


@dataclass(frozen=True, eq=False)
class PlacementInstance:
    """Everything the placement models and checkers need, as arrays."""

    name: str
    horizon: pd.DatetimeIndex
    temp_limit_c: float
    options: PlacementOptions
    quantile: str
    # layout
    aisle_ids: np.ndarray
    aisle_limit_cfm: np.ndarray
    row_ids: np.ndarray
    row_aisle: np.ndarray
    row_limit_kw: np.ndarray
    server_ids: np.ndarray
    server_row: np.ndarray
    server_rack: np.ndarray
    params: physics.ServerParams
    free_gpus: np.ndarray
    # environment
    outside_c: np.ndarray
    room_load: np.ndarray
    base_inlet_c: np.ndarray
    # running VMs
    running: pd.DataFrame
    running_load: np.ndarray
    base_row_kw: np.ndarray
    base_aisle_cfm: np.ndarray
    # pending VMs
    vm_ids: np.ndarray
    vm_gpus: np.ndarray
    vm_kind: np.ndarray
    vm_endpoint: np.ndarray
    vm_customer: np.ndarray
    vm_load: np.ndarray
    vm_method: np.ndarray
    warnings: list[str] = field(default_factory=list)
    # a nightly plan's SaaS moves (tapas_opt.fleet.moves.moved_instance)
    unmoved_row_kw: np.ndarray | None = None
    """Row power of the running VMs before any move (None: no move). A limit is pre-existing only
    where the running VMs broke it *before* the moves: a move that pushes a row over is the
    plan's violation, not the room's."""
    unmoved_aisle_cfm: np.ndarray | None = None
    """Aisle airflow of the running VMs before any move (None: no move)."""
    moved_vm_ids: frozenset = frozenset()
    """Running VMs the plan moves (and their in-flight copies): their temperature is the plan's."""

    @property
    def preexisting_row_kw(self) -> np.ndarray:
        """What the running VMs draw on their own, before the plan: the reference of
        ``*_preexisting`` violations."""
        return self.base_row_kw if self.unmoved_row_kw is None else self.unmoved_row_kw

    @property
    def preexisting_aisle_cfm(self) -> np.ndarray:
        return self.base_aisle_cfm if self.unmoved_aisle_cfm is None else self.unmoved_aisle_cfm

    # ---- sizes -------------------------------------------------------------------------
    @property
    def n_slots(self) -> int:
        return len(self.horizon)

    @property
    def n_rows(self) -> int:
        return len(self.row_ids)

    @property
    def n_servers(self) -> int:
        return len(self.server_ids)

    @property
    def n_vms(self) -> int:
        return len(self.vm_ids)

    # ---- hardware classes ----------------------------------------------------------------
    @cached_property
    def _hw(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        table = np.column_stack([p.gpus, p.idle_kw, p.max_kw, p.idle_cfm, p.max_cfm])
        classes, inverse = np.unique(table, axis=0, return_inverse=True)
        return classes, inverse.reshape(-1)

    @property
    def server_hw(self) -> np.ndarray:
        """Hardware class of each server (index into :attr:`hw_representative`)."""
        return self._hw[1]

    @cached_property
    def hw_representative(self) -> np.ndarray:
        """One server index per hardware class."""
        _, first = np.unique(self.server_hw, return_index=True)
        return first

    @cached_property
    def vm_power_kw_by_hw(self) -> np.ndarray:
        """[V, K, T]: power each pending VM adds to a server of each hardware class."""
        reps = self.hw_representative
        return self.params.vm_power_kw(self.vm_load[:, None, :], self.vm_gpus[:, None, None],
                                       reps[None, :, None])

    @cached_property
    def vm_airflow_cfm_by_hw(self) -> np.ndarray:
        """[V, K, T]: airflow each pending VM adds to a server of each hardware class."""
        reps = self.hw_representative
        return self.params.vm_airflow_cfm(self.vm_load[:, None, :], self.vm_gpus[:, None, None],
                                          reps[None, :, None])

    # ---- limits the running VMs break on their own ----------------------------------------
    @cached_property
    def rows_over_by_running(self) -> np.ndarray:
        """[R] rows whose running VMs alone draw more than the row's limit at some slot."""
        return (self.base_row_kw > self.row_limit_kw[:, None]).any(axis=1)

    @cached_property
    def aisles_over_by_running(self) -> np.ndarray:
        """[A] aisles whose running VMs alone need more air than the AHU gives at some slot."""
        return (self.base_aisle_cfm > self.aisle_limit_cfm[:, None]).any(axis=1)

    # ---- temperature -------------------------------------------------------------------
    def inlet_c(self, servers) -> np.ndarray:
        """Inlet temperature [len(servers), T] (without recirculation)."""
        return self.base_inlet_c[None, :] + self.params.inlet_offset_c[np.asarray(servers)][:, None]

    def peak_temp_c(self, loads: np.ndarray, servers=None, chunk: int = 32) -> np.ndarray:
        """Peak hottest-GPU temperature over the horizon for loads [n, T] on servers [m].

        Returns [n, m]. Computed in chunks so that memory stays O(chunk * m * T).
        """
        servers = np.arange(self.n_servers) if servers is None else np.asarray(servers)
        p = self.params
        inlet = self.inlet_c(servers)  # [m, T]
        out = np.empty((len(loads), len(servers)))
        for start in range(0, len(loads), chunk):
            u = loads[start:start + chunk][:, None, :]  # [c, 1, T]
            t = p.gpu_temp_c(u, inlet[None, :, :], servers[None, :, None])
            out[start:start + chunk] = t.max(axis=2)
        return out

    @cached_property
    def vm_peak_temp_c(self) -> np.ndarray:
        """[V, S]: each pending VM's peak hottest-GPU temperature on each server."""
        return self.peak_temp_c(self.vm_load)

    @cached_property
    def running_peak_temp_c(self) -> np.ndarray:
        """[Vr]: peak hottest-GPU temperature of each running VM on its server."""
        if len(self.running) == 0:
            return np.zeros(0)
        servers = self.running["server"].to_numpy()
        p = self.params
        t = p.gpu_temp_c(self.running_load, self.inlet_c(servers), servers[:, None])
        return t.max(axis=1)

    @property
    def existing_peak_temp_c(self) -> float:
        return float(self.running_peak_temp_c.max()) if len(self.running) else -np.inf

    # ---- groups of identical pending VMs ----------------------------------------------
    @cached_property
    def vm_group(self) -> np.ndarray:
        """Group index of each pending VM (identical profile, size, kind, endpoint, customer)."""
        if self.n_vms == 0:
            return np.zeros(0, int)
        keys = pd.DataFrame({
            "gpus": self.vm_gpus, "kind": self.vm_kind,
            "endpoint": pd.Series(self.vm_endpoint).fillna(""),
            "customer": pd.Series(self.vm_customer).fillna(""),
            "load": [np.round(row, 6).tobytes() for row in self.vm_load],
        })
        codes, _ = pd.factorize(pd.MultiIndex.from_frame(keys))
        return codes

    @cached_property
    def group_members(self) -> list[np.ndarray]:
        groups = self.vm_group
        n = int(groups.max()) + 1 if len(groups) else 0
        order = np.argsort(groups, kind="stable")
        bounds = np.searchsorted(groups[order], np.arange(n + 1))
        return [order[bounds[g]:bounds[g + 1]] for g in range(n)]

    @property
    def n_groups(self) -> int:
        return len(self.group_members)

    @cached_property
    def group_rep(self) -> np.ndarray:
        return np.array([m[0] for m in self.group_members], dtype=int)

    # ---- pools: (row, hardware class) -------------------------------------------------
    @cached_property
    def _pools(self) -> tuple[np.ndarray, np.ndarray]:
        hw = self.server_hw
        keys = self.server_row * (int(hw.max()) + 1 if len(hw) else 1) + hw
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        return inverse.reshape(-1), first

    @property
    def pool_of_server(self) -> np.ndarray:
        """Pool (row x hardware class) of each server: servers of one pool add the same power."""
        return self._pools[0]

    @property
    def n_pools(self) -> int:
        return len(self._pools[1])

    @property
    def pool_row(self) -> np.ndarray:
        return self.server_row[self._pools[1]]

    @property
    def pool_hw(self) -> np.ndarray:
        return self.server_hw[self._pools[1]]

    @property
    def pool_aisle(self) -> np.ndarray:
        return self.row_aisle[self.pool_row]

    @cached_property
    def group_peak_temp_c(self) -> np.ndarray:
        """[G, S]: peak hottest-GPU temperature of each group's VMs on each server."""
        return self.peak_temp_c(self.vm_load[self.group_rep])

    # ---- convenience ------------------------------------------------------------------
    @cached_property
    def servers_of_row(self) -> list[np.ndarray]:
        return [np.flatnonzero(self.server_row == r) for r in range(self.n_rows)]

    @cached_property
    def rows_of_aisle(self) -> list[np.ndarray]:
        return [np.flatnonzero(self.row_aisle == a) for a in range(len(self.aisle_ids))]

    def slot_label(self, t: int) -> str:
        """Human label of a slot, e.g. 'Tue 14:00'."""
        return self.horizon[t].strftime("%a %H:%M")


def server_series(params: physics.ServerParams, n_slots: int,
                  placements: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Power (kW) and fan airflow (CFM) of every server per slot: idle, plus each group of VMs
    given as (server index [n], GPUs [n], load [n, T])."""
    server_kw = np.repeat(params.idle_kw[:, None], n_slots, axis=1)
    server_cfm = np.repeat(params.idle_cfm[:, None], n_slots, axis=1)
    for servers, gpus, loads in placements:
        if len(servers):
            np.add.at(server_kw, servers, params.vm_power_kw(loads, gpus[:, None], servers[:, None]))
            np.add.at(server_cfm, servers, params.vm_airflow_cfm(loads, gpus[:, None], servers[:, None]))
    return server_kw, server_cfm


def sum_by(index: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Rows of ``values`` [S, T] summed by group ``index`` [S] into [n, T] (rows, aisles)."""
    out = np.zeros((n, values.shape[1]))
    np.add.at(out, index, values)
    return out


def _running_frame(inventory: Inventory, server_pos: pd.Series) -> pd.DataFrame:
    run = inventory.running_vms[["vm_id", "kind", "customer", "endpoint", "gpus", "server_id"]].copy()
    run["server"] = server_pos.reindex(run["server_id"]).to_numpy()
    return run.reset_index(drop=True)


def build_instance(inventory: Inventory, profiles: LoadProfiles, outside_c: np.ndarray,
                   config: DatacenterConfig | None = None) -> PlacementInstance:
    """Index, scale and precompute everything placement needs (see the module docstring)."""
    cfg = config or inventory.config
    q = cfg.placement.quantile
    aisles = inventory.aisles.reset_index(drop=True)
    rows = inventory.rows.reset_index(drop=True)
    servers = inventory.servers.reset_index(drop=True)
    aisle_pos = pd.Series(np.arange(len(aisles)), index=aisles["aisle_id"])
    row_pos = pd.Series(np.arange(len(rows)), index=rows["row_id"])
    server_pos = pd.Series(np.arange(len(servers)), index=servers["server_id"])
    params = physics.ServerParams.from_frame(servers, cfg.server_defaults)
    server_row = row_pos.reindex(servers["row_id"]).to_numpy()
    row_aisle = aisle_pos.reindex(rows["aisle_id"]).to_numpy()

    running = _running_frame(inventory, server_pos)
    running_load = profiles.for_vms(running["vm_id"], q) if len(running) else np.zeros((0, len(profiles.horizon)))
    pending = inventory.pending_vms.reset_index(drop=True)
    vm_load = profiles.for_vms(pending["vm_id"], q) if len(pending) else np.zeros((0, len(profiles.horizon)))

    n_t = len(profiles.horizon)
    used = np.zeros(len(servers), int)
    np.add.at(used, running["server"].to_numpy(int), running["gpus"].to_numpy(int))
    free = params.gpus - used

    # Base row power and aisle airflow: every server idles, running VMs add their share.
    server_kw, server_cfm = server_series(params, n_t, [(running["server"].to_numpy(int),
                                                         running["gpus"].to_numpy(int), running_load)])
    base_row_kw = sum_by(server_row, server_kw, len(rows))
    base_aisle_cfm = sum_by(row_aisle[server_row], server_cfm, len(aisles))

    # Room load counts every VM, running and pending: it does not depend on placement.
    all_loads = np.vstack([running_load, vm_load])
    all_gpus = np.concatenate([running["gpus"].to_numpy(int), pending["gpus"].to_numpy(int)])
    room = physics.room_load(all_loads, all_gpus, int(params.gpus.sum()))
    base_inlet = physics.inlet_temp_c(outside_c, room, cfg.inlet, 0.0)

    return PlacementInstance(
        name=cfg.name, horizon=profiles.horizon, temp_limit_c=cfg.gpu_temp_limit_c,
        options=cfg.placement, quantile=q,
        aisle_ids=aisles["aisle_id"].to_numpy(str),
        aisle_limit_cfm=aisles["airflow_limit_cfm"].to_numpy(float),
        row_ids=rows["row_id"].to_numpy(str), row_aisle=row_aisle,
        row_limit_kw=rows["power_limit_kw"].to_numpy(float),
        server_ids=servers["server_id"].to_numpy(str), server_row=server_row,
        server_rack=servers["rack"].to_numpy(str), params=params, free_gpus=free,
        outside_c=np.asarray(outside_c, float), room_load=room, base_inlet_c=base_inlet,
        running=running, running_load=running_load,
        base_row_kw=base_row_kw, base_aisle_cfm=base_aisle_cfm,
        vm_ids=pending["vm_id"].to_numpy(str), vm_gpus=pending["gpus"].to_numpy(int),
        vm_kind=pending["kind"].to_numpy(str),
        vm_endpoint=pending["endpoint"].to_numpy(object),
        vm_customer=pending["customer"].to_numpy(object), vm_load=vm_load,
        vm_method=profiles.method.reindex(pending["vm_id"]).to_numpy(object),
    )
