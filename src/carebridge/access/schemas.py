"""Value objects of the access layer: OAuth2 clients and token responses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class AuthMethod(StrEnum):
    """Token endpoint client authentication methods (RFC 7591 §2, OpenID Connect Core §9)."""

    CLIENT_SECRET = "client_secret"  # client_secret_post or client_secret_basic
    PRIVATE_KEY_JWT = "private_key_jwt"
    NONE = "none"  # tokens only from the command line (`carebridge token --client`)


@dataclass(frozen=True)
class ClientCreate:
    name: str
    allowed_scopes: str
    with_secret: bool = False  # generate a secret, shown once in `RegisteredClient`
    public_key: str | None = None  # JWK, JWK Set or PEM public key for private_key_jwt
    patient: str | None = None
    fhir_user: str | None = None


@dataclass(frozen=True)
class Client:
    """A registered client as stored; secrets are present only as a hash and salt."""

    client_id: str
    name: str
    allowed_scopes: str
    secret_hash: str | None
    secret_salt: str | None
    public_key: str | None
    patient: str | None
    fhir_user: str | None
    active: bool
    created: datetime

    @property
    def auth_method(self) -> AuthMethod:
        if self.public_key:
            return AuthMethod.PRIVATE_KEY_JWT
        if self.secret_hash:
            return AuthMethod.CLIENT_SECRET
        return AuthMethod.NONE


@dataclass(frozen=True)
class RegisteredClient:
    """The result of registering a client: the secret is shown here once, then never again."""

    client: Client
    secret: str | None


@dataclass(frozen=True)
class TokenResponse:
    """A successful access token response (RFC 6749 §5.1; SMART App Launch 2.0 §4.2)."""

    access_token: str
    expires_in: int
    scope: str
    patient: str | None = None
    token_type: str = "bearer"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.patient:
            body["patient"] = self.patient
        return body
