"""Helpers the benchmark scripts share: run a CLI command with its wall time, name the machine.

The scripts run as ``python benchmarks/NAME.py``, which puts this directory on ``sys.path``."""

from __future__ import annotations

import os
import platform
import subprocess
import time


def run(cmd: list[str]) -> tuple[int, float, str]:
    """Exit code, wall seconds and combined output of one command."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return proc.returncode, time.perf_counter() - t0, proc.stdout + proc.stderr


def machine() -> str:
    """The line BENCHMARKS.md quotes: architecture, cores, Python."""
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
