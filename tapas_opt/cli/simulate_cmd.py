"""``tapas-opt simulate``: replay a week of real load through placement, routing and
reconfiguration, policy by policy, and count capping and throttling (docs/simulation.md)."""

from __future__ import annotations

import math
from contextlib import contextmanager

import click

from tapas_opt.cli import handle_errors, main
from tapas_opt.cli import options as o
from tapas_opt.cli.render import err_console, or_na, print_json


@contextmanager
def _progress(enabled: bool):
    """A rich progress bar per phase (placing, simulating each policy), on stderr; nothing when
    disabled or when stderr is not a terminal (scripts and logs see no control characters)."""
    if not enabled or not err_console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=False) as bar:
        def start(label: str, total: int):
            task = bar.add_task(label, total=total)
            return lambda n: bar.advance(task, n)

        yield start


def _table(run):
    from rich.table import Table

    sc = run.scenario.describe()
    table = Table(title=f"tapas-opt simulate: {sc['name']}, {sc['steps']} steps of {sc['step_min']} min, "
                        f"{sc['vms']} VMs ({sc['initial_population']} initial, {sc['arrivals']} arriving)",
                  title_justify="left", caption="peaks at demand; % of row-time capped, % of GPU-time throttled",
                  caption_justify="left")
    table.add_column("policy", no_wrap=True)
    for col in (f"row peak (vs {run.reference})", f"GPU max (vs {run.reference})", "capped", "throttled", "SaaS served", "quality",
                "IaaS lost", "unplaced"):
        table.add_column(col, justify="right")
    for r in run.table.itertuples(index=False):
        table.add_row(r.policy, f"{r.peak_row_power:.1%} ({r.peak_row_power_change_pct:+.1f}%)",
                      f"{r.max_gpu_temp_c:.1f} C ({r.max_gpu_temp_change_pct:+.1f}%)",
                      f"{r.power_capped_row_time_pct:.2f}%", f"{r.thermal_throttled_gpu_time_pct:.2f}%",
                      or_na(r.saas_goodput_pct, "{:.2f}%"), or_na(r.saas_quality, "{:.4f}"), f"{r.iaas_perf_lost_pct:.2f}%",
                      str(r.vms_unplaced))
    return table


def _month_day(value: str) -> str:
    from tapas_opt.weather import day_of_year_hour

    try:
        day_of_year_hour(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


LEVEL_RANGES = {"oversubscription": (0.0, 3.0, "extra server shares 0..3 (0.5 = +50 %), as --oversubscribe"),
                "mix": (0.0, 1.0, "SaaS shares of the GPUs, 0..1")}


def _levels(study: str, levels: str | None, problems: list) -> list | None:
    """The sweep points of ``--levels`` (None: the study's defaults); problems appended: not
    numbers, out of the study's range, a point given twice (its row would be repeated and the
    plots cannot index it), no point at all."""
    from tapas_opt.errors import Problem

    if levels is None:
        return None
    raw = [x.strip() for x in levels.split(",") if x.strip()]
    if not raw:
        problems.append(Problem("bad_value", "--levels", f"{levels!r} names no sweep point", "e.g. 0,0.2,0.4,0.5"))
        return None
    if study == "emergencies":
        points = raw
    else:
        points = [float(x) if _is_number(x) else None for x in raw]
        problems += [Problem("bad_value", "--levels", f"{x!r} is not a number", "e.g. 0,0.2,0.4,0.5")
                     for x, p in zip(raw, points) if p is None]
        lo, hi, what = LEVEL_RANGES[study]
        problems += [Problem("bad_value", "--levels", f"{x:g} is outside {lo:g}..{hi:g}", f"--study {study} takes {what}")
                     for x in points if x is not None and not lo <= x <= hi]
    seen = [p for p in points if p is not None]
    problems += [Problem("bad_value", "--levels", f"{x if isinstance(x, str) else format(x, 'g')} is given "
                         f"{seen.count(x)} times", "list each point once")
                 for x in dict.fromkeys(seen) if seen.count(x) > 1]
    return points


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _ignored_options(study: str, events, oversubscription: float, weather, given: set[str]) -> list[str]:
    """Options this run does not use, said rather than dropped (``given``: the options given on
    the command line, not left at their defaults)."""
    said = []
    if "event_hours" in given and not events and study != "emergencies":
        said.append("--event-hours has no effect without --event")
    if "weather_start" in given and not weather:
        said.append("--weather-start has no effect without --weather")
    if study == "oversubscription" and oversubscription:
        said.append("--oversubscribe has no effect with --study oversubscription: its --levels set the servers added")
    if study == "emergencies" and events:
        said.append("--event has no effect with --study emergencies: its --levels name the events")
    return said


@main.command()
@o.inventory_arg
@o.out_option
@click.option("--policy", "policies", multiple=True, default=("all",), show_default="all", metavar="POLICY",
              help="baseline | place | route | config | place+route | place+config | route+config | tapas-rules | "
                   "full | baseline-ff | rules-place | all (repeat to run several side by side).")
@click.option("--study", type=click.Choice(["none", "oversubscription", "emergencies", "mix"]), default="none",
              show_default=True, help="Sweep instead of a single week (policies default to baseline, "
                                      "tapas-rules, full; --policy all runs every one).")
@click.option("--levels", default=None, metavar="LIST",
              help="Sweep points, comma separated: extra server shares (0.5 = +50 %), SaaS shares, or emergency "
                   "names (ups-failure, ahu-failure, heatwave:+10C, all).")
@click.option("--traces", type=click.Path(file_okay=False), default="../shared/data", show_default=True,
              help="Directory of the real traces (azure_llm_2024_minutes, cornell_biohpc_gpu_servers, "
                   "alibaba_genai_2026).")
@click.option("--actual", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Actual per-VM loads of the week (vm_id, timestamp, load) instead of mapped traces; the "
                   "inventory's telemetry is then the planner's history.")
@click.option("--step", "step_min", type=click.IntRange(min=1), default=5, show_default=True,
              help="Simulation time step (minutes).")
@click.option("--preexisting", type=click.Choice(["policy", "history"]), default="policy", show_default=True,
              help="policy: the policy also places the inventory's running VMs (a warm-up at the first step); "
                   "history: they stay where vms.csv puts them.")
@click.option("--oversubscribe", "oversubscription", type=o.FiniteFloatRange(0, 3), default=0.0, show_default=True,
              help="Add this share of servers to every row (same limits) and as many more VMs, e.g. 0.3 = +30 %; "
                   "for the week and the emergencies and mix studies.")
@click.option("--arrival-hours", type=o.FiniteFloatRange(min=0.01), default=None,
              help="Pending VMs arrive over this many hours [default: the whole week].")
@o.event_option
@click.option("--event-start", "event_start_h", type=o.FiniteFloatRange(), default=None,
              help="Event window start, hours after the week's start [default: midnight of the day the demand of every simulated VM, as if present all week, peaks].")
@click.option("--event-hours", type=o.FiniteFloatRange(min=0.01), default=24.0, show_default=True,
              help="Event window length (hours).")
@click.option("--weather", type=click.Path(dir_okay=False, exists=True), default=None,
              help="EnergyPlus .epw file: its outside temperature replaces outside.csv.")
@click.option("--weather-start", default="07-13", show_default=True, callback=lambda ctx, param, value: _month_day(value),
              help="Month-day the simulated week starts on.")
@click.option("--router", type=click.Choice(["lp", "fast"]), default="lp", show_default=True,
              help="tapas routing: the LP solved at every step, or its fast vectorised approximation.")
@click.option("--fast-placement", is_flag=True,
              help="tapas-opt placement by its online greedy only (no optimiser warm-up; for large sweeps).")
@click.option("--forecast-method", type=click.Choice(["template", "auto"]), default="template", show_default=True,
              help="What the planner forecasts with: the paper's templates (fast) or the automatic forecaster.")
@o.catalogue_option
@o.time_limit_option
@click.option("--seed", type=click.IntRange(0, o.MAX_SEED), default=0, show_default=True,
              help="Seed of arrivals, trace mapping, oblivious placement and study transforms.")
@click.option("--plots/--no-plots", default=True, show_default=True, help="Write PNG plots.")
@o.quiet_option
@o.json_option
@handle_errors
def simulate(inventory_dir, out_dir, policies, study, levels, traces, actual, step_min, preexisting, oversubscription,
             arrival_hours,
             events, event_start_h, event_hours, weather, weather_start, router, fast_placement, forecast_method,
             catalogue, time_limit_s, seed, plots, quiet, as_json):
    """Simulate a week of INVENTORY_DIR under one or more policies and write DIR.

    VMs arrive over the week and are placed by each policy from the planner's forecast; their
    actual load comes from real traces (or --actual); rows over their limit are power-capped,
    GPUs over theirs throttle. Writes timeseries.parquet, summary.json, comparison.csv and
    plots; with --study, a tidy CSV and plots of the sweep.
    """
    from tapas_opt.errors import InventoryError, Problem
    from tapas_opt.simulate.engine import EngineOptions
    from tapas_opt.simulate.policies import resolve_policies
    from tapas_opt.simulate.run import run_policies, summary_document, write_run
    from tapas_opt.simulate.scenario import ScenarioOptions, build_scenario, scenario_problems
    from tapas_opt.simulate.studies import DEFAULT_POLICIES, run_study, study_document, write_study

    ctx = click.get_current_context()
    if study != "none" and ctx.get_parameter_source("policies") == click.core.ParameterSource.DEFAULT:
        policies = DEFAULT_POLICIES  # an explicit --policy all runs all of them
    problems = []  # every bad option at once
    try:
        chosen = resolve_policies(policies)
    except ValueError as exc:
        problems.append(Problem("bad_value", "--policy", str(exc)))
    if study == "none" and levels is not None:
        problems.append(Problem("bad_value", "--levels", "sweep points need a --study",
                                "add --study oversubscription|emergencies|mix, or drop --levels"))
    points = _levels(study, levels, problems) if study != "none" else None
    opts = ScenarioOptions(step_min=step_min, preexisting=preexisting, arrival_hours=arrival_hours, seed=seed,
                           traces=traces, actual=actual, events=tuple(events), event_start_h=event_start_h,
                           event_hours=event_hours, forecast_method=forecast_method, weather=weather,
                           weather_start=weather_start,
                           placement={"time_limit_s": time_limit_s} if time_limit_s else {})
    if problems:  # with the inventory's, the files' and the other options' problems
        raise InventoryError(problems + scenario_problems(inventory_dir, opts))
    given = {name for name in ("weather_start", "event_hours")
             if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT}
    ignored = _ignored_options(study, events, oversubscription, weather, given)
    eopts = EngineOptions(router=router, catalogue=catalogue)
    show = not quiet and not as_json
    with _progress(show) as progress:
        if study != "none":
            for w in ignored if show else []:  # before a long sweep, not after it
                click.echo(f"warning: {w}", err=True)
            result = run_study(study, inventory_dir, opts, chosen, eopts, points, time_limit_s, fast_placement,
                               progress, log=(lambda m: err_console.print(m)) if show else None,
                               oversubscription=oversubscription)
            found = list(result.warnings)
            result.warnings[:0] = ignored  # all kept in summary.json
            write_study(out_dir, result, plots)
            if as_json:
                print_json(study_document(result))
            elif not quiet:
                click.echo(result.frame.to_string(index=False))
                for w in found:
                    click.echo(f"warning: {w}", err=True)
                click.echo(f"study written to {out_dir}")
            return
        scenario = build_scenario(inventory_dir, opts, oversubscription=oversubscription)
        scenario.warnings[:0] = ignored  # printed at the end and kept in summary.json
        run = run_policies(scenario, chosen, eopts, time_limit_s, seed, progress, fast_placement=fast_placement)
        write_run(out_dir, run, plots)
    if as_json:
        print_json(summary_document(run))
    elif not quiet:
        from tapas_opt.cli.render import print_table

        print_table(_table(run))
        for w in scenario.warnings:
            click.echo(f"warning: {w}", err=True)
        click.echo(f"simulation written to {out_dir}")
