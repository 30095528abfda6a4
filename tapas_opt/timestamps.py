"""The one reader of timestamps in users' files: ISO 8601 only, in UTC without a time zone.

Anything else is refused rather than guessed. pandas' own guessing reads ``01/10/2025`` as
January 10th in one row and ``22/09/2025`` as September 22nd in the next, takes ``now`` as the
current clock and integer Parquet columns as nanoseconds since 1970: each a silent misreading of
the telemetry a plan is made from. Times with an offset (``+02:00``, ``Z``) are converted to UTC;
times without one are taken as UTC.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

EARLIEST = pd.Timestamp("2000-01-01")
LATEST = pd.Timestamp("2100-01-01")
ISO_HINT = "use ISO 8601, e.g. 2026-05-04 13:00:00 (UTC, or with an offset like +02:00)"
_ISO = re.compile(
    # extended (2026-05-04 13:00:00.5) or basic (20260504T130000) form, then an optional offset;
    # every field has its full number of digits, so '13:0' or '2026-5-4' is refused, not guessed.
    r"(?:\d{4}-\d{2}-\d{2}(?:[ T]\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?)?"
    r"|\d{8}(?:T\d{2}(?:\d{2}(?:\d{2}(?:\.\d+)?)?)?)?)"
    r"(?:Z|[+-]\d{2}(?::?\d{2})?)?")


_ISO_WEEK_OR_ORDINAL = re.compile(r"\d{4}-?(?:W\d{2}-?\d?|\d{3})(?:T.*)?")
"""2026-W23-2, 2026W232 and 2026-157 (with a time): ISO 8601 too, but not read (said so)."""


def parse_timestamps(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse a column of timestamps.

    Returns the times (``datetime64[ns]``, UTC, no time zone; NaT where bad) and, per cell, why
    it is bad (missing where it is good; an empty cell is bad too), for the message.
    """
    if pd.api.types.is_datetime64_any_dtype(raw):
        times = pd.to_datetime(raw, utc=True)
        why = "is not a date-time"
    elif pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        empty = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
        return empty, pd.Series("is a number, not a date-time (seconds since 1970?)", index=raw.index, dtype=object)
    else:
        # Surrounding spaces and RFC 3339's lower-case 't' and 'z' are accepted.
        text = raw.astype("string").str.strip().str.upper()
        iso = text.str.fullmatch(_ISO).fillna(False).astype(bool)
        times = pd.to_datetime(text.where(iso), errors="coerce", utc=True, format="ISO8601")
        why = "is not an ISO 8601 date-time"
    naive = times.dt.tz_convert(None)
    out_of_range = naive.notna() & ((naive < EARLIEST) | (naive >= LATEST))
    reasons = pd.Series(None, index=raw.index, dtype=object)
    reasons[naive.isna()] = why
    if why.startswith("is not an ISO"):
        other = naive.isna() & text.str.fullmatch(_ISO_WEEK_OR_ORDINAL).fillna(False).astype(bool)
        reasons[other] = "is an ISO 8601 week or ordinal date: only calendar dates (YYYY-MM-DD) are read"
    reasons[out_of_range] = f"is outside the years {EARLIEST.year}..{LATEST.year - 1}"
    values = naive.where(reasons.isna()).astype("datetime64[ns]")
    return values, reasons


def parse_timestamp(value) -> pd.Timestamp | None:
    """One timestamp (``start`` in datacenter.yaml, ``--at``), or None if it is not ISO 8601 in
    the accepted years."""
    times, reasons = parse_timestamps(pd.Series([value], dtype=object))
    return None if pd.notna(reasons.iloc[0]) else pd.Timestamp(times.iloc[0])


def describe(value) -> str:
    """A cell for a message: empty cells say so."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return "(empty)"
    return repr(value.item() if hasattr(value, "item") else value)
