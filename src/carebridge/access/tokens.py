"""Access tokens: JWTs (RFC 7519) signed with the server key, and their verification.

Claims: `iss` (this server), `sub` (the client id), `aud` (the FHIR base URL the token is good
for), `exp`/`iat`, `jti`, `scope` (granted SMART scopes, space-delimited) and, from the client's
registration, SMART launch context `patient` and `fhirUser` (SMART App Launch 2.0 §"Launch
context arrives with your access_token"; JWT profile per RFC 9068 §2.2).

Verification returns an `AccessContext` or raises `TokenError` whose `reason` tells a missing,
malformed, badly signed, expired, wrong-audience and wrong-issuer token apart.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import jwt

from carebridge.access.keys import SigningKey
from carebridge.access.scopes import (
    Decision,
    Interaction,
    InvalidScopeError,
    ScopeSet,
    decide,
    parse_scopes,
)

LEEWAY = timedelta(seconds=30)
_REQUIRED = ["iss", "sub", "aud", "exp", "iat", "jti", "scope"]


class TokenErrorReason(StrEnum):
    MISSING = "missing"
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    WRONG_AUDIENCE = "wrong_audience"
    WRONG_ISSUER = "wrong_issuer"


class TokenError(Exception):
    def __init__(self, reason: TokenErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class TokenPolicy:
    """Who issues tokens, for which FHIR base URL, and for how long."""

    issuer: str
    audience: str
    lifetime: timedelta


@dataclass(frozen=True)
class TokenGrant:
    client_id: str
    scopes: ScopeSet
    patient: str | None = None
    fhir_user: str | None = None


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    jti: str


@dataclass(frozen=True)
class AccessContext:
    """Who is calling and what they were granted, from a verified access token."""

    client_id: str
    scopes: ScopeSet
    patient: str | None
    fhir_user: str | None
    jti: str
    expires_at: datetime

    def decide(self, interaction: Interaction, resource_type: str) -> Decision:
        return decide(self.scopes, resource_type, interaction)


def issue_access_token(
    key: SigningKey, policy: TokenPolicy, grant: TokenGrant, *, now: datetime
) -> IssuedToken:
    jti = uuid.uuid4().hex
    claims: dict[str, Any] = {
        "iss": policy.issuer,
        "sub": grant.client_id,
        "aud": policy.audience,
        "iat": int(now.timestamp()),
        "exp": int((now + policy.lifetime).timestamp()),
        "jti": jti,
        "client_id": grant.client_id,
        "scope": grant.scopes.text,
    }
    if grant.patient:
        claims["patient"] = grant.patient
    if grant.fhir_user:
        claims["fhirUser"] = grant.fhir_user
    headers = {"kid": key.kid, "typ": "at+jwt"}
    token = jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers=headers)
    return IssuedToken(token, int(policy.lifetime.total_seconds()), jti)


def verify_access_token(token: str | None, key: SigningKey, policy: TokenPolicy) -> AccessContext:
    """Check signature, `exp` (with `LEEWAY`), `aud` and `iss`; raise `TokenError` otherwise."""
    if not token:
        raise TokenError(TokenErrorReason.MISSING, "an access token is required")
    _check_header(token, key)
    claims = _decode(token, key, policy)
    return _context(claims)


def _check_header(token: str, key: SigningKey) -> None:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenError(TokenErrorReason.MALFORMED, "the access token is not a JWT") from None
    if header.get("alg") != key.algorithm or header.get("kid") != key.kid:
        raise TokenError(
            TokenErrorReason.BAD_SIGNATURE, "the access token was not signed by this server's key"
        )


def _decode(token: str, key: SigningKey, policy: TokenPolicy) -> dict[str, Any]:
    try:
        return jwt.decode(
            token,
            key.public_key,
            algorithms=[key.algorithm],
            audience=policy.audience,
            issuer=policy.issuer,
            leeway=LEEWAY,
            options={"require": _REQUIRED},
        )
    except jwt.InvalidSignatureError:
        reason, message = TokenErrorReason.BAD_SIGNATURE, "the access token signature is invalid"
    except jwt.ExpiredSignatureError:
        reason, message = TokenErrorReason.EXPIRED, "the access token has expired"
    except jwt.InvalidAudienceError:
        reason, message = TokenErrorReason.WRONG_AUDIENCE, "the access token is for another server"
    except jwt.InvalidIssuerError:
        reason, message = TokenErrorReason.WRONG_ISSUER, "the access token has an unknown issuer"
    except jwt.PyJWTError as exc:
        reason, message = TokenErrorReason.MALFORMED, f"the access token is malformed: {exc}"
    raise TokenError(reason, message)


def _context(claims: dict[str, Any]) -> AccessContext:
    try:
        scopes = parse_scopes(_text(claims, "scope"))
        return AccessContext(
            client_id=_text(claims, "sub"),
            scopes=scopes,
            patient=_optional_text(claims, "patient"),
            fhir_user=_optional_text(claims, "fhirUser"),
            jti=_text(claims, "jti"),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
    except (InvalidScopeError, TypeError, ValueError) as exc:
        raise TokenError(
            TokenErrorReason.MALFORMED, f"the access token is malformed: {exc}"
        ) from None


def _text(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str):
        raise TypeError(f"claim {name!r} must be a string")
    return value


def _optional_text(claims: dict[str, Any], name: str) -> str | None:
    return None if claims.get(name) is None else _text(claims, name)
