"""Thin shim so that ``python cli.py ...`` works from a checkout; the real app is
:mod:`tapas_opt.cli` (installed as the ``tapas-opt`` console script)."""

from tapas_opt.cli import main

if __name__ == "__main__":
    main()
