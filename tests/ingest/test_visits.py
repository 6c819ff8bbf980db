"""Claims of one visit share one Encounter: the id rule and the merge (ingest/mappers/visits.py)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from carebridge.ingest.mappers.claims import claim_resources
from carebridge.ingest.mappers.visits import merge_encounters
from tests.ingest.conftest import CLAIM

NPI = "http://hl7.org/fhir/sid/us-npi"


def _provider(value: str, kind: str) -> dict[str, Any]:
    return {"type": kind, "identifier": {"system": NPI, "value": value}}


encounters = st.builds(
    lambda claims, start, end, diagnoses, facility, physicians, disposition, status: {
        "resourceType": "Encounter",
        "id": "visit",
        "status": status,
        "class": {"code": "EMER"},
        "subject": {"reference": "Patient/p"},
        "identifier": [{"system": "claim", "value": c} for c in claims],
        "type": [{"coding": [{"code": "23"}]}],
        "period": {"start": start, "end": max(start, end)},
        "diagnosis": [
            {"condition": {"reference": f"Condition/{d}"}, "rank": r} for d, r in diagnoses
        ],
        **({"serviceProvider": _provider(facility, "Organization")} if facility else {}),
        **(
            {"participant": [{"individual": _provider(p, "Practitioner")} for p in physicians]}
            if physicians
            else {}
        ),
        **(
            {"hospitalization": {"dischargeDisposition": {"code": disposition}}}
            if disposition
            else {}
        ),
    },
    claims=st.lists(st.sampled_from(["c1", "c2", "c3"]), min_size=1, unique=True),
    start=st.sampled_from(["2025-05-01", "2025-05-02"]),
    end=st.sampled_from(["2025-05-02", "2025-05-06"]),
    diagnoses=st.lists(st.tuples(st.sampled_from("abc"), st.integers(1, 4)), unique=True),
    facility=st.sampled_from([None, "111", "222"]),
    physicians=st.lists(st.sampled_from(["333", "444"]), unique=True),
    disposition=st.sampled_from([None, "01", "03"]),
    status=st.sampled_from(["finished", "entered-in-error"]),  # e.g. a stored one edited since
)


@given(encounters, encounters)
def test_merging_is_commutative(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert merge_encounters(a, b) == merge_encounters(b, a)


@given(encounters, encounters, encounters)
def test_merging_is_associative(a: dict[str, Any], b: dict[str, Any], c: dict[str, Any]) -> None:
    left = merge_encounters(merge_encounters(a, b), c)
    assert left == merge_encounters(a, merge_encounters(b, c))


@given(encounters, encounters)
def test_merging_a_description_again_changes_nothing(a: dict[str, Any], b: dict[str, Any]) -> None:
    once = merge_encounters(a, b)
    assert merge_encounters(once, b) == once
    assert merge_encounters(once, once) == once


@given(encounters, encounters)
def test_the_merge_keeps_what_either_claim_knows(a: dict[str, Any], b: dict[str, Any]) -> None:
    merged = merge_encounters(a, b)
    for field in ("identifier", "diagnosis", "participant"):
        for item in (*a.get(field, []), *b.get(field, [])):
            assert item in merged[field]
    assert merged["period"]["start"] == min(a["period"]["start"], b["period"]["start"])
    assert merged["period"]["end"] == max(a["period"]["end"], b["period"]["end"])
    if a.get("serviceProvider") or b.get("serviceProvider"):
        assert merged["serviceProvider"] in (a.get("serviceProvider"), b.get("serviceProvider"))


def _encounter_id(row: dict[str, str], patient: str = "p1") -> str:
    (found,) = [r for r in claim_resources(row, patient, False) if r.res_type == "Encounter"]
    return found.res_id


def test_the_claims_of_one_stay_or_er_visit_share_its_encounter() -> None:
    stay_physician = {**CLAIM, "claim_id": "CLM10", "claim_type": "professional", "bill_type": ""}
    assert _encounter_id(CLAIM) == _encounter_id(stay_physician)
    assert _encounter_id(CLAIM) != _encounter_id(CLAIM, "p2")  # another patient
    next_day = {**stay_physician, "service_date": "2025-03-31"}
    assert _encounter_id(CLAIM) != _encounter_id(next_day)


def test_office_claims_keep_their_own_encounter() -> None:
    office = {**CLAIM, "claim_type": "professional", "bill_type": "", "place_of_service": "11"}
    office["discharge_date"] = office["discharge_status"] = office["revenue_code"] = ""
    other = {**office, "claim_id": "CLM11"}
    assert _encounter_id(office) != _encounter_id(other)
