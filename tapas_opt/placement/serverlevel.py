"""Stage 2 of the optimiser: inside one pool, which server each VM of the stage-1 counts takes.

Power and airflow are already fixed by stage 1 (every server of a pool adds the same power), so
this small model only decides temperature and packing: it minimises the pool's peak
hottest-GPU temperature, keeps IaaS VMs on cool servers and SaaS VMs on warm ones (soft), and
opens as few wholly free servers as possible for VMs smaller than a server (soft), so that
whole servers stay free for 8-GPU VMs. Temperatures are in centi-degrees (integers).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tapas_opt.placement.backends import INF, Backend
from tapas_opt.placement.instance import PlacementInstance
from tapas_opt.placement.rowlevel import UNPLACED_PENALTY


@dataclass
class PoolProblem:
    """One pool's stage-2 problem: groups with counts, servers with free GPUs."""

    inst: PlacementInstance
    pool: int
    groups: np.ndarray  # group indices
    counts: np.ndarray  # VMs of each group to place in this pool
    servers: np.ndarray  # servers of the pool with free GPUs
    theta_c: float
    warmth: np.ndarray  # [S] 0 = coolest server of the room
    peak_floor_c: float = -np.inf
    """The placed VMs' peak cannot go below this (set by other pools): lowering this pool's
    peak further is worth nothing, so the soft terms decide there."""

    @property
    def temps_cc(self) -> np.ndarray:
        """[groups, servers] peak temperature in centi-degrees (rounded up)."""
        t = self.inst.group_peak_temp_c[np.ix_(self.groups, self.servers)]
        return np.ceil(100 * t - 1e-6).astype(np.int64)


@dataclass
class PoolModel:
    prob: PoolProblem
    backend: Backend
    x: dict[tuple[int, int], object] = field(default_factory=dict)  # (i group, k server) -> count
    used: dict[tuple[int, int], object] = field(default_factory=dict)
    opened: dict[int, object] = field(default_factory=dict)
    unplaced: dict[int, object] = field(default_factory=dict)
    peak: object = None


def add_server_counts(m: PoolModel) -> None:
    """``x[g,s]``: VMs of group g on server s, only where s has room and stays <= theta."""
    p, b, inst = m.prob, m.backend, m.prob.inst
    temps = inst.group_peak_temp_c[np.ix_(p.groups, p.servers)]
    for i, g in enumerate(p.groups):
        size = inst.vm_gpus[inst.group_rep[g]]
        for k, s in enumerate(p.servers):
            ub = min(int(p.counts[i]), int(inst.free_gpus[s] // size))
            if ub > 0 and temps[i, k] <= p.theta_c + 1e-9:
                m.x[i, k] = b.var(0, ub, f"x_g{g}_s{s}")
        m.unplaced[i] = b.var(0, int(p.counts[i]), f"left_g{g}")


def add_pool_assignment(m: PoolModel) -> None:
    """All VMs the pool received are placed (or counted left over): ``sum_s x[g,s] + left_g = n_g``."""
    b = m.backend
    for i in range(len(m.prob.groups)):
        vars_ = [v for (ii, _), v in m.x.items() if ii == i] + [m.unplaced[i]]
        n = int(m.prob.counts[i])
        b.add_linear(vars_, [1] * len(vars_), n, n, f"pool_assign_g{m.prob.groups[i]}")


def add_server_capacity(m: PoolModel) -> None:
    """GPUs on a server: ``sum_g size_g x[g,s] <= free_s``, or ``<= gpus_s * opened_s`` for a
    wholly free server that a VM smaller than the server would open."""
    p, b, inst = m.prob, m.backend, m.prob.inst
    sizes = inst.vm_gpus[inst.group_rep[p.groups]]
    for k, s in enumerate(p.servers):
        terms = [(i, v) for (i, kk), v in m.x.items() if kk == k]
        if not terms:
            continue
        vars_ = [v for _, v in terms]
        coefs = [int(sizes[i]) for i, _ in terms]
        whole = inst.free_gpus[s] == inst.params.gpus[s]
        if whole and any(sizes[i] < inst.params.gpus[s] for i, _ in terms):
            m.opened[k] = b.var(0, 1, f"opened_s{s}")
            b.add_linear(vars_ + [m.opened[k]], coefs + [-int(inst.free_gpus[s])], -INF, 0, f"capacity_s{s}")
        else:
            b.add_linear(vars_, coefs, -INF, int(inst.free_gpus[s]), f"capacity_s{s}")


def add_peak_temperature(m: PoolModel) -> None:
    """``peak >= T[g,s]`` wherever server s hosts a VM of group g (through ``used[g,s]``)."""
    p, b = m.prob, m.backend
    temps = p.temps_cc
    lo = int(temps.min()) if temps.size else 0
    if np.isfinite(p.peak_floor_c):
        lo = max(lo, int(np.floor(100 * p.peak_floor_c)))
    hi = max(int(temps.max()) if temps.size else 0, int(np.ceil(100 * p.theta_c)) + 1)
    m.peak = b.var(min(lo, hi), hi, f"peak_temp_cc_p{p.pool}")
    for (i, k), x in m.x.items():
        ub = min(int(p.counts[i]), int(p.inst.free_gpus[p.servers[k]] // p.inst.vm_gpus[p.inst.group_rep[p.groups[i]]]))
        used = x
        if ub > 1:
            used = b.var(0, 1, f"used_g{p.groups[i]}_s{p.servers[k]}")
            b.add_linear([x, used], [1, -ub], -INF, 0, f"used_g{p.groups[i]}_s{p.servers[k]}")
        m.used[i, k] = used
        b.add_linear([used, m.peak], [int(temps[i, k]), -1], -INF, 0, f"peak_temp_g{p.groups[i]}_s{p.servers[k]}")


def set_pool_objective(m: PoolModel) -> None:
    """``w_t * peak / limit + w_pref * thermal preference + w_frag * GPUs opened + left over``,
    normalised like the evaluator's terms (see :mod:`tapas_opt.placement.evaluate`)."""
    p, b, inst = m.prob, m.backend, m.prob.inst
    opts = inst.options
    n_vms = max(1, inst.n_vms)
    total_free = max(1, int(inst.free_gpus.sum()))
    vars_ = [m.peak]
    # The pool's peak can set the placed VMs' peak, and the room's peak where it passes the
    # running VMs'; below the floor neither moves, so the soft terms decide there.
    above_room = np.isfinite(inst.existing_peak_temp_c) and p.theta_c > inst.existing_peak_temp_c
    w_temp = opts.placed_temp_weight + (opts.temp_weight if above_room or not np.isfinite(inst.existing_peak_temp_c) else 0.0)
    coefs = [w_temp / (100.0 * inst.temp_limit_c)]
    kinds = inst.vm_kind[inst.group_rep[p.groups]]
    for (i, k), x in m.x.items():
        w = p.warmth[p.servers[k]]
        pref = w if kinds[i] == "iaas" else 1.0 - w
        vars_.append(x)
        coefs.append(opts.thermal_pref_weight * pref / n_vms)
    for k, o in m.opened.items():
        vars_.append(o)
        coefs.append(opts.fragmentation_weight * float(inst.params.gpus[p.servers[k]]) / total_free)
    vars_ += list(m.unplaced.values())
    coefs += [UNPLACED_PENALTY] * len(m.unplaced)
    b.minimize(vars_, coefs)


def build_pool_model(prob: PoolProblem, backend: Backend) -> PoolModel:
    m = PoolModel(prob, backend)
    add_server_counts(m)
    add_pool_assignment(m)
    add_server_capacity(m)
    add_peak_temperature(m)
    set_pool_objective(m)
    return m


def pool_counts(m: PoolModel) -> dict[tuple[int, int], int]:
    """Solved ``x`` as {(group, server): count}."""
    out = {}
    for (i, k), var in m.x.items():
        val = int(round(m.backend.value(var)))
        if val > 0:
            out[int(m.prob.groups[i]), int(m.prob.servers[k])] = val
    return out
