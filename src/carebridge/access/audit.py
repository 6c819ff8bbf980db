"""AuditEvent resources for every access (pure).

Shape follows FHIR R4 AuditEvent (http://hl7.org/fhir/R4/auditevent.html) as profiled for RESTful
access by IHE Basic Audit Log Patterns (BALP, https://profiles.ihe.net/ITI/BALP/): type `rest`,
subtype the restful-interaction code, action C/R/U/D/E, outcome 0 (success), 4 (minor failure,
e.g. a refused request) or 8 (serious failure), the requesting agent with its purpose of use,
the server as source, and one entity per resource or patient touched. No names, birth dates or
identifiers are copied in: entities are references only; a search query is kept (base64, as the
spec's `entity.query` is) because it is the record of what was asked.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from carebridge.fhir.guard import AccessRecord, Interaction
from carebridge.fhir.search.dates import instant_text

_TYPE = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "Restful Operation",
}
_INTERACTION_SYSTEM = "http://hl7.org/fhir/restful-interaction"
_ACTIONS: dict[str, str] = {
    Interaction.CREATE.value: "C",
    Interaction.READ.value: "R",
    Interaction.VREAD.value: "R",
    Interaction.HISTORY_INSTANCE.value: "R",
    Interaction.UPDATE.value: "U",
    Interaction.DELETE.value: "D",
}
_PURPOSE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
_SOURCE_TYPE = {
    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
    "code": "4",
    "display": "Application Server",
}
_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"


@dataclass(frozen=True)
class Actor:
    """Who asked: the OAuth client and, when known, the user (fhirUser) behind it."""

    client_id: str
    fhir_user: str | None = None
    purpose: str | None = None  # v3 ActReason code, e.g. TREAT, HPAYMT, ETREAT
    address: str | None = None


def outcome_code(status: int) -> str:
    """HTTP status -> AuditEvent.outcome (0 success, 4 minor failure, 8 serious failure)."""
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


def audit_event(
    record: AccessRecord, actor: Actor, recorded: datetime, server: str
) -> dict[str, Any]:
    """The AuditEvent for one access."""
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": _TYPE,
        "subtype": [{"system": _INTERACTION_SYSTEM, "code": str(record.interaction)}],
        "action": _ACTIONS.get(str(record.interaction), "E"),
        "recorded": instant_text(recorded),
        "outcome": outcome_code(record.outcome),
        "agent": [_agent(actor)],
        "source": {"observer": {"display": server}, "type": [_SOURCE_TYPE]},
    }
    if record.detail:
        event["outcomeDesc"] = record.detail
    if actor.purpose:
        event["purposeOfEvent"] = [_purpose(actor.purpose)]
    entities = _entities(record)
    if entities:
        event["entity"] = entities
    return event


def _agent(actor: Actor) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "requestor": True,
        "altId": actor.client_id,
        "who": {"reference": actor.fhir_user}
        if actor.fhir_user
        else {
            "identifier": {
                "system": "https://carebridge.dev/fhir/sid/oauth-client",
                "value": actor.client_id,
            }
        },
    }
    if actor.purpose:
        agent["purposeOfUse"] = [_purpose(actor.purpose)]
    if actor.address:
        agent["network"] = {"address": actor.address, "type": "2"}
    return agent


def _purpose(code: str) -> dict[str, Any]:
    return {"coding": [{"system": _PURPOSE_SYSTEM, "code": code}]}


def _entities(record: AccessRecord) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = [
        {
            "what": {"reference": f"Patient/{pid}"},
            "type": {"system": _ENTITY_TYPE, "code": "1", "display": "Person"},
            "role": {"system": _OBJECT_ROLE, "code": "1", "display": "Patient"},
        }
        for pid in record.patients
    ]
    entities += [
        {
            "what": {"reference": ref},
            "type": {"system": _ENTITY_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": _OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
        }
        for ref in record.entities
        if not ref.startswith("Patient/") or ref.removeprefix("Patient/") not in record.patients
    ]
    if record.query is not None:
        entities.append(
            {
                "type": {"system": _ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": _OBJECT_ROLE, "code": "24", "display": "Query"},
                "query": base64.b64encode(record.query.encode()).decode(),
                **({"description": record.resource_type} if record.resource_type else {}),
            }
        )
    return entities
