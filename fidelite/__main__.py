"""``python -m fidelite``: the same as the ``fidelite`` command."""

from fidelite.cli import app

app()
