"""Derived search parameters: which parameters are answered from others' rows, and that the rows
they read are exactly the rows they would have had of their own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carebridge.fhir.search.derived import (
    IndexedAs,
    compartment_index_params,
    derivations,
    identifiers_only,
    indexed_as,
    stored_actor_codes,
    unwritten,
)
from carebridge.fhir.search.extract import IndexRows, index_rows, param_index_rows
from carebridge.fhir.search.parameters import registry
from tests.conftest import synthea_dir

TABLES = ("token", "string", "date", "reference", "quantity", "number", "uri")


def read_rows(rows: IndexRows, resource_type: str, code: str) -> dict[str, set[tuple[Any, ...]]]:
    """The values a search on `code` reads from `rows`, per table (derived.py's answer)."""
    where = indexed_as(resource_type, code)
    found: dict[str, set[tuple[Any, ...]]] = {}
    for table in TABLES:
        values = {
            r[1:]
            for r in getattr(rows, table)
            if r[0] in where.codes
            and (where.target_type is None or (table == "reference" and r[1] == where.target_type))
        }
        if values:
            found[table] = values
    return found


def own_rows(resource: dict[str, Any], code: str) -> dict[str, set[tuple[Any, ...]]]:
    """The values `code` would have had as rows of its own."""
    param = registry().get(resource["resourceType"], code)
    assert param is not None
    rows = param_index_rows(param, resource)
    found: dict[str, set[tuple[Any, ...]]] = {}
    for table in TABLES:
        values = {r[1:] for r in getattr(rows, table) if not str(r[0]).endswith(":identifier")}
        if values:
            found[table] = values
    return found


def assert_derived_rows_are_exact(resource: dict[str, Any]) -> None:
    rows = index_rows(resource)
    rtype = resource["resourceType"]
    for code in derivations(rtype):
        assert read_rows(rows, rtype, code) == own_rows(resource, code), (rtype, code)
        identifiers = f"{code}:identifier"
        param = registry().get(rtype, code)
        assert param is not None
        mine = {r[1:] for r in param_index_rows(param, resource).token if r[0] == identifiers}
        assert read_rows(rows, rtype, identifiers).get("token", set()) == mine, (rtype, code)


class TestWhichParametersAreDerived:
    @pytest.mark.parametrize(
        ("resource_type", "code", "expected"),
        [
            ("Observation", "combo-code", IndexedAs(("code", "component-code"))),
            (
                "Observation",
                "combo-value-quantity",
                IndexedAs(("component-value-quantity", "value-quantity")),
            ),
            ("Observation", "patient", IndexedAs(("subject",), "Patient")),
            ("Encounter", "practitioner", IndexedAs(("participant",), "Practitioner")),
            ("MedicationDispense", "patient", IndexedAs(("subject",), "Patient")),
            ("Practitioner", "phonetic", IndexedAs(("name",))),
            ("Coverage", "patient", IndexedAs(("beneficiary",))),
        ],
    )
    def test_derived_parameters_read_their_parts(
        self, resource_type: str, code: str, expected: IndexedAs
    ) -> None:
        assert indexed_as(resource_type, code) == expected

    @pytest.mark.parametrize(
        ("resource_type", "code"),
        [
            ("Observation", "code"),
            ("Observation", "subject"),
            ("Claim", "patient"),  # Claim.patient is an element of its own
            ("Patient", "name"),
            ("Patient", "family"),  # a part of name, not all of it
            ("Immunization", "patient"),
        ],
    )
    def test_parameters_of_their_own_are_stored(self, resource_type: str, code: str) -> None:
        assert indexed_as(resource_type, code) == IndexedAs((code,))

    def test_a_restriction_keeps_its_own_identifier_tokens(self) -> None:
        assert indexed_as("Observation", "patient:identifier") == IndexedAs(("patient:identifier",))
        assert "patient" in identifiers_only("Observation")

    def test_a_union_reads_its_parts_identifier_tokens(self) -> None:
        assert indexed_as("Coverage", "patient:identifier") == IndexedAs(
            ("beneficiary:identifier",)
        )
        assert "patient" in unwritten("Coverage")

    @pytest.mark.parametrize(
        ("resource_type", "stored"),
        [
            ("Condition", ("asserter", "subject")),  # patient, asserter
            ("MedicationDispense", ("receiver", "subject")),  # subject, patient, receiver
            ("Flag", ("subject",)),  # patient
            ("Claim", ("patient", "payee")),  # stored as themselves
        ],
    )
    def test_the_compartment_is_read_through_stored_parameters(
        self, resource_type: str, stored: tuple[str, ...]
    ) -> None:
        assert compartment_index_params()[resource_type] == stored

    def test_every_derivation_reads_stored_parameters(self) -> None:
        for rtype in sorted(registry().resource_types):
            found = derivations(rtype)
            for where in found.values():
                assert not (set(where.codes) & set(unwritten(rtype))), rtype


def synthea_resources() -> Iterator[dict[str, Any]]:
    for path in sorted(synthea_dir().glob("*.json")):
        for entry in orjson.loads(path.read_bytes()).get("entry", []):
            yield entry["resource"]


class TestDerivedRowsAreExact:
    def test_on_every_synthea_resource(self) -> None:
        checked = 0
        for resource in synthea_resources():
            assert_derived_rows_are_exact(resource)
            checked += 1
        assert checked > 1000

    @pytest.mark.parametrize(
        "subject",
        [
            {"reference": "Patient/1"},
            {"reference": "Group/1"},
            {"reference": "http://other.org/fhir/Patient/2"},
            {"reference": "Patient/3/_history/2"},
            {"reference": "4", "type": "Patient"},
            {"reference": "5", "type": "Group"},
            {"reference": "6"},
            {"reference": "urn:uuid:0e2c4a1e-0000-4000-8000-000000000001", "type": "Patient"},
            {"reference": "x/Patient/7"},
            {"reference": "#contained", "type": "Patient"},
            {"identifier": {"system": "urn:mrn", "value": "8"}, "type": "Patient"},
            {"reference": "Patient/9", "identifier": {"system": "urn:mrn", "value": "9"}},
        ],
    )
    def test_on_every_form_of_reference(self, subject: dict[str, Any]) -> None:
        for rtype in ("Observation", "Encounter", "MedicationDispense", "Condition"):
            assert_derived_rows_are_exact({"resourceType": rtype, "subject": subject})

    @settings(max_examples=200, deadline=None)
    @given(
        kind=st.sampled_from(["Patient", "Group", "Device", "Location", "patient", "x"]),
        ident=st.text("ab1/_", min_size=0, max_size=6),
        declared=st.sampled_from([None, "Patient", "Group"]),
        absolute=st.booleans(),
        codes=st.lists(st.sampled_from(["8480-6", "8462-4", "85354-9"]), max_size=3),
    )
    def test_on_random_observations(
        self, kind: str, ident: str, declared: str | None, absolute: bool, codes: list[str]
    ) -> None:
        text = f"{kind}/{ident}" if ident else kind
        reference: dict[str, Any] = {"reference": f"http://x.org/{text}" if absolute else text}
        if declared:
            reference["type"] = declared
        coded = [{"coding": [{"system": "http://loinc.org", "code": c}]} for c in codes]
        observation: dict[str, Any] = {
            "resourceType": "Observation",
            "subject": reference,
            "code": coded[0] if coded else {"text": "none"},
            "component": [
                {"code": c, "valueQuantity": {"value": i, "unit": "mm[Hg]"}}
                for i, c in enumerate(coded[1:])
            ],
            "valueQuantity": {"value": 1.5, "system": "http://unitsofmeasure.org", "code": "kg"},
        }
        assert_derived_rows_are_exact(observation)


class TestRelationshipParameters:
    def test_every_role_relationship_reads_stored_parameters(self) -> None:
        from carebridge.access.roles import PAYMENT_LINKS, TREATMENT_LINKS
        from carebridge.fhir.search.policy_decision import link_sources

        links = (*TREATMENT_LINKS, *PAYMENT_LINKS)
        sources = link_sources(links)
        assert ("CareTeam", "subject") in sources  # CareTeam.patient, read from subject rows
        assert ("Encounter", "subject") in sources
        assert sources[("Coverage", "beneficiary")] == {"payor"}
        own = [r.actor_param for r in links if r.patient_param is None]
        assert stored_actor_codes("Patient", own) == ("general-practitioner", "organization")

    def test_a_restriction_cannot_name_an_actor(self) -> None:
        with pytest.raises(ValueError, match="Practitioner references of participant"):
            stored_actor_codes("Encounter", ["practitioner"])
