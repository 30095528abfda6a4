"""``tapas-opt verify``: re-check a plan with physics alone."""

from __future__ import annotations

import sys

import click

from tapas_opt.cli import handle_errors, main
from tapas_opt.cli import options as o
from tapas_opt.cli.render import broken_text, print_json, temp_text, violation_lines
from tapas_opt.errors import EXIT_INFEASIBLE, EXIT_OK


@main.command()
@o.inventory_arg
@click.argument("plan_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--strict", is_flag=True, help="Also fail on limits that running VMs break on their own.")
@o.quiet_option
@o.json_option
@handle_errors
def verify(inventory_dir, plan_dir, strict, quiet, as_json):
    """Re-check PLAN_DIR against INVENTORY_DIR without the solver.

    Recomputes row power, aisle airflow and GPU temperatures at every slot from the physics
    module; exit code 1 if the plan breaks any limit, moves a running VM or overfills a server.
    A nightly plan's moves.csv is replayed in its order: a limit broken while a move is in
    flight (old and new instance both running) fails it too.
    """
    from tapas_opt.api import verify as run_verify
    from tapas_opt.placement.output import aisle_peaks, row_peaks

    report = run_verify(inventory_dir, plan_dir)
    failed = report.violations + (report.preexisting if strict else [])
    ev = report.evaluation
    if as_json:
        print_json({"ok": not failed, "violations": [v.to_dict() for v in report.violations],
                    "preexisting_violations": [v.to_dict() for v in report.preexisting],
                    "unplaced": report.unplaced, "warnings": report.warnings,
                    "peak_row_power_fraction": ev.peak_row_power_norm,
                    "max_gpu_temp_c": ev.peak_temp_c, "rows": row_peaks(report.instance, ev),
                    "aisles": aisle_peaks(report.instance, ev)})
    elif not quiet:
        for w in report.warnings:
            click.echo(f"warning: {w}", err=True)
        for line in violation_lines(report.violations):
            click.echo(f"VIOLATION {line}", err=True)
        for line in violation_lines(report.preexisting):
            click.echo(f"{'VIOLATION' if strict else 'warning'} (running VMs alone) {line}", err=True)
        verdict = "FAILED" if failed else "ok"
        pre = f", {broken_text(report.preexisting)} by running VMs alone" if strict and report.preexisting else ""
        click.echo(f"verify {verdict}: {broken_text(report.violations)}{pre}, {len(report.unplaced)} unplaced "
                   f"VM(s); peak row power {round(ev.peak_row_power_norm, 4):.1%} of limit, max GPU {temp_text(ev.peak_temp_c)}")
    sys.exit(EXIT_INFEASIBLE if failed else EXIT_OK)
