"""Load an inventory directory into validated frames, collecting every problem at once.

The format is documented in ``docs/inventory-format.md``. Each table may be CSV or Parquet
(``rows.csv`` or ``rows.parquet``). Extra columns are kept. Line numbers in problems are the
line a text editor shows for CSV (header = line 1) and the 1-based row number for Parquet.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from tapas_opt.config import EMPTY_HISTORY_START, HISTORY_WEEKS, DatacenterConfig, load_config
from tapas_opt.errors import InventoryError, Problem, cap_problems, first_problems, missing_columns
from tapas_opt.timestamps import ISO_HINT, describe, parse_timestamp, parse_timestamps
from tapas_opt.inventory.schema import typed_cells, validate_frame

TABLES = ("aisles", "rows", "servers", "vms", "telemetry", "outside")
OPTIONAL_TABLES = {"outside"}


@dataclass
class Inventory:
    """A validated inventory: the datacenter config and one frame per table."""

    root: Path
    config: DatacenterConfig
    aisles: pd.DataFrame
    rows: pd.DataFrame
    servers: pd.DataFrame
    vms: pd.DataFrame
    telemetry: pd.DataFrame
    outside: pd.DataFrame | None = None
    warnings: list[Problem] = field(default_factory=list)

    @property
    def pending_vms(self) -> pd.DataFrame:
        """VMs with an empty ``server_id``: the requests to place."""
        return self.vms[self.vms["server_id"].isna()]

    @property
    def running_vms(self) -> pd.DataFrame:
        return self.vms[self.vms["server_id"].notna()]


def find_table(root: Path, name: str) -> Path | None:
    for suffix in (".csv", ".parquet"):
        path = root / f"{name}{suffix}"
        if path.exists():
            return path
    return None


def csv_row_line(index) -> int:
    """The line of a CSV's data row ``index`` when nothing but its header comes before the rows:
    the default of functions that name lines without knowing the file (see :func:`line_mapper`)."""
    return int(index) + 2


def table_lines(root: Path, name: str):
    """(file name, row -> line) of an inventory table, for problems found after loading (a
    configuration of vms.csv that the catalogue lacks): lines as the user's editor shows them."""
    path = find_table(Path(root), name)
    return (path.name, line_mapper(path)) if path is not None else (f"{name}.csv", csv_row_line)


_ROWS_READ: dict[str, int] = {}
"""Data rows of each CSV :func:`read_table` read, keyed by resolved path (the last read wins)."""
_ROW_LINES: dict[str, np.ndarray | None] = {}
"""File line of each data row of those CSVs that hold blank lines (pandas skips them) or quoted
cells over several lines, where row + 2 is not the line any more; None for the others; found
when a line is first asked for."""

BLANK_SCAN_MAX_BYTES = 256 * 2 ** 20
"""CSVs larger than this are not scanned for their rows' lines (their rows are numbered row + 2)."""


def line_mapper(path: Path):
    """Row index -> the line a user's editor shows: CSV rows count the header (and the blank
    lines before them); Parquet rows count from 1."""
    path = Path(path)
    offset = 2 if path.suffix == ".csv" else 1
    key = str(path.resolve())

    def line_of(index):
        if index is None:
            return None
        lines = _row_lines(path, key) if offset == 2 else None  # at call time: the file may be read after
        return int(lines[int(index)]) if lines is not None and int(index) < len(lines) else int(index) + offset
    return line_of


def _row_lines(path: Path, key: str) -> np.ndarray | None:
    """The lines of a read CSV's rows when they are not row + 2 (scanned once, only when a problem
    needs a line: reading an inventory pays nothing for it)."""
    if key not in _ROW_LINES:
        _ROW_LINES[key] = _scan_row_lines(path, _ROWS_READ.get(key))
    return _ROW_LINES[key]


def _scan_row_lines(path: Path, n_rows: int | None) -> np.ndarray | None:
    """The line of each data row when the CSV has blank lines pandas skipped or quoted cells
    that span lines (a note with a line break), else None (row + 2 is right)."""
    try:
        if n_rows is None or path.stat().st_size > BLANK_SCAN_MAX_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    blank = b"\n\n" in data or b"\n\r\n" in data or data.lstrip(b"\xef\xbb\xbf").startswith((b"\n", b"\r\n"))
    if not blank and b'"' not in data:
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    reader = csv.reader(io.StringIO(text, newline=""))
    starts, end = [], 0
    for record in reader:
        if record:  # a blank line is an empty record (pandas skips it)
            starts.append(end + 1)
        end = reader.line_num
    return np.asarray(starts[1:]) if len(starts) - 1 == n_rows else None  # header first


def listed_twice(frame: pd.DataFrame, file: str, line_of, hint: str = "keep one row per VM",
                 column: str = "vm_id") -> tuple[pd.Series, list[Problem]]:
    """Which rows repeat an id of ``column`` given above them, and one ``duplicate_id`` per id
    listed more than once, on its second line: in a file of one row per VM (a plan, configs,
    caps), which row would win is not the user's intent."""
    twice = frame[column].duplicated(keep="first") & frame[column].notna()
    first_row = frame.index.to_series().groupby(frame[column]).first()
    problems = [Problem("duplicate_id", file, f"{column} {v!r} is listed {len(idx) + 1} times (first on line "
                        f"{line_of(first_row[v])})", hint, line_of(idx[0]), column)
                for v, idx in frame[twice].groupby(column, sort=False).groups.items()]
    return twice, problems


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV (every cell as text, empty cells as missing) or a Parquet file. Text cells lose
    the spaces around them ('s3 ' is the server s3, not another id that looks the same); a cell
    of spaces is empty."""
    if path.suffix == ".parquet":
        df = pd.read_parquet(path).reset_index(drop=True)
        for column in df.columns[(df.dtypes == object) | (df.dtypes == "string")]:
            # an empty text cell is missing, as in a CSV (a pending VM's server_id "" was an unknown server)
            df[column] = df[column].map(lambda x: (x.strip() or None) if isinstance(x, str) else x)
        return df
    df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], skipinitialspace=True)
    df = df.apply(lambda cells: cells.str.strip().replace("", None))
    if not isinstance(df.index, pd.RangeIndex):
        # pandas takes the first cells as an index when every line has more cells than the
        # header, shifting every column by one: refuse rather than read the wrong columns.
        raise ValueError(f"the lines have more cells than the header's {len(df.columns)} columns "
                         "(a trailing comma, or an unquoted comma in a cell?)")
    df.columns = [c.strip() for c in df.columns]
    remember_rows_read(path, len(df))
    return df


def remember_rows_read(path: Path, rows: int) -> None:
    """Note that ``rows`` data rows were just read from the CSV ``path`` (blank lines skipped),
    so that :func:`line_mapper` can tell their lines when the file has blank lines or cells
    that span lines. Readers other than :func:`read_table` call it too."""
    key = str(Path(path).resolve())
    _ROWS_READ[key] = rows
    _ROW_LINES.pop(key, None)  # (re)scanned when a line is asked for


def unreadable(path: Path, exc: Exception, file: str | None = None) -> Problem:
    """The problem of a table the reader fails on (malformed CSV, not UTF-8, not Parquet)."""
    if isinstance(exc, pd.errors.EmptyDataError):
        return Problem("unreadable_file", file or path.name, "is empty: not even a header line",
                       "give the header line, then the rows")
    if isinstance(exc, UnicodeDecodeError):
        hint = "save it as UTF-8 (tapas-opt reads UTF-8 CSV, with or without BOM)"
    elif path.suffix == ".parquet":
        hint = "give a Parquet file written by pandas or pyarrow, or the table as CSV"
    else:
        hint = "quote cells that contain commas, and give every line as many cells as the header"
        if isinstance(exc, pd.errors.ParserError):
            said = _csv_parser_error(str(exc))
            if said is not None:
                return Problem("unreadable_file", file or path.name, said[0], hint, line=said[1])
    return Problem("unreadable_file", file or path.name, f"cannot be read: {exc}", hint)


def _csv_parser_error(message: str) -> tuple[str, int] | None:
    """pandas' two common CSV parser errors in plain words, with the file's line (1-based)."""
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if found:
        header, line, cells = (int(g) for g in found.groups())
        return f"cannot be read: this line has {cells} cells, the header {header}", line
    found = re.search(r"EOF inside string starting at row (\d+)", message)
    if found:  # pandas counts the rows of this message from 0, the header included
        return "cannot be read: a quote (\") opened on this line is never closed", int(found.group(1)) + 1
    return None


def read_user_table(path: Path | str, file: str | None = None) -> pd.DataFrame:
    """:func:`read_table` for a file given on its own (a queue, actual loads, profiles): a file
    the reader fails on, or a CSV separated by ';', raises :class:`InventoryError` naming it."""
    path = Path(path)
    separated = wrong_separator(path)
    if separated is not None:
        raise InventoryError([replace(separated, file=file or path.name)])
    try:
        return read_table(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a user-facing problem
        raise InventoryError([unreadable(path, exc, file)]) from None


def wrong_separator(path: Path) -> Problem | None:
    """A CSV whose header is separated by ';' (a spreadsheet's locale export) or tabs, with no
    ',': every later check on the file would only cascade from it."""
    if path.suffix != ".csv":
        return None
    try:
        with open(path, encoding="utf-8-sig") as fh:
            header = fh.readline()
    except (OSError, UnicodeDecodeError):
        return None
    for sep, name in ((";", "';'"), ("\t", "tabs")):
        if sep in header and "," not in header:
            return Problem("wrong_separator", path.name, f"the columns are separated by {name}, not ','",
                           "save the file as comma-separated CSV")
    return None


def _parse_timestamps(df: pd.DataFrame, file: str, line_of, problems: list[Problem]) -> pd.DataFrame:
    """Parse ``timestamp`` (ISO 8601 only, :mod:`tapas_opt.timestamps`; time zones are
    converted to UTC and dropped)."""
    if "timestamp" not in df.columns:
        problems += missing_columns(file, df.columns, ["timestamp"], "add an ISO 8601 timestamp column")
        return df
    raw = df["timestamp"]
    parsed, reasons = parse_timestamps(raw)
    bad = reasons.notna()
    problems += first_problems("bad_timestamp", file, df.index[bad], lambda idx: Problem(
        "bad_timestamp", file, f"timestamp {describe(raw[idx])} {reasons[idx]}", ISO_HINT, line_of(idx), "timestamp"))
    df = df.copy()
    df["timestamp"] = parsed
    return df


def _check_order(tel: pd.DataFrame, file: str, line_of, problems: list[Problem],
                 warnings: list[Problem], cells: pd.Series | None = None) -> None:
    """Per VM, telemetry must be in time order; duplicates are averaged and reported. Timestamps
    are quoted as the file's ``cells`` give them (a local time with an offset, not its UTC value)."""
    def stamp(idx) -> str:
        cell = cells.get(idx) if cells is not None else None
        return describe(cell) if isinstance(cell, str) else str(tel.at[idx, "timestamp"])

    ok = tel["timestamp"].notna()
    t = tel.loc[ok, ["vm_id", "timestamp"]]
    prev = t.groupby("vm_id", sort=False)["timestamp"].shift()
    back = t.index[(t["timestamp"] < prev).to_numpy()]
    problems += first_problems("unsorted_timestamps", file, back, lambda idx: Problem(
        "unsorted_timestamps", file,
        f"timestamp {stamp(idx)} of VM {tel.at[idx, 'vm_id']!r} is earlier than the one before it",
        "sort the file by timestamp; if it is sorted, these are local clock times that repeat an hour when "
        "clocks go back: export them in UTC or with their offset (+01:00)", line_of(idx), "timestamp"))
    dup = t.index[(t["timestamp"] == prev).to_numpy()]
    if len(dup):
        first = dup[0]
        warnings.append(Problem("duplicate_timestamps", file,
                                f"{len(dup)} duplicate (vm_id, timestamp) rows, the first VM "
                                f"{tel.at[first, 'vm_id']!r} at {stamp(first)}: their loads are averaged",
                                "keep one sample per VM and time if the duplicates are an export error",
                                line_of(first), "timestamp"))


def _ids(df: pd.DataFrame, col: str) -> set:
    return set(df[col].dropna()) if col in df.columns else set()


def _check_references(t: dict[str, pd.DataFrame], files: dict[str, str], lines: dict,
                      problems: list[Problem]) -> None:
    """Every id that a table refers to must exist in the table it points into."""
    refs = [("rows", "aisle_id", "aisles", "aisle_id"),
            ("servers", "row_id", "rows", "row_id"),
            ("vms", "server_id", "servers", "server_id"),
            ("telemetry", "vm_id", "vms", "vm_id")]
    for table, col, target, target_col in refs:
        df = t.get(table)
        if df is None or col not in df.columns or t.get(target) is None:
            continue
        known = _ids(t[target], target_col)
        values = df[col]
        unknown = values.notna() & ~values.isin(known)
        code = f"unknown_{col.removesuffix('_id')}"
        # One problem per unknown id, at its first line, with how many rows name it: a VM
        # missing from vms.csv is one fix, not 600 lines of telemetry to read.
        rows = df.index[unknown.to_numpy()]
        firsts = values[rows].drop_duplicates()
        counts = values[rows].value_counts()
        def unknown_id(item) -> Problem:  # called at once, by first_problems, in this iteration
            idx, value = item
            times = int(counts[value])
            also = f" (and {times - 1} more row(s) with it)" if times > 1 else ""
            return Problem(code, files[table], f"{col} {value!r} is not in {files[target]}{also}",
                           f"add it to {files[target]} or fix the id", lines[table](idx), col)

        problems += first_problems(code, files[table], firsts.items(), unknown_id)


def _check_servers(servers: pd.DataFrame, defaults, file: str, line_of, problems: list[Problem]) -> None:
    """Each server's idle figures at most its max ones; a GPU's max power above its idle power,
    each from servers.csv or, where its cell is empty, from datacenter.yaml's server_defaults
    (a GPU whose power fell with load planned the hottest VM on it as the coolest)."""
    needed = {"idle_power_kw", "max_power_kw", "idle_airflow_cfm", "max_airflow_cfm"}
    if not needed <= set(servers.columns):
        return
    for idx in servers.index[(servers["max_power_kw"] < servers["idle_power_kw"]).to_numpy()]:
        problems.append(Problem("bad_power_range", file, "max_power_kw is below idle_power_kw",
                                "max_power_kw must be >= idle_power_kw", line_of(idx), "max_power_kw"))
    for idx in servers.index[(servers["max_airflow_cfm"] < servers["idle_airflow_cfm"]).to_numpy()]:
        problems.append(Problem("bad_airflow_range", file, "max_airflow_cfm is below idle_airflow_cfm",
                                "max_airflow_cfm must be >= idle_airflow_cfm", line_of(idx),
                                "max_airflow_cfm"))
    given = {c: servers[c] if c in servers.columns else pd.Series(np.nan, index=servers.index)
             for c in ("gpu_idle_w", "gpu_max_w")}
    idle = given["gpu_idle_w"].fillna(defaults.gpu_idle_w)
    top = given["gpu_max_w"].fillna(defaults.gpu_max_w)
    for idx in servers.index[(top <= idle).to_numpy()]:
        column = "gpu_max_w" if pd.notna(given["gpu_max_w"][idx]) else "gpu_idle_w"
        said = {c: f"{v:g}" + ("" if pd.notna(given[c][idx]) else " (server_defaults)")
                for c, v in (("gpu_idle_w", idle[idx]), ("gpu_max_w", top[idx]))}
        problems.append(Problem("bad_power_range", file, f"gpu_max_w {said['gpu_max_w']} is not above gpu_idle_w "
                                f"{said['gpu_idle_w']}: a GPU's power would not rise with its load",
                                "gpu_max_w must be > gpu_idle_w", line_of(idx), column))


def _check_vms(vms: pd.DataFrame, servers: pd.DataFrame, file: str, line_of,
               problems: list[Problem]) -> None:
    """A VM must fit on some server; running VMs must fit on their server; SaaS needs an endpoint."""
    if not {"gpus", "server_id"} <= set(vms.columns) or "gpus" not in servers.columns:
        return
    largest = servers["gpus"].max() if len(servers) else 0  # NaN: no server's GPUs are known (all bad)
    for idx in vms.index[(vms["gpus"] > largest).to_numpy()] if pd.notna(largest) else []:
        problems.append(Problem("vm_too_large", file,
                                f"VM {vms.at[idx, 'vm_id']!r} needs {vms.at[idx, 'gpus']:g} GPUs but the "
                                f"largest server has {largest:g}",
                                "split the VM or add larger servers", line_of(idx), "gpus"))
    if "kind" in vms.columns and "endpoint" in vms.columns:
        no_ep = (vms["kind"] == "saas") & vms["endpoint"].isna()
        for idx in vms.index[no_ep.to_numpy()]:
            problems.append(Problem("missing_endpoint", file,
                                    f"SaaS VM {vms.at[idx, 'vm_id']!r} has no endpoint",
                                    "name the endpoint that routes load to it", line_of(idx), "endpoint"))
    running = vms[vms["server_id"].notna()]
    used = running.groupby("server_id")["gpus"].sum()
    cap = servers.set_index("server_id")["gpus"]
    over = used[used > cap.reindex(used.index).fillna(np.inf)]
    for server_id, n in over.items():
        idx = running.index[running["server_id"] == server_id][-1]
        problems.append(Problem("server_overcommitted", file,
                                f"running VMs on server {server_id!r} use {n:g} GPUs but it has "
                                f"{int(cap[server_id])}", "fix the server_id of one of these VMs",
                                line_of(idx), "server_id"))


def _warn_idle_over_limit(servers: pd.DataFrame, rows: pd.DataFrame, file: str, line_of,
                          warnings: list[Problem]) -> None:
    """A row whose servers draw more than its limit while idle breaks it whatever is placed."""
    idle = servers.groupby("row_id")["idle_power_kw"].sum()
    for idx, rec in rows.iterrows():
        kw = float(idle.get(rec["row_id"], 0.0))
        if kw > float(rec["power_limit_kw"]):
            warnings.append(Problem("limit_below_idle", file, f"row {rec['row_id']!r}: its servers draw {kw:g} kW "
                                    f"idle, over its {float(rec['power_limit_kw']):g} kW limit: it is over the "
                                    f"limit before any VM runs", "check power_limit_kw (kW, not W?)",
                                    line_of(idx), "power_limit_kw"))


WATTS_RATIO = 100.0
"""A row limit this many times what its servers draw at full load is taken for watts typed as
kW (a real row's limit is near its servers' full draw: 0.5 to 2 times it)."""


def _warn_limit_in_watts(servers: pd.DataFrame, rows: pd.DataFrame, file: str, line_of,
                         warnings: list[Problem]) -> None:
    """A row limit in W passes every range check and makes the row look limitless."""
    full = servers.groupby("row_id")["max_power_kw"].sum()
    for idx, rec in rows.iterrows():
        kw, limit = float(full.get(rec["row_id"], 0.0)), float(rec["power_limit_kw"])
        if kw > 0 and limit > WATTS_RATIO * kw:
            warnings.append(Problem("limit_in_watts", file, f"row {rec['row_id']!r}: its {limit:g} kW limit is "
                                    f"{limit / kw:.0f} times what its servers draw at full load ({kw:g} kW): it "
                                    "never binds", "check power_limit_kw (kW, not W?)", line_of(idx),
                                    "power_limit_kw"))


def _warn_aisle_idle_over_limit(servers: pd.DataFrame, rows: pd.DataFrame, aisles: pd.DataFrame, file: str,
                                line_of, warnings: list[Problem]) -> None:
    """An aisle whose idle servers need more air than its AHU gives recirculates whatever is
    placed."""
    aisle_of_row = rows.drop_duplicates("row_id").set_index("row_id")["aisle_id"]
    idle = servers.groupby(servers["row_id"].map(aisle_of_row))["idle_airflow_cfm"].sum()
    for idx, rec in aisles.iterrows():
        cfm, limit = float(idle.get(rec["aisle_id"], 0.0)), float(rec["airflow_limit_cfm"])
        if cfm > limit:
            warnings.append(Problem("limit_below_idle", file, f"aisle {rec['aisle_id']!r}: its servers need "
                                    f"{cfm:g} CFM idle, over its {limit:g} CFM limit: it is over the limit before "
                                    "any VM runs", "check airflow_limit_cfm (CFM, for this aisle's AHU)",
                                    line_of(idx), "airflow_limit_cfm"))


STALE_AFTER = pd.Timedelta(days=7)
"""A VM whose telemetry ends this long before the room's is forecast from stale history."""


def _warn_stale_series(tel: pd.DataFrame, file: str, warnings: list[Problem]) -> None:
    """VMs whose telemetry stops long before the others': within the history the forecasters
    use, their forecast repeats old load; before it, nothing of them is known and they are
    forecast at full load. When most VMs are stale, the few that are not probably carry a
    mistyped timestamp (a month typed 09 for 05), which sets where the room's history ends."""
    last = tel.groupby("vm_id")["timestamp"].max()
    end = last.max()
    stale = last[last < end - STALE_AFTER].sort_values()
    if not len(stale):
        return
    history = pd.Timedelta(weeks=HISTORY_WEEKS)
    old, gone = stale[stale >= end - history], stale[stale < end - history]
    hint = "check that their telemetry is still collected"
    if len(old):
        warnings.append(Problem("stale_telemetry", file, f"{len(old)} VM(s) have no telemetry in the last "
                                f"{STALE_AFTER.days} days before {end}, e.g. {old.index[0]!r} (last "
                                f"{old.iloc[0]}): their forecast repeats old load", hint))
    if len(gone):
        warnings.append(Problem("stale_telemetry", file, f"{len(gone)} VM(s) have no telemetry in the "
                                f"{HISTORY_WEEKS:g} weeks before {end} that forecasts use, e.g. {gone.index[0]!r} "
                                f"(last {gone.iloc[0]}): they are forecast at full load (assumed-peak)", hint))
    if len(stale) > len(last) / 2:
        recent = last[last >= end - STALE_AFTER].sort_values(ascending=False)
        warnings.append(Problem("telemetry_ends_apart", file, f"only {len(recent)} of {len(last)} VMs have "
                                f"telemetry in the {STALE_AFTER.days} days before {end}, where the room's history "
                                f"ends; the others' ends by {stale.iloc[-1]}. Is a timestamp mistyped (e.g. "
                                f"{recent.index[0]!r} at {recent.iloc[0]})?",
                                "fix the timestamp: the room's history, and the forecast after it, end there"))


def _warn_coarse_telemetry(tel: pd.DataFrame, step_min: int, file: str, warnings: list[Problem]) -> None:
    """Telemetry sampled less often than ``time_step_min``: each sample fills one slot and the
    slots between count as gaps: the seasonal profiles interpolate across them, under half the
    slots observed the seasonal forecasters are not tried, and the bands widen."""
    t = tel[["vm_id", "timestamp"]].dropna()
    gaps = t.groupby("vm_id", sort=False)["timestamp"].diff().dt.total_seconds() / 60
    typical = gaps.groupby(t["vm_id"], sort=False).median().dropna()
    coarse = typical[typical > step_min * 1.5]
    if len(coarse) and len(coarse) >= len(typical) / 2:
        every = float(coarse.median())
        warnings.append(Problem("coarse_telemetry", file, f"{len(coarse)} of {len(typical)} VMs are sampled every "
                                f"{every:g} min, coarser than time_step_min {step_min}: each sample fills one slot "
                                "and the slots between count as gaps (seasonal forecasts interpolate across them, and are not "
                                "tried where under half the slots are observed)",
                                f"set time_step_min to {every:g} (if it divides a day), or give finer telemetry"))


def _warn_outside_elsewhere(outside: pd.Series, telemetry: pd.Series, file: str, warnings: list[Problem]) -> None:
    """Outside temperatures that end a week or more before the telemetry does: the horizon's
    outside forecast (the last two weeks of the file) then describes another season. (A file
    that starts after the telemetry holds the weather forecast of the horizon: that is fine.)"""
    gap = telemetry.max() - outside.max()
    if gap >= pd.Timedelta(days=7):
        warnings.append(Problem("outside_elsewhere", file, f"outside temperatures cover {outside.min()} to "
                                f"{outside.max()}, the telemetry ends {telemetry.max()}: the horizon's outside "
                                "forecast comes from another period", "give the outside temperatures of the "
                                "weeks the telemetry covers"))


def _warn_start_off_grid(config: DatacenterConfig, warnings: list[Problem]) -> None:
    """``start`` between two slots is moved back to the slot it falls in."""
    start = parse_timestamp(config.start)
    if start is not None and start != start.floor(f"{config.time_step_min}min"):
        warnings.append(Problem("start_off_grid", "datacenter.yaml", f"'start' {start} is not on the "
                                f"{config.time_step_min}-minute grid: the horizon starts at "
                                f"{start.floor(f'{config.time_step_min}min')}",
                                "give a start on the grid of time_step_min"))


def _warn_start_far_from_history(config: DatacenterConfig, times: pd.Series, warnings: list[Problem]) -> None:
    """A horizon that starts before the telemetry ends, or weeks after it, is most likely a
    typo in ``start``: the forecast then describes another period than the one planned."""
    start = parse_timestamp(config.start)
    if start is None:
        return  # reported by check_config
    last = times.max()
    if start < last:
        warnings.append(Problem("start_in_history", "datacenter.yaml", f"'start' {start} is before the telemetry "
                                f"ends ({last}): the plan's horizon overlaps the history it is forecast from",
                                "leave 'start' out to plan from the slot after the last telemetry"))
    elif start - last > pd.Timedelta(weeks=4):
        warnings.append(Problem("start_far_ahead", "datacenter.yaml", f"'start' {start} is "
                                f"{(start - last).days} days after the telemetry ends ({last}): forecasts "
                                f"that far ahead are weak", "check 'start', or add recent telemetry"))


def _warn_empty_telemetry(config: DatacenterConfig, file: str, warnings: list[Problem]) -> None:
    """No history: every VM is planned at peak load, and without ``start`` the horizon falls on
    a fixed week that has nothing to do with the room's calendar."""
    horizon = ("" if config.start is not None else
               f"; with no 'start' in datacenter.yaml the horizon begins at {EMPTY_HISTORY_START} (a fixed Monday)")
    warnings.append(Problem("empty_telemetry", file, "no telemetry rows: every VM's load is assumed at its "
                            f"peak (no forecast is possible){horizon}",
                            "add the VMs' load history (see docs/inventory-format.md)"
                            + ("" if config.start is not None else ", or set 'start' to the week to plan")))


def check_inventory(root: Path | str, physics: bool = True) -> tuple[Inventory | None, list[Problem]]:
    """Load and validate; return the inventory (None if unusable) and every problem found.
    ``physics=False`` leaves out a ``physics.yaml`` (``fit`` fits from the inventory's own files)."""
    root = Path(root)
    problems: list[Problem] = []
    if not root.is_dir():
        return None, [Problem("no_inventory", str(root), "is not a directory",
                              "pass the inventory directory (see docs/inventory-format.md)")]
    cfg_path = root / "datacenter.yaml"
    if cfg_path.exists():
        config, cfg_problems = load_config(cfg_path)
        problems += cfg_problems
    else:
        config = DatacenterConfig()
        problems.append(Problem("missing_file", "datacenter.yaml", "file is missing",
                                "create it (see docs/inventory-format.md)"))
    tables: dict[str, pd.DataFrame] = {}
    typed: dict[str, pd.DataFrame] = {}
    valid: set[str] = set()
    stamp_cells: pd.Series | None = None  # telemetry's timestamps as written
    files: dict[str, str] = {}
    lines: dict = {}
    for name in TABLES:
        path = find_table(root, name)
        if path is not None and (root / f"{name}.csv").exists() and (root / f"{name}.parquet").exists():
            problems.append(Problem("ambiguous_file", f"{name}.csv", f"both {name}.csv and {name}.parquet exist",
                                    "keep one of them (tapas-opt would not know which one is current)"))
            continue
        if path is None:
            if name not in OPTIONAL_TABLES:
                problems.append(Problem("missing_file", f"{name}.csv", "file is missing",
                                        f"add {name}.csv or {name}.parquet"))
            continue
        files[name], lines[name] = path.name, line_mapper(path)
        separated = wrong_separator(path)
        if separated is not None:
            problems.append(separated)
            continue
        try:
            df = read_table(path)
        except Exception as exc:  # noqa: BLE001 - any reader failure is a user-facing problem
            problems.append(unreadable(path, exc))
            continue
        if name in ("telemetry", "outside"):
            if name == "telemetry" and "timestamp" in df.columns:
                stamp_cells = df["timestamp"]  # as written: problems quote the cell, not its UTC value
            df = _parse_timestamps(df, path.name, lines[name], problems)
        df, table_problems = validate_frame(df, name, path.name, lines[name])
        problems += table_problems
        tables[name] = df
        if not table_problems:
            valid.add(name)
            typed[name] = df
        elif name in ("servers", "vms"):
            partial = typed_cells(df, name, table_problems, lines[name])
            if partial is not None:
                typed[name] = partial
    _check_references(tables, files, lines, problems)
    # Fitted physics (tapas-opt fit) override datacenter.yaml's models and servers.csv columns.
    if physics and (root / "physics.yaml").exists() and "servers" in valid:
        from tapas_opt.calibrate.physics_file import apply_physics_file

        config, tables["servers"], physics_problems = apply_physics_file(root / "physics.yaml", config,
                                                                         tables["servers"])
        problems += physics_problems
        typed["servers"] = tables["servers"]
    # Rules across columns and files need typed data: they run on the tables that passed, or on
    # the rows of a table that pass on their own (so its cell problems hide nothing else).
    if "servers" in typed:
        _check_servers(typed["servers"], config.server_defaults, files["servers"], lines["servers"], problems)
        if "vms" in typed:
            _check_vms(typed["vms"], typed["servers"], files["vms"], lines["vms"], problems)
    warnings: list[Problem] = []
    if "telemetry" in tables and {"timestamp", "vm_id"} <= set(tables["telemetry"].columns):
        _check_order(tables["telemetry"], files["telemetry"], lines["telemetry"], problems, warnings, stamp_cells)
    if "outside" in valid and len(tables["outside"]):
        spread = tables["outside"].groupby("timestamp")["temp_c"].agg(lambda t: t.max() - t.min())
        clash = spread[spread > 1.0]
        if len(clash):
            warnings.append(Problem("conflicting_duplicates", files["outside"],
                                    f"{len(clash)} timestamp(s) appear more than once with temperatures up to "
                                    f"{clash.max():.1f} C apart (e.g. {clash.index[0]}); their mean is used",
                                    "keep one reading per timestamp"))
    if {"servers", "rows"} <= valid:
        _warn_idle_over_limit(tables["servers"], tables["rows"], files["rows"], lines["rows"], warnings)
        _warn_limit_in_watts(tables["servers"], tables["rows"], files["rows"], lines["rows"], warnings)
    if {"servers", "rows", "aisles"} <= valid:
        _warn_aisle_idle_over_limit(tables["servers"], tables["rows"], tables["aisles"], files["aisles"],
                                    lines["aisles"], warnings)
    if "telemetry" in valid and len(tables["telemetry"]):
        _warn_stale_series(tables["telemetry"], files["telemetry"], warnings)
        if config.time_step_min > 0:
            _warn_coarse_telemetry(tables["telemetry"], config.time_step_min, files["telemetry"], warnings)
    if config.start is not None and config.time_step_min > 0:
        _warn_start_off_grid(config, warnings)
    if {"outside", "telemetry"} <= valid and len(tables["outside"]) and len(tables["telemetry"]):
        _warn_outside_elsewhere(tables["outside"]["timestamp"], tables["telemetry"]["timestamp"], files["outside"],
                                warnings)
    if config.start is not None and "telemetry" in valid and len(tables["telemetry"]):
        _warn_start_far_from_history(config, tables["telemetry"]["timestamp"], warnings)
    if "telemetry" in tables and len(tables["telemetry"]) == 0:
        _warn_empty_telemetry(config, files["telemetry"], warnings)
    problems = cap_problems(problems)
    if any(name not in tables for name in TABLES if name not in OPTIONAL_TABLES) or problems:
        return None, problems
    inventory = Inventory(root=root, config=config, outside=tables.get("outside"),
                          warnings=warnings, **{k: tables[k] for k in TABLES if k != "outside"})
    return inventory, []


def load_inventory(root: Path | str, physics: bool = True) -> Inventory:
    """Load and validate an inventory; raise :class:`InventoryError` listing every problem.
    ``physics=False``: without its ``physics.yaml`` (see :func:`check_inventory`)."""
    inventory, problems = check_inventory(root, physics)
    if problems or inventory is None:
        raise InventoryError(problems)
    return inventory


def load_inventory_with(inventory: Path | str | Inventory, *file_checks) -> Inventory:
    """The inventory (loaded unless given loaded). When it is unusable, the problems the
    command's other input files have on their own (each ``file_checks`` item returns them, or
    raises :class:`InventoryError` with them) join its own, so that one run lists them all."""
    if isinstance(inventory, Inventory):
        return inventory
    try:
        return load_inventory(inventory)
    except InventoryError as exc:
        if not file_checks:
            raise
        extra = []
        for check in file_checks:
            try:
                extra += check()
            except InventoryError as bad:  # unreadable, empty, or columns missing
                extra += bad.problems
        raise InventoryError(exc.problems + extra) from None
