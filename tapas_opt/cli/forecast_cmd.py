"""``tapas-opt forecast``: load profiles per VM (the ones ``place`` would use), optionally back-tested."""

from __future__ import annotations

import sys

import click

from tapas_opt.cli import handle_errors, main
from tapas_opt.cli import options as o
from tapas_opt.cli.render import err_console, or_na, print_json, print_table
from tapas_opt.errors import EXIT_OK


def _progress_bar(enabled: bool):
    """A rich progress bar on stderr, fed by ``progress(stage, done, total)`` callbacks."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if not enabled:
        return None, None
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err_console, transient=True)
    tasks: dict[str, int] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    return bar, update


def _backtest_table(table, params):
    from rich.table import Table

    t = Table(title=f"back-test: {params['origins']} origins every {params['every_h']:g} h, "
                    f"{params['history_h']:g} h history, {params['horizon_h']:g} h horizon "
                    "(all scores in backtest.csv)", title_justify="left")
    for col in ("method", "VMs", "MAE", "within 10%", "pinball", "vs template", "P99 exceeded", "ms/VM"):
        t.add_column(col, justify="left" if col == "method" else "right")
    for name, r in table.iterrows():
        t.add_row(str(name), f"{int(r['vms'])}", f"{r['mae']:.4f}", f"{r['within_10pct']:.1%}",
                  f"{r['pinball_mean']:.4f}", or_na(r["vs_template"], "{:.2f}"), f"{r['exceeded_p99']:.1%}",
                  f"{r['seconds_per_series'] * 1000:.1f}")
    return t


@main.command()
@o.inventory_arg
@o.out_option
@click.option("--method", type=click.Choice(["auto", "template", "recent-mix", "profile-mix", "profile",
                                             "profile-recent", "seasonal-naive", "mstl-ets", "holt-winters",
                                             "stl-ar"]),
              default="auto", show_default=True,
              help="auto: per VM, the method that back-tests best on its own history; else one method for all.")
@click.option("--backtest", is_flag=True, help="Also back-test every method at rolling origins (backtest.csv).")
@click.option("--origins", type=click.IntRange(min=1), default=7, show_default=True,
              help="Back-test origins (one a day, the last a horizon before the end of the telemetry).")
@click.option("--statsmodels-vms", type=click.IntRange(min=0), default=10, show_default=True,
              help="At most this many VMs try the statsmodels models (0.05-0.5 s per VM and model).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes for the statsmodels fits.")
@o.quiet_option
@o.json_option
@handle_errors
def forecast(inventory_dir, out_dir, method, backtest, origins, statsmodels_vms, workers, quiet, as_json):
    """Forecast the load of every VM of INVENTORY_DIR and write DIR/profiles.csv + summary.json.

    profiles.csv has one row per VM and slot of the horizon place would plan (vm_id, timestamp,
    p50, p90, p99, load 0..1); place --profiles DIR/profiles.csv uses it instead of forecasting.
    summary.json says which method each VM got, its back-test losses and what was irregular,
    duplicated or missing in the telemetry.
    """
    from tapas_opt.forecast.run import backtest_inventory, forecast_inventory, write_forecast
    from tapas_opt.inventory.load import load_inventory

    inventory = load_inventory(inventory_dir)
    bar, progress = _progress_bar(not quiet and not as_json)
    options = {"max_statsmodels_vms": statsmodels_vms, "workers": workers}
    if bar:
        bar.start()
    try:
        run = forecast_inventory(inventory, method, progress=progress, **options)
        if backtest:
            run.backtest, run.backtest_params = backtest_inventory(
                inventory, origins=origins, statsmodels_vms=statsmodels_vms, progress=progress, **options)
    finally:
        if bar:
            bar.stop()
    write_forecast(out_dir, run)
    summary = {k: v for k, v in run.summary.items() if k != "per_vm"}
    if as_json:
        if run.backtest is not None:
            summary["backtest"] = {"params": run.backtest_params,
                                   "methods": run.backtest.round(6).to_dict(orient="index")}
        print_json(summary)
    elif not quiet:
        counts = ", ".join(f"{k} {v}" for k, v in summary["methods"].items())
        click.echo(f"forecast {summary['vms']} VMs over {summary['horizon']['slots']} slots of "
                   f"{summary['horizon']['step_min']} min from {summary['horizon']['start']} "
                   f"in {summary['seconds']:.1f} s: {counts}")
        for note in summary["telemetry_notes"]:
            click.echo(f"note: {note}", err=True)
        for warning in summary["warnings"]:
            click.echo(f"warning: {warning}", err=True)
        if run.backtest is not None:
            print_table(_backtest_table(run.backtest, run.backtest_params))
            for warning in run.backtest_params.get("warnings", []):
                click.echo(f"warning: back-test: {warning}", err=True)
        click.echo(f"profiles written to {out_dir}")
    sys.exit(EXIT_OK)
