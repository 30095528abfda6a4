"""``tapas-opt place``: plan the pending VMs of an inventory."""

from __future__ import annotations

import sys

import click

from tapas_opt.cli import handle_errors, main
from tapas_opt.cli import options as o
from tapas_opt.cli.render import echo_plan_notes, place_table, print_json, print_table, spinner
from tapas_opt.errors import EXIT_INFEASIBLE, EXIT_OK


@main.command()
@o.inventory_arg
@o.out_option
@o.policy_option
@o.time_limit_option
@o.workers_option
@o.seed_option
@o.quantile_option
@o.profiles_option
@o.forecast_method_option
@o.backend_option
@click.option("--power-weight", type=o.FiniteFloatRange(min=0), default=None,
              help="Weight of peak normalised row power in the objective [default 1].")
@click.option("--temp-weight", type=o.FiniteFloatRange(min=0), default=None,
              help="Weight of peak normalised GPU temperature in the objective [default 1].")
@click.option("--explain/--no-explain", default=True, show_default=True,
              help="Write explanations.json (why each VM got its server).")
@o.quiet_option
@o.json_option
@handle_errors
def place(inventory_dir, out_dir, policy, time_limit_s, workers, seed, quantile, profiles_path, forecast_method, backend,
          power_weight, temp_weight, explain, quiet, as_json):
    """Place the pending VMs (empty server_id in vms.csv) of INVENTORY_DIR and write a plan.

    The plan keeps every row under its power limit, every cold aisle under its AHU airflow and
    every GPU under its temperature limit at every slot of the horizon, with peaks as low as
    possible. Nothing is applied to the room: the plan is written to --out.
    """
    from tapas_opt.api import place as run_place

    with spinner("forecasting and solving...", enabled=not quiet and not as_json):
        result = run_place(inventory_dir, out_dir, policy=policy, backend=backend, profiles_path=profiles_path,
                           explain=explain, forecast_method=forecast_method, time_limit_s=time_limit_s, workers=workers, seed=seed,
                           quantile=quantile, power_weight=power_weight, temp_weight=temp_weight)
    summary = result.summary
    if as_json:
        print_json(summary)
    elif not quiet:
        print_table(place_table(summary))
        echo_plan_notes(summary)
        click.echo(f"plan written to {out_dir}; next: tapas-opt verify {inventory_dir} {out_dir}, "
                   f"tapas-opt report {out_dir} --inventory {inventory_dir} --out report.html")
    unplaced = summary["vms"]["unplaced"] > 0 or summary["violations"]
    sys.exit(EXIT_INFEASIBLE if unplaced else EXIT_OK)
