"""The discrete-time engine: one policy over the simulated week, step by step.

At every step (5 minutes by default), in this order (docs/simulation.md states every choice):

1. **Demand.** IaaS VMs draw their actual load (trace); each SaaS endpoint's demand is its
   actual per-GPU load times the GPUs of its VMs that have arrived (placed or not: a VM the
   policy could not place leaves its share to the others).
2. **Routing** splits each endpoint's demand over its placed VMs: ``round-robin`` in proportion
   to their GPUs, each VM serving at most its capacity (the rest is unserved); ``tapas``
   re-weights the split by multiplicative weights towards VMs whose row, aisle, hottest GPU and
   own capacity have the most headroom, redistributing what a full VM cannot take.
3. **Configuration** (``tapas`` only): SaaS VMs in rows or aisles above ``config_power_target``
   of their limit, or whose hottest GPU is within ``config_temp_margin_c`` of its limit, switch to
   the highest-quality, then fastest catalogue configuration that serves their load inside a
   budget (the row's excess split over its SaaS VMs in proportion to their power) using
   quality-neutral knobs only; rows, aisles or GPUs still over their *hard* limit then may use
   any configuration (quantised or smaller models), and shed load if nothing fits.
4. **Physics** (:mod:`tapas_opt.physics` only): VM power and airflow, row power, aisle airflow,
   recirculation where an aisle needs more air than its AHU gives, inlet and hottest-GPU
   temperatures. These are the *demand* figures a policy is judged by (peak row power, max GPU
   temperature).
5. **Power capping**: every row over its limit is capped to it. ``uniform``: one GPU power cap
   for every GPU of the row (never below the GPU's lowest settable limit); ``iaas-last``: IaaS
   GPUs first, then every GPU. A row-step with any cap counts as power-capped.
6. **Thermal throttling**: a VM whose hottest GPU is still over the limit (after capping, with
   recirculation recomputed) runs at the load that holds the GPU at the limit. Its GPUs count as
   throttled for the step.
7. **Performance**: a VM whose GPU dynamic power was cut to a ratio ``rho`` of its demand runs at
   ``rho ** alpha`` of its throughput (MLPerf v4.1 H200 MaxQ vs MaxP,
   :func:`tapas_opt.physics.throughput_fraction_at_power`); a SaaS VM whose model reloads loses
   ``reload_s`` of the step.

Steps are independent (no thermal inertia; the paper's models are steady state), so the engine
processes a chunk of steps at once with arrays [items, steps]: the result is the same as one
step at a time, much faster.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tapas_opt import physics
from tapas_opt.reconfig.catalogue import load_catalogue
from tapas_opt.reconfig.instance import assign_configs, read_cap_alpha

EPS = 1e-9


@dataclass(frozen=True)
class EngineOptions:
    """Settings of the engine and of the tapas routing and configuration mechanisms."""

    chunk_steps: int = 24
    """Steps processed together (memory vs Python overhead). With the fast router results do
    not depend on it; the LP router (GLOP, warm-started from the previous step) may pick another
    of several equally good splits, which can move goodput and capping by a few tenths of a
    percent: compare LP-routed runs at the same value (the CLI's is fixed)."""
    route_iterations: int = 12
    """Mirror-descent rounds of the tapas router per step."""
    route_eta: float = 1.0
    """Step of the router: the VM furthest (in the room) from its endpoint's mean gradient
    changes its weight by a factor exp(eta) in the first round, exp(eta / sqrt(n)) in round n."""
    router: str = "lp"
    """``lp``: the routing LP solved exactly at every step (GLOP, about 12 ms a step at 1,000
    servers with 488 SaaS VMs); ``fast``: the vectorised mirror-descent approximation of it."""
    route_stick: float = 1e-5
    """LP router: cost per unit of load moved from a VM's previous-step load (stability)."""
    route_beta: float = 100.0
    """Sharpness of the smoothed maximum: a row 0.01 below the peak weighs exp(-1) of it."""
    config_power_target: float = 0.90
    """Soft budget of the configurator: rows/aisles above this share of their limit get
    quality-neutral reconfiguration (docs/simulation.md explains the 10 % margin)."""
    config_temp_margin_c: float = 5.0
    """Soft thermal budget: hottest GPU within this many degrees of its limit."""
    config_release: float = 0.05
    """Hysteresis: a reconfigured VM returns to its default configuration only when its row and
    aisle are below ``config_power_target - config_release`` of their limits and its hottest GPU
    2 C below the soft thermal budget."""
    reload_s: float = 30.0
    """Seconds an instance is out of rotation when its model, precision or TP changes."""
    cap_floor_w: float = 100.0
    """Lowest GPU power limit a power cap may set (an A100's minimum settable limit)."""
    catalogue: str | None = None
    """LLM configuration catalogue (default: models/catalogue/llm_configs.csv)."""
    keep_vm_loads: bool = False
    """Keep per-VM loads [V, T] in the result (for validation; 16 MB per array at 1,000 VMs)."""


@dataclass
class SimResult:
    """Per-step arrays of one policy's run, and per-VM extremes; :mod:`metrics` summarises."""

    policy: str
    times: pd.DatetimeIndex
    row_ids: np.ndarray
    aisle_ids: np.ndarray
    row_limit_kw: np.ndarray
    aisle_limit_cfm: np.ndarray
    row_kw: np.ndarray            # [R, T] demand
    row_kw_delivered: np.ndarray  # [R, T] after capping and throttling
    row_capped: np.ndarray        # [R, T] bool
    row_over_after_cap: np.ndarray  # [R, T] bool: even the lowest caps could not meet the limit
    aisle_cfm: np.ndarray         # [A, T] demand
    aisle_cfm_delivered: np.ndarray
    aisle_rise_c: np.ndarray      # [A, T] recirculation rise of inlet (demand)
    step: dict = field(default_factory=dict)   # room-level per-step series [T]
    vm_peak_temp_c: np.ndarray | None = None    # [V] demand
    vm_throttled_steps: np.ndarray | None = None
    vm_capped_steps: np.ndarray | None = None
    engine_time_s: float = 0.0
    vm_load: np.ndarray | None = None            # [V, T] demand load of the busy GPUs (keep_vm_loads)
    vm_busy_gpus: np.ndarray | None = None       # [V, T] busy GPUs (SaaS configurations may idle some)
    vm_load_delivered: np.ndarray | None = None  # [V, T] after capping and throttling


class Engine:
    """Simulate one policy on one scenario with a given placement."""

    def __init__(self, scenario, policy, placement, options: EngineOptions = EngineOptions()):
        self.sc, self.policy, self.opts = scenario, policy, options
        inst = scenario.instance
        self.inst = inst
        p = self.params = inst.params
        vms = scenario.vms
        self.V = len(vms)
        self.server = np.asarray(placement.server, int)
        self.placed = self.server >= 0
        self.srv = np.where(self.placed, self.server, 0)
        self.k = vms["gpus"].to_numpy(float)
        self.arrival = vms["arrival_step"].to_numpy(int)
        kind = vms["kind"].to_numpy(str)
        self.idx_s = np.flatnonzero(kind == "saas")
        self.idx_i = np.flatnonzero(kind != "saas")
        self.row_v = inst.server_row[self.srv]
        self.aisle_v = inst.row_aisle[self.row_v]
        R, A = inst.n_rows, len(inst.aisle_ids)
        self.R, self.A = R, A
        self.M_row = np.zeros((R, self.V))
        self.M_row[self.row_v[self.placed], np.flatnonzero(self.placed)] = 1.0
        self.M_aisle = np.zeros((A, self.V))
        self.M_aisle[self.aisle_v[self.placed], np.flatnonzero(self.placed)] = 1.0
        self.M_ar = np.zeros((A, R))
        self.M_ar[inst.row_aisle, np.arange(R)] = 1.0
        self.idle_row_kw = np.bincount(inst.server_row, p.idle_kw, minlength=R)
        self.idle_aisle_cfm = np.bincount(inst.row_aisle[inst.server_row], p.idle_cfm, minlength=A)
        self.total_gpus = int(p.gpus.sum())
        self.offset = p.inlet_offset_c[self.srv]
        self.t_lim = float(inst.temp_limit_c)
        self.inlet_model = scenario.prepared.config.inlet
        self.u_floor = physics.load_for_gpu_power(options.cap_floor_w, p.gpu_idle_w[self.srv],
                                                  p.gpu_max_w[self.srv], p.poly)
        # SaaS: endpoints, model families and catalogue configurations.
        cat = load_catalogue(options.catalogue)
        self.alpha = read_cap_alpha(cat)
        c = cat.arrays()
        self.c_e = c["energy_ratio"].astype(float)
        self.c_a = c["active_share"].astype(float)
        self.c_q = c["quality"].astype(float)
        self.c_cap = np.minimum(c["capacity_ratio"].astype(float), self.c_a / self.c_e)
        self.c_reload = pd.factorize(c["reload_key"])[0]
        s = vms.iloc[self.idx_s]
        self.ep = s["endpoint_idx"].to_numpy(int)
        self.E = len(scenario.endpoint_ids)
        self.M_ep = np.zeros((self.E, len(self.idx_s)))
        self.M_ep[self.ep, np.arange(len(self.idx_s))] = 1.0
        if len(s):
            frame = s.assign(server_id=None)
            fam, current = assign_configs(frame, cat)
            self.fam_s = fam.reindex(s["vm_id"]).to_numpy(object)
            self.default_cfg = current.reindex(s["vm_id"]).to_numpy(int)
        else:
            self.fam_s = np.zeros(0, object)
            self.default_cfg = np.zeros(0, int)
        self.candidates = {}
        slo = c["slo_ok"].astype(bool)
        speed = c["speed_ratio"].astype(float)
        for f in pd.unique(self.fam_s):
            rows = cat.rows_of(f)
            rows = rows[slo[rows]]
            order = np.lexsort((rows, self.c_e[rows], -speed[rows], -self.c_q[rows]))
            self.candidates[f] = rows[order]
        self.M_row_s = self.M_row[:, self.idx_s]
        self._prev_load = None
        self._lp = None
        self.M_aisle_s = self.M_aisle[:, self.idx_s]

    # ---- physics ---------------------------------------------------------------------------
    def physics(self, u, busy, present, ts) -> dict:
        """Power, airflow, recirculation, inlet and hottest-GPU temperature for loads [V, Tc]."""
        p, sc = self.params, self.sc
        srv = self.srv[:, None]
        kw = p.vm_power_kw(u, busy, srv) * present
        cfm = p.vm_airflow_cfm(u, busy, srv) * present
        row_kw = self.idle_row_kw[:, None] + self.M_row @ kw
        aisle_cfm = self.idle_aisle_cfm[:, None] + self.M_aisle @ cfm
        aisle_kw = self.M_ar @ row_kw
        rise = physics.recirculation_rise_c(aisle_cfm, sc.aisle_limit_cfm[:, ts], aisle_kw)
        room = physics.room_load(busy * u / self.k[:, None] * present, self.k, self.total_gpus)
        base = physics.inlet_temp_c(sc.outside_c[ts] + sc.outside_shift_c[ts], room, self.inlet_model)
        inlet = base[None, :] + self.offset[:, None] + rise[self.aisle_v]
        temp = np.where(present, p.gpu_temp_c(u, inlet, srv), -np.inf)
        return {"kw": kw, "cfm": cfm, "row_kw": row_kw, "aisle_cfm": aisle_cfm, "rise": rise,
                "inlet": inlet, "temp": temp}

    def _row_kw(self, u, busy, present) -> np.ndarray:
        kw = self.params.vm_power_kw(u, busy, self.srv[:, None]) * present
        return self.idle_row_kw[:, None] + self.M_row @ kw

    def load_at_temp(self, temp_c, inlet, servers) -> np.ndarray:
        """Hottest-GPU load at which a GPU with this inlet reaches ``temp_c`` (physics inverse)."""
        p = self.params
        pw = physics.gpu_power_limit_w(temp_c, inlet, p.temp_intercept_c[servers], p.temp_c_per_w[servers])
        u = physics.load_for_gpu_power(pw, p.gpu_idle_w[servers], p.gpu_max_w[servers], p.poly)
        return np.where(pw < p.gpu_idle_w[servers], 0.0, u)

    # ---- routing ---------------------------------------------------------------------------
    def _split(self, D, w, cap, redistribute: bool) -> np.ndarray:
        """Split endpoint demand D [E, Tc] over SaaS VMs in proportion to weights w, each VM at
        most its capacity; what a full VM cannot take goes to the others if ``redistribute``."""
        W = self.M_ep @ w
        share = np.divide(w, W[self.ep], out=np.zeros_like(w), where=W[self.ep] > 0)
        load = D[self.ep] * share
        if redistribute:
            for _ in range(6):
                excess = self.M_ep @ np.maximum(load - cap, 0.0)
                load = np.minimum(load, cap)
                if excess.max(initial=0.0) <= EPS:
                    break
                free = w * (load < cap - EPS)
                Wf = self.M_ep @ free
                load = load + excess[self.ep] * np.divide(free, Wf[self.ep], out=np.zeros_like(free),
                                                          where=Wf[self.ep] > 0)
        return np.minimum(load, cap)

    def route(self, D, present_s, cap, u, busy, present, ts) -> np.ndarray:
        """Loads [Vs, Tc] (units) of the SaaS VMs.

        ``round-robin``: each endpoint's demand in proportion to its VMs' GPUs, each VM at most
        its capacity (the rest is unserved). ``tapas``: exponentiated-gradient (mirror) descent,
        per endpoint, on a smoothed version of the routing LP's objective (the reconfiguration
        engineer's ``solve_routing_slot``): max row power / limit + max aisle airflow / limit +
        max hottest-GPU temperature / limit, with the max replaced by a log-sum-exp of sharpness
        ``beta``. A VM's gradient is its load's marginal effect on the rows, aisles and GPUs that
        are near their peak; load moves from VMs with high gradient to VMs with low gradient of
        the same endpoint, capacities kept.
        """
        k_s = self.k[self.idx_s, None]
        w = k_s * present_s
        if self.policy.route == "round-robin":
            return self._split(D, w, cap, redistribute=False)
        if self.opts.router == "lp":
            return self._route_lp(D, present_s, cap, u, busy, present, ts)
        sc, s = self.sc, self.idx_s
        row_lim, aisle_lim = sc.row_limit_kw[:, ts], sc.aisle_limit_cfm[:, ts]
        beta = self.opts.route_beta
        u = u.copy()
        kw_unit, cfm_unit, t_unit = self._unit_effects()
        for it in range(self.opts.route_iterations):
            load = self._split(D, w, cap, redistribute=True)
            u[s] = load / k_s
            ph = self.physics(u, busy, present, ts)
            pr = _softmax(ph["row_kw"] / row_lim, beta)
            pa = _softmax(ph["aisle_cfm"] / aisle_lim, beta)
            pt = _softmax(ph["temp"] / self.t_lim, beta)
            grad = (pr[self.row_v[s]] * kw_unit[:, None] / row_lim[self.row_v[s]]
                    + pa[self.aisle_v[s]] * cfm_unit[:, None] / aisle_lim[self.aisle_v[s]]
                    + pt[s] * t_unit[:, None] / self.t_lim)
            # Full VMs cannot take more: they do not pull the endpoint's mean down.
            room = present_s & (load < cap - EPS)
            n = self.M_ep @ room
            mean = np.divide(self.M_ep @ (grad * room), n, out=np.zeros_like(n), where=n > 0)
            dev = np.where(present_s, grad - mean[self.ep], 0.0)
            # One scale per step (the largest deviation in the room): endpoints whose VMs are
            # far from every peak have tiny gradients and barely move.
            scale = np.abs(dev).max(axis=0, initial=0.0)
            step = self.opts.route_eta / np.sqrt(it + 1.0)
            w = w * np.exp(-step * np.divide(dev, scale[None, :], out=np.zeros_like(dev), where=scale[None, :] > 0))
            W = self.M_ep @ w
            w = np.divide(w, W[self.ep], out=np.zeros_like(w), where=W[self.ep] > 0) * present_s
        # Never worse than round-robin: per step, keep the split with the lower objective.
        out = self._split(D, w, cap, redistribute=True)
        rr = self._split(D, k_s * present_s, cap, redistribute=False)

        def objective(load):
            u[s] = load / k_s
            ph = self.physics(u, busy, present, ts)
            return ((ph["row_kw"] / row_lim).max(axis=0) + (ph["aisle_cfm"] / aisle_lim).max(axis=0)
                    + ph["temp"].max(axis=0) / self.t_lim)

        better_rr = (objective(rr) < objective(out) - EPS) & (rr.sum(0) >= out.sum(0) - EPS)
        return np.where(better_rr[None, :], rr, out)

    def _route_lp(self, D, present_s, cap, u, busy, present, ts) -> np.ndarray:
        """Exact routing, the LP of :mod:`tapas_opt.simulate.routing` re-solved at every step."""
        from tapas_opt.simulate.routing import RoutingLP

        s = self.idx_s
        if self._lp is None:
            self._lp = RoutingLP(self, self.opts.route_stick)
        u0 = u.copy()
        u0[s] = 0.0
        ph0 = self.physics(u0, busy, present, ts)
        out = np.zeros_like(cap)
        for j, t in enumerate(range(ts.start, ts.stop)):
            if self._prev_load is None:  # first step: start from the round-robin split
                self._prev_load = self._split(D[:, j:j + 1], self.k[s, None] * present_s[:, j:j + 1],
                                              cap[:, j:j + 1], redistribute=True)[:, 0]
            out[:, j] = self._lp.solve(t, D[:, j], present_s[:, j], cap[:, j], ph0["row_kw"][:, j],
                                       ph0["aisle_cfm"][:, j], ph0["temp"][:, j], self._prev_load)[0]
            self._prev_load = out[:, j]
        return np.minimum(out, cap)

    def _unit_effects(self):
        """Per SaaS VM: kW, CFM and hottest-GPU degrees one unit of load adds (the chord of the
        physics between load 0 and 1, per GPU)."""
        if getattr(self, "_units", None) is None:
            s, p = self.idx_s, self.params
            srv, k = self.srv[s], self.k[s]
            one, zero = np.ones(len(s)), np.zeros(len(s))
            kw = p.vm_power_kw(one, one, srv) - p.vm_power_kw(zero, one, srv)
            cfm = p.vm_airflow_cfm(one, one, srv) - p.vm_airflow_cfm(zero, one, srv)
            temp = (p.gpu_temp_c(one, zero, srv) - p.gpu_temp_c(zero, zero, srv)) / k
            self._units = (kw, cfm, temp)
        return self._units

    # ---- configuration ---------------------------------------------------------------------
    def configure(self, load, present_s, u, busy, present, ts, prev_cfg):
        """SaaS configurations [Vs, Tc] and the load each VM serves (module docstring, step 3).

        Sequential in time (a configuration persists): each step starts from the previous one."""
        s = self.idx_s
        Tc = load.shape[1]
        cfg = np.repeat(self.default_cfg[:, None], Tc, axis=1)
        served = load.copy()
        if self.policy.config != "tapas" or len(s) == 0:
            return cfg, served
        cur = prev_cfg.copy()
        for j in range(Tc):
            col = slice(j, j + 1)
            tj = slice(ts.start + j, ts.start + j + 1)
            cur, got = self._configure_step(load[:, j], present_s[:, j], u[:, col], busy[:, col], present[:, col], tj, cur)
            cfg[:, j], served[:, j] = cur, got
        return cfg, served

    def _saas_physics(self, cfg, served, u, busy, present, ts):
        s = self.idx_s
        u, busy = u.copy(), busy.copy()
        u[s, 0] = self.c_e[cfg] * served / (self.k[s] * self.c_a[cfg])
        busy[s, 0] = self.k[s] * self.c_a[cfg]
        return self.physics(u, busy, present, ts), u

    def _configure_step(self, load, present_s, u, busy, present, ts, cur):
        """One step of the configurator for 1-D ``load`` [Vs] from configurations ``cur``."""
        s, sc, o = self.idx_s, self.sc, self.opts
        t = ts.start
        cfg = cur.copy()
        # A VM that left goes back to default; one whose configuration cannot carry its routed
        # load any more is reconfigured below (the preferred configuration that can).
        cfg = np.where(present_s, cfg, self.default_cfg)
        short = present_s & ~self._carries(cfg, load)
        served = load.copy()
        # Release: pressure well below the soft budget -> back to the default configuration.
        ph, _ = self._saas_physics(cfg, served, u, busy, present, ts)
        changed = cfg != self.default_cfg
        if changed.any():
            rel = o.config_power_target - o.config_release
            calm = ((ph["row_kw"][:, 0] / sc.row_limit_kw[:, t])[self.row_v[s]] <= rel) \
                & ((ph["aisle_cfm"][:, 0] / sc.aisle_limit_cfm[:, t])[self.aisle_v[s]] <= rel) \
                & (ph["temp"][s, 0] <= self.t_lim - o.config_temp_margin_c - 2.0)
            cfg = np.where(changed & calm, self.default_cfg, cfg)
            short &= ~(changed & calm)
        for hard in (False, True):
            ph, uu = self._saas_physics(cfg, served, u, busy, present, ts)
            share = 1.0 if hard else o.config_power_target
            t_target = self.t_lim if hard else self.t_lim - o.config_temp_margin_c
            budgets = []
            families = [("kw", sc.row_limit_kw[:, t], self.M_row_s, self.row_v[s])]
            if not hard:  # airflow over the AHU's recirculates (its heat is in the GPU check)
                families.append(("cfm", sc.aisle_limit_cfm[:, t], self.M_aisle_s, self.aisle_v[s]))
            for kind, lim, M, where in families:
                total = (ph["row_kw"] if kind == "kw" else ph["aisle_cfm"])[:, 0]
                excess = total - share * lim
                mine = ph[kind][s, 0]
                saas_total = M @ mine
                frac = np.clip(np.divide(excess, saas_total, out=np.ones_like(excess), where=saas_total > 0), 0, 1)
                budgets.append(np.where((excess > EPS)[where], mine * (1 - frac[where]), np.inf))
            if hard:
                budgets.append(np.full_like(budgets[0], np.inf))
            u_t = self.load_at_temp(t_target, ph["inlet"][s, 0], self.srv[s])
            hot = ph["temp"][s, 0] > t_target + EPS
            over = (budgets[0] < ph["kw"][s, 0] - EPS) | (budgets[1] < ph["cfm"][s, 0] - EPS)
            pressed = np.flatnonzero(present_s & (load > EPS) & (over | hot | (short if not hard else False)))
            if len(pressed) == 0:
                continue
            kw_cap, cfm_cap = self._no_worse_than_now(budgets, ph, load, ~self._carries(cfg, load), hard)
            new_cfg, new_served = self._choose(pressed, load[pressed], kw_cap[pressed], cfm_cap[pressed],
                                               u_t[pressed], uu[s, 0][pressed], cfg[pressed], hard)
            cfg[pressed], served[pressed] = new_cfg, new_served
        return cfg, served

    def _carries(self, cfg, load) -> np.ndarray:
        """Which SaaS VMs' configurations ``cfg`` [Vs] can serve their ``load`` under the SLO."""
        return self.k[self.idx_s] * self.c_cap[cfg] >= load - EPS

    def _no_worse_than_now(self, budgets, ph, load, short, hard: bool):
        """Power and airflow budgets [Vs] of pressed VMs: at most what they draw now.

        A VM reconfigured because of pressure (its row, aisle or GPU) must not draw more power
        or air than its current configuration does at the same load: the catalogue's preference
        order (quality, then speed) alone would pick a faster configuration that spends more
        energy per token and make the pressure worse. A VM whose configuration cannot carry its
        load (``short``) is held to what its default configuration (which can: routing respects
        its capacity) would draw at that load. The hard pass leaves airflow free, as before (air
        beyond the AHU's recirculates; its heat is in the GPU check)."""
        s, p = self.idx_s, self.params
        d = self.default_cfg
        busy = self.k[s] * self.c_a[d]
        u = self.c_e[d] * load / busy
        kw = np.where(short, p.vm_power_kw(u, busy, self.srv[s]), ph["kw"][s, 0])
        cfm = np.where(short, p.vm_airflow_cfm(u, busy, self.srv[s]), ph["cfm"][s, 0])
        return np.minimum(budgets[0], kw), budgets[1] if hard else np.minimum(budgets[1], cfm)

    def _choose(self, vi, load, budget_kw, budget_cfm, u_t, u_now, cur, hard: bool):
        """Configuration and served load for pressed (SaaS VM, step) pairs (vectorised per family).

        Soft pass (row power and aisle airflow above ``config_power_target``, GPU within
        ``config_temp_margin_c`` of its limit): the first quality-neutral configuration
        (candidates are in preference order: quality, then speed, then energy) that serves the
        whole load inside every budget; if none does, the least-power quality-neutral one that
        serves it without heating the hottest GPU beyond ``max(u_t, u_now)``. Hard pass (row power
        over its limit, GPU over its limit: what would be capped or throttled): any configuration,
        quantised and smaller models included, that serves the load inside the budgets; if none
        does, the least-power one that serves the whole load within the temperature limit (the
        rest of the row's excess is left to IaaS capping: SaaS load is not shed to protect IaaS);
        only if no configuration can serve the load within the temperature limit, the one that
        serves the most (the rest is unserved). Ties within a quality level prefer configurations
        reachable online from the current one (power level, batch: no model reload), then the
        candidate order."""
        s = self.idx_s
        out_cfg = self.default_cfg[vi].copy()
        out_served = load.copy()
        p = self.params
        for f, cand in self.candidates.items():
            sel = np.flatnonzero(self.fam_s[vi] == f)
            for start in range(0, len(sel), 4000):
                b = sel[start:start + 4000]
                v = s[vi[b]]
                k = self.k[v][:, None]
                srv = self.srv[v][:, None]
                l = load[b][:, None]
                busy = k * self.c_a[cand][None, :]
                u = self.c_e[cand][None, :] * l / busy
                kw = p.vm_power_kw(u, busy, srv)
                cfm = p.vm_airflow_cfm(u, busy, srv)
                cap = k * self.c_cap[cand][None, :]
                full = (cap >= l - EPS) & (u <= 1 + EPS)
                fits = (kw <= budget_kw[b][:, None] + EPS) & (cfm <= budget_cfm[b][:, None] + EPS) & \
                       (u <= u_t[b][:, None] + EPS)
                allowed = np.ones(len(cand), bool) if hard else (self.c_q[cand] >= 1.0 - EPS)
                ok = full & fits & allowed[None, :]
                has = ok.any(axis=1)
                n_c = len(cand)
                qlevel = np.unique(-self.c_q[cand], return_inverse=True)[1]
                reload = self.c_reload[cand][None, :] != self.c_reload[cur[b]][:, None]
                rank = qlevel[None, :] * 4 * n_c + reload * 2 * n_c + np.arange(n_c)[None, :]
                pick = np.where(has, np.where(ok, rank, np.iinfo(np.int64).max).argmin(axis=1), -1)
                served = l[:, 0].copy()
                rest = ~has
                if rest.any():
                    if not hard:
                        cool = u[rest] <= np.maximum(u_t[b][rest], u_now[b][rest])[:, None] + EPS
                        cost = np.where(full[rest] & allowed[None, :] & cool, kw[rest] + 1e-9 * rank[rest], np.inf)
                        best = cost.argmin(axis=1)
                        pick[rest] = np.where(np.isfinite(cost.min(axis=1)), best, -1)
                    else:
                        cool = u[rest] <= u_t[b][rest][:, None] + EPS
                        cost = np.where(full[rest] & cool, kw[rest] + 1e-9 * rank[rest], np.inf)
                        serves = np.isfinite(cost.min(axis=1))
                        pick_rest = np.where(serves, cost.argmin(axis=1), -1)
                        lim = np.minimum.reduce([
                            np.broadcast_to(l[rest], kw[rest].shape), cap[rest],
                            u_t[b][rest][:, None] * busy[rest] / self.c_e[cand][None, :],
                            busy[rest] / self.c_e[cand][None, :]])
                        lim = np.maximum(lim, 0.0)
                        best = lim.argmax(axis=1)
                        most = lim[np.arange(rest.sum()), best]
                        pick[rest] = np.where(serves, pick_rest, best)
                        served[rest] = np.where(serves, l[rest][:, 0], most)
                chosen = pick >= 0
                out_cfg[b[chosen]] = cand[pick[chosen]]
                out_served[b] = np.where(chosen, served, out_served[b])
        return out_cfg, out_served

    # ---- protective mechanisms -------------------------------------------------------------
    def cap(self, u, busy, present, row_kw, limit):
        """Power-cap rows over their limit (module docstring, step 5); returns loads and the
        capped and still-over masks [R, Tc]."""
        over0 = row_kw > limit * (1 + 1e-9)
        if not over0.any():
            return u, over0, np.zeros_like(over0)
        iaas = np.zeros(self.V, bool)
        iaas[self.idx_i] = True
        stages = [np.ones(self.V, bool)] if self.policy.capping == "uniform" else [iaas, np.ones(self.V, bool)]
        floor = self.u_floor[:, None]
        for mask in stages:
            rows = self._row_kw(u, busy, present)
            over = rows > limit * (1 + 1e-9)
            if not over.any():
                break
            capp = mask[:, None] & present & over[self.row_v] & self.placed[:, None]
            # Largest cap c (a load level of every cappable GPU) whose row power fits the limit:
            # row power rises with c, so bisection keeps f(lo) <= limit < f(hi).
            lo = np.zeros_like(limit)
            hi = np.ones_like(limit)
            for _ in range(40):
                mid = 0.5 * (lo + hi)
                trial = np.where(capp, np.minimum(u, np.maximum(mid[self.row_v], floor)), u)
                too = self._row_kw(trial, busy, present) > limit
                lo, hi = np.where(too, lo, mid), np.where(too, mid, hi)
            u = np.where(capp, np.minimum(u, np.maximum(lo[self.row_v], floor)), u)
        still = self._row_kw(u, busy, present) > limit * (1 + 1e-6)
        return u, over0, still

    # ---- the run -----------------------------------------------------------------------------
    def run(self, progress=None) -> SimResult:
        t_start = time.perf_counter()
        sc, inst = self.sc, self.inst
        T = sc.n_steps
        R, A, V = self.R, self.A, self.V
        s, i = self.idx_s, self.idx_i
        k = self.k
        res = SimResult(
            policy=self.policy.name, times=sc.times, row_ids=inst.row_ids, aisle_ids=inst.aisle_ids,
            row_limit_kw=sc.row_limit_kw, aisle_limit_cfm=sc.aisle_limit_cfm,
            row_kw=np.zeros((R, T)), row_kw_delivered=np.zeros((R, T)), row_capped=np.zeros((R, T), bool),
            row_over_after_cap=np.zeros((R, T), bool), aisle_cfm=np.zeros((A, T)),
            aisle_cfm_delivered=np.zeros((A, T)), aisle_rise_c=np.zeros((A, T)))
        names = ("max_gpu_temp_c", "max_gpu_temp_delivered_c", "throttled_vms", "throttled_gpus", "busy_gpus",
                 "capped_rows", "capped_vms", "saas_demand", "saas_routed", "saas_served", "saas_quality_served",
                 "iaas_demand", "iaas_delivered", "iaas_unplaced_demand", "reloads", "reconfigured_vms",
                 "saas_smaller_or_quantised")
        step = {n: np.zeros(T) for n in names}
        vm_peak = np.full(V, -np.inf)
        vm_thr = np.zeros(V, int)
        vm_cap = np.zeros(V, int)
        prev_cfg = self.default_cfg.copy()
        if self.opts.keep_vm_loads:
            res.vm_load, res.vm_busy_gpus, res.vm_load_delivered = (np.zeros((V, T)) for _ in range(3))
        q_loss_cfg = self.c_q < 1.0 - EPS
        chunk = max(1, self.opts.chunk_steps)
        for t0 in range(0, T, chunk):
            t1 = min(T, t0 + chunk)
            ts = slice(t0, t1)
            steps = np.arange(t0, t1)
            arrived = self.arrival[:, None] <= steps[None, :]
            present = arrived & self.placed[:, None]
            u = np.zeros((V, t1 - t0))
            busy = np.repeat(k[:, None], t1 - t0, axis=1)
            # 1. demand
            u_i = np.nan_to_num(sc.vm_load[i, ts])
            u[i] = u_i * present[i]
            step["iaas_demand"][ts] = (k[i, None] * u_i * present[i]).sum(0)
            step["iaas_unplaced_demand"][ts] = (k[i, None] * u_i * (arrived[i] & ~present[i])).sum(0)
            present_s = present[s]
            D = sc.endpoint_load[:, ts] * (self.M_ep @ (k[s, None] * arrived[s]))
            step["saas_demand"][ts] = D.sum(0)
            # Routing sees what each VM can serve in its default configuration; the configurator
            # then keeps or changes configurations so that they carry the routed load.
            cap0 = k[s, None] * self.c_cap[self.default_cfg][:, None] * present_s
            # 2. routing, 3. configuration
            load = self.route(D, present_s, cap0, u, busy, present, ts) if len(s) else np.zeros((0, t1 - t0))
            step["saas_routed"][ts] = load.sum(0)
            cfg, served = self.configure(load, present_s, u, busy, present, ts, prev_cfg)
            if len(s):
                u[s] = self.c_e[cfg] * served / (k[s, None] * self.c_a[cfg])
                busy[s] = k[s, None] * self.c_a[cfg]
            # 4. physics of the demand
            ph = self.physics(u, busy, present, ts)
            res.row_kw[:, ts] = ph["row_kw"]
            res.aisle_cfm[:, ts] = ph["aisle_cfm"]
            res.aisle_rise_c[:, ts] = ph["rise"]
            step["max_gpu_temp_c"][ts] = ph["temp"].max(axis=0, initial=-np.inf)
            vm_peak = np.maximum(vm_peak, ph["temp"].max(axis=1, initial=-np.inf))
            step["busy_gpus"][ts] = (k[:, None] * present).sum(0)
            # 5. power capping
            u_cap, capped, still = self.cap(u, busy, present, ph["row_kw"], sc.row_limit_kw[:, ts])
            res.row_capped[:, ts] = capped
            res.row_over_after_cap[:, ts] = still
            capped_vm = (u_cap < u - EPS) & present
            vm_cap += capped_vm.sum(1)
            step["capped_rows"][ts] = capped.sum(0)
            step["capped_vms"][ts] = capped_vm.sum(0)
            # 6. thermal throttling
            ph2 = self.physics(u_cap, busy, present, ts) if capped.any() else ph
            hot = (ph2["temp"] > self.t_lim + 1e-6) & present
            u_fin = u_cap
            if hot.any():
                u_t = self.load_at_temp(self.t_lim, ph2["inlet"], self.srv[:, None])
                u_fin = np.where(hot, np.minimum(u_cap, u_t), u_cap)
            vm_thr += hot.sum(1)
            step["throttled_vms"][ts] = hot.sum(0)
            step["throttled_gpus"][ts] = (k[:, None] * hot).sum(0)
            ph3 = self.physics(u_fin, busy, present, ts) if (hot.any() or capped.any()) else ph
            if self.opts.keep_vm_loads:
                res.vm_load[:, ts], res.vm_busy_gpus[:, ts], res.vm_load_delivered[:, ts] = u * present, busy, u_fin * present
            res.row_kw_delivered[:, ts] = ph3["row_kw"]
            res.aisle_cfm_delivered[:, ts] = ph3["aisle_cfm"]
            step["max_gpu_temp_delivered_c"][ts] = ph3["temp"].max(axis=0, initial=-np.inf)
            # 7. performance
            g0 = physics.power_fraction(u, self.params.poly)
            g1 = physics.power_fraction(u_fin, self.params.poly)
            rho = np.divide(g1, g0, out=np.ones_like(g0), where=g0 > EPS)
            f = physics.throughput_fraction_at_power(rho, self.alpha)
            step["iaas_delivered"][ts] = (k[i, None] * u_i * present[i] * f[i]).sum(0)
            if len(s):
                prev = np.concatenate([prev_cfg[:, None], cfg[:, :-1]], axis=1)
                reload = (self.c_reload[cfg] != self.c_reload[prev]) & present_s
                keep = 1.0 - np.where(reload, min(1.0, self.opts.reload_s / (60.0 * sc.step_min)), 0.0)
                got = served * f[s] * keep
                step["saas_served"][ts] = got.sum(0)
                step["saas_quality_served"][ts] = (got * self.c_q[cfg]).sum(0)
                step["reloads"][ts] = reload.sum(0)
                step["reconfigured_vms"][ts] = ((cfg != self.default_cfg[:, None]) & present_s).sum(0)
                step["saas_smaller_or_quantised"][ts] = (got * q_loss_cfg[cfg]).sum(0)
                prev_cfg = cfg[:, -1].copy()
            if progress is not None:
                progress(t1 - t0)
        res.step = step
        res.vm_peak_temp_c = vm_peak
        res.vm_throttled_steps = vm_thr
        res.vm_capped_steps = vm_cap
        res.engine_time_s = time.perf_counter() - t_start
        return res


def _softmax(x, beta) -> np.ndarray:
    """Column-wise softmax of ``beta * x`` (-inf entries weigh 0)."""
    top = np.max(x, axis=0, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.exp(beta * (x - top))
    tot = e.sum(axis=0, keepdims=True)
    return np.divide(e, tot, out=np.zeros_like(e), where=tot > 0)


def simulate(scenario, policy, placement, options: EngineOptions = EngineOptions(), progress=None) -> SimResult:
    """Run one policy over the scenario's week with the given placement."""
    return Engine(scenario, policy, placement, options).run(progress)
