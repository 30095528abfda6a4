"""``tapas-opt route``: thermal- and power-aware load shares of every SaaS endpoint per time slot."""

from __future__ import annotations

import sys

import click

from tapas_opt.cli import handle_errors, main
from tapas_opt.cli import options as o
from tapas_opt.cli.render import or_na, print_json, spinner
from tapas_opt.errors import EXIT_INFEASIBLE, EXIT_OK


@main.command()
@o.inventory_arg
@o.out_option
@o.at_option("every slot of the horizon")
@o.event_option
@click.option("--configs", "configs_path", type=click.Path(dir_okay=False, exists=True), default=None,
              help="configs.csv of 'tapas-opt reconfigure' (vm_id, config_id, power_level; the IaaS caps of the caps.csv beside it apply too) [default: the VMs' current configurations].")
@o.catalogue_option
@o.forecast_method_option
@o.quantile_option
@o.profiles_option
@o.quiet_option
@o.json_option
@handle_errors
def route(inventory_dir, out_dir, at, events, configs_path, catalogue, forecast_method, quantile, profiles_path, quiet, as_json):
    """Write each endpoint's load share per VM for every slot of the horizon (or --at one).

    Per slot, an LP splits every endpoint's forecast load over its VMs so that rows, aisles and
    GPUs stay as far from their limits as possible while every VM stays within its throughput
    under the SLO; limits come first: load is left unserved before a limit the slot can meet
    is broken. Writes routing.csv (timestamp, endpoint, vm_id, share, load_units), slots.csv
    and summary.json to --out. Exit code 1 if some slot cannot serve its whole load or
    leaves a row, aisle or GPU over its limit.
    """
    from tapas_opt.reconfig.instance import ReconfigOptions
    from tapas_opt.reconfig.run import prepare_with_catalogue, route as run

    with spinner("routing...", enabled=not quiet and not as_json):
        prep, cat = prepare_with_catalogue(inventory_dir, catalogue, profiles_path, forecast_method, events, at)
        opts = ReconfigOptions(quantile=quantile or prep.config.placement.quantile)
        result = run(inventory_dir, out_dir, at, events or ("none",), configs_path, cat, opts, prepared=prep)
    figures = result.summary
    if as_json:
        print_json({k: figures[k] for k in ("slots", "unserved_slots", "max_peak_row_power_ratio",
                                            "max_peak_aisle_airflow_ratio", "max_peak_gpu_temp_ratio",
                                            "slots_over_a_limit", "warnings")})
    elif not quiet:
        row, aisle, gpu = (or_na(figures[f"max_peak_{k}_ratio"], "{:.1%}") for k in ("row_power", "aisle_airflow",
                                                                                    "gpu_temp"))
        click.echo(f"routed {figures['slots']} slot(s); peak row power {row} of limit, peak aisle airflow {aisle}, "
                   f"hottest SaaS GPU {gpu} of its limit; {figures['unserved_slots']} slot(s) with unserved load, "
                   f"{figures['slots_over_a_limit']} over a limit")
        for w in result.warnings:
            click.echo(f"warning: {w}", err=True)
        click.echo(f"routing written to {out_dir}")
    sys.exit(EXIT_INFEASIBLE if figures["unserved_slots"] or figures["slots_over_a_limit"] else EXIT_OK)
