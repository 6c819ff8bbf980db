"""`carebridge serve`: run the API server."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from carebridge.app import create_app
from carebridge.cli.options import DbOption, settings_for


def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Serve the FHIR API (and the app) with uvicorn."""
    settings = settings_for(db)
    settings = settings.model_copy(update={"base_url": f"http://{host}:{port}"})
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", access_log=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
