"""The one timestamp reader: ISO 8601 (as written by people and tools) or refused, never guessed."""

import pandas as pd
import pytest

from tapas_opt.timestamps import parse_timestamp, parse_timestamps


@pytest.mark.parametrize("text", [
    "2026-05-04 13:00:00", "2026-05-04T13:00:00Z", "2026-05-04t13:00:00z", "2026-05-04 13:00",
    "2026-05-04T13:00", " 2026-05-04 13:00:00 ", "2026-05-04T15:00:00+02:00", "2026-05-04 13:00:00+0000",
    "2026-05-04T13:00:00.000Z", "20260504T130000", "2026-05-04T14:00:00+01:00",
])
def test_iso_forms_read_as_the_same_utc_time(text):
    assert parse_timestamp(text) == pd.Timestamp("2026-05-04 13:00")


@pytest.mark.parametrize("text", ["01/10/2025 10:00", "10/01/2025", "now", "today", "Sep 21", "May 4 2026 13:00",
                                  "1714827600", "3025-10-19 23:00", "1999-12-31 23:00", "", "2026-13-01",
                                  "2026-05-04 13:0", "2026-5-4", "2026-05-04 1:00", "2026-05-04 13:00 +02:00",
                                  "2026-05-04 13:00:00 UTC", "2026-05-04T13:00:00,5"])
def test_anything_else_is_refused(text):
    assert parse_timestamp(text) is None


def test_a_column_reports_each_bad_cell_with_its_reason():
    times, reasons = parse_timestamps(pd.Series(["2026-05-04 13:00", "04/05/2026", None, "2101-01-01"]))
    assert times.iloc[0] == pd.Timestamp("2026-05-04 13:00") and times.iloc[1:].isna().all()
    assert reasons.isna().tolist() == [True, False, False, False]
    assert "ISO 8601" in reasons.iloc[1] and "2000..2099" in reasons.iloc[3]
    numbers, why = parse_timestamps(pd.Series([1714827600000, 1714831200000]))
    assert numbers.isna().all() and "is a number" in why.iloc[0]


def test_iso_week_and_ordinal_dates_are_named_as_such():
    """They are ISO 8601, so 'not an ISO 8601 date-time' was wrong: the message says which
    forms are read."""
    _, reasons = parse_timestamps(pd.Series(["2026-W23-2T15:00", "2026-157", "2026-06-02 15:00"]))
    assert [str(r).split(":")[0] for r in reasons[:2]] == ["is an ISO 8601 week or ordinal date"] * 2
    assert pd.isna(reasons[2])
