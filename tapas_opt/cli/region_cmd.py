"""``tapas-opt plan-region``: place a region's queue over its rooms, each room solved on its own."""

from __future__ import annotations

import sys

import click

from tapas_opt.cli import handle_errors, main
from tapas_opt.cli import options as o
from tapas_opt.cli.render import print_json, print_table, temp_text
from tapas_opt.errors import EXIT_INFEASIBLE, EXIT_OK


def _table(summary: dict):
    from rich.table import Table

    table = Table(title=f"tapas-opt plan-region: {summary['region']} ({summary['rooms']} rooms, "
                        f"{summary['servers']} servers)", title_justify="left")
    for col in ("room", "round", "VMs given", "placed", "peak row power", "LP bound", "gap", "max GPU C", "mode", "s"):
        table.add_column(col)
    # A room that took VMs in a repair round has a later line: that one describes its final plan.
    rows = sorted(summary["room_results"] + summary.get("repair_results", []), key=lambda r: (r["room"], r["round"]))
    for r in rows:
        bound = r["peak_row_power_bound"]
        gap = r["peak_row_power_gap"]
        table.add_row(r["room"], str(r["round"]), str(r["vms_given"]), str(r["vms_placed"]),
                      f"{r['peak_row_power_fraction']:.1%}",
                      "-" if bound is None else f"{bound:.1%}", "-" if gap is None else f"{gap:.2%}",
                      temp_text(r["max_gpu_temp_c"]).removesuffix(" C"), r["mode"], f"{r['total_s']:.0f}")
    return table


def _say_result(s: dict, assignment, out_dir) -> None:
    if not s["queued_vms"]:
        click.echo("nothing to place: no room has pending VMs and the region queue (pending.csv) is empty or "
                   f"absent; region.json and assignment.csv written to {out_dir}, no rooms/ folders "
                   "(each room's plan is its inventory as it is)")
        return
    print_table(_table(s))
    left = assignment[assignment["status"] == "unplaced"]
    for row in left.head(20).itertuples():
        click.echo(f"unplaced {row.vm_id}: {row.reason}", err=True)
    if len(left) > 20:
        click.echo(f"... and {len(left) - 20} more unplaced VMs (assignment.csv gives every reason)", err=True)
    gap = s["max_room_peak_row_power_gap"]
    planned = len(s["room_results"])
    click.echo(f"{s['placed']} of {s['queued_vms']} queued VMs placed; {s['rooms_within_gap_target']} of "
               f"{planned} room(s) given VMs within {s['gap_target']:.0%} of their LP bound"
               + (f" (largest gap {gap:.2%})" if gap is not None else "")
               + f"; {s['timing']['wall_s']:.0f} s; plan written to {out_dir}")


@main.command("plan-region")
@click.argument("region_dir", type=click.Path(file_okay=False, path_type=str))
@o.out_option
@o.scheduler_option
@o.region_dask_workers_option
@o.retries_option
@click.option("--room-policy", type=click.Choice(["auto", "optimal", "greedy"]), default="auto", show_default=True,
              help="auto: the greedy plan when it is within --gap-target of the room's LP bound, else the "
                   "optimiser; optimal: always the optimiser; greedy: never.")
@click.option("--gap-target", type=o.FiniteFloatRange(min=0), default=0.02, show_default=True,
              help="Largest accepted gap of a room's peak row power to its LP bound (auto policy).")
@click.option("--repair-rounds", type=click.IntRange(min=0), default=2, show_default=True,
              help="Times VMs a room could not seat are offered to the other rooms.")
@o.time_limit_option
@o.seed_option
@click.option("--forecast-method", type=click.Choice(["auto", "template"]), default="auto", show_default=True,
              help="auto: per VM the forecaster that back-tests best, as tapas-opt place (about 7 s of CPU per "
                   "1,000-server room with hourly telemetry); template: the paper's per-slot-of-week quantiles "
                   "(0.3 s).")
@o.quiet_option
@o.json_option
@handle_errors
def plan_region(region_dir, out_dir, scheduler, dask_workers, retries, room_policy, gap_target, repair_rounds,
                time_limit_s, seed, forecast_method, quiet, as_json):
    """Plan REGION_DIR (docs/whatif.md, "Region directory"): rooms load and forecast in parallel,
    one fast aggregate step decides which room takes each queued VM, then every room places its
    share on its own (Dask tasks; an in-process LocalCluster by default).

    Writes --out: region.json (per room: peak row power, LP bound, gap, time), assignment.csv
    (every queued VM's room and server) and rooms/ROOM/plan.csv + summary.json. Exit code 1 if
    some VM is left unplaced.
    """
    from tapas_opt.fleet.region import RoomOptions
    from tapas_opt.fleet.region import plan_region as run

    say = None if quiet or as_json else (lambda msg: click.echo(msg, err=True))
    result = run(region_dir, out_dir, scheduler=scheduler, workers=dask_workers, forecast_method=forecast_method,
                 options=RoomOptions(room_policy, gap_target, time_limit_s, seed), repair_rounds=repair_rounds,
                 retries=retries, progress=say)
    s = result.summary
    if as_json:
        print_json(s)
    elif not quiet:
        _say_result(s, result.assignment, out_dir)
    sys.exit(EXIT_INFEASIBLE if s["unplaced"] or s["violations"] else EXIT_OK)
