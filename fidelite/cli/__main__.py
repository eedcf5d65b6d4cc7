"""``python -m fidelite.cli``: the same as the ``fidelite`` command."""

from fidelite.cli import app

app()
