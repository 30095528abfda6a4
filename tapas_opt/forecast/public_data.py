"""Readers of the public data sets in ``../shared/data`` that forecasting and calibration use.

Each returns tidy pandas frames; none copies data anywhere. Sources and licences are listed in
``../shared/data/README.md``.

* Cornell BioHPC GPU servers (hourly, TSV, UTF-8 with BOM, newest row first, a
  "rows affected" / "Completion time" footer): :func:`read_cornell`, :func:`cornell_load`.
* Azure LLM inference week, per minute, two services: :func:`read_azure_minutes`.
* Alibaba GenAI serving containers, GPU duty cycle at about one minute:
  :func:`read_alibaba_duty`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tapas_opt.errors import InventoryError, Problem

CORNELL_SERVERS = ("cbsugpu05", "cbsugpu06", "cbsugpu07", "cbsugpu08", "cbsugpu09", "cbsugpu10")
CORNELL_NUMERIC = ("powerave", "powermin", "powermax", "tempave", "tempmin", "tempmax",
                   "utilave", "utilmin", "utilmax", "gmemave", "gmemmin", "gmemmax")
AZURE_SERVICES = {"code": "2024-05-10", "conv": "2024-05-12"}
"""First day (00:00 UTC) of each service in the Azure week (../shared/data/README.md)."""


DATA_HINT = "use the files of ../shared/data (its README describes each one): point --traces or --data at it"


def _read_csv(path: Path, columns: tuple[str, ...], **kwargs) -> pd.DataFrame:
    """A public data file read with ``pd.read_csv``, or :class:`InventoryError` naming the file
    and what is wrong with it: unreadable, or lacking ``columns`` (another file of the same
    name, or a truncated copy, crashed the simulator with a KeyError)."""
    try:
        frame = pd.read_csv(path, **kwargs)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InventoryError([Problem("unreadable_file", str(path), f"cannot read it: {exc}", DATA_HINT)]) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InventoryError([Problem("missing_column", str(path), f"column(s) {', '.join(missing)} missing (it has "
                                      f"{', '.join(map(str, frame.columns[:8])) or 'none'}): not the file tapas-opt "
                                      "reads", DATA_HINT)])
    return frame


def _numbers(frame: pd.DataFrame, column: str, path: Path, blanks: bool = True, only: pd.Series | None = None,
             comment: str | None = None) -> np.ndarray:
    """``column`` as floats (blank cells NaN if ``blanks``); a value that is not a number is
    refused, naming its line (``comment``: the character that starts the file's comment
    lines, which the reader skipped). ``only``: the rows checked (the others are not data)."""
    values = pd.to_numeric(frame[column], errors="coerce")
    blank = frame[column].isna() | (frame[column].astype(str).str.strip() == "")
    bad = values.isna() & ~blank if blanks else values.isna()
    if only is not None:
        bad &= only
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        lines = _data_lines(path, comment)
        line = int(lines[first]) if first < len(lines) else None
        raise InventoryError([Problem("bad_type", str(path), f"{int(bad.sum())} value(s) are not numbers, the first "
                                      f"{frame[column].iloc[first]!r}", DATA_HINT, line=line, column=column)])
    return values.to_numpy(float)


def _data_lines(path: Path, comment: str | None) -> np.ndarray:
    """The file line of each data row as pandas reads it: blank lines and comment lines are
    skipped, the first line left is the header (public files: no cell spans lines)."""
    lines = []
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for number, text in enumerate(fh, 1):
            text = text.strip()
            if text and not (comment and text.startswith(comment)):
                lines.append(number)
    return np.asarray(lines[1:], dtype=int)


def cornell_path(data_dir: Path | str, server: str) -> Path:
    return Path(data_dir) / "cornell_biohpc_gpu_servers" / f"{server}_usage_stats.txt"


def azure_minutes_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / "azure_llm_2024_minutes" / "azure2024-llm-minutes.csv"


def alibaba_duty_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / "alibaba_genai_2026" / "pod_gpu_duty_cycle_anon.csv"


def read_cornell(path: Path | str) -> pd.DataFrame:
    """One Cornell server's hourly telemetry, oldest first, indexed by ``timestamp``.

    Footer lines and any row whose timestamp cannot be parsed are dropped (their number is in
    ``frame.attrs["dropped_rows"]``); duplicate timestamps are averaged (``attrs["duplicates"]``).
    """
    raw = _read_csv(Path(path), ("timestamp", "powerave", "powermax", "utilave"), sep="\t", encoding="utf-8-sig",
                    dtype=str, keep_default_na=False)
    ts = pd.to_datetime(raw["timestamp"].str.strip(), errors="coerce", format="%Y-%m-%d %H:%M:%S.%f")
    ok = ts.notna()
    # blank cells are gaps; text where a number goes is not this file (or a damaged copy)
    frame = pd.DataFrame({c: _numbers(raw, c, Path(path), only=ok)[ok.to_numpy()]
                          for c in CORNELL_NUMERIC if c in raw.columns})
    frame.index = pd.DatetimeIndex(ts[ok], name="timestamp")
    dup = int(frame.index.duplicated().sum())
    frame = frame.groupby(level=0).mean().sort_index()
    frame.attrs.update(dropped_rows=int((~ok).sum()), duplicates=dup, source=str(path))
    return frame


def cornell_load(frame: pd.DataFrame) -> pd.Series:
    """GPU power as a load in 0..1: ``powerave`` over the highest ``powermax`` in the file.

    Dividing by a constant leaves relative measures (pinball-loss ratios, within-10 % shares,
    band exceedance) unchanged; it only puts power on the 0..1 scale of the Forecaster interface.
    """
    return (frame["powerave"] / frame["powermax"].max()).rename("load")


def cornell_history(data_dir: Path | str, servers=CORNELL_SERVERS) -> pd.DataFrame:
    """Long telemetry (``timestamp, vm_id, load``) of Cornell servers, one "VM" per server."""
    parts = []
    for server in servers:
        load = cornell_load(read_cornell(cornell_path(data_dir, server)))
        parts.append(pd.DataFrame({"timestamp": load.index, "vm_id": server, "load": load.to_numpy()}))
    return pd.concat(parts, ignore_index=True)


def read_azure_minutes(data_dir: Path | str) -> dict[str, pd.Series]:
    """Requests per minute of each Azure service, indexed by UTC timestamp.

    The file counts minutes from 00:00 UTC of each service's first day (code: Friday
    2024-05-10, conversation: Sunday 2024-05-12).
    """
    path = azure_minutes_path(data_dir)
    frame = _read_csv(path, ("minute", *(f"{service}_requests" for service in AZURE_SERVICES)), comment="#")
    minute = _numbers(frame, "minute", path, blanks=False, comment="#")
    out = {}
    for service, start in AZURE_SERVICES.items():
        index = pd.Timestamp(start) + pd.to_timedelta(minute, unit="min")
        out[service] = pd.Series(_numbers(frame, f"{service}_requests", path, comment="#"),
                                 index=pd.DatetimeIndex(index, name="timestamp"), name=service)
    return out


def read_alibaba_duty(data_dir: Path | str) -> pd.DataFrame:
    """GPU duty cycle per serving container as long telemetry (``timestamp, vm_id, load``).

    The anonymised epoch seconds are shifted, not rescaled, so time steps are real; the duty
    cycle in percent becomes a load in 0..1.
    """
    path = alibaba_duty_path(data_dir)
    frame = _read_csv(path, ("timestamp_anon", "value", "container_ip"))
    seconds = _numbers(frame, "timestamp_anon", path, blanks=False)
    ts = pd.to_datetime(seconds.astype(np.int64), unit="s")
    return pd.DataFrame({"timestamp": ts, "vm_id": frame["container_ip"].astype(str),
                         "load": np.clip(_numbers(frame, "value", path) / 100.0, 0.0, 1.0)})
