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

from tapas_opt.errors import InventoryError, Problem, first_problems

SERVER_GPUS = 8
"""Catalogue rows describe one 8-GPU server; a VM with k GPUs runs k/8 of it."""

COLUMNS = {
    "family": str, "config_id": str, "model": str, "size": str, "precision": str,
    "tp": int, "replicas": int, "gpus_used": int, "max_batch": int, "power_level": float,
    "power_w": float, "idle_gpu_w": float, "throughput_tok_s": float, "tbt_ms": float,
    "slo_tbt_ms": float, "slo_ok": bool, "quality": float, "is_default": bool, "source": str,
}
"""Required columns and their types; other columns (source_ref, effects, notes) are kept."""

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


def _bool(series: pd.Series) -> pd.Series:
    text = series.astype(str).str.strip().str.lower()
    out = text.map({"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False})
    return out


def validate_catalogue(frame: pd.DataFrame, file: str = "llm_configs.csv") -> tuple[pd.DataFrame, list[Problem]]:
    """Coerce types and check every rule; return the frame and every problem at once."""
    problems: list[Problem] = []
    missing = [c for c in COLUMNS if c not in frame.columns]
    for col in missing:
        problems.append(Problem("missing_column", file, f"required column '{col}' is missing",
                                "see docs/reconfiguration.md, 'Catalogue format'"))
    if missing:
        return frame, problems
    df = frame.copy()

    def bad(rows, col, msg, hint=""):
        """One problem per row of ``rows`` (the first 20, then how many more); ``msg(idx)``."""
        problems.extend(first_problems("bad_value", file, rows,
                                       lambda idx: Problem("bad_value", file, msg(idx), hint, int(idx) + 2, col)))

    for col, kind in COLUMNS.items():
        if kind is bool:
            df[col] = _bool(df[col])
            bad(df.index[df[col].isna()], col, lambda i, c=col: f"value {frame.at[i, c]!r} is not true/false")
        elif kind in (int, float):
            num = pd.to_numeric(df[col], errors="coerce")
            bad(df.index[num.isna()], col, lambda i, c=col: f"value {frame.at[i, c]!r} is not a number")
            df[col] = num
        else:
            df[col] = df[col].astype(str).str.strip()
    # Range checks run on the cells that parsed (a NaN compares False), so that a file with a
    # text cell and a range error gets both at once.
    for col in ("tp", "replicas", "gpus_used", "max_batch"):
        bad(df.index[df[col].notna() & ((df[col] < 1) | (df[col] != df[col].round()))], col,
            lambda i, c=col: f"value {df.at[i, c]:g} must be a whole number >= 1")
    bad(df.index[df["gpus_used"] > SERVER_GPUS], "gpus_used",
        lambda i: f"value {df.at[i, 'gpus_used']:g} exceeds the {SERVER_GPUS} GPUs of a server",
        "catalogue rows describe one 8-GPU server")
    for col in ("throughput_tok_s", "tbt_ms", "slo_tbt_ms", "quality", "power_level"):
        bad(df.index[df[col] <= 0], col, lambda i, c=col: f"value {df.at[i, c]:g} must be > 0")
    bad(df.index[df["quality"] > 1.0 + 1e-9], "quality",
        lambda i: f"value {df.at[i, 'quality']:g} must be <= 1 (quality relative to the default)")
    dyn = df["power_w"] - df["gpus_used"] * df["idle_gpu_w"]
    bad(df.index[dyn <= 0], "power_w",
        lambda i: f"power_w {df.at[i, 'power_w']:g} is not above the idle power of its {df.at[i, 'gpus_used']:g} GPUs",
        "power_w is the busy GPUs' power at full throughput")
    bad(df.index[~df["source"].isin(SOURCES)], "source", lambda i: f"value {df.at[i, 'source']!r} is not one of {SOURCES}")
    problems.extend(first_problems(
        "duplicate_id", file, df.index[df["config_id"].duplicated()],
        lambda i: Problem("duplicate_id", file, f"config_id {df.at[i, 'config_id']!r} appears twice",
                          "config ids must be unique", int(i) + 2, "config_id")))
    if df["is_default"].isna().any():  # reported above; which row is the default is unknown
        return df, problems
    for family, grp in df.groupby("family", sort=False):
        n_default = int(grp["is_default"].sum())
        if n_default != 1:
            problems.append(Problem("bad_default", file, f"family {family!r} has {n_default} default configurations",
                                    "mark exactly one row per family is_default=true", None, "is_default"))
        elif not bool(grp.loc[grp["is_default"], "slo_ok"].iloc[0]):
            problems.append(Problem("bad_default", file, f"the default of family {family!r} breaks its SLO",
                                    "the default must have slo_ok=true", None, "slo_ok"))
    return df, problems


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
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except Exception as exc:  # noqa: BLE001 - a reader failure is a user-facing problem
        raise InventoryError([Problem("unreadable_file", path.name, f"cannot be read: {exc}")]) from exc
    df, problems = validate_catalogue(raw, path.name)
    if problems:
        raise InventoryError(problems)
    if df.empty:
        raise InventoryError([Problem("empty_file", path.name, "the catalogue has no configurations",
                                      "give at least each family's default configuration (is_default true)")])
    df = add_ratios(df.reset_index(drop=True))
    return Catalogue(df, str(path))
