"""The command line through click's CliRunner: exit codes, messages, files, atomic output."""

import json
import shutil

import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import EXAMPLE, server, vm, write_inventory
from tapas_opt.cli import main


@pytest.fixture(scope="module")
def example_plan(tmp_path_factory):
    out = tmp_path_factory.mktemp("plans") / "plan"
    res = CliRunner().invoke(main, ["place", str(EXAMPLE), "--out", str(out), "--time-limit", "5",
                                    "--forecast-method", "template"])
    assert res.exit_code == 0, res.output
    return out


def run(*args):
    args = [str(a) for a in args]
    if args[0] == "place" and "--forecast-method" not in args:
        args += ["--forecast-method", "template"]  # fast; forecasting has its own tests
    return CliRunner().invoke(main, args)


def test_place_writes_a_complete_plan(example_plan):
    names = {p.name for p in example_plan.iterdir()}
    assert {"plan.csv", "summary.json", "explanations.json", "profiles.parquet"} <= names
    summary = json.loads((example_plan / "summary.json").read_text())
    plan = pd.read_csv(example_plan / "plan.csv")
    assert summary["vms"]["unplaced"] == 0 and summary["status"] in ("optimal", "feasible")
    assert (plan["status"] == "placed").sum() == summary["vms"]["placed"]
    assert {"vm_id", "server_id", "row_id", "aisle_id", "peak_server_power_kw", "peak_gpu_temp_c"} <= set(plan.columns)
    for key in ("objective", "bound", "gap", "solve_time_s", "rows", "aisles", "max_gpu_temp_c", "unplaced"):
        assert key in summary
    explanations = json.loads((example_plan / "explanations.json").read_text())
    assert len(explanations) == summary["vms"]["placed"]
    assert {"binding", "limits", "runner_ups", "reason"} <= set(explanations[0])


def test_place_table_says_what_its_status_and_gap_mean():
    """'feasible' read as 'only just feasible', and the gap as the solver's shortfall: the table
    says every limit is met and that the gap is to a bound (which may be loose)."""
    from tapas_opt.cli.render import place_table

    from rich.console import Console

    base = {"inventory": "room", "policy": "optimal", "vms": {"placed": 2, "unplaced": 0, "running": 0},
            "peak_row_power_fraction": 0.5, "max_gpu_temp_c": 60.0, "gpu_temp_limit_c": 85.0, "aisles": [],
            "objective": 1.7, "solve_time_s": 0.1}
    for status, gap, said in (("feasible", 0.0419, "feasible (every limit met; not proven best)"),
                              ("optimal", 0.0, "optimal (proven best)"), ("partial", None, "partial")):
        console = Console(width=120, record=True)
        console.print(place_table({**base, "status": status, "gap": gap}))
        text = console.export_text()
        assert said in text, text
        assert ("gap 4.19% to a bound no plan beats" in text) == (status == "feasible"), text


def test_verify_accepts_the_plan_the_engine_wrote(example_plan):
    res = run("verify", EXAMPLE, example_plan)
    assert res.exit_code == 0, res.output
    assert "verify ok" in res.output


def test_a_verify_report_prints_its_findings_not_its_arrays(example_plan):
    """print(api.verify(...)) dumped the whole placement instance (every profile array)."""
    from tapas_opt.api import verify

    report = verify(EXAMPLE, example_plan)
    text = repr(report)
    assert report.ok and "violations=[]" in text and "instance" not in text and len(text) < 2000


def test_verify_reports_running_vms_over_the_gpu_limit(example_plan, tmp_path):
    """A limit the running VMs break on their own is reported (pre-existing), and --strict fails
    on it: here the GPU limit is lowered below what a running VM reaches."""
    import yaml

    room = tmp_path / "room"
    shutil.copytree(EXAMPLE, room)
    cfg = yaml.safe_load((room / "datacenter.yaml").read_text())
    cfg["gpu_temp_limit_c"] = 40.0
    (room / "datacenter.yaml").write_text(yaml.safe_dump(cfg))
    res = run("verify", room, example_plan, "--strict", "--json")
    assert res.exit_code == 1, res.output
    pre = json.loads(res.output)["preexisting_violations"]
    assert pre and {v["code"] for v in pre} == {"gpu_temperature_preexisting"}
    assert all(v["value"] > 40.0 for v in pre)


def test_verify_rejects_a_corrupt_summary(example_plan, tmp_path):
    """summary.json says which load band the plan was made for: unreadable, it is bad input
    rather than silently ignored."""
    broken = tmp_path / "plan"
    shutil.copytree(example_plan, broken)
    (broken / "summary.json").write_text("{not json")
    res = run("verify", EXAMPLE, broken)
    assert res.exit_code == 2 and "summary.json" in res.output


def _broken(example_plan, tmp_path, edit):
    broken = tmp_path / "broken"
    shutil.copytree(example_plan, broken)
    plan = pd.read_csv(broken / "plan.csv", dtype=str)
    plan = edit(plan)
    plan.to_csv(broken / "plan.csv", index=False)
    return broken


def test_verify_rejects_a_vm_on_a_full_server(example_plan, tmp_path):
    """Put a placed 8-GPU VM on a server already used by a running VM."""
    def edit(plan):
        placed = plan.index[(plan["status"] == "placed") & (plan["gpus"] == "8")][0]
        plan.loc[placed, "server_id"] = plan.loc[plan["status"] == "running", "server_id"].iloc[0]
        return plan
    broken = _broken(example_plan, tmp_path, edit)
    res = run("verify", EXAMPLE, broken)
    assert res.exit_code == 1 and "gpu_capacity" in res.output
    plan = pd.read_csv(broken / "plan.csv")
    moved = plan.loc[(plan["status"] == "placed") & (plan["server_id"] == plan.loc[plan["status"] == "running",
                                                                                    "server_id"].iloc[0])]
    text = " ".join(res.output.split())  # the message names the GPUs and the VM placed there
    assert "is given 16 GPUs, it has 8 (8 in use by running VMs; placed here: " + moved["vm_id"].iloc[0] in text


def test_verify_rejects_a_moved_running_vm(example_plan, tmp_path):
    def edit(plan):
        free = set(pd.read_csv(EXAMPLE / "servers.csv")["server_id"]) - set(plan["server_id"])
        plan.loc[plan.index[plan["status"] == "running"][0], "server_id"] = sorted(free)[0]
        return plan
    res = run("verify", EXAMPLE, _broken(example_plan, tmp_path, edit))
    assert res.exit_code == 1 and "running_moved" in res.output


def test_verify_rejects_a_row_over_its_power_limit(example_plan, tmp_path):
    """Move every new VM into the emptiest row. The example's rows have headroom, so the copy
    of the inventory gets that row's limit set between its peak under the engine's plan (which
    must still verify) and its peak under the broken plan (which must not)."""
    servers = pd.read_csv(EXAMPLE / "servers.csv")

    def edit(plan):
        used = set(plan["server_id"])
        free_by_row = servers[~servers["server_id"].isin(used)].groupby("row_id")["server_id"].apply(list)
        free = max(free_by_row, key=len)
        for idx, sid in zip(plan.index[plan["status"] == "placed"], free):
            plan.loc[idx, "server_id"] = sid
        return plan

    broken = _broken(example_plan, tmp_path, edit)
    moved = pd.read_csv(broken / "plan.csv").query("status == 'placed'")["server_id"]
    row = servers.set_index("server_id").loc[moved, "row_id"].mode()[0]
    good_peak = next(r["peak_kw"] for r in json.loads(run("place", EXAMPLE, "--out", tmp_path / "p", "--json",
                                                          "--time-limit", "2").output)["rows"] if r["row_id"] == row)
    inventory = tmp_path / "inventory"
    shutil.copytree(EXAMPLE, inventory)
    bad_report = json.loads(run("verify", inventory, broken, "--json").output)
    bad_peak = next(r["peak_fraction"] for r in bad_report["rows"] if r["row_id"] == row)
    rows = pd.read_csv(inventory / "rows.csv")
    limit = rows.loc[rows["row_id"] == row, "power_limit_kw"].iloc[0]
    assert bad_peak * limit > good_peak  # piling raised the row's peak
    rows.loc[rows["row_id"] == row, "power_limit_kw"] = (good_peak + bad_peak * limit) / 2
    rows.to_csv(inventory / "rows.csv", index=False)
    res = run("verify", inventory, broken, "--json")
    report = json.loads(res.output)
    assert res.exit_code == 1 and any(v["code"] == "row_power" and v["subject"] == row for v in report["violations"])
    # For people: one line per row over its limit, at its worst slot, with how many slots.
    over = [v for v in report["violations"] if v["code"] == "row_power" and v["subject"] == row]
    worst = max(over, key=lambda v: v["value"])
    text = run("verify", inventory, broken).output
    lines = [line for line in text.splitlines() if line.startswith("VIOLATION row_power")]
    assert len(lines) == len({v["subject"] for v in report["violations"] if v["code"] == "row_power"})
    assert any(worst["message"] in line and (len(over) == 1 or f"worst of {len(over)} slots" in line) for line in lines)


def test_verify_rejects_unknown_ids_as_bad_input(example_plan, tmp_path):
    def edit(plan):
        plan.loc[plan.index[0], "server_id"] = "NO-SUCH-SERVER"
        return plan
    res = run("verify", EXAMPLE, _broken(example_plan, tmp_path, edit))
    assert res.exit_code == 2 and "unknown_server" in res.output


def test_verify_counts_blank_lines_of_plan_csv(example_plan, tmp_path):
    """verify numbered plan.csv's rows row + 2, one line above the bad cell after a blank line
    (pandas skips them); it names the line an editor shows, as the inventory's checks do."""
    def edit(plan):
        plan.loc[plan.index[5], "server_id"] = "NO-SUCH-SERVER"
        return plan
    broken = _broken(example_plan, tmp_path, edit)
    lines = (broken / "plan.csv").read_text().splitlines()
    (broken / "plan.csv").write_text("\n".join(lines[:3] + ["", ""] + lines[3:]) + "\n")
    res = run("verify", EXAMPLE, broken, "--json")
    assert res.exit_code == 2
    said = json.loads(res.stdout)  # --json on bad input: the problems as JSON (stdout had nothing)
    assert said["ok"] is False and said["exit_code"] == 2
    bad = [p for p in said["problems"] if p["code"] == "unknown_server"]
    assert [p["line"] for p in bad] == [9]  # header, rows 0-1, two blank lines, rows 2-4, then row 5


def test_validate_counts_blank_lines_when_naming_a_configuration(tmp_path):
    """A config_id the catalogue lacks was named at row + 2 of vms.csv, above the line after a
    blank one; validate --json now says the editor's line."""
    room = tmp_path / "room"
    shutil.copytree(EXAMPLE, room)
    lines = (room / "vms.csv").read_text().splitlines()
    lines = [lines[0] + ",config_id"] + [line + ("," + "no-such-config" if i == 4 else ",") for i, line in
                                          enumerate(lines[1:], start=1)]
    (room / "vms.csv").write_text("\n".join(lines[:2] + [""] + lines[2:]) + "\n")
    res = run("validate", room, "--json")
    assert res.exit_code == 2
    bad = [p for p in json.loads(res.stdout)["problems"] if p["code"] == "unknown_config"]
    assert [(p["file"], p["line"]) for p in bad] == [("vms.csv", 6)]  # vm00004, below a blank line


def test_json_output_of_a_failed_run_is_json(tmp_path):
    """--json promised a machine-readable summary on stdout; bad input left stdout empty. Now
    it holds ok false, the exit code and every problem (the text stays on stderr)."""
    room = tmp_path / "room"
    shutil.copytree(EXAMPLE, room)
    (room / "rows.csv").write_text((room / "rows.csv").read_text() + "R99,NOWHERE,-5\n")
    res = run("place", room, "--out", tmp_path / "plan", "--json")
    said = json.loads(res.stdout)
    assert res.exit_code == 2 and said["ok"] is False and said["exit_code"] == 2
    assert {p["code"] for p in said["problems"]} >= {"unknown_aisle"} and not (tmp_path / "plan").exists()
    assert f"problem(s) in the input (files named without a directory are in {room}):" in res.stderr


def test_verify_names_an_empty_vm_id_as_empty(example_plan, tmp_path):
    """A blank vm_id cell was said as "vm_id nan is not in vms.csv"."""
    def edit(plan):
        plan["vm_id"] = plan["vm_id"].astype(object)
        plan.loc[plan.index[0], "vm_id"] = None
        return plan
    res = run("verify", EXAMPLE, _broken(example_plan, tmp_path, edit))
    assert res.exit_code == 2 and "/plan.csv:2 [vm_id]: missing_value: vm_id is empty" in res.output, res.output
    assert "nan" not in res.output


def test_verify_warns_when_plan_csv_lost_vms_its_summary_placed(example_plan, tmp_path):
    """A pending VM missing from plan.csv is checked as unplaced; when the plan's summary does
    not list it as unplaced, plan.csv was cut short or edited, and verify says which VMs."""
    dropped = []

    def edit(plan):
        gone = plan.index[plan["status"] == "placed"][:2]
        dropped.extend(plan.loc[gone, "vm_id"])
        return plan.drop(gone)
    res = run("verify", EXAMPLE, _broken(example_plan, tmp_path, edit), "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert sorted(report["unplaced"]) == sorted(dropped)
    assert len(report["warnings"]) == 1 and "2 pending VM(s) are not in plan.csv" in report["warnings"][0]
    assert all(v in report["warnings"][0] for v in dropped)
    assert json.loads(run("verify", EXAMPLE, example_plan, "--json").stdout)["warnings"] == []


def test_verify_against_another_room_says_so_before_the_unknown_vms(example_plan, tmp_path):
    """Verified against another inventory, a plan's VMs are unknown there: the first problem
    names the inventory the plan was made for, so the list below it reads as the wrong room."""
    other = tmp_path / "other"
    assert run("generate", "--servers", "20", "--seed", "5", "--out", other).exit_code == 0
    res = run("verify", other, example_plan)
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "other_inventory: the plan was made for the inventory" in text
    assert f"verify it against {EXAMPLE.resolve()}" in text
    assert text.index("other_inventory") < text.index("unknown_")


def test_validate_lists_every_problem_and_exits_2(tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(EXAMPLE, bad)
    rows = pd.read_csv(bad / "rows.csv")
    rows.loc[0, "power_limit_kw"] = -1
    rows.loc[1, "aisle_id"] = "NOPE"
    rows.to_csv(bad / "rows.csv", index=False)
    res = run("validate", bad)
    assert res.exit_code == 2
    assert "rows.csv:2 [power_limit_kw]" in res.output and "rows.csv:3 [aisle_id]" in res.output


def test_validate_checks_models_against_the_catalogue(tmp_path):
    """A model or config_id that reconfigure, route and simulate would refuse is refused by
    validate too (it said ok, and reconfigure then exited 2)."""
    bad = tmp_path / "bad"
    shutil.copytree(EXAMPLE, bad)
    vms = pd.read_csv(bad / "vms.csv", dtype=str)
    saas = vms.index[vms["kind"] == "saas"]
    vms["model"] = None
    vms.loc[saas[0], "model"] = "llama-405b"
    vms.to_csv(bad / "vms.csv", index=False)
    res = run("validate", bad)
    assert res.exit_code == 2 and f"vms.csv:{saas[0] + 2} [model]: unknown_model" in res.output
    assert "mixed_models" not in res.output  # the unknown family is one problem, not two


def test_user_text_is_printed_as_it_is(tmp_path):
    """Ids and names reach the terminal literally: no emoji codes (':fire:') and no rich markup
    ('[bold]'), in problems and in the summary table."""
    odd = tmp_path / "odd"
    shutil.copytree(EXAMPLE, odd)
    vms = pd.read_csv(odd / "vms.csv", dtype=str)
    vms.loc[0, "server_id"] = ":fire:"
    vms.to_csv(odd / "vms.csv", index=False)
    res = run("validate", odd)
    assert res.exit_code == 2 and "':fire:'" in res.output and "\U0001f525" not in res.output
    shutil.copy(EXAMPLE / "vms.csv", odd / "vms.csv")
    config = (odd / "datacenter.yaml").read_text()
    (odd / "datacenter.yaml").write_text(config.replace(config.split("name:")[1].split("\n")[0],
                                                        " 'hall :fire: [bold]x[/bold]'"))
    res = run("place", odd, "--out", tmp_path / "plan", "--policy", "greedy")
    assert res.exit_code == 0 and "hall :fire: [bold]x[/bold]" in res.output


def test_a_reader_that_stops_early_keeps_the_exit_code(example_plan):
    """`verify ... | head -1`: once the pipe's reader is gone, output is dropped and the command
    ends with its own exit code (it was an internal error, exit 3, with a BrokenPipeError)."""
    import subprocess
    import sys

    cmd = [sys.executable, "-c", "from tapas_opt.cli import main; main()", "verify", str(EXAMPLE),
           str(example_plan), "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader goes away before anything is written
    err = proc.stderr.read().decode()
    assert proc.wait() == 0 and "internal error" not in err and "BrokenPipe" not in err
    # the same for standard error (`2>&1 >/dev/null | head`): the code and stdout survive
    proc = subprocess.Popen(cmd[:-1], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stderr.close()
    out = proc.stdout.read().decode()
    assert proc.wait() == 0 and "verify ok" in out


@pytest.mark.parametrize("args", [["--seed", "2147483648"], ["--time-limit", "nan"], ["--time-limit", "inf"],
                                  ["--time-limit", "1e308"], ["--power-weight", "nan"]])
def test_solver_options_out_of_the_solvers_range_are_bad_usage(args, tmp_path):
    """A seed past CP-SAT's 32 bits and a non-finite or astronomical budget crashed the
    solver (exit 3); click's FloatRange lets nan and inf through its bounds."""
    res = CliRunner().invoke(main, ["place", str(EXAMPLE), "--out", str(tmp_path / "p"), *args])
    assert res.exit_code == 2 and "Invalid value" in res.output and not (tmp_path / "p").exists()


def test_validate_ok_on_the_example():
    res = run("validate", EXAMPLE)
    assert res.exit_code == 0 and "ok" in res.output


def test_place_on_bad_input_exits_2_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(EXAMPLE, bad)
    (bad / "servers.csv").write_text("server_id\nx\n")
    out = tmp_path / "plan"
    res = run("place", bad, "--out", out)
    assert res.exit_code == 2 and not out.exists()


def test_place_failure_keeps_the_previous_plan(tmp_path, monkeypatch, example_plan):
    """An interrupted write leaves the old plan whole and no temporary directory behind."""
    out = tmp_path / "plan"
    shutil.copytree(example_plan, out)
    before = (out / "plan.csv").read_text()
    import tapas_opt.placement.output as output

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(output, "write_json", boom)
    res = run("place", EXAMPLE, "--out", out, "--time-limit", "2")
    assert res.exit_code != 0
    assert (out / "plan.csv").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["plan"]


def test_out_never_replaces_an_input_or_a_foreign_directory(tmp_path, example_plan):
    """--out equal to the inventory, or a parent of it, would delete the input; a non-empty
    directory tapas-opt did not write would lose its files. Both are refused before any work
    (exit 2) and leave everything as it was; an earlier output (marked) is replaced."""
    inv = tmp_path / "room" / "inv"
    shutil.copytree(EXAMPLE, inv)
    keep = tmp_path / "room" / "notes.txt"
    keep.write_text("mine")
    before = sorted(p.name for p in inv.iterdir())
    for out in (inv, tmp_path / "room", tmp_path):
        res = run("place", inv, "--out", out)
        assert res.exit_code == 2 and "would replace an input" in res.output, res.output
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.txt").write_text("precious")
    res = run("place", inv, "--out", foreign)
    assert res.exit_code == 2 and "not written by tapas-opt" in res.output
    assert (foreign / "data.txt").read_text() == "precious"
    assert sorted(p.name for p in inv.iterdir()) == before and keep.read_text() == "mine"
    assert (example_plan / ".tapas-opt-output").exists()
    again = tmp_path / "again"
    shutil.copytree(example_plan, again)
    assert run("place", inv, "--out", again, "--time-limit", "2").exit_code == 0
    for legacy in ("summary.json", "region.json"):  # outputs of versions before the marker
        old = tmp_path / f"old-{legacy}"
        old.mkdir()
        (old / legacy).write_text("{}")
        (old / "plan.csv").write_text("vm_id,server_id\n")
        assert run("place", inv, "--out", old, "--time-limit", "2").exit_code == 0


def test_out_never_writes_into_an_inventory_or_over_an_input_file(tmp_path, example_plan):
    """An --out directory holding an inventory is refused by every command but generate (a
    region's room, a what-if base); a report's --out is never an input file, and an existing
    file is overwritten only if it is an earlier report."""
    inv = tmp_path / "inv"
    shutil.copytree(EXAMPLE, inv)
    other = tmp_path / "other"
    shutil.copytree(EXAMPLE, other)
    res = run("place", inv, "--out", other)
    assert res.exit_code == 2 and "holds an inventory" in res.output
    spec = tmp_path / "s.yaml"
    spec.write_text("base: inv\nsettings: {forecast_method: template}\n")
    res = run("whatif", spec, "--out", other, "--dask-workers", "0")
    assert res.exit_code == 2 and "holds an inventory" in res.output
    before = (inv / "vms.csv").read_text()
    res = run("report", example_plan, "--inventory", inv, "--out", inv / "vms.csv")
    assert res.exit_code == 2 and (inv / "vms.csv").read_text() == before
    html = tmp_path / "r.html"
    assert run("report", example_plan, "--inventory", inv, "--out", html).exit_code == 0
    assert run("report", example_plan, "--inventory", inv, "--out", html).exit_code == 0
    for _ in range(2):  # generate writes inventories: it may replace its own earlier one
        assert run("generate", "--servers", "4", "--pending", "1", "--out", tmp_path / "gen").exit_code == 0


def test_out_that_cannot_be_written_is_refused_before_any_work(tmp_path, monkeypatch, example_plan):
    """A parent that is a file, the working directory, someone else's directory for a what-if
    sweep, a hand-edited physics.yaml: exit 2 at once with what to do, never a traceback after
    the work (it was exit 3 with FileExistsError or EBUSY, leaving a temporary directory)."""
    afile = tmp_path / "afile"
    afile.write_text("hello")
    res = run("place", EXAMPLE, "--out", afile / "sub", "--policy", "greedy")
    assert res.exit_code == 2 and f"{afile} is a file, not a directory" in res.output
    res = run("report", example_plan, "--inventory", EXAMPLE, "--out", afile / "r.html")
    assert res.exit_code == 2 and "is a file, not a directory" in res.output
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    res = run("place", EXAMPLE, "--out", ".", "--policy", "greedy")
    assert res.exit_code == 2 and "is the working directory" in res.output and list(here.iterdir()) == []
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "results.csv").write_text("my notes\n")
    spec = tmp_path / "s.yaml"
    spec.write_text(f"base: {EXAMPLE}\n")
    res = run("whatif", spec, "--out", foreign, "--dask-workers", "0")
    assert res.exit_code == 2 and "not written by this command" in res.output
    assert (foreign / "results.csv").read_text() == "my notes\n"
    room = tmp_path / "room"
    assert run("generate", "--servers", "4", "--pending", "1", "--sensors", "--out", room, "-q").exit_code == 0
    (room / "physics.yaml").write_text("# hand-edited by ops\n{}\n")
    res = run("fit", room)
    assert res.exit_code == 2 and "not written by this command" in res.output
    assert (room / "physics.yaml").read_text().startswith("# hand-edited")


def test_output_directory_swap_holds_interrupts_and_cleans_up_after_killed_runs(tmp_path, monkeypatch):
    """An interrupt during the swap (old aside, new in) is delivered after it: the path holds the
    new output, never nothing. Temporaries of runs killed outright go with the next run; a
    symbolic link is followed."""
    import os
    import signal

    from tapas_opt import io

    out = tmp_path / "plan"
    with io.atomic_directory(out) as tmp:
        (tmp / "a.txt").write_text("old")
    dead = tmp_path / ".plan.tmp-999999999-x"  # no such process
    dead.mkdir()
    real_replace = os.replace
    calls = []

    def interrupted_replace(src, dst):
        calls.append(dst)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # lands between the two renames
        real_replace(src, dst)

    monkeypatch.setattr(io.os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        with io.atomic_directory(out) as tmp:
            (tmp / "a.txt").write_text("new")
    monkeypatch.setattr(io.os, "replace", real_replace)
    assert len(calls) == 2 and (out / "a.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan"]
    link = tmp_path / "link"
    link.symlink_to(out)
    with io.atomic_directory(link) as tmp:
        (tmp / "a.txt").write_text("via link")
    assert link.is_symlink() and (out / "a.txt").read_text() == "via link"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "plan"]


def test_sigterm_stops_a_run_like_ctrl_c():
    import os
    import signal

    from tapas_opt.entry import interrupt_on_termination

    before = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        interrupt_on_termination()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0.1) if hasattr(signal, "sigtimedwait") else None
    finally:
        signal.signal(signal.SIGTERM, before)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, signal.SIG_DFL)


def test_sigterm_while_the_command_line_loads_exits_130():
    """The script takes SIGTERM over before its imports (about a second): a run stopped then
    exited 143 (killed by the signal), not the documented 130."""
    import subprocess
    import sys

    code = ("import os, signal, sys\n"
            "import tapas_opt.entry as entry\n"
            "real = entry._import_main\n"
            "def stopped_while_importing():\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    return real()\n"
            "entry._import_main = stopped_while_importing\n"
            "sys.argv = ['tapas-opt', '--version']\n"
            "entry.run()\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 130 and "interrupted" in res.stderr, (res.returncode, res.stderr)
    assert "tapas-opt" not in res.stdout  # --version never ran


def test_json_output_is_strict():
    """JSON has no NaN or Infinity: they are written as null, so strict parsers read every file."""
    import numpy as np

    from tapas_opt.io import json_text

    text = json_text({"a": float("inf"), "b": [np.float64("nan"), 1.5], "c": np.array([np.inf, 2.0]),
                      "d": np.float32("-inf"), "e": {"f": (1, float("nan"))}})
    assert json.loads(text) == {"a": None, "b": [None, 1.5], "c": [None, 2.0], "d": None, "e": {"f": [1, None]}}


def test_infeasible_request_exits_1_with_reasons(tmp_path):
    crowded = tmp_path / "crowded"
    shutil.copytree(EXAMPLE, crowded)
    vms = pd.read_csv(crowded / "vms.csv")
    extra = pd.DataFrame({"vm_id": [f"big{i}" for i in range(200)], "kind": "iaas", "customer": "cx",
                          "endpoint": None, "gpus": 8, "server_id": None})
    pd.concat([vms, extra]).to_csv(crowded / "vms.csv", index=False)
    res = run("place", crowded, "--out", tmp_path / "plan", "--policy", "greedy", "--json")
    assert res.exit_code == 1
    summary = json.loads(res.output)
    assert summary["vms"]["unplaced"] > 0
    assert {u["code"] for u in summary["unplaced"]} <= {"no_gpu_capacity", "row_power", "aisle_airflow",
                                                        "gpu_temperature", "combined_limits"}


def test_a_room_with_no_busy_gpu_reads_in_every_command(tmp_path):
    """Nothing running and the only request does not fit: no GPU temperature exists (null in
    the summary); place, verify and report say so instead of failing."""
    servers = [server(f"R{r}S{i}", f"R{r}") for r in range(2) for i in range(3)]
    rows = [{"row_id": f"R{r}", "aisle_id": "A0", "power_limit_kw": 7.0} for r in range(2)]
    room = write_inventory(tmp_path / "room", servers=servers, rows=rows, vms=[vm("new0", gpus=2)],
                           aisles=[{"aisle_id": "A0", "airflow_limit_cfm": 10_000}],
                           telemetry=pd.DataFrame({"timestamp": [], "vm_id": [], "load": []}))
    res = run("place", room, "--out", tmp_path / "plan")
    assert res.exit_code == 1 and "none (no busy GPU)" in res.output and "row_power" in res.output
    assert json.loads((tmp_path / "plan" / "summary.json").read_text())["max_gpu_temp_c"] is None
    res = run("verify", room, tmp_path / "plan")
    assert res.exit_code == 0 and "1 unplaced" in res.output
    res = run("report", tmp_path / "plan", "--out", tmp_path / "r.html")
    assert res.exit_code == 0 and "none (no busy GPU)" in res.output
    res = run("reconfigure", room, "--event", "ups-failure", "--out", tmp_path / "ups", "--forecast-method", "template")
    # 75 % of 7 kW is below the rows' 6 kW of idle servers: infeasible, said without a NaN
    assert res.exit_code == 1 and "none (no busy GPU)" in res.output and "nan" not in res.output, res.output
    saas = json.loads((tmp_path / "ups" / "summary.json").read_text())["saas"]
    assert saas["served_pct"] == 100.0 and saas["perf_change_pct"] == 0.0


def test_generate_needs_a_step_that_divides_a_day(tmp_path):
    res = run("generate", "--servers", "4", "--step-min", "7", "--out", tmp_path / "g")
    assert res.exit_code == 2 and "does not divide a day" in res.output and not (tmp_path / "g").exists()


@pytest.mark.parametrize("step", [15, 60])
def test_generated_outside_temperature_covers_every_slot_of_the_horizon(tmp_path, step):
    """At 15 minutes the outside series ended at the horizon's last hour: 23:15-23:45 of the
    last day had no value (the planner filled them from the past two weeks)."""
    from tapas_opt.forecast.profiles import inventory_horizon
    from tapas_opt.inventory.load import load_inventory

    assert run("generate", "--servers", 4, "--seed", 3, "--step-min", step, "--out", tmp_path / "g").exit_code == 0
    inv = load_inventory(tmp_path / "g")
    horizon = inventory_horizon(inv)
    outside = pd.to_datetime(inv.outside["timestamp"])
    assert set(horizon) <= set(outside) and outside.max() == horizon[-1]


def test_json_and_quiet_modes(tmp_path):
    res = run("place", EXAMPLE, "--out", tmp_path / "p", "--policy", "first-fit", "--json")
    assert json.loads(res.output)["policy"] == "first-fit"
    res = run("place", EXAMPLE, "--out", tmp_path / "q", "--policy", "first-fit", "--quiet")
    assert res.output == ""


def test_generate_is_deterministic(tmp_path):
    for name in ("a", "b"):
        assert run("generate", "--servers", 40, "--pending", 5, "--seed", 3, "--out", tmp_path / name).exit_code == 0
    for f in ("servers.csv", "vms.csv", "telemetry.csv", "rows.csv"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_generate_says_what_it_wrote_and_a_queue_the_room_cannot_take(tmp_path):
    """--pending counts VMs whatever the room's size: 400 VMs (about 2,700 GPUs) for 8 servers
    (64 GPUs) was written silently, and every later command found most of them unplaced."""
    res = run("generate", "--servers", 8, "--seed", 1, "--out", tmp_path / "small")
    text = " ".join(res.output.split())
    assert res.exit_code == 0 and "8 servers (64 GPUs)" in text
    assert "warning: the pending VMs need" in text and "lower --pending" in text
    res = run("generate", "--servers", 40, "--pending", 5, "--seed", 3, "--out", tmp_path / "fits")
    assert res.exit_code == 0 and "40 servers (320 GPUs)" in res.output and "warning" not in res.output


def test_generate_writes_an_empty_room(tmp_path):
    """No running and no pending VM is a room too (it crashed with KeyError 'endpoint')."""
    res = run("generate", "--servers", "2", "--occupancy", "0", "--pending", "0", "--out", tmp_path / "g")
    assert res.exit_code == 0, res.output
    assert run("validate", tmp_path / "g").exit_code == 0


@pytest.mark.parametrize("command", [["generate", "--servers", "4", "--seed", "1"],
                                     ["place", str(EXAMPLE), "--forecast-method", "template", "--time-limit", "1"]])
def test_an_output_path_too_long_for_the_file_system_is_bad_input(tmp_path, command):
    """A 300-character --out name escaped the error handler: a traceback and exit 1, the code
    of an infeasible request. It is exit 2 naming the path."""
    out = tmp_path / ("x" * 300)
    res = CliRunner().invoke(main, [*command, "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert "File name too long" in res.output and "Traceback" not in res.output


def test_an_error_of_the_code_itself_is_exit_3_with_its_traceback(monkeypatch, tmp_path):
    """An OSError that no path of the user explains (no file name) is a bug, reported as one."""
    from tapas_opt.inventory import load

    def broken(*args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(load, "check_inventory", broken)
    res = CliRunner().invoke(main, ["validate", str(EXAMPLE)])
    assert res.exit_code == 3 and "internal error" in res.output and "Input/output error" in res.output, res.output


def test_generate_says_how_much_of_an_oversized_queue_stays_unplaced():
    """'most will stay unplaced' was said when 13 of 41 VMs stayed: the GPUs short are said."""
    from tapas_opt.cli.generate_cmd import _queue_warnings

    assert _queue_warnings(total=100, running=60, pending=30) == []
    [said] = _queue_warnings(total=100, running=60, pending=56)
    assert "only 40 are free: VMs with at least 16 GPUs between them will stay unplaced" in said


def test_generate_says_when_the_room_cannot_take_the_occupancy_asked(tmp_path):
    """Two servers in two rows at --occupancy 0.85 generated a room a quarter full or empty (an
    8-GPU VM would fill a row beyond the 85 % history keeps), silently, with gaps in the vm_ids."""
    from tapas_opt.cli.generate_cmd import _occupancy_warnings

    res = CliRunner().invoke(main, ["generate", "--servers", "2", "--occupancy", "0.85", "--pending", "2",
                                    "--out", str(tmp_path / "g")])
    assert res.exit_code == 0, res.output
    assert "of the 16 GPUs" in res.output and "not the 85 % --occupancy asked" in res.output
    assert _occupancy_warnings(total=320, running=163, occupancy=0.5) == []  # a few GPUs either way
