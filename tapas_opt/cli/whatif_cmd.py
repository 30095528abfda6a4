"""``tapas-opt whatif``: a sweep of what-if scenarios, each placement + evaluation, on Dask."""

from __future__ import annotations

import sys
from contextlib import contextmanager

import click

from tapas_opt.cli import handle_errors, main
from tapas_opt.cli import options as o
from tapas_opt.cli.render import err_console, print_json, print_table
from tapas_opt.errors import EXIT_INFEASIBLE, EXIT_OK


@contextmanager
def _progress(total: int, enabled: bool):
    """A progress bar on a terminal; one line per finished scenario in logs; nothing if quiet."""
    if not enabled:
        yield lambda outcome: None
        return
    state = {"n": 0}
    if err_console.is_terminal:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)
        from rich.text import Text

        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=True) as bar:
            task = bar.add_task("scenarios", total=total)

            def tick(outcome) -> None:
                bar.advance(task)
                if not outcome.ok:
                    err_console.print(Text.assemble(("failed", "red"), f" {outcome.key}: {outcome.error}"))

            yield tick
        return

    def line(outcome) -> None:
        state["n"] += 1
        status = "ok" if outcome.ok else f"FAILED: {outcome.error}"
        click.echo(f"[{state['n']}/{total}] {outcome.key}: {status}", err=True)

    yield line


def _table(result):
    from rich.table import Table

    t = result.table
    table = Table(title=f"tapas-opt whatif: {result.summary['name']} ({len(t)} scenarios; power as a fraction of "
                        "the limit, capped: % of row-time, throttled: % of GPU-time)", title_justify="left")
    table.add_column("scenario", overflow="fold")
    for col in ("power", "GPU C", "capped", "throttled", "forced", "unplaced"):
        table.add_column(col, justify="right", no_wrap=True)
    for _, r in t.head(40).iterrows():
        table.add_row(str(r["scenario_id"]), f"{r['peak_row_power_fraction']:.3f}", f"{r['max_gpu_temp_c']:.1f}",
                      f"{r['power_capped_row_time_pct']:.2f}", f"{r['thermal_throttled_gpu_time_pct']:.2f}",
                      str(r["vms_forced"]), str(r["vms_unplaced"]))
    if len(t) > 40:
        table.caption = f"first 40 of {len(t)}: all in results.csv"
    return table


@main.command("whatif")
@click.argument("scenarios_file", type=click.Path(dir_okay=False, path_type=str))
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Directory of the sweep's results (kept and resumed; required unless --list).")
@o.scheduler_option
@o.dask_workers_option
@o.retries_option
@click.option("--force", is_flag=True, help="Re-run every scenario, even those with a current result in --out.")
@click.option("--list", "list_only", is_flag=True, help="List the scenarios the file expands to and exit.")
@click.option("--plots/--no-plots", default=True, show_default=True, help="Write the PNG figures to OUT/plots.")
@o.quiet_option
@o.json_option
@handle_errors
def whatif(scenarios_file, out_dir, scheduler, dask_workers, retries, force, list_only, plots, quiet, as_json):
    """Run the what-if scenarios of SCENARIOS_FILE (docs/whatif.md): each changes the base
    inventory (servers added per row, load growth, weather, failures, limits), places the
    pending VMs and scores the week.

    Scenarios run as Dask tasks, on an in-process LocalCluster by default. Each finished
    scenario is written to OUT/scenarios/ID.json at once; a re-run skips scenarios whose result
    is current, so an interrupted sweep resumes. Then OUT/results.csv and .parquet (one line per
    scenario), rows.csv, deployable.csv and plots. Exit code 1 if any scenario failed (the others'
    results are kept; failures are in OUT/failed/).
    """
    from tapas_opt.whatif import ResultStore, load_sweep, run_sweep

    if out_dir is None and not list_only:
        raise click.UsageError("Missing option '--out' (only --list runs without it).")
    sweep = load_sweep(scenarios_file)
    if list_only:
        store = ResultStore(out_dir) if out_dir is not None else None
        rows = [{"scenario_id": s.id, "name": s.name, "parameters": s.parameters,
                 "finished": store is not None and store.is_done(s)} for s in sweep.scenarios]
        if as_json:
            print_json(rows)
        else:
            for r in rows:
                click.echo(f"{r['scenario_id']}{'  (finished)' if r['finished'] else ''}")
            click.echo(f"{len(rows)} scenarios", err=True)
        sys.exit(EXIT_OK)
    store = ResultStore(out_dir)
    todo = len(sweep.scenarios) if force else sum(not store.is_done(s) for s in sweep.scenarios)
    if not quiet and not as_json:
        where = scheduler or (f"a LocalCluster of {dask_workers} worker processes" if dask_workers
                              else "this process, one after the other (no Dask)")
        click.echo(f"{len(sweep.scenarios)} scenarios, {len(sweep.scenarios) - todo} already finished; "
                   f"running {todo} on {where}", err=True)
    with _progress(todo, not quiet and not as_json) as tick:
        result = run_sweep(sweep, out_dir, scheduler=scheduler, workers=dask_workers, retries=retries, force=force,
                           plots=plots, on_result=tick)
    if as_json:
        print_json(result.summary)
    elif not quiet:
        if not result.table.empty:
            print_table(_table(result))
        for f in result.failed:
            click.echo(f"failed: {f['scenario_id']}: {f['error']}", err=True)
        click.echo(f"{result.summary['finished']} of {result.total} scenarios finished "
                   f"({result.ran} run now, {result.skipped} skipped, {len(result.failed)} failed) "
                   f"in {result.wall_s:.1f} s; results in {out_dir}")
    sys.exit(EXIT_INFEASIBLE if result.failed else EXIT_OK)
