"""Consent -> rules (R4 consent.html: base provision, nested exceptions; consentscope codes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from carebridge.fhir.search.consent_rules import consent_rows
from carebridge.fhir.search.dates import HIGH, LOW
from carebridge.fhir.search.parameters import registry

SCOPE = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
    ]
}
KNOWN = registry().resource_types


def consent(provision: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": SCOPE,
        "patient": {"reference": "Patient/p1"},
        "dateTime": "2025-02-01",
        "provision": provision,
        **overrides,
    }


def short(rows: list[Any]) -> set[tuple[Any, ...]]:
    """(depth, effect, actor, purpose, class) of each row."""
    return {(r[1], r[2], f"{r[3]}/{r[4]}" if r[3] else None, r[5], r[6]) for r in rows}


ACTOR = {"actor": [{"reference": {"reference": "Organization/payer"}}]}


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"status": "inactive"}, "only an active Consent governs"),
        ({"status": "proposed"}, "a proposal is not yet in force"),
        ({"scope": {"coding": [{"code": "research"}]}}, "research consent is not privacy"),
        ({"patient": {"reference": "Group/g1"}}, "the subject must be a Patient"),
        ({"patient": {"reference": "http://elsewhere.org/fhir/Patient/p1"}}, "not a local patient"),
    ],
)
def test_consents_that_govern_nothing(overrides: dict[str, Any], reason: str) -> None:
    assert consent_rows(consent({"type": "deny"}, **overrides), KNOWN) == [], reason


def test_nested_provisions_inherit_what_they_leave_out() -> None:
    tree = {
        "type": "permit",
        "provision": [
            {
                "type": "deny",
                **ACTOR,
                "purpose": [{"code": "HPAYMT"}],
                "provision": [{"type": "permit", "class": [{"code": "Observation"}]}],
            }
        ],
    }
    assert short(consent_rows(consent(tree), KNOWN)) == {
        (0, "permit", None, None, None),
        (1, "deny", "Organization/payer", "HPAYMT", None),
        (2, "permit", "Organization/payer", "HPAYMT", "Observation"),
    }


def test_one_row_per_actor_purpose_and_class() -> None:
    tree = {
        "type": "permit",
        "actor": [
            {"reference": {"reference": "Organization/a"}},
            {"reference": {"reference": "Practitioner/b"}},
        ],
        "class": [
            {"system": "http://hl7.org/fhir/resource-types", "code": "Observation"},
            {"code": "Condition"},
        ],
    }
    assert len(consent_rows(consent(tree), KNOWN)) == 4


def test_a_permit_narrowed_in_ways_the_store_cannot_apply_is_void() -> None:
    by_code = {"type": "permit", "code": [{"coding": [{"code": "x"}]}]}
    by_loinc_class = {"type": "permit", "class": [{"system": "http://loinc.org", "code": "1-8"}]}
    assert consent_rows(consent(by_code), KNOWN) == []
    assert consent_rows(consent(by_loinc_class), KNOWN) == []


def test_a_deny_narrowed_in_ways_the_store_cannot_apply_denies_more() -> None:
    tree = {
        "type": "deny",
        "class": [
            {"code": "Observation"},
            {"system": "http://loinc.org", "code": "1-8"},
        ],
        "securityLabel": [{"code": "R"}],
    }
    assert short(consent_rows(consent(tree), KNOWN)) == {(0, "deny", None, None, "Observation")}
    only_unknown = {"type": "deny", "class": [{"system": "http://loinc.org", "code": "1-8"}]}
    assert short(consent_rows(consent(only_unknown), KNOWN)) == {(0, "deny", None, None, None)}


def test_provisions_about_collection_only_do_not_govern_access() -> None:
    collect = {"coding": [{"code": "collect"}]}
    access = {"coding": [{"code": "access"}]}
    assert consent_rows(consent({"type": "deny", "action": [collect]}), KNOWN) == []
    assert consent_rows(consent({"type": "deny", "action": [collect, access]}), KNOWN)


def test_periods_narrow_down_the_tree_and_the_recorded_time_orders_consents() -> None:
    tree = {
        "type": "permit",
        "period": {"start": "2025-01-01", "end": "2025-12-31"},
        "provision": [{"type": "deny", "period": {"start": "2025-06-01"}}],
    }
    rows = consent_rows(consent(tree), KNOWN)
    spans = {r[1]: (r[7], r[8]) for r in rows}
    assert spans[0][0] == datetime.fromisoformat("2025-01-01")
    assert spans[1][0] == datetime.fromisoformat("2025-06-01")
    assert spans[1][1] == spans[0][1] < HIGH
    assert {r[9] for r in rows} == {datetime.fromisoformat("2025-02-01")}
    undated = consent({"type": "permit"}, dateTime=None)
    assert consent_rows(undated, KNOWN)[0][7:] == (LOW, HIGH, LOW)


def test_an_unreadable_period_voids_a_permit_but_not_a_deny() -> None:
    bad = {"start": "not a date"}
    assert consent_rows(consent({"type": "permit", "period": bad}), KNOWN) == []
    assert consent_rows(consent({"type": "deny", "period": bad}), KNOWN)


@pytest.mark.parametrize(
    ("types", "params", "pinned"),
    [
        (["Observation"], [("patient", "p1")], "p1"),
        (["Observation"], [("subject", "Patient/p1")], "p1"),
        (["Observation"], [("subject:Patient", "p1")], "p1"),
        (["MedicationDispense"], [("patient", "Patient/p1"), ("status", "completed")], "p1"),
        (["Observation"], [("subject", "p1")], None),  # a bare id could be a Group
        (["Observation"], [("patient", "p1,p2")], None),
        (["Observation"], [("patient:missing", "false")], None),
        (["Observation"], [("patient.name", "Smith")], None),
        (["Observation"], [("code", "1-8")], None),
        (["Patient"], [("_id", "p1")], None),
        (["Observation", "Condition"], [("patient", "p1")], "p1"),
    ],
)
def test_searches_pinned_to_one_patient(
    types: list[str], params: list[tuple[str, str]], pinned: str | None
) -> None:
    from carebridge.fhir.search.parse import parse_search
    from carebridge.fhir.search.query import pinned_patient

    assert pinned_patient(parse_search(types, params)) == pinned
