"""What-if scenario files, changes, the predicted evaluator, tables, resumption and the CLI (no Dask:
``workers=0`` runs scenarios in this process; tests/test_dask_runner.py runs them on a LocalCluster)."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import EXAMPLE, hourly_history, server, vm, write_inventory

from tapas_opt.cli import main
from tapas_opt.errors import InventoryError
from tapas_opt.inventory.load import load_inventory
from tapas_opt.whatif import ResultStore, load_sweep, run_scenario, run_sweep
from tapas_opt.whatif.changes import add_servers, apply_changes, limits, load_growth, outside, Applied
from tapas_opt.whatif.run import deployable_table


@pytest.fixture
def room(two_row_room) -> Path:
    """The conftest two-row room: rows A and B (3 servers, 20 kW each), run1 at full load on A1,
    two pending full-load VMs of the same customer. Any placement peaks at 15 kW in one row
    and 10.5 kW in the other (6 kW idle + 4.5 kW per full-load VM)."""
    return two_row_room


def write_sweep(path: Path, base: Path, body: str) -> Path:
    path.write_text(f"base: {base}\n" + textwrap.dedent(body))
    return path


# ---- scenario files ----------------------------------------------------------------------------

def test_sweep_expands_listed_times_cartesian(tmp_path, room):
    """3 listed scenarios x 2 x 2 sweep values = 12 scenarios with unique ids and merged changes."""
    path = write_sweep(tmp_path / "s.yaml", room, """
        settings: {policy: greedy}
        changes: {load_growth: {all: 1.1}, limits: {row_power_scale: 1.0}}
        scenarios:
          - name: normal
          - name: ups
            changes: {failures: [ups-failure]}
          - name: hot
            settings: {evaluate_quantile: p90}
            changes: {outside: {shift_c: 5}, load_growth: {iaas: 1.2}}
        sweep:
          changes.add_servers.per_row: [0, 2]
          outside.shift_c: [0, 3]
    """)
    sweep = load_sweep(path)
    assert len(sweep.scenarios) == 12
    ids = [s.id for s in sweep.scenarios]
    assert len(set(ids)) == 12
    assert "hot__add_servers.per_row=2__outside.shift_c=3" in ids
    hot = sweep.by_id()["hot__add_servers.per_row=2__outside.shift_c=3"]
    assert hot.changes["load_growth"] == {"all": 1.1, "iaas": 1.2}  # mappings merge key by key
    assert hot.changes["outside"] == {"shift_c": 3}  # the sweep value wins over the listed one
    assert hot.settings["evaluate_quantile"] == "p90" and hot.settings["policy"] == "greedy"
    assert hot.parameters == {"add_servers.per_row": 2, "outside.shift_c": 3}
    assert sweep.swept == ["add_servers.per_row", "outside.shift_c"]


def test_every_problem_is_reported_with_line_and_key(tmp_path, room):
    """Unknown keys, unknown rows, bad events, bad values and bad sweep keys come out at once."""
    path = write_sweep(tmp_path / "bad.yaml", room, """
        settings:
          policy: fastest
          colour: blue
          seed: 2147483648
          time_limit_s: 1.0e+308
        changes:
          add_servers: {per_row: 2, racks_per_row: 1, rows: [A, Z]}
          failures: [ups-failure:2, ahu-failure:NOPE]
        sweep:
          changes.nonsense.x: [1]
          changes.load_growth.all: []
    """)
    with pytest.raises(InventoryError) as err:
        load_sweep(path)
    problems = err.value.problems
    codes = sorted(p.code for p in problems)
    assert codes.count("unknown_key") == 2  # settings.colour, sweep key
    assert "unknown_row" in codes and "unknown_aisle" in codes and "bad_event" in codes
    by_col = {p.column: p for p in problems}
    assert by_col["settings.policy"].line == 4 and "fastest" in by_col["settings.policy"].message
    assert by_col["changes.add_servers.rows.1"].line == 9
    assert by_col["settings.seed"].code == by_col["settings.time_limit_s"].code == "out_of_range"
    assert "exactly one of per_row and racks_per_row" in by_col["changes.add_servers"].message
    assert all(p.file == "bad.yaml" for p in problems)


def test_a_change_given_twice_is_refused_not_dropped(tmp_path, room):
    """Two 'changes:' blocks: YAML kept the second and dropped the load growth without a word."""
    path = write_sweep(tmp_path / "dup.yaml", room, """
        changes:
          load_growth: {all: 1.5}
        changes:
          outside: {shift_c: 3}
    """)
    with pytest.raises(InventoryError) as err:
        load_sweep(path)
    assert [p.code for p in err.value.problems] == ["duplicate_key"]
    assert "'changes' is given twice" in err.value.problems[0].message


def test_a_wrong_sweep_key_is_reported_once_and_wrong_values_each(tmp_path, room):
    """A misspelt key under a swept change is wrong for every value: one message, not one per
    value; values that are wrong themselves are each reported."""
    path = write_sweep(tmp_path / "bad.yaml", room, """
        sweep:
          changes.outside.shift: [1, 2, 3]
          changes.outside.shift_c: [1, banana, 3, pear]
    """)
    with pytest.raises(InventoryError) as err:
        load_sweep(path)
    problems = err.value.problems
    assert [p.column for p in problems if "'shift'" in p.message] == ["sweep.changes.outside.shift.0"]
    assert [p.column for p in problems if p.code == "bad_type"] == [
        "sweep.changes.outside.shift_c.1", "sweep.changes.outside.shift_c.3"]


def test_missing_base_and_weather_are_reported(tmp_path):
    """A base that is not an inventory and a weather file that does not exist are named."""
    path = tmp_path / "s.yaml"
    path.write_text("base: nowhere\nchanges: {outside: {weather: missing.epw, weather_start: '02-30'}}\n")
    with pytest.raises(InventoryError) as err:
        load_sweep(path)
    messages = " ".join(p.message for p in err.value.problems)
    assert "'nowhere' is not an inventory directory" in messages and "missing.epw" in messages
    assert "'02-30' is not a month-day" in messages  # February has no 30th


def test_spec_hash_follows_inputs(tmp_path, room):
    """Changing a scenario's settings changes its hash; other scenarios keep theirs."""
    body = """
        scenarios:
          - name: a
          - name: b
            settings: {seed: %d}
    """
    h1 = {s.id: s.spec_hash for s in load_sweep(write_sweep(tmp_path / "s.yaml", room, body % 1)).scenarios}
    h2 = {s.id: s.spec_hash for s in load_sweep(write_sweep(tmp_path / "s.yaml", room, body % 2)).scenarios}
    assert h1["a"] == h2["a"] and h1["b"] != h2["b"]
    # kept inside its base (base: .), the scenario file is not part of the base: editing b keeps a
    inside = room / "s.yaml"
    h3 = {s.id: s.spec_hash for s in load_sweep(write_sweep(inside, Path("."), body % 1)).scenarios}
    h4 = {s.id: s.spec_hash for s in load_sweep(write_sweep(inside, Path("."), body % 2)).scenarios}
    inside.unlink()
    assert h3["a"] == h4["a"] and h3["b"] != h4["b"]
    (room / "vms.csv").write_text((room / "vms.csv").read_text() + "\n")  # the base itself: every scenario
    h5 = {s.id: s.spec_hash for s in load_sweep(write_sweep(tmp_path / "s.yaml", room, body % 2)).scenarios}
    assert h5["a"] != h2["a"] and h5["b"] != h2["b"]


def test_results_of_an_older_tapas_opt_are_run_again(tmp_path, room, monkeypatch):
    """A fix that changes what a scenario computes bumps RESULTS_REVISION: a re-run then does
    not take the old result files as finished (they kept add_servers.fill's overshoot)."""
    from tapas_opt.whatif import spec

    path = write_sweep(tmp_path / "s.yaml", room, "scenarios: [{name: a}]")
    before = load_sweep(path).scenarios[0].spec_hash
    monkeypatch.setattr(spec, "RESULTS_REVISION", spec.RESULTS_REVISION + 1)
    assert load_sweep(path).scenarios[0].spec_hash != before


def test_spec_hash_follows_the_weather_file(tmp_path, room, shared_data):
    """Replacing the .epw a scenario names re-runs it (a re-run used to keep Seattle's result
    for Phoenix's file)."""
    weather = shared_data / "weather"
    body = """
        changes: {outside: {weather: site.epw}}
    """
    shutil.copy(weather / "USA_WA_Seattle-Tacoma.epw", tmp_path / "site.epw")
    first = load_sweep(write_sweep(tmp_path / "s.yaml", room, body)).scenarios[0].spec_hash
    shutil.copy(weather / "USA_AZ_Phoenix-Sky.Harbor.epw", tmp_path / "site.epw")
    assert load_sweep(tmp_path / "s.yaml").scenarios[0].spec_hash != first



def _problems(path: Path) -> list:
    """The problems load_sweep reports for a file that must be refused."""
    with pytest.raises(InventoryError) as err:
        load_sweep(path)
    return err.value.problems


def test_added_hardware_is_bounded_like_servers_csv(tmp_path, room):
    """gpus 0 or 100000 and a 1000 C inlet offset were accepted (only >= 0 was checked): the
    figures go into servers.csv's columns, so they get that file's bounds (read from its schema,
    not copied), and idle must not exceed max, also against the row's servers it is cloned
    from when only one of the pair is given (the conftest room's servers: max 6.5 kW, 840 CFM)."""
    from tapas_opt.inventory.schema import column_bounds

    path = write_sweep(tmp_path / "hw.yaml", room, """
        scenarios:
          - name: zero-gpus
            changes: {add_servers: {per_row: 2, hardware: {gpus: 0}}}
          - name: huge
            changes: {add_servers: {per_row: 2, hardware: {gpus: 100000, inlet_offset_c: 1000}}}
          - name: idle-over-max
            changes:
              add_servers:
                per_row: 2
                hardware: {idle_power_kw: 9, max_power_kw: 1, idle_airflow_cfm: 900, max_airflow_cfm: 800}
          - name: idle-over-the-rows-max
            changes: {add_servers: {per_row: 2, hardware: {idle_power_kw: 7}}}
          - name: fine
            changes: {add_servers: {per_row: 2, hardware: {gpus: 4, idle_power_kw: 1, max_power_kw: 9}}}
    """)
    got = {p.column: p for p in _problems(path)}
    hw = "changes.add_servers.hardware"
    gpus_hi = column_bounds("servers", "gpus").hi
    assert got[f"scenarios.0.{hw}.gpus"].message == "0 must be > 0"
    assert got[f"scenarios.1.{hw}.gpus"].message == f"100000 must be <= {gpus_hi:g}"
    assert got[f"scenarios.1.{hw}.inlet_offset_c"].message == "1000 must be <= 30"
    power = got[f"scenarios.2.{hw}.idle_power_kw"]
    assert power.code == "bad_power_range" and power.line == 12
    assert "idle_power_kw 9 is above max_power_kw 1" in power.message
    assert "idle_airflow_cfm 900 is above max_airflow_cfm 800" in got[f"scenarios.2.{hw}.idle_airflow_cfm"].message
    cloned = got[f"scenarios.3.{hw}.idle_power_kw"]
    assert "above the max_power_kw of the servers it is cloned from (6.5 in row A)" in cloned.message
    assert not [c for c in got if c.startswith("scenarios.4")]
    assert all(p.line is not None for p in got.values())


def test_a_failure_after_the_horizon_is_refused_when_the_file_is_read(tmp_path, room):
    """start_h past the horizon (settings.horizon_h, else the base's datacenter.yaml: 24 h for
    the conftest room) failed every such scenario at run time (exit 1); now bad input."""
    path = write_sweep(tmp_path / "late.yaml", room, """
        scenarios:
          - name: late
            changes: {failures: {events: [ups-failure], start_h: 10000}}
          - name: short
            settings: {horizon_h: 12}
            changes: {failures: {events: [ups-failure], start_h: 20}}
          - name: inside
            changes: {failures: {events: [ups-failure], start_h: 23}}
    """)
    got = {p.column: p for p in _problems(path)}
    assert sorted(got) == ["scenarios.0.changes.failures.start_h", "scenarios.1.changes.failures.start_h"]
    late = got["scenarios.0.changes.failures.start_h"]
    assert late.code == "out_of_range" and late.line == 5
    assert "past the end of the 24 h horizon (datacenter.yaml)" in late.message and "0 to 23" in late.hint
    assert "past the end of the 12 h horizon (settings.horizon_h" in got["scenarios.1.changes.failures.start_h"].message
    res = CliRunner().invoke(main, ["whatif", str(path), "--out", str(tmp_path / "out"), "--dask-workers", "0"])
    assert res.exit_code == 2 and not (tmp_path / "out").exists()


def test_simulator_traces_without_the_traces_it_reads_are_refused(tmp_path, room):
    """An empty traces folder failed every scenario at run time: the simulator's IaaS
    customers (the conftest room has no SaaS VM) read the Cornell and Alibaba traces."""
    empty = tmp_path / "traces"
    empty.mkdir()
    path = write_sweep(tmp_path / "sim.yaml", room, f"""
        settings: {{evaluator: simulator, traces: {empty}}}
    """)
    [p] = _problems(path)
    assert (p.code, p.column, p.line) == ("missing_file", "settings.traces", 3)
    assert "cornell_biohpc_gpu_servers" in p.message and "alibaba_genai_2026" in p.message
    assert "azure" not in p.message and "shared/data" in p.hint
    (empty / "cornell_biohpc_gpu_servers").mkdir()
    (empty / "cornell_biohpc_gpu_servers" / "cbsugpu05_usage_stats.txt").write_text("timestamp\n")
    [p] = _problems(path)
    assert "alibaba_genai_2026" in p.message and "cornell" not in p.message


def test_simulator_traces_that_are_present_but_unusable_are_refused(tmp_path, room):
    """A trace file of the right name but the wrong content (another file, a truncated copy)
    failed every scenario at run time with a KeyError; it is now read when the file is checked."""
    folder = tmp_path / "traces"
    (folder / "cornell_biohpc_gpu_servers").mkdir(parents=True)
    (folder / "cornell_biohpc_gpu_servers" / "cbsugpu05_usage_stats.txt").write_text("timestamp\tpowerave\n")
    (folder / "alibaba_genai_2026").mkdir()
    (folder / "alibaba_genai_2026" / "pod_gpu_duty_cycle_anon.csv").write_text("ts,value\n1,2\n")
    path = write_sweep(tmp_path / "sim.yaml", room, f"""
        settings: {{evaluator: simulator, traces: {folder}}}
    """)
    [p] = _problems(path)
    assert (p.code, p.column, p.line) == ("bad_traces", "settings.traces", 3)
    assert "cbsugpu05_usage_stats.txt: missing_column: column(s) powermax, utilave missing" in p.message
    assert "pod_gpu_duty_cycle_anon.csv: missing_column: column(s) timestamp_anon, container_ip missing" in p.message


def test_two_sweep_keys_for_one_path_are_refused(tmp_path, room):
    """add_servers.per_row and changes.add_servers.per_row name the same parameter: one of them
    was silently dropped. A key inside a swept mapping set before that mapping would be lost too."""
    path = write_sweep(tmp_path / "sw.yaml", room, """
        sweep:
          add_servers.per_row: [4]
          changes.add_servers.per_row: [0, 8]
          changes.add_servers.fill: [0, 1]
          add_servers: [{per_row: 1}, {per_row: 2}]
    """)
    problems = _problems(path)
    dup = [p for p in problems if p.code == "duplicate_key"]
    assert [(p.column, p.line) for p in dup] == [("sweep.changes.add_servers.per_row", 5),
                                                 ("sweep.add_servers", 7)]
    assert "'add_servers.per_row'" in dup[0].message and "'changes.add_servers.per_row'" in dup[0].message
    assert "'changes.add_servers.fill'" in dup[1].message
    mapping_first = write_sweep(tmp_path / "ok.yaml", room, """
        sweep:
          add_servers: [{per_row: 1}, {per_row: 2}]
          add_servers.fill: [0, 1]
    """)
    fills = {s.id: s.changes["add_servers"] for s in load_sweep(mapping_first).scenarios}
    assert fills["base__add_servers=per_row-2__add_servers.fill=0"] == {"per_row": 2, "fill": 0}


def test_sweep_combinations_are_checked_as_merged(tmp_path, room):
    """Each sweep value was checked alone against the common changes: per_row and fill swept
    together were refused ("give exactly one of per_row and racks_per_row" for the fill
    values), per_row and racks_per_row swept together were let through. Now every scenario's
    merged changes are checked and each distinct problem is reported once."""
    ok = write_sweep(tmp_path / "ok.yaml", room, """
        scenarios:
          - name: a
          - name: empty-servers
            changes: {add_servers: {fill: 0}}
        sweep:
          add_servers.per_row: [0, 4]
          add_servers.fill: [0, 1]
    """)
    assert len(load_sweep(ok).scenarios) == 8
    both = write_sweep(tmp_path / "both.yaml", room, """
        scenarios:
          - name: a
          - name: racks
            changes: {add_servers: {racks_per_row: 1}}
        sweep:
          add_servers.per_row: [%s]
          add_servers.racks_per_row: [%s]
    """ % (", ".join(map(str, range(100))), ", ".join(map(str, range(40)))))
    problems = _problems(both)
    assert len(problems) == 1
    [p] = problems
    assert p.column == "sweep.add_servers.racks_per_row" and p.line == 9
    assert "give exactly one of per_row and racks_per_row" in p.message
    assert "per_row is given at sweep key 'add_servers.per_row' (line 8)" in p.message
    listed = write_sweep(tmp_path / "listed.yaml", room, """
        scenarios:
          - name: a
          - name: racks
            changes: {add_servers: {racks_per_row: 1}}
        sweep:
          add_servers.per_row: [0, 4]
    """)
    [p] = _problems(listed)
    assert p.column == "sweep.add_servers.per_row" and "racks_per_row at scenarios.1.changes" in p.message
    assert "(first in scenario 'racks__add_servers.per_row=0')" in p.message
    hardware = write_sweep(tmp_path / "hw.yaml", room, """
        changes: {add_servers: {per_row: 1, hardware: {max_power_kw: 5}}}
        sweep:
          add_servers.hardware.idle_power_kw: [1, 9, 2]
    """)
    [p] = _problems(hardware)
    assert p.column == "sweep.add_servers.hardware.idle_power_kw.1" and "max_power_kw 5" in p.message


def test_scenario_ids_that_collide_are_named_with_their_lines(tmp_path, room):
    """'hot july' and 'hot-july' both give the id 'hot-july' (the message named neither and had
    no line); a sweep value given twice ([0, 4, 4]) or two values with one id part are refused
    at the value."""
    path = write_sweep(tmp_path / "ids.yaml", room, """
        scenarios:
          - name: hot july
          - name: hot-july
        sweep:
          add_servers.per_row: [0, 4, 4]
          outside.shift_c: [0.5, "0.5"]
    """)
    got = {p.column: p for p in _problems(path)}
    names = got["scenarios.1.name"]
    assert names.code == "duplicate_id" and names.line == 5
    assert "'hot july' (line 4) and 'hot-july'" in names.message and "'hot-july'" in names.message
    assert "rename" in names.hint
    twice = got["sweep.add_servers.per_row.2"]
    assert (twice.code, twice.line) == ("duplicate_value", 7) and "4 is given twice" in twice.message
    same_id = got["sweep.outside.shift_c.1"]
    assert same_id.code == "duplicate_value" and "0.5 (value 1, line 8) and '0.5'" in same_id.message
    assert len(got) == 3


def test_a_base_that_is_not_text_is_named_as_such(tmp_path):
    """base: 5 was reported as missing ("'base' is required")."""
    path = tmp_path / "s.yaml"
    path.write_text("base: 5\n")
    [p] = _problems(path)
    assert (p.code, p.line, p.column) == ("bad_type", 1, "base")
    assert "must be a path (text), not int" in p.message and "base: '5'" in p.hint


def test_example_scenario_file_is_valid():
    """The bundled example expands to 12 scenarios on data/example."""
    sweep = load_sweep(Path(__file__).resolve().parents[1] / "data" / "scenarios" / "example.yaml")
    assert len(sweep.scenarios) == 12 and Path(sweep.base) == EXAMPLE.resolve()


# ---- changes --------------------------------------------------------------------------------------

def test_add_servers_clones_row_hardware_and_brings_vms(room):
    """per_row adds servers to every row with the row's hardware; fill=1 brings as many GPUs of VMs."""
    inv = load_inventory(room)
    applied = Applied()
    out = add_servers(inv, {"per_row": 2}, seed=0, applied=applied)
    assert len(out.servers) == len(inv.servers) + 4 and applied.servers_added == 4
    assert applied.servers_added_per_row == 2
    new = out.servers[~out.servers["server_id"].isin(inv.servers["server_id"])]
    assert new["server_id"].is_unique and set(new["row_id"]) == {"A", "B"}
    assert (new["max_power_kw"] == 6.5).all()
    added_vms = out.vms[~out.vms["vm_id"].isin(inv.vms["vm_id"])]
    assert added_vms["server_id"].isna().all() and added_vms["gpus"].sum() == 32
    assert len(inv.servers) == 6  # the input is untouched



@pytest.mark.parametrize("fill", [1.0, 0.5, 0.3])
def test_fill_brings_the_documented_gpus_never_more(tmp_path, fill):
    """fill x the new GPUs come as new VMs: VMs were drawn until their GPUs reached that
    number, so the last one overshot it (up to 7 GPUs more with 8-GPU VMs) and some VMs could
    not fit on the new servers. With a 1-GPU VM in the room the number is met exactly."""
    servers = [server(f"{r}{i}", r) for r in "AB" for i in (1, 2)]
    vms = [vm("run1", server_id="A1", gpus=8), vm("p3", gpus=3), vm("p5", gpus=5), vm("p1", gpus=1)]
    root = write_inventory(tmp_path / "inv", aisles=[{"aisle_id": "X", "airflow_limit_cfm": 1e5}],
                           rows=[{"row_id": r, "aisle_id": "X", "power_limit_kw": 50.0} for r in "AB"],
                           servers=servers, vms=vms, telemetry=hourly_history(["run1"], [0.5]))
    inv = load_inventory(root)
    target = round(fill * 3 * 2 * 8)
    for seed in range(30):
        applied = Applied()
        out = add_servers(inv, {"per_row": 3, "fill": fill}, seed=seed, applied=applied)
        added = out.vms[~out.vms["vm_id"].isin(inv.vms["vm_id"])]
        assert applied.gpus_added == added["gpus"].sum() == target, seed


def test_new_vms_fit_on_new_servers_with_fewer_gpus(tmp_path):
    """hardware: {gpus: 4} in a room of 8-GPU and 3-GPU VMs: the new VMs were drawn against
    the new GPUs' total only, so 8-GPU clones came that no new server could hold (deploy-all
    put them on the old servers). They now pack onto the new servers: 3-GPU VMs, one per
    4-GPU server (no VM of the room fits the GPU left over)."""
    servers = [server(f"{r}{i}", r) for r in "AB" for i in (1, 2)]
    vms = [vm("run1", server_id="A1", gpus=8), vm("p8", gpus=8), vm("p3", gpus=3)]
    root = write_inventory(tmp_path / "inv", aisles=[{"aisle_id": "X", "airflow_limit_cfm": 1e5}],
                           rows=[{"row_id": r, "aisle_id": "X", "power_limit_kw": 50.0} for r in "AB"],
                           servers=servers, vms=vms, telemetry=hourly_history(["run1"], [0.5]))
    inv = load_inventory(root)
    for seed in range(10):
        applied = Applied()
        out = add_servers(inv, {"per_row": 3, "hardware": {"gpus": 4}}, seed=seed, applied=applied)
        added = out.vms[~out.vms["vm_id"].isin(inv.vms["vm_id"])]
        assert list(added["gpus"]) == [3] * 6 and applied.gpus_added == 18, seed


def test_add_racks_uses_rack_size_and_given_hardware(tmp_path):
    """racks_per_row x the row's servers per rack; hardware overrides; fill=0 adds no VMs."""
    servers = [server(f"S{i}", "A", rack=f"K{i // 2}") for i in range(4)]
    root = write_inventory(tmp_path / "inv", aisles=[{"aisle_id": "X", "airflow_limit_cfm": 1e5}],
                           rows=[{"row_id": "A", "aisle_id": "X", "power_limit_kw": 50.0}], servers=servers,
                           vms=[vm("v1", server_id="S0")], telemetry=hourly_history(["v1"], [0.5]))
    inv = load_inventory(root)
    out = add_servers(inv, {"racks_per_row": 3, "hardware": {"max_power_kw": 10.2, "gpus": 8}, "fill": 0},
                      seed=1, applied=Applied())
    new = out.servers.iloc[4:]
    assert len(new) == 6 and (new["max_power_kw"] == 10.2).all() and new["rack"].nunique() == 3
    assert len(out.vms) == 1


def test_load_growth_scales_the_right_vms(tmp_path):
    """Factors multiply per VM (all x kind x customer x endpoint); loads are clipped at 1."""
    vms = [vm("i1", customer="c1"), vm("i2", customer="c2"), vm("s1", kind="saas", customer="svc", endpoint="e1")]
    for v, s in zip(vms, ("S1", "S2", "S3")):
        v["server_id"] = s
    root = write_inventory(tmp_path / "inv", aisles=[{"aisle_id": "X", "airflow_limit_cfm": 1e5}],
                           rows=[{"row_id": "A", "aisle_id": "X", "power_limit_kw": 50.0}],
                           servers=[server(s, "A") for s in ("S1", "S2", "S3")], vms=vms,
                           telemetry=hourly_history(["i1", "i2", "s1"], [0.5, 0.5, 0.6]))
    inv = load_inventory(root)
    out = load_growth(inv, {"all": 1.1, "customers": {"c1": 2.0}, "saas": 1.5}, Applied())
    mean = out.telemetry.groupby("vm_id")["load"].mean()
    assert mean["i1"] == pytest.approx(1.0)  # 0.5 x 1.1 x 2 = 1.1, clipped
    assert mean["i2"] == pytest.approx(0.55)
    assert mean["s1"] == pytest.approx(0.99)


def test_outside_shift_and_limits(tmp_path, room):
    """shift_c moves outside.csv (or the default without one); limits scale and set."""
    inv = load_inventory(room)  # no outside.csv
    out = outside(inv, {"shift_c": 4}, tmp_path, Applied())
    assert out.config.inlet.default_outside_c == inv.config.inlet.default_outside_c + 4
    ex = load_inventory(EXAMPLE)
    shifted = outside(ex, {"shift_c": -2.5}, tmp_path, Applied())
    assert np.allclose(shifted.outside["temp_c"], ex.outside["temp_c"] - 2.5)
    lim = limits(inv, {"row_power_scale": 0.5, "row_power_kw": {"B": 12}, "gpu_temp_limit_c": 80})
    assert list(lim.rows["power_limit_kw"]) == [10.0, 12.0] and lim.config.gpu_temp_limit_c == 80


def test_weather_file_replaces_outside(tmp_path, room, shared_data):
    """An EnergyPlus file's dry-bulb temperature replaces outside.csv around the horizon."""
    epw = shared_data / "weather" / "USA_AZ_Phoenix-Sky.Harbor.epw"
    inv, applied = apply_changes(load_inventory(room), {"outside": {"weather": str(epw), "weather_start": "07-13"}},
                                 source_dir=tmp_path)
    assert applied.weather == epw.name and len(inv.outside) > 24 * 7
    assert inv.outside["temp_c"].max() > 35  # Phoenix in July


def test_a_weather_file_short_of_a_year_or_with_missing_hours_is_refused(tmp_path, shared_data):
    """Hours are read by their place in the year: 200 rows wrapped around (a July day got
    January's weather); EPW's 99.9 missing mark is named as such, the number shown as written."""
    from tapas_opt.weather import read_epw_dry_bulb

    lines = (shared_data / "weather" / "USA_AZ_Phoenix-Sky.Harbor.epw").read_text().splitlines()
    short = tmp_path / "short.epw"
    short.write_text("\n".join(lines[:208]) + "\n")
    with pytest.raises(InventoryError) as err:
        read_epw_dry_bulb(short)
    assert err.value.problems[0].message == "200 hourly rows, not a year (8760)"
    cells = lines[20].split(",")
    cells[6] = "99.9"
    gap = tmp_path / "gap.epw"
    gap.write_text("\n".join(lines[:20] + [",".join(cells)] + lines[21:]) + "\n")
    with pytest.raises(InventoryError) as err:
        read_epw_dry_bulb(gap)
    [p] = err.value.problems
    assert p.line == 21 and p.message.startswith("dry-bulb temperature 99.9 is not") and "missing reading" in p.hint


# ---- the predicted evaluator: known answers on the two-row room -------------------------------------

def _run(tmp_path, room, changes: str, settings: str = "policy: greedy") -> dict:
    path = write_sweep(tmp_path / "one.yaml", room, f"""
        settings: {{{settings}}}
        changes: {changes}
    """)
    return run_scenario(load_sweep(path).scenarios[0])


def test_ups_failure_caps_the_fuller_row(tmp_path, room):
    """Limits at 70 % (14 kW) for the whole day: the row at 15 kW is capped, the one at 10.5 kW
    is not: 50 % of row-time, 100 % of time."""
    r = _run(tmp_path, room, "{failures: {events: ['ups-failure:0.7'], start_h: 0, hours: null}}")
    m = r["metrics"]
    assert m["vms_placed"] == 2 and m["vms_forced"] == 0
    assert m["planned_peak_row_power_fraction"] == pytest.approx(0.75)
    assert m["power_capped_row_time_pct"] == pytest.approx(50.0)
    assert m["power_capped_time_pct"] == pytest.approx(100.0)
    assert m["peak_row_power_fraction"] == pytest.approx(15 / 14, rel=1e-6)
    assert m["failure_slots"] == 24


def test_added_servers_force_one_vm_over_a_limit(tmp_path, room):
    """One server and 16 GPUs of full-load VMs more per row: 3 of the 4 pending VMs fit under
    20 kW per row; the fourth is deployed anyway and takes one row to 21.5 kW (capped all day)."""
    r = _run(tmp_path, room, "{add_servers: {per_row: 1}}")
    m = r["metrics"]
    assert r["applied"]["servers_added"] == 2 and r["applied"]["vms_added"] == 2
    assert (m["vms_pending"], m["vms_placed"], m["vms_forced"], m["vms_unplaced"]) == (4, 3, 1, 0)
    assert m["peak_row_power_fraction"] == pytest.approx(21.5 / 20)
    assert m["power_capped_row_time_pct"] == pytest.approx(50.0)


def test_low_gpu_limit_throttles_everything(tmp_path, room):
    """A 40 C GPU limit: no placement keeps it, every VM runs anyway and every GPU throttles."""
    r = _run(tmp_path, room, "{limits: {gpu_temp_limit_c: 40}}")
    m = r["metrics"]
    assert m["vms_placed"] == 0 and m["vms_forced"] == 2
    assert m["thermal_throttled_gpu_time_pct"] == pytest.approx(100.0)
    assert m["power_capped_row_time_pct"] == 0.0


def test_deployable_table_is_conservative():
    """The largest value whose capping, and every smaller value's, is within the budget."""
    table = pd.DataFrame({"name": "n", "servers_added_per_row": [0, 2, 4, 6, 8],
                          "power_capped_row_time_pct": [0.0, 0.5, 3.0, 0.8, 20.0],
                          "param.add_servers.per_row": [0, 2, 4, 6, 8]})
    d = deployable_table(table, [1, 5, 50]).set_index("budget_pct")["max_servers_per_row"]
    assert d[1.0] == 2 and d[5.0] == 6 and d[50.0] == 8
    bad = deployable_table(table.assign(power_capped_row_time_pct=9.0), [1])
    assert np.isnan(bad["max_servers_per_row"].iloc[0])


def test_deployable_table_keeps_each_fill_apart():
    """Servers added with VMs (fill 1) cap sooner than empty ones (fill 0): one group each (the
    table used to mix them and answer 12 servers where fill 1 capped 59 % of the time)."""
    table = pd.DataFrame({"name": "n", "servers_added_per_row": [0, 4, 0, 4],
                          "power_capped_row_time_pct": [0.0, 0.0, 0.0, 16.1],
                          "param.add_servers.per_row": [0, 4, 0, 4], "param.add_servers.fill": [0, 0, 1, 1]})
    d = deployable_table(table, [1]).set_index("group")["max_servers_per_row"]
    assert d.to_dict() == {"n, add_servers.fill=0": 4, "n, add_servers.fill=1": 0}


# ---- sweeps: tables, resumption, failures ----------------------------------------------------------

def _sweep_file(tmp_path, room) -> Path:
    return write_sweep(tmp_path / "sweep.yaml", room, """
        settings: {policy: greedy}
        scenarios:
          - name: normal
          - name: ups
            changes: {failures: [ups-failure:0.7]}
        sweep:
          changes.add_servers.per_row: [0, 1]
    """)


def boom_for_ups(spec):
    """A scenario task that fails for the 'ups' scenarios (a stand-in for a crash)."""
    if spec.name == "ups":
        raise RuntimeError("boom")
    return run_scenario(spec)


def test_sweep_writes_results_and_resumes(tmp_path, room):
    """Each scenario's JSON, the tidy tables and plots; a re-run skips finished scenarios and
    re-runs only those whose inputs changed."""
    out = tmp_path / "out"
    sweep = load_sweep(_sweep_file(tmp_path, room))
    first = run_sweep(sweep, out, workers=0)
    assert (first.ran, first.skipped, len(first.failed)) == (4, 0, 0)
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 4 and set(table["param.add_servers.per_row"]) == {0, 1}
    assert pd.read_parquet(out / "results.parquet").shape == table.shape
    assert len(pd.read_csv(out / "rows.csv")) == 8
    assert (out / "deployable.csv").exists() and (out / "plots" / "deployable_servers.png").exists()
    assert json.loads((out / "sweep.json").read_text())["finished"] == 4
    again = run_sweep(sweep, out, workers=0)
    assert (again.ran, again.skipped) == (0, 4) and len(again.table) == 4
    edited = tmp_path / "sweep.yaml"
    edited.write_text(edited.read_text().replace("[ups-failure:0.7]", "[ups-failure:0.6]"))
    third = run_sweep(load_sweep(edited), out, workers=0)
    assert (third.ran, third.skipped) == (2, 2)
    # Another sweep into the same directory, no longer varying the servers: the old sweep's
    # deployable table and server plots go (they stayed and read as this sweep's).
    flat = write_sweep(tmp_path / "flat.yaml", room, """
        settings: {policy: greedy}
        scenarios:
          - name: normal
    """)
    fourth = run_sweep(load_sweep(flat), out, workers=0)
    assert len(fourth.table) == 1 and not (out / "deployable.csv").exists()
    assert not (out / "plots" / "deployable_servers.png").exists()  # it was drawn: '0 deployable' per budget
    assert sorted(p.name for p in (out / "plots").glob("*.png")) == sorted(Path(p).name for p in fourth.plots)
    assert len(pd.read_csv(out / "results.csv")) == 1


def test_a_swept_value_that_is_a_number_here_and_a_mapping_there_writes_every_table(tmp_path, room):
    """per_row: [0, {A: 1}] crashed writing results.parquet (one column, text and numbers) after
    results.csv was written: exit 3 and a half-updated directory. The column is text now, and
    the deployable table reads the count per row that got servers (1, not 0.5 over two rows)."""
    out = tmp_path / "out"
    sweep = load_sweep(write_sweep(tmp_path / "mixed.yaml", room, """
        settings: {policy: greedy}
        sweep:
          add_servers.per_row: [0, {A: 1}]
    """))
    result = run_sweep(sweep, out, workers=0)
    assert len(result.table) == 2 and not result.failed
    parquet = pd.read_parquet(out / "results.parquet")
    assert list(parquet["param.add_servers.per_row"]) == ["0", '{"A": 1}']
    assert list(parquet["servers_added_per_row"]) == [0, 1]
    assert set(pd.read_csv(out / "deployable.csv")["group"]) == {"base"}


def test_deployable_table_reads_the_count_of_one_row_or_of_a_whole_add_servers_mapping():
    """add_servers.per_row.A swept, or the whole add_servers mapping: each scenario was a group of
    its own (one point each), so the table answered nothing."""
    capped = [0.0, 0.0, 5.0]
    one_row = pd.DataFrame({"name": "base", "servers_added_per_row": [0, 8, 16], "power_capped_row_time_pct": capped,
                            "param.add_servers.per_row.A": [0, 8, 16]})
    d = deployable_table(one_row, [1]).set_index("group")["max_servers_per_row"]
    assert d.to_dict() == {"base": 8}
    whole = pd.DataFrame({"name": "base", "servers_added_per_row": [0, 8, 16, 0, 8, 16],
                          "power_capped_row_time_pct": capped + [0.0, 3.0, 9.0],
                          "param.add_servers": ['{"fill": 0, "per_row": 0}', '{"fill": 0, "per_row": 8}',
                                                '{"fill": 0, "per_row": 16}', '{"fill": 1, "per_row": 0}',
                                                '{"fill": 1, "per_row": 8}', '{"fill": 1, "per_row": 16}']})
    d = deployable_table(whole, [1]).set_index("group")["max_servers_per_row"]
    assert d.to_dict() == {'base, add_servers={"fill": 0}': 8, 'base, add_servers={"fill": 1}': 0}


def test_add_servers_rows_named_twice_or_left_out_and_gpus_without_power_are_refused(tmp_path, room):
    """rows: [A, A] added the row's servers twice; per_row: {A: 8} with rows: [B] added none;
    hardware: {gpus: 64} alone kept the cloned 8-GPU servers' power. All silently."""
    path = write_sweep(tmp_path / "rows.yaml", room, """
        scenarios:
          - name: twice
            changes: {add_servers: {per_row: 2, rows: [A, A]}}
          - name: left-out
            changes: {add_servers: {per_row: {A: 8}, rows: [B]}}
          - name: many-gpus
            changes: {add_servers: {per_row: 2, hardware: {gpus: 64}}}
          - name: fine
            changes: {add_servers: {per_row: {A: 8, B: 0}, rows: [A], hardware: {gpus: 8}}}
    """)
    got = {p.column: p for p in _problems(path)}
    assert set(got) == {"scenarios.0.changes.add_servers.rows.1", "scenarios.1.changes.add_servers.per_row",
                        "scenarios.2.changes.add_servers.hardware.gpus"}
    assert "'A' is listed twice" in got["scenarios.0.changes.add_servers.rows.1"].message
    assert "gives servers to A, which add_servers.rows (B) leaves out" in got[
        "scenarios.1.changes.add_servers.per_row"].message
    assert "keep the power of the 8-GPU servers" in got["scenarios.2.changes.add_servers.hardware.gpus"].message


def test_sections_of_the_wrong_type_and_failure_timing_without_events_are_refused(tmp_path, room):
    """settings: [], changes: "", report: 0, name: [1, 2] and sweep: [] were read as empty (a
    `raw.get(...) or {}`); failures: {start_h: ...} without events ran without a failure."""
    path = write_sweep(tmp_path / "falsy.yaml", room, """
        settings: []
        changes: ""
        report: 0
        name: [1, 2]
        sweep: []
        scenarios:
          - name: a
            changes: {failures: {start_h: 10}}
            settings: 0
    """)
    got = {p.column: p for p in _problems(path)}
    for key in ("settings", "changes", "report", "sweep", "scenarios.0.settings"):
        assert got[key].message.startswith("must be a mapping"), key
    assert got["name"].message == "must be a text, not a list"
    timing = write_sweep(tmp_path / "timing.yaml", room, """
        sweep:
          failures.start_h: [10, 170]
    """)
    [problem] = _problems(timing)
    assert (problem.column, problem.code) == ("sweep.failures.start_h", "bad_value")
    assert "has no effect without failure events" in problem.message
    short = write_sweep(tmp_path / "short.yaml", room, "settings: {policy: greedy, time_limit_s: 0.05}\n")
    [problem] = _problems(short)  # every scenario failed at run time, without a line
    assert (problem.column, problem.line, problem.message) == ("settings.time_limit_s", 2, "0.05 must be >= 0.1")


def test_one_failing_scenario_keeps_the_others(tmp_path, room):
    """A scenario that raises is reported (failed/ID.json, sweep.json) and tried again next time;
    the others' results are written."""
    out = tmp_path / "out"
    sweep = load_sweep(_sweep_file(tmp_path, room))
    result = run_sweep(sweep, out, workers=0, task=boom_for_ups)
    assert len(result.table) == 2 and len(result.failed) == 2
    assert all("boom" in f["error"] for f in result.failed)
    assert sorted(p.stem for p in (out / "failed").glob("*.json")) == sorted(
        s.id for s in sweep.scenarios if s.name == "ups")
    store = ResultStore(out)
    assert sum(store.is_done(s) for s in sweep.scenarios) == 2
    healed = run_sweep(sweep, out, workers=0)
    assert (healed.ran, len(healed.failed), len(healed.table)) == (2, 0, 4)
    assert not list((out / "failed").glob("*.json"))


def always_boom(spec):
    raise RuntimeError(f"boom in {spec.name}")


def test_report_on_a_sweep_where_every_scenario_failed(tmp_path, room):
    """Every scenario failed: whatif writes no results table, only sweep.json. report --whatif
    said 'results.csv: cannot read it' (exit 2); it now renders the sweep with its failures."""
    out = tmp_path / "out"
    result = run_sweep(load_sweep(_sweep_file(tmp_path, room)), out, workers=0, task=always_boom)
    assert len(result.failed) == 4 and not (out / "results.csv").exists()
    plan = tmp_path / "plan"
    assert CliRunner().invoke(main, ["place", str(room), "--out", str(plan), "--policy", "greedy"]).exit_code == 0
    html = tmp_path / "r.html"
    res = CliRunner().invoke(main, ["report", str(plan), "-i", str(room), "--whatif", str(out), "--out", str(html)])
    assert res.exit_code == 0, res.output
    text = html.read_text()
    assert "No scenario of this sweep has finished" in text and "4 scenario(s) failed" in text
    assert "boom in ups" in text and "boom in normal" in text


# ---- the command line ---------------------------------------------------------------------------------

def test_cli_whatif_runs_lists_and_reports_bad_files(tmp_path, room):
    """Exit 0 with results; --list names the scenarios; a malformed file exits 2 listing problems."""
    path = _sweep_file(tmp_path, room)
    runner = CliRunner()
    res = runner.invoke(main, ["whatif", str(path), "--out", str(tmp_path / "o"), "--dask-workers", "0",
                               "--no-plots", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["finished"] == 4
    listed = runner.invoke(main, ["whatif", str(path), "--out", str(tmp_path / "o"), "--list"])
    assert listed.exit_code == 0 and listed.stdout.count("(finished)") == 4
    bare = runner.invoke(main, ["whatif", str(path), "--list"])  # --list needs no --out
    assert bare.exit_code == 0 and len(bare.stdout.splitlines()) == 4 and "(finished)" not in bare.stdout
    assert runner.invoke(main, ["whatif", str(path)]).exit_code == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"base: {room}\nchanges: {{add_servers: {{per_row: -1}}}}\n")
    res = runner.invoke(main, ["whatif", str(bad), "--out", str(tmp_path / "o2")])
    assert res.exit_code == 2 and "out_of_range" in res.output


# ---- the simulator as the evaluation step -----------------------------------------------------------

def test_simulator_evaluator_runs_the_week(tmp_path, shared_data):
    """evaluator: simulator runs tapas_opt.simulate on the changed room (real traces) and fills the
    same columns; a UPS failure window shows up as capped row-time."""
    path = write_sweep(tmp_path / "sim.yaml", EXAMPLE, f"""
        settings: {{evaluator: simulator, sim_policy: place, traces: {shared_data}, sim_step_min: 60}}
        scenarios:
          - name: normal
          - name: ups
            changes: {{failures: [ups-failure]}}
    """)
    results = {s.name: run_scenario(s) for s in load_sweep(path).scenarios}
    normal, ups = results["normal"]["metrics"], results["ups"]["metrics"]
    assert results["normal"]["evaluator"] == "simulator" and normal["sim_policy"] == "place"
    assert normal["vms_pending"] == 24 and normal["vms_unplaced"] == 0
    assert ups["failure_slots"] == 24 and ups["power_capped_row_time_pct"] >= normal["power_capped_row_time_pct"]
    assert ups["peak_row_power_fraction"] > normal["peak_row_power_fraction"]
    servers = pd.read_csv(EXAMPLE / "servers.csv")["row_id"].value_counts().to_dict()
    assert {r["row_id"]: r["servers"] for r in results["normal"]["rows"]} == servers  # as the predicted rows.csv


def test_simulator_evaluator_refuses_load_growth(tmp_path, room):
    """Load growth cannot act on the simulator's real traces: the file check says so."""
    path = write_sweep(tmp_path / "s.yaml", room, """
        settings: {evaluator: simulator}
        changes: {load_growth: {all: 1.2}}
    """)
    with pytest.raises(InventoryError, match="load_growth has no effect"):
        load_sweep(path)


def test_weather_start_without_a_weather_file_is_refused(tmp_path, room):
    """weather_start only picks a day of a weather file: alone it would be ignored silently."""
    path = write_sweep(tmp_path / "s.yaml", room, """
        changes: {outside: {weather_start: '01-15'}}
    """)
    with pytest.raises(InventoryError, match="weather_start has no effect without a weather file") as err:
        load_sweep(path)
    assert err.value.problems[0].line == 3  # base, a blank line, then changes


def test_weather_start_may_pick_the_day_of_a_weather_file_given_elsewhere(tmp_path, room, shared_data):
    """The rule holds on each scenario as merged: the file in the common changes, the days swept."""
    epw = shared_data / "weather" / "USA_AZ_Phoenix-Sky.Harbor.epw"
    path = write_sweep(tmp_path / "s.yaml", room, f"""
        changes: {{outside: {{weather: {epw}}}}}
        sweep: {{outside.weather_start: ['01-15', '07-13']}}
    """)
    assert len(load_sweep(path).scenarios) == 2


def test_optimal_policy_and_short_horizon(tmp_path, room):
    """policy: optimal runs the optimiser (its LP bound is reported) and horizon_h shortens the week."""
    r = _run(tmp_path, room, "{}", "policy: optimal, time_limit_s: 5, horizon_h: 12")
    m = r["metrics"]
    assert m["placement_status"] in ("optimal", "feasible") and m["vms_placed"] == 2
    # The LP may split a VM over rows: (10.5 + 6 + 9) / 2 = 12.75 kW per row = 0.6375.
    assert m["peak_row_power_bound"] == pytest.approx(0.6375, abs=1e-6)
    assert m["planned_peak_row_power_fraction"] == pytest.approx(0.75)
    assert len(r["rows"]) == 2 and r["settings"]["horizon_h"] == 12


def test_a_broken_base_inventory_is_bad_input_once(tmp_path):
    """Every scenario would fail on it: the base's problems are reported up front (exit 2),
    named by the base's path, before any scenario runs."""
    import shutil

    base = tmp_path / "base"
    shutil.copytree(EXAMPLE, base)
    (base / "rows.csv").write_text((base / "rows.csv").read_text().replace("\n", "\nR99,NOWHERE,-5\n", 1))
    spec = tmp_path / "s.yaml"
    spec.write_text("base: base\nsettings: {forecast_method: template}\n")
    res = CliRunner().invoke(main, ["whatif", str(spec), "--out", str(tmp_path / "out"), "--dask-workers", "0"])
    assert res.exit_code == 2, res.output
    assert "base/rows.csv" in res.output and not (tmp_path / "out").exists()


def test_simulator_settings_and_weather_are_checked_when_the_file_is_read(tmp_path, room):
    """A wrong sim_policy, a step that does not divide an hour, a missing traces folder and a
    weather file that is not EPW are bad input at load time (file, line, key), not a failure of
    every scenario at run time."""
    (tmp_path / "not.epw").write_text("a,b\n1,2\n")
    path = write_sweep(tmp_path / "s.yaml", room, """
        settings:
          evaluator: simulator
          sim_policy: fullest
          sim_step_min: 7
          traces: /nonexistent/traces
        changes:
          outside: {weather: not.epw}
    """)
    with pytest.raises(InventoryError) as err:
        load_sweep(path)
    got = {p.column: p.code for p in err.value.problems}
    assert got == {"settings.sim_policy": "bad_value", "settings.sim_step_min": "bad_value",
                   "settings.traces": "missing_file", "changes.outside.weather": "bad_weather_file"}


def test_a_failure_window_outside_the_horizon_is_an_error():
    """failures.start_h past the horizon would run the scenario with no failure at all."""
    from tapas_opt.whatif.changes import FailureWindow
    from tapas_opt.whatif.evaluate import failure_mask

    horizon = pd.date_range("2026-06-01", periods=24, freq="60min")
    inside = failure_mask(FailureWindow(("ups-failure",), 6.0, 4.0), horizon, np.ones(24))
    assert inside.sum() == 4 and inside[6:10].all()
    with pytest.raises(InventoryError) as err:
        failure_mask(FailureWindow(("ups-failure",), 500.0, 24.0), horizon, np.ones(24))
    assert "covers no slot" in err.value.problems[0].message


def test_a_scheduler_address_without_a_port_is_bad_usage(tmp_path, room):
    """It was a ValueError traceback (exit 3); an unreachable address already said what to do."""
    from click.testing import CliRunner

    from tapas_opt.cli import main

    spec = write_sweep(tmp_path / "s.yaml", room, "settings: {forecast_method: template}\n")
    res = CliRunner().invoke(main, ["whatif", str(spec), "--out", str(tmp_path / "w"), "--scheduler", "bogus"])
    assert res.exit_code == 2 and "cannot reach the Dask scheduler at bogus" in res.output


def test_numeric_ids_negative_sweep_values_and_per_row_bounds(tmp_path):
    """Found by a tester: YAML reads ``{1: 4}`` with the number 1, while ids are text in the
    inventory: a per_row key 1 passed the check and added no server, and customers ``{101: ..,
    c2: ..}`` crashed the sweep's hashing (exit 3). ``-5`` and ``5`` gave one id part ('5'), so a
    ±5 C sweep was refused. A per-row count had no upper bound (a number for all rows has)."""
    servers = [server(f"{r}-{i}", r) for r in ("1", "B") for i in (1, 2)]
    room = write_inventory(tmp_path / "numeric", aisles=[{"aisle_id": "X", "airflow_limit_cfm": 1e5}],
                           rows=[{"row_id": r, "aisle_id": "X", "power_limit_kw": 20.0} for r in ("1", "B")],
                           servers=servers, vms=[vm("run1", customer="101", server_id="1-1"),
                                                 vm("new1", customer="c2")],
                           telemetry=hourly_history(["run1"], [0.5]))
    sweep = load_sweep(write_sweep(tmp_path / "num.yaml", room, """
        settings: {policy: greedy}
        changes: {load_growth: {customers: {101: 1.5, c2: 1.1}}}
        scenarios:
          - {name: numeric, changes: {add_servers: {per_row: {1: 2}}}}
          - {name: text, changes: {add_servers: {per_row: {"1": 2}}}}
        sweep:
          outside.shift_c: [-5, 0, 5]
    """))
    ids = [s.id for s in sweep.scenarios]
    assert len(ids) == len(set(ids)) == 6 and "numeric__outside.shift_c=-5" in ids
    numeric, text = (next(s for s in sweep.scenarios if s.name == n) for n in ("numeric", "text"))
    assert numeric.changes == text.changes
    inv = load_inventory(room)
    added, _ = apply_changes(inv, numeric.changes)
    assert len(added.servers) == len(inv.servers) + 2
    with pytest.raises(InventoryError) as err:
        load_sweep(write_sweep(tmp_path / "big.yaml", room, """
            changes: {add_servers: {per_row: {B: 100000000}}}
        """))
    assert [(p.code, p.column) for p in err.value.problems] == [("out_of_range", "changes.add_servers.per_row.B")]
