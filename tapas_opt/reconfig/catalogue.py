"""The LLM configuration catalogue: what each SaaS configuration costs and delivers.

A catalogue is a CSV with one row per configuration of a SaaS model family (format in
docs/reconfiguration.md; the bundled one is ``models/catalogue/llm_configs.csv``, built by
``models/scripts/build_catalogue.py`` from ../shared/data). Operators may supply their own.

The reconfiguration model does not use the catalogue's absolute watts: the room's physics
(``tapas_opt.physics``) is the truth for the configuration a VM runs today, and the catalogue
says how every other configuration differs from the family's default, as ratios:

* ``energy_ratio``: dynamic (above-idle) GPU energy per output token, relative to the default;
* ``capacity_ratio``: output tokens per second under the SLO, relative to the default;
* ``active_share``: share of the server's GPUs the configuration keeps busy (TP2 on an 8-GPU
  server: 0.25; the others idle);
* ``speed_ratio``: default time between tokens over this one's (above 1 = faster);
* ``quality``: benchmark quality relative to the default (1 = no loss).

Only configurations that meet the family's latency SLO (``slo_ok``) are offered to the models.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from tapas_opt.errors import InventoryError, Problem, value_or_problems
from tapas_opt.inventory.load import csv_row_line, line_mapper, read_user_table
from tapas_opt.inventory.schema import InputSchema, typed_cells, validate_frame, with_column_hint

SERVER_GPUS = 8
"""Catalogue rows describe one 8-GPU server; a VM with k GPUs runs k/8 of it."""

SOURCES = ("measured", "derived", "modelled", "operator")
RELOAD_KEYS = ("size", "precision", "tp", "replicas")
"""Changing any of these reloads the model (instance out of rotation); batch and power level
change online (TAPAS.md section 4)."""

ENV_VAR = "TAPAS_OPT_CATALOGUE"


def default_catalogue_path() -> Path:
    """The catalogue used without ``--catalogue``: ``$TAPAS_OPT_CATALOGUE`` if set, else the one
    shipped with the package (``tapas_opt/data/catalogue`` is a link to ``models/catalogue`` in the
    source tree, copied into the wheel, so ``pip install .`` carries it)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return Path(__file__).resolve().parents[1] / "data" / "catalogue" / "llm_configs.csv"


FLAGS = ("slo_ok", "is_default")
"""The true/false columns: read by :func:`_parse_flags`, as pandas reads any text, 'False'
included, as true."""
SLO_TOL = 1e-6
"""Relative tolerance of ``tbt_ms <= slo_tbt_ms`` (the plan checker's, tapas_opt.reconfig.evaluate)."""


class CatalogueSchema(InputSchema):
    """Each cell of a catalogue on its own (docs/reconfiguration.md, 'Catalogue format'); the
    rules across a row's cells and across rows are :func:`_row_problems` and
    :func:`_default_problems`. A number must be finite: one ``inf`` throughput made every
    configuration of its family worth nothing to the models."""

    family: Series[str]
    config_id: Series[str] = pa.Field(unique=True)
    model: Series[str]
    size: Series[str]
    precision: Series[str]
    tp: Series[int] = pa.Field(ge=1)
    replicas: Series[int] = pa.Field(ge=1)
    gpus_used: Series[int] = pa.Field(ge=1, le=SERVER_GPUS)
    max_batch: Series[int] = pa.Field(ge=1)
    power_level: Series[float] = pa.Field(gt=0, le=1)
    power_w: Series[float] = pa.Field(ge=0)
    idle_gpu_w: Series[float] = pa.Field(ge=0)
    throughput_tok_s: Series[float] = pa.Field(gt=0)
    tbt_ms: Series[float] = pa.Field(gt=0)
    slo_tbt_ms: Series[float] = pa.Field(gt=0)
    slo_ok: Series[str]
    quality: Series[float] = pa.Field(gt=0, le=1)
    is_default: Series[str]
    source: Series[str] = pa.Field(isin=list(SOURCES))

    @pa.check("power_w", "idle_gpu_w", "throughput_tok_s", "tbt_ms", "slo_tbt_ms", name="finite")
    def _finite(cls, values: pd.Series) -> pd.Series:
        return np.isfinite(values)


REQUIRED = tuple(CatalogueSchema.to_schema().columns)
"""Required columns; other columns (source_ref, effects, notes) are kept."""


def _stripped(frame: pd.DataFrame) -> pd.DataFrame:
    """The required cells without surrounding blanks, a blank one empty: 'llama-70b ' is the
    family 'llama-70b', and ' ' is no family at all."""
    out = frame.copy()
    for col in set(REQUIRED) & set(out.columns):
        cells = out[col].map(lambda v: v.strip() if isinstance(v, str) else v)
        out[col] = cells.where(cells != "")
    return out


def _bool(series: pd.Series) -> pd.Series:
    text = series.astype(str).str.strip().str.lower()
    return text.map({"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False})


def _parse_flags(df: pd.DataFrame, file: str, line_of) -> tuple[pd.DataFrame, list[Problem]]:
    """:data:`FLAGS` as booleans (missing where unreadable) and a problem per unreadable cell
    (empty ones are the schema's)."""
    flags = pd.DataFrame({c: _bool(df[c]) for c in FLAGS}, index=df.index)
    problems = [Problem("bad_type", file, f"value {df.at[i, c]!r} is not true/false", "write true or false",
                        line_of(i), c)
                for c in FLAGS for i in df.index[flags[c].isna() & df[c].notna()]]
    return flags, problems


def _row_problems(df: pd.DataFrame, file: str, line_of) -> list[Problem]:
    """Rules across a row's cells, on every row with the cells that have problems of their own
    blank (``typed_cells``): power above idle, and slo_ok saying what the latencies say (a row
    claiming the SLO it misses ended as an infeasible plan). A rule with a blank cell says
    nothing (that cell's problem is reported already)."""
    problems = [Problem("bad_power_range", file, f"power_w {df.at[i, 'power_w']:g} is not above the idle power of its "
                        f"{df.at[i, 'gpus_used']:g} GPUs ({df.at[i, 'gpus_used']:g} x idle_gpu_w {df.at[i, 'idle_gpu_w']:g})",
                        "power_w is the busy GPUs' power at full throughput", line_of(i), "power_w")
                for i in df.index[df["power_w"] - df["gpus_used"] * df["idle_gpu_w"] <= 0]]
    problems += [Problem("gpus_mismatch", file, f"gpus_used {df.at[i, 'gpus_used']:g} is not tp x replicas "
                         f"({df.at[i, 'tp']:g} x {df.at[i, 'replicas']:g})",
                         f"gpus_used is the busy GPUs of the server: tp x replicas, at most {SERVER_GPUS}",
                         line_of(i), "gpus_used")
                 for i in df.index[df[["gpus_used", "tp", "replicas"]].notna().all(axis=1)
                                   & (df["gpus_used"] != df["tp"] * df["replicas"])]]
    tbt, slo = df["tbt_ms"], df["slo_tbt_ms"]
    known = df["slo_ok"].notna()
    ok = df["slo_ok"].where(known, False).astype(bool)
    for i in df.index[known & ((ok & (tbt > slo * (1 + SLO_TOL))) | (~ok & (tbt < slo * (1 - SLO_TOL))))]:
        says, relation = ("true", ">") if ok[i] else ("false", "<=")
        problems.append(Problem("slo_mismatch", file, f"slo_ok is {says} but tbt_ms {tbt[i]:g} {relation} slo_tbt_ms "
                                f"{slo[i]:g}", "slo_ok is tbt_ms <= slo_tbt_ms: correct one of them", line_of(i), "slo_ok"))
    return problems


def _default_problems(df: pd.DataFrame, file: str, line_of) -> list[Problem]:
    """One default per family, meeting its SLO, of quality 1 (quality is relative to it: a
    default of 0.5 made an untouched room lose 43 % and a plan with no event 'gain' by
    reloading); nothing said while a flag is unreadable (which row is the default is then
    unknown, and the flag is reported already)."""
    if df["is_default"].isna().any():
        return []
    problems = []
    for family, grp in df.groupby("family", sort=False):
        n_default = int(grp["is_default"].sum())
        if n_default != 1:
            problems.append(Problem("bad_default", file, f"family {family!r} has {n_default} default configurations",
                                    "mark exactly one row per family is_default=true", None, "is_default"))
        elif grp.loc[grp["is_default"].astype(bool), "slo_ok"].eq(False).iloc[0]:
            problems.append(Problem("bad_default", file, f"the default of family {family!r} breaks its SLO",
                                    "the default must have slo_ok=true", None, "slo_ok"))
        else:
            i = grp.index[grp["is_default"].astype(bool)][0]
            quality = pd.to_numeric(grp.at[i, "quality"], errors="coerce")
            if pd.notna(quality) and quality != 1:
                problems.append(Problem("bad_default", file, f"the default of family {family!r} has quality "
                                        f"{quality:g}, not 1", "quality is relative to the family's default: give "
                                        "the default 1 and the others their quality relative to it", line_of(i), "quality"))
    return problems


def validate_catalogue(frame: pd.DataFrame, file: str = "llm_configs.csv",
                       line_of=csv_row_line) -> tuple[pd.DataFrame, list[Problem]]:
    """Coerce types and check every rule; return the frame and every problem at once.

    ``line_of`` maps a row index to the line a user sees (default: CSV with a header line)."""
    df, problems = validate_frame(_stripped(frame), CatalogueSchema, file, line_of)
    if any(p.code == "missing_column" for p in problems):
        return df, with_column_hint(problems, "see docs/reconfiguration.md, 'Catalogue format'")
    flags, flag_problems = _parse_flags(df, file, line_of)
    problems += flag_problems
    if problems:
        typed = typed_cells(df, CatalogueSchema, problems, line_of)
        if typed is not None:  # flags stay missing where unreadable: the rules skip them
            problems += _row_problems(typed.assign(**{c: flags.loc[typed.index, c] for c in FLAGS}), file, line_of)
        typed = None  # a catalogue with problems is not used
    else:
        typed = df.assign(**{c: flags[c].astype(bool) for c in FLAGS})
        problems += _row_problems(typed, file, line_of)
    problems += _default_problems(df.assign(**flags), file, line_of)
    return (df.assign(**flags) if typed is None else typed), problems


@dataclass(frozen=True, eq=False)
class Catalogue:
    """A validated catalogue with the ratios the models use (see the module docstring)."""

    configs: pd.DataFrame
    path: str

    @cached_property
    def families(self) -> list[str]:
        return list(pd.unique(self.configs["family"]))

    @cached_property
    def default_of(self) -> dict[str, int]:
        """Row position of each family's default configuration."""
        d = self.configs[self.configs["is_default"]]
        return dict(zip(d["family"], d.index))

    @cached_property
    def position(self) -> pd.Series:
        """Row position by config_id."""
        return pd.Series(np.arange(len(self.configs)), index=self.configs["config_id"])

    def rows_of(self, family: str) -> np.ndarray:
        """Positions of a family's configurations."""
        return np.flatnonzero(self.configs["family"].to_numpy() == family)

    def arrays(self) -> dict[str, np.ndarray]:
        """Column arrays by name, in row order (computed once)."""
        return self._arrays

    @cached_property
    def _arrays(self) -> dict[str, np.ndarray]:
        return {c: self.configs[c].to_numpy() for c in self.configs.columns}


def add_ratios(df: pd.DataFrame) -> pd.DataFrame:
    """Ratios of every configuration to its family's default (see the module docstring)."""
    df = df.copy()
    dyn_w = df["power_w"] - df["gpus_used"] * df["idle_gpu_w"]
    energy = dyn_w / df["throughput_tok_s"]
    default = df[df["is_default"]].set_index("family")
    d_energy = (default["power_w"] - default["gpus_used"] * default["idle_gpu_w"]) / default["throughput_tok_s"]
    fam = df["family"]
    df["energy_ratio"] = (energy / fam.map(d_energy)).to_numpy()
    df["capacity_ratio"] = (df["throughput_tok_s"] / fam.map(default["throughput_tok_s"])).to_numpy()
    df["active_share"] = df["gpus_used"] / SERVER_GPUS
    df["speed_ratio"] = (fam.map(default["tbt_ms"]) / df["tbt_ms"]).to_numpy()
    df["gpu_power_ratio"] = df["energy_ratio"] * df["capacity_ratio"] / df["active_share"]
    df["reload_key"] = df[list(RELOAD_KEYS)].astype(str).agg("/".join, axis=1)
    df = add_power_levels(df)
    df["quantised_or_smaller"] = ((df["precision"] != fam.map(default["precision"]))
                                  | (df["size"] != fam.map(default["size"]))).to_numpy()
    return df


def add_power_levels(df: pd.DataFrame) -> pd.DataFrame:
    """Treat a class's GPU power levels as samples of a continuous knob where they follow one
    power law.

    A *class* is a configuration without its power level (family, size, precision, TP,
    replicas, batch). If every level's throughput is its level-1.0 sibling's times (dynamic power
    ratio) ** alpha with one alpha (the bundled catalogue's MLPerf-fitted levels do), the class
    is ``continuous``: any level between its lowest SLO-feasible one and 1 is a real setting (a
    GPU power cap or clock), with capacity ``t1 * k ** alpha`` and energy ``e1 * k ** (1 - alpha)``.
    Columns added: ``class_key``, ``level1`` (row of the class's level-1.0 configuration, -1 if
    none), ``power_alpha`` (NaN if none), ``continuous``, ``min_level`` (lowest SLO-feasible
    dynamic power ratio of the class).
    """
    df = df.copy()
    df["class_key"] = df[["family", *RELOAD_KEYS, "max_batch"]].astype(str).agg("/".join, axis=1)
    dyn = df["power_w"] - df["gpus_used"] * df["idle_gpu_w"]
    top = df[np.isclose(df["power_level"], 1.0)].drop_duplicates("class_key")
    pos1 = pd.Series(top.index, index=top["class_key"])
    df["level1"] = df["class_key"].map(pos1).fillna(-1).astype(int)
    has1 = df["level1"] >= 0
    ref = df["level1"].where(has1, 0).to_numpy()
    ratio = np.where(has1, dyn.to_numpy() / dyn.to_numpy()[ref], np.nan)
    tput = np.where(has1, df["throughput_tok_s"].to_numpy() / df["throughput_tok_s"].to_numpy()[ref], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where((ratio > 0) & (ratio < 1 - 1e-9), np.log(tput) / np.log(ratio), np.nan)
    df["level_ratio"] = ratio
    per_class = pd.Series(alpha).groupby(df["class_key"].to_numpy())
    med = per_class.median()
    spread = per_class.agg(lambda a: float(np.nanmax(np.abs(a - np.nanmedian(a)))) if np.isfinite(a).any() else np.inf)
    df["power_alpha"] = df["class_key"].map(med).to_numpy(float)
    df["continuous"] = (has1 & df["class_key"].map(spread).lt(1e-3) & np.isfinite(df["power_alpha"])).to_numpy()
    ok_levels = pd.Series(np.where(df["slo_ok"], ratio, np.nan)).groupby(df["class_key"].to_numpy()).min()
    df["min_level"] = df["class_key"].map(ok_levels).to_numpy(float)
    df["unit_key"] = np.where(df["continuous"], df["class_key"], df["config_id"])
    return df


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Read and validate a catalogue CSV (default: the bundled one).

    Raises
    ------
    InventoryError
        Listing every problem (file, line, column, what to do).
    """
    path = Path(path) if path is not None else default_catalogue_path()
    if not path.exists():
        raise InventoryError([Problem("missing_file", str(path), "catalogue not found",
                                      "pass --catalogue PATH, set TAPAS_OPT_CATALOGUE, or run "
                                      "python models/scripts/build_catalogue.py")])
    df, problems = validate_catalogue(read_user_table(path), path.name, line_mapper(path))
    if problems:
        raise InventoryError(problems)
    if df.empty:
        raise InventoryError([Problem("empty_file", path.name, "the catalogue has no configurations",
                                      "give at least each family's default configuration (is_default true)")])
    df = add_ratios(df.reset_index(drop=True))
    return Catalogue(df, str(path))


def catalogue_or_problems(path: str | Path | None = None) -> tuple[Catalogue | None, list[Problem]]:
    """:func:`load_catalogue`, or None and its problems: for a command that lists them with its
    other inputs' (the inventory's) rather than one file per run."""
    return value_or_problems(lambda: load_catalogue(path))
