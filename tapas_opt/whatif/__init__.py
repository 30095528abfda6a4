"""What-if capacity planning: scenario files, changes, sweeps on Dask, tidy results and plots.

>>> from tapas_opt.whatif import load_sweep, run_sweep
>>> sweep = load_sweep("data/scenarios/example.yaml")            # doctest: +SKIP
>>> result = run_sweep(sweep, "whatif-out", workers=2)           # doctest: +SKIP
>>> result.table[["scenario_id", "power_capped_row_time_pct"]]   # doctest: +SKIP

The scenario file format is documented in ``docs/whatif.md``.
"""

from tapas_opt.whatif.run import ResultStore, SweepResult, run_scenario, run_sweep
from tapas_opt.whatif.spec import ScenarioSpec, Sweep, load_sweep

__all__ = ["load_sweep", "run_sweep", "run_scenario", "ResultStore", "ScenarioSpec", "Sweep", "SweepResult"]
