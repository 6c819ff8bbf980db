"""Registering OAuth2 clients (RFC 6749 §2; metadata names after RFC 7591 §2).

A client gets an id, the SMART scopes it may request, optional SMART launch context (`patient`,
`fhirUser`) and one way to authenticate: a generated secret (shown once, stored hashed), or a
public key for `private_key_jwt` (SMART Backend Services). A client with neither can obtain
tokens only through `carebridge token --client`, which holds the signing key.
"""

from __future__ import annotations

import re
from datetime import datetime

from carebridge.access.assertions import InvalidAssertionError, parse_public_keys
from carebridge.access.credentials import hash_secret, new_client_id, new_client_secret
from carebridge.access.repository import ClientRepository
from carebridge.access.schemas import Client, ClientCreate, RegisteredClient
from carebridge.access.scopes import InvalidScopeError, parse_scopes, resource_types
from carebridge.fhir.search.parameters import registry
from carebridge.kit.ids import is_valid_id

LOCAL_ADMIN = "local-admin"
LOCAL_ADMIN_SCOPES = "system/*.cruds user/*.cruds patient/*.cruds"
FHIR_USER_TYPES = ("Patient", "Practitioner", "PractitionerRole", "RelatedPerson", "Person")
_FHIR_USER = re.compile(
    rf"(?:{'|'.join((*FHIR_USER_TYPES, 'Organization'))})/[A-Za-z0-9\-.]{{1,64}}"
)
_MAX_NAME = 200


class RegistrationError(ValueError):
    """A client registration that cannot be accepted; the message says why."""


def register_client(
    repo: ClientRepository, create: ClientCreate, *, now: datetime
) -> RegisteredClient:
    """Store a new client; a generated secret is returned here once and kept only hashed."""
    secret = new_client_secret() if create.with_secret else None
    return RegisteredClient(_register(repo, create, secret, now), secret)


def _register(
    repo: ClientRepository, create: ClientCreate, secret: str | None, now: datetime
) -> Client:
    check_registration(create)
    if repo.by_name(create.name) is not None:
        raise RegistrationError(f"a client named {create.name!r} already exists")
    hashed = hash_secret(secret) if secret is not None else None
    client = Client(
        client_id=new_client_id(),
        name=create.name,
        allowed_scopes=parse_scopes(create.allowed_scopes).text,
        secret_hash=hashed.hash if hashed else None,
        secret_salt=hashed.salt if hashed else None,
        public_key=create.public_key.strip() if create.public_key else None,
        patient=create.patient,
        fhir_user=create.fhir_user,
        active=True,
        created=now,
    )
    repo.add(client)
    return client


def check_registration(create: ClientCreate) -> None:
    """Raise `RegistrationError` unless every field of `create` is usable."""
    name = create.name.strip()
    if not name or len(name) > _MAX_NAME or name != create.name:
        raise RegistrationError(f"a client name is 1-{_MAX_NAME} characters, no outer spaces")
    if create.with_secret and create.public_key:
        raise RegistrationError("a client uses a secret or a public key, not both")
    check_allowed_scopes(create.allowed_scopes)
    _check_public_key(create.public_key)
    check_launch_context(create.patient, create.fhir_user)


def check_launch_context(patient: str | None, fhir_user: str | None) -> None:
    """`patient` is a FHIR id; `fhirUser` a reference to a person or organization (SMART)."""
    if patient is not None and not is_valid_id(patient):
        raise RegistrationError(f"patient {patient!r} is not a FHIR id")
    if fhir_user is not None and not _FHIR_USER.fullmatch(fhir_user):
        kinds = ", ".join((*FHIR_USER_TYPES, "Organization"))
        raise RegistrationError(f"fhirUser must be a reference like Practitioner/123 ({kinds})")


def check_allowed_scopes(text: str) -> None:
    """Allowed scopes must parse, grant some resource access and name only R4 resource types."""
    try:
        scopes = parse_scopes(text)
    except InvalidScopeError as exc:
        raise RegistrationError(str(exc)) from None
    if not scopes.resource:
        raise RegistrationError("allowed scopes must include a resource scope, e.g. system/*.rs")
    unknown = sorted(resource_types(scopes.resource) - registry().resource_types)
    if unknown:
        raise RegistrationError(f"not FHIR R4 resource types: {', '.join(unknown)}")


def _check_public_key(text: str | None) -> None:
    if text is None:
        return
    try:
        parse_public_keys(text)
    except InvalidAssertionError as exc:
        raise RegistrationError(str(exc)) from None


def ensure_local_admin(repo: ClientRepository, *, now: datetime) -> Client:
    """The built-in client behind `carebridge token` without `--client`, created on first use.

    It has no secret and no key, so it cannot authenticate at the token endpoint: only someone
    who can read the signing key (the server's operator) can mint its tokens.
    """
    existing = repo.by_name(LOCAL_ADMIN)
    if existing is not None:
        return existing
    return register_client(repo, ClientCreate(LOCAL_ADMIN, LOCAL_ADMIN_SCOPES), now=now).client


def find_client(repo: ClientRepository, name_or_id: str) -> Client | None:
    return repo.by_name(name_or_id) or repo.get(name_or_id)
