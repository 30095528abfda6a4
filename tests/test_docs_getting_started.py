"""docs/getting-started.md works as written: its `sh` blocks run in order, its links resolve."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import REPO, SHARED_DATA
from tapas_opt.cli import main

GUIDE = REPO / "docs" / "getting-started.md"
OWN_DOCS = [GUIDE, REPO / "docs" / "calibrate-your-room.md"]
# Only to keep the suite fast; the guide's commands are otherwise run verbatim.
FAST = {"place": ["--forecast-method", "template", "--time-limit", "5"],
        "plan": ["--forecast-method", "template", "--time-limit", "5"],
        "reconfigure": ["--forecast-method", "template"],
        "simulate": ["--step", "60", "--fast-placement", "--router", "fast", "--no-plots"]}


def sh_commands(text: str) -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def documented_exit(command: str) -> int | None:
    """The exit code a command's own comment documents (``# exits 1: ...``), else None (0)."""
    m = re.search(r"#\s*exits\s+(\d+)", command)
    return int(m.group(1)) if m else None


@pytest.mark.slow
def test_getting_started_commands_run_in_order(tmp_path, monkeypatch):
    """Every command of the guide's `sh` blocks exits 0, run from a copy of the repository root."""
    for name in ("data", "docs"):
        os.symlink(REPO / name, tmp_path / name)
    commands = sh_commands(GUIDE.read_text())
    assert any(c.startswith("tapas-opt report") for c in commands)
    monkeypatch.chdir(tmp_path)
    for command in commands:
        args = shlex.split(command, comments=True)
        expected = documented_exit(command)
        if args[0] == "tapas-opt":
            if args[1] not in main.commands:
                pytest.fail(f"the guide runs '{command}' but there is no command {args[1]!r}")
            # A command whose comment documents its exit code runs verbatim (the fast options
            # could change the outcome the guide describes).
            extra = FAST.get(args[1], []) if expected is None else []
            if args[1] == "simulate" and "--traces" not in args:
                if not SHARED_DATA.is_dir():
                    continue  # the real traces are not here; the rest of the guide still runs
                extra = extra + ["--traces", str(SHARED_DATA)]  # the guide runs from the repository root
            if args[1] == "report" and "--simulation" in args and not (tmp_path / "week").exists():
                continue
            res = CliRunner().invoke(main, args[1:] + extra)
            assert res.exit_code == (expected or 0), f"{command}\n{res.output}"
        elif args[0] == "python" and args[1].startswith("docs/"):
            res = subprocess.run([sys.executable, *args[1:]], capture_output=True, text=True, timeout=300)
            assert res.returncode == 0, f"{command}\n{res.stdout}\n{res.stderr}"
        else:
            pytest.fail(f"the test does not know how to run {command!r}: use a `text` block for it")
    for out in ("report.html", "compare.html", "nightly.html", "my-report.html", "whatif.html"):
        assert (tmp_path / out).stat().st_size > 10_000, out
    assert len(list((tmp_path / "figures").glob("*.png"))) >= 4
    if SHARED_DATA.is_dir():
        assert "simulations" in (tmp_path / "week.html").read_text()


@pytest.mark.parametrize("doc", OWN_DOCS, ids=lambda p: p.name)
def test_relative_links_resolve(doc):
    """Every relative link of the guides points at a file or folder of the repository."""
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
        if "://" in target:
            continue
        assert (doc.parent / target).exists(), f"{doc.name}: broken link {target}"


def test_spreadsheet_export_is_what_make_export_writes(tmp_path):
    """The committed export files are reproducible from the example room."""
    src = REPO / "docs" / "examples" / "spreadsheet"
    work = tmp_path / "spreadsheet"
    work.mkdir()
    script = (src / "make_export.py").read_text().replace(
        'HERE = Path(__file__).resolve().parent\nEXAMPLE = HERE.parents[2] / "data" / "example"',
        f'HERE = Path({str(work)!r})\nEXAMPLE = Path({str(REPO / "data" / "example")!r})')
    (work / "make_export.py").write_text(script)
    res = subprocess.run([sys.executable, str(work / "make_export.py")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    for name in ("dcim_servers.csv", "capacity.csv", "vm_list.csv", "gpu_utilisation.csv"):
        assert (work / name).read_text() == (src / name).read_text(), name


def test_the_spreadsheet_converter_reads_the_units_the_guide_names():
    """The guide says airflow may come in m³/h; the converter read only the ASCII 'm3/h'."""
    sys.path.insert(0, str(REPO / "docs" / "examples" / "spreadsheet"))
    try:
        from convert import quantity
    finally:
        sys.path.pop(0)
    assert quantity("30600 m³/h") == quantity("30600 m3/h") == pytest.approx(30600 * 0.5886)
    assert quantity("18,144 CFM") == 18144.0 and quantity("62.4 kW") == 62.4
