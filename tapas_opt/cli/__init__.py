"""The ``tapas-opt`` command line. Commands are thin: they parse, call :mod:`tapas_opt.api`,
render, and map errors to the documented exit codes (see :mod:`tapas_opt.errors`)."""

from __future__ import annotations

import errno
import functools
import sys
import traceback
from pathlib import Path

import click

from tapas_opt import __version__
from tapas_opt.entry import interrupt_on_termination
from tapas_opt.errors import (EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, InventoryError, TapasError,
                              count_problems)

WRITE_ERRNOS = {getattr(errno, name) for name in ("ENOSPC", "EROFS", "EACCES", "EPERM", "EDQUOT", "ENOTDIR")
                if hasattr(errno, name)}
"""Errors of writing an output that are the machine's or the location's, not a bug."""


def _problems_header(problems, inventory_dir) -> str:
    """'N problem(s) in the input:', saying where the inventory's files are when problems name
    them without a directory (a run that also reads other files names those with theirs)."""
    where = ""
    if inventory_dir and any(p.file and "/" not in p.file and "\\" not in p.file and not p.file.startswith("-")
                             for p in problems):
        where = f" (files named without a directory are in {inventory_dir})"
    return f"{count_problems(problems)} problem(s) in the input{where}:"


def handle_errors(func):
    """Turn tapas-opt errors into messages and exit codes; anything else is a bug (exit 3)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from tapas_opt.cli.render import print_problems

        try:
            _check_output(func.__name__, kwargs)
            return func(*args, **kwargs)
        except InventoryError as exc:
            print_problems(exc.problems, _problems_header(exc.problems, kwargs.get("inventory_dir")))
            _json_failure(kwargs, exc.exit_code, problems=[p.to_dict() for p in exc.problems])
            sys.exit(exc.exit_code)
        except TapasError as exc:
            click.echo(f"error: {exc}", err=True)
            _json_failure(kwargs, exc.exit_code, error=str(exc))
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted: no output was half-written", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except OSError as exc:
            hint = _path_error_hint(exc)
            if hint is None:
                _internal_error()
            # Outputs are checked before any work, but the disk can fill or a mount turn read-only
            # meanwhile, a path can be too long for the file system (and an input may be
            # unreadable to this user): name the path, not a guess.
            click.echo(f"error: {exc.strerror}: {exc.filename}; nothing was half-written. {hint}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception:  # noqa: BLE001 - last-resort report of a bug
            _internal_error()

    return wrapper


def _json_failure(kwargs: dict, exit_code: int, **what) -> None:
    """With --json, a failed run still puts JSON on stdout (``ok`` false, the exit code and the
    problems or the error), as validate --json does: a script parsing stdout got nothing. The
    text stays on stderr for people."""
    if kwargs.get("as_json"):
        from tapas_opt.cli.render import print_json

        print_json({"ok": False, "exit_code": int(exit_code), **what})


PATH_ERRNOS = {getattr(errno, name) for name in ("ENAMETOOLONG", "EISDIR", "ELOOP", "EEXIST", "ENOENT", "EINVAL")
               if hasattr(errno, name)}
"""Errors of a path the user gave (too long, a folder where a file goes, ...), not a bug."""


def _path_error_hint(exc: OSError) -> str | None:
    """What to do about an error of the machine or of a path the user gave; None for a bug."""
    if exc.errno in WRITE_ERRNOS:
        return "Free space, or check that path's permissions, or write the output elsewhere."
    if exc.errno in PATH_ERRNOS and exc.filename is not None:
        return "Give another path (shorter, or one that is not in the way of this output)."
    return None


def _internal_error():
    """Exit 3 with the traceback of the exception being handled: a bug to report."""
    click.echo("internal error (please report it with the input that caused it):", err=True)
    click.echo(traceback.format_exc(), err=True)
    sys.exit(EXIT_INTERNAL)


KEEPS_ITS_OUTPUT = {"whatif": ("sweep.json", "scenarios")}
"""Commands that add to their --out directory (resumable) instead of replacing it, and what an
earlier output of theirs holds."""


OUT_FILE_HEADS = {"report": lambda line: line.lstrip().lower().startswith("<!doctype html"),
                  "fit": lambda line: line.startswith("# Fitted by tapas-opt fit")}
"""Commands writing one file (``--out``): what the first line of an earlier output looks like."""


def _check_output(command: str, params: dict) -> None:
    """Before any work: the --out directory may be replaced (tapas-opt wrote it, or it is new
    or empty; never an inventory) and replacing it deletes no input of the command; an --out
    file is no input and, if it exists, an earlier output of the same command."""
    from tapas_opt.io import check_file_replaceable, check_not_input, check_replaceable, check_resumable

    inputs = []
    for name, value in params.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        inputs += [v for v in values if name not in ("out_dir", "out_path") and isinstance(v, (str, Path))
                   and Path(v).exists()]
    if params.get("png_dir"):  # report's figures: added to a directory tapas-opt wrote (or a new/empty one)
        check_resumable(params["png_dir"], (), option="--png-dir")
    out_file = params.get("out_path")
    if out_file is not None and command in OUT_FILE_HEADS:
        check_file_replaceable(out_file, inputs, OUT_FILE_HEADS[command])
    out = params.get("out_dir")
    if out is None:
        return
    if command in KEEPS_ITS_OUTPUT:  # adds files: only into its own earlier output, never an inventory
        check_resumable(out, KEEPS_ITS_OUTPUT[command])
        return
    check_not_input(out, inputs)
    check_replaceable(out, inventory_ok=command == "generate")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tapas-opt")
def main() -> None:
    """Thermal- and power-aware planning for GPU datacenters running LLM inference.

    Exit codes: 0 success; 1 infeasible request (VMs left unplaced) or a plan violates a
    limit; 2 malformed input (every problem is listed) or bad usage; 3 internal error; 130
    interrupted (Ctrl-C, SIGTERM, SIGHUP).
    """
    from tapas_opt.cli.render import ReaderSafeStream

    interrupt_on_termination()
    if not isinstance(sys.stdout, ReaderSafeStream):
        sys.stdout = ReaderSafeStream(sys.stdout)
    if not isinstance(sys.stderr, ReaderSafeStream):
        sys.stderr = ReaderSafeStream(sys.stderr)


from tapas_opt.cli import generate_cmd, place_cmd, plan_cmd, validate_cmd, verify_cmd, reconfigure_cmd, route_cmd, forecast_cmd, fit_cmd, report_cmd, simulate_cmd, whatif_cmd, region_cmd  # noqa: E402,F401
