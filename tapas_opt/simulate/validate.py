"""Checks that the simulator is right, without trusting it.

* :func:`check_conservation`: every row's power is the sum of its servers' (idle plus VMs),
  every aisle's airflow the sum of its rows' servers', delivered never above demand, served never
  above demanded, recomputed from the placement and the loads with :mod:`tapas_opt.physics`.
* :func:`routing_lp` solves one step's routing exactly (:mod:`tapas_opt.simulate.routing`,
  without the proximal term), so the fast router's gap to the optimum can be measured and
  :func:`routing_objective` evaluates any split with the engine's physics.
"""

from __future__ import annotations

import numpy as np


def step_inputs(engine, t: int) -> dict:
    """The demand side of step ``t`` as the engine sees it before routing (one column)."""
    sc, s, i, k = engine.sc, engine.idx_s, engine.idx_i, engine.k
    ts = slice(t, t + 1)
    arrived = engine.arrival[:, None] <= t
    present = arrived & engine.placed[:, None]
    u = np.zeros((engine.V, 1))
    busy = k[:, None].copy()
    u[i] = np.nan_to_num(sc.vm_load[i, ts]) * present[i]
    D = sc.endpoint_load[:, ts] * (engine.M_ep @ (k[s, None] * arrived[s]))
    cap = k[s, None] * engine.c_cap[engine.default_cfg][:, None] * present[s]
    return {"ts": ts, "present": present, "u": u, "busy": busy, "D": D, "cap": cap}


def routing_objective(engine, load: np.ndarray, inp: dict) -> float:
    """max row / limit + max aisle / limit + max hottest-GPU / limit for SaaS loads [Vs, 1]."""
    u = inp["u"].copy()
    s = engine.idx_s
    u[s] = np.divide(load, engine.k[s, None], out=np.zeros_like(load), where=engine.k[s, None] > 0)
    ph = engine.physics(u, inp["busy"], inp["present"], inp["ts"])
    sc, ts = engine.sc, inp["ts"]
    return float((ph["row_kw"] / sc.row_limit_kw[:, ts]).max() + (ph["aisle_cfm"] / sc.aisle_limit_cfm[:, ts]).max()
                 + ph["temp"].max() / engine.t_lim)


def routing_lp_args(engine, t: int) -> tuple:
    """The arguments of :meth:`~tapas_opt.simulate.routing.RoutingLP.solve` for step ``t``
    (without a previous load): the engine's own demand, and the room with its SaaS VMs idle."""
    inp = step_inputs(engine, t)
    s = engine.idx_s
    u0 = inp["u"].copy()
    u0[s] = 0.0
    ph0 = engine.physics(u0, inp["busy"], inp["present"], inp["ts"])
    return (t, inp["D"][:, 0], inp["present"][s, 0], inp["cap"][:, 0], ph0["row_kw"][:, 0],
            ph0["aisle_cfm"][:, 0], ph0["temp"][:, 0])


def routing_lp(engine, t: int) -> tuple[np.ndarray, float]:
    """Exact routing of step ``t`` from the engine's own demand (for comparisons)."""
    from tapas_opt.simulate.routing import RoutingLP

    load, obj = RoutingLP(engine, stick=0.0).solve(*routing_lp_args(engine, t))
    return load[:, None], obj


def check_conservation(engine, result, atol: float = 1e-6) -> list[str]:
    """Rebuild every server's power and airflow from the per-VM loads (``keep_vm_loads``) with
    :mod:`tapas_opt.physics`, sum servers into rows and rows into aisles, and compare with what
    the engine reported; check that delivered never exceeds demand. Returns the problems found
    (empty when everything is conserved)."""
    if result.vm_load is None:
        raise ValueError("run the engine with EngineOptions(keep_vm_loads=True)")
    inst, p = engine.inst, engine.params
    problems = []
    n_t = result.vm_load.shape[1]
    for label, load, rows_reported, aisles_reported in (
            ("demand", result.vm_load, result.row_kw, result.aisle_cfm),
            ("delivered", result.vm_load_delivered, result.row_kw_delivered, result.aisle_cfm_delivered)):
        server_kw = np.repeat(p.idle_kw[:, None], n_t, axis=1)
        server_cfm = np.repeat(p.idle_cfm[:, None], n_t, axis=1)
        placed = np.flatnonzero(engine.placed)
        srv = engine.server[placed]
        np.add.at(server_kw, srv, p.vm_power_kw(load[placed], result.vm_busy_gpus[placed], srv[:, None]))
        np.add.at(server_cfm, srv, p.vm_airflow_cfm(load[placed], result.vm_busy_gpus[placed], srv[:, None]))
        rows = np.zeros_like(rows_reported)
        np.add.at(rows, inst.server_row, server_kw)
        aisles = np.zeros_like(aisles_reported)
        np.add.at(aisles, inst.row_aisle[inst.server_row], server_cfm)
        if not np.allclose(rows, rows_reported, atol=atol, rtol=1e-9):
            worst = np.abs(rows - rows_reported).max()
            problems.append(f"{label} row power differs from the sum of its servers by up to {worst:.3g} kW")
        if not np.allclose(aisles, aisles_reported, atol=atol, rtol=1e-9):
            worst = np.abs(aisles - aisles_reported).max()
            problems.append(f"{label} aisle airflow differs from the sum of its servers by up to {worst:.3g} CFM")
    if (result.row_kw_delivered > result.row_kw + atol).any():
        problems.append("delivered row power above demand")
    if (result.vm_load_delivered > result.vm_load + atol).any():
        problems.append("a VM delivers more load than it demands")
    st = result.step
    if (st["saas_served"] > st["saas_demand"] + atol).any():
        problems.append("SaaS served above demand")
    if (st["iaas_delivered"] > st["iaas_demand"] + atol).any():
        problems.append("IaaS delivered above demand")
    over = result.row_kw_delivered > result.row_limit_kw * (1 + 1e-6)
    if (over & ~result.row_over_after_cap).any():
        problems.append("a row is over its limit after capping without being flagged")
    return problems
