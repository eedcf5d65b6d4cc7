"""The ``fidelite`` command line: thin typer commands over the library functions.

One module per area registers its commands on the shared :data:`app`:
:mod:`~fidelite.cli.data` (demo data, features), :mod:`~fidelite.cli.models` (train,
score, evaluate, promote), :mod:`~fidelite.cli.campaigns` (winback, campaign-report),
:mod:`~fidelite.cli.serve` (serve, export a bento) and :mod:`~fidelite.cli.report` (the
customer-base report).
Errors are printed and mapped to exit codes in :func:`fidelite.cli._app.errors_exit`.
"""

import os

# LightGBM's OpenMP threads busy-wait at every per-leaf barrier by default, stealing the
# core their peer needs on a shared machine (100 boosting rounds on 130k rows took 20-50 s
# with 2 threads on a loaded 2-core box instead of 2-3 s). libgomp reads this when
# LightGBM loads, so the command line (a launcher, not the library) sets it before any
# import that could load LightGBM; a value already in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from fidelite.cli import (  # noqa: F401 - registers the commands
    campaigns,
    data,
    models,
    report,
    serve,
)
from fidelite.cli._app import app

__all__ = ["app"]
