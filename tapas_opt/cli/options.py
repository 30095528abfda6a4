"""Options shared by several commands, each defined once (the pip-tools pattern)."""

from __future__ import annotations

import math

import click

from tapas_opt.config import MAX_SEED, MAX_TIME_LIMIT_S, MIN_TIME_LIMIT_S, QUANTILES
from tapas_opt.placement.solve import POLICIES


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange without 'nan' and 'inf' (which compare as neither below nor above a
    bound, so FloatRange lets them through to the solvers)."""

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return rv

    def _describe_range(self) -> str:
        """click describes a range without bounds as 'x<=None' in --help."""
        if self.min is None and self.max is None:
            return "any finite number"
        return super()._describe_range()


inventory_arg = click.argument("inventory_dir", type=click.Path(file_okay=False, path_type=str))
out_option = click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
                          help="Directory to write (replaced atomically; never left half-written).")
quiet_option = click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
policy_option = click.option("--policy", type=click.Choice(POLICIES), default="optimal", show_default=True,
                             help="Placement policy (baselines share the same code path).")
time_limit_option = click.option("--time-limit", "time_limit_s", type=FiniteFloatRange(MIN_TIME_LIMIT_S, MAX_TIME_LIMIT_S), default=None,
                                 help="Solver budget: seconds of CP-SAT deterministic time for the search, shared by its stages, so the same input and seed give the same plan. Not a wall-clock limit: building the models, the LP bound and the greedy start come on top, and on a busy machine the search takes longer (a 1 s budget took 9 s of wall time on a 120-server room); a wall-clock net stops CP-SAT at 5x the budget, at least 60 s [default: datacenter.yaml, else 40].")
workers_option = click.option("--workers", type=click.IntRange(min=1), default=None,
                              help="Solver threads [default: datacenter.yaml, else 2].")
seed_option = click.option("--seed", type=click.IntRange(0, MAX_SEED), default=None, help="Random seed [default: datacenter.yaml, else 0].")
quantile_option = click.option("--quantile", type=click.Choice(QUANTILES), default=None,
                               help="Load band to plan for [default: datacenter.yaml, else p99].")
profiles_option = click.option("--profiles", "profiles_path", type=click.Path(dir_okay=False, exists=True),
                               default=None, help="Use these load profiles (vm_id, timestamp, p50, p90, p99) "
                                                  "instead of forecasting.")
backend_option = click.option("--solver", "backend", type=click.Choice(["cp-sat", "pulp"]), default="cp-sat",
                              show_default=True, help="cp-sat, or pulp (CBC) as a cross-check.")

# ---- reconfiguration and routing (issue 4) ------------------------------------------------------
event_option = click.option(
    "--event", "events", multiple=True, metavar="EVENT",
    help="ups-failure[:FRACTION] | ahu-failure:AISLE[:FRACTION] | heatwave:+5C | row-power:ROW:KW | none; "
         "repeat to combine (applied in order).")


def at_option(default: str):
    """``--at``: a time inside the forecast horizon, or 'peak'; ``default`` says what its absence means."""
    return click.option("--at", "at", default=None, metavar="TIME",
                        help="Time inside the forecast horizon (ISO 8601), or 'peak' for the slot of the weekly peak "
                             f"of room power [default: {default}].")


catalogue_option = click.option("--catalogue", "catalogue", type=click.Path(dir_okay=False, exists=True), default=None,
                                help="LLM configuration catalogue CSV [default: $TAPAS_OPT_CATALOGUE, else the bundled models/catalogue/llm_configs.csv, installed with the package].")
polish_time_limit_option = click.option(
    "--time-limit", "time_limit_s", type=FiniteFloatRange(MIN_TIME_LIMIT_S, MAX_TIME_LIMIT_S), default=None,
    help="Wall-clock safety net of the integral polish in seconds [default: 120]. The polish stops "
         "at --max-nodes; only if this clock stops it first can the plan depend on the machine "
         "(summary.json says so).")
max_nodes_option = click.option(
    "--max-nodes", type=click.IntRange(min=0), default=None,
    help="Branch-and-bound nodes of the integral polish [default: 1000]: a work limit, so the same "
         "input gives the same plan on any machine; 0 keeps the LP-diving plan.")
forecast_method_option = click.option("--forecast-method", type=click.Choice(["auto", "template"]), default="auto",
                                      show_default=True,
                                      help="auto: per VM the forecaster that back-tests best; template: the "
                                           "paper's per-slot-of-week quantiles (fast).")

# ---- scale-out on Dask (issue 6: whatif, plan-region) -------------------------------------------
scheduler_option = click.option("--scheduler", default=None, metavar="ADDRESS",
                                help="A running Dask scheduler, e.g. tcp://HOST:8786 [default: an in-process "
                                     "LocalCluster, nothing to start].")
dask_workers_option = click.option("--dask-workers", "dask_workers", type=click.IntRange(min=0), default=2,
                                   show_default=True,
                                   help="Worker processes of the in-process LocalCluster (one thread each); 0: no "
                                        "Dask, one task after the other in this process; ignored with --scheduler.")
region_dask_workers_option = click.option(
    "--dask-workers", "dask_workers", type=click.IntRange(min=1), default=2, show_default=True,
    help="Worker processes of the in-process LocalCluster (one thread each; rooms are planned as "
         "Dask tasks, so at least 1); ignored with --scheduler.")
retries_option = click.option("--retries", type=click.IntRange(min=0), default=1, show_default=True,
                              help="Times a task that raised is retried (tasks of a killed worker are always "
                                   "re-run elsewhere).")
