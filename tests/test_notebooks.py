"""The notebooks in notebooks/ run top to bottom (nbclient) and are stored without outputs."""

from __future__ import annotations

import json

import pytest

from conftest import REPO, SHARED_DATA

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
NEEDS_REAL_DATA = {"01-real-telemetry.ipynb"}


def test_there_are_notebooks():
    """At least the three notebooks of issue 7: telemetry, walkthrough, what-if."""
    assert len(NOTEBOOKS) >= 3


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    """Outputs are not committed: the notebooks stay small and diff cleanly."""
    book = json.loads(path.read_text())
    for cell in book["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, f"{path.name}: clear outputs"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path, monkeypatch):
    """Every cell executes without an error (in notebooks/, as a reader would run it); what the
    notebooks write goes to the test's folder (each run left a folder in /tmp)."""
    nbformat = pytest.importorskip("nbformat", reason="pip install '.[test]' for the notebook tests")
    nbclient = pytest.importorskip("nbclient", reason="pip install '.[test]' for the notebook tests")
    pytest.importorskip("ipykernel", reason="pip install '.[test]' for the notebook tests")
    if path.name in NEEDS_REAL_DATA and not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    book = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(book, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    out = tmp_path / "out"
    monkeypatch.setenv("TAPAS_OPT_NOTEBOOK_OUT", str(out))  # the kernel inherits it
    client.execute()
    if "tempfile" in path.read_text():  # a notebook that writes files writes them there
        assert any(out.iterdir())
