"""The reconfiguration model (PuLP, CBC): which configuration each SaaS VM runs and how much of
its endpoint's load it serves, so that every limit holds after the event at the least quality
loss. The maths is in models/formulation-reconfiguration.md.

Identical SaaS VMs (same endpoint, row, size, current configuration, server hardware and
thermal headroom bucket) form a *group*. A *unit* is what a VM must run as a whole: one
configuration, or, where a class's GPU power levels follow one power law (the bundled
catalogue), the whole class, since any level in between is a real GPU power cap or clock
(:func:`tapas_opt.reconfig.catalogue.add_power_levels`). The model decides how many VMs of each
group run each unit (integer ``n[g, u]``) and the load the group serves in each configuration
(``l[g, c]``). Each constraint family is one function below whose docstring states the rule;
every objective term is returned as (variables, coefficients) under a name so that the summary
reports each one.

The same code builds the LP relaxation (counts continuous; the lower bound) and the MILP
(counts integral). The integral plan is what the CLI writes.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import pulp

from tapas_opt.reconfig.instance import ReconfigInstance
from tapas_opt.reconfig.plan import ReconfigPlan

EPS = 1e-9
TIME_LIMIT_SHARE = 0.98
"""An integral solve that ran this share of ``time_limit_s`` or more was stopped by the clock."""
LIMIT_MARGIN = 1e-5
"""The model keeps rows and aisles this share below their limits, and VMs 10x this share below
their capacity: room for the catalogue's 5-digit rounding (power levels fit their power law to
~1e-5) and CBC's tolerances, so the solver-free checker (no margin) accepts the plan."""


# ---- groups and candidate configurations ---------------------------------------------------

@dataclass(frozen=True, eq=False)
class Groups:
    """Identical SaaS VMs, and the configurations worth offering each group."""

    members: list[np.ndarray]
    endpoint: np.ndarray
    row: np.ndarray
    aisle: np.ndarray
    gpus: np.ndarray
    kw_unit: np.ndarray
    cfm_unit: np.ndarray
    load_limit: np.ndarray
    current: np.ndarray
    candidates: list[np.ndarray]

    @cached_property
    def count(self) -> np.ndarray:
        return np.array([len(m) for m in self.members], dtype=int)

    def __len__(self) -> int:
        return len(self.members)


def config_costs(instance: ReconfigInstance, current: int, family_rows: np.ndarray) -> dict[str, np.ndarray]:
    """Per-configuration criteria of a VM whose current configuration is ``current``: everything
    the objective and the capacity depend on (lower is better for every entry)."""
    c = instance.cfg
    rows = family_rows
    reload = c["reload_key"][rows] != c["reload_key"][current]
    return {
        "energy": c["energy_ratio"][rows],
        "neg_capacity": -np.minimum(c["capacity_ratio"][rows], c["active_share"][rows] / c["energy_ratio"][rows]),
        "gpu_load_per_unit": c["energy_ratio"][rows] / c["active_share"][rows],
        "quality_loss": 1.0 - c["quality"][rows],
        "slowdown": np.maximum(0.0, c["tbt_ms"][rows] / c["tbt_ms"][current] - 1.0),
        "reload": reload.astype(float),
        "change": ((rows != current) & ~reload).astype(float),
    }


def pareto_configs(instance: ReconfigInstance, current: int) -> np.ndarray:
    """Configurations of the family of ``current`` that no other one dominates.

    A configuration is dropped when another is at least as good on every criterion of
    :func:`config_costs` and better on one: whatever the load, headroom or weights, the other
    serves the same load with no more power, airflow, GPU heat, quality loss, slow-down or
    reconfiguration. Configurations breaking their SLO are never offered (the current one is
    always kept, so a VM can stay as it is).
    """
    c = instance.cfg
    family = c["family"][current]
    rows = instance.catalogue.rows_of(family)
    rows = rows[c["slo_ok"][rows].astype(bool) | (rows == current)]
    costs = np.column_stack(list(config_costs(instance, current, rows).values()))
    costs = np.round(costs, 12)
    order = np.lexsort(costs.T[::-1])
    kept: list[int] = []
    for i in order:
        ci = costs[i]
        if any(np.all(costs[j] <= ci) for j in kept):
            continue
        kept.append(i)
    return np.sort(rows[kept])


def build_groups(instance: ReconfigInstance) -> Groups:
    """Group identical SaaS VMs (see the module docstring); the thermal headroom is bucketed down
    to ``options.temp_bucket`` so a group's limit never exceeds any member's."""
    s = instance.saas
    if len(s) == 0:
        empty = np.zeros(0)
        return Groups([], empty.astype(int), empty.astype(int), empty.astype(int), empty, empty, empty, empty,
                      empty.astype(int), [])
    bucket = instance.options.temp_bucket
    limit = np.minimum(s["gpu_load_limit"].to_numpy(float), 1.0)
    limit_b = np.where(limit >= 1.0, 1.0, np.floor(limit / bucket) * bucket)
    keys = pd.DataFrame({
        "ep": instance.saas_endpoint_idx, "row": s["row"].to_numpy(int), "gpus": s["gpus"].to_numpy(int),
        "cur": s["current"].to_numpy(int), "kw": np.round(s["kw_unit"].to_numpy(float), 9),
        "cfm": np.round(s["cfm_unit"].to_numpy(float), 6), "lim": np.round(limit_b, 9)})
    codes, uniques = pd.factorize(pd.MultiIndex.from_frame(keys), sort=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    members = [order[bounds[g]:bounds[g + 1]] for g in range(len(uniques))]
    first = np.array([m[0] for m in members])
    cur = s["current"].to_numpy(int)[first]
    cache: dict[int, np.ndarray] = {}
    candidates = []
    for c0 in cur:
        if c0 not in cache:
            cache[c0] = pareto_configs(instance, int(c0))
        candidates.append(cache[c0])
    grp_limit = np.array([limit_b[m].min() for m in members])
    return Groups(members, instance.saas_endpoint_idx[first], s["row"].to_numpy(int)[first],
                  s["aisle"].to_numpy(int)[first], s["gpus"].to_numpy(float)[first],
                  s["kw_unit"].to_numpy(float)[first], s["cfm_unit"].to_numpy(float)[first],
                  grp_limit, cur, candidates)


def capacity_units(instance: ReconfigInstance, gpus, configs, load_limit=None) -> np.ndarray:
    """Units of load one VM of ``gpus`` GPUs can serve in each configuration.

    The configuration's throughput under its SLO (``gpus * capacity_ratio``), but never more than
    drives its busy GPUs to their maximum (``gpus * active_share / energy_ratio``) or, if
    ``load_limit`` is given, past the hottest-GPU load its server allows."""
    c = instance.cfg
    e, t, a = c["energy_ratio"][configs], c["capacity_ratio"][configs], c["active_share"][configs]
    per_gpu = np.minimum(t, a / e)
    if load_limit is not None:
        per_gpu = np.minimum(per_gpu, a * np.maximum(np.minimum(load_limit, 1.0), 0.0) / e)
    return np.asarray(gpus, float) * per_gpu


# ---- the model ------------------------------------------------------------------------------

@dataclass(eq=False)
class ReconfigModel:
    """The PuLP problem with its variables, so that constraint families can be added and tested
    one at a time, and every objective term is kept by name.

    ``form="full"``: counts ``n[g,u]`` per unit (integer, or continuous if ``relax``) and loads
    ``l[g,c]`` with ``sum_{c in u} l[g,c] / cap[g,c] <= n[g,u]``. ``form="compact"``: the LP
    relaxation with the counts eliminated: ``n[g,u]`` is the expression ``sum_{c in u} l[g,c] /
    cap[g,c]`` (the fewest VMs that carry the load) and the group's VMs that carry nothing stay
    as they are at no cost, so the assignment becomes ``sum_c l[g,c] / cap[g,c] <= |g|``. Both
    relaxations have the same optimum; the compact one has one row per group.
    """

    instance: ReconfigInstance
    groups: Groups
    pairs: list[tuple[int, int]]
    form: str = "full"
    relax: bool = False
    fixed_counts: np.ndarray | None = None
    problem: pulp.LpProblem = field(init=False)
    n: list = field(init=False)
    load: list = field(init=False)
    iaas_shed: list = field(init=False)
    unserved: list = field(init=False)
    row_over: list = field(init=False)
    aisle_over: list = field(init=False)
    temp_over: list = field(init=False)
    terms: dict[str, tuple[list, list]] = field(init=False, default_factory=dict)
    stopped_by: str | None = field(init=False, default=None)
    """After an integral solve: ``"gap"`` (finished), ``"nodes"`` or ``"time"`` (a limit)."""

    def __post_init__(self) -> None:
        inst, g = self.instance, self.groups
        if self.form not in ("full", "compact"):
            raise ValueError(f"form must be 'full' or 'compact', not {self.form!r}")
        self.problem = pulp.LpProblem("tapas_opt_reconfigure", pulp.LpMinimize)
        counts = g.count
        self.load = [self._var(f"l_g{gi}_c{c}", 0) for gi, c in self.pairs]
        if self.form == "full":
            cat = pulp.LpContinuous if self.relax else pulp.LpInteger
            self.n = [self._var(f"n_g{gi}_u{k}", 0, int(counts[gi]), cat) for k, (gi, _) in enumerate(self.units)]
            if self.fixed_counts is not None:
                for var, value in zip(self.n, self.fixed_counts):
                    var.lowBound = var.upBound = float(value)
        else:
            self.n = []
        iaas = inst.iaas
        room = np.maximum(0.0, iaas["load"].to_numpy(float) - iaas["floor_load"].to_numpy(float)) * iaas["gpus"].to_numpy(float)
        self.iaas_shed = [self._var(f"x_iaas{i}", 0, float(room[i])) for i in range(len(iaas))]
        self.unserved = [self._var(f"u_e{e}", 0) for e in range(len(inst.endpoints))]
        self.row_over = [self._var(f"o_row{r}", 0) for r in range(inst.n_rows)]
        self.aisle_over = [self._var(f"o_aisle{a}", 0) for a in range(inst.n_aisles)]
        self.temp_over = [self._var(f"o_temp{i}", 0) for i in range(len(iaas))]

    # -- helpers --
    def _var(self, name: str, lb: float, ub: float | None = None, cat: str = pulp.LpContinuous):
        return self.problem.add_variable(name, lb, ub, cat)

    @cached_property
    def pair_group(self) -> np.ndarray:
        return np.array([p[0] for p in self.pairs], dtype=int)

    @cached_property
    def pair_config(self) -> np.ndarray:
        return np.array([p[1] for p in self.pairs], dtype=int)

    @cached_property
    def _units(self) -> tuple[list[tuple[int, str]], np.ndarray]:
        keys = self.instance.cfg["unit_key"]
        index: dict[tuple[int, str], int] = {}
        pair_unit = np.empty(len(self.pairs), dtype=int)
        for k, (gi, c) in enumerate(self.pairs):
            pair_unit[k] = index.setdefault((gi, str(keys[c])), len(index))
        return list(index), pair_unit

    @property
    def units(self) -> list[tuple[int, str]]:
        """(group, unit key) of every count variable."""
        return self._units[0]

    @property
    def pair_unit(self) -> np.ndarray:
        """Unit of each pair."""
        return self._units[1]

    @cached_property
    def unit_group(self) -> np.ndarray:
        return np.array([u[0] for u in self.units], dtype=int)

    @cached_property
    def unit_cost(self) -> np.ndarray:
        """Reconfiguration cost of one VM in each unit: a reload if the model, precision or TP
        differ from the group's current configuration, an online change if only the batch
        does, nothing in the current unit."""
        c, o, g = self.instance.cfg, self.instance.options, self.groups
        cost = np.zeros(len(self.units))
        for k, (gi, key) in enumerate(self.units):
            cur = g.current[gi]
            first = self.pair_config[np.flatnonzero(self.pair_unit == k)[0]]
            if c["reload_key"][first] != c["reload_key"][cur]:
                cost[k] = o.w_reload
            elif key != c["unit_key"][cur]:
                cost[k] = o.w_change
        return cost

    @cached_property
    def capacity(self) -> np.ndarray:
        """Units one VM of the pair's group serves in the pair's configuration (throughput, GPU
        maximum), less the margin."""
        cap = capacity_units(self.instance, self.groups.gpus[self.pair_group], self.pair_config)
        return cap * (1 - 10 * LIMIT_MARGIN)

    @cached_property
    def capacity_hot(self) -> np.ndarray:
        """As :attr:`capacity`, also within the group's hottest-GPU load limit."""
        g = self.groups
        cap = capacity_units(self.instance, g.gpus[self.pair_group], self.pair_config, g.load_limit[self.pair_group])
        return cap * (1 - 10 * LIMIT_MARGIN)

    @cached_property
    def per_unit_pct(self) -> float:
        """Percent of the room's SaaS load that one unit of load is."""
        return 100.0 / max(self.instance.total_demand, 1.0)

    def vm_share(self, k: int, hot: bool = True) -> list[tuple]:
        """``l[g,c] / cap[g,c]``: the VMs pair ``k``'s load occupies, as (variable, coefficient)."""
        cap = (self.capacity_hot if hot else self.capacity)[k]
        return [(self.load[k], 1.0 / cap)] if cap > EPS else []

    def _add(self, coefs: list[tuple], sense: str, rhs: float, name: str) -> None:
        expr = pulp.LpAffineExpression(coefs)
        if sense == "<=":
            self.problem += (expr <= rhs, name)
        elif sense == ">=":
            self.problem += (expr >= rhs, name)
        else:
            self.problem += (expr == rhs, name)

    # -- constraint families --
    def add_vm_assignment(self) -> None:
        """Every SaaS VM runs exactly one unit: ``sum_u n[g,u] = |g|`` (compact form:
        ``sum_c l[g,c] / cap[g,c] <= |g|``, the VMs left over stay as they are)."""
        by_group: dict[int, list] = {}
        if self.form == "full":
            for k, gi in enumerate(self.unit_group):
                by_group.setdefault(int(gi), []).append((self.n[k], 1.0))
        else:
            for k, gi in enumerate(self.pair_group):
                by_group.setdefault(int(gi), []).extend(self.vm_share(k))
        sense = "==" if self.form == "full" else "<="
        for gi, coefs in by_group.items():
            if coefs:
                self._add(coefs, sense, float(self.groups.count[gi]), f"assign_g{gi}")

    def add_vm_capacity(self) -> None:
        """A unit's VMs serve at most their throughput under the SLO, never driving busy GPUs past
        their maximum: ``sum_{c in u} l[g,c] / cap[g,c] <= n[g,u]`` (:func:`capacity_units`;
        a class of power levels blends them, which a level in between realises). Implied by
        the assignment row in the compact form; pairs that cannot carry load are fixed at 0."""
        for k in range(len(self.pairs)):
            if self.capacity_hot[k] <= EPS:
                self.load[k].upBound = 0.0
        if self.form != "full":
            return
        by_unit: dict[int, list] = {}
        for k, u in enumerate(self.pair_unit):
            by_unit.setdefault(int(u), []).extend(self.vm_share(k, hot=False))
        for u, coefs in by_unit.items():
            if coefs:
                self._add(coefs + [(self.n[u], -1.0)], "<=", 0.0, f"capacity_g{self.units[u][0]}_u{u}")

    def add_gpu_temperature_limit(self) -> None:
        """Hottest-GPU temperature stays at the limit (physics: linear in GPU power).

        SaaS: a busy GPU's load ``e_c * l / (k * a_c)`` per VM must not exceed the load limit
        U_g of the group's servers, i.e. ``sum_{c in u} l[g,c] / cap_hot[g,c] <= n[g,u]`` with
        ``cap_hot = k * min(t_c, a_c * U_g / e_c)`` (full form: added for units where U_g binds;
        compact form: part of the assignment row). IaaS: the cap must bring the VM's GPUs down to
        their limit: ``x_i >= k_i * (u_i - U_i) - o_i`` with ``o_i`` the load still too hot
        (penalised like unserved load)."""
        if self.form == "full":
            by_unit: dict[int, list] = {}
            hot_units = set(self.pair_unit[self.capacity_hot < self.capacity - EPS].tolist())
            for k, u in enumerate(self.pair_unit):
                if int(u) in hot_units:
                    by_unit.setdefault(int(u), []).extend(self.vm_share(k))
            for u, coefs in by_unit.items():
                self._add(coefs + [(self.n[u], -1.0)], "<=", 0.0, f"gpu_temp_g{self.units[u][0]}_u{u}")
        iaas = self.instance.iaas
        need = iaas["gpus"].to_numpy(float) * (iaas["load"].to_numpy(float) - iaas["gpu_load_limit"].to_numpy(float))
        for i in np.flatnonzero(need > EPS):
            self._add([(self.iaas_shed[i], 1.0), (self.temp_over[i], 1.0)], ">=", float(need[i]), f"gpu_temp_iaas{i}")

    def add_endpoint_demand(self) -> None:
        """Every endpoint serves its forecast load: ``sum_{g in e, c} l[g,c] + unserved_e = D_e``."""
        by_ep: dict[int, list] = {e: [(self.unserved[e], 1.0)] for e in range(len(self.instance.endpoints))}
        for k, gi in enumerate(self.pair_group):
            by_ep[int(self.groups.endpoint[gi])].append((self.load[k], 1.0))
        for e, coefs in by_ep.items():
            self._add(coefs, "==", float(self.instance.endpoint_demand[e]), f"demand_e{e}")

    def _fixed_iaas(self, kind: str) -> np.ndarray:
        """IaaS power (kW) or airflow (CFM) above idle per row or aisle before any cap."""
        inst = self.instance
        iaas = inst.iaas
        unit = iaas["kw_unit" if kind == "kw" else "cfm_unit"].to_numpy(float)
        value = unit * iaas["gpus"].to_numpy(float) * iaas["load"].to_numpy(float)
        where = iaas["row" if kind == "kw" else "aisle"].to_numpy(int)
        return np.bincount(where, value, minlength=inst.n_rows if kind == "kw" else inst.n_aisles)

    def _limit_rows(self, kind: str) -> None:
        inst, g = self.instance, self.groups
        e = inst.cfg["energy_ratio"]
        if kind == "kw":
            n_sub, limit, base = inst.n_rows, inst.row_limit_kw, inst.idle_row_kw + self._fixed_iaas("kw")
            where_g, unit_g, over, name = g.row, g.kw_unit, self.row_over, "row_power"
            where_i, unit_i = inst.iaas["row"].to_numpy(int), inst.iaas["kw_unit"].to_numpy(float)
        else:
            n_sub, limit, base = inst.n_aisles, inst.aisle_limit_cfm, inst.idle_aisle_cfm + self._fixed_iaas("cfm")
            where_g, unit_g, over, name = g.aisle, g.cfm_unit, self.aisle_over, "aisle_airflow"
            where_i, unit_i = inst.iaas["aisle"].to_numpy(int), inst.iaas["cfm_unit"].to_numpy(float)
        coefs: list[list] = [[(over[r], -1.0)] for r in range(n_sub)]
        for k, (gi, c) in enumerate(self.pairs):
            coefs[int(where_g[gi])].append((self.load[k], float(unit_g[gi] * e[c])))
        for i, x in enumerate(self.iaas_shed):
            coefs[int(where_i[i])].append((x, -float(unit_i[i])))
        for r in range(n_sub):
            self._add(coefs[r], "<=", float(limit[r] * (1 - LIMIT_MARGIN) - base[r]), f"{name}_{r}")

    def add_row_power_limit(self) -> None:
        """Every row's power stays at its (reduced) limit: idle servers + IaaS (less caps) + SaaS
        ``sum kw_unit_g * e_c * l[g,c]`` - ``o_r`` <= limit_r; ``o_r`` (kW still over) is penalised."""
        self._limit_rows("kw")

    def add_aisle_airflow_limit(self) -> None:
        """Every cold aisle's fans pull at most its AHU's (reduced) airflow, same form as the row
        power with CFM per unit; ``o_a`` (CFM still over) is penalised."""
        self._limit_rows("cfm")

    # -- objective terms --
    def objective_terms(self) -> dict[str, tuple[list, list]]:
        """Named objective terms as (variables, coefficients); see ReconfigOptions for weights."""
        inst, o, pct = self.instance, self.instance.options, self.per_unit_pct
        c = inst.cfg
        cur = self.groups.current[self.pair_group]
        cfgs = self.pair_config
        quality = (1.0 - c["quality"][cfgs]) * pct * o.w_quality
        slowdown = np.maximum(0.0, c["tbt_ms"][cfgs] / c["tbt_ms"][cur] - 1.0) * pct * o.w_perf
        vm_vars, vm_coefs = [], []
        if self.form == "full":
            for k in np.flatnonzero(self.unit_cost > 0):
                vm_vars.append(self.n[k])
                vm_coefs.append(float(self.unit_cost[k]))
        else:
            for k in np.flatnonzero(self.unit_cost[self.pair_unit] > 0):
                for var, coef in self.vm_share(int(k)):
                    vm_vars.append(var)
                    vm_coefs.append(coef * float(self.unit_cost[self.pair_unit[k]]))
        # a different power level of the current unit is an online change too (its load share)
        level = (c["unit_key"][cfgs] == c["unit_key"][cur]) & (cfgs != cur)
        for k in np.flatnonzero(level):
            for var, coef in self.vm_share(int(k)):
                vm_vars.append(var)
                vm_coefs.append(coef * o.w_change)
        kw_ref = float(np.median(inst.saas["kw_unit"])) if len(inst.saas) else 1.0
        cfm_ref = float(np.median(inst.saas["cfm_unit"])) if len(inst.saas) else 1.0
        big = o.w_unserved * pct
        return {
            "quality_loss": (self.load, list(quality)),
            "slowdown": (self.load, list(slowdown)),
            "reconfiguration": (vm_vars, vm_coefs),
            "iaas_capping": (self.iaas_shed, [o.w_iaas * pct] * len(self.iaas_shed)),
            "unserved_load": (self.unserved, [big] * len(self.unserved)),
            "row_power_over": (self.row_over, [big / kw_ref] * len(self.row_over)),
            "aisle_airflow_over": (self.aisle_over, [big / cfm_ref] * len(self.aisle_over)),
            "gpu_temp_over": (self.temp_over, [big] * len(self.temp_over)),
        }

    def set_objective(self) -> None:
        self.terms = self.objective_terms()
        total: dict = {}
        for vs, ws in self.terms.values():
            for v, w in zip(vs, ws):
                if w != 0.0:
                    total[v] = total.get(v, 0.0) + float(w)
        self.problem.setObjective(pulp.LpAffineExpression(list(total.items())))

    def build(self) -> "ReconfigModel":
        """All constraint families and the objective."""
        self.add_vm_assignment()
        self.add_vm_capacity()
        self.add_gpu_temperature_limit()
        self.add_endpoint_demand()
        self.add_row_power_limit()
        self.add_aisle_airflow_limit()
        self.set_objective()
        return self

    def warm_start(self, counts: np.ndarray, loads: np.ndarray) -> None:
        """Initial values for the integral solve (an integral plan found by diving)."""
        for var, value in zip(self.n, counts):
            var.setInitialValue(float(round(value)))
        for var, value in zip(self.load, loads):
            lo = var.lowBound if var.lowBound is not None else -np.inf
            hi = var.upBound if var.upBound is not None else np.inf
            var.setInitialValue(float(min(max(value, lo), hi)))

    def solve(self, warm: bool = False) -> tuple[str, float | None, float]:
        """Solve with CBC; return (status word, objective, wall seconds). An integral solve
        stops at ``options.max_nodes`` (deterministic) or, failing that, at the wall-clock
        safety net; :attr:`stopped_by` records which (or ``"gap"`` when it finished)."""
        o = self.instance.options
        mip = self.form == "full" and not self.relax and self.fixed_counts is None
        with warnings.catch_warnings():  # PuLP 3.3 deprecates the bundled CBC's class name only
            warnings.simplefilter("ignore", DeprecationWarning)
            solver = pulp.PULP_CBC_CMD(msg=False, mip=mip, timeLimit=o.time_limit_s, threads=o.threads,
                                       gapRel=o.mip_gap if mip else None, gapAbs=o.mip_gap_abs if mip else None,
                                       warmStart=warm and mip, maxNodes=int(o.max_nodes) if mip else None)
        start = time.perf_counter()
        self.problem.solve(solver)
        wall = time.perf_counter() - start
        status = pulp.LpStatus[self.problem.status].lower()
        word = {"optimal": "optimal", "not solved": "unknown", "infeasible": "infeasible",
                "unbounded": "unbounded", "undefined": "unknown"}.get(status, status)
        if mip:
            limited = word != "optimal" or self.problem.sol_status == pulp.LpSolutionIntegerFeasible
            self.stopped_by = ("time" if wall >= TIME_LIMIT_SHARE * o.time_limit_s else "nodes") if limited else "gap"
        if word == "optimal" and mip and self.problem.sol_status == pulp.LpSolutionIntegerFeasible:
            word = "feasible"
        obj = pulp.value(self.problem.objective) if word in ("optimal", "feasible") else None
        return word, (float(obj) if obj is not None else (0.0 if word == "optimal" else None)), wall

    def objective_value(self) -> float:
        return float(pulp.value(self.problem.objective) or 0.0)

    def term_values(self) -> dict[str, float]:
        """Value of every named objective term in the current solution."""
        return {name: float(sum((v.varValue or 0.0) * w for v, w in zip(vs, ws))) for name, (vs, ws) in self.terms.items()}

    def load_values(self) -> np.ndarray:
        return np.array([v.varValue or 0.0 for v in self.load])

    def count_values(self) -> np.ndarray:
        """``n[g,u]`` per unit of the solution (compact form: ``sum l / cap_hot``)."""
        if self.form == "full":
            return np.array([v.varValue or 0.0 for v in self.n])
        cap = self.capacity_hot
        share = np.where(cap > EPS, self.load_values() / np.maximum(cap, EPS), 0.0)
        return np.bincount(self.pair_unit, share, minlength=len(self.units))

    def reduced_costs(self) -> np.ndarray:
        """Reduced cost of every load variable after an LP solve (0 where CBC gave none)."""
        return np.array([v.dj if v.dj is not None else 0.0 for v in self.load])

    def to_plan(self, policy: str = "optimal") -> ReconfigPlan:
        """Per-VM configurations, power levels and loads from integral unit counts (members in
        order). A class's VMs run its level-1.0 configuration at the lowest power level that
        carries their load (:func:`realise_level`)."""
        inst, g = self.instance, self.groups
        config = inst.saas["current"].to_numpy(int).copy()
        clock = np.ones(len(inst.saas))
        load = np.zeros(len(inst.saas))
        n_val = self.count_values()
        l_val = self.load_values()
        for gi, members in enumerate(g.members):
            us = np.flatnonzero(self.unit_group == gi)
            us = us[np.argsort(-n_val[us], kind="stable")]
            pos = 0
            for u in us:
                cnt = int(np.floor(n_val[u] + 1e-6))
                if cnt <= 0:
                    continue
                ks = np.flatnonzero(self.pair_unit == u)
                vms = members[pos:pos + cnt]
                total = float(l_val[ks].sum())
                cfg, level = realise_level(inst, self.pair_config[ks], l_val[ks], g.gpus[gi], g.load_limit[gi], cnt)
                config[vms], clock[vms], load[vms] = cfg, level, total / cnt
                pos += cnt
        gpus = np.maximum(inst.iaas["gpus"].to_numpy(float), 1.0)
        shed = np.array([x.varValue or 0.0 for x in self.iaas_shed])
        iaas_load = np.maximum(inst.iaas["load"].to_numpy(float) - shed / gpus, inst.iaas["floor_load"].to_numpy(float))
        return ReconfigPlan(policy=policy, saas_config=config, saas_load=load, iaas_load=iaas_load, saas_clock=clock)


def realise_level(instance: ReconfigInstance, configs: np.ndarray, loads: np.ndarray, gpus: float,
                  load_limit: float, count: int) -> tuple[int, float]:
    """The configuration and power level that ``count`` VMs of one unit run to serve ``loads``.

    A single configuration runs as it is (level 1 relative to it) unless the unit is a
    continuous class; then the VMs run the class's level-1.0 configuration at the highest
    dynamic power ratio ``k`` whose energy ``e1 * k ** (1 - alpha)`` per unit stays within the
    LP's blend of sampled levels (so rows and aisles get no more power than planned), and no
    higher than the GPU and thermal maximum ``U / d1``. Because throughput ``k ** alpha`` is
    concave, that level still carries the VMs' share; the current level (1) is kept whenever the
    LP kept it."""
    c = instance.cfg
    loads = np.asarray(loads, float)
    first = int(configs[np.argmax(loads)]) if loads.sum() > 0 else int(configs[0])
    single = (loads > 1e-9 * max(loads.sum(), 1e-12)).sum() <= 1
    if single or not c["continuous"][first] or c["level1"][first] < 0:
        return first, 1.0  # one sampled configuration carries it all: run exactly that
    top = int(c["level1"][first])
    alpha = float(c["power_alpha"][top])
    e1 = float(c["energy_ratio"][top])
    # the sampled levels fit the class's power law to ~1e-5 (5 significant digits): stay 1e-4 below
    blend = float((c["energy_ratio"][configs] * loads).sum() / loads.sum()) * (1 - 10 * LIMIT_MARGIN)
    k_energy = (blend / e1) ** (1.0 / (1.0 - alpha)) if blend < e1 else 1.0
    d1 = float(c["gpu_power_ratio"][top])
    k_hi = min(1.0, max(min(load_limit, 1.0), 0.0) / d1) if d1 > 0 else 1.0
    k = min(k_energy, k_hi, 1.0)
    need = (float(loads.sum()) / count / (float(c["capacity_ratio"][top]) * gpus)) ** (1.0 / alpha)
    k = max(k, min(need, k_hi), float(c["min_level"][top]))
    return top, float(min(k, 1.0))


def all_pairs(groups: Groups) -> list[tuple[int, int]]:
    """Every (group, candidate configuration) pair."""
    return [(gi, int(c)) for gi in range(len(groups)) for c in groups.candidates[gi]]


def restricted_pairs(instance: ReconfigInstance, groups: Groups, pairs: list[tuple[int, int]], load: np.ndarray,
                     reduced: np.ndarray, extra: int = 2) -> list[tuple[int, int]]:
    """Columns for the integral solve: per group its current configuration, every candidate of
    every unit the LP loads in *any* group with the same current configuration (what helps one
    VM of a family is a candidate for its siblings when counts must be whole), and the
    ``extra`` others with the lowest reduced cost."""
    unit = instance.cfg["unit_key"]
    used: dict[int, set] = {}
    for k, (gi, c) in enumerate(pairs):
        if load[k] > 1e-7:
            used.setdefault(int(groups.current[gi]), set()).add(unit[c])
    keep = set()
    by_group: dict[int, list[int]] = {}
    for k, (gi, c) in enumerate(pairs):
        by_group.setdefault(gi, []).append(k)
        if c == groups.current[gi] or unit[c] in used.get(int(groups.current[gi]), ()):
            keep.add(k)
    for gi, ks in by_group.items():
        rest = [k for k in ks if k not in keep]
        rest.sort(key=lambda k: (reduced[k], k))
        keep.update(rest[:extra])
    return [pairs[k] for k in sorted(keep)]


def round_counts(model: "ReconfigModel", counts: np.ndarray) -> np.ndarray:
    """Whole VM counts per unit of ``model`` from fractional ones.

    Every unit the LP uses gets its count rounded up while the group has VMs left (a VM
    carrying part of a unit's load is still one VM). When the ceilings exceed the group, VMs are
    taken from the units with the least capacity per VM, so the group keeps as much capacity as
    possible and the re-solved loads can still be served. The group's other VMs stay on its
    current unit."""
    g = model.groups
    c = model.instance.cfg
    cap_unit = np.zeros(len(model.units))
    np.maximum.at(cap_unit, model.pair_unit, model.capacity_hot)
    out = np.zeros(len(model.units))
    for gi in range(len(g)):
        us = np.flatnonzero(model.unit_group == gi)
        if not len(us):
            continue
        n = np.maximum(counts[us], 0.0)
        up = np.where(n > 1e-7, np.ceil(n - 1e-7), 0.0)
        size = g.count[gi]
        while up.sum() > size:
            lost = np.where(up > 0, cap_unit[us] + 1e-6 * (n - (up - 1)).clip(0, 1), np.inf)
            up[int(np.argmin(lost))] -= 1
        cur_key = c["unit_key"][g.current[gi]]
        cur = [i for i, u in enumerate(us) if model.units[u][1] == cur_key]
        if not cur:
            raise ValueError(f"group {gi}: its current configuration is not among the pairs")
        up[cur[0]] += size - up.sum()
        out[us] = up
    return out


def dive(instance: ReconfigInstance, groups: Groups, pairs: list[tuple[int, int]], share: float = 0.5,
         max_rounds: int = 12, start: dict[tuple[int, str], float] | None = None) -> tuple["ReconfigModel", int]:
    """An integral solution by LP diving: from the relaxation's counts (``start``: unit counts by
    (group, unit key) of an LP already solved, else solved here), fix every group whose counts
    are whole, round (:func:`round_counts`) the ``share`` of the fractional groups with the least
    fractional mass and fix them too, re-solve so the other groups compensate; repeat until
    every group is whole. Returns the final model (integral counts) and the LP solves made."""
    model = ReconfigModel(instance, groups, pairs, form="full", relax=True).build()
    unit_group = model.unit_group
    fixed = np.zeros(len(groups), dtype=bool)
    solves = 0
    if start is not None:
        n = np.array([start.get(u, 0.0) for u in model.units])
    else:
        model.solve()
        solves += 1
        n = model.count_values()
    for rnd in range(1, max_rounds + 1):
        frac = np.abs(n - np.round(n))
        mass = np.bincount(unit_group, frac, minlength=len(groups))
        whole = (mass < 1e-6) & ~fixed
        todo = np.flatnonzero((mass >= 1e-6) & ~fixed)
        counts = round_counts(model, n)  # whole groups: their counts, idle VMs on the current unit
        _fix(model, np.flatnonzero(whole), counts)
        fixed |= whole
        if len(todo):
            take = todo[np.argsort(mass[todo], kind="stable")]
            take = take if rnd == max_rounds else take[:max(1, int(np.ceil(share * len(todo))))]
            _fix(model, take, counts)
            fixed[take] = True
        status, _, _ = model.solve()
        solves += 1
        if status != "optimal":
            raise RuntimeError(f"LP diving: the relaxation with fixed counts is {status} (a bug: slacks keep it feasible)")
        if fixed.all():
            break
        n = model.count_values()
    return model, solves


def _fix(model: "ReconfigModel", group_ids: np.ndarray, counts: np.ndarray) -> None:
    """Fix the unit counts of these groups (bounds of a relaxed full model)."""
    for k in np.flatnonzero(np.isin(model.unit_group, group_ids)):
        model.n[k].lowBound = model.n[k].upBound = float(counts[k])


@dataclass
class OptimalResult:
    """The integral plan, the LP relaxation's bound and how long each step took."""

    plan: ReconfigPlan
    status: str
    objective: float | None
    lp_objective: float | None
    terms: dict[str, float]
    lp_terms: dict[str, float]
    n_groups: int
    n_pairs: int
    n_pairs_integral: int
    method: str
    build_s: float
    lp_s: float
    mip_s: float
    polish_stopped_by: str | None = None
    """How the polish ended (:attr:`ReconfigModel.stopped_by`); None without a polish."""

    @property
    def gap(self) -> float | None:
        """Integral objective over the LP bound, minus 1 (0.01 = 1 %); None if either is missing
        or the bound is zero (then :attr:`gap_abs` is the measure)."""
        if self.objective is None or self.lp_objective is None or abs(self.lp_objective) < 1e-9:
            return None
        return (self.objective - self.lp_objective) / abs(self.lp_objective)

    @property
    def gap_abs(self) -> float | None:
        if self.objective is None or self.lp_objective is None:
            return None
        return self.objective - self.lp_objective

    @property
    def solve_s(self) -> float:
        return self.build_s + self.lp_s + self.mip_s


def solve_optimal(instance: ReconfigInstance, method: str = "restricted", improve: bool = True) -> OptimalResult:
    """LP relaxation (lower bound) and integral solve of the reconfiguration model.

    ``method="restricted"`` (default):

    1. the compact LP over every candidate configuration (the bound);
    2. an integral plan by LP diving (:func:`dive`) over the columns :func:`restricted_pairs`
       keeps: every unit the LP loads, the current configuration and the next best by reduced
       cost;
    3. if ``improve``, the integral model (CBC branch and bound) over the same columns,
       warm-started from step 2, within ``options.max_nodes`` branch-and-bound nodes (the
       wall-clock ``options.time_limit_s`` is a safety net only); the better of steps 2 and 3
       is the plan.

    ``method="full"``: the integral model over every candidate column (exact up to the MIP gap;
    for tests and small rooms).
    """
    if method not in ("restricted", "full"):
        raise ValueError(f"method must be 'restricted' or 'full', not {method!r}")
    t0 = time.perf_counter()
    groups = build_groups(instance)
    pairs = all_pairs(groups)
    build_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    lp = ReconfigModel(instance, groups, pairs, form="compact").build()
    _, lp_obj, _ = lp.solve()
    lp_terms = lp.term_values() if lp_obj is not None else {}
    lp_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    best, status, stopped_by = None, "unknown", None
    int_pairs = pairs
    if method == "restricted" and lp_obj is not None:
        int_pairs = restricted_pairs(instance, groups, pairs, lp.load_values(), lp.reduced_costs())
        start = dict(zip(lp.units, lp.count_values()))
        dived, _ = dive(instance, groups, int_pairs, share=instance.options.dive_share, start=start)
        best, status = (dived, dived.objective_value()), "dived"
    if (improve and instance.options.max_nodes > 0) or best is None:
        mip = ReconfigModel(instance, groups, int_pairs, form="full").build()
        if best is not None:
            mip.warm_start(best[0].count_values(), best[0].load_values())
        word, obj, _ = mip.solve(warm=best is not None)
        stopped_by = mip.stopped_by
        if obj is not None and (best is None or obj < best[1] - 1e-9):
            best, status = (mip, obj), word
        elif best is not None and word == "optimal":
            status = "optimal"
    mip_s = time.perf_counter() - t2
    model, obj = best if best is not None else (None, None)
    plan = model.to_plan("optimal") if model is not None else ReconfigPlan.unchanged(instance, "optimal")
    return OptimalResult(plan, status, obj, lp_obj, model.term_values() if model is not None else {}, lp_terms,
                         len(groups), len(pairs), len(int_pairs), method, build_s, lp_s, mip_s, stopped_by)
