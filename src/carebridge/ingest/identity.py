"""Identifier systems and deterministic resource ids.

Every resource the CSV pipelines write has an id derived from its source key (RFC 4122 name-based
UUID, version 5, in a fixed carebridge namespace), so running a file again writes the same
resources and the store records no new versions (ADR 0003). Systems under
`https://carebridge.dev/fhir/sid/` are the ones the synthetic generator uses for the same keys.
"""

from __future__ import annotations

import hashlib
import uuid
from functools import lru_cache

from carebridge.ingest.records import Identifier

SID = "https://carebridge.dev/fhir/sid"
MRN = f"{SID}/mrn"
PHARMACY_MEMBER = f"{SID}/pharmacy-member"
PAYER_MEMBER = f"{SID}/payer-member"
PRESCRIPTION = f"{SID}/prescription"  # "<store NCPDP id>-<prescription number>"
DISPENSE = f"{SID}/dispense"  # "<store NCPDP id>-<prescription number>-<refill number>"
PAYER = f"{SID}/payer"
CLAIM = f"{SID}/claim"  # "<payer id>-<claim id>"

NAMESPACE = uuid.UUID("9b0c7b0e-4f4e-5c1a-9d2e-6f1b3c8a7e21")
_NAMESPACE_BYTES = NAMESPACE.bytes


def resource_id(res_type: str, *key: str) -> str:
    """The id of the `res_type` resource with natural key `key`: `uuid.uuid5(NAMESPACE, name)`
    for the name `res_type|key...` (RFC 4122 section 4.3: SHA-1 of namespace and name, version
    and variant bits set), computed without building a UUID object: this runs for every row."""
    name = "|".join((res_type, *key)).encode()
    raw = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@lru_cache(maxsize=65_536)
def shared_resource_id(res_type: str, *key: str) -> str:
    """`resource_id` of a resource that recurs across rows (a store, a prescriber, a drug, a
    payer), computed once per key and process: most rows carry one of a few hundred."""
    return resource_id(res_type, *key)


def new_patient_id(identifier: Identifier) -> str:
    """The id a feed gives a Patient it creates: derived from the feed's own identifier."""
    return resource_id("Patient", identifier.system, identifier.value)
