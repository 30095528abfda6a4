"""Plans made visible: a self-contained HTML report and PNG figures (``tapas-opt report``).

>>> from tapas_opt.report import load_plan_view, write_report
>>> view = load_plan_view("plan", "data/example")               # doctest: +SKIP
>>> write_report("report.html", view)                          # doctest: +SKIP

:func:`load_plan_view` re-evaluates a plan against its inventory with the physics module alone
(as ``tapas-opt verify`` does); :func:`write_report` draws it as one HTML file that opens
offline (inline SVG and CSS, no scripts); :mod:`tapas_opt.report.figures` draws the same figures
with matplotlib.
"""

from tapas_opt.report.data import PlanView, compare_placements, load_plan_view
from tapas_opt.report.html import render_report, write_report

__all__ = ["PlanView", "compare_placements", "load_plan_view", "render_report", "write_report"]
