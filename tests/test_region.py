"""Region planning: the region directory, the aggregate split of the queue over rooms (known
answers on hand-built views), and whole regions planned on a two-worker LocalCluster."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

pytest.importorskip("distributed")

from tapas_opt.cli import main  # noqa: E402
from tapas_opt.config import QUANTILES  # noqa: E402
from tapas_opt.distributed import dask_client  # noqa: E402
from tapas_opt.errors import InventoryError  # noqa: E402
from tapas_opt.fleet.region import (Queue, RoomOptions, RoomView, load_region, plan_region,  # noqa: E402
                                    split_queue, write_generated_region)
from tapas_opt.inventory.load import load_inventory  # noqa: E402


# ---- the region directory -----------------------------------------------------------------------

def test_rooms_default_to_subdirectories(tmp_path, two_row_room, monkeypatch):
    """Without region.yaml every sub-directory holding a datacenter.yaml is a room; the region
    is named after its directory, also when given as '.'."""
    region = tmp_path / "region"
    region.mkdir()
    for name in ("west", "east"):
        shutil.copytree(two_row_room, region / name)
    (region / "notes").mkdir()
    spec = load_region(region)
    assert [r.room_id for r in spec.rooms] == ["east", "west"] and spec.scope == "region" and spec.pending is None
    monkeypatch.chdir(region)
    assert load_region(".").name == "region"
    # a directory with a room's tables but no datacenter.yaml (misspelt) was left out silently
    shutil.copytree(two_row_room, region / "north")
    (region / "north" / "datacenter.yaml").rename(region / "north" / "datacentre.yaml")
    with pytest.raises(InventoryError) as err:
        load_region(region)
    [problem] = err.value.problems
    assert problem.file == "north/datacenter.yaml" and "holds aisles.csv" in problem.message


def test_region_problems_are_listed_at_once(tmp_path, two_row_room):
    """Unknown keys, missing rooms, duplicate ids, a bad scope and a missing queue file together."""
    region = tmp_path / "region"
    region.mkdir()
    (region / "a").symlink_to(two_row_room, target_is_directory=True)
    (region / "region.yaml").write_text("name: r\ncolour: blue\nscope: galaxy\npending: queue.csv\n"
                                        "rooms:\n  - a\n  - {id: a, path: a}\n  - missing\n")
    with pytest.raises(InventoryError) as err:
        load_region(region)
    codes = sorted(p.code for p in err.value.problems)
    assert codes == ["bad_value", "duplicate_id", "missing_file", "missing_file", "unknown_key"]
    # each with the line of its key or list item
    lines = sorted((p.code, p.line) for p in err.value.problems)
    assert lines == [("bad_value", 3), ("duplicate_id", 6), ("missing_file", 4), ("missing_file", 8),
                     ("unknown_key", 2)]


def test_one_room_listed_under_two_ids_is_refused(tmp_path, two_row_room):
    """Two entries (or two symlinks) naming one directory: its servers were planned twice over,
    each pending VM placed once per copy on the same physical servers."""
    region = tmp_path / "region"
    region.mkdir()
    shutil.copytree(two_row_room, region / "a")
    (region / "b").symlink_to(region / "a", target_is_directory=True)
    (region / "region.yaml").write_text("rooms:\n  - a\n  - {id: a2, path: ./a/}\n  - b\n")
    with pytest.raises(InventoryError) as err:
        load_region(region)
    [p] = err.value.problems
    assert (p.code, p.line) == ("duplicate_room", 3) and p.message.startswith("rooms 'a', 'a2', 'b' are the same directory")


# ---- stage 2 on hand-built views -----------------------------------------------------------------

def _view(room_id: str, base_kw: list[float], limit_kw: float = 100.0, servers_per_row: int = 4) -> RoomView:
    """A room of one aisle, rows with a flat base power, 8-GPU servers adding 0.5 kW per GPU at full load."""
    n_rows, T = len(base_kw), 4
    horizon = pd.date_range("2026-06-01", periods=T, freq="h")
    return RoomView(room_id, horizon, "p99", (0.0, 1.0), np.array([f"{room_id}-R{i}" for i in range(n_rows)]),
                    np.full(n_rows, limit_kw), np.zeros(n_rows, int), np.array(["A"]), np.array([1e9]),
                    np.repeat(np.array(base_kw, float)[:, None], T, axis=1), np.zeros((1, T)),
                    np.repeat(np.arange(n_rows), servers_per_row), np.full(n_rows * servers_per_row, 8),
                    np.full(n_rows, 0.5), np.full(n_rows, 50.0), Queue.empty(T), {})


def _queue(n: int, load: float = 1.0, fixed: str | None = None, T: int = 4) -> Queue:
    vms = pd.DataFrame({"vm_id": [f"q/{i}" for i in range(n)], "source_id": [str(i) for i in range(n)], "home": "q",
                        "kind": "iaas", "customer": "c", "endpoint": None, "gpus": 8, "fixed_room": fixed})
    return Queue(vms, {q: np.full((n, T), load) for q in QUANTILES})


def test_split_water_fills_the_least_loaded_rows():
    """Each full-load 8-GPU VM adds 4 kW: the queue goes to the emptier room until the peaks meet."""
    views = [_view("hot", [80.0], servers_per_row=8), _view("cool", [60.0], servers_per_row=8)]
    room_of, stats = split_queue(views, _queue(6))
    # cool takes VMs until 60 + 4k >= 80 (5 VMs: 80), then they alternate.
    assert (room_of == 1).sum() == 5 and (room_of == 0).sum() == 1
    assert stats["over_limits"] == 0 and stats["region_peak_row_power_estimate"] == pytest.approx(0.84)


def test_split_respects_capacity_fixed_rooms_and_exclusions():
    """No free server: -1; a fixed VM goes to its room; an excluded room is never chosen."""
    views = [_view("a", [10.0], servers_per_row=1), _view("b", [50.0], servers_per_row=1)]
    room_of, stats = split_queue(views, _queue(3))
    assert sorted(room_of) == [-1, 0, 1] and stats["no_capacity"] == 1
    room_of, _ = split_queue(views, _queue(1, fixed="b"))
    assert list(room_of) == [1]
    room_of, _ = split_queue(views, _queue(1), exclude={"q/0": {"a"}})
    assert list(room_of) == [1]


def test_split_uses_rows_over_limits_only_as_a_last_resort():
    """When no row can take a VM within its limit, the least-bad row is chosen and counted."""
    views = [_view("a", [98.0]), _view("b", [99.0])]
    room_of, stats = split_queue(views, _queue(1))
    assert list(room_of) == [0] and stats["over_limits"] == 1


# ---- whole regions on a LocalCluster ---------------------------------------------------------------

@pytest.fixture(scope="module")
def client():
    with dask_client(None, n_workers=2) as c:
        c.wait_for_workers(2)
        yield c


@pytest.fixture(scope="module")
def region(tmp_path_factory) -> Path:
    """Three generated rooms of 80 servers with 30 pending VMs each (scope: region)."""
    return write_generated_region(tmp_path_factory.mktemp("region") / "r3", rooms=3, servers=80, pending=30, seed=3)


def test_region_plan_places_every_vm_within_its_rooms_bounds(client, region, tmp_path):
    """Every queued VM is placed once, on a server of the room that got it; every room's plan
    passes verify and is within 2 % of its LP bound (or was handed to the optimiser)."""
    res = plan_region(region, tmp_path / "out", client=client)
    s = res.summary
    assert s["queued_vms"] == 90 and s["placed"] == 90 and s["unplaced"] == 0 and s["violations"] == 0
    for r in s["room_results"]:
        assert r["peak_row_power_bound"] is not None
        assert r["peak_row_power_fraction"] >= r["peak_row_power_bound"] - 1e-9
        assert r["peak_row_power_gap"] <= 0.02 or r["escalated"]
    a = pd.read_csv(tmp_path / "out" / "assignment.csv")
    assert a["vm_id"].is_unique and len(a) == 90 and (a["status"] == "placed").all()
    assert pd.read_csv(tmp_path / "out" / "assignment.csv", dtype=str)["round"].str.fullmatch(r"\d+").all()  # not 1.0
    assert set(a["home"]) == {"room01", "room02", "room03"}
    for room, part in a.groupby("room"):
        servers = set(load_inventory(region / room).servers["server_id"])
        assert set(part["server_id"]) <= servers
        plan = pd.read_csv(tmp_path / "out" / "rooms" / room / "plan.csv")
        assert set(part["vm_id"]) == set(plan.loc[plan["status"] == "placed", "vm_id"])
        assert json.loads((tmp_path / "out" / "rooms" / room / "summary.json").read_text())["region"]["room"] == room
    assert json.loads((tmp_path / "out" / "region.json").read_text())["rooms"] == 3


def test_region_pending_file_and_room_scope(client, region, tmp_path):
    """scope: room keeps each room's queue at home; pending.csv VMs borrow their customer's
    profile from the room named in its ``room`` column (or assume full load) and go anywhere."""
    alt = tmp_path / "alt"
    alt.mkdir()
    for room in ("room01", "room02"):
        (alt / room).symlink_to(region / room, target_is_directory=True)
    cust = load_inventory(region / "room01").vms.dropna(subset=["customer"])["customer"].iloc[0]
    pd.DataFrame({"vm_id": ["n1", "n2"], "kind": "iaas", "customer": [cust, "nobody"], "endpoint": None,
                  "gpus": 8, "room": ["room01", None]}).to_csv(alt / "pending.csv", index=False)
    (alt / "region.yaml").write_text(yaml.safe_dump({"scope": "room"}))
    res = plan_region(alt, None, client=client, options=RoomOptions(policy="greedy"))
    a = res.assignment.set_index("vm_id")
    own = a[a["home"].isin(["room01", "room02"]) & a.index.str.startswith("room")]
    assert (own["room"] == own["home"]).all() and len(own) == 60
    assert {"region/n1", "region/n2"} <= set(a.index) and a.loc["region/n1", "status"] == "placed"


def test_every_unplaced_vm_says_why(client, region, tmp_path):
    """More 8-GPU VMs than the region can hold: each one left out carries a reason in
    assignment.csv, the limit that binds in the last room that tried it or that no room had the
    GPUs free, and the command prints them."""
    alt = tmp_path / "alt"
    alt.mkdir()
    for room in ("room01", "room02", "room03"):
        (alt / room).symlink_to(region / room, target_is_directory=True)
    pd.DataFrame({"vm_id": [f"big{i}" for i in range(150)], "kind": "iaas", "customer": "nobody", "endpoint": None,
                  "gpus": 8}).to_csv(alt / "pending.csv", index=False)
    res = plan_region(alt, None, client=client, options=RoomOptions(policy="greedy"))
    left = res.assignment[res.assignment["status"] == "unplaced"]
    assert len(left) > 0 and (left["reason"] != "").all()
    assert left["reason"].str.match(r"^(room room0\d: \w+: |no_gpu_capacity: )").all()
    assert (res.assignment.loc[res.assignment["status"] == "placed", "reason"] == "").all()


def test_cli_plan_region(region, tmp_path):
    """tapas-opt plan-region writes the plan and exits 0 when everything is placed; a broken
    region exits 2."""
    res = CliRunner().invoke(main, ["plan-region", str(region), "--out", str(tmp_path / "o"), "--json",
                                    "--room-policy", "greedy"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["placed"] == 90
    bad = CliRunner().invoke(main, ["plan-region", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o2")])
    assert bad.exit_code == 2 and "no_region" in bad.output


def test_a_repaired_rooms_queue_keeps_earlier_rounds_placed_vms_and_all_of_its_last():
    """A room solved in two rounds: its queue.csv lists the first round's VMs it placed (not the
    ones it handed back to the region) and every VM of its last round, placed or not, which are
    exactly the VMs its final plan.csv places or its summary lists as unplaced."""
    from types import SimpleNamespace

    from tapas_opt.fleet.region import _export_all

    def rnd(queued, placed, plan_ids):
        q = pd.DataFrame({"vm_id": queued, "kind": "iaas", "customer": "c", "endpoint": None, "gpus": 8})
        plan = pd.DataFrame({"vm_id": plan_ids, "status": "running"})
        summary = {"vms": {"pending": len(queued), "placed": len(placed), "unplaced": len(queued) - len(placed),
                           "running": len(plan_ids) - len(placed)}}
        return SimpleNamespace(queued=q, placed=pd.DataFrame({"vm_id": placed}), plan=plan, summary=summary,
                               figures={"round": len(queued)}, profiles="final profiles")

    first = rnd(["r/a", "r/b"], ["r/a"], ["v1", "r/a"])  # r/b went back to the region
    last = rnd(["s/c", "s/d", "s/e"], ["s/c", "s/d"], ["v1", "r/a", "s/c", "s/d"])
    out = _export_all([first, last])
    assert list(out["queue"]["vm_id"]) == ["r/a", "s/c", "s/d", "s/e"]
    assert out["plan"].set_index("vm_id")["status"].to_dict() == {"v1": "running", "r/a": "placed",
                                                                  "s/c": "placed", "s/d": "placed"}
    assert out["profiles"] == "final profiles" and len(out["summary"]["region_rounds"]) == 2
    # its VM counts cover both rounds: 4 queued, 3 placed, 1 unplaced, 1 running before the region
    assert out["summary"]["vms"] == {"pending": 4, "placed": 3, "unplaced": 1, "running": 1}


def test_room_plans_of_a_region_verify_against_their_rooms(region, tmp_path):
    """Each room plan of plan-region carries the VMs the region gave it (queue.csv, renamed
    HOME/VM_ID) and their profiles, so verify and report re-check it against the room's own
    inventory and get the peaks the region reported; a broken queue.csv is bad input with its
    line and column."""
    out = tmp_path / "o"
    assert CliRunner().invoke(main, ["plan-region", str(region), "--out", str(out), "--quiet",
                                     "--room-policy", "greedy"]).exit_code == 0
    for room in ("room01", "room02", "room03"):
        plan_dir = out / "rooms" / room
        summary = json.loads((plan_dir / "summary.json").read_text())
        queue = pd.read_csv(plan_dir / "queue.csv")
        placed = pd.read_csv(plan_dir / "plan.csv").query("status == 'placed'")
        assert set(queue["vm_id"]) == set(placed["vm_id"]) and queue["vm_id"].str.contains("/").all()
        res = CliRunner().invoke(main, ["verify", str(region / room), str(plan_dir), "--json"])
        assert res.exit_code == 0, res.output
        got = json.loads(res.stdout)
        assert got["violations"] == [] and got["unplaced"] == []
        assert got["peak_row_power_fraction"] == pytest.approx(summary["peak_row_power_fraction"], abs=1e-4)
        assert got["warnings"] == []
    wrong = CliRunner().invoke(main, ["verify", str(region / "room02"), str(out / "rooms" / "room01"), "--json"])
    assert "made for the inventory" in json.loads(wrong.stdout)["warnings"][0]
    rep = CliRunner().invoke(main, ["report", str(out / "rooms" / "room01"), "--out", str(tmp_path / "r.html")])
    assert rep.exit_code == 0, rep.output
    queue_file = out / "rooms" / "room02" / "queue.csv"
    original = queue_file.read_text()
    queue_file.write_text(original.replace(",saas,", ",sass,", 1))
    bad = CliRunner().invoke(main, ["verify", str(region / "room02"), str(out / "rooms" / "room02")])
    assert bad.exit_code == 2 and "queue.csv:2[kind]:out_of_range" in "".join(bad.output.split())
    queue = pd.read_csv(queue_file.with_name("queue.csv"))
    queue["kind"] = "saas"
    queue.loc[0, "endpoint"] = None
    queue.to_csv(queue_file, index=False)
    bad = CliRunner().invoke(main, ["verify", str(region / "room02"), str(out / "rooms" / "room02")])
    assert bad.exit_code == 2 and "missing_endpoint" in bad.output
    header, dropped, *rest = original.splitlines()  # a VM dropped from queue.csv, not from the plan
    queue_file.write_text("\n".join([header, *rest]) + "\n")
    first = dropped.split(",")[0]
    bad = CliRunner().invoke(main, ["verify", str(region / "room02"), str(out / "rooms" / "room02"), "--json"])
    said = [p for p in json.loads(bad.stdout)["problems"] if p["code"] == "unknown_vm"]
    assert bad.exit_code == 2 and said and all(p["file"].startswith(str(out / "rooms" / "room02")) for p in said)
    assert any(first in p["message"] and "neither in vms.csv nor in queue.csv" in p["message"]
               and "copy the room plan's directory whole" in p["hint"] for p in said)
    queue_file.unlink()  # a room plan copied without its queue: one clear problem, not one per VM
    bad = CliRunner().invoke(main, ["verify", str(region / "room02"), str(out / "rooms" / "room02")])
    assert bad.exit_code == 2 and "lost its queue.csv" in "".join(bad.output.split("\n")) and "unknown_vm" not in bad.output


def test_rooms_over_the_gap_target_go_to_the_optimiser(client, region, tmp_path):
    """With a gap target of 0, every room whose greedy plan is above its LP bound is re-planned by
    the optimiser; the plans still place everything and pass verify."""
    res = plan_region(region, None, client=client, options=RoomOptions("auto", gap_target=0.0, time_limit_s=3))
    s = res.summary
    assert s["placed"] == 90 and s["violations"] == 0
    for r in s["room_results"]:
        if r["escalated"]:
            assert r["mode"] == "optimal" and r["peak_row_power_bound"] is not None
    assert s["rooms_escalated"] == len({r["room"] for r in s["room_results"] + s["repair_results"] if r["escalated"]})


def test_region_queue_rejects_a_vm_no_server_can_hold(tmp_path):
    """A pending VM larger than the region's largest server is bad input, reported with the
    others, before any room is forecast."""
    from tapas_opt.errors import InventoryError
    from tapas_opt.fleet.region import read_region_pending

    path = tmp_path / "pending.csv"
    pd.DataFrame({"vm_id": ["a", "b", "b", None, None], "kind": ["iaas", "saas", "iaas", "iaas", "iaas"],
                  "customer": "c", "endpoint": [None, "ep", None, None, None],
                  "gpus": [16, 8, 2, 1, 1]}).to_csv(path, index=False)
    with pytest.raises(InventoryError) as err:
        read_region_pending(path, {"room01"}, max_gpus=8)
    got = {(p.code, p.line) for p in err.value.problems}
    # VMs without an id are each a missing value (one was queued as 'region/nan', two a duplicate 'nan')
    assert got == {("vm_too_large", 2), ("duplicate_id", 4), ("missing_value", 5), ("missing_value", 6)}


def test_region_queue_lines_count_blank_lines(tmp_path):
    """A blank line in pending.csv shifted every reported line by one (row + 2)."""
    from tapas_opt.errors import InventoryError
    from tapas_opt.fleet.region import read_region_pending

    path = tmp_path / "pending.csv"
    path.write_text("vm_id,kind,customer,endpoint,gpus\na,iaas,c,,1\n\nb,iaas,c,,0\n")
    with pytest.raises(InventoryError) as err:
        read_region_pending(path, {"room01"})
    assert [(p.code, p.line) for p in err.value.problems] == [("bad_type", 4)]


def test_an_empty_region_queue_file_is_an_empty_queue_and_parquet_rows_count_from_one(tmp_path):
    """The docs call an empty pending.csv no error: a 0-byte one was 'unreadable_file'. In a
    Parquet queue rows count from 1 (they were numbered as CSV lines) and cells are said as
    written (not np.float64(2.5))."""
    from tapas_opt.errors import InventoryError
    from tapas_opt.fleet.region import read_region_pending

    empty = tmp_path / "pending.csv"
    empty.write_text("")
    assert read_region_pending(empty, {"room01"}).empty
    parquet = tmp_path / "q.parquet"
    pd.DataFrame({"vm_id": ["q1", "q2", "q3"], "kind": "iaas", "customer": "c", "endpoint": None,
                  "gpus": [2.0, 2.5, 0.0]}).to_parquet(parquet, index=False)
    with pytest.raises(InventoryError) as err:
        read_region_pending(parquet, {"room01"})
    assert [(p.line, p.message) for p in err.value.problems] == [
        (2, "gpus 2.5 is not a whole number > 0"), (3, "gpus 0.0 is not a whole number > 0")]


def test_a_malformed_region_queue_is_bad_input(tmp_path):
    """An unquoted comma in pending.csv is an unreadable file with a hint (it was an internal
    error, exit 3); so is a ';'-separated one."""
    from tapas_opt.errors import InventoryError
    from tapas_opt.fleet.region import read_region_pending

    path = tmp_path / "pending.csv"
    path.write_text("vm_id,kind,customer,endpoint,gpus,room\nq1,iaas,acme,,2,\nq3,iaas,Client, Inc.,,2,\n")
    with pytest.raises(InventoryError) as err:
        read_region_pending(path, {"room01"})
    (problem,) = err.value.problems
    assert problem.code == "unreadable_file" and problem.line == 3 and "cells, the header" in problem.message \
        and "quote" in problem.hint
    path.write_text("vm_id;kind;gpus\nq1;iaas;2\n")
    with pytest.raises(InventoryError) as err:
        read_region_pending(path, {"room01"})
    assert [p.code for p in err.value.problems] == ["wrong_separator"]


def test_an_invalid_room_is_bad_input_with_its_problems(client, region, tmp_path):
    """A room whose inventory is broken fails its stage-1 task on bad input; the tasks fed by it
    pass that failure on, so the user sees the room's own problems (exit 2), not an internal
    error from a later stage."""
    import shutil

    from tapas_opt.fleet.region import RegionError

    broken = tmp_path / "broken"
    shutil.copytree(region, broken)
    rows = broken / "room02" / "rows.csv"
    lines = rows.read_text().splitlines()
    head, first = lines[0].split(","), lines[1].split(",")
    first[head.index("power_limit_kw")] = "-5"
    rows.write_text("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n")
    with pytest.raises(RegionError) as err:
        plan_region(broken, None, client=client, options=RoomOptions(policy="greedy"))
    assert err.value.exit_code == 2
    assert "room02" in str(err.value) and "rows.csv:2 [power_limit_kw]" in str(err.value)
    assert "InventoryError" not in str(err.value)
    # a bad region queue as well: its problems and the room's come out together, before any work
    (broken / "pending.csv").write_text("vm_id,kind,customer,endpoint,gpus\nq1,iaas,acme,,eight\n")
    (broken / "region.yaml").write_text(yaml.safe_dump({"pending": "pending.csv"}))
    with pytest.raises(InventoryError) as err:
        plan_region(broken, None, client=client, options=RoomOptions(policy="greedy"))
    where = {(p.file, p.column) for p in err.value.problems}
    assert ("pending.csv", "gpus") in where and ("room02/rows.csv", "power_limit_kw") in where
    # and settings the rooms must share, read from their datacenter.yaml: named by file, key and
    # values (they came after every room was forecast, as 'quantile or power polynomial differs')
    (broken / "pending.csv").unlink()
    (broken / "region.yaml").unlink()
    config = broken / "room03" / "datacenter.yaml"
    config.write_text(config.read_text() + "placement:\n  quantile: p90\n")
    with pytest.raises(InventoryError) as err:
        plan_region(broken, None, client=client, options=RoomOptions(policy="greedy"))
    said = {(p.file, p.column): p.message for p in err.value.problems}
    assert said[("room03/datacenter.yaml", "placement.quantile")] == "placement.quantile p90 differs from room room01's p99"
    assert ("room02/rows.csv", "power_limit_kw") in said


# ---- room ids, room entries, reasons and messages (findings of a test round) ----------------------

def _region_of(tmp_path, room: Path, yaml_text: str | None, names=("room01", "room02")) -> Path:
    region = tmp_path / "region"
    region.mkdir()
    for name in names:
        shutil.copytree(room, region / name)
    if yaml_text is not None:
        (region / "region.yaml").write_text(yaml_text)
    return region


def test_room_ids_that_cannot_name_an_output_folder_are_refused(tmp_path, two_row_room):
    """A room id names rooms/ROOM of the output: '../../../escaped' wrote a room's plan outside
    --out (and outside its atomic write), '..' crashed, 'a/b' nested folders, a blank id made a
    folder of spaces and `rooms: [.]` gave the id '' (plan files straight into rooms/). Each is
    bad input with its line, before any work."""
    region = _region_of(tmp_path, two_row_room, "rooms:\n  - {id: '../../../escaped', path: room01}\n"
                        "  - {id: '..', path: room02}\n  - {id: a/b, path: room01}\n  - {id: '   ', path: room02}\n"
                        "  - .\n  - {id: " + "x" * 300 + ", path: room01}\n  - {id: ok-1, path: room02}\n")
    with pytest.raises(InventoryError) as err:
        load_region(region)
    got = [(p.code, p.line) for p in err.value.problems if p.code == "bad_room_id"]
    assert got == [("bad_room_id", line) for line in (2, 3, 4, 5, 6, 7)]
    assert "duplicate_id" not in {p.code for p in err.value.problems}  # a bad id is said once
    # a hand-built RegionSpec is checked too, before any work: nothing is written anywhere
    from tapas_opt.fleet.region import RegionSpec, RoomRef

    spec = RegionSpec(str(region), "r", (RoomRef("../escaped", str(region / "room01")),))
    with pytest.raises(InventoryError) as err:
        plan_region(spec, tmp_path / "out")
    assert [p.code for p in err.value.problems] == ["bad_room_id"]
    assert not (tmp_path / "out").exists() and not (tmp_path / "escaped").exists()


def test_a_room_directory_whose_name_cannot_be_an_id_is_named_by_itself(tmp_path, two_row_room):
    """Without region.yaml a sub-directory's name is its room id: a hidden '.hall' is refused,
    naming the directory (there is no region.yaml line to give)."""
    region = _region_of(tmp_path, two_row_room, None, names=("room01", ".hall"))
    with pytest.raises(InventoryError) as err:
        load_region(region)
    [p] = err.value.problems
    assert (p.code, p.file) == ("bad_room_id", ".hall") and "region.yaml" in p.hint


def test_unknown_keys_in_a_room_entry_and_a_name_that_is_not_text_are_refused(tmp_path, two_row_room):
    """`{path: room01, id: r1, extra: 3}` and `name: [1, 2]` were accepted (the region was named
    '[1, 2]'); a room entry without a path said only "give a path or {id, path}"."""
    region = _region_of(tmp_path, two_row_room, "name: [1, 2]\nrooms:\n  - {path: room01, id: r1, extra: 3}\n"
                        "  - {pth: room02}\n  - {path: room02, id: [1]}\n")
    with pytest.raises(InventoryError) as err:
        load_region(region)
    got = sorted((p.code, p.line) for p in err.value.problems)
    assert got == [("bad_room_id", 5), ("bad_value", 1), ("missing_value", 4), ("unknown_key", 3),
                   ("unknown_key", 4)]
    assert any("'extra'" in p.message for p in err.value.problems)
    (region / "region.yaml").write_text("name: 2024\nrooms:\n  - {path: room01, id: 7}\n  - room02\n")
    spec = load_region(region)
    assert spec.name == "2024" and [r.room_id for r in spec.rooms] == ["7", "room02"]


def test_vms_the_split_left_without_a_room_are_offered_again_on_the_rooms_plans(client, tmp_path, two_row_room,
                                                                              monkeypatch):
    """A VM the split gave to no room (its GPUs went to VMs split before it) was never offered
    again, and its reason 'no server had N free GPUs' stayed although the final plans left
    servers free. The repair round now offers it on the rooms' plans; with no repair round its
    reason says the split was when no GPUs were free."""
    import tapas_opt.fleet.region as region_mod

    region = _region_of(tmp_path, two_row_room, None)
    real = region_mod.split_queue
    calls = []

    def first_split_leaves_one_out(views, queue, exclude=None):
        room_of, stats = real(views, queue, exclude)
        if not calls:
            room_of[np.flatnonzero(room_of >= 0)[0]] = -1  # as if its GPUs had gone to others
        calls.append(len(queue.vms))
        return room_of, stats

    monkeypatch.setattr(region_mod, "split_queue", first_split_leaves_one_out)
    res = plan_region(region, None, client=client, forecast_method="template", options=RoomOptions(policy="greedy"))
    assert calls == [4, 1] and res.summary["placed"] == 4 and res.summary["unplaced"] == 0
    assert res.summary["rounds"][0]["not_given"] == 1
    calls.clear()
    res = plan_region(region, None, client=client, forecast_method="template", options=RoomOptions(policy="greedy"),
                      repair_rounds=0)
    [reason] = res.assignment.loc[res.assignment["status"] == "unplaced", "reason"]
    assert reason.startswith("no_gpu_capacity: no server in the region had 8 free GPUs left for it when the queue "
                             "was split over the rooms")


def test_an_empty_region_queue_says_there_is_nothing_to_place(tmp_path):
    """No room has pending VMs: the command printed an empty table and '0 of 2 rooms within 2% of
    their LP bound'; it now says there was nothing to place, exits 0 and writes region.json and
    assignment.csv (no rooms/ folders: each room's plan is its inventory as it is)."""
    region = write_generated_region(tmp_path / "r0", rooms=2, servers=20, pending=0, seed=1)
    res = CliRunner().invoke(main, ["plan-region", str(region), "--out", str(tmp_path / "o"), "--forecast-method",
                                    "template", "--dask-workers", "1"])
    assert res.exit_code == 0, res.output
    assert "nothing to place" in res.stdout and "LP bound" not in res.stdout
    written = sorted(p.name for p in (tmp_path / "o").iterdir() if not p.name.startswith("."))  # not its marker
    assert written == ["assignment.csv", "region.json"]


def test_region_problems_name_files_under_the_region_and_say_empty_not_nan(client, tmp_path, two_row_room):
    """pending.csv problems named only the file's name (`p.csv` for `queues/p.csv`) and showed
    blank cells as `nan` ("gpus nan", "kind nan"); a room's inventory problems found while it is
    loaded on a worker named `vms.csv`, not `room02/vms.csv`."""
    region = _region_of(tmp_path, two_row_room, "pending: queues/p.csv\n")
    (region / "queues").mkdir()
    (region / "queues" / "p.csv").write_text("vm_id,kind,customer,endpoint,gpus\n,iaas,c,,\nx,,c,,99\n")
    with pytest.raises(InventoryError) as err:
        plan_region(region, None, client=client, forecast_method="template")
    assert {p.file for p in err.value.problems} == {"queues/p.csv"}
    text = str(err.value)
    assert "nan" not in text and "an empty gpus" in text and "an empty kind" in text
    (region / "queues" / "p.csv").write_text("vm_id,kind,customer,endpoint,gpus\nx,iaas,c,,2\n")
    vms = region / "room02" / "vms.csv"
    vms.write_text(vms.read_text().replace(",iaas,", ",iass,", 1))
    from tapas_opt.fleet.region import RegionError

    with pytest.raises(RegionError) as err:
        plan_region(region, None, client=client, forecast_method="template")
    assert "room02/vms.csv:" in str(err.value)
