"""Policies of the simulator: which placement, routing and configuration mechanism each uses.

A policy is three independent components (TAPAS.md section 4) plus the power-capping mode that
follows from its configuration component:

=================  ==============  ============  =========  ===========================
policy             placement       routing       config     power capping
=================  ==============  ============  =========  ===========================
``baseline``       random          round-robin   none       uniform
``place``          tapas-opt       round-robin   none       uniform
``route``          random          tapas         none       uniform
``config``         random          round-robin   tapas      IaaS last
``place+route``    tapas-opt       tapas         none       uniform
``place+config``   tapas-opt       round-robin   tapas      IaaS last
``route+config``   random          tapas         tapas      IaaS last
``tapas-rules``    tapas-rules     tapas         tapas      IaaS last
``full``           tapas-opt       tapas         tapas      IaaS last
=================  ==============  ============  =========  ===========================

Extra policies (not in ``all``): ``baseline-ff`` (first-fit oblivious placement, the production
packer of the placement benchmark) and ``rules-place`` (the paper's placement rules alone).

``baseline`` is the paper's: thermal- and power-oblivious placement (a uniformly random server
with room, seeded), round-robin routing weighted by instance size, no reconfiguration, and
uniform power capping of every GPU of a row over its limit. ``tapas-rules`` is the paper's
system as a whole: its rule-based placement with the same routing and configuration as ``full``,
so that the two differ only in placement.

Placement (:func:`place_scenario`) uses the planner's forecast only, never the actual load:

* ``random`` / ``first-fit`` / ``tapas-rules``: the placement module's online policies in
  arrival order (the initial population first);
* ``tapas-opt``: the initial population in one batch with the exact optimiser
  (``solve_placement(..., "optimal")``), then each arrival online with tapas-opt's greedy
  (objective-shaped score, every limit checked against the forecast) on the room so far;
* ``greedy``: tapas-opt's online greedy for every VM (fast variant).

``must_place`` (the default): a VM that no server can take within the forecast's limits is
still placed, where the forecast breaks them least (:func:`place_least_violating`): at its
arrival for tapas-opt's greedy, right after the warm-up batch for the optimiser, after the
whole queue for ``tapas-rules`` (its loop is the placement module's). The count is reported
as ``placed_over_forecast_limits``. Without it, refused VMs stay unplaced (their SaaS demand
falls on their endpoint's other VMs; IaaS work is reported as ``unplaced_work_pct``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from tapas_opt.placement import heuristics
from tapas_opt.placement.evaluate import evaluate_assignment, server_warmth
from tapas_opt.placement.solve import solve_placement
from tapas_opt.placement.state import RoomState

PLACEMENTS = ("random", "first-fit", "tapas-rules", "tapas-opt", "greedy")
ROUTINGS = ("round-robin", "tapas")
CONFIGS = ("none", "tapas")


@dataclass(frozen=True)
class Policy:
    """One simulated policy: placement, routing and configuration components."""

    name: str
    placement: str
    route: str
    config: str
    description: str = ""

    @property
    def capping(self) -> str:
        """``uniform`` (every GPU of an over-limit row gets the same power cap) without the
        configuration component; ``iaas-last`` (SaaS reconfigured first, then IaaS capped,
        then everything) with it."""
        return "iaas-last" if self.config == "tapas" else "uniform"


POLICIES: dict[str, Policy] = {p.name: p for p in (
    Policy("baseline", "random", "round-robin", "none", "oblivious placement, round-robin, no reconfiguration, uniform capping"),
    Policy("place", "tapas-opt", "round-robin", "none", "tapas-opt placement alone"),
    Policy("route", "random", "tapas", "none", "thermal/power-aware routing alone"),
    Policy("config", "random", "round-robin", "tapas", "SaaS reconfiguration alone"),
    Policy("place+route", "tapas-opt", "tapas", "none", "placement and routing"),
    Policy("place+config", "tapas-opt", "round-robin", "tapas", "placement and reconfiguration"),
    Policy("route+config", "random", "tapas", "tapas", "routing and reconfiguration"),
    Policy("tapas-rules", "tapas-rules", "tapas", "tapas", "the paper's system: rule-based placement, routing, reconfiguration"),
    Policy("full", "tapas-opt", "tapas", "tapas", "full tapas-opt: optimal placement, routing, reconfiguration"),
    Policy("baseline-ff", "first-fit", "round-robin", "none", "baseline with first-fit placement"),
    Policy("rules-place", "tapas-rules", "round-robin", "none", "the paper's placement rules alone"),
)}
ALL = ("baseline", "place", "route", "config", "place+route", "place+config", "route+config", "tapas-rules", "full")
"""The policies of ``--policy all``: baseline, each mechanism alone, the pairs, the paper's, full."""


def resolve_policies(names) -> list[Policy]:
    """Policies by name; ``all`` expands to :data:`ALL`. Unknown names (every one) raise ValueError."""
    names = [n for name in names for n in (ALL if name == "all" else (name,))]
    unknown = [n for n in dict.fromkeys(names) if n not in POLICIES]
    if unknown:
        raise ValueError(f"unknown polic{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))}: "
                         f"use one of {', '.join(POLICIES)} or all")
    return [POLICIES[n] for n in dict.fromkeys(names)]


@dataclass
class Placement:
    """Where every simulated VM runs (server index, -1 = unplaced) and how it was decided."""

    method: str
    server: np.ndarray
    solve_time_s: float
    forecast_peak_row_power: float
    forecast_max_gpu_temp_c: float
    unplaced: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)


def _subset(instance, n: int):
    """The placement instance restricted to its first ``n`` pending VMs."""
    return dataclasses.replace(
        instance, vm_ids=instance.vm_ids[:n], vm_gpus=instance.vm_gpus[:n], vm_kind=instance.vm_kind[:n],
        vm_endpoint=instance.vm_endpoint[:n], vm_customer=instance.vm_customer[:n],
        vm_load=instance.vm_load[:n], vm_method=instance.vm_method[:n])


def _least_violating(state: RoomState, v: int) -> int:
    """Server with room for VM v whose forecast breaks the limits least (-1 if none has room)."""
    cand = state.candidates(int(v), check_limits=False)
    if len(cand.servers) == 0:
        return -1
    worst = np.round(np.maximum(cand.row_peak_norm, cand.aisle_peak_norm), 9)
    return int(cand.servers[np.lexsort((cand.servers, np.round(cand.peak_temp_c, 6), worst))[0]])


def _online_greedy(instance, state: RoomState, order: np.ndarray, must_place: bool) -> tuple[np.ndarray, int]:
    """tapas-opt's greedy (:func:`tapas_opt.placement.heuristics.choose_server`) one VM at a time in
    arrival order; a VM no server can take within the forecast limits goes, with ``must_place``,
    where it breaks them least, at its arrival."""
    warmth = server_warmth(instance)
    forced = 0
    for v in order:
        s = heuristics.choose_server(state, int(v), warmth)
        if s < 0 and must_place:
            s = _least_violating(state, int(v))
            forced += s >= 0
        if s >= 0:
            state.place(int(v), s)
    return state.assign.copy(), forced


def place_least_violating(instance, assign: np.ndarray) -> tuple[np.ndarray, int]:
    """Place every VM a policy left unplaced on the server with room whose forecast breaks the
    limits least: lowest max(row power, aisle airflow) as a share of its limit, then lowest
    peak GPU temperature, then inventory order. Used when ``must_place`` (the default): the
    simulated operator runs every VM it has servers for (an oversubscribed room is bought to be
    used), so a policy is judged by the capping and throttling it causes, not by the work it
    refuses. Returns the assignment and how many VMs were placed this way."""
    state = RoomState.from_assignment(instance, assign)
    n = 0
    for v in np.flatnonzero(assign < 0):
        s = _least_violating(state, int(v))
        if s >= 0:
            state.place(int(v), s)
            n += 1
    return state.assign.copy(), n


def place_scenario(scenario, method: str, time_limit_s: float | None = None, seed: int = 0,
                   must_place: bool = True) -> Placement:
    """Place the scenario's VMs with a placement method (see the module docstring); with
    ``must_place``, VMs the method refuses go through :func:`place_least_violating`."""
    if method not in PLACEMENTS:
        raise ValueError(f"unknown placement {method!r}: use one of {PLACEMENTS}")
    inst = scenario.instance
    t0 = time.perf_counter()
    stats: dict = {}
    if method == "random":
        assign = heuristics.random_fit(inst, seed)
    elif method == "first-fit":
        assign = heuristics.first_fit(inst)
    elif method == "tapas-rules":
        assign = heuristics.tapas_rules(inst)
    elif method == "greedy":
        assign, forced = _online_greedy(inst, RoomState(inst), np.arange(inst.n_vms), must_place)
        stats["placed_over_forecast_limits"] = forced
    else:
        n_warm = int(((scenario.vms["pending_pos"] >= 0) & scenario.vms["initial"]).sum())
        state = RoomState(inst)
        if n_warm:
            sub = _subset(inst, n_warm)
            t_warm = time.perf_counter()
            try:
                sol = solve_placement(sub, "optimal", time_limit_s=time_limit_s, seed=seed)
            except RuntimeError as exc:
                # The optimiser's internal LP can run out of its own time limit on a busy machine;
                # the simulation goes on with tapas-opt's greedy (its warm start) and says so.
                sol = solve_placement(sub, "greedy", seed=seed)
                stats["warmup_error"] = f"optimiser failed ({exc}); warm-up placed by tapas-opt's greedy"
            stats.update(warmup_vms=n_warm, warmup_status=sol.status, warmup_gap=sol.gap,
                         warmup_solve_s=round(time.perf_counter() - t_warm, 2),
                         warmup_candidate=sol.stats.get("returned"))
            warm = sol.assign  # the warm-up VMs are the instance's first n_warm
            if must_place and (warm < 0).any():
                warm, forced_warm = place_least_violating(sub, warm)
                stats["warmup_placed_over_forecast_limits"] = forced_warm
            for v in np.flatnonzero(warm >= 0):
                state.place(int(v), int(warm[v]))
        assign, forced = _online_greedy(inst, state, np.arange(n_warm, inst.n_vms), must_place)
        stats["placed_over_forecast_limits"] = forced + stats.get("warmup_placed_over_forecast_limits", 0)
    if must_place and (assign < 0).any():
        refused = int((assign < 0).sum())
        assign, forced = place_least_violating(inst, assign)
        stats.update(refused_by_policy=refused,
                     placed_over_forecast_limits=stats.get("placed_over_forecast_limits", 0) + forced)
    ev = evaluate_assignment(inst, assign)
    state = RoomState.from_assignment(inst, assign)
    unplaced = [heuristics.explain_unplaced(state, int(v)).to_dict() for v in np.flatnonzero(assign < 0)]
    vms = scenario.vms
    server = vms["fixed_server"].to_numpy(int).copy()
    pend = vms["pending_pos"].to_numpy(int)
    server[pend >= 0] = assign[pend[pend >= 0]]
    return Placement(method, server, time.perf_counter() - t0, ev.peak_row_power_norm, ev.peak_temp_c, unplaced, stats)
