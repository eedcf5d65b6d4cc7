"""The ``fidelite`` command line: thin typer commands over the library functions.

One module per area registers its commands on the shared :data:`app`:
:mod:`~fidelite.cli.data` (demo data, features), :mod:`~fidelite.cli.models` (train,
score, evaluate, promote), :mod:`~fidelite.cli.campaigns` (winback, campaign-report)
and :mod:`~fidelite.cli.serve` (serve, export a bento).
Errors are printed and mapped to exit codes in :func:`fidelite.cli._app.errors_exit`.
"""

from fidelite.cli import campaigns, data, models, serve  # noqa: F401 - registers the commands
from fidelite.cli._app import app

__all__ = ["app"]
