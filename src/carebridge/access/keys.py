"""The key that signs access tokens, and its public JWK Set (RFC 7517) for `/.well-known/jwks.json`.

Production points `CAREBRIDGE_TOKEN_SIGNING_KEY` at a PEM private key (RSA ≥ 2048 bits for
RS256, P-256 for ES256; RFC 7518 §3.3, §3.4). Without one, a development key is generated on first
use into `token_key_dir` (default `var/keys/`, git-ignored), created atomically with mode 0600 so
concurrent workers agree on one key. The `kid` is the key's RFC 7638 JWK thumbprint, so it changes
exactly when the key does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ALGORITHMS = ("RS256", "ES256")
_RSA_BITS = 2048
_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class SigningKeyError(ValueError):
    """The configured signing key cannot be used (wrong type, too weak, unreadable)."""


@dataclass(frozen=True)
class SigningKey:
    algorithm: str
    kid: str
    private_key: PrivateKey

    @property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, Any]:
        return {**public_jwk(self.public_key), "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}


def load_signing_key(path: Path | None, algorithm: str, key_dir: Path) -> SigningKey:
    """The configured key from `path`, else the development key under `key_dir`."""
    if algorithm not in ALGORITHMS:
        raise SigningKeyError(f"token signing algorithm must be one of {ALGORITHMS}")
    pem = path.read_bytes() if path is not None else _development_key(key_dir, algorithm)
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(
            f"the token signing key is not an unencrypted PEM key: {exc}"
        ) from None
    _check_fits(key, algorithm)
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    return SigningKey(algorithm, jwk_thumbprint(public_jwk(key.public_key())), key)


def public_jwk(key: PublicKey) -> dict[str, Any]:
    """The public key as a JWK (RFC 7517 §4; RFC 7518 §6.2, §6.3 members)."""
    if isinstance(key, rsa.RSAPublicKey):
        return RSAAlgorithm.to_jwk(key, as_dict=True)
    return ECAlgorithm.to_jwk(key, as_dict=True)


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint: SHA-256 of the required members, sorted, without whitespace."""
    members = _THUMBPRINT_MEMBERS[jwk["kty"]]
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _check_fits(key: object, algorithm: str) -> None:
    if algorithm == "RS256":
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < _RSA_BITS:
            raise SigningKeyError(f"RS256 needs an RSA private key of at least {_RSA_BITS} bits")
    elif not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SigningKeyError("ES256 needs an EC private key on curve P-256")


def _development_key(key_dir: Path, algorithm: str) -> bytes:
    path = key_dir / f"dev-token-signing-{algorithm.lower()}.pem"
    if not path.exists():
        key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_once(path, _generate_pem(algorithm))
    return path.read_bytes()


def _generate_pem(algorithm: str) -> bytes:
    key: PrivateKey
    if algorithm == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_once(path: Path, content: bytes) -> None:
    """Write to a private temporary file, then link it into place; the first writer wins."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink(missing_ok=True)
