"""Geometry of the floor map, shared by the SVG (HTML report) and matplotlib (PNG) renderers.

The room is drawn as TAPAS describes it (``../shared/TAPAS.md`` section 1): each cold aisle is a
strip fed by its AHU at the left end, with the rows that face it above and below; hot aisles lie
between aisle pairs. Racks run left to right in natural order of their names ("K2" before
"K10"), servers are stacked inside each rack. A large room wraps into columns of aisles.
Coordinates are in pixels, y pointing down.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd

LABEL_W = 150.0  # left margin for row labels
RACK_W = 26.0
RACK_GAP = 5.0
ROW_PAD = 6.0
AISLE_H = 24.0
HOT_H = 18.0
MARGIN = 8.0
WRAP_H = 900.0  # a floor map taller than this wraps into columns of aisles ...
MAX_W = 1500.0  # ... as many as fit this width
COL_GAP = 28.0


def _n_rows(rows: pd.DataFrame, aisle) -> int:
    return int((rows["aisle_id"] == aisle).sum())


def natural_key(text: str) -> tuple:
    """Sort key that orders embedded numbers by value: "R2" < "R10"."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(text)))


@dataclass(frozen=True)
class FloorLayout:
    """Rectangles of the floor map. ``servers`` is indexed by ``server_id`` with ``x, y, w, h``;
    ``racks`` has ``rack, row_id, x, y, w, h``; ``rows`` is indexed by ``row_id`` with the row
    band ``x, y, w, h`` (racks start at ``LABEL_W``); ``aisles`` and ``hot_aisles`` have strips."""

    width: float
    height: float
    servers: pd.DataFrame
    racks: pd.DataFrame
    rows: pd.DataFrame
    aisles: pd.DataFrame
    hot_aisles: pd.DataFrame


def build_layout(servers: pd.DataFrame, rows: pd.DataFrame) -> FloorLayout:
    """Place every server of ``servers`` (index ``server_id``; columns ``row_id, rack``) on the
    floor, rows grouped by ``rows['aisle_id']``."""
    per_rack = servers.groupby(["row_id", "rack"]).size()
    n_max = int(per_rack.max()) if len(per_rack) else 1
    rack_h = float(min(max(10.0 * n_max, 24.0), 110.0))
    server_h = rack_h / n_max
    racks_per_row = servers.groupby("row_id")["rack"].nunique()
    max_racks = int(racks_per_row.max()) if len(racks_per_row) else 1
    width = LABEL_W + max_racks * (RACK_W + RACK_GAP) + MARGIN  # of one block (aisle with its rows)
    row_band_h = rack_h + 2 * ROW_PAD

    aisle_ids = sorted(rows["aisle_id"].unique(), key=natural_key)
    block_w = width
    block_h = {a: _n_rows(rows, a) * row_band_h + AISLE_H for a in aisle_ids}
    # Tall rooms wrap into columns of aisles (read left to right, then down), so that a room of
    # a thousand servers fits a screen instead of one long strip.
    total_h = sum(block_h.values()) + HOT_H * max(len(aisle_ids) - 1, 0)
    n_cols = max(1, min(len(aisle_ids), math.ceil(total_h / WRAP_H), int(MAX_W // (block_w + COL_GAP)) or 1))
    per_col = math.ceil(len(aisle_ids) / n_cols) if aisle_ids else 1

    srv_rects, rack_rects, row_rects, aisle_rects, hot_rects = [], [], [], [], []
    height = 0.0
    for c in range(n_cols):
        x0 = c * (block_w + COL_GAP)
        y = MARGIN
        for i, aisle in enumerate(aisle_ids[c * per_col:(c + 1) * per_col]):
            if i > 0:
                hot_rects.append({"x": x0, "y": y, "w": block_w, "h": HOT_H})
                y += HOT_H
            members = sorted(rows.index[rows["aisle_id"] == aisle], key=natural_key)
            n_top = math.ceil(len(members) / 2)
            order = [(r, "top") for r in members[:n_top]] + [(None, "aisle")] + [(r, "bottom") for r in members[n_top:]]
            for row_id, side in order:
                if side == "aisle":
                    aisle_rects.append({"aisle_id": aisle, "x": x0, "y": y, "w": block_w, "h": AISLE_H})
                    y += AISLE_H
                    continue
                row_rects.append({"row_id": row_id, "side": side, "x": x0, "y": y, "w": block_w, "h": row_band_h})
                in_row = servers[servers["row_id"] == row_id]
                for k, rack in enumerate(sorted(in_row["rack"].unique(), key=natural_key)):
                    x = x0 + LABEL_W + k * (RACK_W + RACK_GAP)
                    top = y + ROW_PAD
                    rack_rects.append({"rack": rack, "row_id": row_id, "x": x, "y": top, "w": RACK_W, "h": rack_h})
                    ids = sorted(in_row.index[in_row["rack"] == rack], key=natural_key)
                    if side == "top":  # the first server sits next to the cold aisle
                        ids = ids[::-1]
                    start = top + (rack_h - server_h * len(ids) if side == "top" else 0.0)
                    for j, sid in enumerate(ids):
                        srv_rects.append({"server_id": sid, "x": x, "y": start + j * server_h, "w": RACK_W,
                                          "h": server_h})
                y += row_band_h
        height = max(height, y + MARGIN)
    width = n_cols * block_w + (n_cols - 1) * COL_GAP
    cols = ["x", "y", "w", "h"]
    return FloorLayout(
        width=width, height=height,
        servers=pd.DataFrame(srv_rects, columns=["server_id", *cols]).set_index("server_id"),
        racks=pd.DataFrame(rack_rects, columns=["rack", "row_id", *cols]),
        rows=pd.DataFrame(row_rects, columns=["row_id", "side", *cols]).set_index("row_id"),
        aisles=pd.DataFrame(aisle_rects, columns=["aisle_id", *cols]),
        hot_aisles=pd.DataFrame(hot_rects, columns=cols))
