"""Incremental room state: what a row, an aisle and a server have left as VMs are added.

Used by the greedy heuristic (the optimiser's warm start), the baselines, the single-VM
placement API and the explanations. All numbers come from the instance's precomputed physics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tapas_opt.placement.instance import PlacementInstance

_DENSE_TEMP_LIMIT = 5_000_000  # cache the [V, S] peak-temperature matrix below this size


@dataclass
class Candidates:
    """Servers a VM could go to now, with what each would do to its row, aisle and GPUs."""

    servers: np.ndarray
    row_peak_norm: np.ndarray
    aisle_peak_norm: np.ndarray
    peak_temp_c: np.ndarray


class RoomState:
    """Row power, aisle airflow and free GPUs after the VMs placed so far."""

    def __init__(self, instance: PlacementInstance):
        inst = instance
        self.inst = inst
        self.row_kw = inst.base_row_kw.copy()
        self.aisle_cfm = inst.base_aisle_cfm.copy()
        self.free = inst.free_gpus.astype(int).copy()
        self.assign = np.full(inst.n_vms, -1, dtype=int)
        self.peak_temp_c = inst.existing_peak_temp_c
        self.placed_peak_temp_c = -np.inf
        self._dense_temp = inst.n_vms * inst.n_servers <= _DENSE_TEMP_LIMIT
        self.pool_of_server = inst.pool_of_server
        self.pool_row = inst.pool_row
        self.pool_hw = inst.pool_hw
        self.pool_aisle = inst.pool_aisle

    def vm_peak_temp(self, v: int, servers: np.ndarray) -> np.ndarray:
        if self._dense_temp:
            return self.inst.vm_peak_temp_c[v, servers]
        return self.inst.peak_temp_c(self.inst.vm_load[v:v + 1], servers)[0]

    def pool_effect(self, v: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per pool: peak row power and aisle airflow (as fractions of limit) with VM v added,
        and the slot at which each peaks."""
        inst = self.inst
        return self.pool_effect_of(inst.vm_power_kw_by_hw[v], inst.vm_airflow_cfm_by_hw[v])

    def pool_effect_of(self, power_by_hw: np.ndarray, airflow_by_hw: np.ndarray):
        """:meth:`pool_effect` for any VM given its added power and airflow per hardware class."""
        inst = self.inst
        row_new = self.row_kw[self.pool_row] + power_by_hw[self.pool_hw]
        row_norm = row_new / inst.row_limit_kw[self.pool_row, None]
        aisle_new = self.aisle_cfm[self.pool_aisle] + airflow_by_hw[self.pool_hw]
        aisle_norm = aisle_new / inst.aisle_limit_cfm[self.pool_aisle, None]
        return row_norm.max(axis=1), aisle_norm.max(axis=1), row_norm.argmax(axis=1), aisle_norm.argmax(axis=1)

    def candidates(self, v: int, temp_cap_c: float | None = None, check_limits: bool = True) -> Candidates:
        """Servers with room for pending VM v whose row, aisle and GPU limits hold at every slot."""
        inst = self.inst
        return self.candidates_of(inst.vm_power_kw_by_hw[v], inst.vm_airflow_cfm_by_hw[v], int(inst.vm_gpus[v]),
                                  lambda servers: self.vm_peak_temp(v, servers), temp_cap_c, check_limits)

    def candidates_of(self, power_by_hw, airflow_by_hw, gpus: int, peak_temp_fn,
                      temp_cap_c: float | None = None, check_limits: bool = True) -> Candidates:
        """:meth:`candidates` for any VM: its power and airflow per hardware class, its size, and
        a function giving its peak GPU temperature on an array of servers."""
        inst = self.inst
        cap = inst.temp_limit_c if temp_cap_c is None else temp_cap_c
        servers = np.flatnonzero(self.free >= gpus)
        row_peak, aisle_peak, _, _ = self.pool_effect_of(power_by_hw, airflow_by_hw)
        pools = self.pool_of_server[servers]
        rp, ap = row_peak[pools], aisle_peak[pools]
        if check_limits:
            ok = (rp <= 1.0 + 1e-9) & (ap <= 1.0 + 1e-9)
            servers, rp, ap = servers[ok], rp[ok], ap[ok]
        temps = peak_temp_fn(servers)
        if check_limits:
            ok = temps <= cap + 1e-9
            servers, rp, ap, temps = servers[ok], rp[ok], ap[ok], temps[ok]
        return Candidates(servers, rp, ap, temps)

    def place(self, v: int, server: int) -> None:
        inst = self.inst
        pool = self.pool_of_server[server]
        self.row_kw[self.pool_row[pool]] += inst.vm_power_kw_by_hw[v, self.pool_hw[pool]]
        self.aisle_cfm[self.pool_aisle[pool]] += inst.vm_airflow_cfm_by_hw[v, self.pool_hw[pool]]
        self.free[server] -= inst.vm_gpus[v]
        self.assign[v] = server
        temp = float(self.vm_peak_temp(v, np.array([server]))[0])
        self.peak_temp_c = max(self.peak_temp_c, temp)
        self.placed_peak_temp_c = max(self.placed_peak_temp_c, temp)

    def remove(self, v: int) -> None:
        """Undo :meth:`place` (the peak temperature is not lowered: it is a running maximum)."""
        inst = self.inst
        server = self.assign[v]
        if server < 0:
            return
        pool = self.pool_of_server[server]
        self.row_kw[self.pool_row[pool]] -= inst.vm_power_kw_by_hw[v, self.pool_hw[pool]]
        self.aisle_cfm[self.pool_aisle[pool]] -= inst.vm_airflow_cfm_by_hw[v, self.pool_hw[pool]]
        self.free[server] += inst.vm_gpus[v]
        self.assign[v] = -1

    @classmethod
    def from_assignment(cls, instance: PlacementInstance, assign: np.ndarray) -> "RoomState":
        state = cls(instance)
        for v in np.flatnonzero(np.asarray(assign) >= 0):
            state.place(int(v), int(assign[v]))
        return state
