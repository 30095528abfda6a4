"""Request routing: the per-slot LP, the per-batch router, and the route/reconfigure commands."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import hourly_history, server, vm, write_inventory
from tapas_opt.cli import main
from tapas_opt.errors import MORE, InventoryError
from tapas_opt.reconfig.catalogue import load_catalogue
from tapas_opt.reconfig.evaluate import check_plan
from tapas_opt.reconfig.events import parse_events
from tapas_opt.reconfig.instance import build_reconfig_instance
from tapas_opt.reconfig.plan import ReconfigPlan
from tapas_opt.reconfig.routing import Router, risk_headroom, solve_routing_slot
from tapas_opt.reconfig.run import prepare_room, route

CAT = load_catalogue()


def saas_vm(vm_id, endpoint, server_id, model="llama-70b", gpus=8) -> dict:
    return {**vm(vm_id, kind="saas", customer="llm", endpoint=endpoint, gpus=gpus, server_id=server_id), "model": model}


@pytest.fixture
def busy_and_quiet(tmp_path):
    """Endpoint ep1: one VM in row A beside a busy IaaS VMs, one in an
    otherwise empty row B; ep2 has a single VM in row B. Loads are constant; row A draws
    6 + 2.25 + 2 x 4.05 = 16.35 kW of its 20 kW."""
    servers = [server(f"{r}{i}", r) for r in "AB" for i in (1, 2, 3)]
    vms = [saas_vm("s1", "ep1", "A1"), saas_vm("s2", "ep1", "B1"), saas_vm("s3", "ep2", "B2", model="llama-8b"),
           vm("i1", server_id="A2"), vm("i2", server_id="A3")]
    loads = {"s1": 0.5, "s2": 0.5, "s3": 0.4, "i1": 0.9, "i2": 0.9}
    return write_inventory(
        tmp_path / "busy_and_quiet", aisles=[{"aisle_id": "X", "airflow_limit_cfm": 1e5}],
        rows=[{"row_id": r, "aisle_id": "X", "power_limit_kw": 20.0} for r in "AB"],
        servers=servers, vms=pd.DataFrame(vms), telemetry=hourly_history(list(loads), list(loads.values())))


def test_routing_lp_moves_load_to_the_quiet_row(busy_and_quiet):
    """The LP keeps rows as far from their limits as it can: ep1's load leans to row B until
    both rows are equally loaded; shares sum to one; every VM within capacity; checker clean."""
    prep = prepare_room(busy_and_quiet, forecast_method="template")
    inst = build_reconfig_instance(prep, CAT, parse_events(["none"]))
    plan = ReconfigPlan.unchanged(inst)
    res = solve_routing_slot(inst, plan)
    assert res.status == "optimal" and res.unserved.sum() == pytest.approx(0.0)
    plan.saas_load = res.loads
    ev = check_plan(inst, plan)
    assert ev.feasible
    before = check_plan(inst, ReconfigPlan.unchanged(inst))
    assert ev.row_kw.max() < before.row_kw.max() - 0.1
    assert res.z_row == pytest.approx(ev.row_kw.max() / 20.0, abs=1e-6)
    assert res.loads[0] < 4.0 < res.loads[1]
    ep = inst.saas_endpoint_idx
    np.testing.assert_allclose(np.bincount(ep, res.loads), inst.endpoint_demand, atol=1e-6)


def test_routing_leaves_load_unserved_before_it_breaks_a_limit(busy_and_quiet):
    """Limits first: with row A cut to 14.5 kW (IaaS and idle draw 14.1) and row B to 7 kW
    (idle 6), the SaaS VMs can serve only what fits in 1.4 kW; the LP serves that much and no
    more, with both rows within their limits, rather than serve everything over them (it did:
    1e4 per unserved unit outweighed 100 per unit of a row's ratio over its limit)."""
    prep = prepare_room(busy_and_quiet, forecast_method="template")
    inst = build_reconfig_instance(prep, CAT, parse_events(["row-power:A:14.5", "row-power:B:7"]))
    res = solve_routing_slot(inst, ReconfigPlan.unchanged(inst))
    assert res.status == "optimal"
    assert res.z_row == pytest.approx(1.0, abs=1e-6)
    assert res.unserved.sum() > 0.5 * inst.endpoint_demand.sum()
    routed = ReconfigPlan.unchanged(inst)
    routed.saas_load = res.loads
    ev = check_plan(inst, routed)
    assert (ev.row_kw <= ev.row_limit_kw * (1 + 1e-6)).all()
    assert res.loads.sum() + res.unserved.sum() == pytest.approx(inst.endpoint_demand.sum())


def test_routing_a_slot_no_split_can_fit_makes_the_excess_smallest_then_serves(busy_and_quiet):
    """Row A cut below what its IaaS VMs and idle servers draw (14.1 kW): no split meets it, so
    the LP keeps row A's excess to that floor (its SaaS VM s1 carries nothing) and serves the
    rest of the load in row B, which has room for it."""
    prep = prepare_room(busy_and_quiet, forecast_method="template")
    inst = build_reconfig_instance(prep, CAT, parse_events(["row-power:A:12"]))
    res = solve_routing_slot(inst, ReconfigPlan.unchanged(inst))
    assert res.status == "optimal"
    s1 = int(np.flatnonzero(inst.saas["vm_id"].to_numpy() == "s1")[0])
    assert res.loads[s1] == pytest.approx(0.0, abs=1e-6)
    nothing = ReconfigPlan.unchanged(inst)
    nothing.saas_load = np.zeros(len(inst.saas))
    floor = check_plan(inst, nothing).row_kw[0] / 12.0
    assert res.z_row == pytest.approx(floor, rel=1e-6)
    assert res.unserved.sum() == pytest.approx(0.0, abs=1e-6)


def test_route_writes_every_slot(busy_and_quiet, tmp_path):
    """route() over the horizon: one share per VM and slot, shares of an endpoint sum to one."""
    out = route(busy_and_quiet, tmp_path / "r", prepared=prepare_room(busy_and_quiet, forecast_method="template"))
    assert len(out.slots) == 24
    sums = out.routing.groupby(["timestamp", "endpoint"])["share"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, atol=1e-5)
    assert {"routing.csv", "slots.csv", "summary.json"} <= {p.name for p in (tmp_path / "r").iterdir()}


# ---- the per-batch router -------------------------------------------------------------------

def table(shares: dict[str, float], endpoint="ep") -> pd.DataFrame:
    return pd.DataFrame({"endpoint": endpoint, "vm_id": list(shares), "share": list(shares.values())})


def test_router_follows_the_shares_exactly_over_batches():
    """Counts per VM stay within one request of share x total, batch after batch."""
    r = Router(table({"a": 0.5, "b": 0.3, "c": 0.2}))
    total = pd.Series(0, index=["a", "b", "c"])
    for n in (1, 7, 3, 10, 29, 50):
        got = pd.Series(r.route("ep", n)).value_counts()
        total = total.add(got, fill_value=0)
        sent = total.sum()
        assert (abs(total - sent * pd.Series({"a": 0.5, "b": 0.3, "c": 0.2})) <= 1.0 + 1e-9).all()


def test_router_moves_load_off_vms_at_risk_as_far_as_the_others_have_room():
    """A VM below the headroom threshold sheds its share onto the safe VMs, each growing at most
    to share / (1 - headroom); what they cannot take stays on it. All at risk: the shares."""
    r = Router(table({"a": 0.5, "b": 0.5}), headroom=pd.Series({"a": 0.001, "b": 0.6}))
    assert set(r.route("ep", 20)) == {"b"}  # b may grow to 0.5 / 0.4 = 1.25: it takes all
    r.update(headroom=pd.Series({"a": 0.001, "b": 0.2}))  # b may grow to 0.625 only
    got = pd.Series(r.route("ep", 800)).value_counts()
    assert got["b"] == pytest.approx(500, abs=1) and got["a"] == pytest.approx(300, abs=1)
    r.update(headroom=pd.Series({"a": 0.001, "b": 0.001}))
    assert set(r.route("ep", 20)) == {"a", "b"}


def test_a_vm_missing_from_headroom_keeps_its_share():
    """A VM absent from headroom was taken as fully free (1.0): it could grow without bound and
    took the whole endpoint when the others were at risk, 27 times its share."""
    r = Router(table({"a": 0.1, "b": 0.45, "c": 0.45}), headroom=pd.Series({"b": 0.01, "c": 0.01}))
    got = pd.Series(r.route("ep", 1000)).value_counts()
    assert got.to_dict() == {"b": 450, "c": 450, "a": 100}


def test_router_checks_its_arguments_and_keeps_credits_by_vm():
    """sessions shorter than the batch gave None as a VM, longer an IndexError, n=-1 a numpy
    message; update(routing=) with the VMs in another order moved their credits to others."""
    r = Router(table({"a": 0.5, "b": 0.3, "c": 0.2}))
    for n, sessions in ((3, ["s1"]), (1, ["s1", "s2"]), (-1, None), (5.0, None), (True, None)):
        with pytest.raises(ValueError):
            r.route("ep", n, sessions=sessions)
    r.route("ep", 7)
    before = dict(zip(r._vms["ep"], r._credit["ep"]))
    r.update(routing=table({"c": 0.2, "a": 0.5, "b": 0.3}))
    assert dict(zip(r._vms["ep"], r._credit["ep"])) == pytest.approx(before)


def test_shift_from_risk_never_pushes_a_vm_past_its_headroom():
    """Whatever the shares and headrooms, a safe VM ends at most at share / (1 - headroom), the
    shares still sum to 1, and a VM at risk never gains."""
    from tapas_opt.reconfig.routing import shift_from_risk

    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(2, 8))
        w = rng.dirichlet(np.ones(n))
        room = rng.choice([0.0, 0.01, 0.05, 0.3, 0.9], n)
        out = shift_from_risk(w, room, 0.02)
        risky = room < 0.02
        assert out.sum() == pytest.approx(1.0)
        if risky.all() or not risky.any():
            assert out == pytest.approx(w)
            continue
        assert (out[~risky] <= w[~risky] / (1 - room[~risky]) + 1e-9).all()
        assert (out[risky] <= w[risky] + 1e-12).all()


def test_router_on_a_plan_at_its_limits_keeps_every_vm_within_its_throughput(tmp_path):
    """The documented pairing, Router(routing.csv, risk_headroom(instance, plan)) on the example's
    UPS-failure plan: most VMs end at a limit, and dropping them sent an endpoint's whole load
    to its one VM with headroom (5.5 times its throughput). No VM now gets more load than it
    can serve."""
    from conftest import EXAMPLE
    from tapas_opt.reconfig.evaluate import saas_physics
    from tapas_opt.reconfig.run import reconfigure

    result = reconfigure(EXAMPLE, events=("ups-failure",), out_dir=tmp_path / "ups",
                         prepared=prepare_room(EXAMPLE, forecast_method="template"))
    inst, plan = result.instance, result.plan
    vm_ids = inst.saas["vm_id"].to_numpy()
    capacity = pd.Series(saas_physics(inst, plan)["capacity"], index=vm_ids)
    served = pd.Series(np.asarray(plan.saas_load, float), index=vm_ids)
    headroom = risk_headroom(inst, plan)
    assert (headroom < 0.02).mean() > 0.5  # the case of the report: most VMs at a limit
    routing = pd.read_csv(tmp_path / "ups" / "routing.csv")
    router = Router(routing, headroom=headroom)
    for ep, grp in routing.groupby("endpoint"):
        total = served[grp["vm_id"]].sum()
        got = pd.Series(router.route(ep, 10_000)).value_counts().reindex(grp["vm_id"], fill_value=0) / 10_000
        one_request = total / 10_000  # (and routing.csv's shares are rounded)
        assert (got * total <= capacity[grp["vm_id"]] * 1.001 + one_request).all(), ep


def test_router_refuses_a_routing_table_of_many_slots_or_with_nan_shares():
    """route's routing.csv has a line per slot: merged, every slot was dealt at once. A NaN share
    failed with 'repeats may not contain negative values'."""
    slots = pd.concat([table({"a": 0.5, "b": 0.5}).assign(timestamp=t) for t in ("t0", "t1")])
    with pytest.raises(ValueError, match="pass one slot's lines"):
        Router(slots)
    with pytest.raises(ValueError, match="not finite numbers >= 0"):
        Router(table({"a": float("nan"), "b": 0.5}))


def test_router_keeps_sessions_on_their_vm():
    """A known session goes back to the VM holding its KV cache; new ones follow the shares."""
    r = Router(table({"a": 0.5, "b": 0.5}))
    first = r.route("ep", 4, sessions=["s1", "s2", "s3", "s4"])
    again = r.route("ep", 4, sessions=["s4", "s3", "s2", "s1"])
    assert list(again) == list(first[::-1])
    r.update(headroom=pd.Series({first[0]: 0.0, "a" if first[0] == "b" else "b": 0.5}))
    moved = r.route("ep", 1, sessions=["s1"])
    assert moved[0] != first[0]


def test_a_new_session_repeated_in_one_batch_stays_on_one_vm():
    """Requests of a session not seen before, twice in the same batch, go to one VM (they were
    dealt like strangers: session 'a' on two VMs); the rest follow the shares."""
    r = Router(table({"a": 0.25, "b": 0.25, "c": 0.25, "d": 0.25}))
    out = r.route("ep", 6, sessions=["x", "y", "z", "x", "x", "y"])
    assert out[0] == out[3] == out[4] and out[1] == out[5]
    assert len(set(out[[0, 1, 2]])) == 3  # three sessions dealt by the shares
    assert list(r.route("ep", 2, sessions=["x", "z"])) == [out[0], out[2]]


@pytest.mark.parametrize("mode", ["pairs", "sticky"])
def test_sessions_never_break_the_shares_over_time(mode):
    """Requests kept on their session's VM count against its share like dealt ones: with every
    new session sending two requests per batch (which crashed the router by its second batch),
    or half of every batch returning sessions, the shares hold over time and the credit stays
    bounded."""
    from collections import Counter

    r = Router(table({"a": 0.5, "b": 0.3, "c": 0.2}))
    seen = Counter()
    for batch in range(500):
        if mode == "pairs":
            sessions = [f"{batch}-{k // 2}" for k in range(10)]
        else:
            sessions = [f"{batch}-{k}" for k in range(5)] + [f"{batch - 1}-{k}" for k in range(5)]
        seen.update(r.route("ep", 10, sessions=sessions))
    assert {vm: n / 5000 for vm, n in seen.items()} == pytest.approx({"a": 0.5, "b": 0.3, "c": 0.2}, abs=0.002)
    assert np.abs(r._credit["ep"]).max() < 10


def test_a_session_on_a_vm_no_longer_routed_is_dealt_again():
    r = Router(table({"a": 0.5, "b": 0.5}))
    first = r.route("ep", 1, sessions=["s"])[0]
    r.update(routing=table({"b" if first == "a" else "a": 1.0}))
    assert r.route("ep", 1, sessions=["s"])[0] != first


def test_router_is_deterministic_and_rejects_unknown_endpoints():
    """Same calls, same answers; an unknown endpoint is a KeyError naming it."""
    a, b = Router(table({"a": 0.7, "b": 0.3})), Router(table({"a": 0.7, "b": 0.3}))
    assert list(a.route("ep", 13)) == list(b.route("ep", 13))
    with pytest.raises(KeyError, match="nope"):
        a.route("nope", 1)


def test_risk_headroom_is_smallest_margin(busy_and_quiet):
    """Headroom per VM is at most each of its margins (row, aisle, temperature, throughput)."""
    prep = prepare_room(busy_and_quiet, forecast_method="template")
    inst = build_reconfig_instance(prep, CAT, parse_events(["none"]))
    room = risk_headroom(inst, ReconfigPlan.unchanged(inst))
    assert list(room.index) == list(inst.saas["vm_id"])
    assert (room <= 1).all() and room["s1"] < room["s2"]


# ---- commands ------------------------------------------------------------------------------------

def test_reconfigure_command_writes_outputs_and_exit_codes(busy_and_quiet, tmp_path):
    """reconfigure: 0 with a plan that holds, 1 when a limit stays exceeded, 2 for a bad event."""
    runner = CliRunner()
    out = tmp_path / "plan"
    res = runner.invoke(main, ["reconfigure", str(busy_and_quiet), "--event", "row-power:A:14.5", "--out", str(out),
                               "--forecast-method", "template", "--max-nodes", "7", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["feasible"] and summary["saas"]["quality_loss_pct"] == 0.0
    assert summary["solver"]["max_nodes"] == 7
    assert summary["solver"]["polish_stopped_by"] in ("gap", "nodes")
    configs = pd.read_csv(out / "configs.csv")
    assert list(configs["vm_id"]) == ["s1", "s2", "s3"]
    assert {"config_id", "tp", "precision", "power_level", "max_batch", "predicted_power_kw", "throughput_tok_s"} <= set(configs)
    routing = pd.read_csv(out / "routing.csv")
    assert list(routing.columns) == ["endpoint", "vm_id", "share"]
    assert pd.read_csv(out / "caps.csv").empty
    assert json.loads((out / "summary.json").read_text())["limits"]["rows"][0]["limit_kw"] == 14.5

    bad = runner.invoke(main, ["reconfigure", str(busy_and_quiet), "--event", "row-power:A:5", "--out",
                               str(tmp_path / "bad"), "--forecast-method", "template"])
    assert bad.exit_code == 1
    assert "still exceeded: row_power A" in bad.output

    usage = runner.invoke(main, ["reconfigure", str(busy_and_quiet), "--event", "meteor", "--out", str(tmp_path / "x"),
                                 "--forecast-method", "template"])
    assert usage.exit_code == 2 and "unknown event kind" in usage.output
    for policy in ("greedy", "uniform-cap"):
        res = runner.invoke(main, ["reconfigure", str(busy_and_quiet), "--event", "row-power:A:14.5", "--policy", policy,
                                   "--out", str(tmp_path / policy), "--forecast-method", "template", "-q"])
        assert res.exit_code in (0, 1), res.output
        assert json.loads((tmp_path / policy / "summary.json").read_text())["policy"] == policy


def test_route_command(busy_and_quiet, tmp_path):
    """route --at one slot: routing.csv with the slot's shares, exit 0; what the plan assumed
    (an --at between slots, an event raising a limit) is said and kept in summary.json."""
    res = CliRunner().invoke(main, ["route", str(busy_and_quiet), "--out", str(tmp_path / "r"), "--at",
                                    "2026-06-01 05:30", "--event", "row-power:A:500", "--forecast-method", "template"])
    assert res.exit_code == 0, res.output
    routing = pd.read_csv(tmp_path / "r" / "routing.csv")
    assert len(routing) == 3 and set(routing["timestamp"]) == {"2026-06-01 05:00:00"}
    said = json.loads((tmp_path / "r" / "summary.json").read_text())["warnings"]
    assert any("falls inside the slot that starts at 2026-06-01 05:00" in w for w in said)
    assert any("raises the limit of row 'A' from 20 to 500 kW" in w for w in said)
    assert all(f"warning: {w}" in res.output for w in said)
    midnight = CliRunner().invoke(main, ["route", str(busy_and_quiet), "--out", str(tmp_path / "m"), "--at",
                                         "2026-06-01", "--forecast-method", "template"])
    assert midnight.exit_code == 0, midnight.output
    for name in ("routing.csv", "slots.csv"):  # a column of midnights was written as bare dates
        assert "2026-06-01 00:00:00" in (tmp_path / "m" / name).read_text()
    late = CliRunner().invoke(main, ["route", str(busy_and_quiet), "--out", str(tmp_path / "q"), "--at", "2030-01-01",
                                     "--forecast-method", "template"])
    assert late.exit_code == 2 and "outside the forecast horizon" in late.output


def test_route_in_a_room_without_saas_says_so(tmp_path):
    """No running SaaS VM: nothing to route, said; the SaaS GPU peak is null (n/a), not 0 %;
    summary.json has the slots over a limit and the quantile, as --json does."""
    room = write_inventory(
        tmp_path / "iaas_only", aisles=[{"aisle_id": "X", "airflow_limit_cfm": 1e5}],
        rows=[{"row_id": "A", "aisle_id": "X", "power_limit_kw": 20.0}], servers=[server("A1", "A")],
        vms=pd.DataFrame([vm("i1", server_id="A1")]), telemetry=hourly_history(["i1"], [0.5]))
    res = CliRunner().invoke(main, ["route", str(room), "--out", str(tmp_path / "r"), "--at", "2026-06-01 05:00",
                                    "--forecast-method", "template"])
    assert res.exit_code == 0, res.output
    assert "hottest SaaS GPU n/a" in res.stdout and "no running SaaS VM" in res.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["max_peak_gpu_temp_ratio"] is None and summary["max_peak_row_power_ratio"] > 0
    assert summary["slots_over_a_limit"] == 0 and summary["quantile"] == "p99"


def test_route_takes_the_reconfigured_power_levels_and_caps(busy_and_quiet, tmp_path):
    """configs.csv carries each VM's effective power level (an online GPU cap below its
    configuration's own level) and caps.csv the IaaS caps: route applies both, so a plan from
    reconfigure keeps the reduced limits when routed; a level outside 0..1 is bad input."""
    from tapas_opt.reconfig.run import read_caps, read_configs

    prep = prepare_room(busy_and_quiet, forecast_method="template")
    inst = build_reconfig_instance(prep, CAT, parse_events(["row-power:A:14.5"]))
    current = [CAT.configs.at[c, "config_id"] for c in inst.saas["current"]]
    configs = tmp_path / "plan" / "configs.csv"
    configs.parent.mkdir()
    pd.DataFrame({"vm_id": ["s1", "s2"], "config_id": current[:2], "power_level": [0.6, 1.0]}).to_csv(configs, index=False)
    pd.DataFrame({"vm_id": ["i1"], "kind": ["iaas"], "load_after": [0.5]}).to_csv(configs.with_name("caps.csv"), index=False)
    config, clock, warnings = read_configs(configs, inst)
    assert list(config) == list(inst.saas["current"]) and clock == pytest.approx([0.6, 1.0, 1.0])
    assert len(warnings) == 2 and "not in configs.csv" in warnings[1]  # s3 keeps its configuration
    assert "1 SaaS VM(s) of configs.csv run at a power level too low for their latency SLO" in warnings[0]
    assert "'s1'" in warnings[0]  # 0.6 of llama-70b's default: 20 % slower tokens than its SLO allows
    caps = read_caps(configs.with_name("caps.csv"), inst)
    assert caps[list(inst.iaas["vm_id"]).index("i1")] == 0.5
    res = CliRunner().invoke(main, ["route", str(busy_and_quiet), "--configs", str(configs), "--event", "row-power:A:14.5",
                                    "--out", str(tmp_path / "r"), "--forecast-method", "template", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["slots_over_a_limit"] == 0
    pd.DataFrame({"vm_id": ["s1"], "config_id": current[:1], "power_level": [1.7]}).to_csv(configs, index=False)
    bad = CliRunner().invoke(main, ["route", str(busy_and_quiet), "--configs", str(configs), "--out", str(tmp_path / "b"),
                                    "--forecast-method", "template"])
    assert bad.exit_code == 2 and "power_level" in bad.output


def test_a_power_level_below_the_gpus_minimum_power_is_refused(busy_and_quiet, tmp_path):
    """A power level at which the GPUs would draw less than their minimum power limit (100 W
    on GPUs of 50-400 W: 1/7 of the dynamic range at full throughput) is out of range, with the
    lowest level the VM can run at; the same floor as an IaaS cap."""
    from tapas_opt.reconfig.run import read_configs

    prep = prepare_room(busy_and_quiet, forecast_method="template")
    inst = build_reconfig_instance(prep, CAT, parse_events(["none"]))
    current = [CAT.configs.at[c, "config_id"] for c in inst.saas["current"]]
    configs = tmp_path / "configs.csv"
    pd.DataFrame({"vm_id": ["s1", "s2"], "config_id": current[:2], "power_level": [0.05, 0.15]}).to_csv(configs, index=False)
    with pytest.raises(InventoryError) as err:
        read_configs(configs, inst)
    (problem,) = err.value.problems
    assert problem.code == "out_of_range" and problem.line == 2 and problem.column == "power_level"
    assert "below the lowest its GPUs can be held to (0.1429: 100 W per GPU" in problem.message


def test_route_refuses_a_configs_file_that_is_ambiguous_or_of_another_family(busy_and_quiet, tmp_path):
    """A VM listed twice (the last row used to win silently, so row order changed the result)
    and a configuration of another model family than the VM's (accepted silently before) are
    bad input, both reported at once; a file without power levels runs the catalogue's levels
    and says so."""
    from tapas_opt.reconfig.run import read_configs

    prep = prepare_room(busy_and_quiet, forecast_method="template")
    inst = build_reconfig_instance(prep, CAT, parse_events(["none"]))
    current = [CAT.configs.at[c, "config_id"] for c in inst.saas["current"]]
    other = CAT.configs.loc[CAT.configs["family"] != inst.saas["family"].iloc[0], "config_id"].iloc[0]
    configs = tmp_path / "configs.csv"
    pd.DataFrame({"vm_id": ["s1", "s2", "s1", "s3"],
                  "config_id": [current[0], other, current[0], current[2]]}).to_csv(configs, index=False)
    with pytest.raises(InventoryError) as err:
        read_configs(configs, inst)
    got = {(p.code, p.line) for p in err.value.problems}
    assert got == {("duplicate_id", 4), ("config_family", 3)}
    pd.DataFrame({"vm_id": ["s1", "s2", "s3"], "config_id": current[:3]}).to_csv(configs, index=False)
    _, clock, warnings = read_configs(configs, inst)
    assert (clock == 1.0).all() and [("no power_level column" in w) for w in warnings] == [True]


def test_empty_cells_of_a_configs_file_are_missing_values(busy_and_quiet, tmp_path):
    """An empty vm_id or config_id was reported as 'vm_id nan is not a running SaaS VM'."""
    from tapas_opt.reconfig.run import read_configs

    inst = build_reconfig_instance(prepare_room(busy_and_quiet, forecast_method="template"), CAT, parse_events(["none"]))
    current = [CAT.configs.at[c, "config_id"] for c in inst.saas["current"]]
    configs = tmp_path / "configs.csv"
    pd.DataFrame({"vm_id": ["s1", None, "s3"], "config_id": [None, current[1], current[2]]}).to_csv(configs, index=False)
    with pytest.raises(InventoryError) as err:
        read_configs(configs, inst)
    assert {(p.code, p.line, p.column) for p in err.value.problems} == {("missing_value", 2, "config_id"),
                                                                        ("missing_value", 3, "vm_id")}


@pytest.fixture
def capped_plan(busy_and_quiet, tmp_path):
    """The instance of busy_and_quiet after 'row-power:A:14.5' and a caps.csv path beside
    configs.csv, with a writer of its rows (IaaS i1 capped to 0.5, as reconfigure writes it)."""
    from tapas_opt.reconfig.summary import caps_table

    inst = build_reconfig_instance(prepare_room(busy_and_quiet, forecast_method="template"), CAT,
                                   parse_events(["row-power:A:14.5"]))
    plan = ReconfigPlan.unchanged(inst)
    plan.iaas_load = np.where(inst.iaas["vm_id"] == "i1", 0.5, plan.iaas_load)
    caps = tmp_path / "caps.csv"
    table = caps_table(inst, plan)
    return inst, caps, table


def test_caps_file_is_read_as_reconfigure_writes_it(capped_plan):
    """A caps.csv written by reconfigure reads back to its caps; kind in any case."""
    from tapas_opt.reconfig.run import read_caps

    inst, caps, table = capped_plan
    table.assign(kind="IaaS").to_csv(caps, index=False)
    got = read_caps(caps, inst)
    assert got[list(inst.iaas["vm_id"]).index("i1")] == 0.5 and np.isinf(got[list(inst.iaas["vm_id"]).index("i2")])


def test_route_lists_the_problems_of_configs_and_caps_together(busy_and_quiet, capped_plan, tmp_path):
    """A bad configs.csv hid the caps.csv beside it: route stopped at the first file."""
    inst, caps, table = capped_plan
    table.assign(load_after=-1.0).to_csv(caps, index=False)
    pd.DataFrame({"vm_id": ["nobody"], "config_id": [CAT.configs.at[int(inst.saas["current"].iloc[0]), "config_id"]],
                  "power_level": [1.0]}).to_csv(caps.with_name("configs.csv"), index=False)
    res = CliRunner().invoke(main, ["route", str(busy_and_quiet), "--configs", str(caps.with_name("configs.csv")),
                                    "--out", str(tmp_path / "r"), "--forecast-method", "template"])
    assert res.exit_code == 2, res.output
    assert "configs.csv:2 [vm_id]: unknown_vm" in res.output and "caps.csv:2 [load_after]" in res.output, res.output


def test_a_caps_file_that_is_ambiguous_is_refused_at_once(capped_plan):
    """A VM listed twice (the last row won), an unknown kind (its caps were dropped), an empty
    load_after, and a power_cap_kw / gpu_power_cap_w edited without load_after (route applied
    load_after only, so the edit changed nothing): all bad input, listed together."""
    from tapas_opt.reconfig.run import read_caps

    inst, caps, table = capped_plan
    row = table.iloc[0].to_dict()
    rows = pd.DataFrame([row, row | {"load_after": 1.0}, row | {"vm_id": "i9", "kind": "vm"},
                         row | {"vm_id": "i3", "load_after": None},
                         row | {"vm_id": "i2", "power_cap_kw": row["power_cap_kw"] + 1.0,
                                "gpu_power_cap_w": row["gpu_power_cap_w"] - 50, "server_id": None, "gpus": None}])
    rows.to_csv(caps, index=False)
    with pytest.raises(InventoryError) as err:
        read_caps(caps, inst)
    got = {(p.code, p.line, p.column) for p in err.value.problems}
    assert got == {("duplicate_id", 3, "vm_id"), ("out_of_range", 4, "kind"),
                   ("missing_value", 5, "load_after"), ("cap_mismatch", 6, "power_cap_kw"),
                   ("cap_mismatch", 6, "gpu_power_cap_w")}


def test_a_cap_below_the_gpus_minimum_power_is_refused(capped_plan):
    """load_after 0 with the cap columns left empty was applied by route (reconfigure's own
    checker calls it iaas_cap_floor): a GPU cannot be capped below its minimum power limit."""
    from tapas_opt.reconfig.run import read_caps

    inst, caps, table = capped_plan
    table.assign(load_after=0.0, power_cap_kw=None, gpu_power_cap_w=None).to_csv(caps, index=False)
    with pytest.raises(InventoryError) as err:
        read_caps(caps, inst)
    assert [(p.code, p.line, p.column) for p in err.value.problems] == [("out_of_range", 2, "load_after")]
    assert "below the lowest cap of 'i1'" in err.value.problems[0].message


def test_an_empty_power_level_is_a_missing_value(busy_and_quiet, tmp_path):
    """A blank power_level cell was read as the catalogue's level: the plan's cap silently gone."""
    from tapas_opt.reconfig.run import read_configs

    inst = build_reconfig_instance(prepare_room(busy_and_quiet, forecast_method="template"), CAT, parse_events(["none"]))
    current = [CAT.configs.at[c, "config_id"] for c in inst.saas["current"]]
    configs = tmp_path / "configs.csv"
    pd.DataFrame({"vm_id": inst.saas["vm_id"], "config_id": current,
                  "power_level": [None] + [0.9] * (len(current) - 1)}).to_csv(configs, index=False)
    with pytest.raises(InventoryError) as err:
        read_configs(configs, inst)
    assert [(p.code, p.line, p.column) for p in err.value.problems] == [("missing_value", 2, "power_level")]


def test_a_configs_file_wrong_on_every_row_is_counted_in_full(busy_and_quiet, tmp_path):
    """30 unknown VMs: the first 20 listed, then how many more, and the header counts all 30
    (it used to stop at 40 problems of any kind without saying more existed)."""
    from tapas_opt.reconfig.run import read_configs

    prep = prepare_room(busy_and_quiet, forecast_method="template")
    inst = build_reconfig_instance(prep, CAT, parse_events(["none"]))
    configs = tmp_path / "configs.csv"
    pd.DataFrame({"vm_id": [f"ghost{i}" for i in range(30)], "config_id": "x"}).to_csv(configs, index=False)
    with pytest.raises(InventoryError) as err:
        read_configs(configs, inst)
    problems = err.value.problems
    assert [p.line for p in problems[:-1]] == list(range(2, 22))
    assert problems[-1].message == MORE.format(10)
    assert str(err.value).startswith("30 problem(s)")


def test_shares_of_an_endpoint_sum_to_one_even_without_load():
    """An endpoint with no forecast load is split evenly (all-zero weights would leave a load
    balancer nothing to route by); others in proportion to their loads."""
    from types import SimpleNamespace

    from tapas_opt.reconfig.routing import endpoint_shares

    inst = SimpleNamespace(saas_endpoint_idx=np.array([0, 0, 1, 1, 1]), endpoints=["busy", "idle"])
    share = endpoint_shares(inst, np.array([3.0, 1.0, 0.0, 0.0, 0.0]))
    np.testing.assert_allclose(share, [0.75, 0.25, 1 / 3, 1 / 3, 1 / 3])


def test_rounding_of_a_plans_files_is_not_unserved_load():
    """Routing a reconfiguration plan through its configs.csv (power levels to 4 decimals) left
    0.000188 of 275 units unserved, and route exited 1; a real shortage still counts."""
    from tapas_opt.reconfig.routing import unserved_slots

    slots = pd.DataFrame({"demand_units": [274.84, 274.84, 0.0], "unserved_units": [0.000188, 0.5, 0.0]})
    assert unserved_slots(slots) == 1


def test_a_caps_row_for_another_server_or_size_is_refused(capped_plan):
    """server_id and gpus were not read: a cap edited onto another server, or a plan written
    for an inventory where the VM had another size, was applied to the VM where it runs now."""
    from tapas_opt.reconfig.run import read_caps

    inst, caps, table = capped_plan
    other = next(s for s in inst.server_ids if s != table.at[0, "server_id"])
    table.assign(server_id=other, gpus=table.at[0, "gpus"] + 1).to_csv(caps, index=False)
    with pytest.raises(InventoryError) as err:
        read_caps(caps, inst)
    got = sorted((p.code, p.line, p.column) for p in err.value.problems)
    assert got == [("cap_mismatch", 2, "gpus"), ("cap_mismatch", 2, "server_id")]
    assert "route caps the VM where it runs" in err.value.problems[0].message
    assert "np.str_" not in " ".join(p.message for p in err.value.problems)  # ids as the files write them
    table.assign(server_id=None, gpus=None).to_csv(caps, index=False)
    assert read_caps(caps, inst)[list(inst.iaas["vm_id"]).index("i1")] == 0.5
