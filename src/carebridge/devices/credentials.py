"""Device credentials: issued once, stored only as a salted hash, checked in constant time.

- **Format.** `<device id>.<secret>`, the secret being 32 random bytes in URL-safe base64
  (`secrets.token_urlsafe`, 256 bits). The device id in front lets the HTTP transport find the
  device from the bearer token alone (as GitHub's prefixed tokens do); the secret has no `.`.
- **Storage.** scrypt (RFC 7914) with a random 16-byte salt, n=2^14, r=8, p=1: the interactive
  parameters recommended by its author and the Python docs (`hashlib.scrypt`). The secret is high
  entropy, so a slow hash only matters if the table leaks; it still never leaves the device in
  clear after it is shown once.
- **Cost.** One scrypt check takes tens of milliseconds, too slow per MQTT message. A
  `VerifiedCredentials` cache remembers which token (by SHA-256) matched which stored hash; a
  rotated or retired credential changes or removes the stored hash, so the cache can never
  outlive it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass

_N, _R, _P, _DKLEN = 2**14, 8, 1, 32


@dataclass(frozen=True)
class IssuedCredential:
    device_id: str
    token: str
    secret_hash: str
    secret_salt: str


@dataclass(frozen=True)
class StoredCredential:
    device_id: str
    secret_hash: str
    secret_salt: str
    retired: bool


def _hash(secret: str, salt_hex: str) -> str:
    derived = hashlib.scrypt(
        secret.encode(), salt=bytes.fromhex(salt_hex), n=_N, r=_R, p=_P, dklen=_DKLEN
    )
    return derived.hex()


def issue(device_id: str) -> IssuedCredential:
    """A fresh credential for `device_id` and the hash to store."""
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    return IssuedCredential(device_id, f"{device_id}.{secret}", _hash(secret, salt), salt)


def device_of(token: str) -> str | None:
    """The device id a token names, or None when it is not shaped like a device credential."""
    device_id, dot, secret = token.rpartition(".")
    return device_id if dot and device_id and secret else None


def matches(token: str, stored: StoredCredential) -> bool:
    device_id, _, secret = token.rpartition(".")
    if device_id != stored.device_id:
        return False
    return hmac.compare_digest(_hash(secret, stored.secret_salt), stored.secret_hash)


class VerifiedCredentials:
    """Tokens already checked against a stored hash (bounded, least recently used dropped)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._seen: OrderedDict[str, str] = OrderedDict()
        self._capacity = capacity

    def check(self, token: str, stored: StoredCredential) -> bool:
        fingerprint = hashlib.sha256(token.encode()).hexdigest()
        known = self._seen.get(fingerprint)
        if known is not None and hmac.compare_digest(known, stored.secret_hash):
            self._seen.move_to_end(fingerprint)
            return True
        if not matches(token, stored):
            return False
        self._seen[fingerprint] = stored.secret_hash
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True
