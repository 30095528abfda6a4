"""Colour scales of the report, identical in the HTML (SVG) and the PNG (matplotlib) figures.

Palettes are ColorBrewer's (Cynthia Brewer, colorbrewer2.org; Apache-2.0), written out so that
the HTML needs nothing at run time: RdYlBu reversed for temperature (blue = cool, red = hot) and
YlOrRd for power (yellow = near idle, dark red = at the server's maximum).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TEMP_PALETTE = ("#4575b4", "#74add1", "#abd9e9", "#e0f3f8", "#ffffbf", "#fee090", "#fdae61", "#f46d43", "#d73027")
POWER_PALETTE = ("#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#bd0026", "#800026")
OVER_LIMIT = "#67001f"
NO_VM = "#e4e4e4"
PLAN_COLOUR = "#1f5fa8"
BASELINE_COLOUR = "#8a8a8a"
LIMIT_COLOUR = "#c0392b"


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


@dataclass(frozen=True)
class ColourScale:
    """Linear map from ``[vmin, vmax]`` onto a palette; values above ``vmax`` get ``over``
    when ``over`` is set (a limit), else the palette's last colour."""

    vmin: float
    vmax: float
    palette: tuple[str, ...]
    label: str
    unit: str
    over: str | None = None

    def fraction(self, value: float) -> float:
        span = self.vmax - self.vmin
        return 0.0 if span <= 0 else float(np.clip((value - self.vmin) / span, 0.0, 1.0))

    def colour(self, value: float) -> str:
        """Hex colour of ``value``; NaN (no VM on the server) is light grey."""
        if value is None or not math.isfinite(value):
            return NO_VM
        if self.over is not None and value > self.vmax + 1e-9:
            return self.over
        f = self.fraction(value) * (len(self.palette) - 1)
        i = min(int(f), len(self.palette) - 2)
        a, b = _rgb(self.palette[i]), _rgb(self.palette[i + 1])
        t = f - i
        return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b))

    def ticks(self, n: int = 5) -> list[float]:
        return list(np.linspace(self.vmin, self.vmax, n))


def temperature_scale(temps: list[float], limit_c: float) -> ColourScale:
    """Peak GPU temperature from a round floor below the coolest server up to the limit;
    servers over the limit are drawn in :data:`OVER_LIMIT`."""
    finite = [t for t in temps if t is not None and math.isfinite(t)]
    low = min(finite) if finite else limit_c - 40.0
    vmin = 5.0 * math.floor(min(low, limit_c - 10.0) / 5.0)
    return ColourScale(vmin, float(limit_c), TEMP_PALETTE, "peak hottest-GPU temperature", "°C", OVER_LIMIT)


def power_scale() -> ColourScale:
    """Peak server power from the server's idle power (0 %) to its maximum (100 %)."""
    return ColourScale(0.0, 100.0, POWER_PALETTE, "peak server power, % of the way from idle to maximum", "%")
