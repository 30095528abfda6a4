"""``tapas-opt reconfigure``: the emergency playbook for SaaS endpoints (and IaaS caps, last)."""

from __future__ import annotations

import sys

import click

from tapas_opt.cli import handle_errors, main
from tapas_opt.cli import options as o
from tapas_opt.cli.render import print_json, print_table, spinner, temp_text
from tapas_opt.errors import EXIT_INFEASIBLE, EXIT_OK

POLICIES = ("optimal", "greedy", "uniform-cap")


def _table(summary: dict):
    from rich.table import Table

    events = ", ".join(e["description"] for e in summary["events"])
    table = Table(title=f"tapas-opt reconfigure: {summary['name']} ({summary['policy']}) at {summary['time']}",
                  show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    saas, iaas, rc, lim = summary["saas"], summary["iaas"], summary["reconfiguration"], summary["limits"]
    table.add_row("event", events)
    table.add_row("status", summary["status"])
    table.add_row("SaaS quality loss", f"{saas['quality_loss_pct']:.2f} % (load-weighted)")
    table.add_row("served by smaller/quantised", f"{saas['smaller_or_quantised_share_pct']:.1f} % of requests")
    table.add_row("SaaS performance", f"{_signed(saas['perf_change_pct'])} % ({saas['served_pct']:.1f} % of load served, "
                                      f"{saas['endpoints_missing_slo']} endpoint(s) missing SLO"
                                      + (f"; {saas['vms_kept_over_slo']} VM(s) kept in a configuration that "
                                         "already missed it" if saas.get("vms_kept_over_slo") else "") + ")")
    table.add_row("IaaS performance", f"{_signed(iaas['perf_change_pct'])} % ({iaas['capped_vms']} VM(s) capped)")
    table.add_row("reconfiguration", f"{rc['reloads']} reload(s), {rc['online_changes']} online change(s)")
    for key, label in (("peak_row_power_ratio", "peak row power"), ("peak_aisle_airflow_ratio", "peak aisle airflow")):
        v = lim[key]
        table.add_row(label, f"{v['before']:.1%} before, {v['if_unchanged']:.1%} if nothing is done, {v['after']:.1%} with the plan")
    t = lim["max_gpu_temp_c"]
    table.add_row("max GPU temperature", f"{temp_text(t['after'])} (limit {lim['gpu_temp_limit_c']:.0f} C)")
    solver = summary.get("solver")
    if solver:
        gap, bound = solver["gap_rel"], solver["lp_objective"]
        # a relative gap on a bound near zero (no quality lost, tie-break terms only) says nothing
        gap_text = (f" (gap {gap:.2%})" if gap is not None and abs(bound or 0.0) >= 0.01 else
                    f" (gap {solver['gap_abs']:.4f} absolute)" if solver.get("gap_abs") is not None else "")
        table.add_row("solver", f"{_status_text(solver)}, objective {solver['objective']:.4f}, LP relaxation "
                                f"{bound:.4f}" + gap_text
                      + f", {solver['build_s'] + solver['lp_s'] + solver['mip_s']:.2f} s")
    return table


def _signed(pct: float) -> str:
    """+1.2 / -3.4 / +0.0: a change that rounds to zero is not shown as -0.0."""
    return f"{round(pct, 1) + 0.0:+.1f}"


def _status_text(solver: dict) -> str:
    """What the integral solve's status means: CBC's "optimal" is optimal over the columns the
    LP kept (``restricted``) and to CBC's own gap, not a proof against the LP relaxation, whose
    distance the gap shown beside it gives."""
    status = solver["status"]
    if status == "optimal":
        over = " among the LP's candidate configurations" if solver.get("method") == "restricted" else ""
        return f"integral plan optimal{over} (to CBC's gap)"
    if status == "dived":
        return "integral plan by LP diving (polish found nothing better)"
    return f"integral plan: {status}"


@main.command()
@o.inventory_arg
@o.event_option
@o.at_option("the weekly peak")
@o.out_option
@click.option("--policy", type=click.Choice(POLICIES), default="optimal", show_default=True,
              help="optimal (LP + integral solve), greedy (the paper's per-instance playbook) or uniform-cap.")
@o.catalogue_option
@o.forecast_method_option
@o.quantile_option
@o.profiles_option
@o.polish_time_limit_option
@o.max_nodes_option
@o.quiet_option
@o.json_option
@handle_errors
def reconfigure(inventory_dir, events, at, out_dir, policy, catalogue, forecast_method, quantile, profiles_path, time_limit_s,
                max_nodes, quiet, as_json):
    """Plan how SaaS endpoints of INVENTORY_DIR ride out an EVENT without touching IaaS.

    Chooses per SaaS VM a configuration (GPU power level, batch, tensor parallelism, precision,
    model size) and per endpoint a load split, so that every row, aisle and GPU fits the reduced
    limits and every endpoint serves its forecast load within its SLO, at the least quality
    loss; IaaS VMs are power-capped only if nothing else suffices. Writes configs.csv,
    routing.csv, caps.csv and summary.json to --out. Exit code 1 if a limit is still exceeded
    or an endpoint misses its SLO (summary.json says by how much).
    """
    from dataclasses import replace

    from tapas_opt.reconfig.instance import ReconfigOptions
    from tapas_opt.reconfig.run import prepare_with_catalogue, reconfigure as run

    with spinner("forecasting and solving...", enabled=not quiet and not as_json):
        prep, cat = prepare_with_catalogue(inventory_dir, catalogue, profiles_path, forecast_method, events, at)
        opts = ReconfigOptions(quantile=quantile or prep.config.placement.quantile)
        if time_limit_s is not None:
            opts = replace(opts, time_limit_s=time_limit_s)
        if max_nodes is not None:
            opts = replace(opts, max_nodes=max_nodes)
        result = run(inventory_dir, events or ("none",), at, policy, cat, out_dir, opts, prepared=prep)
    summary = result.summary
    if as_json:
        print_json(summary)
    elif not quiet:
        print_table(_table(summary))
        for v in summary["still_exceeded"]:
            click.echo(f"still exceeded: {v['code']} {v['subject']}: {v['message']} (by {v['excess']:g})", err=True)
        for w in summary.get("warnings", []):
            click.echo(f"warning: {w}", err=True)
        click.echo(f"plan written to {out_dir}")
    sys.exit(EXIT_OK if summary["feasible"] else EXIT_INFEASIBLE)
