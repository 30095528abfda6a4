"""``tapas-opt fit``: fit the room's physics to its telemetry and write physics.yaml."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from tapas_opt.cli import handle_errors, main
from tapas_opt.cli import options as o
from tapas_opt.cli.render import print_json, print_table
from tapas_opt.errors import EXIT_BAD_INPUT, EXIT_OK


def _fit_table(calib):
    from rich.table import Table
    from tapas_opt.calibrate.regress import DISPLAY_UNITS

    t = Table(title="fitted models (95 % confidence intervals; MAE in-sample / hold-out: last 20 % of time)",
              title_justify="left")
    for col in ("model", "coefficient", "value", "95 % CI", "MAE", "n"):
        t.add_column(col, justify="left" if col in ("model", "coefficient") else "right")
    for name, fit in calib.fits.items():
        first = True
        hold = "-" if fit.holdout_mae is None else f"{fit.holdout_mae:.3g}"
        for cname, c in fit.coefficients.items():
            ci = "" if c.low is None else f"[{c.low:.4g}, {c.high:.4g}]"
            t.add_row(name if first else "", cname, f"{c.value:.4g}", ci,
                      f"{fit.mae:.3g} / {hold} {DISPLAY_UNITS.get(fit.unit, fit.unit)}" if first else "",
                      str(fit.n) if first else "")
            first = False
    return t


def _no_fit(reasons: str) -> str:
    return f"no model could be fitted ({reasons}; docs/calibration.md lists the calibration columns each model needs)"


@main.command()
@o.inventory_arg
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Where to write the fitted physics [default: INVENTORY_DIR/physics.yaml, which place reads].")
@click.option("--dry-run", is_flag=True, help="Fit and report, write nothing.")
@o.quiet_option
@o.json_option
@handle_errors
def fit(inventory_dir, out_path, dry_run, quiet, as_json):
    """Fit GPU power, GPU temperature, server power, airflow and inlet models to INVENTORY_DIR.

    Uses the optional calibration columns of the telemetry (gpu_power_w, gpu_temp_c,
    inlet_temp_c, server_power_kw, airflow_cfm; see docs/calibration.md) and outside.csv. Each
    model is an OLS regression (statsmodels) on the form physics.py uses, reported with 95 %
    confidence intervals and MAE. The coefficients go to INVENTORY_DIR/physics.yaml, which
    validate, place, verify and report then use instead of datacenter.yaml's defaults. Exit code 2 if
    no model could be fitted.
    """
    from tapas_opt.calibrate.physics_file import write_physics_file
    from tapas_opt.calibrate.run import fit_inventory
    from tapas_opt.cli import OUT_FILE_HEADS
    from tapas_opt.inventory.load import load_inventory
    from tapas_opt.io import check_file_replaceable

    target = Path(out_path) if out_path else Path(inventory_dir) / "physics.yaml"
    if not out_path and not dry_run:  # the default target gets the same check as an explicit --out
        check_file_replaceable(target, [], OUT_FILE_HEADS["fit"])
    # Without its physics.yaml: a re-fit starts from the telemetry and servers.csv, not from the
    # last fit (whose per-server offsets it would fit against), and a stale one (a server
    # renamed since) cannot block the fit that replaces it.
    inventory = load_inventory(inventory_dir, physics=False)
    calib = fit_inventory(inventory)
    wrote = bool(calib.fits) and not dry_run
    if wrote:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        write_physics_file(target, calib.physics,
                           f"Fitted by tapas-opt fit from {inventory_dir} on {stamp}.\n"
                           "The loader applies server_defaults, inlet and servers (over datacenter.yaml and "
                           "servers.csv);\nsource and fits are the report. Delete this file to use "
                           "datacenter.yaml's models again.")
    reasons = "; ".join(f"{k}: {v}" for k, v in calib.skipped.items()) or "no calibration columns"
    if as_json:
        done = {"ok": True} if calib.fits else {"ok": False, "exit_code": EXIT_BAD_INPUT, "error": _no_fit(reasons)}
        print_json({**done, "written": str(target) if wrote else None, "fits": calib.physics.get("fits", {}),
                    "skipped": calib.skipped})
    elif not quiet:
        if calib.fits:
            print_table(_fit_table(calib))
        for name, why in calib.skipped.items():
            click.echo(f"skipped {name}: {why}", err=True)
        for name, fit in calib.fits.items():
            for note in fit.notes:
                click.echo(f"note ({name}): {note}", err=True)
        click.echo(f"physics written to {target}" if wrote else "nothing written")
    if not calib.fits:
        said_above = calib.skipped and not quiet and not as_json
        click.echo(f"error: {_no_fit('see the reasons above' if said_above else reasons)}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    sys.exit(EXIT_OK)
