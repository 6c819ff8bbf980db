"""Access-enforcement fixtures for the search benchmark, written into an already loaded store.

The cached Synthea population has no care relationships a `PatientPolicy` can use, so after the
load this module writes, through the FHIR transaction path (one transaction Bundle):

- Organization `bench-clinic`, Practitioner `bench-clinician` and an active PractitionerRole tying
  them (the clinician's role; roles.py turns it into the clinician's actors);
- a relationship for *every* Patient, so a clinician's search returns exactly what an admin's
  does: about 3 in 4 patients get `managingOrganization = Organization/bench-clinic` (the Patient
  is PUT again with it), the others one CareTeam with the clinician as participant;
- for 1 in 10 patients (by a hash of the id, so the set does not depend on the benchmark's
  seed), an active patient-privacy Consent: base provision permit, a nested deny for another
  Organization (`bench-other-clinic`), and a nested permit for the payer (`bench-payer`, an
  Organization typed `pay`) for purpose HPAYMT and Patient, Observation and MedicationDispense;
  the same patients get a Coverage with that payer as payor.

The clinician's Consent path is thus exercised for 10% of patients (with a permit decided by the
base provision), the payer's (opt-in) for the same 10%. Writing is skipped when the
PractitionerRole already exists, so reruns on the same store do not add versions.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, false, select

from carebridge.fhir.service import FhirContext
from carebridge.fhir.store import FhirStore
from carebridge.fhir.tables import resource
from carebridge.fhir.transaction import process_bundle
from carebridge.kit.db import refresh_statistics

CLINIC = "bench-clinic"
OTHER_CLINIC = "bench-other-clinic"
PAYER = "bench-payer"
PRACTITIONER = "bench-clinician"
ROLE = "bench-clinician-role"
CONSENT_PERCENT = 10
CARE_TEAM_PERCENT = 25

_CONSENT_SCOPE = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
    ]
}
_PAYER_TYPE = [
    {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "pay"}
        ]
    }
]
_RECIPIENT = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}
    ]
}


@dataclass(frozen=True)
class AccessSetup:
    patients: int
    care_teams: int
    consented: frozenset[str]  # patient ids with a Consent and a Coverage (the payer's patients)
    written: int  # resources written now (0: the fixtures were already there)

    @property
    def practitioner(self) -> str:
        return f"Practitioner/{PRACTITIONER}"

    @property
    def payer(self) -> str:
        return f"Organization/{PAYER}"


def _bucket(patient_id: str) -> int:
    return zlib.crc32(patient_id.encode()) % 100


def has_consent(patient_id: str) -> bool:
    return _bucket(patient_id) < CONSENT_PERCENT


def via_care_team(patient_id: str) -> bool:
    return CONSENT_PERCENT <= _bucket(patient_id) < CONSENT_PERCENT + CARE_TEAM_PERCENT


def ensure(engine: Engine, ctx: FhirContext) -> AccessSetup:
    """Write the fixtures unless they are there; describe them either way."""
    with engine.connect() as conn:
        done = FhirStore(conn).find("PractitionerRole", ROLE) is not None
        query = select(resource.c.res_id).where(
            resource.c.res_type == "Patient", resource.c.deleted == false()
        )
        if not done:
            query = query.add_columns(resource.c.content)
        rows = conn.execute(query.order_by(resource.c.res_id)).all()
    ids = [r.res_id for r in rows]
    teams = sum(1 for i in ids if via_care_team(i))
    consented = frozenset(i for i in ids if has_consent(i))
    if done:
        return AccessSetup(len(ids), teams, consented, 0)
    resources = _fixtures()
    for row in rows:
        resources += _relate(row.res_id, row.content)
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
    with engine.begin() as conn:
        process_bundle(FhirStore(conn), ctx, bundle, max_entries=len(resources) + 1, minimal=True)
    refresh_statistics(engine, full=True)  # as after a load: the Consent rules are new
    return AccessSetup(len(ids), teams, consented, len(resources))


def _ref(reference: str) -> dict[str, str]:
    return {"reference": reference}


def _fixtures() -> list[dict[str, Any]]:
    return [
        {"resourceType": "Organization", "id": CLINIC, "active": True, "name": "Bench Clinic"},
        {"resourceType": "Organization", "id": OTHER_CLINIC, "active": True, "name": "Other"},
        {
            "resourceType": "Organization",
            "id": PAYER,
            "active": True,
            "name": "Bench Payer",
            "type": _PAYER_TYPE,
        },
        {"resourceType": "Practitioner", "id": PRACTITIONER, "active": True},
        {
            "resourceType": "PractitionerRole",
            "id": ROLE,
            "active": True,
            "practitioner": _ref(f"Practitioner/{PRACTITIONER}"),
            "organization": _ref(f"Organization/{CLINIC}"),
            "code": [{"coding": [{"system": "http://snomed.info/sct", "code": "46255001"}]}],
        },
    ]


def _relate(patient_id: str, content: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if via_care_team(patient_id):
        out.append(
            {
                "resourceType": "CareTeam",
                "id": f"bench-team-{patient_id}",
                "status": "active",
                "subject": _ref(f"Patient/{patient_id}"),
                "participant": [{"member": _ref(f"Practitioner/{PRACTITIONER}")}],
            }
        )
    else:
        out.append({**content, "managingOrganization": _ref(f"Organization/{CLINIC}")})
    if has_consent(patient_id):
        out += [_consent(patient_id), _coverage(patient_id)]
    return out


def _provision(kind: str, actor: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "actor": [{"role": _RECIPIENT, "reference": _ref(actor)}], **extra}


def _consent(patient_id: str) -> dict[str, Any]:
    payer_types = ("Patient", "Observation", "MedicationDispense")
    return {
        "resourceType": "Consent",
        "id": f"bench-consent-{patient_id}",
        "status": "active",
        "scope": _CONSENT_SCOPE,
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": _ref(f"Patient/{patient_id}"),
        "dateTime": "2025-01-01",
        "provision": {
            "type": "permit",
            "provision": [
                _provision("deny", f"Organization/{OTHER_CLINIC}"),
                _provision(
                    "permit",
                    f"Organization/{PAYER}",
                    purpose=[
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                            "code": "HPAYMT",
                        }
                    ],
                    **{
                        "class": [
                            {"system": "http://hl7.org/fhir/resource-types", "code": t}
                            for t in payer_types
                        ]
                    },
                ),
            ],
        },
    }


def _coverage(patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Coverage",
        "id": f"bench-coverage-{patient_id}",
        "status": "active",
        "beneficiary": _ref(f"Patient/{patient_id}"),
        "payor": [_ref(f"Organization/{PAYER}")],
    }
