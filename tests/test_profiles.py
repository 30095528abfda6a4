"""Load profiles for placement: the paper's templates, short histories, borrowing, supplied."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conftest import hourly_history, server, vm, write_inventory
from tapas_opt.api import place
from tapas_opt.errors import InventoryError
from tapas_opt.forecast.base import QUANTILE_LEVELS, LoadProfiles
from tapas_opt.forecast.profiles import (MIXTURE_TOLERANCE, _member_cdf, build_profiles, mixture_quantiles,
                                         read_profiles)
from tapas_opt.forecast.template import TemplateForecaster, nanquantile_axis1
from tapas_opt.inventory.load import load_inventory


def _weekday_peaks(ts):
    """0.8 on weekdays 9-17 h, 0.2 otherwise."""
    busy = (ts.day_of_week < 5) & (ts.hour >= 9) & (ts.hour < 17)
    return np.where(busy, 0.8, 0.2)


def test_template_reproduces_a_weekly_pattern():
    """A strictly weekly series is forecast exactly, every quantile, weekday peaks kept."""
    hist = hourly_history(["a"], [_weekday_peaks])
    horizon = pd.date_range("2026-06-01", periods=168, freq="60min")
    pred = TemplateForecaster(60).fit(hist).predict(horizon)
    np.testing.assert_allclose(pred["p99"].to_numpy(), _weekday_peaks(horizon))
    np.testing.assert_allclose(pred["p50"].to_numpy(), _weekday_peaks(horizon))


def test_template_quantiles_over_four_weeks():
    """With weekly values 0.1, 0.2, 0.3, 0.4 in one slot, p50 is 0.25 (linear interpolation)."""
    ts = pd.date_range(end="2026-05-31 23:00", periods=4 * 168, freq="60min")
    week = (np.arange(len(ts)) // 168) + 1
    hist = pd.DataFrame({"timestamp": ts, "vm_id": "a", "load": week / 10})
    pred = TemplateForecaster(60).fit(hist).predict(pd.date_range("2026-06-01", periods=3, freq="60min"))
    assert pred["p50"].iloc[0] == pytest.approx(0.25)
    assert pred["p90"].iloc[0] == pytest.approx(np.quantile([0.1, 0.2, 0.3, 0.4], 0.9))


def test_short_history_assumes_the_peak_seen():
    """Less than a week of history: the paper assumes the peak (flat max)."""
    hist = hourly_history(["a"], [lambda ts: np.linspace(0.1, 0.7, len(ts))], weeks=0.5)
    f = TemplateForecaster(60).fit(hist)
    pred = f.predict(pd.date_range("2026-06-01", periods=24, freq="60min"))
    np.testing.assert_allclose(pred["p99"], 0.7)
    assert f.methods_["a"] == "short-history-peak"


def test_vectorised_quantile_matches_numpy():
    rng = np.random.default_rng(1)
    x = rng.random((20, 5, 9))
    x[rng.random(x.shape) < 0.4] = np.nan
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanquantile(x, 0.9, axis=1)
    np.testing.assert_allclose(nanquantile_axis1(np.sort(x, axis=1), 0.9), expected, equal_nan=True)


@pytest.fixture
def borrowing_room(tmp_path):
    servers = [server("A1", "A"), server("A2", "A")]
    vms = [vm("run1", customer="c1", server_id="A1"), vm("ep_run", kind="saas", customer="svc", endpoint="e1",
                                                        gpus=4, server_id="A2"),
           vm("new_c1", customer="c1"), vm("new_e1", kind="saas", customer="svc", endpoint="e1", gpus=4),
           vm("new_unknown", customer="stranger"), vm("new_e2", kind="saas", customer="svc", endpoint="e2", gpus=4)]
    tel = hourly_history(["run1", "ep_run"], [0.6, 0.3])
    return write_inventory(tmp_path / "inv", aisles=[{"aisle_id": "X", "airflow_limit_cfm": 1e5}],
                           rows=[{"row_id": "A", "aisle_id": "X", "power_limit_kw": 50}],
                           servers=servers, vms=vms, telemetry=tel)


def test_new_vms_borrow_their_customers_or_endpoints_profile(borrowing_room):
    """IaaS borrows the customer's, SaaS the endpoint's; a stranger, and a SaaS VM of a new
    endpoint (its customer, the LLM service, runs other endpoints), are assumed at peak."""
    prof = build_profiles(load_inventory(borrowing_room))
    method = prof.method
    assert method["new_c1"] == "borrowed-customer" and method["new_e1"] == "borrowed-endpoint"
    assert method["new_unknown"] == "assumed-peak" and method["new_e2"] == "assumed-peak"
    p99 = dict(zip(prof.vm_ids, prof.at("p99")[:, 0]))
    assert p99["new_c1"] == pytest.approx(0.6) and p99["new_e1"] == pytest.approx(0.3)
    assert p99["new_unknown"] == 1.0 and p99["new_e2"] == 1.0


def test_place_names_the_vms_planned_at_full_load(borrowing_room):
    """The plan's warnings say how many pending VMs nothing is known of, and what to do."""
    summary = place(borrowing_room, policy="greedy").summary
    note = [w for w in summary["warnings"] if "planned at full load" in w]
    assert len(note) == 1 and note[0].startswith("2 pending VM(s)") and "--profiles" in note[0]
    assert summary["profile_methods"]["assumed-peak"] == 2


def test_a_new_vm_of_unlike_vms_borrows_the_busy_ones_peak(tmp_path):
    """A customer with a VM at 0.2 and one at 0.8: a new VM is like one of them, so its P99 is
    the busy one's 0.8 (their mean, 0.5, would be exceeded half the time) and its P50 lies
    between the two."""
    servers = [server("A1", "A"), server("A2", "A")]
    vms = [vm("quiet", customer="c", server_id="A1"), vm("busy", customer="c", server_id="A2"), vm("new", customer="c")]
    root = write_inventory(tmp_path / "inv", aisles=[{"aisle_id": "X", "airflow_limit_cfm": 1e5}],
                           rows=[{"row_id": "A", "aisle_id": "X", "power_limit_kw": 50}], servers=servers, vms=vms,
                           telemetry=hourly_history(["quiet", "busy"], [0.2, 0.8]))
    prof = build_profiles(load_inventory(root))
    assert prof.method["new"] == "borrowed-customer"
    new = {q: prof.for_vms(["new"], q)[0] for q in ("p50", "p99")}
    np.testing.assert_allclose(new["p99"], 0.8, atol=1e-5)
    assert ((new["p50"] >= 0.2 - 1e-9) & (new["p50"] <= 0.8)).all()


def test_mixture_of_identical_members_is_the_member():
    member = np.array([[0.1, 0.0, 0.5], [0.3, 0.0, 0.7], [0.6, 0.0, 1.0]])
    np.testing.assert_allclose(mixture_quantiles(np.stack([member] * 3)), member, atol=MIXTURE_TOLERANCE)


@given(arrays(float, (4, 3, 5), elements=st.floats(0, 1)))
def test_mixture_quantile_is_the_level_of_the_mixed_cdf(raw):
    """Each mixture quantile lies between the members' and is the lowest load at which the
    mixture's CDF reaches its level (to the tolerance)."""
    members = np.sort(raw, axis=1)
    out = mixture_quantiles(members)
    knots = np.concatenate([np.zeros((4, 1, 5)), members, np.ones((4, 1, 5))], axis=1)
    levels = np.array([0.0, *QUANTILE_LEVELS.values(), 1.0])
    for j, level in enumerate(QUANTILE_LEVELS.values()):
        assert (out[j] >= members[:, j].min(axis=0) - 1e-12).all() and (out[j] <= members[:, j].max(axis=0) + 1e-12).all()
        assert (_member_cdf(out[j], knots, levels).mean(axis=0) >= level - 1e-9).all()
        below = out[j] - 2 * MIXTURE_TOLERANCE
        inside = below >= members[:, j].min(axis=0)
        assert (_member_cdf(below, knots, levels).mean(axis=0)[inside] < level + 1e-9).all()


def test_supplied_profiles_round_trip_and_win(borrowing_room, tmp_path):
    """An operator's profiles.csv replaces the forecast for the VMs it names."""
    inv = load_inventory(borrowing_room)
    prof = build_profiles(inv)
    frame = prof.to_frame()
    frame = frame[frame["vm_id"] == "new_unknown"].assign(p50=0.1, p90=0.2, p99=0.3)
    path = tmp_path / "profiles.csv"
    frame.to_csv(path, index=False)
    supplied = read_profiles(path, inv)
    again = build_profiles(inv, supplied=supplied)
    assert again.method["new_unknown"] == "supplied"
    np.testing.assert_allclose(again.for_vms(["new_unknown"], "p99"), 0.3)


def test_supplied_profiles_with_headers_in_another_case_name_the_header_found(borrowing_room, tmp_path):
    """'P50' and 'VM ID' (a spreadsheet's export) are not read as the columns, but the message
    names them, so the user sees at once that only the spelling is off."""
    inv = load_inventory(borrowing_room)
    frame = build_profiles(inv).to_frame().rename(columns={"p50": "P50", "vm_id": "VM ID"})
    path = tmp_path / "profiles.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InventoryError) as exc:
        read_profiles(path, inv)
    said = sorted(p.message for p in exc.value.problems)
    assert said == ["required column 'p50' is missing; the file has 'P50': column names are matched "
                    "exactly (lower case, '_' between words)",
                    "required column 'vm_id' is missing; the file has 'VM ID': column names are "
                    "matched exactly (lower case, '_' between words)"]


def test_supplied_profiles_with_gaps_and_bad_values_are_rejected(borrowing_room, tmp_path):
    inv = load_inventory(borrowing_room)
    frame = build_profiles(inv).to_frame()
    frame = frame[frame["vm_id"] == "new_unknown"].iloc[:-2].copy()
    frame.loc[frame.index[0], "p99"] = 1.7
    path = tmp_path / "profiles.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InventoryError) as exc:
        read_profiles(path, inv)
    assert {p.code for p in exc.value.problems} >= {"out_of_range"}
    frame.loc[frame.index[0], ["p50", "p90", "p99"]] = 0.9
    frame.to_csv(path, index=False)
    with pytest.raises(InventoryError) as exc:
        read_profiles(path, inv)
    assert {p.code for p in exc.value.problems} == {"profile_gap"}


def test_supplied_profiles_name_duplicates_text_and_the_true_count(borrowing_room, tmp_path):
    """A VM and slot given twice (0 and 1: the mean would halve a P99 peak) is bad input; a
    decimal comma is a bad_type quoting the cell, an empty cell a missing_value; a file wrong
    on every row lists the first 20 of a kind and counts the rest (the crossing check does
    not fire: 50 <= 60 <= 70)."""
    from tapas_opt.errors import MORE, count_problems

    inv = load_inventory(borrowing_room)
    frame = build_profiles(inv).to_frame()
    frame = frame[frame["vm_id"] == "new_unknown"].astype({"p50": object})
    twice = pd.concat([frame.assign(p50=0.0, p90=0.0, p99=0.0), frame.assign(p50=0.0, p90=0.0, p99=1.0)])
    path = tmp_path / "profiles.csv"
    twice.to_csv(path, index=False)
    with pytest.raises(InventoryError) as exc:
        read_profiles(path, inv)
    dups = [p for p in exc.value.problems if p.code == "duplicate_row"]
    assert dups[0].line == len(frame) + 2 and "first on line 2" in dups[0].message
    assert count_problems(exc.value.problems) == len(frame)
    bad = frame.copy()
    bad.loc[bad.index[0], "p50"] = "0,5"
    bad.loc[bad.index[1], "p50"] = None
    bad.to_csv(path, index=False)
    with pytest.raises(InventoryError) as exc:
        read_profiles(path, inv)
    got = {(p.code, p.line, p.column) for p in exc.value.problems}
    assert {("bad_type", 2, "p50"), ("missing_value", 3, "p50")} <= got
    assert any("'0,5'" in p.message for p in exc.value.problems)
    frame.assign(p50=50.0, p90=60.0, p99=70.0).to_csv(path, index=False)
    with pytest.raises(InventoryError) as exc:
        read_profiles(path, inv)
    assert count_problems(exc.value.problems) == 3 * len(frame)
    assert [p.message for p in exc.value.problems if p.message.startswith("...")] == [MORE.format(3 * len(frame) - 20)]


def test_supplied_profile_problems_come_at_once_even_with_a_broken_inventory(borrowing_room, tmp_path):
    """A crossed band used to hide a missing slot until it was fixed, and a broken inventory hid
    every problem of the profiles file."""
    import shutil

    from tapas_opt.forecast.profiles import load_with_profiles

    inv = load_inventory(borrowing_room)
    frame = build_profiles(inv).to_frame()
    frame = frame[frame["vm_id"] == "new_unknown"].iloc[:-1].copy()
    frame.loc[frame.index[3], "p99"] = 0.1  # below its p90
    path = tmp_path / "profiles.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InventoryError) as exc:
        read_profiles(path, inv)
    assert {p.code for p in exc.value.problems} == {"crossed_bands", "profile_gap"}
    crossed = next(p for p in exc.value.problems if p.code == "crossed_bands")
    assert (crossed.line, crossed.column) == (5, "p99") and "p99 0.1: the bands cross" in crossed.message
    assert crossed.hint.startswith("give p50 <= p90 <= p99")  # values, column and what to do (it had none)
    room = tmp_path / "room"
    shutil.copytree(borrowing_room, room)
    rows = pd.read_csv(room / "rows.csv")
    rows.loc[0, "power_limit_kw"] = -1
    rows.to_csv(room / "rows.csv", index=False)
    with pytest.raises(InventoryError) as exc:
        load_with_profiles(room, path)
    assert {(p.file, p.code) for p in exc.value.problems} == {("rows.csv", "out_of_range"),
                                                              ("profiles.csv", "crossed_bands")}


def test_supplied_profiles_that_leave_vms_out_say_so(borrowing_room, tmp_path):
    inv = load_inventory(borrowing_room)
    path = tmp_path / "profiles.csv"
    path.write_text("vm_id,timestamp,p50,p90,p99\n")
    read_profiles(path, inv)
    (w,) = [w for w in inv.warnings if w.code == "profiles_incomplete"]
    assert f"{len(inv.vms)} of the inventory's {len(inv.vms)} VM(s)" in w.message


def test_supplied_rows_outside_the_horizon_and_without_a_vm_are_said(borrowing_room, tmp_path):
    """A second week of rows (past the horizon) is not used: a warning with the count and the
    range; a row whose vm_id is empty is a missing_value on its line, not just a gap of
    whichever VM lost a slot."""
    inv = load_inventory(borrowing_room)
    frame = build_profiles(inv).to_frame()
    frame = frame[frame["vm_id"] == "new_unknown"].copy()
    later = frame.assign(timestamp=pd.to_datetime(frame["timestamp"]) + pd.Timedelta(days=7), p50=1.0, p90=1.0, p99=1.0)
    path = tmp_path / "profiles.csv"
    pd.concat([frame, later]).to_csv(path, index=False)
    read_profiles(path, inv)
    (w,) = [w for w in inv.warnings if w.code == "profiles_outside_horizon"]
    assert w.message.startswith(f"{len(later)} row(s) from ") and w.line == len(frame) + 2
    blank = frame.astype({"vm_id": object})
    blank.loc[blank.index[4], "vm_id"] = None
    blank.to_csv(path, index=False)
    with pytest.raises(InventoryError) as exc:
        read_profiles(path, inv)
    assert ("missing_value", 6, "vm_id") in {(p.code, p.line, p.column) for p in exc.value.problems}


def test_profiles_frame_round_trip():
    horizon = pd.date_range("2026-06-01", periods=4, freq="60min")
    vals = {q: np.arange(8, dtype=float).reshape(2, 4) / 10 for q in ("p50", "p90", "p99")}
    prof = LoadProfiles(horizon, pd.Index(["a", "b"], name="vm_id"), vals, pd.Series(["x", "y"], index=["a", "b"]))
    back = LoadProfiles.from_frame(prof.to_frame(), horizon)
    np.testing.assert_allclose(back.at("p90"), vals["p90"])


def test_supplied_profiles_finer_than_the_room_are_rejected(borrowing_room, tmp_path):
    """Rows between the room's slots would be dropped silently, peaks and all: bad input."""
    inv = load_inventory(borrowing_room)
    frame = build_profiles(inv).to_frame()
    frame = frame[frame["vm_id"] == "new_unknown"]
    finer = frame.assign(timestamp=pd.to_datetime(frame["timestamp"]) + pd.Timedelta(minutes=30), p99=1.0)
    path = tmp_path / "profiles.csv"
    pd.concat([frame, finer]).to_csv(path, index=False)
    with pytest.raises(InventoryError) as exc:
        read_profiles(path, inv)
    assert [p.code for p in exc.value.problems] == ["off_grid"]
