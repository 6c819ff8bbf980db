"""`carebridge token --scope ...`: mint an access token locally and print only the token.

For scripts: `curl -H "Authorization: Bearer $(carebridge token --scope 'system/*.rs')" ...`.
The command signs with the server's key (same settings, same key file), so it is an operator
tool: without `--client` it uses the built-in `local-admin` client, created on first use.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from carebridge.access.keys import SigningKeyError
from carebridge.access.registration import (
    RegistrationError,
    check_launch_context,
    ensure_local_admin,
    find_client,
)
from carebridge.access.repository import ClientRepository
from carebridge.access.schemas import Client, TokenResponse
from carebridge.access.service import OAuthError, TokenIssuer, grant, token_issuer
from carebridge.cli.clients import FhirUserOption, PatientOption, migrated_engine
from carebridge.cli.options import DbOption, settings_for
from carebridge.kit.clock import utc_now

errors = Console(stderr=True)


def token(
    scope: Annotated[
        str, typer.Option("--scope", help="SMART scopes to grant, e.g. 'system/*.rs'.")
    ],
    client: Annotated[
        str | None,
        typer.Option("--client", help="Client name or id (default: the local admin client)."),
    ] = None,
    patient: PatientOption = None,
    fhir_user: FhirUserOption = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="Server URL the token is for (default: settings)."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Print an access token for SCOPE (nothing else goes to stdout)."""
    settings = settings_for(db)
    if base_url:
        settings = settings.model_copy(update={"base_url": base_url.rstrip("/")})
    try:
        check_launch_context(patient, fhir_user)
        issuer = token_issuer(settings)
        granted = _grant(settings.database_url, issuer, client, scope, patient, fhir_user)
    except (OAuthError, RegistrationError, SigningKeyError) as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from None
    typer.echo(granted.access_token)


def _grant(
    database_url: str,
    issuer: TokenIssuer,
    name: str | None,
    scope: str,
    patient: str | None,
    fhir_user: str | None,
) -> TokenResponse:
    now = utc_now()
    with migrated_engine(database_url) as engine, engine.begin() as conn:
        client = _client(ClientRepository(conn), name)
    return grant(client, scope, issuer, now=now, patient=patient, fhir_user=fhir_user)


def _client(repo: ClientRepository, name: str | None) -> Client:
    if name is None:
        return ensure_local_admin(repo, now=utc_now())
    client = find_client(repo, name)
    if client is None or not client.active:
        raise RegistrationError(f"no active client named {name!r}")
    return client


def register(app: typer.Typer) -> None:
    app.command("token")(token)
