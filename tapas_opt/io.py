"""Atomic output: a run that fails or is interrupted never leaves a half-written result.

Files are written into a temporary sibling and moved into place with ``os.replace`` (atomic on
POSIX within one file system). A directory is written whole into a temporary sibling, then
swapped in: the old directory is renamed aside, the new one renamed into place, the old one
removed. At every instant the destination is either the old complete result or the new one.
"""

from __future__ import annotations

import glob
import json
import math
import os
import shutil
import signal
import threading
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


OUTPUT_MARKER = ".tapas-opt-output"
"""Every directory tapas-opt writes carries this (empty) file: a later run may replace such a
directory, but never one it did not write."""


INVENTORY_FILES = ("datacenter.yaml", "region.yaml")
"""A directory holding one of these is an inventory (or a region of them): only ``generate``
may replace it."""


LEGACY_SUMMARIES = ("summary.json", "region.json")
"""What outputs of versions before the marker file have (plan-region writes region.json)."""


def check_not_inventory(dest: Path | str, option: str = "--out") -> None:
    """Raise :class:`~tapas_opt.errors.OutputError` if ``dest`` holds an inventory (one of
    :data:`INVENTORY_FILES`): writing there would delete or overwrite its files."""
    from tapas_opt.errors import OutputError

    held = [name for name in INVENTORY_FILES if (Path(dest) / name).exists()]
    if held:
        raise OutputError(f"refusing to write to {dest}: it holds an inventory ({held[0]}), whose files writing "
                          f"would delete or overwrite. Choose another {option} directory.")


def check_writable_location(dest: Path | str, option: str = "--out") -> None:
    """Raise :class:`~tapas_opt.errors.OutputError` before any work if ``dest`` cannot be
    written: a parent is a file, the nearest existing parent is read-only or not ours to write,
    or ``dest`` is the working directory (or holds it), which cannot be swapped for a new one."""
    from tapas_opt.errors import OutputError

    dest = Path(dest)
    here = Path.cwd().resolve()
    real = Path(os.path.realpath(dest))
    if real == here or real in here.parents:
        raise OutputError(f"{option} {str(dest) or '.'} is the working directory (or holds it), which a run cannot "
                          f"replace: give a new directory, e.g. {option} plan")
    ancestor = real.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"cannot write {dest}: {ancestor} is a file, not a directory. Choose another {option}.")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {dest}: {ancestor} is not writable (read-only file system or no "
                          f"permission). Choose another {option}.")


def check_resumable(dest: Path | str, own_files: tuple[str, ...], option: str = "--out") -> None:
    """For commands that add to their --out directory (resumable sweeps; ``report --png-dir``,
    ``option``): ``dest`` is new, empty, or an earlier output of tapas-opt (the marker or one
    of ``own_files``), never someone else's and never an inventory."""
    from tapas_opt.errors import OutputError

    if not _new_or_own(Path(dest), own_files, inventory_ok=False, option=option):
        raise OutputError(f"refusing to write to {dest}: it is not empty and was not written by this command "
                          f"(nor by tapas-opt), so files of its own could be overwritten. Choose a new {option} "
                          f"directory (or empty this one yourself).")


def _new_or_own(dest: Path, own_files, inventory_ok: bool, option: str = "--out") -> bool:
    """Whether ``dest`` is writable and new, empty or carries the marker or one of ``own_files``
    (False: someone else's directory). A file or (unless ``inventory_ok``) an inventory raises."""
    from tapas_opt.errors import OutputError

    check_writable_location(dest, option)
    if not dest.exists():
        return True
    if not dest.is_dir():
        raise OutputError(f"{dest} is a file: {option} needs a directory path")
    if not inventory_ok:
        check_not_inventory(dest, option)
    return (dest / OUTPUT_MARKER).exists() or any((dest / f).exists() for f in own_files) or not any(dest.iterdir())


def check_replaceable(dest: Path | str, inventory_ok: bool = False) -> None:
    """Raise :class:`~tapas_opt.errors.OutputError` unless ``dest`` may be replaced: it does not
    exist, is empty, or is an earlier tapas-opt output (the marker, or ``summary.json`` or
    ``region.json`` for outputs of versions before the marker), and it is not an inventory (unless
    ``inventory_ok``: ``generate`` writes inventories). Replacing a directory deletes everything
    in it."""
    from tapas_opt.errors import OutputError

    if _new_or_own(Path(dest), LEGACY_SUMMARIES, inventory_ok):
        return
    raise OutputError(f"refusing to write to {dest}: it is not empty and was not written by tapas-opt, and "
                      f"writing would delete everything in it. Choose a new --out directory (or empty this "
                      f"one yourself).")


def check_file_replaceable(dest: Path | str, inputs, looks_like) -> None:
    """For commands writing one file: ``dest`` is not one of ``inputs`` and, if it exists, its
    first line passes ``looks_like`` (it is an earlier output of the same command)."""
    from tapas_opt.errors import OutputError

    dest = Path(dest)
    for path in inputs:
        p = Path(path).resolve()
        if p == dest.resolve():
            raise OutputError(f"--out {dest} is an input of this command ({path}): write the output elsewhere.")
    if dest.is_dir():
        raise OutputError(f"--out {dest} is a directory: give a file path")
    check_writable_location(dest)
    if dest.exists():
        try:
            with open(dest, encoding="utf-8") as fh:
                first = fh.readline()
        except (OSError, UnicodeDecodeError):
            first = ""
        if not looks_like(first):
            raise OutputError(f"refusing to overwrite {dest}: it was not written by this command. Choose a new "
                              f"--out path (or remove the file yourself).")


def check_not_input(out: Path | str, inputs) -> None:
    """Raise :class:`~tapas_opt.errors.OutputError` if replacing ``out`` would delete one of
    ``inputs`` (paths that exist: the output is one of them or contains it)."""
    from tapas_opt.errors import OutputError

    out_r = Path(out).resolve()
    for path in inputs:
        p = Path(path).resolve()
        if p == out_r or out_r in p.parents:
            raise OutputError(f"--out {out} would replace an input ({path}): the run would delete it. "
                              f"Write the output somewhere else.")


@contextmanager
def atomic_directory(dest: Path | str, inventory_ok: bool = False) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces ``dest``, on error it is removed.

    ``dest`` must be replaceable (:func:`check_replaceable`, checked before any work is done);
    the result carries :data:`OUTPUT_MARKER`. A symbolic link is followed (its target is
    replaced). The swap (old aside, new in, old removed) runs with SIGINT, SIGTERM and SIGHUP
    held back, so an interrupt lands before or after it, never between the two renames; the
    temporaries of runs that were killed outright are removed by the next run."""
    check_replaceable(dest, inventory_ok)
    dest = Path(os.path.realpath(dest))
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_runs_leftovers(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-{os.getpid()}-", dir=dest.parent))
    _normal_mode(tmp, 0o777)  # mkdtemp makes 0700; give the result normal permissions
    try:
        yield tmp
        (tmp / OUTPUT_MARKER).touch()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    with _signals_held():
        old = None
        if dest.exists():
            old = dest.parent / f".{dest.name}.old-{os.getpid()}"
            if old.exists():
                shutil.rmtree(old)
            os.replace(dest, old)
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


_HELD_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextmanager
def _signals_held():
    """Hold back interrupts for a few renames: a signal that arrives meanwhile is recorded and
    handed to its own handler when the block ends. (Blocking it with ``pthread_sigmask`` is not
    enough: another thread of the process, a solver's or numpy's, would take it.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in _HELD_SIGNALS}
    for sig in _HELD_SIGNALS:
        signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in caught[:1]:
            handler = previous[signum]
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


def _remove_dead_runs_leftovers(dest: Path) -> None:
    """Remove ``.NAME.tmp-PID-*`` and ``.NAME.old-PID`` beside ``dest`` whose process is gone
    (a run killed with SIGKILL or a power cut cannot clean up after itself)."""
    for path in dest.parent.glob(f".{glob.escape(dest.name)}.*-*"):
        kind, _, rest = path.name[len(dest.name) + 2:].partition("-")
        pid = rest.split("-")[0]
        if kind in ("tmp", "old") and pid.isdigit() and path.is_dir() and not path.is_symlink() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write a file via a temporary sibling and ``os.replace``."""
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write a file via a temporary sibling and ``os.replace``: an interrupted run leaves the
    previous file, never a truncated one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        _normal_mode(Path(tmp), 0o666)  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_figure(fig, path: Path | str, **savefig_options) -> None:
    """A matplotlib figure as PNG, drawn in memory and written with :func:`atomic_write_bytes`
    (an interrupt mid-draw left a truncated PNG over the previous one)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", **savefig_options)
    atomic_write_bytes(path, buf.getvalue())


def _normal_mode(path: Path, mode: int) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


def write_json(path: Path | str, data) -> None:
    atomic_write_text(path, json_text(data) + "\n")


def json_text(data) -> str:
    """Strict JSON (RFC 8259): NaN and infinities, which JSON has no words for, become null."""
    return json.dumps(_finite(data), indent=2, sort_keys=False, default=_json_default, allow_nan=False)


def _finite(obj):
    if isinstance(obj, float):  # numpy's float64 too
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _json_default(obj):
    import numpy as np
    import pandas as pd

    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    raise TypeError(f"not JSON serialisable: {type(obj)}")
