"""Roles as data: who a user is in the record, and the policy that follows (docs/security.md).

A user's role is read from the token's `fhirUser` and the FHIR data it points at, never from a
hard-coded list:

- Patient/X: the patient; their own compartment only.
- Practitioner/X or PractitionerRole/R: clinician or pharmacist. Actors: the user, its
  PractitionerRoles in force and their Practitioner, Organizations and Locations, and the
  CareTeams any of these takes part in. Purposes TREAT (default) and ETREAT (break the glass).
- Organization/O typed payer (`pay` or `ins`): payer. Actor O; purposes HPAYMT, HOPERAT;
  always opt-in by default (a payer sees only what the patient's Consent permits).
- Any other Organization: provider organisation. Actors O and its CareTeams; purpose TREAT.
- RelatedPerson (or another type): sees a patient only where a Consent names it; TREAT.
- No fhirUser: admin or backend system; no patient policy (scopes still apply).

Relationships that make a patient "theirs" are data too (`TREATMENT_LINKS`, `PAYMENT_LINKS`):
a CareTeam, the Patient's managing organisation or general practitioner, an EpisodeOfCare, an
Encounter (participant or service provider) for care; a Coverage (payor) for payment. Purpose
codes are HL7 v3 ActReason (http://terminology.hl7.org/CodeSystem/v3-ActReason); the
organisation type codes are http://terminology.hl7.org/CodeSystem/organization-type.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from carebridge.fhir.guard import PatientPolicy, Relationship
from carebridge.fhir.search import access_links
from carebridge.fhir.search.dates import InvalidDateError, date_range
from carebridge.fhir.search.values import local_reference
from carebridge.kit.clock import minute_of

TREAT = "TREAT"
EMERGENCY_TREAT = "ETREAT"  # break the glass
PAYMENT = "HPAYMT"
OPERATIONS = "HOPERAT"
ORGANIZATION_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/organization-type"
PAYER_TYPES = frozenset({"pay", "ins"})  # Payer, Insurance Company

# the kinds that are few per patient are summarized with the search index (access_links.py)
TREATMENT_LINKS = (
    *access_links.CARE_LINKS,
    Relationship("Encounter", "patient", "participant"),
    Relationship("Encounter", "patient", "service-provider"),
)
PAYMENT_LINKS = access_links.PAYMENT_LINKS


class PurposeError(ValueError):
    """A purpose of use the user's role may not claim."""


@dataclass(frozen=True)
class Role:
    name: str  # clinician, payer, provider-organization, related-person
    actors: frozenset[tuple[str, str]]
    purposes: tuple[str, ...]  # allowed; the first is the default
    links: tuple[Relationship, ...]
    opt_in: bool  # True: a patient's data is shared only under a Consent that permits it


def in_force(resource: dict[str, Any], at: datetime) -> bool:
    """`active` is not false and `period` (if any) contains `at`."""
    if resource.get("active") is False:
        return False
    period = resource.get("period")
    if not isinstance(period, dict):
        return True
    try:
        start = date_range(period["start"])[0] if isinstance(period.get("start"), str) else None
        end = date_range(period["end"])[1] if isinstance(period.get("end"), str) else None
    except InvalidDateError:
        return False
    return (start is None or start <= at) and (end is None or at <= end)


def practitioner_actors(
    user: tuple[str, str], roles: Iterable[dict[str, Any]], at: datetime
) -> frozenset[tuple[str, str]]:
    """The user, its PractitionerRoles in force, and their organisations and locations."""
    actors = {user}
    for role in roles:
        if not in_force(role, at) or not role.get("id"):
            continue
        actors.add(("PractitionerRole", str(role["id"])))
        refs = [role.get("practitioner"), role.get("organization"), *(role.get("location") or [])]
        for ref in refs:
            if (key := local_reference(ref)) is not None:
                actors.add(key)
    return frozenset(actors)


def is_payer(organization: dict[str, Any] | None) -> bool:
    """An Organization typed Payer or Insurance Company (organization-type `pay`, `ins`)."""
    if not organization:
        return False
    return any(
        c.get("code") in PAYER_TYPES and c.get("system") in (None, ORGANIZATION_TYPE_SYSTEM)
        for t in organization.get("type") or []
        for c in t.get("coding") or []
    )


def choose_purpose(role: Role, requested: str | None) -> str:
    """The purpose of use of a request: the role's default, or a requested one it may claim."""
    if requested is None:
        return role.purposes[0]
    purpose = requested.strip().upper()
    if purpose not in role.purposes:
        allowed = ", ".join(role.purposes)
        raise PurposeError(
            f"purpose of use {purpose!r} is not open to a {role.name}; allowed: {allowed}"
        )
    return purpose


def policy_for(role: Role, purpose: str, at: datetime) -> PatientPolicy:
    """The policy the store enforces for `role` acting for `purpose`. Consent periods are
    checked to the minute, so a user's requests within a minute share one policy (and the
    store's compiled condition for it): it is built once per role, purpose and minute."""
    return _policy(role, purpose, minute_of(at))


@lru_cache(maxsize=1024)
def _policy(role: Role, purpose: str, minute: datetime) -> PatientPolicy:
    return PatientPolicy(
        actors=role.actors,
        purpose=purpose,
        default_permit=not role.opt_in,
        relationships=role.links,
        at=minute,
        override=purpose == EMERGENCY_TREAT,
    )
