"""``tapas-opt plan``: the nightly batch plan (place the queue, then at most N SaaS moves)."""

from __future__ import annotations

import sys

import click

from tapas_opt.cli import handle_errors, main
from tapas_opt.cli import options as o
from tapas_opt.cli.render import echo_plan_notes, place_table, print_json, print_table
from tapas_opt.errors import EXIT_INFEASIBLE, EXIT_OK


@main.command("plan")
@o.inventory_arg
@o.out_option
@click.option("--max-moves", type=click.IntRange(min=0), default=20, show_default=True,
              help="At most this many SaaS moves (create new, drain, retire old); IaaS never moves.")
@click.option("--min-gain", "min_gain_pct", type=o.FiniteFloatRange(0, 100), default=0.5, show_default=True,
              help="Propose moves only if together they cut the week's peak normalised row power by at least "
                   "this many percentage points of the row limit.")
@click.option("--previous", type=click.Path(file_okay=False, exists=True), default=None,
              help="Last night's plan directory: write diff.csv of VMs whose server changed.")
@o.time_limit_option
@o.workers_option
@o.seed_option
@o.forecast_method_option
@o.quiet_option
@o.json_option
@handle_errors
def plan(inventory_dir, out_dir, max_moves, min_gain_pct, previous, time_limit_s, workers, seed, forecast_method, quiet,
         as_json):
    """Nightly plan for INVENTORY_DIR: place the pending VMs, then choose at most --max-moves
    SaaS moves that lower the week's peak normalised row power, in an order where no
    intermediate step breaks a limit (moves.csv). Nothing is applied to the room."""
    from tapas_opt.fleet.nightly import plan_nightly

    result = plan_nightly(inventory_dir, max_moves, out_dir, previous, forecast_method, min_gain_pct=min_gain_pct,
                          time_limit_s=time_limit_s, workers=workers, seed=seed)
    s = result.summary
    if as_json:
        print_json(s)
    elif not quiet:
        print_table(place_table(s, "plan"))
        n = s["nightly"]
        points = 100 * (n["peak_row_power_with_moves"] - n["peak_row_power_without_moves"])
        click.echo(f"moves: {n['moves']} of at most {n['max_moves']}; peak row power "
                   f"{n['peak_row_power_without_moves']:.1%} -> {n['peak_row_power_with_moves']:.1%} "
                   f"({points:+.1f} points, {n['peak_row_power_change_pct']:+.1f} % relative)")
        echo_plan_notes(s)
        if n["held_back"]:
            click.echo(n["held_back"], err=True)
        if n.get("why_no_moves"):
            click.echo(f"no moves: {n['why_no_moves']}", err=True)
        if n["dropped"]:
            click.echo(f"dropped (no safe order): {', '.join(n['dropped'])}", err=True)
        click.echo(f"plan written to {out_dir}")
    sys.exit(EXIT_INFEASIBLE if s["vms"]["unplaced"] or s["violations"] else EXIT_OK)
