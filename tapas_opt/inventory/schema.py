"""Column schemas of the inventory files, as pandera models.

Validation runs with ``lazy=True`` so that every problem of a file is collected at once; the
failures are translated into :class:`~tapas_opt.errors.Problem` records with the file, line
and column (see :func:`problems_from_schema_errors`). Cross-file rules (a row naming an unknown
aisle, a VM asking for more GPUs than any server has) live in :mod:`tapas_opt.inventory.load`.
Extra columns are allowed and kept (``strict=False``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from functools import lru_cache

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from tapas_opt.errors import Problem, missing_columns


class InputSchema(pa.DataFrameModel):
    """Base of every input file's schema: types coerced, extra columns kept."""

    class Config:
        coerce = True
        strict = False


class AislesSchema(InputSchema):
    aisle_id: Series[str] = pa.Field(unique=True)
    airflow_limit_cfm: Series[float] = pa.Field(gt=0, le=1e9)


class RowsSchema(InputSchema):
    row_id: Series[str] = pa.Field(unique=True)
    aisle_id: Series[str]
    power_limit_kw: Series[float] = pa.Field(gt=0, le=1e9)


class ServersSchema(InputSchema):
    server_id: Series[str] = pa.Field(unique=True)
    row_id: Series[str]
    rack: Series[str]
    gpus: Series[int] = pa.Field(gt=0, le=64)
    idle_power_kw: Series[float] = pa.Field(ge=0, le=1000)
    max_power_kw: Series[float] = pa.Field(gt=0, le=1000)
    idle_airflow_cfm: Series[float] = pa.Field(ge=0, le=1e6)
    max_airflow_cfm: Series[float] = pa.Field(gt=0, le=1e6)
    inlet_offset_c: Series[float] = pa.Field(ge=-30, le=30)
    # Optional per-server thermal and GPU power coefficients (override datacenter.yaml).
    gpu_idle_w: Series[float] | None = pa.Field(ge=0, le=5000, nullable=True)
    gpu_max_w: Series[float] | None = pa.Field(gt=0, le=5000, nullable=True)
    gpu_temp_intercept_c: Series[float] | None = pa.Field(ge=-50, le=100, nullable=True)
    gpu_temp_c_per_w: Series[float] | None = pa.Field(ge=0, le=5, nullable=True)


class VmsSchema(InputSchema):
    vm_id: Series[str] = pa.Field(unique=True)
    kind: Series[str] = pa.Field(isin=["iaas", "saas"])
    customer: Series[str] = pa.Field(nullable=True)
    endpoint: Series[str] = pa.Field(nullable=True)
    gpus: Series[int] = pa.Field(gt=0, le=64)
    server_id: Series[str] = pa.Field(nullable=True)


class TelemetrySchema(InputSchema):
    vm_id: Series[str]
    load: Series[float] = pa.Field(ge=0, le=1)


class OutsideSchema(InputSchema):
    temp_c: Series[float] = pa.Field(ge=-80, le=70)


SCHEMAS: dict[str, type[InputSchema]] = {
    "aisles": AislesSchema,
    "rows": RowsSchema,
    "servers": ServersSchema,
    "vms": VmsSchema,
    "telemetry": TelemetrySchema,
    "outside": OutsideSchema,
}


@dataclass(frozen=True)
class Bounds:
    """The range of one numeric column: ``lo``/``hi`` None when unbounded on that side."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False

    def admits(self, value) -> bool:
        """Is ``value`` a finite number (whole, for an integer column) within the range?"""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.integer and not float(value).is_integer():
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return self.hi is None or (value < self.hi if self.hi_open else value <= self.hi)


@lru_cache(maxsize=None)
def column_bounds(table: str, column: str) -> Bounds:
    """The range a column of an inventory table accepts, read from its schema: figures given
    elsewhere that end up in the column (a what-if scenario's added server hardware) are checked
    against the same numbers, so the two cannot drift apart."""
    col = SCHEMAS[table].to_schema().columns[column]
    lo = hi = None
    lo_open = hi_open = False
    for check in col.checks:
        stats = check.statistics or {}
        if check.name in ("greater_than", "greater_than_or_equal_to"):
            lo, lo_open = stats["min_value"], check.name == "greater_than"
        elif check.name in ("less_than", "less_than_or_equal_to"):
            hi, hi_open = stats["max_value"], check.name == "less_than"
        elif check.name == "in_range":
            lo, hi = stats["min_value"], stats["max_value"]
            lo_open, hi_open = not stats.get("include_min", True), not stats.get("include_max", True)
    return Bounds(lo, hi, lo_open, hi_open, str(col.dtype) == "int64")


_CHECK_TEXT = [
    (r"greater_than_or_equal_to\((.+)\)", "must be >= {0}"),
    (r"greater_than\((.+)\)", "must be > {0}"),
    (r"less_than_or_equal_to\((.+)\)", "must be <= {0}"),
    (r"less_than\((.+)\)", "must be < {0}"),
    (r"in_range\((.+), (.+)\)", "must be between {0} and {1}"),
    (r"isin\((.+)\)", "must be one of {0}"),
    (r"field_uniqueness|unique", "is given more than once: ids must be unique"),
    (r"not_nullable", "is empty or NaN: a value is required"),
    (r"finite", "must be a finite number"),
    (r"coerce_dtype\('(.+)'\)|dtype\('(.+)'\)", "cannot be read as {0}"),
]

_CODES = {
    "field_uniqueness": "duplicate_id",
    "not_nullable": "missing_value",
    "coerce_dtype": "bad_type",
    "dtype": "bad_type",
    "column_in_dataframe": "missing_column",
}


def _describe(check: str) -> tuple[str, str]:
    """Map a pandera check name to a stable problem code and a sentence."""
    name = check.split("(")[0]
    code = _CODES.get(name, "out_of_range")
    for pattern, text in _CHECK_TEXT:
        m = re.fullmatch(pattern, check)
        if m:
            args = [g for g in m.groups() if g is not None]
            if "coerce_dtype" in check or check.startswith("dtype"):
                kind = {"float64": "a number", "int64": "a whole number"}.get(args[0], args[0])
                return code, text.format(kind)
            return code, text.format(*args)
    return code, f"fails check {check}"


def problems_from_schema_errors(
    failures: pd.DataFrame, file: str, line_of: "callable", raw: pd.DataFrame | None = None
) -> list[Problem]:
    """Translate pandera's ``failure_cases`` table into Problems.

    A value that cannot be read as a number also fails the range checks of its column with a
    TypeError; those echoes are dropped so that each bad cell is reported once. ``raw`` (the
    cells as read) tells an empty cell from text such as 'nan' or 'NA' that the number parser
    turned into a missing value: that one is quoted, not called empty.
    """
    problems: list[Problem] = []
    bad_type_cells: set[tuple[str, object]] = set()
    for rec in failures.to_dict("records"):
        check = str(rec["check"])
        column = rec.get("column")
        index = rec.get("index")
        if check == "column_in_dataframe":
            found = raw.columns if raw is not None else []
            problems += missing_columns(file, found, [str(rec["failure_case"])],
                                        "add the column (see docs/inventory-format.md)")
            continue
        if index is None or (isinstance(index, float) and pd.isna(index)):
            continue  # a column-wide echo of cell failures already reported
        code, text = _describe(check)
        if code == "bad_type":
            if (column, index) in bad_type_cells:
                continue
            bad_type_cells.add((column, index))
        elif (column, index) in bad_type_cells:
            continue
        value = rec["failure_case"]
        if value is None or (isinstance(value, float) and pd.isna(value)):
            text_cell = _cell_text(raw, index, column)
            if text_cell:
                message = f"value {text_cell!r} is not a number: a value is required"
            else:
                message = "the cell is empty: a value is required" if code in ("missing_value", "bad_type") else f"empty {text}"
            code = "missing_value"
        else:
            message = f"value {value!r} {text}"
        problems.append(Problem(code, file, message, _cell_hint(code, column, value), line_of(index), column))
    return problems


def _cell_hint(code: str, column, value) -> str:
    """What to do about one bad cell: the usual slips are named (a whole number written 8.0,
    a load in percent)."""
    if code == "bad_type" and isinstance(value, str) and re.fullmatch(r"\s*-?\d+\.0*\s*", value):
        return (f"write {value.strip().split('.')[0]}, without the decimals (spreadsheets and pandas write "
                f"{value.strip()} when the column has an empty cell)")
    if code == "out_of_range" and column == "load" and isinstance(value, (int, float)) and 1 < value <= 100:
        return "loads are fractions of full load, 0..1: in percent? divide by 100"
    return "fix or remove this row"


def with_column_hint(problems: list[Problem], hint: str) -> list[Problem]:
    """The problems with ``hint`` on missing columns: for a file documented elsewhere than in
    docs/inventory-format.md, which their default hint names."""
    return [replace(p, hint=hint) if p.code == "missing_column" else p for p in problems]


def _reads_as_float(cell) -> bool:
    """Does the schema's number coercion accept this cell (as ``float()`` does)?"""
    try:
        float(cell)
    except (TypeError, ValueError):
        return False
    return True


def _cell_text(raw: pd.DataFrame | None, index, column) -> str:
    """The cell as read (stripped), or '' when it was empty or is unknown."""
    if raw is None or column not in raw.columns or index not in raw.index:
        return ""
    cell = raw.at[index, column]
    return cell.strip() if isinstance(cell, str) else ""


def _model(schema: str | type[InputSchema]) -> type[InputSchema]:
    """An inventory table's schema by name, or a schema given as such (another input file's)."""
    return SCHEMAS[schema] if isinstance(schema, str) else schema


def validate_frame(df: pd.DataFrame, name: str | type[InputSchema], file: str, line_of) -> tuple[pd.DataFrame, list[Problem]]:
    """Validate and coerce one inventory frame (``name``: its table, or a schema of another
    input file); return it (rows intact) and its problems.

    A cell that is not a number makes its column's range checks fail as a whole (a TypeError),
    which would hide the column's other bad values: so the columns with such cells are checked
    again without them, and every problem is reported at once."""
    schema = _model(name)
    try:
        return schema.validate(df, lazy=True), []
    except pa.errors.SchemaErrors as exc:
        problems = problems_from_schema_errors(exc.failure_cases, file, line_of, df)
    typed = {c for c, col in schema.to_schema().columns.items() if str(col.dtype) in ("int64", "float64")}
    unreadable = {p.column for p in problems if p.code == "bad_type" and p.column in typed}
    if unreadable:
        rest = df.copy()
        bad_rows = pd.Series(False, index=df.index)
        for col in unreadable:
            # Cells the coercion failed on; 'nan' parses (to a missing value, reported as such).
            bad_rows |= rest[col].notna() & ~rest[col].map(_reads_as_float)
            rest[col] = pd.to_numeric(rest[col], errors="coerce")
        rest = rest[~bad_rows]
        seen = {(p.column, p.line) for p in problems}
        try:
            schema.validate(rest, lazy=True)
        except pa.errors.SchemaErrors as again:
            problems += [p for p in problems_from_schema_errors(again.failure_cases, file, line_of, df)
                         if (p.column, p.line) not in seen]
    return df, problems


def typed_cells(df: pd.DataFrame, name: str | type[InputSchema], problems: list[Problem], line_of
                ) -> pd.DataFrame | None:
    """The frame with the cells that have problems blanked and its number columns read as
    numbers (blank: NaN), unvalidated: the rules across columns, rows and files (a VM larger
    than every server, max power below idle) run on every good cell, so that a bad cell hides
    nothing but itself, and compare false where a cell is blank. A problem of a whole row (no
    column) or of its id (empty, given twice) drops the row. None if a column the schema
    requires is missing."""
    schema = _model(name).to_schema()
    if any(col not in df.columns for col, spec in schema.columns.items() if spec.required):
        return None
    ids = {col for col, spec in schema.columns.items() if spec.unique}
    row_of_line = {line_of(i): i for i in df.index}
    out, dropped = df.copy(), set()
    for p in problems:
        idx = row_of_line.get(p.line) if p.line is not None else None
        if idx is None:
            continue
        if p.column in out.columns and p.column not in ids:
            out[p.column] = out[p.column].astype(object)
            out.at[idx, p.column] = None
        else:
            dropped.add(idx)
    out = out.drop(index=sorted(dropped))
    for col, spec in schema.columns.items():
        if col in out.columns and str(spec.dtype) in ("int64", "float64"):
            out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    return out

