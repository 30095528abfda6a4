"""Terminal rendering: short tables for people, JSON for scripts, problems on stderr."""

from __future__ import annotations

import io
import math
import os
import sys
from contextlib import contextmanager
from typing import Iterable, Iterator, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from tapas_opt.errors import Problem

# User text (ids, names, messages) is printed as it is: no rich markup ("[bold]") and no emoji
# codes (":fire:"), which would otherwise rewrite an id the user has to find in a file.
PLAIN = {"highlight": False, "markup": False, "emoji": False}
err_console = Console(stderr=True, **PLAIN)
T = TypeVar("T")
STATUS_COLOURS = {"optimal": "green", "feasible": "green", "ok": "green", "partial": "yellow",
                  "violates": "red", "infeasible": "red"}
STATUS_MEANING = {"optimal": "proven best", "feasible": "every limit met; not proven best"}
"""What a plan's status word says, beside it: 'feasible' read as 'only just feasible'. Its gap is
to a lower bound (LP relaxation) that may be loose, so a best plan can show one too."""


class ReaderSafeStream(io.TextIOBase):
    """Standard output (or error) that outlives its reader: ``tapas-opt verify ... | head -1``
    closes the pipe early, and the next write would raise BrokenPipeError (an "internal error",
    exit 3) or lose the command's exit code. Once the reader is gone, output goes to the null
    device and the command ends with its own exit code; its files are written as usual."""

    def __init__(self, stream):
        super().__init__()
        self.stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self._drop()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._drop()

    def _drop(self) -> None:
        self.reader_gone = True
        try:  # the interpreter flushes the real stdout at exit: point it at the null device
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            pass

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:
        return getattr(self.stream, "encoding", "utf-8")

    @property
    def errors(self) -> str | None:
        return getattr(self.stream, "errors", None)


def print_json(data) -> None:
    from tapas_opt.io import json_text

    click.echo(json_text(data))


def print_problems(problems: list[Problem], title: str) -> None:
    """One line per problem, never wrapped (rich wrapped at 80 columns into a pipe or a log,
    splitting a message a script greps for; a terminal wraps long lines by itself)."""
    err_console.print(Text(title, style="bold red"), soft_wrap=True)
    for p in problems:
        err_console.print(f"  - {p}", soft_wrap=True)


def place_table(summary: dict, command: str = "place") -> Table:
    table = Table(title=f"tapas-opt {command}: {summary['inventory']} ({summary['policy']})", show_header=False,
                  title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    gap = summary.get("gap")
    vms = summary["vms"]
    colour = STATUS_COLOURS.get(summary["status"], "")
    status = Text(summary["status"], style=colour)
    if summary["status"] in STATUS_MEANING:
        status.append(f" ({STATUS_MEANING[summary['status']]})")
    table.add_row("status", status)
    table.add_row("VMs", f"{vms['placed']} placed, {vms['unplaced']} unplaced, {vms['running']} running")
    bound = summary.get("peak_row_power_bound")
    rows = summary.get("rows") or []
    worst = max(rows, key=lambda r: r["peak_fraction"] or 0)["row_id"] if rows else None
    table.add_row("peak row power", f"{summary['peak_row_power_fraction']:.1%} of limit"
                  + (f" in {worst}" if worst else "")
                  + (f" (LP bound {bound:.1%})" if bound is not None else ""))
    placed_t = summary.get("max_placed_gpu_temp_c")
    table.add_row("max GPU temperature", f"{temp_text(summary['max_gpu_temp_c'])} (limit {summary['gpu_temp_limit_c']:.0f} C"
                  + (f"; placed VMs {temp_text(placed_t)}" if placed_t is not None else "") + ")")
    aisles = summary["aisles"]
    if aisles:
        top = max(aisles, key=lambda a: a["peak_fraction"])
        table.add_row("peak aisle airflow", f"{top['peak_fraction']:.1%} of limit ({top['aisle_id']})")
    table.add_row("objective", f"{summary['objective']:.4f}"
                  + (f" (gap {gap:.2%} to a bound no plan beats)" if gap is not None else ""))
    table.add_row("solve time", f"{summary['solve_time_s']:.1f} s")
    return table


def echo_plan_notes(summary: dict) -> None:
    """What a plan's table does not show, on stderr: unplaced VMs, broken limits, limits the
    running VMs break alone, input warnings (``place`` and ``plan``)."""
    for u in summary["unplaced"]:
        click.echo(f"unplaced {u['vm_id']}: {u['code']}: {u['message']}", err=True)
    for line in violation_lines(summary["violations"]):
        click.echo(f"violation: {line}", err=True)
    pre = summary.get("preexisting_violations", [])
    if pre:
        click.echo(f"pre-existing: {len(pre)} limit breach(es) no placement can repair (running VMs or idle "
                   f"servers alone), e.g. {pre[0]['message']}; see summary.json", err=True)
    for w in summary.get("warnings", []):
        click.echo(f"warning: {w}", err=True)


def or_na(value, fmt: str) -> str:
    """A figure for a table or line; n/a when it has no number (null or NaN: no SaaS load, no
    SaaS GPU, a template loss of 0)."""
    return "n/a" if value is None or value != value else fmt.format(value)


def violation_lines(violations) -> list[str]:
    """One line per broken limit and place (a row, an aisle, a VM), its worst slot, instead of
    one per slot: a row over its limit all afternoon is one line, with how many slots it breaks.
    ``violations``: :class:`~tapas_opt.placement.evaluate.Violation` objects or their dicts."""
    groups: dict[tuple, list[dict]] = {}
    for v in violations:
        d = v if isinstance(v, dict) else v.to_dict()
        groups.setdefault((d["code"], d.get("subject")), []).append(d)
    lines = []
    for (code, _), items in groups.items():
        worst = max(items, key=lambda d: (d.get("value") or 0) - (d.get("limit") or 0))
        more = f" (the worst of {len(items)} slots over the limit)" if len(items) > 1 else ""
        lines.append(f"{code}: {worst['message']}{more}")
    return lines


def broken_text(violations) -> str:
    """How many limits are broken, counted per limit and place, and at how many slots in all:
    an aisle over its limit all week is one broken limit, not 168."""
    keys = {(d["code"], d.get("subject")) for d in (v if isinstance(v, dict) else v.to_dict() for v in violations)}
    slots = f" ({len(violations)} limit-slots)" if len(violations) > len(keys) else ""
    return f"{len(keys)} limit(s) broken{slots}"


def temp_text(celsius) -> str:
    """A temperature for the terminal; "none" when no GPU is busy (the summary holds null)."""
    if celsius is None or not math.isfinite(float(celsius)):
        return "none (no busy GPU)"
    # Rounded as summary.json stores it first, so that place (which prints the summary) and
    # verify (which prints its own evaluation) show the same digit for the same plan.
    return f"{round(float(celsius), 2):.1f} C"


def print_table(table: Table) -> None:
    """On a terminal, as wide as it is; into a pipe or file, wide enough that no number is cut
    (rich would otherwise assume 80 columns and truncate cells)."""
    console = Console(file=sys.stdout, **PLAIN)
    if not console.is_terminal:
        console = Console(file=sys.stdout, width=max(console.width, 200), **PLAIN)
    console.print(table)


# ---- progress ------------------------------------------------------------------------------------

@contextmanager
def spinner(text: str, enabled: bool = True):
    """A spinner with ``text`` on stderr while the block runs (nothing when disabled:
    ``--quiet``, ``--json``); stopped however the block ends."""
    if not enabled:
        yield
        return
    with err_console.status(text):
        yield


@contextmanager
def progress_steps(steps: list[str], enabled: bool = True):
    """A progress bar over named steps, on stderr; yields ``step()``, to call at each step's start.

    Disabled (``--quiet``, ``--json``) or when stderr is not a terminal, ``step()`` does nothing,
    so scripts and logs see no control characters.
    """
    if not enabled or not err_console.is_terminal:
        yield lambda: None
        return
    with _progress() as bar:
        task = bar.add_task(steps[0] if steps else "", total=len(steps))
        state = {"i": -1}

        def step() -> None:
            state["i"] += 1
            i = state["i"]
            bar.update(task, completed=i, description=steps[i] if i < len(steps) else "done")

        yield step
        bar.update(task, completed=len(steps), description="done")


def progress_bar(items: Iterable[T], total: int | None = None, description: str = "", enabled: bool = True
                 ) -> Iterator[T]:
    """Iterate ``items`` with a progress bar on stderr (for loops of many seconds: sweeps,
    simulated days, policies). Plain iteration when disabled or stderr is not a terminal."""
    if not enabled or not err_console.is_terminal:
        yield from items
        return
    with _progress() as bar:
        yield from bar.track(items, total=total, description=description)


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err_console, transient=True)
