"""``tapas-opt validate``: check an inventory and list every problem with a code."""

from __future__ import annotations

import sys

import click

from tapas_opt.cli import handle_errors, main
from tapas_opt.cli import options as o
from tapas_opt.cli.render import print_json, print_problems
from tapas_opt.errors import EXIT_BAD_INPUT, EXIT_OK, count_problems


@main.command()
@o.inventory_arg
@o.catalogue_option
@o.quiet_option
@o.json_option
@handle_errors
def validate(inventory_dir, catalogue, quiet, as_json):
    """Check INVENTORY_DIR against the format (docs/inventory-format.md).

    Lists every problem at once (file, line, column, code, what to do); exit code 2 if any.
    SaaS VMs' model and config_id are checked against the LLM catalogue, as reconfigure, route
    and simulate check them.
    """
    from tapas_opt.errors import InventoryError
    from tapas_opt.inventory.load import check_inventory, table_lines
    from tapas_opt.reconfig.catalogue import catalogue_or_problems
    from tapas_opt.reconfig.instance import assign_configs, config_warnings

    inventory, problems = check_inventory(inventory_dir)
    saas = inventory is not None and bool((inventory.vms["kind"] == "saas").any())
    if saas or catalogue is not None:  # a catalogue given is checked, with the inventory's problems
        cat, cat_problems = catalogue_or_problems(catalogue)
        problems = list(problems) + cat_problems
        if saas and not problems:
            try:
                vms_file = table_lines(inventory.root, "vms")
                _, current = assign_configs(inventory.vms, cat, *vms_file)
                inventory.warnings.extend(config_warnings(inventory.vms, cat, current, *vms_file))
            except InventoryError as exc:
                problems = list(exc.problems)
    if inventory is not None and not problems:
        problems = _calibration_problems(inventory)
    if as_json:
        print_json({"ok": not problems, "problems": [p.to_dict() for p in problems],
                    "warnings": [w.to_dict() for w in (inventory.warnings if inventory else [])]})
    elif problems:
        print_problems(problems, f"{count_problems(problems)} problem(s) in {inventory_dir}:")
    elif not quiet:
        inv = inventory
        click.echo(f"{inventory_dir}: ok ({len(inv.aisles)} aisles, {len(inv.rows)} rows, {len(inv.servers)} servers, "
                   f"{len(inv.running_vms)} running VMs, {len(inv.pending_vms)} pending, "
                   f"{len(inv.telemetry)} telemetry rows)")
        if (inv.root / "physics.yaml").exists():
            click.echo(f"physics: {inv.root / 'physics.yaml'} (the physics file 'tapas-opt fit' writes) overrides datacenter.yaml's "
                       "models and servers.csv's coefficients")
        for w in inv.warnings:
            click.echo(f"warning: {w}", err=True)
    sys.exit(EXIT_BAD_INPUT if problems else EXIT_OK)


def _calibration_problems(inventory) -> list:
    """The optional telemetry columns tapas-opt fit reads (power, temperatures, airflow), checked
    as fit checks them, so that validate does not pass what fit then refuses."""
    from tapas_opt.calibrate.telemetry import CALIBRATION_COLUMNS, calibration_columns

    if not set(CALIBRATION_COLUMNS) & set(inventory.telemetry.columns):
        return []
    return calibration_columns(inventory)[1]
