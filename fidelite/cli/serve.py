"""``fidelite serve`` and ``fidelite export-bento``: the prediction service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fidelite.cli._app import (
    app,
    console,
    errors_exit,
)


@app.command("serve")
def serve(
    port: Annotated[int, typer.Option(help="HTTP port.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface to bind (0.0.0.0 for all).")] = "127.0.0.1",
    model_uri: Annotated[
        str, typer.Option("--model-uri", help="Registered model to serve.")
    ] = "models:/fidelite@champion",
    snapshot: Annotated[
        Path | None,
        typer.Option(
            help="Scores file (from `fidelite score`) for /customers/lookup and /winback "
            "(default: $FIDELITE_SNAPSHOT; without one those endpoints answer 503)."
        ),
    ] = None,
) -> None:
    """Check the settings and the MLflow store, export the registered model to BentoML and
    start the prediction service (settings: FIDELITE_* environment variables, see README)."""
    from fidelite.serving.launch import serve as run_server

    with errors_exit():
        status = run_server(port=port, host=host, model_uri=model_uri, snapshot=snapshot)
    raise typer.Exit(code=status)


@app.command("export-bento")
def export_bento(
    model_uri: Annotated[
        str, typer.Option("--model-uri", help="Registered model to export.")
    ] = "models:/fidelite@champion",
) -> None:
    """Import the registered model into the BentoML store (then run `bentoml build`)."""
    from fidelite.serving.loader import export_to_bento

    with errors_exit():
        bento_model = export_to_bento(model_uri)
    console.print(
        f"[green]exported[/] {model_uri} as BentoML model {bento_model.tag}; "
        f"package it with: FIDELITE_BENTO_MODEL={bento_model.tag} bentoml build",
        highlight=False,
    )
