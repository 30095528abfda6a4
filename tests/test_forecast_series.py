"""Telemetry onto a regular grid: irregular timestamps, duplicates and gaps handled and reported."""

import numpy as np
import pandas as pd
import pytest

from tapas_opt.forecast.series import (aggregate_matrix, build_matrix, describe_quality, fill_gaps,
                                       matrix_from_values)


def _frame(rows):
    return pd.DataFrame(rows, columns=["timestamp", "vm_id", "load"]).assign(
        timestamp=lambda d: pd.to_datetime(d["timestamp"]))


def test_duplicates_and_off_grid_samples_are_averaged_and_counted():
    """Two samples in one hour (a duplicate and an off-grid one) average; both are reported."""
    hist = _frame([("2026-06-01 00:00", "a", 0.2), ("2026-06-01 00:00", "a", 0.4),
                   ("2026-06-01 01:00", "a", 0.5), ("2026-06-01 01:30", "a", 0.7)])
    m = build_matrix(hist, 60)
    np.testing.assert_allclose(m.values, [[0.3, 0.6]])
    q = m.quality.loc["a"]
    assert (q["samples"], q["merged"], q["off_grid"], q["missing_slots"]) == (4, 2, 1, 0)


def test_gaps_stay_missing_and_the_longest_is_reported():
    """Missing hours are NaN (not zero load); the longest gap is measured in slots."""
    hist = _frame([("2026-06-01 00:00", "a", 0.5), ("2026-06-01 04:00", "a", 0.5),
                   ("2026-06-01 05:00", "a", 0.5), ("2026-06-01 07:00", "a", 0.5)])
    m = build_matrix(hist, 60)
    assert np.isnan(m.values[0, 1:4]).all() and np.isnan(m.values[0, 6])
    q = m.quality.loc["a"]
    assert (q["missing_slots"], q["longest_gap_slots"], q["span_slots"]) == (4, 3, 8)
    assert any("gaps" in line for line in describe_quality(m.quality, 60))


def test_invalid_rows_are_counted_not_silently_dropped():
    hist = _frame([("2026-06-01 00:00", "a", 0.5), ("2026-06-01 01:00", "a", np.nan)])
    m = build_matrix(hist, 60)
    assert m.quality.loc["a", "invalid"] == 1
    assert any("no valid timestamp or load" in line for line in describe_quality(m.quality, 60))


def test_quality_notes_name_the_vms_they_concern():
    """Each note names its VMs, worst first, and says how many more when there are many."""
    rows = [("2026-06-01 00:00", f"vm{i}", 0.5) for i in range(7)]
    rows += [("2026-06-01 03:00", f"vm{i}", 0.5) for i in range(7)]
    rows += [("2026-06-01 01:00", "vm3", 0.5)]          # vm3 has the shortest gap
    m = build_matrix(_frame(rows), 60)
    [gaps] = [line for line in describe_quality(m.quality, 60) if "gaps" in line]
    assert gaps.startswith("7 VMs (vm0, vm1, vm2, vm4, vm5 and 2 more) have gaps")
    hist = _frame([("2026-06-01 00:00", "only", 0.5), ("2026-06-01 01:00", "only", np.nan)])
    [invalid] = describe_quality(build_matrix(hist, 60).quality, 60)
    assert invalid.startswith("1 telemetry rows of 1 VM (only) have no valid")


def test_window_keeps_the_last_slots_and_a_common_end():
    """``max_slots`` keeps the newest slots; a VM that stopped early has trailing NaN."""
    ts = pd.date_range("2026-06-01", periods=10, freq="60min")
    hist = pd.concat([pd.DataFrame({"timestamp": ts, "vm_id": "a", "load": np.arange(10) / 10}),
                      pd.DataFrame({"timestamp": ts[:5], "vm_id": "b", "load": 0.5})])
    m = build_matrix(hist, 60, max_slots=4)
    assert m.index[0] == ts[6] and m.end == ts[-1] + pd.Timedelta(hours=1)
    np.testing.assert_allclose(m.values[0], [0.6, 0.7, 0.8, 0.9])
    assert np.isnan(m.values[1]).all()


def test_fill_gaps_prefers_the_value_one_period_earlier():
    x = np.array([[1.0, 2.0, 3.0, 1.0, np.nan, 3.0, np.nan, np.nan]])
    np.testing.assert_allclose(fill_gaps(x, period=3), [[1, 2, 3, 1, 2, 3, 1, 2]])
    np.testing.assert_allclose(fill_gaps(np.array([[np.nan, 1.0, np.nan, 3.0]])), [[1, 1, 2, 3]])


@pytest.mark.parametrize("start", ["2026-06-01 00:00", "2026-06-01 00:25"])
def test_hourly_aggregation_aligns_to_whole_hours(start):
    """5-minute slots average into whole hours whatever the first slot; partial hours too."""
    index = pd.date_range(start, periods=30, freq="5min")
    values = np.arange(30, dtype=float)[None, :]
    h = aggregate_matrix(matrix_from_values(values, index, 5), 60)
    expected = pd.Series(values[0], index=index).resample("60min").mean()
    assert list(h.index) == list(expected.index)
    np.testing.assert_allclose(h.values[0], expected.to_numpy())
