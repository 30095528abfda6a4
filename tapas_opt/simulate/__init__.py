"""The week-long datacenter simulator (issue 5): ``tapas-opt simulate``.

Flow: inventory ──build_scenario──▶ Scenario (VMs with arrival times, actual load from real
traces, weather, limits per step, the planner's prepared room) ──place_scenario──▶ Placement
per policy ──Engine.run──▶ SimResult (per step: rows, aisles, room) ──summarise──▶ metrics
──write_run──▶ timeseries.parquet, summary.json, comparison.csv, plots. Studies (oversubscription,
emergencies, mix) repeat this over a sweep. See docs/simulation.md.

Modules: :mod:`.traces` (seeded mapping of public traces onto VMs), :mod:`.scenario`,
:mod:`.policies`, :mod:`.engine`, :mod:`.routing` (the per-step routing LP), :mod:`.metrics`,
:mod:`.run`, :mod:`.studies`, :mod:`.plots`, :mod:`.validate` (conservation, routing oracle).
"""
