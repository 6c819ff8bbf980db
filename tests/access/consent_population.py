"""Builders for access tests: patients, their care relationships and their Consents."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import poll_async

CONSENT_SCOPE = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
    ]
}
PAYER_TYPE = [
    {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "pay"}
        ]
    }
]
PURPOSE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
DATA_TYPES = ("Patient", "Observation", "Condition")


def ref(reference: str) -> dict[str, str]:
    return {"reference": reference}


def patient(pid: str, store: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Patient", "id": pid}
    if store:
        resource["managingOrganization"] = ref(f"Organization/{store}")
    return resource


def clinical_data(pid: str) -> list[dict[str, Any]]:
    """One Observation and one Condition for the patient."""
    return [
        {
            "resourceType": "Observation",
            "id": f"obs-{pid}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": ref(f"Patient/{pid}"),
        },
        {
            "resourceType": "Condition",
            "id": f"cond-{pid}",
            "subject": ref(f"Patient/{pid}"),
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]},
        },
    ]


def coverage(pid: str, payer: str) -> dict[str, Any]:
    return {
        "resourceType": "Coverage",
        "id": f"cov-{pid}-{payer}",
        "status": "active",
        "beneficiary": ref(f"Patient/{pid}"),
        "payor": [ref(f"Organization/{payer}")],
    }


def care_team(pid: str, member: str) -> dict[str, Any]:
    return {
        "resourceType": "CareTeam",
        "id": f"team-{pid}-{member.replace('/', '-')}",
        "subject": ref(f"Patient/{pid}"),
        "participant": [{"member": ref(member)}],
    }


def provision(
    kind: str,
    *,
    actor: str | None = None,
    purpose: str | None = None,
    types: tuple[str, ...] = (),
    nested: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind}
    if actor:
        out["actor"] = [
            {
                "role": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "code": "IRCP",
                        }
                    ]
                },
                "reference": ref(actor),
            }
        ]
    if purpose:
        out["purpose"] = [{"system": PURPOSE, "code": purpose}]
    if types:
        out["class"] = [{"system": "http://hl7.org/fhir/resource-types", "code": t} for t in types]
    if nested:
        out["provision"] = nested
    return out


def consent(
    cid: str, pid: str, rule: dict[str, Any], status: str = "active", when: str = "2025-01-01"
) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "id": cid,
        "status": status,
        "scope": CONSENT_SCOPE,
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": ref(f"Patient/{pid}"),
        "dateTime": when,
        "provision": rule,
    }


def practitioner_with_role(pid: str, org: str) -> list[dict[str, Any]]:
    return [
        {"resourceType": "Practitioner", "id": pid},
        {
            "resourceType": "PractitionerRole",
            "id": f"role-{pid}",
            "active": True,
            "practitioner": ref(f"Practitioner/{pid}"),
            "organization": ref(f"Organization/{org}"),
            "code": [{"coding": [{"system": "http://snomed.info/sct", "code": "46255001"}]}],
        },
    ]


def organization(oid: str, payer: bool = False) -> dict[str, Any]:
    org: dict[str, Any] = {"resourceType": "Organization", "id": oid}
    if payer:
        org["type"] = PAYER_TYPE
    return org


def load(client: TestClient, auth: dict[str, str], resources: list[dict[str, Any]]) -> None:
    """PUT every resource in one transaction."""
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }
    response = client.post(
        "/fhir", json=bundle, headers={**auth, "content-type": "application/fhir+json"}
    )
    assert response.status_code == 200, response.text


def visible_ids(client: TestClient, auth: dict[str, str], path: str, **params: Any) -> set[str]:
    """`Type/id` of every resource a search returns (matches and includes, all pages)."""
    response = client.get(path, params={"_count": 500, **params}, headers=auth)
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert not any(link["relation"] == "next" for link in bundle.get("link", []))
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", [])
    }


def wait_for_export(client: TestClient, status: str, auth: dict[str, str]) -> dict[str, Any]:
    """Poll a `$export` status URL until the manifest is ready (30 s at most)."""
    return poll_async(client, status, auth)
