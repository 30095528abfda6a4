"""Typed errors and the documented exit codes of the command line.

Every problem found in user input is a :class:`Problem` naming the file, the row (as the line
number a spreadsheet or editor shows, header = line 1), the column, what is wrong and what to
do. Loaders collect all problems before raising :class:`InventoryError`, so a user fixes an
inventory in one pass instead of one error per run.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

EXIT_OK = 0
"""Success: the plan places every requested VM, or the check found no violation."""
EXIT_INFEASIBLE = 1
"""The request cannot be met in full (VMs left unplaced), the plan breaks a limit (``place`` with a
baseline policy such as ``first-fit``, ``reconfigure``, ``route``), or ``verify`` found a violation."""
EXIT_BAD_INPUT = 2
"""The input is malformed: every problem is listed (the first 20 of one code per file, then how
many more; also click's exit code for bad usage), or the
output cannot be written (a parent that is a file, a read-only or full disk, someone else's
directory): said before any work where it can be known."""
EXIT_INTERNAL = 3
"""An unexpected internal error (a bug): please report it with the input that caused it."""
EXIT_INTERRUPTED = 130
"""Interrupted (Ctrl-C, SIGTERM, SIGHUP): nothing half-written, the previous output kept; what a
run had finished stays (what-if sweeps keep every finished scenario and resume from there)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, addressed precisely enough to fix it."""

    code: str
    file: str
    message: str
    hint: str = ""
    line: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
        if self.column:
            where += f" [{self.column}]"
        text = f"{where}: {self.code}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


MAX_PROBLEMS_PER_CODE = 20
"""Problems of one code listed per file; the rest are counted (:data:`MORE`)."""
MORE = "... and {} more like the above"


def first_problems(code: str, file: str, items, make) -> list[Problem]:
    """``make(item)`` for the first :data:`MAX_PROBLEMS_PER_CODE` of ``items``, then one line
    saying how many more: a file wrong on every row is reported in a screenful, with its true
    count."""
    items = list(items)
    out = [make(item) for item in items[:MAX_PROBLEMS_PER_CODE]]
    if len(items) > MAX_PROBLEMS_PER_CODE:
        out.append(Problem(code, file, MORE.format(len(items) - MAX_PROBLEMS_PER_CODE)))
    return out


def missing_columns(file: str, found, required, hint: str) -> list[Problem]:
    """One ``missing_column`` problem per column of ``required`` that ``found`` lacks. A found
    header that differs only in case, spaces or dashes ('P50', 'VM ID', 'vm-id') is named: the
    column is there, written otherwise, and names are matched exactly."""
    found = [str(c) for c in found]
    problems = []
    for column in required:
        if column in found:
            continue
        alike = [c for c in found if _header_key(c) == _header_key(column)]
        message = f"required column '{column}' is missing"
        if alike:
            message += (f"; the file has {alike[0]!r}: column names are matched exactly "
                        f"(lower case, '_' between words)")
        problems.append(Problem("missing_column", file, message, hint))
    return problems


def _header_key(name: str) -> str:
    return re.sub(r"[\s\-_]+", "_", name.strip().lower())


def value_or_problems(make) -> tuple[Any, list[Problem]]:
    """``(make(), [])``, or ``(None, its problems)`` when it raises :class:`InventoryError`: a
    reader whose result is used when it succeeds and whose problems are listed with the other
    inputs' when it does not."""
    try:
        return make(), []
    except InventoryError as exc:
        return None, list(exc.problems)


def problems_of(check) -> list[Problem]:
    """The problems ``check()`` raises as :class:`InventoryError` ([] when it passes): checks
    that each stop at their first failure, run side by side so that one run lists them all."""
    return value_or_problems(check)[1]


def first_few(items, n: int) -> str:
    """The first ``n`` of ``items``, comma-separated, then how many more: a list named inside
    one message (a warning) that stays a line long."""
    items = list(items)
    return ", ".join(map(str, items[:n])) + (f" and {len(items) - n} more" if len(items) > n else "")


def cap_problems(problems) -> list[Problem]:
    """At most :data:`MAX_PROBLEMS_PER_CODE` problems per (file, code), in order, then one line
    per (file, code) saying how many more: a file wrong on every row is reported in a screenful,
    with its true count. A check's own :data:`MORE` line (from :func:`first_problems`) is kept
    as it is; applying this twice changes nothing."""
    counts: Counter = Counter()
    kept: list[Problem] = []
    for p in problems:
        if _MORE_RE.fullmatch(p.message):
            kept.append(p)
            continue
        key = (p.file, p.code)
        counts[key] += 1
        if counts[key] <= MAX_PROBLEMS_PER_CODE:
            kept.append(p)
    for (file, code), n in counts.items():
        if n > MAX_PROBLEMS_PER_CODE:
            kept.append(Problem(code, file, MORE.format(n - MAX_PROBLEMS_PER_CODE)))
    return kept


def count_problems(problems) -> int:
    """How many problems a list stands for: a :data:`MORE` line counts the ones it summarises."""
    total = 0
    for p in problems:
        more = _MORE_RE.fullmatch(p.message)
        total += int(more.group(1)) if more else 1
    return total


_MORE_RE = re.compile(re.escape(MORE).replace(r"\{\}", r"(\d+)"))


class TapasError(Exception):
    """Base class of errors that tapas-opt reports to the user with an exit code."""

    exit_code = EXIT_INTERNAL


class InventoryError(TapasError):
    """The inventory (or another input file) is malformed; carries every problem found."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, problems: list[Problem]):
        self.problems = cap_problems(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{count_problems(self.problems)} problem(s) in the input:\n{lines}")


class OutputError(TapasError):
    """The output path cannot be written without destroying something (an input, or a directory
    tapas-opt did not write)."""

    exit_code = EXIT_BAD_INPUT


class InfeasibleError(TapasError):
    """A request cannot be met; ``binding`` names the limits (families, rows, aisles) that bind."""

    exit_code = EXIT_INFEASIBLE

    def __init__(self, message: str, binding: list[str] | None = None):
        self.binding = list(binding or [])
        super().__init__(message)
