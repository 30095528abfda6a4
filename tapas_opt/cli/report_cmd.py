"""``tapas-opt report``: a plan as one self-contained HTML file (and PNG figures)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from tapas_opt.cli import handle_errors, main
from tapas_opt.cli import options as o
from tapas_opt.cli.render import broken_text, print_json, progress_steps, temp_text, violation_lines
from tapas_opt.errors import EXIT_OK, InventoryError


def _inventory_of(plan_dir: str, inventory_dir: str | None) -> str:
    """--inventory, else the ``inventory_dir`` a plan's summary.json may record."""
    from tapas_opt.api import plan_summary

    if inventory_dir:
        return inventory_dir
    recorded = plan_summary(plan_dir).get("inventory_dir")
    if recorded and Path(recorded).is_dir():
        return recorded
    raise click.UsageError("pass --inventory INVENTORY_DIR: the inventory the plan was made for "
                           "(the one given to 'tapas-opt place')")


@main.command()
@click.argument("plan_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--inventory", "-i", "inventory_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="The inventory the plan was made for (as given to 'tapas-opt place').")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default="report.html", show_default=True,
              help="HTML file to write (replaced atomically).")
@click.option("--baseline", "baseline_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="Another plan for the same inventory (e.g. '--policy first-fit') to show side by side.")
@click.option("--emergency", "emergency_dirs", multiple=True, type=click.Path(file_okay=False, exists=True),
              metavar="DIR", help="An output directory of 'tapas-opt reconfigure' to add to the Emergencies "
                                  "table (repeat for several events).")
@click.option("--simulation", "simulation_dirs", multiple=True, type=click.Path(file_okay=False, exists=True),
              metavar="DIR", help="An output directory of 'tapas-opt simulate' (a run or a --study) to add to the "
                                  "Simulations section (repeatable).")
@click.option("--whatif", "whatif_dirs", multiple=True, type=click.Path(file_okay=False, exists=True),
              metavar="DIR", help="An output directory of 'tapas-opt whatif' to add to the What-if section "
                                  "(repeatable).")
@click.option("--png-dir", type=click.Path(file_okay=False), default=None,
              help="Also write every figure as a PNG (matplotlib) into this directory: a new or empty one, or one "
                   "tapas-opt wrote (never someone else's files or an inventory).")
@click.option("--title", default=None, help="Title of the report [default: 'tapas-opt report: ROOM'].")
@click.option("--label", default=None, help="Name of the plan in the report [default: its policy].")
@click.option("--baseline-label", default=None, help="Name of the baseline in the report [default: its policy].")
@click.option("--forecast-method", type=click.Choice(["auto", "template"]), default="auto", show_default=True,
              help="Only for plans without profiles.parquet (or VMs it lacks): how to forecast the load they are "
                   "drawn with; auto is what place and verify use, so the figures match verify's.")
@o.quiet_option
@o.json_option
@handle_errors
def report(plan_dir, inventory_dir, out_path, baseline_dir, emergency_dirs, simulation_dirs, whatif_dirs, png_dir,
           title, label, baseline_label, forecast_method, quiet, as_json):
    """Draw PLAN_DIR as one self-contained HTML file that opens offline.

    The report shows a floor map of the room (aisles, rows, racks; servers coloured by peak GPU
    temperature and by peak power; servers that receive a VM marked), each row's power and each
    aisle's airflow over the horizon against its limit, the summary numbers and the unplaced VMs
    with their reasons; with --baseline, both plans side by side; with --emergency, what
    'tapas-opt reconfigure' does in each event, by policy (a warning when made for another
    room); with --simulation, the policies of 'tapas-opt simulate' side by side (a warning when
    run on another room); with --whatif, a 'tapas-opt whatif' sweep. Every number of the plan is
    recomputed from the inventory and the plan with the physics module (as 'tapas-opt verify'
    does, with its warnings: a plan made for another inventory). Outputs of other commands with
    edited or foreign files are bad input (exit 2). Exit code 0 when the report is written, also
    for a plan that breaks a limit (the report says so; gate on 'tapas-opt verify').
    """
    from tapas_opt.inventory.load import load_inventory
    from tapas_opt.report import load_plan_view, write_report
    from tapas_opt.report.emergency import load_emergency
    from tapas_opt.report.simulation import load_simulation
    from tapas_opt.report.whatif import load_whatif

    inventory_dir = _inventory_of(plan_dir, inventory_dir)
    emergencies = [load_emergency(d) for d in emergency_dirs]
    simulations = [load_simulation(d) for d in simulation_dirs]
    whatifs = [load_whatif(d) for d in whatif_dirs]
    steps = ["loading the inventory", "evaluating the plan"] + (["evaluating the baseline"] if baseline_dir else []) \
        + ["writing the report"] + (["drawing the PNG figures"] if png_dir else [])
    with progress_steps(steps, enabled=not quiet and not as_json) as step:
        step()
        inv = load_inventory(inventory_dir)
        others = [f"--emergency {e.path}: a plan for room {e.room!r}, not {inv.config.name!r} (this inventory's)"
                  for e in emergencies if e.room is not None and e.room != inv.config.name]
        others += [f"--simulation {s.path}: a run of room {s.room!r}, not {inv.config.name!r} (this inventory's)"
                   for s in simulations if s.room is not None and s.room != inv.config.name]
        step()
        view = load_plan_view(plan_dir, inv, label="plan", forecast_method=forecast_method)
        base = None
        if baseline_dir:
            step()
            try:
                base = load_plan_view(baseline_dir, inv, label="baseline", forecast_method=forecast_method)
            except InventoryError as exc:  # name the baseline: its files look like the plan's
                raise InventoryError([replace(p, file=f"--baseline {baseline_dir}: {p.file}",
                                              hint=p.hint or "is the baseline a plan of this inventory?")
                                      for p in exc.problems]) from None
        view, base = _labelled(view, label, base, baseline_label)
        step()
        path = write_report(out_path, view, base, title, emergencies=emergencies, simulations=simulations,
                            whatifs=whatifs)
        pngs = []
        if png_dir:
            step()
            from tapas_opt.report.figures import write_pngs

            pngs = write_pngs(png_dir, view, base)
    if as_json:
        print_json({"report": str(path), "png": [str(p) for p in pngs], "plan": view.headline(),
                    "warnings": view.warnings + others, "baseline_warnings": base.warnings if base is not None else None,
                    "baseline": base.headline() if base is not None else None})
    elif not quiet:
        for v in (view, base) if base is not None else (view,):
            for w in v.warnings:
                click.echo(f"warning ({v.label}): {w}", err=True)
        for w in others:
            click.echo(f"warning: {w}", err=True)
        for line in violation_lines(view.violations):
            click.echo(f"violation: {line}", err=True)
        h = view.headline()
        click.echo(f"report written to {path}: {h['placed']} placed, {h['unplaced']} unplaced; peak row power "
                   f"{h['peak_row_power_fraction']:.1%} of limit, max GPU {temp_text(h['max_gpu_temp_c'])}"
                   + (f"; {broken_text(view.violations)}" if view.violations else ""))
        for p in pngs:
            click.echo(f"figure written to {p}")
    raise SystemExit(EXIT_OK)


def _labelled(view, label, base, baseline_label):
    """Name each plan by --label, else by its policy; keep the two names distinct."""
    from dataclasses import replace

    name = label or view.summary.get("policy") or "plan"
    view = replace(view, label=name)
    if base is not None:
        bname = baseline_label or base.summary.get("policy") or "baseline"
        if bname == name:
            bname = f"{bname} (baseline)"
        base = replace(base, label=bname)
    return view, base

