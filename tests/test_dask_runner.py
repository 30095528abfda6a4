"""Scale-out on a real Dask LocalCluster with two worker processes: results as they finish, a
failing task reported without losing the others, a killed worker's tasks re-run, a what-if sweep
that survives a worker killed mid-sweep and resumes."""

from __future__ import annotations

import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from tapas_opt.distributed import dask_client, run_tasks  # noqa: E402
from tapas_opt.errors import InventoryError, Problem  # noqa: E402
from tapas_opt.whatif import load_sweep, run_scenario, run_sweep  # noqa: E402


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of two worker processes (one thread each), shared by this module's tests."""
    with dask_client(None, n_workers=2) as c:
        c.wait_for_workers(2)
        yield c


def _touch(marker_dir: str, name: str) -> int:
    """Record one attempt; return how many attempts there were so far (including this one)."""
    d = Path(marker_dir)
    d.mkdir(parents=True, exist_ok=True)
    n = len(list(d.glob(f"{name}.*"))) + 1
    (d / f"{name}.{n}.{os.getpid()}").touch()
    return n


def square_or_fail(item):
    """Task: square the number; raise for 'bad' (counting attempts)."""
    key, value, marker_dir = item
    _touch(marker_dir, key)
    if key == "bad":
        raise ValueError("this scenario is broken")
    if key == "input":
        raise InventoryError([Problem("bad_value", "x.yaml", "deterministic input problem")])
    return value * value


def kill_self_once(item):
    """Task: on its first attempt, SIGKILL the worker process running it."""
    key, value, marker_dir = item
    if _touch(marker_dir, key) == 1 and key == "victim":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.2)
    return value + 1, os.getpid()


def test_failure_reported_others_kept_and_retried(client, tmp_path):
    """A task that raises is retried, then reported with its error; the others' values arrive;
    a TapasError (bad input) is reported at once, without retries."""
    seen = []
    items = {k: (k, v, str(tmp_path)) for k, v in [("a", 2), ("bad", 3), ("c", 4), ("input", 5)]}
    outcomes = run_tasks(client, square_or_fail, items, retries=1, on_outcome=seen.append)
    assert outcomes["a"].ok and outcomes["a"].value == 4 and outcomes["c"].value == 16
    assert not outcomes["bad"].ok and "this scenario is broken" in outcomes["bad"].error
    assert "ValueError" in outcomes["bad"].traceback
    assert len(list(tmp_path.glob("bad.*"))) == 2  # first attempt + one retry
    assert not outcomes["input"].ok and outcomes["input"].error.startswith("InventoryError")
    assert len(list(tmp_path.glob("input.*"))) == 1  # not retried
    assert sorted(o.key for o in seen) == sorted(items)


def test_task_killing_its_worker_is_rerun(client, tmp_path):
    """The worker running 'victim' dies (SIGKILL); the scheduler re-runs it on a live worker."""
    items = {k: (k, i, str(tmp_path)) for i, k in enumerate(["w1", "victim", "w2", "w3"])}
    outcomes = run_tasks(client, kill_self_once, items, retries=0)
    assert all(o.ok for o in outcomes.values()), {k: o.error for k, o in outcomes.items()}
    assert outcomes["victim"].value[0] == 2
    attempts = sorted(tmp_path.glob("victim.*"))
    assert len(attempts) == 2 and attempts[0].suffix != f".{outcomes['victim'].value[1]}"
    client.wait_for_workers(2, timeout=60)  # the nanny restarted the dead worker


@pytest.fixture
def sweep_file(tmp_path, two_row_room) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(f"base: {two_row_room}\n" + textwrap.dedent("""
        settings: {policy: greedy}
        scenarios:
          - name: normal
          - name: ups
            changes: {failures: [ups-failure:0.7]}
        sweep:
          changes.add_servers.per_row: [0, 1, 2]
    """))
    return path


def slow_scenario(spec):
    """run_scenario, slowed down so that a worker can be killed while scenarios are in flight."""
    time.sleep(0.5)
    return run_scenario(spec)


def boom_for_ups(spec):
    if spec.name == "ups":
        raise RuntimeError("boom")
    return run_scenario(spec)


def test_sweep_survives_a_worker_killed_mid_sweep(client, sweep_file, tmp_path):
    """SIGKILL one worker after the first result: every scenario still finishes, none fails, and
    the results equal an undisturbed in-process run."""
    sweep = load_sweep(sweep_file)
    pids = client.run(os.getpid)
    killed = []

    def kill_one(outcome):
        if not killed:
            pid = sorted(pids.values())[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    result = run_sweep(sweep, tmp_path / "out", client=client, retries=0, task=slow_scenario, on_result=kill_one,
                       plots=False)
    assert killed and len(result.table) == 6 and not result.failed
    reference = run_sweep(sweep, tmp_path / "ref", workers=0, plots=False).table
    cols = ["scenario_id", "peak_row_power_fraction", "power_capped_row_time_pct", "vms_forced"]
    assert result.table[cols].sort_values("scenario_id").reset_index(drop=True).equals(
        reference[cols].sort_values("scenario_id").reset_index(drop=True))
    client.wait_for_workers(2, timeout=60)


def test_sweep_failure_in_one_scenario_and_resume_on_cluster(client, sweep_file, tmp_path):
    """Failing scenarios are reported while the others' results are written; the re-run skips the
    finished ones and runs only the failed ones."""
    sweep = load_sweep(sweep_file)
    out = tmp_path / "out"
    first = run_sweep(sweep, out, client=client, retries=0, task=boom_for_ups, plots=False)
    assert len(first.table) == 3 and len(first.failed) == 3
    assert {f["scenario_id"].split("__")[0] for f in first.failed} == {"ups"}
    second = run_sweep(sweep, out, client=client, plots=False)
    assert (second.ran, second.skipped, len(second.failed), len(second.table)) == (3, 3, 0, 6)
