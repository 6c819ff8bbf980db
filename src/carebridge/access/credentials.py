"""Client identifiers and secrets (RFC 6749 §2.2, §2.3.1).

Secrets are generated here, shown once, and stored only as a salted scrypt hash (RFC 7914, via
`hashlib.scrypt`); the parameters travel with the hash so they can be raised later without
invalidating existing clients. Comparison is constant-time (`hmac.compare_digest`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from carebridge.kit.ids import new_id

_SCHEME = "scrypt"
_N, _R, _P = 2**14, 8, 1  # RFC 7914 §2 interactive-login cost; ≈ 16 MiB and tens of ms
_KEY_BYTES = 32
_SALT_BYTES = 16
_SECRET_BYTES = 32


@dataclass(frozen=True)
class SecretHash:
    """What the `client` table stores for a secret: `scrypt$N$r$p$<hex>` and the hex salt."""

    hash: str
    salt: str


def new_client_id() -> str:
    return new_id()


def new_client_secret() -> str:
    """A 256-bit random secret, URL-safe (RFC 6749 Appendix A.2 `client-secret` charset)."""
    return secrets.token_urlsafe(_SECRET_BYTES)


def hash_secret(secret: str, salt: bytes | None = None) -> SecretHash:
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    derived = _derive(secret, salt, _N, _R, _P)
    return SecretHash(f"{_SCHEME}${_N}${_R}${_P}${derived.hex()}", salt.hex())


def verify_secret(secret: str, stored: SecretHash) -> bool:
    """True if `secret` matches; malformed stored values never match."""
    try:
        scheme, n, r, p, expected = stored.hash.split("$")
        salt = bytes.fromhex(stored.salt)
        wanted = bytes.fromhex(expected)
        costs = int(n), int(r), int(p)
    except ValueError:
        return False
    if scheme != _SCHEME:
        return False
    return hmac.compare_digest(_derive(secret, salt, *costs), wanted)


def burn_verification_time(secret: str) -> None:
    """Spend what a real check costs, so an unknown client id is not told apart by timing."""
    _derive(secret, b"\x00" * _SALT_BYTES, _N, _R, _P)


def _derive(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=_KEY_BYTES
    )
