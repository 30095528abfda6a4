"""Thin shim so that ``python cli.py ...`` works from a checkout; the real app is
:mod:`tapas_opt.cli` (installed as the ``tapas-opt`` console script, :func:`tapas_opt.entry.run`)."""

from tapas_opt.entry import run

if __name__ == "__main__":
    run()
