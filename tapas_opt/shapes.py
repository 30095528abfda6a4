"""Checks that a JSON file or a table tapas-opt reads back (another command's output) has the
shape its reader needs: a file edited by hand, cut short or written by something else is bad
input naming the file, the key or column and what to do (exit 2), never a crash.

A shape is a type or a tuple of types (``NUMBER``, ``TEXT``, ``OPTIONAL``...), a dict of
optional keys and their shapes (the value must be a JSON object), or a one-item list holding
the shape of every item (the value must be a JSON list)::

    check_shape(summary, {"unplaced": [dict], "vms": dict}, "plan/summary.json", "re-run place")
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tapas_opt.errors import InventoryError, Problem
from tapas_opt.inventory.load import line_mapper, remember_rows_read

NUMBER = (int, float)
TEXT = (str,)
OPTIONAL = (type(None),)
"""Add to a shape for a key that may be ``null``: ``NUMBER + OPTIONAL``."""

_NAMES = {dict: "a JSON object", list: "a list", str: "text", int: "a number", float: "a number",
          bool: "true or false", type(None): "null"}


def read_json_value(path: Path | str, shape, hint: str, missing: object = None):
    """The JSON value in ``path``, checked against ``shape``; ``missing`` when the file does not
    exist (None: that is a problem too). Unreadable text or another shape raises."""
    path = Path(path)
    if missing is not None and not path.exists():
        return missing
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InventoryError([Problem("unreadable_file", str(path), f"cannot read it: {exc}", hint)]) from exc
    check_shape(data, shape, path, hint)
    return data


def read_table_value(path: Path | str, hint: str) -> pd.DataFrame:
    """A CSV or Parquet output read back (by suffix), or :class:`InventoryError` naming the file
    when it cannot be read: the table counterpart of :func:`read_json_value`."""
    path = Path(path)
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InventoryError([Problem("unreadable_file", str(path), f"cannot read it: {exc}", hint)]) from exc
    remember_rows_read(path, len(table))
    return table


def check_shape(value, shape, file: Path | str, hint: str) -> None:
    """Raise :class:`InventoryError` listing every place where ``value`` differs from ``shape``."""
    problems = shape_problems(value, shape, str(file), hint)
    if problems:
        raise InventoryError(problems)


def shape_problems(value, shape, file: str, hint: str, key: str = "") -> list[Problem]:
    """The problems of ``value`` against ``shape`` (see the module docstring), ``key`` its path."""
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return [_wrong(value, (dict,), file, hint, key)]
        return [p for k, sub in shape.items() if k in value
                for p in shape_problems(value[k], sub, file, hint, f"{key}.{k}" if key else k)]
    if isinstance(shape, list):
        if not isinstance(value, list):
            return [_wrong(value, (list,), file, hint, key)]
        return [p for i, item in enumerate(value) for p in shape_problems(item, shape[0], file, hint, f"{key}[{i}]")]
    types = shape if isinstance(shape, tuple) else (shape,)
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        return [_wrong(value, types, file, hint, key)]
    return []


def _wrong(value, types, file: str, hint: str, key: str) -> Problem:
    want = " or ".join(dict.fromkeys(_NAMES.get(t, t.__name__) for t in types))
    got = _NAMES.get(type(value), type(value).__name__)
    if isinstance(value, (str, int, float)):
        got += f" ({_short(value)})"
    what = "the value is" if key else "the file holds"
    return Problem("bad_value", file, f"{what} {got}, not {want}", hint, column=key or None)


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def numeric_columns(frame: pd.DataFrame, columns, file: Path | str, hint: str, first_line: int | None = 2
                    ) -> pd.DataFrame:
    """``frame`` with ``columns`` (those it has) as numbers; a cell that holds text raises,
    naming its line (``first_line`` = the line of the first row, 2 for a CSV read as a whole,
    whose blank lines and cells that span lines are counted; None for files without lines,
    such as Parquet, whose row is named instead) and column. Blank cells stay missing."""
    out, problems = numeric_cells(frame, columns, file, hint, first_line)
    if problems:
        raise InventoryError(problems)
    return out


def numeric_cells(frame: pd.DataFrame, columns, file: Path | str, hint: str, first_line: int | None = 2
                  ) -> tuple[pd.DataFrame, list[Problem]]:
    """:func:`numeric_columns` for a reader that lists these problems with its others: the frame
    (a text cell becomes missing) and the problems, nothing raised."""
    out = frame.copy()
    problems = []
    line_of = _line_mapper(file, first_line)
    for col in [c for c in columns if c in frame.columns]:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna()
        problems += [_cell(file, i, col, frame[col].iloc[i], "is not a number", hint, line_of)
                     for i in bad.to_numpy().nonzero()[0]]
        out[col] = values
    return out, problems


def time_column(frame: pd.DataFrame, column: str, file: Path | str, hint: str, first_line: int | None = 2
                ) -> pd.DataFrame:
    """``frame`` with ``column`` as timestamps; a cell that is no time raises (see
    :func:`numeric_columns`)."""
    out = frame.copy()
    values = pd.to_datetime(frame[column], errors="coerce", format="mixed")
    bad = values.isna() & frame[column].notna()
    line_of = _line_mapper(file, first_line)
    problems = [_cell(file, i, column, frame[column].iloc[i], "is not a time", hint, line_of)
                for i in bad.to_numpy().nonzero()[0]]
    if problems:
        raise InventoryError(problems)
    out[column] = values
    return out


def _line_mapper(file, first_line: int | None):
    """Row position -> line (None: the file has no lines): a whole CSV's lines as an editor
    shows them (:func:`tapas_opt.inventory.load.line_mapper`), else ``first_line`` + row."""
    if first_line is None:
        return None
    if first_line == 2 and str(file).endswith(".csv"):
        return line_mapper(Path(file))
    return lambda i: i + first_line


def _cell(file, i: int, col: str, value, what: str, hint: str, line_of) -> Problem:
    where = "" if line_of is not None else f"row {i + 1}: "
    return Problem("bad_value", str(file), f"{where}{value!r} {what}", hint,
                   line=None if line_of is None else line_of(i), column=col)
