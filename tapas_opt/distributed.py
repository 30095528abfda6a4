"""Scale-out on Dask: independent tasks (what-if scenarios, rooms of a region) on a cluster.

* **Where.** By default an in-process :class:`distributed.LocalCluster`: ``n_workers`` worker
  processes with one thread each (placement is numpy and OR-Tools work that holds the GIL, so
  processes, not threads), nothing to start or stop by hand. With ``scheduler="tcp://HOST:8786"``
  the tasks go to a running cluster instead (``dask scheduler`` / ``dask worker`` on the
  machines; every worker needs tapas-opt installed and the input paths readable).
* **Failures.** A task that raises is retried ``retries`` times (a flaky file system, a worker
  short of memory); :class:`~tapas_opt.errors.TapasError` (bad input) is deterministic and is
  returned as a failed outcome at once by :func:`guarded`, without retries. A worker that dies
  (killed, out of memory) loses the tasks it was running: the scheduler re-runs them on the
  other workers and the nanny restarts the dead one, so nothing is lost. A task that takes down
  ``distributed.scheduler.allowed-failures`` + 1 workers (3 + 1 by default) is reported as failed
  (``KilledWorker``) instead of killing the whole run.
* **Results as they come.** :func:`collect` yields one :class:`TaskOutcome` per task as soon as it
  finishes (``as_completed``), so the caller can write each result at once; a failed task is an
  outcome with its error and the others go on. Finished futures are released at once, so a
  worker lost later does not make the scheduler recompute results already consumed.
"""

from __future__ import annotations

import atexit
import logging
import signal
import threading
import traceback
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

from tapas_opt.errors import EXIT_BAD_INPUT, TapasError

DEFAULT_WORKERS = 2


class ClusterError(TapasError):
    """The Dask scheduler cannot be reached or the cluster cannot be started."""

    exit_code = EXIT_BAD_INPUT


@dataclass
class TaskOutcome:
    """What one task gave: its value, or the error that stopped it."""

    key: str
    ok: bool
    value: Any = None
    error: str | None = None
    traceback: str | None = None

    def to_dict(self) -> dict:
        return {"key": self.key, "ok": self.ok, "error": self.error, "traceback": self.traceback}


@dataclass
class TaskError:
    """Returned (not raised) by a task that failed on bad input: no point retrying it."""

    error: str
    traceback: str


def guarded(fn: Callable, *args, **kwargs):
    """Run ``fn`` in a worker; a :class:`TapasError` becomes a :class:`TaskError` value (not
    retried), any other exception propagates (Dask retries it). A task fed by one that failed
    on bad input passes that failure on instead of running on it."""
    for arg in (*args, *kwargs.values()):
        if isinstance(arg, TaskError):
            return arg
    try:
        return fn(*args, **kwargs)
    except TapasError as exc:
        return TaskError(f"{type(exc).__name__}: {exc}", traceback.format_exc())


@contextmanager
def _workers_ignore_ctrl_c():
    """Start worker processes with SIGINT ignored (inherited; Python keeps an ignored SIGINT):
    Ctrl-C in the terminal reaches the whole process group, and workers interrupted mid-task
    printed a traceback each before the run stopped. The main process alone takes the
    interrupt and closes the cluster."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def dask_client(scheduler: str | None = None, n_workers: int = DEFAULT_WORKERS, threads_per_worker: int = 1,
                quiet: bool = True) -> Iterator:
    """A :class:`distributed.Client`: on ``scheduler`` if given, else on a fresh LocalCluster of
    ``n_workers`` processes (closed on exit)."""
    from distributed import Client, LocalCluster

    if quiet:
        # distributed's own callback that cancels a pending call when Ctrl-C interrupts it fails
        # with a NameError (distributed 2026.8) that tornado logs as a traceback: not ours to show.
        logging.getLogger("tornado.application").setLevel(logging.CRITICAL)
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:  # ValueError: not an address (no port)
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler}: {exc} "
                               "(start one with 'dask scheduler' and 'dask worker', or drop --scheduler "
                               "to run on an in-process LocalCluster)") from exc
        try:
            yield client
        finally:
            client.close()
        return
    try:
        with warnings.catch_warnings():
            # The scheduler's HTTP endpoint moves to a free port if 8787 is taken: not worth a warning.
            warnings.filterwarnings("ignore", message=r"Port \d+ is already in use")
            with _workers_ignore_ctrl_c():
                # The workers' own logs are noise here (task failures come back through their
                # futures): stopped mid-run, each worker logged its lost heartbeat as a traceback.
                cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                                       dashboard_address=None, silence_logs=logging.CRITICAL)
    except BaseException:
        # Stopped while the cluster starts: distributed's exit hook would close the half-started
        # cluster and fail on workers not yet up (an AssertionError traceback after our message).
        from distributed.deploy.spec import close_clusters

        _silence_shutdown()
        atexit.unregister(close_clusters)
        raise
    client = Client(cluster)
    try:
        yield client
    except BaseException:
        _silence_shutdown()
        raise
    finally:
        client.close()
        cluster.close()


def _silence_shutdown() -> None:
    """A run stopped (Ctrl-C, SIGTERM, an error) closes the cluster under running tasks: the
    scheduler's and client's complaints about lost connections are not the user's to read."""
    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def submit(client, fn: Callable, arg, *, key: str, retries: int = 1, **kwargs):
    """Submit ``guarded(fn, arg, **kwargs)`` under a readable, run-unique key."""
    return client.submit(guarded, fn, arg, key=f"{key}-{uuid.uuid4().hex[:8]}", retries=retries,
                         pure=False, **kwargs)


def collect(futures: Mapping[str, Any]) -> Iterator[TaskOutcome]:
    """Yield an outcome per future as each finishes (any order); release each once consumed."""
    from distributed import as_completed

    key_of = {fut.key: key for key, fut in futures.items()}
    for fut in as_completed(list(futures.values())):
        key = key_of[fut.key]
        if fut.status == "finished":
            value = fut.result()
            if isinstance(value, TaskError):
                yield TaskOutcome(key, False, None, value.error, value.traceback)
            else:
                yield TaskOutcome(key, True, value)
        else:
            exc = fut.exception()
            tb = fut.traceback()
            text = "".join(traceback.format_exception(type(exc), exc, tb)) if tb is not None else None
            yield TaskOutcome(key, False, None, f"{type(exc).__name__}: {exc}", text)
        fut.release()


def run_local(fn: Callable, items: Mapping[str, Any], on_outcome: Callable[[TaskOutcome], None] | None = None
              ) -> dict[str, TaskOutcome]:
    """The same contract as :func:`run_tasks`, in this process, one task after the other (no Dask:
    for debugging and small runs). An exception is a failed outcome; nothing is retried."""
    outcomes = {}
    for key, item in items.items():
        try:
            value = guarded(fn, item)
            outcome = (TaskOutcome(key, False, None, value.error, value.traceback) if isinstance(value, TaskError)
                       else TaskOutcome(key, True, value))
        except Exception as exc:  # noqa: BLE001 - one task's failure must not stop the others
            outcome = TaskOutcome(key, False, None, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        outcomes[key] = outcome
        if on_outcome is not None:
            on_outcome(outcome)
    return outcomes


def run_tasks(client, fn: Callable, items: Mapping[str, Any], *, retries: int = 1,
              on_outcome: Callable[[TaskOutcome], None] | None = None, prefix: str = "task"
              ) -> dict[str, TaskOutcome]:
    """Run ``fn(item)`` for every item as Dask tasks; call ``on_outcome`` as each one finishes.

    Returns every outcome by key. If the caller is interrupted (Ctrl-C), the tasks not yet
    finished are cancelled.
    """
    futures = {key: submit(client, fn, item, key=f"{prefix}-{_safe(key)}", retries=retries)
               for key, item in items.items()}
    outcomes: dict[str, TaskOutcome] = {}
    try:
        for outcome in collect(futures):
            outcomes[outcome.key] = outcome
            if on_outcome is not None:
                on_outcome(outcome)
    except BaseException:
        client.cancel([f for k, f in futures.items() if k not in outcomes])
        raise
    return outcomes


def _safe(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in str(key))[:80]
