"""SaaS reconfiguration: events, tiny rooms with known optima, each constraint family, the
baselines, LP vs integral agreement, and a solver-free check of every plan."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import hourly_history, server, vm, write_inventory
from tapas_opt import physics
from tapas_opt.errors import InventoryError
from tapas_opt.reconfig.baselines import solve_greedy, solve_uniform_cap
from tapas_opt.reconfig.catalogue import load_catalogue
from tapas_opt.reconfig.evaluate import check_plan
from tapas_opt.reconfig.events import apply_events, parse_event, parse_events
from tapas_opt.reconfig.instance import ReconfigOptions, assign_configs, build_reconfig_instance
from tapas_opt.reconfig.model import (ReconfigModel, all_pairs, build_groups, capacity_units, pareto_configs,
                                      solve_optimal)
from tapas_opt.reconfig.plan import ReconfigPlan
from tapas_opt.reconfig.run import prepare_room, reconfigure

CAT = load_catalogue()
Q_8B_W8A8 = float(CAT.configs.loc[CAT.position["llama-70b/8b-w8a8-tp1x8-b320-p1.00"], "quality"])


def saas_vm(vm_id, endpoint, server_id, model="llama-70b", gpus=8) -> dict:
    return {**vm(vm_id, kind="saas", customer="llm", endpoint=endpoint, gpus=gpus, server_id=server_id), "model": model}


def room(tmp_path: Path, name: str, vms: list[dict], loads: dict[str, float], rows=("A", "B"), aisles=None,
         row_limit_kw=40.0, servers=None, config=None) -> Path:
    """A tiny room: rows of two 8-GPU servers (idle 2 kW, max 6.5 kW), constant loads."""
    aisles = aisles or {r: "X" for r in rows}
    servers = servers or [server(f"{r}{i}", r) for r in rows for i in (1, 2)]
    frame = pd.DataFrame([{**v, "model": v.get("model")} for v in vms])
    return write_inventory(
        tmp_path / name, config=config,
        aisles=[{"aisle_id": a, "airflow_limit_cfm": 1e5} for a in sorted(set(aisles.values()))],
        rows=[{"row_id": r, "aisle_id": aisles[r], "power_limit_kw": row_limit_kw} for r in rows],
        servers=servers, vms=frame, telemetry=hourly_history(list(loads), list(loads.values())))


def instance_of(path: Path, events=("none",), options: ReconfigOptions | None = None):
    prep = prepare_room(path, forecast_method="template")
    return build_reconfig_instance(prep, CAT, parse_events(events), None, options or ReconfigOptions())


def assert_checked(inst, plan):
    """The solver-free checker finds nothing wrong (run on every solution in these tests)."""
    ev = check_plan(inst, plan)
    assert ev.feasible, [v.message for v in ev.violations]
    return ev


def quality_loss_pct(inst, plan) -> float:
    q = inst.cfg["quality"][plan.saas_config]
    return 100.0 * float((np.asarray(plan.saas_load) * (1 - q)).sum()) / inst.total_demand


@pytest.fixture
def two_rows(tmp_path) -> Path:
    """Endpoint ep1 has a VM in row A (load 0.6) and one in row B (load 0.3); an IaaS VM sits in
    row A (0.5). Row A draws 4 + 2.7 + 2.25 = 8.95 kW."""
    return room(tmp_path, "two_rows", [saas_vm("s1", "ep1", "A1"), saas_vm("s2", "ep1", "B1"),
                                       vm("i1", server_id="A2")], {"s1": 0.6, "s2": 0.3, "i1": 0.5})


@pytest.fixture
def one_vm(tmp_path) -> Path:
    """A single-VM endpoint (load 0.6, 2.7 kW dynamic) beside an IaaS VM (0.5): nothing to route."""
    return room(tmp_path, "one_vm", [saas_vm("s1", "ep1", "A1"), vm("i1", server_id="A2")],
                {"s1": 0.6, "i1": 0.5}, rows=("A",))


# ---- events ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, kind, target, value", [
    ("ups-failure", "ups-failure", None, 0.75),
    ("ups-failure:0.8", "ups-failure", None, 0.8),
    ("ahu-failure:A03", "ahu-failure", "A03", 0.9),
    ("ahu-failure:A03:85%", "ahu-failure", "A03", 0.85),
    ("heatwave:+5C", "heatwave", None, 5.0),
    ("heatwave:3.5", "heatwave", None, 3.5),
    ("row-power:R02:150", "row-power", "R02", 150.0),
    ("row-power:R02:150kW", "row-power", "R02", 150.0),
    ("row-power:R02:1.5e2", "row-power", "R02", 150.0),  # exponents wherever a number goes
    ("ahu-failure:A03:9e-1", "ahu-failure", "A03", 0.9),
    ("ups-failure:7.5E-1", "ups-failure", None, 0.75),
])
def test_event_forms(text, kind, target, value):
    """Every documented event form parses to its kind, target and value."""
    ev = parse_event(text)
    assert (ev.kind, ev.target, ev.value) == (kind, target, pytest.approx(value))


@pytest.mark.parametrize("text, aisles, target, value", [
    ("row-power:R:1:150", None, "R:1", 150.0),
    ("ahu-failure:A:1:0.5", ["A:1"], "A:1", 0.5),
    ("ahu-failure:A:1", ["A:1", "A"], "A:1", 0.9),  # the whole text names an aisle: default fraction
    ("ahu-failure:A:1", ["A"], "A", 1.0),
    ("ahu-failure:hall:north", None, "hall:north", 0.9),
])
def test_event_targets_may_contain_colons(text, aisles, target, value):
    """Values are read from the right, so row and aisle ids with ':' (which validate accepts)
    can be named; with the room's aisles known, a whole aisle id wins over a fraction."""
    ev = parse_event(text, aisles)
    assert (ev.target, ev.value) == (target, pytest.approx(value))


@pytest.mark.parametrize("text", ["ups", "ups-failure:1.5", "ahu-failure", "heatwave:hot", "heatwave:+100C", "heatwave:-10C", "row-power:R1", "row-power:R1:-3", "", "  ", "none:", "none:3"])
def test_bad_events_say_which_forms_work(text):
    """A malformed event is refused with the accepted forms."""
    with pytest.raises(InventoryError) as err:
        parse_event(text)
    assert "ups-failure" in str(err.value.problems[0].hint)


def test_every_bad_event_is_reported_at_once():
    with pytest.raises(InventoryError) as err:
        parse_events(["ups-failure", "bogus", "heatwave:+99C"])
    assert [p.message.split(":")[0] for p in err.value.problems] == ["'bogus'", "'heatwave"]


def test_events_apply_to_limits_in_order():
    """UPS scales every row, AHU one aisle, row-power sets one row, heat waves add up; unknown
    targets are all reported."""
    lim = apply_events(parse_events(["ups-failure", "row-power:B:10", "ahu-failure:X", "heatwave:+2C", "heatwave:+1C"]),
                       np.array(["A", "B"]), np.array([100.0, 100.0]), np.array(["X", "Y"]), np.array([1000.0, 1000.0]))
    assert lim.row_limit_kw.tolist() == [75.0, 10.0]
    assert lim.aisle_limit_cfm.tolist() == [900.0, 1000.0]
    assert lim.outside_shift_c == 3.0 and lim.notes == ()
    raised = apply_events(parse_events(["row-power:B:500"]), np.array(["A", "B"]), np.array([100.0, 100.0]),
                          np.array(["X"]), np.array([1000.0]))
    (note,) = raised.notes
    assert "raises the limit of row 'B' from 100 to 500 kW" in note
    with pytest.raises(InventoryError) as err:
        apply_events(parse_events(["ahu-failure:Q", "row-power:Z:1"]), np.array(["A"]), np.array([1.0]),
                     np.array(["X"]), np.array([1.0]))
    assert {p.code for p in err.value.problems} == {"unknown_aisle", "unknown_row"}


# ---- families and configurations of VMs ---------------------------------------------------------

def test_family_from_model_column_or_endpoint(tmp_path):
    """``model`` picks the family; without it the endpoint id decides, the same way every time."""
    vms = pd.DataFrame([saas_vm("a", "ep1", None, model="mixtral-8x7b"), saas_vm("b", "ep2", None, model=None),
                        vm("c")])
    fam, cur = assign_configs(vms, CAT)
    assert fam["a"] == "mixtral-8x7b" and cur["a"] == CAT.default_of["mixtral-8x7b"]
    again, _ = assign_configs(vms.drop(columns=["model"]), CAT)
    assert again["b"] == fam["b"] and again["b"] in CAT.families


def test_bad_model_and_config_are_reported_with_line_and_column():
    """Unknown families, unknown configurations and configurations of another family are refused."""
    vms = pd.DataFrame([saas_vm("a", "ep1", None, model="gpt-9"), saas_vm("b", "ep2", None, model="llama-8b"),
                        saas_vm("c", "ep3", None, model="llama-8b")])
    vms["config_id"] = [None, "nope", "llama-70b/70b-bf16-tp8x1-b768-p1.00"]
    with pytest.raises(InventoryError) as err:
        assign_configs(vms, CAT)
    got = {(p.code, p.line, p.column) for p in err.value.problems}
    assert ("unknown_model", 2, "model") in got
    assert ("unknown_config", 3, "config_id") in got and ("config_family", 4, "config_id") in got


def test_a_catalogue_without_the_family_an_endpoint_implies_is_bad_input(tmp_path):
    """Without a model column the family follows from the endpoint id; a user's catalogue may
    lack that family. That crashed (IndexError, exit 3); it is now one problem per endpoint."""
    vms = pd.DataFrame([saas_vm("a", "ep1", None), saas_vm("b", "ep1", None)]).drop(columns=["model"],
                                                                                  errors="ignore")
    fam, _ = assign_configs(vms, CAT)
    path = tmp_path / "catalogue.csv"
    CAT.configs[CAT.configs["family"] != fam["a"]].to_csv(path, index=False)
    small = load_catalogue(path)
    with pytest.raises(InventoryError) as err:
        assign_configs(vms, small)
    (problem,) = err.value.problems
    assert problem.code == "unknown_model" and problem.line == 2 and fam["a"] in problem.message
    assert "2 VM(s)" in problem.message


def _broken_catalogue(tmp_path) -> Path:
    raw = pd.read_csv(CAT.path, dtype=str, keep_default_na=False)
    raw.loc[0, "family"] = ""
    path = tmp_path / "broken.csv"
    raw.to_csv(path, index=False)
    return path


def test_a_broken_catalogue_is_reported_before_the_forecast(one_vm, tmp_path, monkeypatch):
    """The catalogue was read only after the whole forecast (minutes on a large room)."""
    from click.testing import CliRunner

    import importlib

    from tapas_opt.cli import main
    from tapas_opt.forecast import profiles

    def no_forecast(*args, **kwargs):
        raise AssertionError("forecast run before the catalogue was checked")

    importlib.import_module("tapas_opt.api")  # before the patch: it binds the real forecaster for later tests
    monkeypatch.setattr(profiles, "build_profiles", no_forecast)
    for command in (["reconfigure", "--event", "ups-failure"], ["route"]):
        res = CliRunner().invoke(main, [command[0], str(one_vm), *command[1:], "--catalogue", str(_broken_catalogue(tmp_path)),
                                        "--out", str(tmp_path / "o"), "--forecast-method", "template"])
        assert res.exit_code == 2 and "broken.csv:2 [family]: missing_value" in res.output, res.output


def test_a_broken_catalogue_and_inventory_are_reported_together(one_vm, tmp_path):
    from click.testing import CliRunner

    from tapas_opt.cli import main

    rows = pd.read_csv(one_vm / "rows.csv")
    rows.loc[0, "power_limit_kw"] = -1
    rows.to_csv(one_vm / "rows.csv", index=False)
    for command in (["reconfigure", "--event", "ups-failure"], ["route"], ["validate"]):
        res = CliRunner().invoke(main, [command[0], str(one_vm), *command[1:], "--catalogue", str(_broken_catalogue(tmp_path)),
                                        *(["--out", str(tmp_path / "o"), "--forecast-method", "template"]
                                          if command[0] != "validate" else [])])
        assert res.exit_code == 2, res.output
        assert "rows.csv:2 [power_limit_kw]" in res.output and "broken.csv:2 [family]" in res.output, res.output


def test_bad_events_and_times_are_reported_before_the_forecast(one_vm, tmp_path, monkeypatch):
    """A mistyped --event, an aisle or row the room lacks, and an --at outside the horizon were
    found only after the whole forecast (minutes on a large room); now before it, all at once."""
    import importlib

    from click.testing import CliRunner

    from tapas_opt.cli import main
    from tapas_opt.forecast import profiles

    def no_forecast(*args, **kwargs):
        raise AssertionError("forecast run before the request was checked")

    importlib.import_module("tapas_opt.api")  # before the patch: it binds the real forecaster for later tests
    monkeypatch.setattr(profiles, "build_profiles", no_forecast)
    asked = ["--event", "ups-failure:2", "--event", "ahu-failure:nowhere", "--event", "row-power:Q:5",
             "--at", "2001-01-01 00:00"]
    for command in ("reconfigure", "route"):
        res = CliRunner().invoke(main, [command, str(one_vm), *asked, "--out", str(tmp_path / "o"),
                                        "--forecast-method", "template"])
        assert res.exit_code == 2, res.output
        for text in ("bad_event", "fraction 2 must be in (0, 1]", "unknown_aisle", "unknown_row", "outside the forecast horizon"):
            assert text in res.output, (command, res.output)
        assert not (tmp_path / "o").exists()
    bad_time = CliRunner().invoke(main, ["reconfigure", str(one_vm), "--at", "tomorrow", "--out", str(tmp_path / "o")])
    assert bad_time.exit_code == 2 and "bad_time" in bad_time.output, bad_time.output


def test_unknown_event_targets_are_named_before_the_forecast(one_vm, tmp_path, monkeypatch):
    """Rows and aisles the room lacks are known from its files, before any forecast."""
    from tapas_opt.forecast import profiles
    from tapas_opt.reconfig.run import prepare_room

    monkeypatch.setattr(profiles, "build_profiles", lambda *a, **k: pytest.fail("forecast before the check"))
    with pytest.raises(InventoryError) as err:
        prepare_room(one_vm, forecast_method="template", events=["ahu-failure:nowhere", "row-power:Q:5"])
    assert {p.code for p in err.value.problems} == {"unknown_aisle", "unknown_row"}


def test_bad_profiles_models_catalogue_and_request_are_reported_together(one_vm, tmp_path, monkeypatch):
    """One run lists every problem before the forecast: an operator's profiles.csv that does
    not fit the room hid the catalogue's, the events' and --at's problems, and an event's
    unknown aisle hid a vms.csv model the catalogue lacks (found only after the forecast)."""
    import importlib

    from click.testing import CliRunner

    from tapas_opt.cli import main
    from tapas_opt.forecast import profiles

    importlib.import_module("tapas_opt.api")  # before the patch: it binds the real forecaster for later tests
    monkeypatch.setattr(profiles, "build_profiles", lambda *a, **k: pytest.fail("forecast before the check"))
    vms = pd.read_csv(one_vm / "vms.csv")
    vms["model"] = vms["model"].astype(object)
    vms.loc[vms["vm_id"] == "s1", "model"] = "gpt-9"
    vms.to_csv(one_vm / "vms.csv", index=False)
    bad = tmp_path / "profiles.csv"
    pd.DataFrame({"vm_id": ["ghost"], "timestamp": ["2026-06-01 00:00"], "p50": [0.1], "p90": [0.2],
                  "p99": [0.3]}).to_csv(bad, index=False)
    for command in ("reconfigure", "route"):
        res = CliRunner().invoke(main, [command, str(one_vm), "--event", "ahu-failure:nowhere", "--at", "2001-01-01",
                                        "--profiles", str(bad), "--catalogue", str(_broken_catalogue(tmp_path)),
                                        "--out", str(tmp_path / "o")])
        assert res.exit_code == 2, res.output
        for text in ("profiles.csv:2 [vm_id]: unknown_vm", "broken.csv:2 [family]", "unknown_aisle",
                     "outside the forecast horizon"):
            assert text in res.output, (command, text, res.output)
    res = CliRunner().invoke(main, ["route", str(one_vm), "--event", "ahu-failure:nowhere", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "unknown_aisle" in res.output and "vms.csv:2 [model]: unknown_model" in res.output, \
        res.output


def test_a_broken_inventory_is_reported_with_the_bad_events(one_vm, tmp_path):
    """Event and --at syntax need no room: they join a broken inventory's problems."""
    from click.testing import CliRunner

    from tapas_opt.cli import main

    rows = pd.read_csv(one_vm / "rows.csv")
    rows.loc[0, "power_limit_kw"] = -1
    rows.to_csv(one_vm / "rows.csv", index=False)
    res = CliRunner().invoke(main, ["reconfigure", str(one_vm), "--event", "heatwave:hot", "--at", "soon",
                                    "--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert "rows.csv:2 [power_limit_kw]" in res.output and "bad_event" in res.output and "bad_time" in res.output


def test_an_endpoint_of_two_families_names_them_and_where_each_comes_from():
    vms = pd.DataFrame([saas_vm("a", "ep1", None, model="llama-8b"), saas_vm("b", "ep1", None, model=None)])
    other = next(f for f in CAT.families if f != "llama-8b")
    vms.loc[1, "model"] = other
    with pytest.raises(InventoryError) as err:
        assign_configs(vms, CAT)
    (problem,) = err.value.problems
    assert problem.code == "mixed_models" and problem.line == 3
    assert f"llama-8b (a), {other} (b)" in problem.message


def test_an_at_between_slots_plans_its_slot_and_says_so(two_rows):
    """--at 30 minutes into an hourly slot plans that slot, with a warning; the same instant
    written with an offset is on the grid and gets none."""
    prep = prepare_room(two_rows, forecast_method="template")
    start = prep.instance.horizon[3]
    off = build_reconfig_instance(prep, CAT, parse_events(["none"]), str(start + pd.Timedelta(minutes=30)))
    assert off.time == start and any("falls inside the slot" in w for w in off.warnings)
    local = (start + pd.Timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")
    on = build_reconfig_instance(prep, CAT, parse_events(["none"]), local)
    assert on.time == start and not any("falls inside the slot" in w for w in on.warnings)


def test_a_limit_below_the_servers_idle_draw_says_nothing_can_meet_it(two_rows):
    """Row A's two servers idle at 4 kW: a 3 kW limit cannot be met by any configuration or
    cap, and the violation says why instead of only by how much."""
    inst = instance_of(two_rows, ("row-power:A:3",))
    ev = check_plan(inst, solve_optimal(inst).plan)
    (row,) = [v for v in ev.violations if v.code == "row_power"]
    assert row.subject == "A" and "idle power alone is 4.0 kW" in row.message


# ---- known optima -------------------------------------------------------------------------------

def test_nothing_to_do_without_an_event(two_rows):
    """No event: every VM keeps its configuration, nothing is capped, the objective is zero."""
    inst = instance_of(two_rows)
    res = solve_optimal(inst)
    assert res.objective == pytest.approx(0.0, abs=1e-6)
    assert (res.plan.saas_config == inst.saas["current"].to_numpy()).all()
    assert_checked(inst, res.plan)


def test_routing_alone_absorbs_a_row_limit(two_rows):
    """Row A to 7.5 kW: moving 1.45 kW of ep1's load from s1 to s2 in row B suffices, so the
    optimum changes no configuration and loses no quality (objective 0)."""
    inst = instance_of(two_rows, ["row-power:A:7.5"])
    assert not check_plan(inst, ReconfigPlan.unchanged(inst)).feasible
    res = solve_optimal(inst)
    ev = assert_checked(inst, res.plan)
    assert res.objective == pytest.approx(0.0, abs=1e-6)
    assert (res.plan.saas_config == inst.saas["current"].to_numpy()).all()
    assert ev.row_kw[0] <= 7.5 + 1e-4
    assert res.plan.saas_load.sum() == pytest.approx(inst.total_demand)


def test_performance_knobs_win_when_they_suffice(one_vm):
    """Row A 0.4 kW short (15 % of the SaaS dynamic power) with nothing to route to: a lower GPU
    power level / TP / batch serves the load, so quality is untouched."""
    inst = instance_of(one_vm, ["row-power:A:8.55"])
    res = solve_optimal(inst)
    assert_checked(inst, res.plan)
    assert quality_loss_pct(inst, res.plan) == pytest.approx(0.0, abs=1e-9)
    cfg = CAT.configs.loc[res.plan.saas_config[0]]
    assert cfg["size"] == "70b" and cfg["precision"] == "bf16"
    assert cfg["config_id"] != CAT.configs.loc[inst.saas["current"].iloc[0], "config_id"]


def test_quality_knob_only_when_performance_knobs_fall_short(one_vm):
    """SaaS must shed 70 % of its dynamic power: only the 8B model is efficient enough; known
    optimum: the whole load on the best 8B configuration, quality loss 1 - 0.6674 = 33.26 %,
    and IaaS untouched."""
    inst = instance_of(one_vm, ["row-power:A:7.06"])
    res = solve_optimal(inst)
    assert_checked(inst, res.plan)
    assert quality_loss_pct(inst, res.plan) == pytest.approx(100 * (1 - Q_8B_W8A8), abs=1e-6)
    assert (res.plan.iaas_load == inst.iaas["load"].to_numpy()).all()
    assert res.terms["iaas_capping"] == pytest.approx(0.0)


def test_iaas_is_capped_last_and_its_cost_reported(one_vm, tmp_path):
    """When even the most efficient SaaS configuration leaves row A over, the IaaS VM is capped,
    no more than needed, and the summary reports the IaaS performance it costs."""
    result = reconfigure(None, ["row-power:A:6.0"], policy="optimal", out_dir=tmp_path / "plan",
                         prepared=prepare_room(one_vm, forecast_method="template"))
    assert result.evaluation.feasible
    assert result.evaluation.row_kw[0] == pytest.approx(6.0, abs=1e-3)
    assert result.summary["iaas"]["capped_vms"] == 1 and result.summary["iaas"]["perf_change_pct"] < 0
    caps = pd.read_csv(tmp_path / "plan" / "caps.csv")
    assert caps["vm_id"].tolist() == ["i1"] and caps["kind"].tolist() == ["iaas"]
    assert 0 < caps["perf_fraction"].iloc[0] < 1


def test_infeasible_event_says_by_how_much(one_vm):
    """Row A below the idle power of its two servers (4 kW): nothing can fix it; the plan keeps
    serving the endpoint on its most efficient configuration and says the row is still over by
    idle power + IaaS at its cap floor + that SaaS power - 3 kW."""
    result = reconfigure(None, ["row-power:A:3"], prepared=prepare_room(one_vm, forecast_method="template"))
    s = result.summary
    assert not s["feasible"] and s["status"] == "infeasible"
    over = [v for v in s["still_exceeded"] if v["code"] == "row_power"]
    assert len(over) == 1 and over[0]["subject"] == "A"
    inst = result.instance
    floor_kw = float(inst.iaas["kw_unit"].iloc[0] * 8 * inst.iaas["floor_load"].iloc[0])
    rows = CAT.rows_of("llama-70b")
    e_min = CAT.configs["energy_ratio"].to_numpy()[rows][CAT.configs["slo_ok"].to_numpy()[rows]].min()
    saas_kw = float(inst.saas["kw_unit"].iloc[0]) * e_min * inst.total_demand
    assert over[0]["excess"] == pytest.approx(4.0 + floor_kw + saas_kw - 3.0, abs=1e-3)
    assert s["saas"]["served_pct"] == pytest.approx(100.0)


# ---- constraint families in isolation ------------------------------------------------------------

def test_capacity_respects_throughput_gpu_maximum_and_temperature():
    """capacity = min(throughput, busy GPUs at their maximum, busy GPUs at the thermal limit)."""
    pos = int(CAT.position["llama-70b/70b-bf16-tp2x1-b768-p1.00"])
    c = CAT.configs.loc[pos]

    class Inst:
        cfg = CAT.arrays()

    cap = capacity_units(Inst, [8.0], [pos])[0]
    assert cap == pytest.approx(8 * min(c["capacity_ratio"], c["active_share"] / c["energy_ratio"]))
    hot = capacity_units(Inst, [8.0], [pos], [0.3])[0]
    assert hot == pytest.approx(8 * min(c["capacity_ratio"], c["active_share"] * 0.3 / c["energy_ratio"]))


def test_each_constraint_family_adds_its_rows(two_rows):
    """Families add the documented rows: one assignment per group, one capacity per unit (a class
    of power levels or a configuration), one demand per endpoint, one limit per row and per
    aisle (names read the same in the LP file)."""
    inst = instance_of(two_rows, ["row-power:A:7.5"])
    g = build_groups(inst)
    pairs = all_pairs(g)
    m = ReconfigModel(inst, g, pairs)

    def names():
        return [c.name for c in m.problem.constraints()]

    m.add_vm_assignment()
    assert len(names()) == len(g)
    m.add_vm_capacity()
    assert len(names()) == len(g) + len(m.units) and len(m.units) < len(pairs)
    m.add_endpoint_demand()
    m.add_row_power_limit()
    m.add_aisle_airflow_limit()
    names = set(names())
    assert {"demand_e0", "row_power_0", "row_power_1", "aisle_airflow_0"} <= names
    assert all(n.replace("_", "").isalnum() and n == n.lower() for n in names)


def test_row_limit_family_is_what_binds(two_rows):
    """Without the row-power family the event changes nothing; with it the load moves to row B."""
    inst = instance_of(two_rows, ["row-power:A:7.5"])
    g = build_groups(inst)
    m = ReconfigModel(inst, g, all_pairs(g), form="full", relax=True)
    m.add_vm_assignment()
    m.add_vm_capacity()
    m.add_endpoint_demand()
    m.set_objective()
    m.solve()
    free = m.to_plan()
    assert not check_plan(inst, free).feasible or free.saas_load[0] <= 4.8 - 2.5
    m.add_row_power_limit()
    m.solve()
    assert_checked(inst, m.to_plan())


def test_gpu_temperature_family_keeps_hot_gpus_at_the_limit(tmp_path):
    """A heat wave lifts the inlet through physics.inlet_temp_c; the hot server's VM then serves
    only what keeps its hottest GPU at 85 C, and its endpoint's other VM takes the rest."""
    servers = [server("A1", "A", gpu_temp_intercept_c=42.0, gpu_temp_c_per_w=0.05), server("A2", "A")]
    path = room(tmp_path, "hot", [saas_vm("s1", "ep1", "A1"), saas_vm("s2", "ep1", "A2")],
                {"s1": 0.6, "s2": 0.2}, rows=("A",), servers=servers)
    inst = instance_of(path, ["heatwave:+10C"])
    prep = prepare_room(path, forecast_method="template")
    outside = float(prep.instance.outside_c[inst.slot])
    cfg = prep.config.inlet
    room_load = (0.6 + 0.2) * 8 / 16
    assert inst.inlet_c[0] - inst.inlet_c_before[0] == pytest.approx(
        float(physics.inlet_temp_c(outside + 10, room_load, cfg) - physics.inlet_temp_c(outside, room_load, cfg)), abs=0.02)
    assert not check_plan(inst, ReconfigPlan.unchanged(inst)).feasible
    res = solve_optimal(inst)
    ev = assert_checked(inst, res.plan)
    assert ev.saas_temp_c[0] <= 85.0 + 1e-6
    assert quality_loss_pct(inst, res.plan) == pytest.approx(0.0, abs=1e-9)


def test_aisle_airflow_after_ahu_failure(tmp_path):
    """AHU failure on aisle X with its AHU just covering today's airflow: load moves to aisle Y."""
    path = room(tmp_path, "aisles", [saas_vm("s1", "ep1", "A1"), saas_vm("s2", "ep1", "B1")],
                {"s1": 0.9, "s2": 0.1}, aisles={"A": "X", "B": "Y"})
    aisles = pd.read_csv(path / "aisles.csv")
    aisles["airflow_limit_cfm"] = [1100.0 + 0.9 * 340, 2000.0]
    aisles.to_csv(path / "aisles.csv", index=False)
    inst = instance_of(path, ["ahu-failure:X"])
    assert not check_plan(inst, ReconfigPlan.unchanged(inst)).feasible
    res = solve_optimal(inst)
    ev = assert_checked(inst, res.plan)
    assert ev.aisle_cfm[0] <= inst.aisle_limit_cfm[0] + 1e-6
    assert res.objective == pytest.approx(0.0, abs=1e-6)


# ---- LP vs integral, pruning, baselines ---------------------------------------------------------

@pytest.fixture(scope="module")
def small_room(tmp_path_factory) -> Path:
    """A generated 48-server room at 80 % occupancy (seeded), one day of horizon."""
    from tapas_opt.generate import RoomSpec, write_room

    path = tmp_path_factory.mktemp("gen") / "small48"
    write_room(RoomSpec(servers=48, occupancy=0.8, pending_vms=0, seed=3, horizon_h=24, history_weeks=2), path)
    return path


@pytest.fixture(scope="module")
def small_prep(small_room):
    return prepare_room(small_room, forecast_method="template")


def test_lp_bound_and_integral_solves_agree(small_prep):
    """UPS failure on the generated room: LP <= exact MIP <= restricted (dive + polish), the
    restricted plan within 1 % of the exact one, and every plan passes the checker."""
    inst = build_reconfig_instance(small_prep, CAT, parse_events(["ups-failure"]))
    fast = solve_optimal(inst, method="restricted")
    full = solve_optimal(inst, method="full")
    assert fast.lp_objective <= full.objective + 1e-6
    assert full.objective <= fast.objective + 1e-6 + 0.005 * abs(full.objective)
    assert fast.objective <= full.objective * 1.01 + 1e-6
    for res in (fast, full):
        assert_checked(inst, res.plan)
        assert res.terms["iaas_capping"] == pytest.approx(0.0, abs=1e-9)


def test_pruned_catalogue_keeps_the_optimum(small_prep):
    """Dominated configurations never matter: the exact MIP over every SLO-feasible configuration
    finds the same optimum as over the Pareto set."""
    inst = build_reconfig_instance(small_prep, CAT, parse_events(["ups-failure"]),
                                   options=ReconfigOptions(mip_gap=1e-6, mip_gap_abs=1e-7))
    g = build_groups(inst)
    every = [np.flatnonzero((CAT.configs["family"] == CAT.configs.at[c, "family"]) & CAT.configs["slo_ok"])
             for c in g.current]
    every = [np.union1d(e, [c]) for e, c in zip(every, g.current)]
    g_all = replace(g, candidates=every)
    assert sum(map(len, every)) > sum(map(len, g.candidates))
    objs = []
    for groups in (g, g_all):
        m = ReconfigModel(inst, groups, all_pairs(groups), form="compact").build()
        m.solve()
        objs.append(float(m.problem.objective.value()))
    assert objs[0] == pytest.approx(objs[1], rel=1e-6, abs=1e-6)


def test_pareto_configs_drop_only_dominated_ones():
    """The default configuration stays; nothing kept is dominated by another kept one."""
    class Inst:
        catalogue = CAT
        cfg = CAT.arrays()

    d = CAT.default_of["llama-70b"]
    kept = pareto_configs(Inst, d)
    assert d in kept and len(kept) < len(CAT.rows_of("llama-70b"))


def test_baselines_on_the_same_code_path(small_prep):
    """Greedy and uniform-cap return the same plan type, scored by the same checker: greedy never
    touches IaaS unless limits remain, uniform-cap never touches quality; the optimum loses at
    most the greedy's quality while serving at least as much."""
    inst = build_reconfig_instance(small_prep, CAT, parse_events(["ups-failure"]))
    greedy, uniform = solve_greedy(inst), solve_uniform_cap(inst)
    best = solve_optimal(inst).plan
    for plan in (greedy, uniform, best):
        ev = check_plan(inst, plan)
        assert not any(v.code in ("row_power", "aisle_airflow", "gpu_temperature") for v in ev.violations)
    assert quality_loss_pct(inst, uniform) == 0.0
    assert uniform.saas_clock is not None and (uniform.saas_clock <= 1).all()
    assert quality_loss_pct(inst, best) <= quality_loss_pct(inst, greedy) + 1e-6 or \
        greedy.saas_load.sum() < inst.total_demand - 1e-6
    assert best.saas_load.sum() == pytest.approx(inst.total_demand)


def test_uniform_cap_power_levels_mean_what_the_catalogue_means(small_prep):
    """A uniform cap writes each capped SaaS VM's power level in the catalogue's meaning
    (``saas_physics``): at that level the VM's GPUs stay within the cap, and a VM that cannot
    serve its whole load there serves exactly its capacity at that level. A level relative to
    the VM's own demand (as before) left such a VM shedding load with capacity to spare
    (4.8 of 6.3 units), which ``route --configs`` then filled past the row's limit."""
    from tapas_opt.reconfig.baselines import event_scope, uniform_cap_plan
    from tapas_opt.reconfig.evaluate import saas_physics, saas_rates

    inst = build_reconfig_instance(small_prep, CAT, parse_events(["ups-failure"]))
    level = float(np.median(saas_physics(inst, ReconfigPlan.unchanged(inst))["gpu_load"]))
    plan = uniform_cap_plan(inst, level, event_scope(inst))
    capped = plan.saas_clock < 1
    assert capped.any() and (~capped).any()
    assert (saas_physics(inst, plan)["gpu_load"][capped] <= level + 1e-6).all()
    demand = inst.saas["demand"].to_numpy(float)
    np.testing.assert_array_equal(plan.saas_load[~capped], demand[~capped])
    shed = plan.saas_load < demand - 1e-9
    assert shed.any()
    capacity = saas_rates(inst, plan, thermal=False)["capacity"]
    np.testing.assert_allclose(plan.saas_load[shed], capacity[shed], rtol=1e-6)


def test_same_input_same_plan(small_prep):
    """Deterministic: two solves give the same configurations and loads."""
    inst = build_reconfig_instance(small_prep, CAT, parse_events(["ups-failure"]))
    a, b = solve_optimal(inst), solve_optimal(inst)
    assert (a.plan.saas_config == b.plan.saas_config).all()
    np.testing.assert_allclose(a.plan.saas_load, b.plan.saas_load, atol=1e-6)


def test_polish_stops_on_its_node_limit_not_the_clock(small_prep):
    """The integral polish is bounded by branch-and-bound nodes (the same on any machine), and
    the summary says how it ended; a clock-stopped polish is flagged as not reproducible."""
    from tapas_opt.reconfig.summary import _solver_warnings

    opts = ReconfigOptions(max_nodes=1, mip_gap=0.0, mip_gap_abs=0.0)
    inst = build_reconfig_instance(small_prep, CAT, parse_events(["ups-failure"]), options=opts)
    res = solve_optimal(inst)
    assert res.polish_stopped_by in ("nodes", "gap")
    assert _solver_warnings(inst, res) == []
    clocked = replace(res, polish_stopped_by="time")
    (warning,) = _solver_warnings(inst, clocked)
    assert "safety net" in warning and "1 nodes" in warning
    no_polish = solve_optimal(build_reconfig_instance(small_prep, CAT, parse_events(["ups-failure"]),
                                                      options=replace(opts, max_nodes=0)))
    assert no_polish.status == "dived" and no_polish.polish_stopped_by is None


def test_with_nothing_to_fix_the_plan_leaves_more_headroom_not_less():
    """No event binds in the example room: the plan keeps every configuration and its load is
    split for headroom, so no row, aisle or GPU ends closer to its limit than if nothing were
    done (the model alone, indifferent between splits, pushed a row from 0.91 to 0.99 of its
    limit and the hottest GPU from 70.8 to 77.3 C)."""
    from conftest import EXAMPLE

    res = reconfigure(EXAMPLE, ["none"], options=ReconfigOptions(), profiles_path=None)
    lim = res.summary["limits"]
    assert res.summary["saas"]["quality_loss_pct"] == 0 and res.summary["reconfiguration"]["reloads"] == 0
    for key in ("peak_row_power_ratio", "peak_aisle_airflow_ratio", "max_gpu_temp_c"):
        assert lim[key]["after"] <= lim[key]["if_unchanged"] + 1e-9, key


def test_a_current_configuration_that_misses_its_slo_is_said(tmp_path):
    """vms.csv's config_id may name a configuration with slo_ok false: reconfigure may keep the
    VM as it is, so it misses its SLO before and after the event. validate and reconfigure
    passed it as 'ok' without a word; both warn now, and the summary counts the VMs kept so."""
    import json
    import shutil

    from click.testing import CliRunner
    from conftest import EXAMPLE
    from tapas_opt.cli import main

    inv = tmp_path / "room"
    shutil.copytree(EXAMPLE, inv)
    vms = pd.read_csv(inv / "vms.csv", dtype=str)
    vms["config_id"] = None
    vms.loc[vms["vm_id"] == "vm00007", ["model", "config_id"]] = ["llama-70b", "llama-70b/70b-bf16-tp2x1-b512-p0.50"]
    vms.loc[vms["vm_id"] == "vm00001", "model"] = "llama-8b"  # an IaaS VM: ignored, said so
    vms.to_csv(inv / "vms.csv", index=False)
    res = CliRunner().invoke(main, ["validate", str(inv), "--json"])
    said = json.loads(res.stdout)
    assert res.exit_code == 0 and said["ok"]
    ignored = [(w["line"], w["column"]) for w in said["warnings"] if w["code"] == "config_ignored"]
    assert ignored == [(2, "model")]
    slow = [w for w in said["warnings"] if w["code"] == "config_over_slo"]
    assert len(slow) == 1 and "'vm00007'" in slow[0]["message"] and "599.34 ms" in slow[0]["message"]
    assert slow[0]["line"] == 8 and slow[0]["column"] == "config_id"
    res = CliRunner().invoke(main, ["reconfigure", str(inv), "--event", "none", "--out", str(tmp_path / "o"),
                                    "--forecast-method", "template", "--json"])
    summary = json.loads(res.stdout)
    assert any("config_over_slo" in w and "vm00007" in w for w in summary["warnings"])
    kept = pd.read_csv(tmp_path / "o" / "configs.csv").set_index("vm_id").at["vm00007", "config_id"]
    assert summary["saas"]["vms_kept_over_slo"] == int(kept == "llama-70b/70b-bf16-tp2x1-b512-p0.50")


def test_a_broken_inventory_does_not_hide_the_events_unknown_rows_and_aisles(tmp_path):
    """A bad vms.csv listed alone: the event's unknown aisle and row came only after fixing it.
    They are checked against rows.csv and aisles.csv, read on their own, and listed together."""
    import shutil

    from click.testing import CliRunner
    from conftest import EXAMPLE
    from tapas_opt.cli import main

    inv = tmp_path / "room"
    shutil.copytree(EXAMPLE, inv)
    lines = (inv / "vms.csv").read_text().splitlines()
    lines[2] = lines[2].replace(",8,", ",-8,")
    (inv / "vms.csv").write_text("\n".join(lines) + "\n")
    res = CliRunner().invoke(main, ["reconfigure", str(inv), "--event", "ahu-failure:ZZ", "--event", "row-power:R99:100",
                                    "--out", str(tmp_path / "o"), "--forecast-method", "template", "--json"])
    assert res.exit_code == 2
    codes = {(p["file"], p["code"]) for p in json.loads(res.stdout)["problems"]}
    assert codes == {("vms.csv", "out_of_range"), ("--event", "unknown_aisle"), ("--event", "unknown_row")}
