"""Options shared by every command."""

from __future__ import annotations

from typing import Annotated

import typer

from carebridge.config import Settings, load_settings

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (default: $CAREBRIDGE_DATABASE_URL, then sqlite:///carebridge.db).",
        show_default=False,
    ),
]


def settings_for(db: str | None) -> Settings:
    return load_settings(database_url=db)
