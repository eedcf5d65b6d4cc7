"""The ``fidelite`` command line: thin typer commands over the library functions.

One module per area registers its commands on the shared :data:`app`:
:mod:`~fidelite.cli.data` (demo data, features), :mod:`~fidelite.cli.models` (train,
score, evaluate, promote), :mod:`~fidelite.cli.campaigns` (winback, campaign-report),
:mod:`~fidelite.cli.serve` (serve, export a bento) and :mod:`~fidelite.cli.report` (the
customer-base report).
Errors are printed and mapped to exit codes in :func:`fidelite.cli._app.errors_exit`.
"""

from fidelite.cli import (  # noqa: F401 - registers the commands
    campaigns,
    data,
    models,
    report,
    serve,
)
from fidelite.cli._app import app

__all__ = ["app"]
