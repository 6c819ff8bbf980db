"""`carebridge db ...`: schema management."""

from __future__ import annotations

import typer
from rich.console import Console

from carebridge.cli.options import DbOption, settings_for
from carebridge.fhir.schema import current_revision, upgrade
from carebridge.kit.db import create_db_engine

db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade_command(db: DbOption = None) -> None:
    """Create or migrate the database schema to the latest version."""
    settings = settings_for(db)
    engine = create_db_engine(settings.database_url)
    upgrade(engine)
    Console(stderr=True).print(f"schema at revision [bold]{current_revision(engine)}[/bold]")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
