"""The ``tapas-opt`` console script, kept apart from :mod:`tapas_opt.cli` so that it can take
over SIGTERM and SIGHUP before the command line's imports (pandas, OR-Tools: about a second).
A run stopped in that second exits 130 with a message, like one stopped later, instead of being
killed with the signal's own status (143)."""

from __future__ import annotations

import signal
import sys

from tapas_opt.errors import EXIT_INTERRUPTED


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def interrupt_on_termination() -> None:
    """SIGTERM (``kill``, a scheduler's timeout) and SIGHUP (a closed terminal) stop a run the way
    Ctrl-C does: temporaries removed, the old output kept, exit 130. Handlers someone else set
    are left alone."""
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name) and signal.getsignal(getattr(signal, name)) == signal.SIG_DFL:
            try:
                signal.signal(getattr(signal, name), _raise_interrupt)
            except ValueError:  # not the main thread (main() called from a thread): leave it
                pass


def _import_main():
    from tapas_opt.cli import main

    return main


def run() -> None:
    """Entry point of the ``tapas-opt`` script."""
    interrupt_on_termination()
    try:
        main = _import_main()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: nothing was written\n")
        sys.exit(EXIT_INTERRUPTED)
    main()
