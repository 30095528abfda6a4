"""The reconfiguration model (PuLP, CBC): which configuration each SaaS VM runs and how much of
its endpoint's load it serves, so that every limit holds after the event at the least quality
loss. The maths is in models/formulation-reconfiguration.md.

Identical SaaS VMs (same endpoint, row, size, current configuration, server hardware and
thermal headroom bucket) form a *group*; the model decides how many VMs of each group run each
configuration (integer ``n[g, c]``) and the load they serve together (``l[g, c]``). Each
constraint family is one function below whose docstring states the rule; every objective term
is returned as (variables, coefficients) under a name so that the summary reports each one.

The model is solved twice on the same code: as an LP (counts continuous: the relaxation, a
lower bound) and as a MILP (counts integral). The integral plan is what the CLI writes.
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

    @property
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

    ``form="full"``: counts ``n[g,c]`` (integer, or continuous if ``relax``) and loads
    ``l[g,c]`` with ``l <= cap * n``. ``form="compact"``: the LP relaxation with the counts
    eliminated: ``n[g,c]`` is the expression ``l[g,c] / cap[g,c]`` (the fewest VMs that carry
    the load) and the group's VMs that carry nothing stay as they are at no cost, so the
    assignment becomes ``sum_c l[g,c] / cap[g,c] <= |g|``. Both relaxations have the same
    optimum; the compact one has one row per group instead of one per (group, configuration).
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

    def __post_init__(self) -> None:
        inst, g = self.instance, self.groups
        if self.form not in ("full", "compact"):
            raise ValueError(f"form must be 'full' or 'compact', not {self.form!r}")
        self.problem = pulp.LpProblem("tapas_opt_reconfigure", pulp.LpMinimize)
        counts = g.count
        self.load = [self._var(f"l_g{gi}_c{c}", 0) for gi, c in self.pairs]
        if self.form == "full":
            cat = pulp.LpContinuous if self.relax else pulp.LpInteger
            self.n = [self._var(f"n_g{gi}_c{c}", 0, int(counts[gi]), cat) for gi, c in self.pairs]
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
    def capacity(self) -> np.ndarray:
        """Units one VM of the pair's group serves in the pair's configuration (throughput, GPU
        maximum)."""
        return capacity_units(self.instance, self.groups.gpus[self.pair_group], self.pair_config)

    @cached_property
    def capacity_hot(self) -> np.ndarray:
        """As :attr:`capacity`, also within the group's hottest-GPU load limit."""
        g = self.groups
        return capacity_units(self.instance, g.gpus[self.pair_group], self.pair_config, g.load_limit[self.pair_group])

    @cached_property
    def per_unit_pct(self) -> float:
        """Percent of the room's SaaS load that one unit of load is."""
        return 100.0 / max(self.instance.total_demand, 1.0)

    def n_terms(self, k: int, coef: float) -> list[tuple]:
        """``coef * n[g,c]`` as (variable, coefficient) pairs, in either form."""
        if self.form == "full":
            return [(self.n[k], coef)]
        cap = self.capacity_hot[k]
        return [(self.load[k], coef / cap)] if cap > EPS else []

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
        """Every SaaS VM runs exactly one configuration: ``sum_c n[g,c] = |g|`` (compact form:
        ``sum_c l[g,c] / cap[g,c] <= |g|``, the rest stay as they are)."""
        by_group: dict[int, list] = {}
        for k, gi in enumerate(self.pair_group):
            by_group.setdefault(int(gi), []).extend(self.n_terms(k, 1.0))
        sense = "==" if self.form == "full" else "<="
        for gi, coefs in by_group.items():
            if coefs:
                self._add(coefs, sense, float(self.groups.count[gi]), f"assign_g{gi}")

    def add_vm_capacity(self) -> None:
        """A configuration serves at most its throughput under the SLO, and never drives its busy
        GPUs past their maximum: ``l[g,c] <= cap[g,c] * n[g,c]`` (:func:`capacity_units`).
        Implied by the assignment row in the compact form; pairs that cannot carry load there
        are fixed at zero."""
        for k, (gi, c) in enumerate(self.pairs):
            if self.form == "full":
                self._add([(self.load[k], 1.0), (self.n[k], -float(self.capacity[k]))], "<=", 0.0, f"capacity_g{gi}_c{c}")
            elif self.capacity_hot[k] <= EPS:
                self.load[k].upBound = 0.0

    def add_gpu_temperature_limit(self) -> None:
        """Hottest-GPU temperature stays at the limit (physics: linear in GPU power).

        SaaS: a busy GPU's load ``e_c * l[g,c] / (k * a_c * n[g,c])`` must not exceed the load
        limit U_g of the group's servers: ``l[g,c] <= k * a_c * U_g / e_c * n[g,c]`` (full form:
        added where tighter than the capacity; compact form: part of ``cap``). IaaS: the cap
        must bring the VM's GPUs down to their limit: ``x_i >= k_i * (u_i - U_i) - o_i`` with
        ``o_i`` the load still too hot (penalised like unserved load)."""
        if self.form == "full":
            for k in np.flatnonzero(self.capacity_hot < self.capacity - EPS):
                gi, c = self.pairs[k]
                self._add([(self.load[k], 1.0), (self.n[k], -float(self.capacity_hot[k]))], "<=", 0.0,
                          f"gpu_temp_g{gi}_c{c}")
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
            self._add(coefs[r], "<=", float(limit[r] - base[r]), f"{name}_{r}")

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
        reload = (c["reload_key"][cfgs] != c["reload_key"][cur])
        change = (cfgs != cur) & ~reload
        per_vm = reload * o.w_reload + change * o.w_change
        vm_vars, vm_coefs = [], []
        for k in np.flatnonzero(per_vm > 0):
            for var, coef in self.n_terms(int(k), float(per_vm[k])):
                vm_vars.append(var)
                vm_coefs.append(coef)
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
        """Initial values for the integral solve (an integral plan found by rounding)."""
        for var, value in zip(self.n, counts):
            var.setInitialValue(float(value))
        for var, value in zip(self.load, loads):
            var.setInitialValue(float(value))

    def solve(self, warm: bool = False) -> tuple[str, float | None, float]:
        """Solve with CBC; return (status word, objective, wall seconds)."""
        o = self.instance.options
        mip = self.form == "full" and not self.relax and self.fixed_counts is None
        with warnings.catch_warnings():  # PuLP 3.3 deprecates the bundled CBC's class name only
            warnings.simplefilter("ignore", DeprecationWarning)
            solver = pulp.PULP_CBC_CMD(msg=False, mip=mip, timeLimit=o.time_limit_s, threads=o.threads,
                                       gapRel=o.mip_gap if mip else None, gapAbs=o.mip_gap_abs if mip else None,
                                       warmStart=warm and mip)
        start = time.perf_counter()
        self.problem.solve(solver)
        wall = time.perf_counter() - start
        status = pulp.LpStatus[self.problem.status].lower()
        word = {"optimal": "optimal", "not solved": "unknown", "infeasible": "infeasible",
                "unbounded": "unbounded", "undefined": "unknown"}.get(status, status)
        if word == "optimal" and mip and self.problem.sol_status == pulp.LpSolutionIntegerFeasible:
            word = "feasible"
        obj = pulp.value(self.problem.objective) if word in ("optimal", "feasible") else None
        return word, (float(obj) if obj is not None else (0.0 if word == "optimal" else None)), wall

    def term_values(self) -> dict[str, float]:
        """Value of every named objective term in the current solution."""
        return {name: float(sum((v.varValue or 0.0) * w for v, w in zip(vs, ws))) for name, (vs, ws) in self.terms.items()}

    def load_values(self) -> np.ndarray:
        return np.array([v.varValue or 0.0 for v in self.load])

    def count_values(self) -> np.ndarray:
        """``n[g,c]`` of the solution (compact form: ``l / cap``)."""
        if self.form == "full":
            return np.array([v.varValue or 0.0 for v in self.n])
        cap = self.capacity_hot
        return np.where(cap > EPS, self.load_values() / np.maximum(cap, EPS), 0.0)

    def reduced_costs(self) -> np.ndarray:
        """Reduced cost of every load variable after an LP solve (0 where CBC gave none)."""
        return np.array([v.dj if v.dj is not None else 0.0 for v in self.load])

    def to_plan(self, policy: str = "optimal") -> ReconfigPlan:
        """Per-VM configurations and loads from the integral group counts (members in order)."""
        inst, g = self.instance, self.groups
        config = inst.saas["current"].to_numpy(int).copy()
        load = np.zeros(len(inst.saas))
        n_val = self.count_values()
        l_val = self.load_values()
        for gi, members in enumerate(g.members):
            ks = np.flatnonzero(self.pair_group == gi)
            ks = ks[np.argsort(-n_val[ks], kind="stable")]
            pos = 0
            for k in ks:
                cnt = int(np.floor(n_val[k] + 1e-6))
                if cnt <= 0:
                    continue
                vms = members[pos:pos + cnt]
                config[vms] = self.pair_config[k]
                load[vms] = l_val[k] / cnt
                pos += cnt
        gpus = np.maximum(inst.iaas["gpus"].to_numpy(float), 1.0)
        shed = np.array([x.varValue or 0.0 for x in self.iaas_shed])
        iaas_load = np.maximum(inst.iaas["load"].to_numpy(float) - shed / gpus, inst.iaas["floor_load"].to_numpy(float))
        return ReconfigPlan(policy=policy, saas_config=config, saas_load=load, iaas_load=iaas_load)


def all_pairs(groups: Groups) -> list[tuple[int, int]]:
    """Every (group, candidate configuration) pair."""
    return [(gi, int(c)) for gi in range(len(groups)) for c in groups.candidates[gi]]


def restricted_pairs(groups: Groups, pairs: list[tuple[int, int]], load: np.ndarray, reduced: np.ndarray,
                     extra: int = 2) -> list[tuple[int, int]]:
    """Columns for the integral solve: per group its current configuration, every configuration
    the LP loads in *any* group with the same current configuration (what helps one VM of a
    family is a candidate for its siblings when counts must be whole), and the ``extra``
    others with the lowest reduced cost."""
    used: dict[int, set] = {}
    for k, (gi, c) in enumerate(pairs):
        if load[k] > 1e-7:
            used.setdefault(int(groups.current[gi]), set()).add(c)
    keep = set()
    by_group: dict[int, list[int]] = {}
    for k, (gi, c) in enumerate(pairs):
        by_group.setdefault(gi, []).append(k)
        if c == groups.current[gi] or c in used.get(int(groups.current[gi]), ()):
            keep.add(k)
    for gi, ks in by_group.items():
        rest = [k for k in ks if k not in keep]
        rest.sort(key=lambda k: (reduced[k], k))
        keep.update(rest[:extra])
    return [pairs[k] for k in sorted(keep)]


def round_counts(groups: Groups, pairs: list[tuple[int, int]], counts: np.ndarray,
                 capacity: np.ndarray) -> np.ndarray:
    """Whole VM counts per pair from LP counts (``counts`` may be fractional).

    Every configuration the LP loads gets its count rounded up while the group has VMs left
    (a VM serving part of a configuration's load is still one VM). When the ceilings exceed the
    group, VMs are taken from the configurations with the least capacity per VM, so the group
    keeps as much capacity as possible and the re-solved loads can still be served. The
    group's other VMs stay on their current configuration (which must be among the pairs)."""
    out = np.zeros(len(pairs))
    pair_group = np.array([p[0] for p in pairs], dtype=int)
    for gi in range(len(groups)):
        ks = np.flatnonzero(pair_group == gi)
        if not len(ks):
            continue
        n = np.maximum(counts[ks], 0.0)
        up = np.where(n > 1e-7, np.ceil(n - 1e-7), 0.0)
        size = groups.count[gi]
        while up.sum() > size:
            # drop a VM from the configuration whose VMs carry least, ties: least fractional use
            lost = np.where(up > 0, capacity[ks] + 1e-6 * (n - (up - 1)).clip(0, 1), np.inf)
            up[int(np.argmin(lost))] -= 1
        cur = [k for k in range(len(ks)) if pairs[ks[k]][1] == groups.current[gi]]
        if not cur:
            raise ValueError(f"group {gi}: its current configuration is not among the pairs")
        up[cur[0]] += size - up.sum()
        out[ks] = up
    return out


def dive(instance: ReconfigInstance, groups: Groups, pairs: list[tuple[int, int]], share: float = 0.5,
         max_rounds: int = 12) -> tuple["ReconfigModel", int]:
    """An integral solution by LP diving: solve the relaxation, fix every group whose counts are
    already whole, round (:func:`round_counts`) the ``share`` of the fractional groups with the
    least fractional mass and fix them too, re-solve so the other groups compensate; repeat
    until every group is whole. Returns the final model (its counts are integral) and the
    number of LP solves."""
    model = ReconfigModel(instance, groups, pairs, form="full", relax=True).build()
    pair_group = model.pair_group
    fixed = np.zeros(len(groups), dtype=bool)
    rounds = 0
    for rounds in range(1, max_rounds + 1):
        model.solve()
        n = model.count_values()
        frac = np.abs(n - np.round(n))
        mass = np.bincount(pair_group, frac, minlength=len(groups))
        whole = (mass < 1e-6) & ~fixed
        todo = np.flatnonzero((mass >= 1e-6) & ~fixed)
        _fix(model, np.flatnonzero(whole), np.round(n))
        fixed |= whole
        if not len(todo):
            break
        take = todo[np.argsort(mass[todo], kind="stable")][:max(1, int(np.ceil(share * len(todo)))) if rounds < max_rounds else len(todo)]
        counts = round_counts(groups, pairs, n, model.capacity_hot)
        _fix(model, take, counts)
        fixed[take] = True
    else:
        model.solve()
    return model, rounds


def _fix(model: "ReconfigModel", group_ids: np.ndarray, counts: np.ndarray) -> None:
    """Fix the counts of the pairs of these groups (bounds of a relaxed full model)."""
    sel = np.isin(model.pair_group, group_ids)
    for k in np.flatnonzero(sel):
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
       keeps: every configuration the LP loads, the current one and the next best by reduced cost;
    3. if ``improve``, the integral model (CBC branch and bound) over the same columns,
       warm-started from step 2, within ``options.time_limit_s``;
       the better of steps 2 and 3 is the plan.

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
    best, status = None, "unknown"
    int_pairs = pairs
    if method == "restricted" and lp_obj is not None:
        int_pairs = restricted_pairs(groups, pairs, lp.load_values(), lp.reduced_costs())
        pos = {p: k for k, p in enumerate(pairs)}
        sub = np.array([pos[p] for p in int_pairs])
        dived, _ = dive(instance, groups, int_pairs)
        obj = pulp.value(dived.problem.objective)
        if obj is not None:
            best, status = (dived, float(obj)), "dived"
    if improve or best is None:
        mip = ReconfigModel(instance, groups, int_pairs, form="full").build()
        if best is not None:
            mip.warm_start(best[0].count_values(), best[0].load_values())
        word, obj, _ = mip.solve(warm=best is not None)
        if obj is not None and (best is None or obj < best[1] - 1e-9):
            best, status = (mip, obj), word
        elif best is not None and word == "optimal":
            status = "optimal"
    mip_s = time.perf_counter() - t2
    model, obj = best if best is not None else (None, None)
    plan = model.to_plan("optimal") if model is not None else ReconfigPlan.unchanged(instance, "optimal")
    return OptimalResult(plan, status, obj, lp_obj, model.term_values() if model is not None else {}, lp_terms,
                         len(groups), len(pairs), len(int_pairs), method, build_s, lp_s, mip_s)
