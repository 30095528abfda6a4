"""Thin solver back-ends so that each constraint family is written once.

The constraint families in :mod:`tapas_opt.placement.rowlevel` and
:mod:`tapas_opt.placement.serverlevel` only call ``var``, ``add_linear`` (``lb <= sum coef *
var <= ub``) and ``minimize``; the same code then builds a CP-SAT model (the default), a PuLP/CBC MILP (the
cross-check) or a GLOP LP (the relaxation that gives the lower bound). Constraint coefficients
are integers (ppm of a limit, centi-degrees), so the CP-SAT and MILP models are identical;
objective coefficients may be fractional.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import pulp
from ortools.linear_solver import pywraplp
from ortools.sat.python import cp_model

INF = float("inf")
CP_WALL_SAFETY = 5.0
"""CP-SAT's wall-clock safety net, in multiples of its deterministic budget (at least
:data:`CP_WALL_MIN_S`). The budget is overshot by design: interleaved search runs its workers
in batches and checks the budget between them, so a 1.7 s budget can take 4.3 s of
deterministic time and, on a loaded machine, 8 s of wall time. A tighter net (it was twice the
budget plus 5 s) stopped such solves by the clock, which made the result depend on the
machine's load; this one only stops a machine far slower than the budget assumes."""
CP_WALL_MIN_S = 60.0


@dataclass(frozen=True)
class SolveResult:
    """Outcome of one solve: status word, objective, best bound, wall time, and the work it
    took against the budget."""

    status: str  # "optimal" | "feasible" | "infeasible" | "unknown"
    objective: float | None
    bound: float | None
    wall_time_s: float
    work_s: float = 0.0
    """What the solve spent of its budget: CP-SAT's deterministic time (the same on any machine
    at any load, so budgets split over several solves stay reproducible); wall time for the
    back-ends that have no such measure (GLOP, CBC)."""
    wall_stopped: bool = False
    """CP-SAT stopped by its wall-clock safety net, not its deterministic budget: the one way the
    machine's speed can change a result (counted in the plan's stats as ``cp_wall_stops``)."""

    @property
    def has_solution(self) -> bool:
        return self.status in ("optimal", "feasible")


class Backend:
    """Interface shared by the back-ends."""

    name = "base"
    integral = True

    def var(self, lb: float, ub: float, name: str, integer: bool = True) -> Any:
        raise NotImplementedError

    def add_linear(self, variables: Sequence[Any], coefs: Sequence[int], lb: float, ub: float,
                   name: str) -> None:
        """Add ``lb <= sum(coefs * variables) <= ub`` (use +-inf for a one-sided row)."""
        raise NotImplementedError

    def minimize(self, variables: Sequence[Any], coefs: Sequence[float]) -> None:
        """Minimise ``sum(coefs * variables)`` (coefficients may be fractional)."""
        raise NotImplementedError

    def hint(self, pairs: Iterable[tuple[Any, float]]) -> None:
        """Warm start (ignored by back-ends that cannot use one)."""

    def solve(self, time_limit_s: float, workers: int, seed: int) -> SolveResult:
        raise NotImplementedError

    def value(self, variable: Any) -> float:
        raise NotImplementedError


class CpSatBackend(Backend):
    """OR-Tools CP-SAT: integer variables, integer constraint coefficients."""

    name = "cp-sat"

    def __init__(self) -> None:
        self.model = cp_model.CpModel()
        self.solver = cp_model.CpSolver()

    def var(self, lb, ub, name, integer=True):
        if not integer:
            raise ValueError("CP-SAT models take integer variables only")
        return self.model.new_int_var(int(lb), int(ub), name)

    def add_linear(self, variables, coefs, lb, ub, name):
        expr = cp_model.LinearExpr.weighted_sum(list(variables), [int(c) for c in coefs])
        lo = cp_model.INT_MIN if lb == -INF else int(lb)
        hi = cp_model.INT_MAX if ub == INF else int(ub)
        self.model.add_linear_constraint(expr, lo, hi).with_name(name)

    def minimize(self, variables, coefs):
        # CP-SAT scales a fractional objective to integers itself.
        self.model.minimize(cp_model.LinearExpr.weighted_sum(list(variables), [float(c) for c in coefs]))

    def hint(self, pairs):
        self.model.clear_hints()
        for var, val in pairs:
            self.model.add_hint(var, int(round(val)))

    def solve(self, time_limit_s, workers, seed):
        p = self.solver.parameters
        # Same input and seed, same plan: interleaved search is deterministic with several
        # workers, and the budget is deterministic time (the solver's own work units), not
        # wall-clock time. Wall-clock is only a safety net (CP_WALL_SAFETY).
        p.max_deterministic_time = float(time_limit_s)
        p.max_time_in_seconds = max(CP_WALL_MIN_S, CP_WALL_SAFETY * float(time_limit_s))
        p.num_workers = int(workers)
        p.random_seed = int(seed)
        p.interleave_search = True
        # The core-based bound search reports about a fortieth of its work as deterministic time
        # (39 s of search counted as 1 s on a 60-server placement model), so the budget does not
        # bound it and the wall-clock net decides, which makes the result depend on the machine's
        # load (the nightly move search gave -0.77 % instead of -1.82 % on a loaded machine).
        if "core" not in p.ignore_subsolvers:
            p.ignore_subsolvers.append("core")
        # Ctrl-C must stop the whole command, not just this solve: CP-SAT's own handler would end
        # the search "as if the time limit was reached" and the pipeline would carry on and write
        # a plan. Left to Python, the interrupt is raised when the solve returns.
        p.catch_sigint_signal = False
        status = self.solver.solve(self.model)
        word = {cp_model.OPTIMAL: "optimal", cp_model.FEASIBLE: "feasible",
                cp_model.INFEASIBLE: "infeasible"}.get(status, "unknown")
        has = word in ("optimal", "feasible")
        proved = status in (cp_model.OPTIMAL, cp_model.INFEASIBLE)
        work = self.solver.response_proto.deterministic_time
        by_clock = not proved and self.solver.wall_time >= 0.99 * p.max_time_in_seconds
        return SolveResult(word, self.solver.objective_value if has else None,
                           self.solver.best_objective_bound if has else None,
                           self.solver.wall_time, work, by_clock)

    def value(self, variable):
        return self.solver.value(variable)


class GlopBackend(Backend):
    """OR-Tools GLOP: the LP relaxation (continuous variables)."""

    name = "glop"
    integral = False

    def __init__(self, solver_id: str = "GLOP") -> None:
        self.solver = pywraplp.Solver.CreateSolver(solver_id)
        self.name = solver_id.lower()
        self.params = ""
        self.iterations = 0

    def var(self, lb, ub, name, integer=True):
        return self.solver.NumVar(float(lb), float(ub), name)

    def add_linear(self, variables, coefs, lb, ub, name):
        ct = self.solver.Constraint(float(lb), float(ub), name)
        for v, c in zip(variables, coefs):
            ct.SetCoefficient(v, float(c))
        return ct

    def set_upper_bound(self, variable, ub: float) -> None:
        """Change a bound in place: the next solve warm-starts from the last basis."""
        variable.SetUb(float(ub))

    def disable(self, constraint) -> None:
        constraint.SetBounds(-INF, INF)

    def minimize(self, variables, coefs):
        obj = self.solver.Objective()
        obj.Clear()
        for v, c in zip(variables, coefs):
            obj.SetCoefficient(v, float(c))
        obj.SetMinimization()

    def solve(self, time_limit_s, workers, seed, max_iterations: int | None = None):
        """One LP solve; ``max_iterations`` (simplex iterations) is the deterministic budget,
        ``time_limit_s`` a wall-clock safety net. :attr:`iterations` holds what it used."""
        self.solver.SetTimeLimit(int(time_limit_s * 1000))
        self.params = f"max_number_of_iterations: {int(max_iterations)}" if max_iterations is not None else ""
        self.solver.SetSolverSpecificParametersAsString(self.params)
        status = self.solver.Solve()
        self.iterations = int(self.solver.iterations())
        if status == pywraplp.Solver.ABNORMAL:
            status = self._cold_solve(time_limit_s)
        word = {pywraplp.Solver.OPTIMAL: "optimal", pywraplp.Solver.FEASIBLE: "feasible",
                pywraplp.Solver.INFEASIBLE: "infeasible"}.get(status, "unknown")
        obj = self.solver.Objective().Value() if word in ("optimal", "feasible") else None
        wall = self.solver.wall_time() / 1000.0
        return SolveResult(word, obj, obj if word == "optimal" else None, wall, wall)

    def _cold_solve(self, time_limit_s: float) -> int:
        """Solve the current model from scratch and load the solution into this solver.

        GLOP re-solves from its last basis after bounds and rows change (the threshold sweep);
        on some instances that basis is so far from feasible that GLOP stops at once with
        ABNORMAL (seen on a 575-VM warm-up of the simulator), although the model solves in a
        few seconds cold. The MPSolver keeps its basis, so the model goes through its proto."""
        from ortools.linear_solver import linear_solver_pb2

        request = linear_solver_pb2.MPModelRequest(
            solver_type=linear_solver_pb2.MPModelRequest.GLOP_LINEAR_PROGRAMMING,
            solver_time_limit_seconds=float(time_limit_s), solver_specific_parameters=self.params)
        self.solver.ExportModelToProto(request.model)
        response = linear_solver_pb2.MPSolutionResponse()
        pywraplp.Solver.SolveWithProto(request, response)  # (its iterations are not reported)
        if response.status != linear_solver_pb2.MPSOLVER_OPTIMAL or not self.solver.LoadSolutionFromProto(response):
            return pywraplp.Solver.ABNORMAL
        return pywraplp.Solver.OPTIMAL

    def value(self, variable):
        return variable.solution_value()


class PulpBackend(Backend):
    """PuLP with CBC: the same MILP as CP-SAT (or its relaxation with ``relax=True``)."""

    name = "pulp-cbc"

    def __init__(self, relax: bool = False) -> None:
        self.problem = pulp.LpProblem("tapas_opt", pulp.LpMinimize)
        self.relax = relax
        self.integral = not relax

    def var(self, lb, ub, name, integer=True):
        cat = pulp.LpInteger if integer and not self.relax else pulp.LpContinuous
        return self.problem.add_variable(name, lowBound=lb, upBound=ub, cat=cat)

    def add_linear(self, variables, coefs, lb, ub, name):
        expr = pulp.LpAffineExpression(list(zip(variables, [float(c) for c in coefs])))
        if lb == ub:
            self.problem += (expr == lb, name)
            return
        if lb != -INF:
            self.problem += (expr >= lb, f"{name}_lo" if ub != INF else name)
        if ub != INF:
            self.problem += (expr <= ub, name)

    def minimize(self, variables, coefs):
        self.problem.setObjective(pulp.LpAffineExpression(list(zip(variables, [float(c) for c in coefs]))))

    def solve(self, time_limit_s, workers, seed):
        import time

        with warnings.catch_warnings():
            # PuLP 3.3 flags its bundled CBC as deprecated for 4.0; it is the CBC that needs no
            # separate install, so tapas-opt uses it (COIN_CMD needs a cbc binary on PATH).
            warnings.simplefilter("ignore", DeprecationWarning)
            solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=max(1, int(time_limit_s)),
                                       threads=int(workers), options=[f"randomSeed {int(seed) + 1}"])
        t0 = time.perf_counter()
        code = self.problem.solve(solver)
        wall = time.perf_counter() - t0
        status = pulp.LpStatus.get(code, "Undefined")
        has = self.problem.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
        word = ("optimal" if self.problem.sol_status == pulp.LpSolutionOptimal else
                "feasible" if has else "infeasible" if status == "Infeasible" else "unknown")
        obj = pulp.value(self.problem.objective) if has else None
        return SolveResult(word, obj, obj if word == "optimal" else None, wall, wall)

    def value(self, variable):
        return variable.value() or 0.0


def make_backend(name: str) -> Backend:
    """Back-end by name: ``cp-sat`` (default), ``pulp`` (CBC MILP), ``lp`` (GLOP relaxation)."""
    if name in ("cp-sat", "cpsat"):
        return CpSatBackend()
    if name in ("pulp", "pulp-cbc", "cbc"):
        return PulpBackend()
    if name in ("lp", "glop"):
        return GlopBackend()
    raise ValueError(f"unknown solver back-end {name!r}: use cp-sat, pulp or lp")
