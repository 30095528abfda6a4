"""Inventory loading: bad input gets every problem at once, with file, line and column."""

import pandas as pd
import pytest

from conftest import EXAMPLE, hourly_history, server, vm, write_inventory
from tapas_opt.errors import InventoryError
from tapas_opt.inventory.load import check_inventory, load_inventory


def _room(tmp_path, **over):
    base = dict(
        aisles=[{"aisle_id": "X", "airflow_limit_cfm": 10000}],
        rows=[{"row_id": "A", "aisle_id": "X", "power_limit_kw": 20.0}],
        servers=[server("A1", "A"), server("A2", "A")],
        vms=[vm("v1", server_id="A1"), vm("v2")],
        telemetry=hourly_history(["v1"], [0.5], weeks=1),
    )
    base.update(over)
    return write_inventory(tmp_path / "inv", **base)


def _without_start(yaml_text: str) -> str:
    """datacenter.yaml without its 'start' line, so that a test can give its own (a key given
    twice is a problem of its own)."""
    return "".join(line for line in yaml_text.splitlines(keepends=True) if not line.startswith("start:"))


def _codes(problems):
    return sorted({p.code for p in problems})


def test_the_example_is_valid():
    """The bundled example loads without problems."""
    inv, problems = check_inventory(EXAMPLE)
    assert problems == [] and inv is not None and len(inv.pending_vms) > 0


def test_a_valid_tiny_room_loads_and_keeps_extra_columns(tmp_path):
    """Extra columns are allowed and kept."""
    root = _room(tmp_path, servers=[server("A1", "A", asset_tag="x1"), server("A2", "A", asset_tag="x2")])
    inv = load_inventory(root)
    assert list(inv.servers["asset_tag"]) == ["x1", "x2"]
    assert list(inv.pending_vms["vm_id"]) == ["v2"]


def test_missing_files_and_columns_are_all_reported(tmp_path):
    """A missing table and a missing column are reported together."""
    root = _room(tmp_path)
    (root / "aisles.csv").unlink()
    pd.read_csv(root / "rows.csv").drop(columns="power_limit_kw").to_csv(root / "rows.csv", index=False)
    _, problems = check_inventory(root)
    assert {"missing_file", "missing_column"} <= set(_codes(problems))
    assert any(p.file == "aisles.csv" for p in problems)
    assert any(p.file == "rows.csv" and "power_limit_kw" in p.message for p in problems)


def test_a_header_in_another_case_is_named_in_its_missing_column(tmp_path):
    """rows.csv with 'Power_Limit_KW': the column is there, spelled otherwise; the message says so."""
    root = _room(tmp_path)
    rows = pd.read_csv(root / "rows.csv").rename(columns={"power_limit_kw": "Power_Limit_KW"})
    rows.to_csv(root / "rows.csv", index=False)
    _, problems = check_inventory(root)
    [missing] = [p for p in problems if p.code == "missing_column"]
    assert missing.file == "rows.csv" and "the file has 'Power_Limit_KW'" in missing.message


def test_bad_values_name_file_line_and_column(tmp_path):
    """A negative limit, a NaN and text in a number column: each with its CSV line."""
    root = _room(tmp_path, rows=[{"row_id": "A", "aisle_id": "X", "power_limit_kw": -5}],
                 aisles=[{"aisle_id": "X", "airflow_limit_cfm": "lots"}])
    _, problems = check_inventory(root)
    neg = [p for p in problems if p.file == "rows.csv" and p.column == "power_limit_kw"]
    txt = [p for p in problems if p.file == "aisles.csv" and p.column == "airflow_limit_cfm"]
    assert neg and neg[0].line == 2 and neg[0].code == "out_of_range"
    assert txt and txt[0].line == 2 and txt[0].code == "bad_type"


def test_unknown_ids_and_duplicates(tmp_path):
    """A row pointing at an unknown aisle, a VM on an unknown server, a duplicate server id."""
    root = _room(tmp_path,
                 rows=[{"row_id": "A", "aisle_id": "NOPE", "power_limit_kw": 20}],
                 servers=[server("A1", "A"), server("A1", "A")],
                 vms=[vm("v1", server_id="A1"), vm("v2", server_id="ZZ")])
    _, problems = check_inventory(root)
    codes = _codes(problems)
    assert {"unknown_aisle", "unknown_server", "duplicate_id"} <= set(codes)
    unknown = next(p for p in problems if p.code == "unknown_server")
    assert (unknown.file, unknown.line, unknown.column) == ("vms.csv", 3, "server_id")


def test_load_outside_0_1_and_unparsable_timestamps(tmp_path):
    """Telemetry load 1.5 and a timestamp that is not a time are both reported."""
    tel = hourly_history(["v1"], [0.5], weeks=1).reset_index(drop=True)
    tel["timestamp"] = tel["timestamp"].astype(str)
    tel.loc[3, "load"] = 1.5
    tel.loc[5, "timestamp"] = "yesterday-ish"
    root = _room(tmp_path, telemetry=tel)
    _, problems = check_inventory(root)
    assert any(p.code == "out_of_range" and p.column == "load" and p.line == 5 for p in problems)
    assert any(p.code == "bad_timestamp" and p.line == 7 for p in problems)


def test_unsorted_telemetry_is_a_problem_and_duplicates_a_warning(tmp_path):
    tel = hourly_history(["v1"], [0.5], weeks=1).reset_index(drop=True)
    tel = pd.concat([tel.iloc[[1, 0]], tel.iloc[2:], tel.iloc[[5]]], ignore_index=True)
    root = _room(tmp_path, telemetry=tel)
    _, problems = check_inventory(root)
    assert "unsorted_timestamps" in _codes(problems)


def test_duplicate_telemetry_warning_gives_the_first_duplicates_line(tmp_path):
    tel = hourly_history(["v1"], [0.5], weeks=1).reset_index(drop=True)
    tel = pd.concat([tel.iloc[:5], tel.iloc[[4, 4]], tel.iloc[5:]], ignore_index=True)
    inv, problems = check_inventory(_room(tmp_path, telemetry=tel))
    [dup] = [w for w in inv.warnings if w.code == "duplicate_timestamps"]
    assert problems == [] and (dup.file, dup.line, dup.column) == ("telemetry.csv", 7, "timestamp")
    cell = (tmp_path / "inv" / "telemetry.csv").read_text().splitlines()[6].split(",")[0]
    assert dup.message.startswith(f"2 duplicate (vm_id, timestamp) rows, the first VM 'v1' at '{cell}'")


def test_time_order_problems_quote_the_timestamp_as_written_not_in_utc(tmp_path):
    """A local time with its offset went back, and the problem showed its UTC value, which
    appears nowhere in the file: the cell is quoted as written."""
    root = _room(tmp_path)
    lines = (root / "telemetry.csv").read_text().splitlines()
    header = lines[0].split(",")
    at = header.index("timestamp")
    cells = lines[2].split(",")
    cells[at] = "2026-01-01T03:30:00+02:00"  # earlier than the line before it
    lines[2] = ",".join(cells)
    (root / "telemetry.csv").write_text("\n".join(lines) + "\n")
    _, problems = check_inventory(root)
    (p,) = [p for p in problems if p.code == "unsorted_timestamps"]
    assert p.message.startswith("timestamp '2026-01-01T03:30:00+02:00' of VM") and p.line == 3


def test_vm_larger_than_every_server_and_overcommitted_server(tmp_path):
    root = _room(tmp_path, vms=[vm("v1", server_id="A1"), vm("v2", gpus=16), vm("v3", server_id="A1")])
    _, problems = check_inventory(root)
    assert {"vm_too_large", "server_overcommitted"} <= set(_codes(problems))


def test_saas_vm_needs_an_endpoint(tmp_path):
    root = _room(tmp_path, vms=[vm("v1", server_id="A1"), vm("v2", kind="saas")])
    _, problems = check_inventory(root)
    assert "missing_endpoint" in _codes(problems)


def test_bad_yaml_keys_and_values(tmp_path):
    root = _room(tmp_path)
    (root / "datacenter.yaml").write_text("time_step_min: 7\nhorizon_h: -1\nfoo: 1\n")
    _, problems = check_inventory(root)
    assert {"bad_value", "unknown_key"} <= set(_codes(problems))


def test_datacenter_yaml_problems_give_the_line_of_their_key(tmp_path):
    """Like a CSV cell, a YAML key with a problem is reported with its line; a syntax error
    with the line PyYAML points at."""
    root = _room(tmp_path)
    (root / "datacenter.yaml").write_text(
        "time_step_min: 60\nhorizon_h: 24\nplacement:\n  seed: 1\n  power_weght: 2\n  time_limit_s: 0\n")
    _, problems = check_inventory(root)
    lines = {p.message.split("'")[1]: p.line for p in problems if p.file == "datacenter.yaml"}
    assert lines == {"placement.power_weght": 5, "placement.time_limit_s": 6}
    assert all(p.column is None for p in problems if p.file == "datacenter.yaml")
    (root / "datacenter.yaml").write_text("time_step_min: 60\nhorizon_h: [24\nplacement: {}\n")
    _, problems = check_inventory(root)
    (bad,) = [p for p in problems if p.file == "datacenter.yaml"]
    assert bad.code == "bad_yaml" and bad.line is not None and "datacenter.yaml" in bad.message


@pytest.mark.parametrize("text, line, inside", [
    ("name: 'abc\ntime_step_min: 60\n", 1, "a quoted text that opens at line 1, column 7"),
    ("name: abc\nplacement: {quantile: p90\n\n", 2, "a { } mapping that opens at line 2, column 12"),
])
def test_a_yaml_construct_left_open_is_reported_where_it_opens(tmp_path, text, line, inside):
    """An unclosed quote or bracket was reported at the end of the file, a line after the last
    one ("found unexpected end of stream"): now at the line where it opens."""
    root = _room(tmp_path)
    (root / "datacenter.yaml").write_text(text)
    _, problems = check_inventory(root)
    (bad,) = [p for p in problems if p.file == "datacenter.yaml"]
    assert bad.code == "bad_yaml" and bad.line == line and inside in bad.message


def test_a_horizon_off_the_time_grid_names_the_nearest_good_ones(tmp_path):
    root = _room(tmp_path)
    (root / "datacenter.yaml").write_text("time_step_min: 45\nhorizon_h: 1\n")
    _, problems = check_inventory(root)
    (p,) = [p for p in problems if "horizon_h" in p.message]
    assert "45-minute" in p.message and p.hint == "use 0.75 or 1.5"


def test_a_bad_time_step_is_said_once_not_again_through_the_horizon(tmp_path):
    root = _room(tmp_path)
    (root / "datacenter.yaml").write_text("time_step_min: 7\nhorizon_h: 24\n")
    _, problems = check_inventory(root)
    said = [p for p in problems if p.file == "datacenter.yaml"]
    assert len(said) == 1 and "time_step_min" in said[0].message, said


@pytest.mark.parametrize("hours", [3e6, 673])
def test_a_horizon_beyond_four_weeks_is_bad_input_not_a_crash(tmp_path, hours):
    """horizon_h: 3000000 passed validate, and forecast then crashed (OutOfBoundsDatetime,
    exit 3): the horizon is now at most four weeks, what the forecasters learn from."""
    root = _room(tmp_path)
    (root / "datacenter.yaml").write_text(f"time_step_min: 60\nhorizon_h: {hours:g}\n")
    _, problems = check_inventory(root)
    (p,) = [p for p in problems if "horizon_h" in p.message]
    assert p.code == "bad_value" and "672 h" in p.message and "at most 672" in p.hint


def test_load_inventory_raises_with_every_problem(tmp_path):
    root = _room(tmp_path, rows=[{"row_id": "A", "aisle_id": "X", "power_limit_kw": -5}],
                 vms=[vm("v1", server_id="A1"), vm("v2", kind="nope")])
    with pytest.raises(InventoryError) as exc:
        load_inventory(root)
    assert len(exc.value.problems) >= 2


def test_parquet_is_accepted_where_csv_is(tmp_path):
    root = _room(tmp_path)
    tel = pd.read_csv(root / "telemetry.csv", parse_dates=["timestamp"])
    tel.to_parquet(root / "telemetry.parquet", index=False)
    (root / "telemetry.csv").unlink()
    inv = load_inventory(root)
    assert len(inv.telemetry) == len(tel)


def test_an_empty_text_cell_in_parquet_is_missing_as_in_csv(tmp_path):
    """A spreadsheet exported to Parquet writes "" for an empty server_id: the pending VM was
    refused as placed on an unknown server ''."""
    root = _room(tmp_path, vms=[vm("v1", server_id="A1"), vm("v2", server_id=None)])
    vms = pd.read_csv(root / "vms.csv", dtype=str, keep_default_na=False)
    assert vms.loc[1, "server_id"] == ""
    vms.loc[1, "server_id"] = " "
    vms.to_parquet(root / "vms.parquet", index=False)
    (root / "vms.csv").unlink()
    inv = load_inventory(root)
    assert inv.pending_vms["vm_id"].tolist() == ["v2"]


def test_csv_and_parquet_of_one_table_is_ambiguous(tmp_path):
    """Both telemetry.csv and telemetry.parquet: which one is current is unknown, so it is a
    problem rather than a silent choice."""
    root = _room(tmp_path)
    pd.read_csv(root / "telemetry.csv").to_parquet(root / "telemetry.parquet", index=False)
    _, problems = check_inventory(root)
    assert [(p.code, p.file) for p in problems] == [("ambiguous_file", "telemetry.csv")]


def test_datacenter_yaml_start_time_limit_and_seed_are_checked(tmp_path):
    root = _room(tmp_path)
    text = _without_start((root / "datacenter.yaml").read_text())
    (root / "datacenter.yaml").write_text(text + "start: 'not a date'\nplacement:\n  time_limit_s: 0\n  seed: -2\n")
    _, problems = check_inventory(root)
    keys = sorted(p.message.split("'")[1] for p in problems if p.code == "bad_value")
    assert keys == ["placement.seed", "placement.time_limit_s", "start"]
    (root / "datacenter.yaml").write_text(text + "placement:\n  time_limit_s: .inf\n  seed: 2147483648\n")
    _, problems = check_inventory(root)
    keys = sorted(p.message.split("'")[1] for p in problems if p.code == "bad_value")
    assert keys == ["placement.seed", "placement.time_limit_s"]


def test_a_key_given_twice_in_datacenter_yaml_is_bad_input_with_the_other_problems(tmp_path):
    """YAML keeps the last of two equal keys silently: a limit of 85 C read on line 1 and
    overridden further down planned to 60 C. Both keys' lines are named; other problems of
    the file still come out."""
    root = _room(tmp_path)
    text = _without_start((root / "datacenter.yaml").read_text())
    text = "\n".join(line for line in text.splitlines() if not line.startswith("gpu_temp_limit_c"))
    (root / "datacenter.yaml").write_text("gpu_temp_limit_c: 85\n" + text + "\ngpu_temp_limit_c: 60\nplacement: {seed: -1}\n")
    _, problems = check_inventory(root)
    dup = [p for p in problems if p.code == "duplicate_key"]
    n = len(text.splitlines())
    assert [(p.line, p.message) for p in dup] == [(n + 2, "'gpu_temp_limit_c' is given twice (first on line 1): "
                                                          "YAML would silently keep this one")]
    assert any(p.code == "bad_value" and "placement.seed" in p.message for p in problems)


def test_text_in_a_number_column_does_not_hide_its_other_bad_values(tmp_path):
    """'abc' and -3 in one column, 'x', 7 and an empty cell in another: all five reported."""
    servers = [server("A1", "A"), server("A2", "A"), server("A3", "A")]
    servers[0]["idle_power_kw"], servers[1]["idle_power_kw"] = "abc", -3
    tel = hourly_history(["v1"], [0.5], weeks=1).astype({"load": object})
    tel.loc[0, "load"], tel.loc[1, "load"], tel.loc[2, "load"] = "x", 7.0, None
    root = _room(tmp_path, servers=servers, telemetry=tel)
    _, problems = check_inventory(root)
    got = {(p.file, p.line, p.column, p.code) for p in problems}
    assert {("servers.csv", 2, "idle_power_kw", "bad_type"), ("servers.csv", 3, "idle_power_kw", "out_of_range"),
            ("telemetry.csv", 2, "load", "bad_type"), ("telemetry.csv", 3, "load", "out_of_range"),
            ("telemetry.csv", 4, "load", "missing_value")} <= got


def test_text_read_as_a_missing_number_is_quoted_not_called_empty(tmp_path):
    """'nan' in a number column is a missing value, but the cell is not empty: the message
    quotes it (it said "the cell is empty", which sent users looking for a blank; and next to
    text that is no number at all, 'NA', it was not reported)."""
    tel = hourly_history(["v1"], [0.5], weeks=1).astype({"load": object})
    tel.loc[0, "load"], tel.loc[1, "load"], tel.loc[2, "load"] = "nan", "NA", None
    root = _room(tmp_path, telemetry=tel)
    _, problems = check_inventory(root)
    got = {p.line: (p.code, p.message) for p in problems if p.file == "telemetry.csv"}
    assert got[2] == ("missing_value", "value 'nan' is not a number: a value is required")
    assert got[3] == ("bad_type", "value 'NA' cannot be read as a number")
    assert got[4] == ("missing_value", "the cell is empty: a value is required")


def test_cell_problems_do_not_hide_rules_across_rows(tmp_path):
    """A bad kind in one VM row and a bad number in one server row: the other rows still get
    the rules across rows and files (VM larger than every server, max power below idle)."""
    servers = [server("A1", "A"), server("A2", "A"), server("A3", "A")]
    servers[0]["idle_airflow_cfm"] = "lots"
    servers[1]["max_power_kw"] = 1.0  # below its idle power
    vms = [vm("v1", server_id="A1"), vm("v2", kind="paas"), vm("v3", gpus=16)]
    root = _room(tmp_path, servers=servers, vms=vms)
    _, problems = check_inventory(root)
    got = {(p.file, p.line, p.code) for p in problems}
    assert {("servers.csv", 2, "bad_type"), ("servers.csv", 3, "bad_power_range"),
            ("vms.csv", 3, "out_of_range"), ("vms.csv", 4, "vm_too_large")} <= got


def test_a_bad_cell_hides_nothing_but_itself(tmp_path):
    """A row with one bad cell skipped every rule across its columns and rows: an inlet offset
    out of range hid the same row's max power below idle, a bad kind hid the VM's size, and a
    server row with a bad cell hid the VMs overcommitting it."""
    servers = [server("A1", "A", offset=45), server("A2", "A", offset=45, max_kw=1.0), server("A3", "A")]
    vms = [vm("v1", server_id="A1"), vm("v2", server_id="A1"), vm("v3", kind="IaaS", gpus=16)]
    _, problems = check_inventory(_room(tmp_path, servers=servers, vms=vms))
    got = {(p.file, p.line, p.column, p.code) for p in problems}
    assert got == {("servers.csv", 2, "inlet_offset_c", "out_of_range"), ("servers.csv", 3, "inlet_offset_c", "out_of_range"),
                   ("servers.csv", 3, "max_power_kw", "bad_power_range"), ("vms.csv", 4, "kind", "out_of_range"),
                   ("vms.csv", 4, "gpus", "vm_too_large"), ("vms.csv", 3, "server_id", "server_overcommitted")}


def test_servers_all_bad_do_not_make_every_vm_too_large(tmp_path):
    """With no server's GPU count readable, every VM was 'too large: the largest server has 0'."""
    servers = [server("A1", "A", gpus="eight"), server("A2", "A", gpus="8.0")]
    _, problems = check_inventory(_room(tmp_path, servers=servers, vms=[vm("v1")]))
    assert _codes(problems) == ["bad_type"]
    [written] = [p for p in problems if p.line == 3]
    assert written.hint.startswith("write 8, without the decimals")


def test_gpu_power_that_does_not_rise_with_load_is_refused(tmp_path):
    """gpu_max_w below gpu_idle_w (servers.csv, or against server_defaults) made a GPU's power
    fall with load, and placement put the hottest VM on it as the coolest server; a falling
    power_poly in datacenter.yaml did the same for the room."""
    servers = [server("A1", "A", gpu_idle_w=500, gpu_max_w=100), server("A2", "A", gpu_max_w=40),
               server("A3", "A", gpu_idle_w=60, gpu_max_w=300)]
    _, problems = check_inventory(_room(tmp_path, servers=servers))
    said = {(p.line, p.column): p.message for p in problems if p.code == "bad_power_range"}
    assert said == {(2, "gpu_max_w"): "gpu_max_w 100 is not above gpu_idle_w 500: a GPU's power would not rise "
                                      "with its load",
                    (3, "gpu_max_w"): "gpu_max_w 40 is not above gpu_idle_w 50 (server_defaults): a GPU's power "
                                      "would not rise with its load"}
    root = _room(tmp_path / "poly", config={"server_defaults": {"power_poly": [0.5, -2.0], "gpu_idle_w": -5}})
    _, problems = check_inventory(root)
    said = sorted(p.message.split(" =")[0] for p in problems)
    assert said == ["'server_defaults.gpu_idle_w'", "'server_defaults.power_poly'"]


def test_ids_with_spaces_around_them_are_the_ids(tmp_path):
    """'A2 ' in servers.csv kept its trailing space (the leading one went): vms.csv's 'A2' was
    'not in servers.csv', and a customer 'c1 ' borrowed nothing from 'c1'."""
    servers = [server("A1", "A"), server("A2 ", "A")]
    vms = [vm("v1", server_id="A2"), vm("v2", customer="c1 ")]
    inv, problems = check_inventory(_room(tmp_path, servers=servers, vms=vms))
    assert problems == [] and list(inv.servers["server_id"]) == ["A1", "A2"]
    assert list(inv.vms["customer"]) == ["c1", "c1"]


def test_tab_separated_files_say_so(tmp_path):
    root = _room(tmp_path)
    (root / "rows.csv").write_text((root / "rows.csv").read_text().replace(",", "\t"))
    _, problems = check_inventory(root)
    [tabs] = [p for p in problems if p.file == "rows.csv"]
    assert (tabs.code, tabs.message) == ("wrong_separator", "the columns are separated by tabs, not ','")


def test_a_start_inside_the_history_is_a_warning(tmp_path):
    """'start' before the telemetry ends: the horizon overlaps its own history, most likely a
    typo; the inventory still loads, with a warning."""
    root = _room(tmp_path)
    text = _without_start((root / "datacenter.yaml").read_text())
    (root / "datacenter.yaml").write_text(text + "start: '2020-01-01'\n")
    inv, problems = check_inventory(root)
    assert problems == [] and [w.code for w in inv.warnings] == ["start_in_history"]


def test_empty_telemetry_warns_and_says_which_week_is_planned_without_start(tmp_path):
    """No history and no 'start': the horizon falls on a fixed Monday; the warning says so."""
    root = _room(tmp_path, telemetry=pd.DataFrame(columns=["timestamp", "vm_id", "load"]))
    (root / "datacenter.yaml").write_text(_without_start((root / "datacenter.yaml").read_text()))
    inv, problems = check_inventory(root)
    [warning] = [w for w in inv.warnings if w.code == "empty_telemetry"]
    assert problems == [] and "2026-01-05 00:00" in warning.message and "'start'" in warning.hint
    (root / "datacenter.yaml").write_text((root / "datacenter.yaml").read_text() + "start: '2026-03-02'\n")
    inv, _ = check_inventory(root)
    [warning] = [w for w in inv.warnings if w.code == "empty_telemetry"]
    assert "2026-01-05" not in warning.message


def test_semicolon_csv_and_latin1_say_what_to_do(tmp_path):
    """A spreadsheet export with ';' is one problem, not a cascade of unknown ids; a Latin-1
    file says to save it as UTF-8."""
    root = _room(tmp_path)
    (root / "rows.csv").write_text((root / "rows.csv").read_text().replace(",", ";"))
    (root / "aisles.csv").write_bytes("aisle_id,airflow_limit_cfm\nXé,10000\n".encode("latin-1"))
    _, problems = check_inventory(root)
    by_file = {p.file: p for p in problems}
    assert by_file["rows.csv"].code == "wrong_separator"
    assert by_file["aisles.csv"].code == "unreadable_file" and "UTF-8" in by_file["aisles.csv"].hint
    assert not [p for p in problems if p.code == "unknown_row"]


def test_trailing_commas_are_not_read_as_shifted_columns(tmp_path):
    """A comma at the end of every line gives pandas one cell more than the header, and it would
    read the first column as an index and shift the others: an unreadable file instead, with
    what to do."""
    root = _room(tmp_path)
    lines = (root / "vms.csv").read_text().splitlines()
    (root / "vms.csv").write_text("\n".join([lines[0]] + [line + "," for line in lines[1:]]) + "\n")
    _, problems = check_inventory(root)
    (problem,) = [p for p in problems if p.file == "vms.csv"]
    assert problem.code == "unreadable_file" and "trailing comma" in problem.message and "quote" in problem.hint


@pytest.mark.parametrize("bad_line, said", [
    ('A3,A,"rack 1,2', 'a quote (") opened on this line is never closed'),
    ("A3,A,K1,extra,cells,here,and,more,than,the,header,has,1,2,3,4,5,6,7,8,9,10,11,12", "cells, the header"),
])
def test_a_malformed_csv_line_is_named_by_its_line_in_plain_words(tmp_path, bad_line, said):
    """pandas' parser error went to the user raw ("Error tokenizing data. C error: EOF inside
    string starting at row 2", counting from 0): now in plain words, at the file's line."""
    root = _room(tmp_path)
    lines = (root / "servers.csv").read_text().splitlines()
    (root / "servers.csv").write_text("\n".join(lines + [bad_line]) + "\n")
    _, problems = check_inventory(root)
    (problem,) = [p for p in problems if p.file == "servers.csv"]
    assert problem.code == "unreadable_file" and said in problem.message and "tokenizing" not in problem.message
    assert problem.line == len(lines) + 1


@pytest.mark.parametrize("stamp, why", [
    ("01/10/2025 10:00", "ISO 8601"),  # day-first or month-first? never guessed
    ("now", "ISO 8601"),  # would be the clock of the run
    ("Sep 21", "ISO 8601"),
    ("3025-10-19 23:00:00", "2000..2099"),  # crashed every command (out of pandas' range)
])
def test_timestamps_are_iso_8601_or_refused(tmp_path, stamp, why):
    tel = hourly_history(["v1"], [0.5], weeks=1).astype({"timestamp": str})
    tel.iloc[3, 0] = stamp
    root = _room(tmp_path, telemetry=tel)
    _, problems = check_inventory(root)
    bad = [p for p in problems if p.code == "bad_timestamp"]
    assert len(bad) == 1 and bad[0].line == 5 and why in bad[0].message


def test_numbers_in_a_parquet_timestamp_column_are_refused(tmp_path):
    """Integer epoch milliseconds in Parquet were read as nanoseconds: a week of 1970."""
    tel = hourly_history(["v1"], [0.5], weeks=1)
    tel = tel.assign(timestamp=tel["timestamp"].astype("int64") // 10**6)
    root = _room(tmp_path)
    (root / "telemetry.csv").unlink()
    tel.to_parquet(root / "telemetry.parquet", index=False)
    _, problems = check_inventory(root)
    bad = [p for p in problems if p.code == "bad_timestamp"]
    assert bad and "is a number" in bad[0].message


def test_start_must_be_iso_8601(tmp_path):
    root = _room(tmp_path)
    text = _without_start((root / "datacenter.yaml").read_text())
    for start in ("now", "3025-01-01"):
        (root / "datacenter.yaml").write_text(text + f"start: '{start}'\n")
        _, problems = check_inventory(root)
        assert [p for p in problems if p.code == "bad_value" and "'start'" in p.message]


def test_an_unknown_vm_in_telemetry_is_one_problem_per_id(tmp_path):
    tel = hourly_history(["v1", "ghost", "other"], [0.5, 0.2, 0.1], weeks=1)
    root = _room(tmp_path, telemetry=tel)
    _, problems = check_inventory(root)
    unknown = sorted((p.message for p in problems if p.code == "unknown_vm"))
    assert len(unknown) == 2 and all("(and 167 more row(s) with it)" in m for m in unknown)


def test_coarse_telemetry_and_an_off_grid_start_are_warned(tmp_path):
    """Hourly samples in a 15-minute room fill one slot in four (the rest read as gaps); a
    start between two slots is moved back to the slot it falls in: both said, not silent."""
    root = _room(tmp_path, config={"time_step_min": 15, "start": "2026-06-01 00:20:00"})
    inv, problems = check_inventory(root)
    assert problems == []
    codes = {w.code: w for w in inv.warnings}
    assert "set time_step_min to 60" in codes["coarse_telemetry"].hint
    assert "2026-06-01 00:15:00" in codes["start_off_grid"].message


def test_outside_temperatures_of_another_period_are_warned(tmp_path):
    tel = hourly_history(["v1"], [0.5], weeks=1)
    far = pd.DataFrame({"timestamp": tel["timestamp"] - pd.Timedelta(days=300), "temp_c": 20.0})
    same, _ = check_inventory(_room(tmp_path / "a", telemetry=tel,
                                    outside=pd.DataFrame({"timestamp": tel["timestamp"], "temp_c": 20.0})))
    inv, problems = check_inventory(_room(tmp_path / "b", telemetry=tel, outside=far))
    assert "outside_elsewhere" not in {w.code for w in same.warnings}
    assert problems == [] and "outside_elsewhere" in {w.code for w in inv.warnings}


def test_a_start_with_a_time_zone_is_taken_in_utc(tmp_path):
    root = _room(tmp_path)
    text = _without_start((root / "datacenter.yaml").read_text())
    (root / "datacenter.yaml").write_text(text + "start: '2030-01-01T02:00:00+02:00'\n")
    inv, problems = check_inventory(root)
    assert problems == [] and inv.config.start == "2030-01-01 00:00:00"


def test_more_problems_than_listed_are_counted(tmp_path):
    """Only the first 20 bad timestamps are listed; the summary line counts all the others."""
    tel = hourly_history(["v1"], [0.5], weeks=1).astype({"timestamp": object})
    tel["timestamp"] = "yesterday"
    root = _room(tmp_path, telemetry=tel)
    _, problems = check_inventory(root)
    bad = [p for p in problems if p.code == "bad_timestamp"]
    assert len(bad) == 21 and bad[-1].message == f"... and {len(tel) - 20} more like the above"


def test_a_vm_whose_telemetry_stopped_weeks_ago_is_a_warning(tmp_path):
    tel = hourly_history(["v1", "v2"], [0.5, 0.5], weeks=4)
    last = tel["timestamp"].max()
    tel = tel[(tel["vm_id"] == "v1") | (tel["timestamp"] < last - pd.Timedelta(days=14))]
    root = _room(tmp_path, vms=[vm("v1", server_id="A1"), vm("v2", server_id="A2")], telemetry=tel)
    inv, problems = check_inventory(root)
    assert problems == [] and [w.code for w in inv.warnings] == ["stale_telemetry"]
    assert "'v2'" in inv.warnings[0].message


def test_a_mistyped_future_timestamp_and_the_vms_it_leaves_behind_are_named(tmp_path):
    """One sample typed months ahead ends the room's history there: the other VMs fall out of
    the four weeks forecasts use (forecast at full load, and said so, not 'repeats old load'),
    and the lone VM is named as the likely typo."""
    tel = hourly_history(["v1", "v2", "v3"], [0.5, 0.5, 0.5], weeks=2)
    typo = pd.DataFrame({"timestamp": [tel["timestamp"].max() + pd.Timedelta(days=90)], "vm_id": ["v3"], "load": [0.5]})
    root = _room(tmp_path, vms=[vm("v1", server_id="A1"), vm("v2", server_id="A2"), vm("v3")],
                 telemetry=pd.concat([tel, typo]))
    inv, problems = check_inventory(root)
    assert problems == []
    said = {w.code: w.message for w in inv.warnings}
    assert "2 VM(s) have no telemetry in the 4 weeks" in said["stale_telemetry"]
    assert "forecast at full load (assumed-peak)" in said["stale_telemetry"]
    assert "only 1 of 3 VMs" in said["telemetry_ends_apart"] and "'v3'" in said["telemetry_ends_apart"]


def test_limits_typed_in_the_wrong_unit_or_below_idle_are_warned(tmp_path):
    """A row limit in W (20000 for 20 kW) passes every range check and never binds; an aisle
    whose idle servers need more air than its limit recirculates whatever is placed: both said."""
    fine, _ = check_inventory(_room(tmp_path / "a"))
    assert not {"limit_in_watts", "limit_below_idle"} & {w.code for w in fine.warnings}
    root = _room(tmp_path / "b", aisles=[{"aisle_id": "X", "airflow_limit_cfm": 900}],
                 rows=[{"row_id": "A", "aisle_id": "X", "power_limit_kw": 20000.0}])
    inv, problems = check_inventory(root)
    assert problems == []
    said = {w.code: w for w in inv.warnings}
    assert (said["limit_in_watts"].file, said["limit_in_watts"].line) == ("rows.csv", 2)
    assert "1538 times what its servers draw at full load (13 kW)" in said["limit_in_watts"].message
    assert said["limit_below_idle"].file == "aisles.csv" and said["limit_below_idle"].column == "airflow_limit_cfm"
    assert "need 1000 CFM idle, over its 900 CFM limit" in said["limit_below_idle"].message


def test_line_numbers_count_blank_lines(tmp_path):
    """pandas skips blank lines, so 'row + 2' pointed one line above a bad value after a blank
    line; the line reported is the one an editor shows."""
    import shutil

    room = tmp_path / "room"
    shutil.copytree(EXAMPLE, room)
    lines = (room / "telemetry.csv").read_text().splitlines()
    lines.insert(3, "")
    cells = lines[20].split(",")
    load_at = lines[0].split(",").index("load")
    cells[load_at] = "1.7"
    lines[20] = ",".join(cells)
    (room / "telemetry.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(InventoryError) as err:
        load_inventory(room)
    bad = [p for p in err.value.problems if p.column == "load"]
    assert [p.line for p in bad] == [21]


def test_loads_in_percent_are_named_as_such(tmp_path):
    _, problems = check_inventory(_room(tmp_path, telemetry=hourly_history(["v1"], [55.0], weeks=1)))
    assert {p.hint for p in problems if p.line} == {"loads are fractions of full load, 0..1: in percent? divide by 100"}
