"""Identifiers for the synthetic population: NPIs, deterministic UUIDs, member and record numbers.

NPI check digit: the National Provider Identifier standard (45 CFR 162.406; CMS "NPI check digit"
note, https://www.cms.gov/Regulations-and-Guidance/Administrative-Simplification/NationalProvIdentStand)
uses the ISO/IEC 7812 Luhn formula over the 9 identifier digits prefixed with the card-issuer
prefix 80840. Prefixing 80840 always adds 24 to the Luhn sum, so the check digit is computed from
the 9 digits plus that constant. Valid NPIs start with 1 or 2.

UUIDs are drawn from the stage's seeded generator (RFC 4122 version-4 layout), so a seed always
yields the same ids and no wall clock or OS entropy is involved.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

NPI_PREFIX_LUHN_CONSTANT = 24  # Luhn contribution of the "80840" prefix (CMS NPI check-digit note)


def npi_check_digit(first_nine: str) -> int:
    """Check digit for a 9-digit NPI stem (Luhn with the 80840 prefix)."""
    if len(first_nine) != 9 or not first_nine.isdigit():
        raise ValueError(f"an NPI stem has 9 digits, got {first_nine!r}")
    total = NPI_PREFIX_LUHN_CONSTANT
    for position, char in enumerate(reversed(first_nine)):
        digit = int(char)
        if position % 2 == 0:  # rightmost stem digit is doubled (the check digit is not there yet)
            digit *= 2
            digit = digit - 9 if digit > 9 else digit
        total += digit
    return (10 - total % 10) % 10


def is_valid_npi(npi: str) -> bool:
    """True when `npi` is 10 digits, starts with 1 or 2 and carries a correct check digit."""
    if len(npi) != 10 or not npi.isdigit() or npi[0] not in "12":
        return False
    return npi_check_digit(npi[:9]) == int(npi[9])


def make_npis(rng: np.random.Generator, count: int, *, first_digit: int = 1) -> list[str]:
    """`count` distinct NPIs with valid check digits."""
    stems = rng.choice(10**8, size=count, replace=False) + first_digit * 10**8
    return [f"{stem}{npi_check_digit(str(stem))}" for stem in stems.tolist()]


def make_uuids(rng: np.random.Generator, count: int) -> list[str]:
    """`count` version-4 UUID strings drawn from `rng` (deterministic for a given seed)."""
    if count == 0:
        return []
    raw = rng.integers(0, 256, size=(count, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    return _uuid_strings(raw)


def _uuid_strings(raw: npt.NDArray[np.uint8]) -> list[str]:
    """Canonical 8-4-4-4-12 hex strings for rows of 16 bytes (vectorised formatting)."""
    count = len(raw)
    hex_chars = np.frombuffer(raw.tobytes().hex().encode("ascii"), dtype="S1").reshape(count, 32)
    dash = np.full((count, 1), b"-", dtype="S1")
    pieces = [hex_chars[:, a:b] for a, b in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))]
    joined = np.hstack(
        [pieces[0], dash, pieces[1], dash, pieces[2], dash, pieces[3], dash, pieces[4]]
    )
    text = np.ascontiguousarray(joined).tobytes().decode("ascii")
    return [text[i : i + 36] for i in range(0, len(text), 36)]


def make_numbers(rng: np.random.Generator, count: int, digits: int) -> npt.NDArray[np.int64]:
    """`count` distinct random numbers of exactly `digits` digits (no leading zero)."""
    low = 10 ** (digits - 1)
    drawn = np.asarray(rng.choice(9 * low, size=count, replace=False), dtype=np.int64)
    return drawn + np.int64(low)


def prefixed(prefix: str, numbers: npt.NDArray[np.int64]) -> list[str]:
    """Format numbers as identifier strings, e.g. prefixed("PM", [12]) -> ["PM12"]."""
    return [f"{prefix}{n}" for n in numbers.tolist()]
