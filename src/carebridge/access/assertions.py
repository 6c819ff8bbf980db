"""Client authentication with a signed JWT (`private_key_jwt`): RFC 7523 §2.2 and §3, as profiled
by SMART Backend Services (https://hl7.org/fhir/smart-app-launch/backend-services.html,
"Authenticating to the Token endpoint").

The assertion is signed RS384 or ES384 with the client's private key; the server holds the
public half, registered as a JWK, a JWK Set or a PEM public key. It must carry `iss` = `sub` =
the client id, `aud` = the token endpoint URL, an `exp` no more than five minutes ahead, and a
`jti` the server has not seen before (the caller records it; see `repository`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS384", "ES384")
MAX_AHEAD = timedelta(minutes=5)
LEEWAY = timedelta(seconds=30)
_MIN_RSA_BITS = 2048
_REQUIRED = ["iss", "sub", "aud", "exp", "jti"]

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class InvalidAssertionError(ValueError):
    """The assertion (or a registered key) is unusable; the message says why."""


@dataclass(frozen=True)
class VerifiedAssertion:
    client_id: str
    jti: str
    expires_at: datetime


def asserted_client_id(assertion: str) -> str:
    """The `sub` (= client id) of an assertion, read before its signature can be checked."""
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise InvalidAssertionError("client_assertion is not a JWT") from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise InvalidAssertionError("client_assertion has no sub claim (the client id)")
    return subject


def verify_assertion(
    assertion: str, registered_key: str, *, client_id: str, token_url: str, now: datetime
) -> VerifiedAssertion:
    """Check the assertion's signature and claims; raise `InvalidAssertionError` if any fails."""
    algorithm, kid = _header(assertion)
    key = select_key(registered_key, kid)
    claims = _decode(assertion, key, algorithm, client_id=client_id, token_url=token_url)
    expires_at = datetime.fromtimestamp(claims["exp"], UTC)
    if expires_at > now + MAX_AHEAD + LEEWAY:
        raise InvalidAssertionError("client_assertion exp is more than five minutes ahead")
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > 255:
        raise InvalidAssertionError("client_assertion jti must be a string of 1-255 characters")
    return VerifiedAssertion(client_id, jti, expires_at)


def _header(assertion: str) -> tuple[str, str | None]:
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise InvalidAssertionError("client_assertion is not a JWT") from None
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise InvalidAssertionError(f"client_assertion must be signed with one of {ALGORITHMS}")
    kid = header.get("kid")
    return str(algorithm), kid if isinstance(kid, str) else None


def _decode(
    assertion: str, key: PublicKey, algorithm: str, *, client_id: str, token_url: str
) -> dict[str, Any]:
    try:
        return jwt.decode(
            assertion,
            key,
            algorithms=[algorithm],
            audience=token_url,
            issuer=client_id,
            subject=client_id,
            leeway=LEEWAY,
            options={"require": _REQUIRED},
        )
    except jwt.InvalidSignatureError:
        message = "client_assertion signature does not match the client's registered key"
    except jwt.ExpiredSignatureError:
        message = "client_assertion has expired"
    except jwt.InvalidAudienceError:
        message = f"client_assertion aud must be the token endpoint {token_url}"
    except (jwt.InvalidIssuerError, jwt.exceptions.InvalidSubjectError):
        message = "client_assertion iss and sub must both be the client id"
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        message = f"client_assertion is invalid: {exc}"
    raise InvalidAssertionError(message)


def select_key(registered: str, kid: str | None) -> PublicKey:
    """The registered public key to check a signature with (by `kid` in a JWK Set)."""
    keys = parse_public_keys(registered)
    if len(keys) == 1 and (kid is None or keys[0][0] in (None, kid)):
        return keys[0][1]
    for key_id, key in keys:
        if kid is not None and key_id == kid:
            return key
    raise InvalidAssertionError("no registered key of the client matches the assertion's kid")


def parse_public_keys(registered: str) -> list[tuple[str | None, PublicKey]]:
    """(kid, key) pairs from a JWK, a JWK Set (RFC 7517 §5) or a PEM public key."""
    text = registered.strip()
    if text.startswith("-----BEGIN"):
        return [(None, _pem_key(text))]
    try:
        document = json.loads(text)
    except ValueError:
        raise InvalidAssertionError("a public key must be a JWK, a JWK Set or PEM") from None
    jwks = document.get("keys") if isinstance(document, dict) else None
    entries = jwks if isinstance(jwks, list) else [document]
    if not entries:
        raise InvalidAssertionError("the JWK Set has no keys")
    return [_jwk_key(entry) for entry in entries]


def _pem_key(text: str) -> PublicKey:
    if "PRIVATE KEY" in text:
        raise InvalidAssertionError("register the public key only, never the private key")
    try:
        key = serialization.load_pem_public_key(text.encode())
    except ValueError as exc:
        raise InvalidAssertionError(f"the PEM public key cannot be read: {exc}") from None
    return _usable(key)


def _jwk_key(entry: Any) -> tuple[str | None, PublicKey]:
    if not isinstance(entry, dict) or "d" in entry:
        raise InvalidAssertionError("each JWK must be a public key object (no private 'd')")
    try:
        key = jwt.PyJWK(entry).key
    except jwt.PyJWTError as exc:
        raise InvalidAssertionError(f"the JWK cannot be read: {exc}") from None
    kid = entry.get("kid")
    return (kid if isinstance(kid, str) else None), _usable(key)


def _usable(key: object) -> PublicKey:
    """RS384 needs RSA ≥ 2048 bits; ES384 needs P-384 (RFC 7518 §3.3, §3.4)."""
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= _MIN_RSA_BITS:
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP384R1):
        return key
    raise InvalidAssertionError("the key must be RSA (2048 bits or more) or EC P-384")
