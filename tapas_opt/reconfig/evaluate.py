"""Score any reconfiguration plan with physics alone, without trusting a solver.

:func:`check_plan` recomputes from :mod:`tapas_opt.physics` every row's power, every aisle's
airflow (with hot-air recirculation where an aisle is short of air), every GPU's hottest
temperature, every VM's load against its configuration's capacity and every endpoint's served
load against its demand, and lists every broken rule with how far it is broken. The optimal
model, both baselines, the tests and the benchmark all use it, so every policy is measured by
the same ruler.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tapas_opt import physics
from tapas_opt.reconfig.instance import ReconfigInstance
from tapas_opt.reconfig.plan import ReconfigPlan

TOL_KW = 1e-4
TOL_CFM = 1e-3
TOL_C = 1e-4
TOL_UNITS = 1e-5
TOL_REL = 1e-4
"""Relative slack on capacity and GPU maximum: the catalogue keeps 5 significant digits, so the
power levels it samples fit their power law to about 1e-5."""


@dataclass(frozen=True)
class Violation:
    """A broken rule: which family, where, how far (``excess`` in the unit of ``value``)."""

    code: str
    subject: str
    value: float
    limit: float
    message: str

    @property
    def excess(self) -> float:
        return float(self.value - self.limit) if self.code != "unserved_load" else float(self.limit - self.value)

    def to_dict(self) -> dict:
        return {"code": self.code, "subject": self.subject, "value": round(float(self.value), 4),
                "limit": round(float(self.limit), 4), "excess": round(self.excess, 4), "message": self.message}


@dataclass(frozen=True)
class ReconfigEvaluation:
    """Physics of one plan at the instance's slot, and its violations."""

    row_kw: np.ndarray
    row_limit_kw: np.ndarray
    aisle_cfm: np.ndarray
    aisle_limit_cfm: np.ndarray
    recirculation_c: np.ndarray
    saas_kw: np.ndarray
    saas_gpu_load: np.ndarray
    saas_temp_c: np.ndarray
    iaas_kw: np.ndarray
    iaas_temp_c: np.ndarray
    served: np.ndarray
    demand: np.ndarray
    violations: list[Violation] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        return not self.violations

    @property
    def max_temp_c(self) -> float:
        temps = np.concatenate([self.saas_temp_c, self.iaas_temp_c])
        return float(temps.max()) if temps.size else float("nan")

    @property
    def peak_row_ratio(self) -> float:
        return float((self.row_kw / self.row_limit_kw).max()) if self.row_kw.size else 0.0

    @property
    def peak_aisle_ratio(self) -> float:
        return float((self.aisle_cfm / self.aisle_limit_cfm).max()) if self.aisle_cfm.size else 0.0

    def by_code(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in self.violations:
            out[v.code] = out.get(v.code, 0) + 1
        return out


def saas_alpha(instance: ReconfigInstance, configs) -> np.ndarray:
    """Power-cap exponent of each configuration: its class's (catalogue), else the IaaS one."""
    a = np.asarray(instance.cfg["power_alpha"], float)[np.asarray(configs, int)]
    return np.where(np.isfinite(a), a, instance.cap_alpha)


def level_rates(instance: ReconfigInstance, configs, clock) -> dict[str, np.ndarray]:
    """Per SaaS VM in configuration ``configs`` at power level ``clock`` (the meaning of
    :func:`saas_physics`): the throughput fraction ``speed``, the energy ratio per unit of load,
    the busy GPUs and the units it serves under its SLO at that level (before the busy GPUs'
    maximum and the thermal limit). The one place the power level's effects are written."""
    c = instance.cfg
    cfg = np.asarray(configs, int)
    clock = np.asarray(clock, float)
    speed = physics.throughput_fraction_at_power(clock, saas_alpha(instance, cfg))
    gpus = instance.saas["gpus"].to_numpy(float)
    return {"speed": speed, "energy": c["energy_ratio"][cfg] * clock / np.maximum(speed, 1e-12),
            "busy": gpus * c["active_share"][cfg], "slo_capacity": gpus * c["capacity_ratio"][cfg] * speed}


def over_slo(instance: ReconfigInstance, configs, clock) -> np.ndarray:
    """SaaS VMs whose time between tokens at their power level is longer than their SLO, except
    a VM left as it runs now (current configuration, full level): that one is reported when
    the room is read, not charged to a plan."""
    c = instance.cfg
    cfg = np.asarray(configs, int)
    clock = np.asarray(clock, float)
    tbt = c["tbt_ms"][cfg] / np.maximum(level_rates(instance, cfg, clock)["speed"], 1e-12)
    unchanged = (cfg == instance.saas["current"].to_numpy(int)) & (clock >= 1.0)
    return (tbt > c["slo_tbt_ms"][cfg] * (1 + 1e-6)) & ~unchanged


def saas_physics(instance: ReconfigInstance, plan: ReconfigPlan) -> dict[str, np.ndarray]:
    """Per SaaS VM: busy GPUs, their load, added kW and CFM, capacity (units) and time between
    tokens, per the plan. A power level ``k`` below 1 (``plan.saas_clock``) scales the
    configuration's dynamic power at full throughput by ``k``, its throughput by ``k ** alpha``
    (so its energy per token by ``k ** (1 - alpha)``) and its time between tokens by
    ``k ** -alpha`` (physics.throughput_fraction_at_power)."""
    c = instance.cfg
    s = instance.saas
    cfg = np.asarray(plan.saas_config, int)
    rates = level_rates(instance, cfg, plan.clock(len(s)))
    srv = s["server"].to_numpy(int)
    busy, speed = rates["busy"], rates["speed"]
    served = np.asarray(plan.saas_load, float)
    gpu_load = rates["energy"] * served / np.maximum(busy, 1e-12)
    p = instance.params
    kw = p.vm_power_kw(gpu_load, busy, srv) if len(s) else np.zeros(0)
    cfm = p.vm_airflow_cfm(gpu_load, busy, srv) if len(s) else np.zeros(0)
    tbt = c["tbt_ms"][cfg] / np.maximum(speed, 1e-12)
    return {"busy": busy, "gpu_load": gpu_load, "kw": kw, "cfm": cfm, "capacity": rates["slo_capacity"],
            "server": srv, "tbt_ms": tbt, "speed": speed}


def saas_rates(instance: ReconfigInstance, plan: ReconfigPlan, thermal: bool = True) -> dict[str, np.ndarray]:
    """Per SaaS VM under the plan's configurations and power levels: energy ratio per unit of load
    (power level included), busy GPUs, and the units it can serve (throughput under the SLO,
    busy GPUs at their maximum and, if ``thermal``, at its server's hottest-GPU limit)."""
    s = instance.saas
    rates = level_rates(instance, plan.saas_config, plan.clock(len(s)))
    energy, busy = rates["energy"], rates["busy"]
    limit = np.clip(s["gpu_load_limit"].to_numpy(float), 0.0, 1.0) if thermal else np.ones(len(s))
    capacity = np.minimum(rates["slo_capacity"], busy * limit / np.maximum(energy, 1e-12))
    return {"energy": energy, "busy": busy, "capacity": capacity}


def check_plan(instance: ReconfigInstance, plan: ReconfigPlan, before_event: bool = False) -> ReconfigEvaluation:
    """Recompute everything for ``plan``; ``before_event`` uses the limits and inlet of before
    the event (to report the room as it was)."""
    inst = instance
    p = inst.params
    row_limit = inst.row_limit_kw_before if before_event else inst.row_limit_kw
    aisle_limit = inst.aisle_limit_cfm_before if before_event else inst.aisle_limit_cfm
    inlet = inst.inlet_c_before if before_event else inst.inlet_c
    sp = saas_physics(inst, plan)
    iaas = inst.iaas
    i_srv = iaas["server"].to_numpy(int)
    i_load = np.asarray(plan.iaas_load, float)
    i_kw = p.vm_power_kw(i_load, iaas["gpus"].to_numpy(float), i_srv) if len(iaas) else np.zeros(0)
    i_cfm = p.vm_airflow_cfm(i_load, iaas["gpus"].to_numpy(float), i_srv) if len(iaas) else np.zeros(0)

    s_row, s_aisle = inst.saas["row"].to_numpy(int), inst.saas["aisle"].to_numpy(int)
    i_row, i_aisle = iaas["row"].to_numpy(int), iaas["aisle"].to_numpy(int)
    row_kw = inst.idle_row_kw + np.bincount(s_row, sp["kw"], minlength=inst.n_rows) \
        + np.bincount(i_row, i_kw, minlength=inst.n_rows)
    aisle_cfm = inst.idle_aisle_cfm + np.bincount(s_aisle, sp["cfm"], minlength=inst.n_aisles) \
        + np.bincount(i_aisle, i_cfm, minlength=inst.n_aisles)
    aisle_kw = np.bincount(inst.row_aisle, row_kw, minlength=inst.n_aisles)
    rise = physics.recirculation_rise_c(aisle_cfm, aisle_limit, aisle_kw)

    s_temp = p.gpu_temp_c(sp["gpu_load"], inlet[sp["server"]] + rise[s_aisle], sp["server"]) if len(s_row) else np.zeros(0)
    i_temp = p.gpu_temp_c(i_load, inlet[i_srv] + rise[i_aisle], i_srv) if len(i_row) else np.zeros(0)
    served = np.bincount(inst.saas_endpoint_idx, np.asarray(plan.saas_load, float), minlength=len(inst.endpoints))
    ev = ReconfigEvaluation(row_kw, row_limit, aisle_cfm, aisle_limit, rise, sp["kw"], sp["gpu_load"], s_temp,
                            i_kw, i_temp, served, inst.endpoint_demand.copy())
    ev.violations.extend(_violations(inst, plan, ev, sp))
    return ev


def _idle_over(idle: float, limit: float, tol: float, unit: str, fmt: str, what: str) -> str:
    """The reason a limit cannot be met at all, when the servers' idle draw alone breaks it."""
    if idle <= limit + tol:
        return ""
    return (f": its servers' idle {what} alone is {idle:{fmt}} {unit}, so no configuration or cap can meet the "
            f"limit (switch servers off or move VMs out)")


def _violations(inst: ReconfigInstance, plan: ReconfigPlan, ev: ReconfigEvaluation, sp) -> list[Violation]:
    out: list[Violation] = []
    c = inst.cfg
    for r in np.flatnonzero(ev.row_kw > ev.row_limit_kw + TOL_KW):
        out.append(Violation("row_power", str(inst.row_ids[r]), ev.row_kw[r], ev.row_limit_kw[r],
                             f"row {inst.row_ids[r]} draws {ev.row_kw[r]:.1f} kW > {ev.row_limit_kw[r]:.1f} kW"
                             + _idle_over(inst.idle_row_kw[r], ev.row_limit_kw[r], TOL_KW, "kW", ".1f", "power")))
    for a in np.flatnonzero(ev.aisle_cfm > ev.aisle_limit_cfm + TOL_CFM):
        out.append(Violation("aisle_airflow", str(inst.aisle_ids[a]), ev.aisle_cfm[a], ev.aisle_limit_cfm[a],
                             f"aisle {inst.aisle_ids[a]} needs {ev.aisle_cfm[a]:.0f} CFM > {ev.aisle_limit_cfm[a]:.0f} CFM"
                             + _idle_over(inst.idle_aisle_cfm[a], ev.aisle_limit_cfm[a], TOL_CFM, "CFM", ".0f",
                                          "airflow")))
    saas_ids = inst.saas["vm_id"].to_numpy(str)
    for v in np.flatnonzero(ev.saas_temp_c > inst.temp_limit_c + TOL_C):
        out.append(Violation("gpu_temperature", saas_ids[v], ev.saas_temp_c[v], inst.temp_limit_c,
                             f"SaaS VM {saas_ids[v]} reaches {ev.saas_temp_c[v]:.1f} C > {inst.temp_limit_c:.1f} C"))
    iaas_ids = inst.iaas["vm_id"].to_numpy(str)
    for v in np.flatnonzero(ev.iaas_temp_c > inst.temp_limit_c + TOL_C):
        out.append(Violation("gpu_temperature", iaas_ids[v], ev.iaas_temp_c[v], inst.temp_limit_c,
                             f"IaaS VM {iaas_ids[v]} reaches {ev.iaas_temp_c[v]:.1f} C > {inst.temp_limit_c:.1f} C"))
    load = np.asarray(plan.saas_load, float)
    for v in np.flatnonzero(load > sp["capacity"] * (1 + TOL_REL) + TOL_UNITS):
        out.append(Violation("capacity", saas_ids[v], load[v], sp["capacity"][v],
                             f"SaaS VM {saas_ids[v]} serves {load[v]:.3f} units > its configuration's {sp['capacity'][v]:.3f}"))
    for v in np.flatnonzero(sp["gpu_load"] > 1.0 + TOL_REL):
        out.append(Violation("gpu_max_power", saas_ids[v], sp["gpu_load"][v], 1.0,
                             f"SaaS VM {saas_ids[v]} would drive its GPUs past their maximum power"))
    for v in np.flatnonzero(load < -TOL_UNITS):
        out.append(Violation("negative_load", saas_ids[v], load[v], 0.0, f"SaaS VM {saas_ids[v]} has negative load"))
    cfg = np.asarray(plan.saas_config, int)
    wrong = c["family"][cfg] != inst.saas["family"].to_numpy(object)
    for v in np.flatnonzero(wrong):
        out.append(Violation("wrong_family", saas_ids[v], 0, 0, f"SaaS VM {saas_ids[v]} runs {c['config_id'][cfg[v]]} "
                                                                  f"of another model family"))
    slow = over_slo(inst, cfg, plan.clock(len(cfg))) & (load > TOL_UNITS)
    for v in np.flatnonzero(slow):
        out.append(Violation("slo_latency", saas_ids[v], sp["tbt_ms"][v], c["slo_tbt_ms"][cfg[v]],
                             f"SaaS VM {saas_ids[v]} ({c['config_id'][cfg[v]]} at power level "
                             f"{plan.clock(len(cfg))[v]:.2f}) has {sp['tbt_ms'][v]:.0f} ms between tokens > "
                             f"its SLO {c['slo_tbt_ms'][cfg[v]]:.0f} ms"))
    for e in np.flatnonzero(ev.served < ev.demand * (1 - 1e-6) - TOL_UNITS):
        out.append(Violation("unserved_load", str(inst.endpoints[e]), ev.served[e], ev.demand[e],
                             f"endpoint {inst.endpoints[e]} serves {ev.served[e]:.3f} of {ev.demand[e]:.3f} units: SLO missed"))
    i_load = np.asarray(plan.iaas_load, float)
    u0 = inst.iaas["load"].to_numpy(float)
    for v in np.flatnonzero(i_load > u0 + 1e-9):
        out.append(Violation("iaas_raised", iaas_ids[v], i_load[v], u0[v], f"IaaS VM {iaas_ids[v]} is given more load than it has"))
    floor = inst.iaas["floor_load"].to_numpy(float)
    for v in np.flatnonzero(i_load < floor - 1e-7):
        out.append(Violation("iaas_cap_floor", iaas_ids[v], i_load[v], floor[v],
                             f"IaaS VM {iaas_ids[v]} is capped below its GPUs' minimum power limit"))
    return out
