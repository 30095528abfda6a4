"""The one module that knows the thermal and power equations (TAPAS.md section 2).

Placement, reconfiguration, the simulator, ``verify`` and the report all call these functions;
nothing else in tapas-opt writes an equation of power, airflow or temperature. All functions are
vectorised over numpy arrays and broadcast in the usual way. ``models/formulation.md`` states
the equations; the defaults and their sources are in :mod:`tapas_opt.config`.

The four models:

1. Inlet temperature per server, from outside temperature and room load
   (:func:`inlet_temp_c`), plus hot-air recirculation when an aisle is short of airflow
   (:func:`recirculation_rise_c`).
2. Hottest-GPU temperature, linear in inlet and GPU power (:func:`gpu_temp_c`).
3. Airflow a server's fans pull, linear in load between idle and full (:func:`vm_airflow_cfm`).
4. Server power, idle plus a polynomial of GPU load per GPU (:func:`vm_power_kw`).

Models 3 and 4 are written per VM: a VM using ``k`` of a server's ``n`` GPUs at load ``u``
adds ``k/n * (max - idle) * g(u)`` kW and ``k/n * (max_cfm - idle_cfm) * u`` CFM to the server's
idle figures. Because every GPU's power depends on its own load, co-located VMs add up, which
keeps the placement model linear.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tapas_opt.config import InletModel, ServerDefaults

AIR_DENSITY_KG_M3 = 1.2
AIR_HEAT_CAPACITY_J_KG_K = 1005.0
M3_S_PER_CFM = 0.000471947


def power_fraction(load, poly) -> np.ndarray:
    """g(u): fraction of a GPU's dynamic power range drawn at load ``u`` (0..1).

    ``poly`` holds the coefficients of u^0, u^1, ...; the result is clipped to [0, 1] so that a
    fitted polynomial cannot produce negative power or more than the maximum.
    """
    u = np.asarray(load, dtype=float)
    out = np.zeros_like(u)
    for k, c in enumerate(poly):
        out = out + c * u**k
    return np.clip(out, 0.0, 1.0)


def vm_power_kw(load, vm_gpus, server_gpus, idle_kw, max_kw, poly) -> np.ndarray:
    """Power a VM adds to its server above the server's idle power (kW)."""
    share = np.asarray(vm_gpus, dtype=float) / np.asarray(server_gpus, dtype=float)
    return share * (np.asarray(max_kw) - np.asarray(idle_kw)) * power_fraction(load, poly)


def vm_airflow_cfm(load, vm_gpus, server_gpus, idle_cfm, max_cfm) -> np.ndarray:
    """Airflow a VM adds to its server's fans above their idle airflow (CFM); linear in load."""
    share = np.asarray(vm_gpus, dtype=float) / np.asarray(server_gpus, dtype=float)
    return share * (np.asarray(max_cfm) - np.asarray(idle_cfm)) * np.asarray(load, dtype=float)


def gpu_power_w(load, gpu_idle_w, gpu_max_w, poly) -> np.ndarray:
    """Power of one GPU at load ``u`` (W): idle plus g(u) of the dynamic range."""
    return np.asarray(gpu_idle_w) + (np.asarray(gpu_max_w) - np.asarray(gpu_idle_w)) * power_fraction(load, poly)


def gpu_temp_c(inlet_c, gpu_power, intercept_c, c_per_w) -> np.ndarray:
    """Hottest-GPU temperature: ``inlet + intercept + c_per_w * P_gpu`` (TAPAS: +2 C, 0.053 C/W)."""
    return np.asarray(inlet_c) + np.asarray(intercept_c) + np.asarray(c_per_w) * np.asarray(gpu_power)


def inlet_temp_c(outside_c, room_load, model: InletModel, offset_c=0.0) -> np.ndarray:
    """Inlet temperature: a floor, a linear rise with outside temperature, a chiller cap.

    Room load (0..1, the room's mean GPU load) adds up to ``load_gain_c`` when it is hot outside.
    ``offset_c`` is the server's spatial offset (row, rack, position).
    """
    t_out = np.asarray(outside_c, dtype=float)
    base = np.clip(model.floor_c + model.slope_c_per_c * (t_out - model.knee_outside_c),
                   model.floor_c, model.cap_c)
    heat = np.clip((t_out - model.knee_outside_c)
                   / (model.load_gain_ref_outside_c - model.knee_outside_c), 0.0, 1.0)
    return base + model.load_gain_c * np.asarray(room_load, dtype=float) * heat + np.asarray(offset_c)


def exhaust_rise_c(power_kw, airflow_cfm) -> np.ndarray:
    """Air temperature rise through servers: dT = P / (rho * c_p * Q)."""
    q = np.maximum(np.asarray(airflow_cfm, dtype=float), 1e-9) * M3_S_PER_CFM
    return np.asarray(power_kw, dtype=float) * 1000.0 / (AIR_DENSITY_KG_M3 * AIR_HEAT_CAPACITY_J_KG_K * q)


def recirculation_rise_c(demand_cfm, supply_cfm, power_kw) -> np.ndarray:
    """Inlet rise when servers pull more air than the AHU supplies.

    The shortfall is drawn from the hot aisle: the inlet becomes a mix of supply air and
    exhaust air, so it rises by ``(1 - supply/demand) * dT_exhaust``. Zero when supply suffices.
    """
    demand = np.asarray(demand_cfm, dtype=float)
    short = np.clip(1.0 - np.asarray(supply_cfm, dtype=float) / np.maximum(demand, 1e-9), 0.0, 1.0)
    return short * exhaust_rise_c(power_kw, demand)


def room_load(loads: np.ndarray, vm_gpus: np.ndarray, total_gpus: int) -> np.ndarray:
    """Mean GPU load of the room per time slot from per-VM loads [V, T], at most 1.

    The planner counts every pending VM as placed (the conservative forecast); a queue larger
    than the room would otherwise give a room more than fully busy (35x on a tester's 8-server
    room, a 90 C inlet). A room's GPUs can be at most all busy at full load."""
    if total_gpus <= 0 or len(loads) == 0:
        return np.zeros(loads.shape[1] if loads.ndim == 2 else 0)
    return np.minimum((np.asarray(vm_gpus, dtype=float)[:, None] * loads).sum(axis=0) / total_gpus, 1.0)


@dataclass(frozen=True)
class ServerParams:
    """Per-server model parameters as arrays, resolved from ``servers.csv`` and the defaults."""

    gpus: np.ndarray
    idle_kw: np.ndarray
    max_kw: np.ndarray
    idle_cfm: np.ndarray
    max_cfm: np.ndarray
    inlet_offset_c: np.ndarray
    gpu_idle_w: np.ndarray
    gpu_max_w: np.ndarray
    temp_intercept_c: np.ndarray
    temp_c_per_w: np.ndarray
    poly: tuple[float, ...]

    @classmethod
    def from_frame(cls, servers: pd.DataFrame, defaults: ServerDefaults) -> "ServerParams":
        def col(name: str, default: float) -> np.ndarray:
            if name in servers.columns:
                return pd.to_numeric(servers[name], errors="coerce").fillna(default).to_numpy(float)
            return np.full(len(servers), float(default))

        return cls(
            gpus=servers["gpus"].to_numpy(int),
            idle_kw=servers["idle_power_kw"].to_numpy(float),
            max_kw=servers["max_power_kw"].to_numpy(float),
            idle_cfm=servers["idle_airflow_cfm"].to_numpy(float),
            max_cfm=servers["max_airflow_cfm"].to_numpy(float),
            inlet_offset_c=servers["inlet_offset_c"].to_numpy(float),
            gpu_idle_w=col("gpu_idle_w", defaults.gpu_idle_w),
            gpu_max_w=col("gpu_max_w", defaults.gpu_max_w),
            temp_intercept_c=col("gpu_temp_intercept_c", defaults.gpu_temp_intercept_c),
            temp_c_per_w=col("gpu_temp_c_per_w", defaults.gpu_temp_c_per_w),
            poly=tuple(defaults.power_poly),
        )

    def vm_power_kw(self, load, vm_gpus, server) -> np.ndarray:
        """Power VM(s) at ``load`` add on ``server`` (index or index array) above idle."""
        return vm_power_kw(load, vm_gpus, self.gpus[server], self.idle_kw[server],
                           self.max_kw[server], self.poly)

    def vm_airflow_cfm(self, load, vm_gpus, server) -> np.ndarray:
        return vm_airflow_cfm(load, vm_gpus, self.gpus[server], self.idle_cfm[server],
                              self.max_cfm[server])

    def gpu_temp_c(self, load, inlet_c, server) -> np.ndarray:
        """Hottest-GPU temperature of a VM at ``load`` on ``server`` with the given inlet."""
        p = gpu_power_w(load, self.gpu_idle_w[server], self.gpu_max_w[server], self.poly)
        return gpu_temp_c(inlet_c, p, self.temp_intercept_c[server], self.temp_c_per_w[server])


# ---- inverses and power-cap performance (appended for SaaS reconfiguration, issue 4) ----------

def gpu_power_limit_w(temp_limit_c, inlet_c, intercept_c, c_per_w) -> np.ndarray:
    """Largest GPU power (W) that keeps the hottest GPU at or below ``temp_limit_c``.

    The inverse of :func:`gpu_temp_c` in the GPU power: ``(limit - inlet - intercept) / c_per_w``.
    May be negative when the GPU would break the limit even at zero power; infinite when the
    temperature does not depend on power (``c_per_w == 0``) and the limit holds.
    """
    room = np.asarray(temp_limit_c, dtype=float) - np.asarray(inlet_c) - np.asarray(intercept_c)
    slope = np.asarray(c_per_w, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(slope > 0, room / np.where(slope > 0, slope, 1.0), np.where(room >= 0, np.inf, -np.inf))
    return out


def load_for_gpu_power(power_w, gpu_idle_w, gpu_max_w, poly) -> np.ndarray:
    """GPU load ``u`` (0..1) at which :func:`gpu_power_w` reaches ``power_w``: its inverse.

    g(u) is increasing on [0, 1] for every fitted polynomial tapas-opt accepts, so the inverse is
    found by bisection (exact in closed form for the default linear g). Powers below idle give 0,
    above the maximum give 1.
    """
    frac = (np.asarray(power_w, dtype=float) - np.asarray(gpu_idle_w)) / (np.asarray(gpu_max_w) - np.asarray(gpu_idle_w))
    frac = np.clip(np.nan_to_num(frac, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    if tuple(poly) == (0.0, 1.0):
        return frac
    lo, hi = np.zeros_like(frac), np.ones_like(frac)
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        below = power_fraction(mid, poly) < frac
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def throughput_fraction_at_power(dyn_power_ratio, exponent) -> np.ndarray:
    """Throughput of a GPU whose dynamic power (above idle) is capped to ``dyn_power_ratio`` of
    what it would draw uncapped: ``ratio ** exponent``.

    MLPerf v4.1 H200 MaxQ vs MaxP (../shared/data/mlperf_inf_v4.1_h200_maxq_power): a 500 W instead
    of 700 W limit cuts dynamic power to 0.68 and llama2-70b throughput to 0.81, exponent 0.56;
    models/catalogue/knob_effects.csv holds the fitted exponents. Ratios are clipped to [0, 1].
    """
    return np.clip(np.asarray(dyn_power_ratio, dtype=float), 0.0, 1.0) ** np.asarray(exponent, dtype=float)
