"""`carebridge clients ...`: register, list and remove OAuth2 clients (docs/security.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from carebridge.access.registration import RegistrationError, register_client
from carebridge.access.repository import ClientRepository
from carebridge.access.schemas import Client, ClientCreate
from carebridge.cli.options import DbOption, settings_for
from carebridge.fhir.schema import upgrade
from carebridge.kit.clock import utc_now
from carebridge.kit.db import create_db_engine

clients_app = typer.Typer(help="OAuth2 clients of the token endpoint.", no_args_is_help=True)
errors = Console(stderr=True)

ScopeOption = Annotated[
    str,
    typer.Option("--scope", help="SMART scopes the client may request, e.g. 'system/*.rs'."),
]
PatientOption = Annotated[
    str | None, typer.Option("--patient", help="Patient id for the SMART patient context.")
]
FhirUserOption = Annotated[
    str | None, typer.Option("--fhir-user", help="fhirUser reference, e.g. Practitioner/123.")
]


@contextmanager
def migrated_engine(database_url: str) -> Iterator[Engine]:
    """An engine on an up-to-date schema, disposed when the command is done."""
    engine = create_db_engine(database_url)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()


@clients_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A unique name for the client.")],
    scope: ScopeOption,
    secret: Annotated[
        bool, typer.Option("--secret", help="Authenticate with a generated client secret.")
    ] = False,
    jwk: Annotated[
        Path | None,
        typer.Option(
            "--jwk",
            exists=True,
            dir_okay=False,
            help="Public key (JWK, JWK Set or PEM) for private_key_jwt authentication.",
        ),
    ] = None,
    patient: PatientOption = None,
    fhir_user: FhirUserOption = None,
    db: DbOption = None,
) -> None:
    """Register a client; prints its client_id (and the secret, shown only this once) as JSON."""
    create = ClientCreate(
        name=name,
        allowed_scopes=scope,
        with_secret=secret,
        public_key=jwk.read_text() if jwk else None,
        patient=patient,
        fhir_user=fhir_user,
    )
    try:
        with migrated_engine(settings_for(db).database_url) as engine, engine.begin() as conn:
            registered = register_client(ClientRepository(conn), create, now=utc_now())
    except RegistrationError as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from None
    output = {"client_id": registered.client.client_id, "name": name}
    if registered.secret:
        output["client_secret"] = registered.secret
        errors.print("store the client_secret now: it is kept only as a hash")
    elif not create.public_key:
        errors.print(f"no secret or key: tokens only from `carebridge token --client {name}`")
    typer.echo(json.dumps(output, indent=2))


@clients_app.command("list")
def list_clients(db: DbOption = None) -> None:
    """Show the registered clients (never their secrets or keys)."""
    with migrated_engine(settings_for(db).database_url) as engine, engine.connect() as conn:
        clients = ClientRepository(conn).all()
    Console().print(_table(clients))


def _table(clients: list[Client]) -> Table:
    table = Table(title=f"{len(clients)} OAuth2 client(s)")
    for column in ("client_id", "name", "auth", "allowed scopes", "patient", "fhirUser"):
        table.add_column(column, overflow="fold")
    table.add_column("active")
    table.add_column("created")
    for client in clients:
        table.add_row(
            client.client_id,
            client.name,
            client.auth_method.value,
            client.allowed_scopes,
            client.patient or "",
            client.fhir_user or "",
            "yes" if client.active else "no",
            client.created.strftime("%Y-%m-%d %H:%M"),
        )
    return table


@clients_app.command("remove")
def remove(
    client_id: Annotated[str, typer.Argument(help="The client_id to remove.")],
    db: DbOption = None,
) -> None:
    """Remove a client: it can get no new tokens (issued ones live until they expire)."""
    with migrated_engine(settings_for(db).database_url) as engine, engine.begin() as conn:
        removed = ClientRepository(conn).remove(client_id)
    if not removed:
        errors.print(f"[red]error:[/red] no client with client_id {client_id!r}")
        raise typer.Exit(code=1)
    errors.print(f"removed client {client_id}")


def register(app: typer.Typer) -> None:
    app.add_typer(clients_app, name="clients")
