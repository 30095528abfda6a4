"""tapas-opt report: the numbers it shows, its self-containment, its figures and its CLI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import EXAMPLE
from tapas_opt.cli import main
from tapas_opt.report import compare_placements, load_plan_view, render_report
from tapas_opt.report.layout import build_layout, natural_key
from tapas_opt.report.scales import OVER_LIMIT, TEMP_PALETTE, temperature_scale


@pytest.fixture(scope="module")
def plans(tmp_path_factory) -> dict[str, Path]:
    """The example room planned by the optimiser and by the first-fit baseline."""
    root = tmp_path_factory.mktemp("report")
    out = {}
    for policy in ("optimal", "first-fit"):
        out[policy] = root / policy
        res = CliRunner().invoke(main, ["place", str(EXAMPLE), "--out", str(out[policy]), "--policy", policy,
                                        "--time-limit", "5", "--forecast-method", "template", "--quiet"])
        assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def views(plans):
    from tapas_opt.inventory.load import load_inventory

    inv = load_inventory(EXAMPLE)
    return load_plan_view(plans["optimal"], inv, "optimal"), load_plan_view(plans["first-fit"], inv, "first-fit")


def report(*args):
    return CliRunner().invoke(main, ["report", *[str(a) for a in args]])


def test_view_numbers_agree_with_the_plans_summary(plans, views):
    """The report recomputes the physics; its peaks equal those place wrote to summary.json."""
    view, _ = views
    summary = json.loads((plans["optimal"] / "summary.json").read_text())
    assert view.peak_row_power_fraction == pytest.approx(summary["peak_row_power_fraction"], abs=1e-4)
    assert view.max_gpu_temp_c == pytest.approx(summary["max_gpu_temp_c"], abs=0.01)
    for row in summary["rows"]:
        assert view.rows.loc[row["row_id"], "peak_kw"] == pytest.approx(row["peak_kw"], abs=0.01)
    for aisle in summary["aisles"]:
        assert view.aisles.loc[aisle["aisle_id"], "peak_cfm"] == pytest.approx(aisle["peak_cfm"], abs=0.1)
    assert view.n_placed == summary["vms"]["placed"] and view.n_running == summary["vms"]["running"]
    assert view.ok and not view.unplaced


def test_view_servers_match_plan_csv(plans, views):
    """Every VM of plan.csv is on the server the view draws it on; temperatures per server are
    the hottest of its VMs."""
    view, _ = views
    plan = pd.read_csv(plans["optimal"] / "plan.csv")
    srv = view.servers
    for r in plan.itertuples():
        assert r.vm_id in srv.loc[r.server_id, "vms"].split(",")
        if r.status == "placed":
            assert r.vm_id in srv.loc[r.server_id, "placed_vms"].split(",")
    hottest = plan.groupby("server_id")["peak_gpu_temp_c"].max()
    assert np.allclose(srv.loc[hottest.index, "peak_gpu_temp_c"], hottest, atol=0.01)
    assert srv["peak_gpu_temp_c"].isna().sum() == (srv["vms"] == "").sum()
    assert (srv["used_gpus"] <= srv["gpus"]).all()


def test_html_is_self_contained_and_has_every_section(views):
    """No script, no external URL; floor maps, one chart per row and aisle, the summary."""
    view, _ = views
    html = render_report(view)
    assert "<script" not in html.lower()
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls  # an XML namespace name, never fetched
    assert not re.search(r"""\b(src|href)\s*=\s*["'](?!#)""", html), "only in-page links are allowed"
    assert "Content-Security-Policy" in html
    for section in ("summary", "floor-temp", "floor-power", "row-power", "aisle-airflow", "unplaced", "violations"):
        assert f'<section id="{section}">' in html
    assert 'id="floor-map-temp"' in html and 'id="floor-map-power"' in html
    assert html.count('class="chart"') == len(view.rows) + len(view.aisles)
    assert html.count('class="server"') == 2 * len(view.servers)
    assert html.count('class="placed"') >= 2 * view.servers["n_placed"].gt(0).sum()
    assert f"{100 * view.peak_row_power_fraction:.1f} %" in html


def test_baseline_is_shown_side_by_side(views):
    """With a baseline: both floor maps, a comparison table and the VMs placed differently."""
    view, base = views
    html = render_report(view, base)
    assert 'id="floor-map-temp-baseline"' in html and 'id="floor-map-power-baseline"' in html
    assert '<section id="differences">' in html
    assert html.count('class="baseline-line"') == len(view.rows) + len(view.aisles)
    diff = compare_placements(view, base)
    a = dict(zip(view.placed["vm_id"], view.placed["server_id"]))
    b = dict(zip(base.placed["vm_id"], base.placed["server_id"]))
    moved = {v for v in a.keys() | b.keys() if a.get(v) != b.get(v)}
    assert set(diff["vm_id"]) == moved
    for vm in diff["vm_id"]:
        assert vm in html


def test_unplaced_vms_are_listed_with_their_reasons(tmp_path):
    """A request the room cannot take: the unplaced VM and its code appear in the report."""
    from conftest import hourly_history, server, vm, write_inventory

    inv = write_inventory(
        tmp_path / "inv",
        aisles=[{"aisle_id": "A", "airflow_limit_cfm": 10000}],
        rows=[{"row_id": "R1", "aisle_id": "A", "power_limit_kw": 20.0},
              {"row_id": "R2", "aisle_id": "A", "power_limit_kw": 20.0}],
        servers=[server("S1", "R1", rack="K1"), server("S2", "R2", rack="K2")],
        vms=[vm("run1", server_id="S1"), vm("new1"), vm("new2")],
        telemetry=hourly_history(["run1"], [1.0]))
    plan = tmp_path / "plan"
    res = CliRunner().invoke(main, ["place", str(inv), "--out", str(plan), "--forecast-method", "template", "-q"])
    assert res.exit_code == 1, res.output
    summary = json.loads((plan / "summary.json").read_text())
    assert summary["unplaced"]
    out = tmp_path / "r.html"
    res = report(plan, "--inventory", inv, "--out", out)
    assert res.exit_code == 0, res.output
    html = out.read_text()
    for u in summary["unplaced"]:
        assert u["vm_id"] in html and u["code"] in html
    assert "1 unplaced" in res.output


def test_a_plan_from_another_tool_is_reported(plans, tmp_path):
    """Only plan.csv (vm_id, server_id) is needed; VMs it leaves out are listed as not in the plan."""
    src = pd.read_csv(plans["optimal"] / "plan.csv")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    placed = src[src["status"] == "placed"]
    keep = pd.concat([src[src["status"] == "running"], placed.iloc[1:]])
    keep[["vm_id", "server_id"]].to_csv(foreign / "plan.csv", index=False)
    out = tmp_path / "foreign.html"
    res = report(foreign, "-i", EXAMPLE, "--out", out)
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert placed.iloc[0]["vm_id"] in html and "not_in_plan" in html


def test_cli_writes_html_and_pngs(plans, tmp_path):
    """--png-dir writes every figure as a real PNG; --json reports the paths and the headline."""
    out, png = tmp_path / "r.html", tmp_path / "png"
    res = report(plans["optimal"], "-i", EXAMPLE, "--baseline", plans["first-fit"], "--out", out,
                 "--png-dir", png, "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["report"] == str(out) and out.exists()
    names = {Path(p).name for p in data["png"]}
    assert names == {"floor_map_temp.png", "floor_map_power.png", "floor_map_temp_baseline.png",
                     "floor_map_power_baseline.png", "row_power.png", "aisle_airflow.png"}
    for p in data["png"]:
        assert Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert data["plan"]["label"] == "optimal" and data["baseline"]["label"] == "first-fit"
    assert data["baseline"]["peak_row_power_fraction"] >= data["plan"]["peak_row_power_fraction"] - 1e-9


def test_cli_reads_the_inventory_the_plan_records(plans, tmp_path):
    """place records the inventory in summary.json, so --inventory may be left out."""
    res = report(plans["optimal"], "--out", tmp_path / "r.html")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r.html").exists()


def test_cli_needs_the_inventory(plans, tmp_path):
    """Without --inventory (and none recorded in the plan) the command says what to pass: exit 2."""
    plan = tmp_path / "plan"
    shutil.copytree(plans["optimal"], plan)
    summary = json.loads((plan / "summary.json").read_text())
    summary.pop("inventory_dir", None)
    (plan / "summary.json").write_text(json.dumps(summary))
    res = report(plan, "--out", tmp_path / "r.html")
    assert res.exit_code == 2
    assert "--inventory" in res.output
    assert not (tmp_path / "r.html").exists()


def test_cli_rejects_a_malformed_plan(tmp_path):
    """A plan directory without plan.csv is malformed input: exit 2, nothing written."""
    empty = tmp_path / "empty"
    empty.mkdir()
    res = report(empty, "-i", EXAMPLE, "--out", tmp_path / "r.html")
    assert res.exit_code == 2
    assert "plan.csv" in res.output
    assert not (tmp_path / "r.html").exists()


def test_layout_places_every_server_once_without_overlap(views):
    """Each server gets one rectangle inside its rack; racks of a row in natural name order."""
    view, _ = views
    lay = build_layout(view.servers, view.rows)
    assert set(lay.servers.index) == set(view.servers.index)
    s = lay.servers
    for i, a in enumerate(s.itertuples()):
        others = s.iloc[i + 1:]
        overlap = (others.x < a.x + a.w - 1e-9) & (a.x < others.x + others.w - 1e-9) & \
                  (others.y < a.y + a.h - 1e-9) & (a.y < others.y + others.h - 1e-9)
        assert not overlap.any(), a.Index
    for row, racks in lay.racks.groupby("row_id"):
        ordered = racks.sort_values("x")["rack"].tolist()
        assert ordered == sorted(ordered, key=natural_key)
    assert natural_key("R2") < natural_key("R10")


def test_temperature_scale_ends_at_the_limit():
    """Cool end is the palette's first colour; above the limit is the over-limit colour."""
    scale = temperature_scale([52.0, 70.0], 85.0)
    assert scale.vmin == 50.0 and scale.vmax == 85.0
    assert scale.colour(50.0) == TEMP_PALETTE[0] and scale.colour(85.0) == TEMP_PALETTE[-1]
    assert scale.colour(85.5) == OVER_LIMIT
    assert scale.colour(float("nan")) != scale.colour(60.0)


def test_a_nightly_plan_is_drawn_after_its_moves(plans, tmp_path):
    """With moves.csv (tapas-opt plan), running VMs are drawn on their new servers: no
    'running_moved' violation, the destination is marked, the Moves section lists the move."""
    src = plans["optimal"]
    nightly = tmp_path / "nightly"
    nightly.mkdir()
    for name in ("summary.json", "profiles.parquet"):
        (nightly / name).write_bytes((src / name).read_bytes())
    plan = pd.read_csv(src / "plan.csv")
    servers = pd.read_csv(EXAMPLE / "servers.csv")
    empty = sorted(set(servers["server_id"]) - set(plan["server_id"]))[0]
    vm = plan[(plan["status"] == "running") & (plan["kind"] == "saas") & (plan["gpus"] == 8)].iloc[0]
    plan.loc[plan["vm_id"] == vm.vm_id, ["server_id", "status"]] = [empty, "moved"]  # as tapas-opt plan writes
    plan.to_csv(nightly / "plan.csv", index=False)
    pd.DataFrame([{"step": 1, "vm_id": vm.vm_id, "from_server": vm.server_id, "to_server": empty}]).to_csv(
        nightly / "moves.csv", index=False)

    from tapas_opt.inventory.load import load_inventory

    view = load_plan_view(nightly, load_inventory(EXAMPLE))
    assert view.ok, view.violations
    assert view.servers.loc[empty, "moved_in"] == vm.vm_id
    assert vm.vm_id in view.servers.loc[empty, "vms"].split(",")
    assert vm.vm_id not in view.servers.loc[vm.server_id, "vms"].split(",")
    html = render_report(view)
    assert '<section id="moves">' in html and 'class="moved"' in html


def test_moves_of_unknown_vms_are_malformed_input(plans, tmp_path):
    """A moves.csv naming a VM that is not running is reported with file, line and column: exit 2."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "plan.csv").write_bytes((plans["optimal"] / "plan.csv").read_bytes())
    (bad / "moves.csv").write_text("vm_id,from_server,to_server\nnope,R01-K01-S1,R01-K01-S2\n")
    res = report(bad, "-i", EXAMPLE, "--out", tmp_path / "r.html")
    assert res.exit_code == 2
    text = " ".join(res.output.split())  # rich wraps long lines
    assert "moves.csv:2 [vm_id]: unknown_vm" in text


def test_emergencies_from_reconfigure_are_tabled(plans, tmp_path):
    """--emergency DIR (a reconfigure output) adds a line to the Emergencies table and a row chart."""
    emerg = tmp_path / "ups"
    res = CliRunner().invoke(main, ["reconfigure", str(EXAMPLE), "--event", "ups-failure", "--out", str(emerg),
                                    "--forecast-method", "template", "--quiet"])
    assert res.exit_code in (0, 1), res.output  # 1: a limit still exceeded; the report shows it either way
    summary = json.loads((emerg / "summary.json").read_text())
    out = tmp_path / "r.html"
    res = report(plans["optimal"], "-i", EXAMPLE, "--emergency", emerg, "--out", out)
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert '<section id="emergencies">' in html and 'class="emergency-chart"' in html
    assert summary["events"][0]["description"] in html
    assert f"{100 * summary['limits']['peak_row_power_ratio']['if_unchanged']:.1f} %" in html
    assert f"<td>{summary['policy']}</td>" in html  # two policies' plans of one event are told apart
    assert "a plan for room" not in res.output
    other = tmp_path / "other"
    other.mkdir()
    (other / "summary.json").write_text(json.dumps({**summary, "name": "another-room"}))
    res = report(plans["optimal"], "-i", EXAMPLE, "--emergency", other, "--out", out, "--json")
    said = json.loads(res.stdout)["warnings"]
    assert res.exit_code == 0 and any("a plan for room 'another-room', not 'example-room'" in w for w in said)


def test_an_emergency_dir_without_summary_is_malformed(plans, tmp_path):
    """A directory that is not a reconfigure output: exit 2, nothing written."""
    res = report(plans["optimal"], "-i", EXAMPLE, "--emergency", plans["optimal"], "--out", tmp_path / "r.html")
    assert res.exit_code == 2 and "reconfigure" in res.output
    assert not (tmp_path / "r.html").exists()


def test_a_large_room_wraps_into_columns_without_overlap():
    """26 rows in 13 aisles (a 1,040-server room) wrap into columns no wider than MAX_W."""
    from tapas_opt.report.layout import MAX_W

    rows = pd.DataFrame({"aisle_id": [f"A{(i // 2) + 1:02d}" for i in range(26)]},
                        index=pd.Index([f"R{i + 1:02d}" for i in range(26)], name="row_id"))
    servers = pd.DataFrame([{"server_id": f"R{r + 1:02d}-K{k + 1:02d}-S{s + 1}", "row_id": f"R{r + 1:02d}",
                             "rack": f"R{r + 1:02d}-K{k + 1:02d}"}
                            for r in range(26) for k in range(10) for s in range(4)]).set_index("server_id")
    lay = build_layout(servers, rows)
    assert len(lay.servers) == len(servers) and lay.width <= MAX_W
    assert lay.aisles["x"].nunique() > 1 and lay.height < 1500
    s = lay.servers[["x", "y", "w", "h"]].to_numpy()
    x0, y0, x1, y1 = s[:, 0], s[:, 1], s[:, 0] + s[:, 2], s[:, 1] + s[:, 3]
    overlap = (x0[:, None] < x1[None, :] - 1e-9) & (x0[None, :] < x1[:, None] - 1e-9) & \
              (y0[:, None] < y1[None, :] - 1e-9) & (y0[None, :] < y1[:, None] - 1e-9)
    np.fill_diagonal(overlap, False)
    assert not overlap.any()
    for a in lay.aisles.itertuples():  # each row band lies in its aisle's column
        members = rows.index[rows["aisle_id"] == a.aisle_id]
        assert (lay.rows.loc[members, "x"] == a.x).all()


def test_a_plan_that_breaks_a_limit_says_so(tmp_path):
    """A hand-made plan that overloads a row: red verdict, the violation listed, the stretch
    above the limit drawn in red; the command still writes the report (exit 0)."""
    from conftest import hourly_history, server, vm, write_inventory

    inv = write_inventory(
        tmp_path / "inv",
        aisles=[{"aisle_id": "A", "airflow_limit_cfm": 10000}],
        rows=[{"row_id": "R1", "aisle_id": "A", "power_limit_kw": 20.0},
              {"row_id": "R2", "aisle_id": "A", "power_limit_kw": 5.0}],
        servers=[server("S1", "R1", rack="K1"), server("S2", "R2", rack="K2")],
        vms=[vm("run1", server_id="S1"), vm("new1")],
        telemetry=hourly_history(["run1"], [1.0]))
    plan = tmp_path / "plan"
    plan.mkdir()
    pd.DataFrame({"vm_id": ["run1", "new1"], "server_id": ["S1", "S2"]}).to_csv(plan / "plan.csv", index=False)
    out = tmp_path / "r.html"
    res = report(plan, "-i", inv, "--out", out)
    assert res.exit_code == 0, res.output
    assert "limit(s) broken" in res.output and "row R2" in res.output
    html = out.read_text()
    assert 'class="verdict bad"' in html and 'class="over-line"' in html
    assert "row_power" in html and 'class="row-label over"' in html


def test_a_simulation_run_is_drawn_per_row_and_policy(plans, tmp_path):
    """--simulation DIR (a simulate run): the policies' table and one chart per row plus the room's GPU."""
    sim = tmp_path / "sim"
    res = CliRunner().invoke(main, ["simulate", str(EXAMPLE), "--policy", "baseline", "--policy", "full",
                                    "--step", "60", "--fast-placement", "--router", "fast", "--no-plots",
                                    "--out", str(sim), "--quiet"])
    assert res.exit_code in (0, 1), res.output
    table = pd.read_csv(sim / "comparison.csv")
    out = tmp_path / "r.html"
    res = report(plans["optimal"], "-i", EXAMPLE, "--simulation", sim, "--out", out)
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert '<section id="simulations">' in html and 'class="simulation"' in html
    n_rows = len(pd.read_csv(EXAMPLE / "rows.csv"))
    assert html.count('class="chart sim-chart"') == n_rows + 1
    for p, peak in zip(table["policy"], table["peak_row_power"]):
        assert f"<td>{p}</td>" in html and f"{100 * peak:.1f} %" in html
    assert "a run of room" not in res.output
    # another room's run was accepted silently, as --emergency's once was
    summary = json.loads((sim / "summary.json").read_text())
    summary["scenario"]["name"] = "another-room"
    (sim / "summary.json").write_text(json.dumps(summary))
    res = report(plans["optimal"], "-i", EXAMPLE, "--simulation", sim, "--out", out, "--json")
    said = json.loads(res.stdout)["warnings"]
    assert res.exit_code == 0 and any("a run of room 'another-room', not 'example-room'" in w for w in said)


def test_a_simulation_study_is_drawn_over_its_sweep(plans, tmp_path):
    """A study directory (oversubscription.csv in the simulator's columns): one line per policy
    over the sweep, for capping, throttling and peak power."""
    study = tmp_path / "study"
    study.mkdir()
    rows = [{"extra_servers_pct": x, "policy": p, "peak_row_power": 0.7 + x / 100 + (0.1 if p == "baseline" else 0),
             "max_gpu_temp_c": 70.0, "power_capped_row_time_pct": (x / 2 if p == "baseline" else 0.0),
             "thermal_throttled_gpu_time_pct": 0.0, "vms_unplaced": 0}
            for x in (0.0, 20.0, 40.0) for p in ("baseline", "full")]
    pd.DataFrame(rows).to_csv(study / "oversubscription.csv", index=False)
    (study / "summary.json").write_text(json.dumps({"study": "oversubscription", "points": [], "table": rows}))
    out = tmp_path / "r.html"
    res = report(plans["optimal"], "-i", EXAMPLE, "--simulation", study, "--out", out)
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert html.count('class="chart sweep-chart"') == 3
    assert "baseline at 40: 20 %" in html  # the capping point of the baseline at +40 % servers


def test_a_simulation_dir_that_is_not_one_is_malformed(plans, tmp_path):
    """A plan directory passed as --simulation: exit 2, nothing written."""
    res = report(plans["optimal"], "-i", EXAMPLE, "--simulation", plans["optimal"], "--out", tmp_path / "r.html")
    assert res.exit_code == 2 and "simulate" in res.output
    assert not (tmp_path / "r.html").exists()


def test_a_whatif_sweep_is_drawn_over_its_swept_parameter(plans, tmp_path):
    """--whatif DIR (results.csv and deployable.csv in tapas-opt whatif's columns): one line per
    scenario over the swept parameter for each metric, and the deployable-servers table."""
    wi = tmp_path / "wi"
    wi.mkdir()
    rows = [{"scenario_id": f"{n}__add_servers.per_row={k}", "name": n, "evaluator": "predicted",
             "param.add_servers.per_row": k, "servers_added": 4 * k, "peak_row_power_fraction": 0.9 + k / 100,
             "max_gpu_temp_c": 75.0 + k / 10, "power_capped_row_time_pct": (2.0 * k if n == "hot" else 0.0),
             "thermal_throttled_gpu_time_pct": 0.0, "vms_unplaced": 0}
            for n in ("normal", "hot") for k in (0, 8, 16)]
    pd.DataFrame(rows).to_csv(wi / "results.csv", index=False)
    pd.DataFrame([{"group": "hot", "budget_pct": 5.0, "max_servers_per_row": 0.0,
                   "metric": "power_capped_row_time_pct"}]).to_csv(wi / "deployable.csv", index=False)
    out = tmp_path / "r.html"
    res = report(plans["optimal"], "-i", EXAMPLE, "--whatif", wi, "--out", out)
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert '<section id="whatif">' in html
    assert html.count('class="chart sweep-chart"') == 4
    assert "hot at 16: 32 %" in html  # the capping point of the hot scenario at 16 servers per row
    assert "most servers added per row" in html
    res = report(plans["optimal"], "-i", EXAMPLE, "--whatif", plans["optimal"], "--out", tmp_path / "x.html")
    assert res.exit_code == 2 and "whatif" in res.output


def test_progress_helpers_are_silent_off_a_terminal(capsys):
    """progress_steps / progress_bar print nothing when stderr is not a terminal or when disabled
    (--quiet, --json), and still run every step and item."""
    from tapas_opt.cli.render import progress_bar, progress_steps

    done = []
    with progress_steps(["a", "b"]) as step:
        for name in ("a", "b"):
            step()
            done.append(name)
    assert done == ["a", "b"]
    assert list(progress_bar(range(5), total=5, description="x")) == list(range(5))
    assert list(progress_bar(iter("ab"), enabled=False)) == ["a", "b"]
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def _flat(text: str) -> str:
    """Text without whitespace: rich wraps long lines anywhere, even inside a path."""
    return "".join(text.split())


def _plan_copy(plans, tmp_path, **summary_changes) -> Path:
    """The optimal plan copied, with summary.json keys replaced (``summary=...``: the whole file)."""
    pm = tmp_path / "pm"
    shutil.copytree(plans["optimal"], pm)
    summary = json.loads((pm / "summary.json").read_text())
    summary = summary_changes.pop("summary", {**summary, **summary_changes})
    (pm / "summary.json").write_text(json.dumps(summary))
    return pm


@pytest.mark.parametrize("change, where", [
    ({"summary": []}, "summary.json: bad_value: the file holds a list"),
    ({"unplaced": 3}, "summary.json [unplaced]: bad_value"),
    ({"vms": "x"}, "summary.json [vms]: bad_value"),
    ({"quantile": "p75"}, "summary.json [quantile]: bad_value"),
])
def test_report_refuses_a_plan_summary_of_the_wrong_shape_as_verify_does(plans, tmp_path, change, where):
    """An edited summary.json (a list, `unplaced: 3`, `vms: "x"`) crashed report with exit 3,
    and `quantile: p75` was ignored by report although verify refused it: now both exit 2
    naming the file and the key."""
    pm = _plan_copy(plans, tmp_path, **change)
    res = report(pm, "-i", EXAMPLE, "--out", tmp_path / "r.html")
    assert res.exit_code == 2 and _flat(where) in _flat(res.output), res.output
    assert not (tmp_path / "r.html").exists()
    res = CliRunner().invoke(main, ["verify", str(EXAMPLE), str(pm)])
    assert res.exit_code == 2 and _flat(where) in _flat(res.output), res.output
    if change == {"summary": []}:  # without --inventory, the recorded inventory is looked up: the same problem
        assert report(pm, "--out", tmp_path / "r.html").exit_code == 2


def _emergency(tmp_path, **changes) -> Path:
    d = tmp_path / "ups"
    d.mkdir(exist_ok=True)
    summary = {"events": [{"event": "ups-failure", "description": "UPS failure"}], "status": "ok",
               "saas": {"served_pct": 100.0}, "iaas": {"vms": 2, "capped_vms": 0},
               "limits": {"rows": [{"row_id": "R1", "kw_after": None, "limit_kw": 78.0}]}, **changes}
    (d / "summary.json").write_text(json.dumps(summary))
    return d


def _simulation(tmp_path, summary=None, table="policy,peak_row_power\nbaseline,0.8\n", ts=None) -> Path:
    d = tmp_path / "sim"
    d.mkdir(exist_ok=True)
    (d / "summary.json").write_text(json.dumps({} if summary is None else summary))
    (d / "comparison.csv").write_text(table)
    if ts is not None:
        pd.DataFrame({"policy": "baseline", "timestamp": ["2026-06-01 00:00", ts], "scope": "row", "id": "R1",
                      "metric": "power_kw", "value": ["1.0", "2.0" if ts != "2026-06-01 01:00" else "x"]}
                     ).to_parquet(d / "timeseries.parquet")
    return d


def _whatif(tmp_path, results, sweep=None) -> Path:
    d = tmp_path / "wi"
    d.mkdir(exist_ok=True)
    (d / "results.csv").write_text(results)
    if sweep is not None:
        (d / "sweep.json").write_text(sweep)
    return d


@pytest.mark.parametrize("option, make, where", [
    ("--emergency", lambda t: _emergency(t, events=None), "summary.json [events]: bad_value"),
    ("--emergency", lambda t: _emergency(t, saas=None), "summary.json [saas]: bad_value"),
    ("--emergency", lambda t: _emergency(t, limits={"rows": [{"row_id": 5}]}),
     "summary.json [limits.rows[0].row_id]: bad_value"),
    ("--simulation", lambda t: _simulation(t, summary=[]), "summary.json: bad_value"),
    ("--simulation", lambda t: _simulation(t, table="policy,peak_row_power\nbaseline,abc\n"),
     "comparison.csv:2 [peak_row_power]: bad_value: 'abc' is not a number"),
    ("--simulation", lambda t: _simulation(t, ts="2026-06-01 01:00"), "timeseries.parquet [value]: bad_value"),
    ("--simulation", lambda t: _simulation(t, ts="notatime"), "timeseries.parquet [timestamp]: bad_value"),
    ("--whatif", lambda t: _whatif(t, "name,param.k,peak_row_power_fraction\na,1,abc\n"),
     "results.csv:2 [peak_row_power_fraction]: bad_value"),
    ("--whatif", lambda t: _whatif(t, "name,param.k,peak_row_power_fraction\na,1,0.9\na,x,0.8\n"),
     "results.csv:3 [param.k]: bad_value"),
    ("--whatif", lambda t: _whatif(t, "name,param.k,peak_row_power_fraction\n\na,1,0.9\n\nb,1,abc\n"),
     "results.csv:5 [peak_row_power_fraction]: bad_value"),
    ("--whatif", lambda t: _whatif(t, "name,param.k\na,1\n", sweep="[1]"), "sweep.json: bad_value"),
])
def test_edited_emergency_simulation_and_whatif_files_are_malformed_input(plans, tmp_path, option, make, where):
    """Keys of another type, text in numeric columns and foreign JSON in the outputs of
    reconfigure, simulate and whatif crashed report with exit 3 (a traceback): now exit 2,
    naming the file and the key or column, and nothing is written."""
    res = report(plans["optimal"], "-i", EXAMPLE, option, make(tmp_path), "--out", tmp_path / "r.html")
    assert res.exit_code == 2 and _flat(where) in _flat(res.output), res.output
    assert _flat("re-run the") in _flat(res.output)
    assert not (tmp_path / "r.html").exists()


def test_null_emergency_numbers_and_an_empty_whatif_sweep_still_render(plans, tmp_path):
    """A reconfigure row with `kw_after: null` crashed the chart's tooltip (format of None); a
    whatif results.csv with only its header (no scenario finished) crashed the sweep chart
    (min() of an empty sequence): both render, the sweep saying that none finished."""
    out = tmp_path / "r.html"
    res = report(plans["optimal"], "-i", EXAMPLE, "--emergency", _emergency(tmp_path),
                 "--whatif", _whatif(tmp_path, "name,param.k,peak_row_power_fraction\n"), "--out", out)
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert "No scenario of this sweep has finished" in html and "– kW with the plan" in html


def test_report_warns_when_the_plan_was_made_for_another_inventory(plans, tmp_path):
    """report PLAN -i OTHER drew a wrong-room evaluation as if it were real; verify warned. Now
    report gives verify's warning on the console and above the verdict in the HTML."""
    other = tmp_path / "other-room"
    shutil.copytree(EXAMPLE, other)
    out = tmp_path / "r.html"
    res = report(plans["optimal"], "-i", other, "--out", out)
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "warning (optimal): the plan was made for the inventory" in text and str(other.resolve()) in text
    html = out.read_text()
    assert 'class="verdict warn"' in html and "its violations may only mean the wrong room" in html
    data = json.loads(report(plans["optimal"], "-i", other, "--out", out, "--json").stdout)
    assert any("was made for the inventory" in w for w in data["warnings"])
    assert not any("was made for" in w for w in json.loads(
        report(plans["optimal"], "-i", EXAMPLE, "--out", out, "--json").stdout)["warnings"])


def test_png_dir_refuses_folders_tapas_opt_did_not_write(plans, tmp_path):
    """--png-dir overwrote a user's row_power.png and wrote into an inventory; it now follows
    --out's rule (new, empty, or marked as tapas-opt's), names --png-dir, and marks its folder
    so that the next run may write there again."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "row_power.png").write_text("keep")
    res = report(plans["optimal"], "-i", EXAMPLE, "--png-dir", mine, "--out", tmp_path / "r.html")
    assert res.exit_code == 2 and "--png-dir" in res.output and "--out" not in res.output
    assert (mine / "row_power.png").read_text() == "keep" and not (tmp_path / "r.html").exists()
    inv = tmp_path / "inv"
    shutil.copytree(EXAMPLE, inv)
    res = report(plans["optimal"], "-i", EXAMPLE, "--png-dir", inv, "--out", tmp_path / "r.html")
    assert res.exit_code == 2 and "inventory" in res.output and not list(inv.glob("*.png"))
    (tmp_path / "notes.txt").write_text("x")
    res = report(plans["optimal"], "-i", EXAMPLE, "--png-dir", tmp_path / "notes.txt" / "sub", "--out", tmp_path / "r.html")
    assert res.exit_code == 2 and "Choose another --png-dir" in " ".join(res.output.split())
    figures = tmp_path / "figures"
    for _ in range(2):  # its own folder (the marker): written again
        res = report(plans["optimal"], "-i", EXAMPLE, "--png-dir", figures, "--out", tmp_path / "r.html", "-q")
        assert res.exit_code == 0, res.output
    assert (figures / ".tapas-opt-output").exists() and (figures / "row_power.png").stat().st_size > 1000


@pytest.mark.parametrize("marker, option", [("configs.csv", "--emergency"), ("comparison.csv", "--simulation"),
                                            ("oversubscription.csv", "--simulation"), ("mix.csv", "--simulation"),
                                            ("emergencies.csv", "--simulation"), ("results.csv", "--whatif")])
def test_another_commands_output_given_as_the_plan_names_its_option(tmp_path, marker, option):
    """report on a reconfigure output said only 'plan.csv is missing (pass a directory written by
    tapas-opt place)': it now says whose output it is and which option of report takes it."""
    d = tmp_path / "out"
    d.mkdir()
    (d / marker).write_text("x\n1\n")
    res = report(d, "-i", EXAMPLE, "--out", tmp_path / "r.html")
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "plan.csv is missing" in text and f"report PLAN {option} DIR" in text


def test_a_region_output_given_as_the_plan_points_at_its_rooms(tmp_path):
    """A plan-region output has one plan per room under rooms/: report says so."""
    d = tmp_path / "region"
    (d / "rooms" / "a").mkdir(parents=True)
    (d / "region.json").write_text("{}")
    res = report(d, "-i", EXAMPLE, "--out", tmp_path / "r.html")
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "output of 'tapas-opt plan-region'" in text and "rooms/ROOM" in text


def test_a_plan_whose_profiles_lack_a_vm_is_said_and_drawn_as_verify_checks_it(plans, tmp_path):
    """A profiles.parquet edited (or copied from another plan) so that it lacks a VM: verify
    and report forecast that VM themselves, both say so, and both show the same peaks (report
    forecast with the template method and verify with auto, so their figures differed)."""
    plan = tmp_path / "plan"
    shutil.copytree(plans["optimal"], plan)
    profiles = pd.read_parquet(plan / "profiles.parquet")
    dropped = profiles["vm_id"].iloc[0]
    profiles[profiles["vm_id"] != dropped].to_parquet(plan / "profiles.parquet", index=False)
    checked = CliRunner().invoke(main, ["verify", str(EXAMPLE), str(plan)])
    drawn = report(plan, "-i", EXAMPLE, "--out", tmp_path / "r.html")
    assert checked.exit_code == 0 and drawn.exit_code == 0, checked.output + drawn.output
    for res in (checked, drawn):
        text = " ".join(res.output.split())
        assert "profiles.parquet: 1 of the inventory's" in text and repr(dropped) in text
    peak = re.compile(r"peak row power ([\d.]+)% of limit, max GPU ([\d.]+) C")
    assert peak.search(" ".join(checked.output.split())).groups() == peak.search(" ".join(drawn.output.split())).groups()
