"""The simulator: hand-computed tiny rooms, conservation, agreement with the placement model's
own prediction, routing against its LP, study transforms, the CLI. No real data needed (the
actual load comes from ``--actual`` files); tests on ../shared/data are in
test_simulate_realdata.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import hourly_history, server, vm, write_inventory
from tapas_opt import physics
from tapas_opt.errors import InventoryError
from tapas_opt.cli import main
from tapas_opt.config import InletModel
from tapas_opt.placement.evaluate import evaluate_assignment
from tapas_opt.simulate.engine import Engine, EngineOptions, simulate
from tapas_opt.simulate.metrics import comparison_table, iaas_gpu_temp_floor_c, summarise, timeseries_frame
from tapas_opt.simulate.policies import ALL, POLICIES, place_scenario, resolve_policies
from tapas_opt.simulate.run import run_policies, write_run
from tapas_opt.simulate.scenario import ScenarioOptions, build_scenario, oversubscribe, remix
from tapas_opt.simulate.studies import run_study, write_study
from tapas_opt.simulate.validate import (check_conservation, routing_lp, routing_lp_args, routing_objective,
                                         step_inputs)

START = pd.Timestamp("2026-06-01 00:00")
ALPHA = 0.5742  # models/catalogue/knob_effects.csv, iaas_cap_alpha (MLPerf v4.1 MaxQ vs MaxP)


def actual_file(path: Path, loads: dict, hours: int = 24, step_min: int = 60) -> Path:
    """A ``vm_id, timestamp, load`` file: constant or callable (timestamps -> loads) per VM."""
    ts = pd.date_range(START, periods=hours * 60 // step_min, freq=f"{step_min}min")
    parts = [pd.DataFrame({"vm_id": v, "timestamp": ts, "load": f(ts) if callable(f) else np.full(len(ts), f)})
             for v, f in loads.items()]
    pd.concat(parts).to_csv(path, index=False)
    return path


def tiny_room(tmp_path: Path, row_limit_a: float = 20.0, aisle_limit: float = 1e5, temp_limit: float = 85.0,
              c_per_w_b: float | None = None) -> Path:
    """Rows A and B (one 8-GPU server each: idle 2 kW, max 6.5 kW, 500-840 CFM; inlet offsets 0
    and 1 C) in one aisle; an IaaS VM runs on A, a SaaS VM (endpoint e1) on B; 20 C outside."""
    servers = [server("A1", "A"), server("B1", "B", offset=1.0,
                                          **({"gpu_temp_c_per_w": c_per_w_b} if c_per_w_b else {}))]
    vms = [vm("i1", server_id="A1"), vm("s1", kind="saas", customer="llm", endpoint="e1", server_id="B1")]
    ts = pd.date_range(START - pd.Timedelta(days=28), START + pd.Timedelta(days=2), freq="60min")
    return write_inventory(
        tmp_path / "tiny", config={"gpu_temp_limit_c": temp_limit},
        aisles=[{"aisle_id": "X", "airflow_limit_cfm": aisle_limit}],
        rows=[{"row_id": "A", "aisle_id": "X", "power_limit_kw": row_limit_a},
              {"row_id": "B", "aisle_id": "X", "power_limit_kw": 20.0}],
        servers=servers, vms=vms, telemetry=hourly_history(["i1", "s1"], [0.5, 0.4]),
        outside=pd.DataFrame({"timestamp": ts, "temp_c": 20.0}))


def tiny_scenario(tmp_path: Path, **room) -> object:
    inv = tiny_room(tmp_path, **room)
    actual = actual_file(tmp_path / "actual.csv", {"i1": 0.5, "s1": 0.4})
    return build_scenario(inv, ScenarioOptions(step_min=60, preexisting="history", actual=str(actual), traces=None))


def test_outside_temperature_holds_the_files_ends_not_the_default(tmp_path):
    """An hourly outside.csv ends at 23:00: the 5-minute steps after it took the 25 C default
    (in a cold week, 10 C more on the hottest GPU); they hold the last value. Steps a day and
    more beyond the file also hold it, with a warning."""
    from tapas_opt.inventory.load import load_inventory
    from tapas_opt.simulate.scenario import _outside_series

    inv = load_inventory(tiny_room(tmp_path))
    ts = pd.date_range(START, periods=24, freq="60min")
    inv.outside = pd.DataFrame({"timestamp": ts, "temp_c": np.linspace(5.0, 7.3, 24)})
    steps = pd.date_range(START, periods=24 * 12, freq="5min")
    warnings: list[str] = []
    got = _outside_series(inv, steps, warnings)
    assert got[-11:] == pytest.approx([7.3] * 11) and got[6] == pytest.approx(5.05) and not warnings
    later = _outside_series(inv, pd.date_range(START, periods=4, freq="1D"), warnings)
    assert later[-1] == pytest.approx(7.3)
    assert len(warnings) == 1 and "2 simulation step(s) lie more than 1 day(s) beyond it" in warnings[0]


def test_a_bad_weather_file_and_a_bad_actual_file_are_reported_together(tmp_path):
    """The weather file's problems hid the --actual file's (its bad load and the VM it lacks)."""
    inv = tiny_room(tmp_path)
    actual = actual_file(tmp_path / "actual.csv", {"i1": 0.5})
    frame = pd.read_csv(actual)
    frame.loc[3, "load"] = 1.7
    frame.to_csv(actual, index=False)
    weather = tmp_path / "short.epw"
    weather.write_text("\n".join(["header"] * 8 + ["1,2,3,4,5,6,20.0"] * 30) + "\n")
    opts = ScenarioOptions(step_min=60, preexisting="history", actual=str(actual), traces=None, weather=str(weather))
    with pytest.raises(InventoryError) as err:
        build_scenario(inv, opts)
    got = {(p.file, p.code) for p in err.value.problems}
    assert ("actual.csv", "out_of_range") in got and ("actual.csv", "unknown_vm") in got, got
    assert any(p.code == "bad_weather_file" for p in err.value.problems), got


def run_one(sc, name: str, **opts):
    pol = POLICIES[name]
    pl = place_scenario(sc, pol.placement)
    eng = Engine(sc, pol, pl, EngineOptions(keep_vm_loads=True, **opts))
    return eng, eng.run(), pl


# ---- hand-computed ------------------------------------------------------------------------

def hand_inlet(offset: float) -> float:
    """19 + 0.95 (20 - 15) = 23.75; room load (8*0.5 + 8*0.4) / 16 = 0.45 adds 2 * 0.45 * 0.25."""
    return 23.75 + 2 * 0.45 * (20 - 15) / (35 - 15) + offset


def test_tiny_room_matches_hand_computation(tmp_path):
    """Row power, aisle airflow and hottest-GPU temperature of a two-server room, by hand."""
    sc = tiny_scenario(tmp_path)
    eng, res, _ = run_one(sc, "baseline")
    assert res.row_kw[0] == pytest.approx(2.0 + 4.5 * 0.5)   # 4.25 kW
    assert res.row_kw[1] == pytest.approx(2.0 + 4.5 * 0.4)   # 3.80 kW
    assert res.aisle_cfm[0] == pytest.approx(500 + 340 * 0.5 + 500 + 340 * 0.4)
    t_a = hand_inlet(0.0) + 2.0 + 0.053 * (50 + 350 * 0.5)
    t_b = hand_inlet(1.0) + 2.0 + 0.053 * (50 + 350 * 0.4)
    assert res.step["max_gpu_temp_c"] == pytest.approx(max(t_a, t_b))
    assert res.vm_peak_temp_c == pytest.approx([t_a, t_b])
    assert not res.row_capped.any() and res.step["throttled_vms"].sum() == 0
    assert res.step["saas_served"] == pytest.approx(res.step["saas_demand"])
    assert res.step["saas_demand"] == pytest.approx(8 * 0.4)


def test_iaas_temperature_floor_by_hand(tmp_path):
    """The IaaS VM at load 0.5 on the cooler server (offset 0), with the inlet of the IaaS load
    alone (8 * 0.5 / 16 = 0.25 room load): a floor under the room's maximum."""
    sc = tiny_scenario(tmp_path)
    _, res, _ = run_one(sc, "baseline")
    inlet = 23.75 + 2 * 0.25 * (20 - 15) / (35 - 15)
    floor = iaas_gpu_temp_floor_c(sc)
    assert floor == pytest.approx(inlet + 2.0 + 0.053 * (50 + 350 * 0.5), abs=1e-3)
    assert floor <= res.step["max_gpu_temp_c"].max()


def test_power_capping_by_hand(tmp_path):
    """Row A limited to 4.0 kW: the uniform cap holds its GPUs at load 4/9 (2 + 4.5 c = 4) and the
    IaaS VM runs at (0.4444 / 0.5) ** alpha of its throughput."""
    sc = tiny_scenario(tmp_path, row_limit_a=4.0)
    eng, res, pl = run_one(sc, "baseline")
    assert res.row_capped[0].all() and not res.row_capped[1].any()
    assert res.row_kw[0] == pytest.approx(4.25)
    assert res.row_kw_delivered[0] == pytest.approx(4.0, abs=1e-6)
    cap = 2.0 / 4.5
    assert res.vm_load_delivered[0] == pytest.approx(cap, abs=1e-6)
    s = summarise(res, sc, pl, POLICIES["baseline"])
    assert s["iaas"]["perf_lost_pct"] == pytest.approx(100 * (1 - (cap / 0.5) ** ALPHA), abs=1e-3)
    assert s["power_capped_row_time_pct"] == pytest.approx(50.0)
    assert s["peak_row_power_fraction"] == pytest.approx(4.25 / 4.0)
    assert check_conservation(eng, res) == []


def test_thermal_throttling_by_hand(tmp_path):
    """Server B's GPU heats 0.2 C/W with a 40 C limit: it throttles to the load that holds it at
    the limit, (40 - inlet - 2) / 0.2 W, and its GPUs count as throttled every step."""
    sc = tiny_scenario(tmp_path, temp_limit=40.0, c_per_w_b=0.2)
    eng, res, pl = run_one(sc, "baseline")
    inlet_b = hand_inlet(1.0)
    demand_t = inlet_b + 2.0 + 0.2 * (50 + 350 * 0.4)
    assert res.vm_peak_temp_c[1] == pytest.approx(demand_t)
    p_w = (40.0 - inlet_b - 2.0) / 0.2
    # The throttled load lowers room load and so the inlet a little: delivered temperature <= limit.
    assert res.vm_load_delivered[1] == pytest.approx((p_w - 50) / 350, rel=1e-2)
    assert (res.step["throttled_gpus"] == 8).all()
    assert (res.step["max_gpu_temp_delivered_c"] <= 40.0 + 1e-6).all()
    s = summarise(res, sc, pl, POLICIES["baseline"])
    assert s["thermal_throttled_gpu_time_pct"] == pytest.approx(50.0)  # 8 of 16 busy GPUs
    assert s["saas"]["goodput_pct"] < 100.0


def test_recirculation_raises_inlet(tmp_path):
    """An aisle given less air than its servers pull recirculates: the rise is the physics
    module's (1 - supply/demand) * exhaust rise, and it reaches the GPU temperatures."""
    sc = tiny_scenario(tmp_path, aisle_limit=1000.0)
    eng, res, _ = run_one(sc, "baseline")
    demand = 500 + 340 * 0.5 + 500 + 340 * 0.4
    rise = physics.recirculation_rise_c(demand, 1000.0, 4.25 + 3.8)
    assert res.aisle_rise_c[0] == pytest.approx(rise)
    assert rise > 0
    t_a = hand_inlet(0.0) + rise + 2.0 + 0.053 * 225
    assert res.vm_peak_temp_c[0] == pytest.approx(t_a)


def test_inlet_model_default_is_what_the_hand_numbers_assume():
    """The hand computations above use the default inlet model."""
    m = InletModel()
    assert (m.floor_c, m.knee_outside_c, m.slope_c_per_c, m.load_gain_c, m.load_gain_ref_outside_c) == \
        (19.0, 15.0, 0.95, 2.0, 35.0)


# ---- a small room with many VMs -------------------------------------------------------------

def hour_shape(phase: float, level: float):
    return lambda ts: np.clip(level * (0.6 + 0.4 * np.cos(2 * np.pi * (ts.hour.to_numpy() - phase) / 24)), 0, 1)


@pytest.fixture
def small_room(tmp_path) -> tuple[Path, dict]:
    """Four rows of six 8-GPU servers in two aisles; 16 IaaS VMs (8 GPUs) of 4 customers and 12
    SaaS VMs (4 GPUs) of 3 endpoints (176 of 192 GPUs); every VM's history repeats one day, so the template forecast is exact; 14
    running (some of every family), 14 pending. Returns the inventory and the per-VM load functions."""
    rows = ["R1", "R2", "R3", "R4"]
    servers = [server(f"{r}-S{i}", r, rack=f"{r}-K{i // 3}", offset=0.3 * j + 0.2 * i,
                      gpu_temp_intercept_c=2 + i, gpu_temp_c_per_w=0.05 + 0.005 * i)
               for j, r in enumerate(rows) for i in range(6)]
    vms, loads = [], {}
    for c in range(4):
        for n in range(4):
            vid = f"i{c}{n}"
            vms.append(vm(vid, customer=f"c{c}"))
            loads[vid] = hour_shape(10 + 2 * c, 0.55 + 0.1 * c)
    for e in range(3):
        for n in range(4):
            vid = f"s{e}{n}"
            vms.append(vm(vid, kind="saas", customer="llm", endpoint=f"e{e}", gpus=4))
            loads[vid] = hour_shape(14 + 3 * e, 0.6 + 0.1 * e)
    running = vms[::2]  # every family has running VMs: pending ones borrow an exact profile
    for k, v in enumerate(running):
        v["server_id"] = servers[(5 * k) % len(servers)]["server_id"]
    telemetry = hourly_history([v["vm_id"] for v in running], [loads[v["vm_id"]] for v in running])
    inv = write_inventory(
        tmp_path / "small", config={"horizon_h": 24},
        aisles=[{"aisle_id": "X1", "airflow_limit_cfm": 9000.0}, {"aisle_id": "X2", "airflow_limit_cfm": 9000.0}],
        rows=[{"row_id": r, "aisle_id": "X1" if j < 2 else "X2", "power_limit_kw": 30.0} for j, r in enumerate(rows)],
        servers=servers, vms=vms, telemetry=telemetry)
    return inv, loads


def small_scenario(tmp_path, small_room, **opts):
    inv, loads = small_room
    actual = actual_file(tmp_path / "actual_small.csv", loads)
    base = dict(step_min=60, actual=str(actual), traces=None, seed=3)
    base.update(opts)
    return build_scenario(inv, ScenarioOptions(**base))


def test_sources_under_actual_name_every_endpoint_and_customer(tmp_path, small_room):
    """sources.csv listed only the SaaS endpoints under --actual; IaaS customers ran from the
    file as well and were missing."""
    sc = small_scenario(tmp_path, small_room)
    families = set(sc.vms["endpoint"].where(sc.vms["kind"] == "saas", sc.vms["customer"]))
    assert set(sc.sources["family"]) == families
    assert set(sc.sources["kind"]) == {"saas", "iaas"}
    assert sc.sources["source"].str.startswith("actual file ").all()


@pytest.mark.parametrize("name", ["baseline", "place", "rules-place", "baseline-ff"])
def test_agrees_with_placement_model_when_actual_equals_forecast(tmp_path, small_room, name):
    """Actual load = the planner's forecast (same hourly steps, every VM present all week):
    the simulated row power, aisle airflow and each VM's peak GPU temperature equal what
    evaluate_assignment predicts for the same plan."""
    sc = small_scenario(tmp_path, small_room, arrival_hours=0.01)
    assert (sc.vms["arrival_step"] == 0).all()
    pol = POLICIES[name]
    pl = place_scenario(sc, pol.placement)
    res = simulate(sc, pol, pl)
    inst = sc.instance
    assign = np.full(inst.n_vms, -1)
    pend = sc.vms["pending_pos"].to_numpy()
    assign[pend[pend >= 0]] = pl.server[pend >= 0]
    ev = evaluate_assignment(inst, assign)
    np.testing.assert_allclose(res.row_kw, ev.row_kw, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(res.aisle_cfm, ev.aisle_cfm, rtol=1e-9, atol=1e-9)
    ids = pd.Series(np.arange(len(sc.vms)), index=sc.vms["vm_id"])
    np.testing.assert_allclose(res.vm_peak_temp_c[ids[inst.vm_ids].to_numpy()], ev.vm_peak_temp_c, rtol=1e-9)


@pytest.mark.parametrize("name", ["baseline", "full", "config", "tapas-rules"])
def test_conservation(tmp_path, small_room, name):
    """Rows are the sum of their servers and aisles of theirs (demand and delivered), delivered
    never exceeds demand, served never exceeds demanded, even under a UPS failure."""
    sc = small_scenario(tmp_path, small_room, events=("ups-failure:0.6",), event_start_h=6, event_hours=12)
    eng, res, _ = run_one(sc, name)
    assert check_conservation(eng, res) == []
    assert res.row_capped.any() or name in ("full", "config", "tapas-rules")


def test_event_window_limits(tmp_path, small_room):
    """A UPS failure scales every row's limit inside the window only."""
    sc = small_scenario(tmp_path, small_room, events=("ups-failure",), event_start_h=6, event_hours=12)
    inside = sc.event_mask
    assert inside.sum() == 12 and inside[6] and not inside[5] and not inside[18]
    np.testing.assert_allclose(sc.row_limit_kw[:, inside], 30.0 * 0.75)
    np.testing.assert_allclose(sc.row_limit_kw[:, ~inside], 30.0)
    # The per-row summary gives the draw and the limit of the same step (its ratio is the
    # row's peak fraction), not the week's largest draw against the event's limit.
    run = run_policies(sc, resolve_policies(["baseline"]))
    for row in run.summaries[0]["rows"]:
        assert row["peak_kw"] / row["limit_kw"] == pytest.approx(row["peak_fraction"], abs=1e-3)
        assert row["limit_kw"] in (pytest.approx(22.5), pytest.approx(30.0)) and row["max_kw"] >= row["peak_kw"]


def test_event_windows_the_week_cannot_give_are_warned_about(tmp_path, small_room):
    """An event window outside the week never happens, one past its end is cut: both said."""
    outside = small_scenario(tmp_path, small_room, events=("ups-failure",), event_start_h=500, event_hours=12)
    assert not outside.event_mask.any() and any("the events never happen" in w for w in outside.warnings)
    cut = small_scenario(tmp_path, small_room, events=("ups-failure",), event_start_h=20, event_hours=48)
    assert any("cut to the simulated week" in w for w in cut.warnings)
    whole = small_scenario(tmp_path, small_room, events=("ups-failure",), event_start_h=6, event_hours=12)
    assert not any("event" in w for w in whole.warnings)
    # Inside the week but shorter than a step: it holds no step (it said "outside the week").
    between = small_scenario(tmp_path, small_room, events=("ups-failure",), event_start_h=10.5, event_hours=0.2)
    assert not between.event_mask.any()
    assert any("holds no step of the simulated week (a step every 60 min)" in w for w in between.warnings)
    assert not any("outside" in w for w in between.warnings)


def test_a_row_power_event_above_the_limit_is_said(tmp_path, small_room):
    """row-power sets a row's limit: one above today's raises it, which simulate now says (as
    reconfigure does) instead of simulating a roomier week silently."""
    sc = small_scenario(tmp_path, small_room, events=("row-power:R1:100",), event_start_h=6, event_hours=12)
    assert any("raises the limit of row 'R1' from 30 to 100 kW" in w for w in sc.warnings)


def test_emergency_levels_are_checked_before_any_point_runs(tmp_path, small_room):
    """Every emergency of --levels that cannot run is reported at once, before the first point
    (a bad name was found after the points before it had run); 'none' has no window to measure
    (it wrote an empty emergencies.csv that report could not read), nor has a window outside
    the week."""
    from tapas_opt.inventory.load import load_inventory
    from tapas_opt.simulate.studies import emergency_problems

    inv, loads = small_room
    problems = emergency_problems(["ups-failure", "none", "bogus", "ahu-failure:Z9", "row-power:RX:3", "all"],
                                  load_inventory(inv))
    assert [(p.code, p.file) for p in problems] == [("bad_value", "--levels"), ("bad_event", "--levels"),
                                                    ("unknown_aisle", "--levels"), ("unknown_row", "--levels")]
    actual = actual_file(tmp_path / "actual.csv", loads)
    for extra, said, started in ((["--levels", "ups-failure,none"], "'none' is no emergency", False),
                                 (["--event-start", "500"], "lies outside the simulated week", True)):
        r = CliRunner().invoke(main, ["simulate", str(inv), "--out", str(tmp_path / "e"), "--actual", str(actual),
                                      "--study", "emergencies", "--policy", "baseline", "--step", "60", *extra])
        assert r.exit_code == 2 and said in " ".join(r.output.split()), r.output
        assert ("emergency ups-failure" in r.output) == started and not (tmp_path / "e").exists()


def test_arrivals_follow_batches(tmp_path, small_room):
    """Running VMs form the initial population (step 0); pending ones arrive in batches of one
    family, in queue order, at non-decreasing steps."""
    sc = small_scenario(tmp_path, small_room)
    v = sc.vms
    assert (v.loc[v["initial"], "arrival_step"] == 0).all()
    later = v[~v["initial"]]
    assert later["arrival_step"].is_monotonic_increasing
    assert later.groupby("family")["arrival_step"].nunique().max() == 1


def test_full_no_worse_than_baseline_on_peaks(tmp_path, small_room):
    """Routing is an exact LP per step: with the same placement it never raises the step's
    objective, so route+config is not above baseline on peak row power."""
    sc = small_scenario(tmp_path, small_room)
    run = run_policies(sc, resolve_policies(["baseline", "route"]))
    base, route = run.summaries
    assert route["peak_row_power_fraction"] <= base["peak_row_power_fraction"] + 1e-9
    for summary in run.summaries:  # the bounds hold under every policy
        assert summary["room_power_fraction_peak"] <= summary["peak_row_power_fraction"] + 1e-9
        assert summary["iaas_gpu_temp_floor_c"] <= summary["max_gpu_temp_c"] + 1e-6


def test_router_against_lp(tmp_path, small_room):
    """At every step the LP split is at least as good as the fast router's, and both at least
    as good as round-robin (objective: max row + max aisle + max GPU, normalised)."""
    sc = small_scenario(tmp_path, small_room)
    pl = place_scenario(sc, "random")
    fast = Engine(sc, POLICIES["route"], pl, EngineOptions(router="fast"))
    rr = Engine(sc, POLICIES["baseline"], pl)
    for t in range(0, 24, 3):
        inp = step_inputs(fast, t)
        args = (inp["D"], inp["present"][fast.idx_s], inp["cap"], inp["u"], inp["busy"], inp["present"], inp["ts"])
        lp_load, _ = routing_lp(fast, t)
        f = routing_objective(fast, fast.route(*args), inp)
        r = routing_objective(fast, rr.route(*args), inp)
        lp = routing_objective(fast, lp_load, inp)
        assert lp <= f + 1e-6 and f <= r + 1e-6


def test_routing_lp_re_solved_from_its_last_basis_reaches_each_steps_optimum(tmp_path, small_room):
    """The engine keeps one routing LP and re-solves it every step from the previous basis
    (dual simplex, no presolve): at every step it must reach the optimum a fresh LP finds."""
    from tapas_opt.simulate.routing import RoutingLP

    sc = small_scenario(tmp_path, small_room)
    engine = Engine(sc, POLICIES["route"], place_scenario(sc, "random"))
    warm = RoutingLP(engine, stick=0.0)
    for t in range(24):
        args = routing_lp_args(engine, t)
        _, warm_obj = warm.solve(*args)
        _, cold_obj = RoutingLP(engine, stick=0.0).solve(*args)
        assert warm_obj == pytest.approx(cold_obj, abs=1e-7)


def test_lp_router_keeps_saas_gpus_cool_when_an_iaas_vm_sets_the_peak(tmp_path):
    """An IaaS VM on a hot server sets the room's hottest GPU. An endpoint's two VMs share a
    row (row power does not care how its load is split) on servers whose GPUs heat differently.
    Below the IaaS peak the room's max does not care either, so the router used to keep the
    round-robin split and run the steep server 15 C hotter than the other; it now moves load to
    the cool server until their hottest GPUs are level (the hottest SaaS GPU is minimal)."""
    servers = [server("A1", "A", gpu_temp_intercept_c=40.0), server("B1", "B"),
               server("B2", "B", gpu_temp_c_per_w=0.12)]
    vms = [vm("i1", server_id="A1"), vm("s1", kind="saas", customer="llm", endpoint="e1", server_id="B1"),
           vm("s2", kind="saas", customer="llm", endpoint="e1", server_id="B2")]
    ts = pd.date_range(START - pd.Timedelta(days=28), START + pd.Timedelta(days=2), freq="60min")
    inv = write_inventory(
        tmp_path / "room", aisles=[{"aisle_id": "X", "airflow_limit_cfm": 1e5}],
        rows=[{"row_id": "A", "aisle_id": "X", "power_limit_kw": 20.0},
              {"row_id": "B", "aisle_id": "X", "power_limit_kw": 20.0}],
        servers=servers, vms=vms, telemetry=hourly_history(["i1", "s1", "s2"], [0.9, 0.5, 0.5]),
        outside=pd.DataFrame({"timestamp": ts, "temp_c": 20.0}))
    actual = actual_file(tmp_path / "actual.csv", {"i1": 0.9, "s1": 0.5, "s2": 0.5})
    sc = build_scenario(inv, ScenarioOptions(step_min=60, preexisting="history", actual=str(actual), traces=None))
    pl = place_scenario(sc, "random")
    res = simulate(sc, POLICIES["route"], pl)
    peak = pd.Series(res.vm_peak_temp_c, index=sc.vms["vm_id"])
    assert peak["i1"] > peak[["s1", "s2"]].max() + 5  # the IaaS VM sets the room's peak
    assert peak["s2"] == pytest.approx(peak["s1"], abs=0.05)  # level, not 15 C apart
    assert res.step["saas_served"].sum() == pytest.approx(res.step["saas_demand"].sum())
    by_kind = summarise(res, sc, pl, POLICIES["route"])["max_gpu_temp_by_kind_c"]
    assert by_kind == {"iaas": pytest.approx(peak["i1"], abs=1e-3), "saas": pytest.approx(peak["s2"], abs=1e-3)}


def test_reconfiguration_keeps_rows_under_limit(tmp_path, small_room):
    """Under a deep UPS failure the configurator reconfigures SaaS (quality may drop) before any
    IaaS VM is capped; capping happens less than for the baseline."""
    sc = small_scenario(tmp_path, small_room, events=("ups-failure:0.55",), event_start_h=0, event_hours=24)
    run = run_policies(sc, resolve_policies(["baseline", "config"]))
    base, cfg = run.summaries
    assert cfg["power_capped_row_time_pct"] <= base["power_capped_row_time_pct"]
    assert cfg["saas"]["reconfigured_vm_time_pct"] > 0
    # the share is of the SaaS VM-steps that run: placed VMs from their arrival on
    server, arrival = run.placements[run.policies[1].placement].server, sc.vms["arrival_step"].to_numpy()
    running = sum(len(run.results["config"].times) - arrival[i]
                  for i in range(len(sc.vms)) if sc.vms["kind"].iat[i] == "saas" and server[i] >= 0)
    reconfigured = run.results["config"].step["reconfigured_vms"].sum()
    assert cfg["saas"]["reconfigured_vm_time_pct"] == pytest.approx(100 * reconfigured / running, abs=0.01)


def _configured_power(engine, cfg, served):
    """Power (kW) of each SaaS VM in configurations ``cfg`` serving ``served`` (1-D)."""
    s, p = engine.idx_s, engine.params
    busy = engine.k[s] * engine.c_a[cfg]
    return p.vm_power_kw(engine.c_e[cfg] * served / busy, busy, engine.srv[s])


@pytest.mark.parametrize("events, start", [
    ((), "default"),               # no pressure: only VMs whose configuration cannot carry the load
    ((), "slowest"),
    (("heatwave:+25C",), "default"),  # hot GPUs, rows calm: the power budget alone is unlimited
    (("ups-failure:0.55",), "default"),
])
def test_a_reconfigured_vm_never_draws_more_than_before(tmp_path, small_room, events, start):
    """The configurator picked the catalogue's first configuration (quality, then speed) that
    carried a pressed VM's load, even when it spent more energy per token: on an all-SaaS room
    the config policy raised peak row power 3.8 % above the baseline. Now a VM reconfigured under
    pressure draws at most what its current configuration draws at the same load, and a VM whose
    configuration cannot carry its load at most what its default configuration would."""
    sc = small_scenario(tmp_path, small_room, events=events, event_start_h=0, event_hours=24)
    engine = Engine(sc, POLICIES["config"], place_scenario(sc, "random"))
    s = engine.idx_s
    if start == "slowest":  # every VM in its family's lowest-capacity quality-neutral configuration
        cur = np.array([min((c for c in engine.candidates[engine.fam_s[v]] if engine.c_q[c] >= 1),
                            key=lambda c: engine.c_cap[c]) for v in range(len(s))])
    else:
        cur = engine.default_cfg.copy()
    checked = 0
    for t in range(sc.n_steps):
        inp = step_inputs(engine, t)
        present_s = inp["present"][s]
        load = engine.route(inp["D"], present_s, inp["cap"], inp["u"], inp["busy"], inp["present"], inp["ts"])[:, 0]
        cfg, served = engine._configure_step(load, present_s[:, 0], inp["u"], inp["busy"], inp["present"], inp["ts"], cur)
        moved = (cfg != cur) & present_s[:, 0] & (served >= load - 1e-9)
        short = engine.k[s] * engine.c_cap[cur] < load - 1e-9
        before = np.where(short, _configured_power(engine, engine.default_cfg, load), _configured_power(engine, cur, load))
        assert np.all(_configured_power(engine, cfg, served)[moved] <= before[moved] + 1e-9), t
        checked += moved.sum()
    assert checked > 0  # the configurator did act


def test_must_place_counts_each_vm_once_when_the_warm_up_is_over_the_limits(tmp_path):
    """Two running VMs (the warm-up) and two arrivals, each breaking its row's limit wherever it
    goes: four VMs over the forecast limits. The count used to include the arrivals twice (the
    warm-up's fallback placed them too before they were taken back for the online loop)."""
    servers = [server(f"{r}{i}", r) for r in "AB" for i in (1, 2)]
    vms = [vm("r1", server_id="A1"), vm("r2", server_id="B1"), vm("p1"), vm("p2")]
    inv = write_inventory(
        tmp_path / "room", aisles=[{"aisle_id": "X", "airflow_limit_cfm": 1e5}],
        rows=[{"row_id": r, "aisle_id": "X", "power_limit_kw": 5.0} for r in "AB"],
        servers=servers, vms=vms, telemetry=hourly_history(["r1", "r2"], [1.0, 1.0]))
    actual = actual_file(tmp_path / "actual.csv", {v["vm_id"]: 1.0 for v in vms})
    sc = build_scenario(inv, ScenarioOptions(step_min=60, preexisting="policy", actual=str(actual), traces=None))
    pl = place_scenario(sc, "tapas-opt")
    assert (pl.server >= 0).all()
    assert pl.stats["warmup_placed_over_forecast_limits"] == 2
    assert pl.stats["placed_over_forecast_limits"] == 4


# ---- transforms, outputs, CLI ---------------------------------------------------------------

def test_oversubscribe_keeps_limits(tmp_path, small_room):
    """+50 %: every row gets half as many servers again (clones of its own), the VMs grow by
    half, the limits stay."""
    from tapas_opt.inventory.load import load_inventory

    inv = load_inventory(small_room[0])
    big = oversubscribe(inv, 0.5, seed=1)
    assert big.servers.groupby("row_id").size().tolist() == [9, 9, 9, 9]
    assert len(big.vms) == 42 and big.vms["vm_id"].is_unique and big.servers["server_id"].is_unique
    pd.testing.assert_frame_equal(big.rows, inv.rows)
    pd.testing.assert_frame_equal(big.aisles, inv.aisles)


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_remix_sets_the_saas_share(tmp_path, small_room, share):
    """Relabelled VMs reach the requested SaaS GPU share (within one VM) and every SaaS VM has
    an endpoint."""
    from tapas_opt.inventory.load import load_inventory

    inv = load_inventory(small_room[0])
    out = remix(inv, share, seed=0)
    saas = out.vms["kind"] == "saas"
    got = out.vms.loc[saas, "gpus"].sum() / out.vms["gpus"].sum()
    assert abs(got - share) <= 8 / out.vms["gpus"].sum() + 1e-9
    assert out.vms.loc[saas, "endpoint"].notna().all()
    assert (out.vms["server_id"].fillna("") == inv.vms["server_id"].fillna("")).all()


def test_a_mix_share_the_room_cannot_reach_is_said(tmp_path, small_room):
    """Whole VMs are relabelled: a 0.1 share of a room of 8-GPU and 4-GPU VMs (176 GPUs) cannot
    be met within a point; the mix study's label said 10 % silently. A share it reaches is not
    warned about."""
    sc = small_scenario(tmp_path, small_room, seed=0)
    assert not any("SaaS share" in w for w in sc.warnings)
    inv, loads = small_room
    actual = actual_file(tmp_path / "actual_small.csv", loads)
    missed = []
    for share in (0.1, 0.5):
        sc = build_scenario(inv, ScenarioOptions(step_min=60, actual=str(actual), seed=3), saas_share=share)
        gpus = sc.vms["gpus"].to_numpy(float)
        got = gpus[(sc.vms["kind"] == "saas").to_numpy()].sum() / gpus.sum()
        said = [w for w in sc.warnings if "SaaS share" in w]
        assert bool(said) == (abs(got - share) > 0.01)
        if said:
            assert f"rounds to {got:.1%}" in said[0]
            missed.append(share)
    assert 0.1 in missed


def test_write_run_outputs(tmp_path, small_room):
    """timeseries.parquet is tidy (policy, timestamp, scope, id, metric, value) with rows,
    aisles and room metrics; summary.json carries every policy; the table is relative to the
    baseline."""
    sc = small_scenario(tmp_path, small_room)
    run = run_policies(sc, resolve_policies(["baseline", "full"]))
    out = write_run(tmp_path / "out", run, plots=True)
    ts = pd.read_parquet(out / "timeseries.parquet")
    assert list(ts.columns) == ["policy", "timestamp", "scope", "id", "metric", "value"]
    assert set(ts["scope"]) == {"row", "aisle", "room"}
    rows = ts[(ts["scope"] == "row") & (ts["metric"] == "power_kw") & (ts["policy"] == "baseline")]
    assert len(rows) == 4 * sc.n_steps
    doc = json.loads((out / "summary.json").read_text())
    assert set(doc["policies"]) == {"baseline", "full"}
    assert doc["policies"]["baseline"]["components"]["placement"] == "random"
    table = pd.read_csv(out / "comparison.csv")
    assert table.loc[table["policy"] == "baseline", "peak_row_power_change_pct"].iloc[0] == 0
    for png in ("row_power.png", "max_gpu_temp.png"):
        assert (out / png).stat().st_size > 1000
    assert comparison_table(run.summaries).shape[0] == 2
    assert set(timeseries_frame(run.results["full"])["metric"]) >= {"power_kw", "airflow_cfm", "max_gpu_temp_c",
                                                                    "capped_rows", "throttled_gpus"}


def test_study_oversubscription(tmp_path, small_room):
    """A two-point sweep gives one line per point and policy, a CSV and a PNG; cloned VMs
    follow the actual load of the VM they clone; a quarter more servers and VMs under the same
    limits raise the baseline's peak row power here."""
    inv, loads = small_room
    actual = actual_file(tmp_path / "actual_os.csv", loads)
    opts = ScenarioOptions(step_min=60, actual=str(actual), traces=None)
    res = run_study("oversubscription", inv, opts, resolve_policies(["baseline", "full"]), levels=[0.0, 0.25],
                    fast_placement=True)
    out = write_study(tmp_path / "study", res)
    frame = pd.read_csv(out / "oversubscription.csv")
    assert list(frame["policy"]) == ["baseline", "full", "baseline", "full"]
    assert list(frame["extra_servers_pct"]) == [0.0, 0.0, 25.0, 25.0]
    assert frame["vms"].iloc[2] == 35
    # rows of six servers get round(1.5) = 2 more each: +33 %, not +25 %, and the study says so
    assert list(frame["servers"]) == [24, 24, 32, 32]
    assert res.warnings == ["+25.0% servers rounds to 8 server(s) (+33.3%) in rows of 6 servers; 7 VM(s) are "
                            "added for the share asked (at 0.25)"]
    base = frame[frame["policy"] == "baseline"]["peak_row_power"].to_numpy()
    assert base[1] >= base[0] - 1e-9
    assert (out / "oversubscription.png").exists()
    assert json.loads((out / "summary.json").read_text())["warnings"] == res.warnings


def test_policy_all_with_a_study_runs_every_policy_and_json_prints_the_summary(tmp_path, small_room):
    """An explicit --policy all with --study ran only the study's three default policies (it
    could not be told from the default), and --study --json printed the table alone, without
    the warnings summary.json holds."""
    inv, loads = small_room
    actual = actual_file(tmp_path / "actual_all.csv", loads)
    args = ["simulate", str(inv), "--actual", str(actual), "--study", "mix", "--levels", "0.5", "--fast-placement",
            "--router", "fast", "--no-plots", "--step", "60", "--json"]
    res = CliRunner().invoke(main, args + ["--out", str(tmp_path / "all"), "--policy", "all"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert set(doc) == {"study", "warnings", "points", "table"}
    assert [r["policy"] for r in doc["table"]] == list(ALL)
    assert doc == json.loads((tmp_path / "all" / "summary.json").read_text())
    res = CliRunner().invoke(main, args + ["--out", str(tmp_path / "default")])
    assert [r["policy"] for r in json.loads(res.stdout)["table"]] == ["baseline", "tapas-rules", "full"]


def test_study_warnings_are_said_once_with_the_points_they_apply_to():
    from tapas_opt.simulate.studies import study_warnings

    said = study_warnings([("0", ["traces short", "VM a thin"]), ("0.5", ["traces short"]), ("1", ["traces short"])])
    assert said == ["traces short", "VM a thin (at 0)"]
    assert study_warnings([("0", []), ("1", [])]) == []


def test_resolve_policies():
    """``all`` is the nine policies of the issue; unknown names are refused."""
    names = [p.name for p in resolve_policies(["all"])]
    assert names == ["baseline", "place", "route", "config", "place+route", "place+config", "route+config",
                     "tapas-rules", "full"]
    with pytest.raises(ValueError, match="unknown policies 'nope', 'bogus'"):  # every one, not the first
        resolve_policies(["nope", "full", "bogus", "nope"])
    assert [p.name for p in resolve_policies(["full", "baseline", "full"])] == ["full", "baseline"]


def test_cli_simulate(tmp_path, small_room):
    """``tapas-opt simulate`` writes its outputs and exits 0; a bad policy exits 2."""
    inv, loads = small_room
    actual = actual_file(tmp_path / "actual_cli.csv", loads)
    out = tmp_path / "sim"
    r = CliRunner().invoke(main, ["simulate", str(inv), "--out", str(out), "--actual", str(actual), "--step", "60",
                                  "--policy", "baseline", "--policy", "full", "--no-plots", "--quiet"])
    assert r.exit_code == 0, r.output
    assert {p.name for p in out.iterdir()} >= {"timeseries.parquet", "summary.json", "comparison.csv", "placements.csv"}
    assert json.loads((out / "summary.json").read_text())["reference_policy"] == "baseline"
    r = CliRunner().invoke(main, ["simulate", str(inv), "--out", str(out), "--actual", str(actual), "--policy", "nope"])
    assert r.exit_code == 2
    r = CliRunner().invoke(main, ["simulate", str(inv), "--out", str(tmp_path / "x"), "--traces", str(tmp_path / "none")])
    assert r.exit_code == 2
    r = CliRunner().invoke(main, ["simulate", str(inv), "--out", str(tmp_path / "y"), "--actual", str(actual),
                                  "--step", "7", "--quiet"])
    assert r.exit_code == 2 and "does not divide both a day" in r.output and not (tmp_path / "y").exists()
    for study, levels, bad in (("mix", "0.5,1.5,-0.2", ["1.5", "-0.2"]), ("oversubscription", "0,4", ["4"])):
        r = CliRunner().invoke(main, ["simulate", str(inv), "--out", str(tmp_path / "z"), "--actual", str(actual),
                                      "--study", study, "--levels", levels, "--quiet"])
        assert r.exit_code == 2 and [f"{x} is outside" in r.output for x in bad] == [True] * len(bad), r.output
    # Every bad option at once; a point given twice (it crashed the plots) and --levels without
    # a study (ignored before) are bad usage too.
    r = CliRunner().invoke(main, ["simulate", str(inv), "--out", str(tmp_path / "z"), "--actual", str(actual),
                                  "--policy", "nope", "--study", "emergencies", "--levels", "ups-failure,ups-failure"])
    assert r.exit_code == 2 and "unknown policy 'nope'" in r.output and "'ups-failure' is given 2 times" not in r.output
    assert "ups-failure is given 2 times" in r.output
    r = CliRunner().invoke(main, ["simulate", str(inv), "--out", str(tmp_path / "z"), "--levels", "0.5"])
    assert r.exit_code == 2 and "sweep points need a --study" in r.output


def test_simulate_options_are_checked_at_once_before_the_traces(tmp_path, small_room):
    """A bad --step, an event typo, an event naming an unknown aisle and a missing traces
    directory were reported one per run (the aisle only after the traces were mapped and the
    load forecast); they are reported together, before any of that."""
    inv, _ = small_room
    r = CliRunner().invoke(main, ["simulate", str(inv), "--out", str(tmp_path / "o"), "--step", "7", "--event", "bogus",
                                  "--event", "ahu-failure:NOPE", "--traces", str(tmp_path / "none"), "--quiet"])
    assert r.exit_code == 2
    flat = " ".join(r.output.split())
    for said in ("does not divide both a day", "'bogus'", "NOPE", "real traces directory not found"):
        assert said in flat, (said, r.output)
    # --levels and --weather with them: a bad sweep point, a weather file that is no EPW, the step
    weather = tmp_path / "short.epw"
    weather.write_text("\n".join(["header"] * 8 + ["1,2,3,4,5,6,20.0"] * 30) + "\n")
    r = CliRunner().invoke(main, ["simulate", str(inv), "--out", str(tmp_path / "o"), "--step", "7", "--quiet",
                                  "--study", "mix", "--levels", "2", "--weather", str(weather),
                                  "--traces", str(tmp_path / "none")])
    flat = " ".join(r.output.split())
    assert r.exit_code == 2
    for said in ("2 is outside", "not a year", "does not divide both a day", "real traces directory not found"):
        assert said in flat, (said, r.output)


def test_simulate_says_the_inventory_warnings_and_unused_event_hours(tmp_path, small_room):
    """simulate dropped the inventory's warnings (a row limit below its idle draw, printed by
    validate and place) and said nothing of --event-hours without --event."""
    import shutil

    inv, loads = small_room
    room = tmp_path / "room"
    shutil.copytree(inv, room)
    rows = pd.read_csv(room / "rows.csv")
    rows.loc[0, "power_limit_kw"] = 10.0  # six servers idle at 2 kW
    rows.to_csv(room / "rows.csv", index=False)
    actual = actual_file(tmp_path / "actual_w.csv", loads)
    r = CliRunner().invoke(main, ["simulate", str(room), "--out", str(tmp_path / "o"), "--actual", str(actual),
                                  "--step", "60", "--policy", "baseline", "--event-hours", "5", "--no-plots", "--json"])
    assert r.exit_code == 0, r.output
    said = json.loads(r.stdout)["warnings"]
    assert any("limit_below_idle" in w for w in said) and "--event-hours has no effect without --event" in said


def test_actual_loads_are_checked_all_at_once(tmp_path):
    """--actual: every bad row, unknown VM and VM without load in the week is reported in one
    error; an hourly series over the whole week is full coverage, a series over part of it a
    warning."""
    from tapas_opt.errors import InventoryError
    from tapas_opt.simulate.scenario import read_actual

    times = pd.date_range("2026-06-01", periods=7 * 24 * 12, freq="5min")
    vms = pd.DataFrame({"vm_id": ["a", "b", "c"]})
    hours = pd.date_range("2026-06-01", periods=7 * 24, freq="60min")
    good = pd.concat([pd.DataFrame({"vm_id": v, "timestamp": hours, "load": 0.5}) for v in ("a", "b")])
    part = pd.DataFrame({"vm_id": "c", "timestamp": hours[:72], "load": 0.3})
    path = tmp_path / "actual.csv"
    pd.concat([good, part]).to_csv(path, index=False)
    warnings: list[str] = []
    wide = read_actual(path, vms, times, 5, warnings)
    assert wide.shape == (3, len(times)) and not wide.isna().any().any()
    assert len(warnings) == 1 and "1 VM(s)" in warnings[0] and "'c' 43%" in warnings[0]
    # two samples a week apart span the week but cover two hours of it (it passed as covered)
    sparse = pd.DataFrame({"vm_id": "c", "timestamp": hours[[0, -1]], "load": 0.3})
    pd.concat([good, sparse]).to_csv(path, index=False)
    warnings = []
    read_actual(path, vms, times, 5, warnings)
    assert len(warnings) == 1 and "'c' 1%" in warnings[0]
    # the same row twice with another load is averaged, and said; an empty file says it is empty
    clash = pd.DataFrame({"vm_id": ["a"], "timestamp": [hours[0]], "load": [0.9]})
    pd.concat([good, part, clash]).to_csv(path, index=False)
    warnings = []
    read_actual(path, vms, times, 5, warnings)
    assert any("appear more than once with different loads, e.g. 'a'" in w for w in warnings)
    path.write_text("")
    with pytest.raises(InventoryError) as err:
        read_actual(path, vms, times, 5)
    assert "is empty" in err.value.problems[0].message

    bad = pd.concat([good.iloc[:3], part.iloc[:0]]).astype(object)
    bad.iloc[0, 1] = "junk"
    bad.iloc[1, 2] = 2.0
    bad.iloc[2, 2] = "0,5"
    extra = pd.DataFrame({"vm_id": ["ghost", None], "timestamp": ["2026-06-01", "2026-06-01"], "load": [0.1, 0.2]})
    pd.concat([bad, extra]).to_csv(path, index=False)
    with pytest.raises(InventoryError) as err:
        read_actual(path, vms, times, 5)
    got = {(p.code, p.line, p.column) for p in err.value.problems}
    assert ("bad_timestamp", 2, "timestamp") in got and ("out_of_range", 3, "load") in got
    assert ("bad_type", 4, "load") in got  # a decimal comma is no number, not a load out of range
    assert ("unknown_vm", 5, "vm_id") in got  # ghost, at its first row
    assert ("missing_value", 6, "vm_id") in got  # a load of no VM (such rows were dropped silently)
    assert ("unknown_vm", None, "vm_id") in got  # no load for b and c
    assert sum("no actual load for VM" in p.message for p in err.value.problems) == 3  # a: no usable row

    for text in ("a,2026-06-01 00:00,0.5\nb,2026-06-01 00:00,0.5,extra\n", "a,2026-06-01 00:00,0.5,\n"):
        path.write_text("vm_id,timestamp,load\n" + text)
        with pytest.raises(InventoryError) as err:
            read_actual(path, vms, times, 5)
        assert [p.code for p in err.value.problems] == ["unreadable_file"]


def test_a_bad_inventory_and_a_bad_actual_file_are_reported_together(tmp_path, small_room):
    """simulate with an unusable inventory still reports the --actual file's own problems (the
    ones that need no inventory) in the same error, exit 2, nothing written."""
    import shutil

    inv, loads = small_room
    room = tmp_path / "room"
    shutil.copytree(inv, room)
    rows = pd.read_csv(room / "rows.csv")
    rows.loc[0, "power_limit_kw"] = -5
    rows.to_csv(room / "rows.csv", index=False)
    actual = tmp_path / "actual.csv"
    actual.write_text("vm_id,timestamp,load\nvm1,2026-06-01 00:00,1.5\nvm1,yesterday,0.5\n")
    out = tmp_path / "sim"
    r = CliRunner().invoke(main, ["simulate", str(room), "--out", str(out), "--actual", str(actual), "--quiet"])
    assert r.exit_code == 2, r.output
    assert "rows.csv:2 [power_limit_kw]" in r.output
    assert "actual.csv:2 [load]" in r.output and "actual.csv:3 [timestamp]" in r.output
    assert not out.exists()


@pytest.mark.parametrize("content, expected", [
    ("minute,code,conv\n0,1,2\n", "missing_column: column(s) code_requests, conv_requests missing (it has minute, code, conv)"),
    ("minute,code_requests,conv_requests\n0,1,2\nx,3,4\n", "[minute]: bad_type: 1 value(s) are not numbers, the first 'x'"),
    ("", "unreadable_file: cannot read it"),
])
def test_a_trace_file_that_is_not_the_expected_one_is_bad_input(tmp_path, content, expected):
    """A traces folder whose Azure file has other columns, text where numbers go, or nothing
    crashed simulate with a KeyError (exit 3); it is bad input naming the file (exit 2)."""
    inv = tiny_room(tmp_path)  # (a SaaS VM: the Azure week is read)
    azure = tmp_path / "traces" / "azure_llm_2024_minutes" / "azure2024-llm-minutes.csv"
    azure.parent.mkdir(parents=True)
    azure.write_text(content)
    res = CliRunner().invoke(main, ["simulate", str(inv), "--traces", str(tmp_path / "traces"), "--policy", "baseline",
                                    "--out", str(tmp_path / "out"), "--quiet"])
    assert res.exit_code == 2, res.output
    assert "azure2024-llm-minutes.csv" in res.output
    assert expected in " ".join(res.output.split()), res.output
    assert not (tmp_path / "out").exists()


def test_the_hottest_step_of_every_server_class_is_among_the_candidates():
    """iaas_gpu_temp_floor_c evaluates only each VM's Pareto front of (g(u), inlet): for any
    non-negative slope, the hottest step over all arrived steps is among them (ties, repeated
    values and VMs with no arrived step included)."""
    from tapas_opt.simulate.metrics import _hottest_candidates

    rng = np.random.default_rng(7)
    for _ in range(50):
        V, T = 6, 40
        g = np.round(rng.random((V, T)), 1)           # rounding makes ties
        inlet = np.round(20 + 5 * rng.random(T), 1)
        arrived = rng.random((V, T)) < 0.7
        arrived[0] = False
        candidates = _hottest_candidates(g, inlet, arrived)
        assert len(candidates[0]) == 0
        for slope in (0.0, 0.3, 1.0, 7.0, 100.0):
            temp = np.where(arrived, inlet[None, :] + slope * g, -np.inf)
            for v in range(1, V):
                assert arrived[v, candidates[v]].all()
                assert temp[v, candidates[v]].max() == temp[v].max()
