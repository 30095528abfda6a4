"""The routing LP of the ``tapas`` router, built once per run and re-solved every step.

Per step ``t``, with SaaS loads ``l_v`` (units: one GPU of the default configuration at full
load), the objective of the second step of the reconfiguration engineer's routing LP
(``tapas_opt.reconfig.routing.solve_routing_slot``). Its first step, leaving load unserved
rather than break a limit, has no place here: the simulator replays the requests that arrive,
and a row over its limit is power-capped (the engine's step 5), which is what it measures::

    minimise   Z_row + Z_aisle + Z_temp + eps * Z_saas + stick * sum_v |l_v - prev_v|
               + 1e4 * sum_e short_e
    subject to sum_{v in e} l_v + short_e = D_e                         every endpoint
               (P0_r + sum_{v in r} kw_v l_v) / P_r^max   <= Z_row        every row
               (Q0_a + sum_{v in a} cfm_v l_v) / Q_a^max  <= Z_aisle      every aisle
               (T0_v + dT_v l_v) / T^max                  <= Z_saas       every SaaS VM
               Z_saas                                     <= Z_temp
               max over other VMs of T / T^max            <= Z_temp
               0 <= l_v <= cap_v   (0 for VMs not present)

``P0``, ``Q0``, ``T0``: rows, aisles and hottest GPUs with the SaaS VMs idle; ``kw_v``,
``cfm_v``, ``dT_v``: what one unit adds (chords of :mod:`tapas_opt.physics`). ``Z_temp`` is the
room's hottest GPU; when a VM the router cannot move (IaaS) sets it, every SaaS VM could run up
to it at no cost, so ``Z_saas``, the hottest SaaS GPU, gets a small weight of its own
(``eps`` = 0.01: among splits with the same peaks it keeps SaaS GPUs as cool as it can, and it
gives up at most a hundredth of a point of row power per point of SaaS temperature, both as
shares of their limits). The proximal term (1e-5 per unit) picks, among (nearly) optimal
splits, the one that moves least from the previous step. The model's structure does not change
between steps, only bounds, so GLOP re-solves from the previous basis: with the dual simplex
and without presolve (:data:`GLOP_PARAMETERS`), as after any change of bounds alone.
"""

from __future__ import annotations

import numpy as np
from ortools.linear_solver import pywraplp

UNSERVED_COST = 1e4
#: Weight of the hottest SaaS GPU beside the room's hottest GPU (see the module docstring).
SAAS_TEMP_WEIGHT = 0.01
GLOP_PARAMETERS = "use_dual_simplex: true use_preprocessing: false"
"""Re-solve from the previous step's basis. Only bounds change between steps (demand, loads,
temperatures, the proximal anchor), so the last optimal basis stays dual feasible and the dual
simplex starts from it; presolve would rewrite the model and lose that basis. On the
1,000-server week (488 SaaS VMs, 2,016 steps) the router's time fell from 41 s to 23.5 s with
these two settings, GLOP's own share to 16 s (BENCHMARKS.md)."""


class RoutingLP:
    """The routing LP of one engine (see the module docstring)."""

    def __init__(self, engine, stick: float = 1e-5):
        self.engine = engine
        s = engine.idx_s
        self.n = len(s)
        kw_u, cfm_u, t_u = engine._unit_effects()
        solver = pywraplp.Solver.CreateSolver("GLOP")
        if not solver.SetSolverSpecificParametersAsString(GLOP_PARAMETERS):
            raise RuntimeError(f"GLOP rejected its parameters {GLOP_PARAMETERS!r}")
        self.solver = solver
        inf = self.inf = solver.infinity()
        self.l = [solver.NumVar(0.0, 0.0, f"l_{v}") for v in range(self.n)]
        self.zr, self.za, self.zt = (solver.NumVar(0.0, inf, n) for n in ("z_row", "z_aisle", "z_temp"))
        self.zs = solver.NumVar(0.0, inf, "z_saas_temp")
        obj = solver.Objective()
        for z in (self.zr, self.za, self.zt):
            obj.SetCoefficient(z, 1.0)
        obj.SetCoefficient(self.zs, SAAS_TEMP_WEIGHT)
        below = solver.Constraint(-inf, 0.0, "saas_temp_below_room")  # Z_saas <= Z_temp
        below.SetCoefficient(self.zs, 1.0)
        below.SetCoefficient(self.zt, -1.0)
        self.demand = []
        for e in range(engine.E):
            short = solver.NumVar(0.0, inf, f"short_{e}")
            obj.SetCoefficient(short, UNSERVED_COST)
            ct = solver.Constraint(0.0, 0.0, f"demand_{e}")
            ct.SetCoefficient(short, 1.0)
            for v in np.flatnonzero(engine.ep == e):
                ct.SetCoefficient(self.l[v], 1.0)
            self.demand.append(ct)
        row_s, aisle_s = engine.row_v[s], engine.aisle_v[s]
        self.kw_u, self.cfm_u, self.t_u = kw_u, cfm_u, t_u
        self.rows, self.row_lim = [], np.full(engine.R, np.nan)
        for r in range(engine.R):
            ct = solver.Constraint(-inf, 0.0, f"row_{r}")
            ct.SetCoefficient(self.zr, -1.0)
            self.rows.append((ct, np.flatnonzero((row_s == r) & engine.placed[s])))
        self.aisles, self.aisle_lim = [], np.full(engine.A, np.nan)
        for a in range(engine.A):
            ct = solver.Constraint(-inf, 0.0, f"aisle_{a}")
            ct.SetCoefficient(self.za, -1.0)
            self.aisles.append((ct, np.flatnonzero((aisle_s == a) & engine.placed[s])))
        self.temps = []
        for v in range(self.n):
            ct = solver.Constraint(-inf, inf, f"temp_{v}")
            ct.SetCoefficient(self.zs, -1.0)
            ct.SetCoefficient(self.l[v], float(t_u[v]) / engine.t_lim)
            self.temps.append(ct)
        self.stick = stick
        self.prox = []
        if stick > 0:
            for v in range(self.n):
                d = solver.NumVar(0.0, inf, f"d_{v}")
                obj.SetCoefficient(d, stick)
                c1 = solver.Constraint(-inf, inf, f"dm_{v}")   # d - l >= -prev
                c1.SetCoefficient(d, 1.0)
                c1.SetCoefficient(self.l[v], -1.0)
                c2 = solver.Constraint(-inf, inf, f"dp_{v}")   # d + l >= prev
                c2.SetCoefficient(d, 1.0)
                c2.SetCoefficient(self.l[v], 1.0)
                self.prox.append((c1, c2))
        obj.SetMinimization()

    def _set_limits(self, t: int) -> None:
        """(Re)write the row and aisle coefficients when their limits change (events)."""
        eng, sc = self.engine, self.engine.sc
        row_lim, aisle_lim = sc.row_limit_kw[:, t], sc.aisle_limit_cfm[:, t]
        for r, (ct, members) in enumerate(self.rows):
            if row_lim[r] != self.row_lim[r]:
                for v in members:
                    ct.SetCoefficient(self.l[v], float(self.kw_u[v]) / float(row_lim[r]))
        for a, (ct, members) in enumerate(self.aisles):
            if aisle_lim[a] != self.aisle_lim[a]:
                for v in members:
                    ct.SetCoefficient(self.l[v], float(self.cfm_u[v]) / float(aisle_lim[a]))
        self.row_lim, self.aisle_lim = row_lim.copy(), aisle_lim.copy()
        del eng

    def solve(self, t: int, D, present_s, cap, row_kw0, aisle_cfm0, temp0, prev=None) -> tuple[np.ndarray, float]:
        """Loads [Vs] at step ``t`` and the objective (without the proximal term)."""
        eng = self.engine
        s = eng.idx_s
        self._set_limits(t)
        live = present_s & (cap > 0)
        for v in range(self.n):
            self.l[v].SetBounds(0.0, float(cap[v]) if live[v] else 0.0)
            if live[v]:
                self.temps[v].SetBounds(-self.inf, -float(temp0[s[v]]) / eng.t_lim)
            else:
                self.temps[v].SetBounds(-self.inf, self.inf)
        for e, ct in enumerate(self.demand):
            ct.SetBounds(float(D[e]), float(D[e]))
        for r, (ct, _) in enumerate(self.rows):
            ct.SetBounds(-self.inf, -float(row_kw0[r]) / float(self.row_lim[r]))
        for a, (ct, _) in enumerate(self.aisles):
            ct.SetBounds(-self.inf, -float(aisle_cfm0[a]) / float(self.aisle_lim[a]))
        others = np.ones(eng.V, bool)
        others[s[live]] = False
        fixed = temp0[others]
        top = float(fixed.max()) if fixed.size else -np.inf
        self.zt.SetLb(top / eng.t_lim if np.isfinite(top) else 0.0)
        if self.prox:
            pv = np.zeros(self.n) if prev is None else np.asarray(prev, float)
            use = prev is not None
            for v, (c1, c2) in enumerate(self.prox):
                if use and live[v]:
                    c1.SetBounds(-float(pv[v]), self.inf)
                    c2.SetBounds(float(pv[v]), self.inf)
                else:
                    c1.SetBounds(-self.inf, self.inf)
                    c2.SetBounds(-self.inf, self.inf)
        status = self.solver.Solve()
        if status not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
            raise RuntimeError(f"routing LP at step {t} did not solve (status {status})")
        load = np.array([max(0.0, x.solution_value()) for x in self.l])
        return np.where(live, load, 0.0), self.zr.solution_value() + self.za.solution_value() + self.zt.solution_value()
