"""Index rows built from resources, per the R4 data type / parameter type matrix (search.html).

Expected rows are derived from the spec's mapping tables: token takes (system, code) from Coding,
CodeableConcept (every coding), Identifier (system, value), ContactPoint (value, no system), code,
boolean; string takes the string parts of HumanName and Address; date takes the implicit range of
date/dateTime/instant and the explicit range of Period and Timing (outer limits only); reference
takes Type/id or the absolute URL; quantity (value, system, code, unit); number and uri the value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from carebridge.fhir.search.dates import HIGH, LOW
from carebridge.fhir.search.extract import IndexRows, index_rows

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
LAST = 999_999


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC).replace(tzinfo=None)


def rows_for(rows: IndexRows, table: str, param: str) -> list[tuple[Any, ...]]:
    return sorted((r[1:] for r in getattr(rows, table) if r[0] == param), key=repr)


PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345"}],
    "active": True,
    "name": [{"family": "Chalmers", "given": ["Peter", "James"]}],
    "telecom": [{"system": "phone", "value": "(03) 5555 6473", "use": "work"}],
    "gender": "male",
    "birthDate": "1974-12-25",
    "address": [
        {"line": ["534 Erewhon St"], "city": "PleasantVille", "state": "Vic", "postalCode": "3999"}
    ],
    "generalPractitioner": [{"reference": "Organization/1"}],
}


class TestTokens:
    def test_identifier_gives_system_and_value(self) -> None:
        assert rows_for(index_rows(PATIENT), "token", "identifier") == [
            ("urn:oid:1.2.36.146.595.217.0.1", "12345")
        ]

    def test_code_and_boolean_have_no_system(self) -> None:
        rows = index_rows(PATIENT)
        assert rows_for(rows, "token", "gender") == [(None, "male")]
        assert rows_for(rows, "token", "active") == [(None, "true")]

    def test_contact_point_value_is_indexed_without_a_system(self) -> None:
        rows = index_rows(PATIENT)
        assert rows_for(rows, "token", "telecom") == [(None, "(03) 5555 6473")]
        assert rows_for(rows, "token", "phone") == [(None, "(03) 5555 6473")]

    def test_every_coding_of_a_codeable_concept_is_indexed(self) -> None:
        observation = {
            "resourceType": "Observation",
            "code": {
                "coding": [
                    {"system": LOINC, "code": "15074-8"},
                    {"system": "http://snomed.info/sct", "code": "365812005"},
                    {"code": "glu"},
                ],
                "text": "Glucose",
            },
        }
        assert rows_for(index_rows(observation), "token", "code") == [
            (LOINC, "15074-8"),
            ("http://snomed.info/sct", "365812005"),
            (None, "glu"),
        ]

    def test_meta_tags_feed_the_tag_parameter(self) -> None:
        condition = {
            "resourceType": "Condition",
            "meta": {"tag": [{"system": "http://acme.org/codes", "code": "needs-review"}]},
        }
        assert rows_for(index_rows(condition), "token", "_tag") == [
            ("http://acme.org/codes", "needs-review")
        ]

    def test_deceased_is_true_for_a_date_and_false_when_absent(self) -> None:
        # Patient-deceased: "Patient.deceased.exists() and Patient.deceased != false"
        dead = {"resourceType": "Patient", "deceasedDateTime": "2015-02-14T13:42:00+10:00"}
        assert rows_for(index_rows(dead), "token", "deceased") == [(None, "true")]
        alive = {"resourceType": "Patient", "deceasedBoolean": False}
        assert rows_for(index_rows(alive), "token", "deceased") == [(None, "false")]
        assert rows_for(index_rows({"resourceType": "Patient"}), "token", "deceased") == [
            (None, "false")
        ]


class TestStrings:
    def test_every_part_of_a_human_name_is_indexed(self) -> None:
        rows = index_rows(PATIENT)
        assert rows_for(rows, "string", "name") == [
            ("chalmers", "Chalmers"),
            ("james", "James"),
            ("peter", "Peter"),
        ]
        assert rows_for(rows, "string", "given") == [("james", "James"), ("peter", "Peter")]
        assert rows_for(rows, "string", "family") == [("chalmers", "Chalmers")]

    def test_each_word_of_a_family_name_is_searchable_with_the_whole_as_exact(self) -> None:
        patient = {"resourceType": "Patient", "name": [{"family": "Carreño Quiñones"}]}
        rows = index_rows(patient)
        for param in ("family", "name"):
            assert rows_for(rows, "string", param) == [
                ("carreno quinones", "Carreño Quiñones"),
                ("quinones", "Carreño Quiñones"),
            ]

    def test_other_strings_are_not_split_into_words(self) -> None:
        patient = {"resourceType": "Patient", "name": [{"given": ["Mary Ann"]}]}
        assert rows_for(index_rows(patient), "string", "given") == [("mary ann", "Mary Ann")]

    def test_a_name_with_only_text_and_prefix_keeps_both(self) -> None:
        patient = {"resourceType": "Patient", "name": [{"text": "Dr Eve Smith", "prefix": ["Dr"]}]}
        assert rows_for(index_rows(patient), "string", "name") == [
            ("dr eve smith", "Dr Eve Smith"),
            ("dr", "Dr"),
        ]

    def test_every_string_part_of_an_address_is_indexed(self) -> None:
        rows = index_rows(PATIENT)
        assert rows_for(rows, "string", "address") == [
            ("3999", "3999"),
            ("534 erewhon st", "534 Erewhon St"),
            ("pleasantville", "PleasantVille"),
            ("vic", "Vic"),
        ]
        assert rows_for(rows, "string", "address-city") == [("pleasantville", "PleasantVille")]


class TestDates:
    def test_a_date_is_indexed_as_its_whole_day(self) -> None:
        assert rows_for(index_rows(PATIENT), "date", "birthdate") == [
            (utc(1974, 12, 25), utc(1974, 12, 25, 23, 59, 59, LAST))
        ]

    def test_an_open_period_runs_to_the_end_of_time(self) -> None:
        # "Implicitly, a missing lower boundary is less than any actual date. A missing upper
        # boundary is greater than any actual date."
        encounter = {"resourceType": "Encounter", "period": {"start": "2013-01-21"}}
        assert rows_for(index_rows(encounter), "date", "date") == [(utc(2013, 1, 21), HIGH)]

    def test_a_period_without_start_runs_from_the_beginning_of_time(self) -> None:
        encounter = {"resourceType": "Encounter", "period": {"end": "2013-01-21"}}
        assert rows_for(index_rows(encounter), "date", "date") == [
            (LOW, utc(2013, 1, 21, 23, 59, 59, LAST))
        ]

    def test_a_timing_is_indexed_by_its_outer_limits(self) -> None:
        # "a schedule that specifies every second day between 31-Jan 2013 and 24-Mar 2013
        # includes 1-Feb 2013 ... only the outer limits matter"
        observation = {
            "resourceType": "Observation",
            "effectiveTiming": {
                "event": ["2013-02-10", "2013-01-31"],
                "repeat": {"boundsPeriod": {"start": "2013-02-01", "end": "2013-03-24"}},
            },
        }
        assert rows_for(index_rows(observation), "date", "date") == [
            (utc(2013, 1, 31), utc(2013, 3, 24, 23, 59, 59, LAST))
        ]

    def test_a_date_time_with_offset_is_stored_in_utc(self) -> None:
        observation = {
            "resourceType": "Observation",
            "effectiveDateTime": "2013-04-02T10:30:10+01:00",
        }
        assert rows_for(index_rows(observation), "date", "date") == [
            (utc(2013, 4, 2, 9, 30, 10), utc(2013, 4, 2, 9, 30, 10, LAST))
        ]

    def test_an_unparseable_date_is_skipped(self) -> None:
        assert (
            rows_for(index_rows({**PATIENT, "birthDate": "Christmas"}), "date", "birthdate") == []
        )


class TestReferences:
    OBSERVATION: dict[str, Any] = {
        "resourceType": "Observation",
        "subject": {"reference": "Patient/example"},
        "performer": [
            {"reference": "http://example.org/fhir/Practitioner/f005"},
            {"reference": "#contained"},
            {"identifier": {"value": "no-literal-reference"}},
        ],
        "hasMember": [{"reference": "urn:uuid:04121321-4af5-424c-a0e1-ed3aab1c349d"}],
    }

    def test_relative_references_give_type_and_id(self) -> None:
        rows = index_rows(self.OBSERVATION)
        assert rows_for(rows, "reference", "subject") == [("Patient", "example", None)]
        assert rows_for(rows, "reference", "patient") == []  # read from subject: derived.py

    def test_absolute_references_keep_the_url(self) -> None:
        assert rows_for(index_rows(self.OBSERVATION), "reference", "performer") == [
            ("Practitioner", "f005", "http://example.org/fhir/Practitioner/f005")
        ]

    def test_a_group_subject_is_not_a_patient(self) -> None:
        group = {**self.OBSERVATION, "subject": {"reference": "Group/102"}}
        assert rows_for(index_rows(group), "reference", "patient") == []

    def test_a_reference_identifier_is_indexed_as_a_token(self) -> None:
        # for the :identifier modifier: "subject:identifier=http://acme.org/fhir/identifier/mrn|123456"
        observation = {
            "resourceType": "Observation",
            "subject": {
                "reference": "Patient/abc",
                "identifier": {"system": "http://acme.org/fhir/identifier/mrn", "value": "123456"},
            },
        }
        assert rows_for(index_rows(observation), "token", "subject:identifier") == [
            ("http://acme.org/fhir/identifier/mrn", "123456")
        ]
        assert rows_for(index_rows(observation), "reference", "subject") == [
            ("Patient", "abc", None)
        ]

    def test_urns_are_kept_as_urls(self) -> None:
        assert rows_for(index_rows(self.OBSERVATION), "reference", "has-member") == [
            (None, None, "urn:uuid:04121321-4af5-424c-a0e1-ed3aab1c349d")
        ]


class TestQuantitiesNumbersUris:
    def test_quantity_gives_value_system_code_and_unit(self) -> None:
        observation = {
            "resourceType": "Observation",
            "valueQuantity": {"value": 5.4, "unit": "mg", "system": UCUM, "code": "mg"},
        }
        assert rows_for(index_rows(observation), "quantity", "value-quantity") == [
            (5.4, UCUM, "mg", "mg")
        ]

    def test_a_quantity_without_a_value_is_not_indexed(self) -> None:
        observation = {"resourceType": "Observation", "valueQuantity": {"unit": "mg"}}
        assert rows_for(index_rows(observation), "quantity", "value-quantity") == []

    def test_money_uses_the_currency_as_code(self) -> None:
        claim = {"resourceType": "ChargeItem", "priceOverride": {"value": 40, "currency": "EUR"}}
        assert rows_for(index_rows(claim), "quantity", "price-override") == [
            (40.0, "urn:iso:std:iso:4217", "EUR", None)
        ]

    def test_decimal_numbers(self) -> None:
        risk = {
            "resourceType": "RiskAssessment",
            "prediction": [{"probabilityDecimal": 0.02}, {"probabilityDecimal": 0.9}],
        }
        assert rows_for(index_rows(risk), "number", "probability") == [(0.02,), (0.9,)]

    def test_uri_values_are_kept_verbatim(self) -> None:
        value_set = {"resourceType": "ValueSet", "url": "http://acme.org/fhir/ValueSet/123"}
        assert rows_for(index_rows(value_set), "uri", "url") == [
            ("http://acme.org/fhir/ValueSet/123",)
        ]


class TestRowsProperties:
    @given(st.lists(st.sampled_from(["FR", "NL", "EN", "fr"]), max_size=6))
    def test_rows_are_never_duplicated(self, languages: list[str]) -> None:
        patient = {
            "resourceType": "Patient",
            "communication": [
                {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": c}]}}
                for c in languages
            ],
        }
        rows = rows_for(index_rows(patient), "token", "language")
        assert rows == sorted({("urn:ietf:bcp:47", c) for c in languages}, key=repr)

    @given(st.text(min_size=1, max_size=20).filter(str.strip))
    def test_indexing_is_deterministic(self, family: str) -> None:
        patient = {"resourceType": "Patient", "name": [{"family": family}]}
        assert index_rows(patient) == index_rows(patient)
