"""A patient's sharing choices as one FHIR Consent they manage themselves (pure).

The Consent (id `sharing-<patient>`, scope patient-privacy, category LOINC 59284-0 "Patient
Consent") has a base provision without a type: it adds no rule of its own, so whatever the
patient has not decided follows the deployment's defaults (opt-out for treatment, opt-in for
payment; docs/security.md). Each decision is one nested provision naming one actor: `permit`
(optionally limited to resource types and a purpose of use) or `deny`. Deciding again about the
same actor replaces the earlier decision; withdrawing it removes the provision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from carebridge.fhir.search.consent_rules import CONSENT_SCOPE_SYSTEM, RESOURCE_TYPES_SYSTEM

PATIENT_CONSENT = {"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PURPOSE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
SHARABLE_ACTORS = ("Organization", "Practitioner", "PractitionerRole", "CareTeam", "RelatedPerson")


@dataclass(frozen=True)
class Decision:
    actor: str  # "Organization/payer-1"
    access: str  # permit | deny
    types: tuple[str, ...] = ()  # none: every type
    purpose: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "access": self.access,
            "types": list(self.types),
            "purpose": self.purpose,
        }


def consent_id(patient_id: str) -> str:
    return f"sharing-{patient_id}"


def empty_consent(patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "id": consent_id(patient_id),
        "status": "active",
        "scope": {"coding": [{"system": CONSENT_SCOPE_SYSTEM, "code": "patient-privacy"}]},
        "category": [{"coding": [PATIENT_CONSENT]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "policyRule": {"coding": [{"system": ACT_CODE, "code": "OPTINR"}]},
        "provision": {},
    }


def decisions(consent: dict[str, Any] | None) -> list[Decision]:
    """The decisions a managed Consent holds, in order."""
    out: list[Decision] = []
    for item in ((consent or {}).get("provision") or {}).get("provision") or []:
        actors = [a.get("reference", {}).get("reference") for a in item.get("actor") or []]
        if not actors or not actors[0]:
            continue
        types = tuple(c["code"] for c in item.get("class") or [] if c.get("code"))
        purposes = [p.get("code") for p in item.get("purpose") or []]
        out.append(
            Decision(actors[0], item.get("type", "deny"), types, purposes[0] if purposes else None)
        )
    return out


def decide(
    consent: dict[str, Any] | None, patient_id: str, decision: Decision | None, actor: str, now: str
) -> dict[str, Any]:
    """The Consent with `actor`'s decision replaced by `decision` (None: withdrawn)."""
    updated = dict(consent) if consent else empty_consent(patient_id)
    kept = [d for d in decisions(consent) if d.actor != actor]
    if decision is not None:
        kept.append(decision)
    updated["dateTime"] = now
    updated["provision"] = {"provision": [_provision(d) for d in kept]} if kept else {}
    return updated


def _provision(decision: Decision) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": decision.access,
        "actor": [
            {
                "role": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "code": "IRCP",
                            "display": "information recipient",
                        }
                    ]
                },
                "reference": {"reference": decision.actor},
            }
        ],
    }
    if decision.purpose:
        out["purpose"] = [{"system": PURPOSE_SYSTEM, "code": decision.purpose}]
    if decision.types:
        out["class"] = [{"system": RESOURCE_TYPES_SYSTEM, "code": t} for t in decision.types]
    return out


def access_log_entry(event: dict[str, Any]) -> dict[str, Any]:
    """One AuditEvent as the patient reads it: when, who, what they did, why, with what result."""
    agent = (event.get("agent") or [{}])[0]
    who = agent.get("who", {})
    purposes = [
        c.get("code") for p in event.get("purposeOfEvent") or [] for c in p.get("coding") or []
    ]
    return {
        "when": event.get("recorded"),
        "who": who.get("reference") or who.get("identifier", {}).get("value"),
        "action": (event.get("subtype") or [{}])[0].get("code"),
        "outcome": "success" if event.get("outcome") == "0" else "failure",
        "purpose": purposes[0] if purposes else None,
        "breakTheGlass": any(
            s.get("code") == "BTG" for s in (event.get("meta") or {}).get("security") or []
        ),
        "resources": [
            e["what"]["reference"]
            for e in event.get("entity") or []
            if e.get("what", {}).get("reference")
        ],
    }
