"""Outside temperature from EnergyPlus weather files (``.epw``), the one reader that
``generate`` and the simulator's weather shift share.

An EPW file has 8 header lines, then one line per hour of a typical year; column 7 (index 6) is
the dry-bulb temperature in degrees C.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tapas_opt.errors import InventoryError, Problem
from tapas_opt.timestamps import describe

EPW_HEADER_LINES = 8
DRY_BULB_COLUMN = 6
PLAUSIBLE_C = (-90.0, 70.0)
HOURS_PER_YEAR = 8760
EPW_MISSING_C = 99.9
HINT = "give an EnergyPlus .epw file (8 header lines, then hourly rows; dry-bulb C in column 7)"


def read_epw_dry_bulb(path: str | Path) -> np.ndarray:
    """Hourly dry-bulb temperatures (C) of an EPW file, in file order.

    Raises :class:`InventoryError` (file, line, what is wrong) when the file cannot be read,
    has no numeric column 7, or holds temperatures no weather station records."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, skiprows=EPW_HEADER_LINES, header=None)
    except Exception as exc:  # noqa: BLE001 - a reader failure is a user-facing problem
        raise InventoryError([Problem("unreadable_file", str(path), f"cannot read the weather file: {exc}", HINT)]) from exc
    if DRY_BULB_COLUMN not in frame.columns or len(frame) < 24:
        raise InventoryError([Problem("bad_weather_file", str(path),
                                      f"{len(frame)} data row(s) with {frame.shape[1]} column(s): not an EPW file", HINT)])
    if len(frame) < HOURS_PER_YEAR:
        # Hours are read by their place in the year: a shorter file would wrap around and put
        # January's weather on a July day.
        raise InventoryError([Problem("bad_weather_file", str(path),
                                      f"{len(frame)} hourly rows, not a year ({HOURS_PER_YEAR})",
                                      "give a whole year of hourly weather (an EPW typical year)")])
    temp = pd.to_numeric(frame[DRY_BULB_COLUMN], errors="coerce").to_numpy(float)
    lo, hi = PLAUSIBLE_C
    bad = np.flatnonzero(~np.isfinite(temp) | (temp < lo) | (temp > hi))
    if len(bad):
        problems = [Problem("bad_value", str(path), f"dry-bulb temperature {describe(frame.at[i, DRY_BULB_COLUMN])} is not a "
                            f"number in {lo:g}..{hi:g} C",
                            "99.9 is EPW's mark for a missing reading: fill the hour in (e.g. from its neighbours)"
                            if temp[i] == EPW_MISSING_C else HINT, line=int(i) + EPW_HEADER_LINES + 1, column="7")
                    for i in bad]
        raise InventoryError(problems)
    return temp


def day_of_year_hour(month_day: str) -> int:
    """Hour of the (non-leap) weather year at which month-day ``month_day`` ("MM-DD") begins.

    Raises :class:`ValueError` with a plain message for anything but a real calendar day."""
    try:
        month, day = (int(x) for x in str(month_day).split("-"))
        when = pd.Timestamp(2025, month, day)
    except (TypeError, ValueError):
        raise ValueError(f"{month_day!r} is not a month-day of the year like '07-13'") from None
    return int((when - pd.Timestamp(2025, 1, 1)).total_seconds() // 3600)


def shifted_hours(temp: np.ndarray, month_day: str, hours_before: int, count: int) -> np.ndarray:
    """``count`` hourly values starting ``hours_before`` hours before month-day ``month_day``
    ("MM-DD") of the weather year, wrapping around the year's end."""
    first = day_of_year_hour(month_day)
    return temp[(first - hours_before + np.arange(count)) % len(temp)]
