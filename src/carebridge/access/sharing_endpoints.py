"""Patient-facing sharing management: who has seen my record, and with whom I share it.

    GET    /patient/access-log                      AuditEvents about the patient, newest first
    GET    /patient/sharing                         the patient's decisions and the defaults
    PUT    /patient/sharing/{actor_type}/{actor_id} permit or deny one actor ({"access": ...})
    DELETE /patient/sharing/{actor_type}/{actor_id} withdraw a decision (back to the default)

The caller is the patient: a token with a patient context or `fhirUser` Patient/X. Decisions are
kept in a FHIR Consent (sharing.py) written through the store, so they take effect on the next
request and are audited like any other write. Each endpoint's work is a function of its own
(`read_access_log`, `read_sharing`, `record_choice`, `withdraw_choice`) that the patient's web
pages call too, with the guard built from their session cookie.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from carebridge.access.guard import TokenGuard
from carebridge.access.sharing import (
    SHARABLE_ACTORS,
    Decision,
    access_log_entry,
    consent_id,
    decide,
    decisions,
)
from carebridge.fhir.guard import Interaction
from carebridge.fhir.records import Method, WriteOp
from carebridge.fhir.search.dates import instant_text
from carebridge.fhir.search.parameters import registry
from carebridge.fhir.search.parse import parse_search
from carebridge.fhir.search.values import local_reference
from carebridge.fhir.store import FhirStore
from carebridge.fhir.unit_of_work import Access, in_transaction
from carebridge.kit.clock import utc_now
from carebridge.kit.errors import ForbiddenError, InvalidRequestError

router = APIRouter(prefix="/patient", tags=["patient"])


class SharingChoice(BaseModel):
    access: Literal["permit", "deny"]
    types: list[str] = Field(default_factory=list, description="resource types; none: all")
    purpose: str | None = Field(default=None, description="v3 ActReason code, e.g. HPAYMT")


class NotAPatientError(ForbiddenError):
    def __init__(self) -> None:
        super().__init__("only a patient (patient context or fhirUser) may do this")


def patient_of(request: Request) -> str:
    """The patient the request's guard acts for, or 403: these pages and endpoints are theirs."""
    guard: TokenGuard | None = getattr(request.state, "guard", None)
    if guard is not None:
        patient = guard.ctx.patient or guard.patient_user()
        if patient:
            return patient
    raise NotAPatientError


@router.get("/access-log")
async def access_log(
    request: Request, count: Annotated[int, Query(ge=1, le=500)] = 100
) -> dict[str, Any]:
    return await read_access_log(request, count)


@router.get("/sharing")
async def sharing(request: Request) -> dict[str, Any]:
    return await read_sharing(request)


@router.put("/sharing/{actor_type}/{actor_id}")
async def choose(
    request: Request, actor_type: str, actor_id: str, choice: SharingChoice
) -> dict[str, Any]:
    return await record_choice(request, actor_type, actor_id, choice)


@router.delete("/sharing/{actor_type}/{actor_id}")
async def withdraw(request: Request, actor_type: str, actor_id: str) -> dict[str, Any]:
    return await withdraw_choice(request, actor_type, actor_id)


# The work behind each endpoint, shared with the patient's web pages (carebridge.web): the
# request carries the guard (from a bearer header or the page's cookie), so both are authorized,
# confined and audited alike.


async def read_access_log(request: Request, count: int = 100) -> dict[str, Any]:
    """AuditEvents about the patient, newest first, as `access_log_entry` rows."""
    patient = patient_of(request)
    query = parse_search(
        ["AuditEvent"],
        [("patient", f"Patient/{patient}"), ("_sort", "-date"), ("_count", str(count))],
    )
    page = await in_transaction(
        request,
        Access(Interaction.SEARCH_TYPE, ("AuditEvent",)),
        lambda store: store.search(query),
    )
    return {
        "patient": f"Patient/{patient}",
        "entries": [access_log_entry(m.content or {}) for m in page.matches],
    }


async def read_sharing(request: Request) -> dict[str, Any]:
    """The patient's decisions and the deployment's defaults per purpose of use."""
    patient = patient_of(request)
    found = await in_transaction(
        request,
        Access(Interaction.READ, ("Consent",)),
        lambda store: store.find("Consent", consent_id(patient)),
    )
    settings = request.app.state.settings
    return {
        "consent": f"Consent/{consent_id(patient)}",
        "defaults": {"TREAT": settings.consent_treatment, "HPAYMT": settings.consent_payment},
        "decisions": [d.to_json() for d in decisions(found.content if found else None)],
    }


async def record_choice(
    request: Request, actor_type: str, actor_id: str, choice: SharingChoice
) -> dict[str, Any]:
    """Permit or deny one actor (replacing an earlier decision about it); 400 if invalid."""
    actor = _actor(actor_type, actor_id)
    unknown = [t for t in choice.types if t not in registry().resource_types]
    if unknown:
        raise InvalidRequestError(f"not FHIR resource types: {', '.join(unknown)}")
    purpose = choice.purpose.upper() if choice.purpose else None
    decision = Decision(actor, choice.access, tuple(dict.fromkeys(choice.types)), purpose)
    return await _record(request, actor, decision)


async def withdraw_choice(request: Request, actor_type: str, actor_id: str) -> dict[str, Any]:
    """Remove the decision about one actor: the deployment default applies to it again."""
    return await _record(request, _actor(actor_type, actor_id), None)


def _actor(actor_type: str, actor_id: str) -> str:
    actor = f"{actor_type}/{actor_id}"
    if actor_type not in SHARABLE_ACTORS or local_reference(actor) is None:
        allowed = ", ".join(SHARABLE_ACTORS)
        raise InvalidRequestError(f"cannot share with {actor!r}; actors are {allowed}")
    return actor


async def _record(request: Request, actor: str, decision: Decision | None) -> dict[str, Any]:
    patient = patient_of(request)

    def work(store: FhirStore) -> Any:
        existing = store.find("Consent", consent_id(patient))
        current = existing.content if existing and not existing.deleted else None
        content = decide(current, patient, decision, actor, instant_text(utc_now()))
        op = WriteOp(Method.PUT, "Consent", consent_id(patient), content)
        return store.write([op])[0]

    result = await in_transaction(request, Access(Interaction.UPDATE, ("Consent",)), work)
    stored = result.stored.content if result.stored else None
    return {
        "consent": f"Consent/{consent_id(patient)}",
        "decisions": [d.to_json() for d in decisions(stored)],
    }
