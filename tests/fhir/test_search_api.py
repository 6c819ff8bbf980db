"""Search through the REST API, against the rules and examples of R4 search.html.

Each test stores a handful of resources with chosen ids and asserts which ids a search returns; the
expected ids are worked out by hand from the spec text quoted next to the test.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fhir.conftest import FHIR_JSON, create, ids, search

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
BASE = "http://testserver/fhir"


def load(client: TestClient, *resources: dict[str, Any]) -> None:
    """Store resources with the ids they carry, in one transaction."""
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
    response = client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert response.status_code == 200, response.text


def found(client: TestClient, path: str, **params: Any) -> list[str]:
    return ids(search(client, path, **params))


def patient(res_id: str, **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": res_id, **fields}


def observation(res_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": res_id,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "1234-5"}]},
        **fields,
    }


def outcome_of(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body


class TestStringSearch:
    @pytest.fixture
    def names(self, client: TestClient) -> None:
        load(
            client,
            patient("eve", name=[{"family": "Smith", "given": ["Eve"]}]),
            patient("evelyn", name=[{"family": "Jones", "given": ["Evelyn"]}]),
            patient("severine", name=[{"family": "Dupont", "given": ["Severine"]}]),
            patient("shout", name=[{"family": "Loud", "given": ["EVE"]}]),
            patient("carreno", name=[{"family": "Carreño Quiñones", "given": ["María"]}]),
            patient("nameless"),
        )

    @pytest.mark.usefixtures("names")
    def test_default_match_is_case_insensitive_starts_with(self, client: TestClient) -> None:
        # "given=eve ... would include patients with the given name "Eve", "Evelyn""
        assert found(client, "Patient", given="eve") == ["eve", "evelyn", "shout"]

    @pytest.mark.usefixtures("names")
    def test_contains_matches_anywhere(self, client: TestClient) -> None:
        # "given:contains=eve ... "Eve", "Evelyn", and also "Severine""
        assert found(client, "Patient", **{"given:contains": "eve"}) == [
            "eve",
            "evelyn",
            "severine",
            "shout",
        ]

    @pytest.mark.usefixtures("names")
    def test_exact_matches_the_whole_value_with_case(self, client: TestClient) -> None:
        # "given:exact=Eve ... would not include patients with the given name "eve" or "EVE""
        assert found(client, "Patient", **{"given:exact": "Eve"}) == ["eve"]

    @pytest.mark.usefixtures("names")
    def test_accents_are_ignored(self, client: TestClient) -> None:
        assert found(client, "Patient", given="maria") == ["carreno"]
        assert found(client, "Patient", family="CARRENO") == ["carreno"]

    @pytest.mark.usefixtures("names")
    def test_each_part_of_a_family_name_matches(self, client: TestClient) -> None:
        # "searching either "Carreno" or "Quinones" should match a family name of
        # "Carreno Quinones""
        assert found(client, "Patient", family="quinones") == ["carreno"]

    @pytest.mark.usefixtures("names")
    def test_exact_on_a_multi_word_family_needs_the_whole_name(self, client: TestClient) -> None:
        assert found(client, "Patient", **{"family:exact": "Carreño Quiñones"}) == ["carreno"]
        assert found(client, "Patient", **{"family:exact": "Quiñones"}) == []

    @pytest.mark.usefixtures("names")
    def test_name_covers_family_and_given(self, client: TestClient) -> None:
        assert found(client, "Patient", name="jones") == ["evelyn"]
        assert found(client, "Patient", name="evel") == ["evelyn"]

    @pytest.mark.usefixtures("names")
    def test_a_comma_list_is_an_or(self, client: TestClient) -> None:
        assert found(client, "Patient", family="smith,dupont") == ["eve", "severine"]

    @pytest.mark.usefixtures("names")
    def test_a_repeated_parameter_is_an_and(self, client: TestClient) -> None:
        response = client.get("/fhir/Patient", params=[("given", "eve"), ("family", "loud")])
        assert ids(response.json()) == ["shout"]

    @pytest.mark.usefixtures("names")
    def test_missing_finds_resources_without_the_element(self, client: TestClient) -> None:
        assert found(client, "Patient", **{"name:missing": "true"}) == ["nameless"]
        assert "nameless" not in found(client, "Patient", **{"name:missing": "false"})

    def test_address_parts_are_searchable(self, client: TestClient) -> None:
        load(
            client,
            patient("vic", address=[{"city": "PleasantVille", "state": "Vic"}]),
            patient("nsw", address=[{"city": "Sydney", "state": "NSW"}]),
        )
        assert found(client, "Patient", address="pleasant") == ["vic"]
        assert found(client, "Patient", **{"address-state": "nsw"}) == ["nsw"]


class TestTokenSearch:
    ACME = "http://acme.org/patient"

    @pytest.fixture
    def identified(self, client: TestClient) -> None:
        load(
            client,
            patient("acme", identifier=[{"system": self.ACME, "value": "2345"}], gender="male"),
            patient("other", identifier=[{"system": "http://other.org", "value": "2345"}]),
            patient("bare", identifier=[{"value": "2345"}], gender="female"),
            patient("acme2", identifier=[{"system": self.ACME, "value": "999"}], active=True),
        )

    @pytest.mark.usefixtures("identified")
    def test_system_and_code_must_both_match(self, client: TestClient) -> None:
        # "GET [base]/Patient?identifier=http://acme.org/patient|2345"
        assert found(client, "Patient", identifier=f"{self.ACME}|2345") == ["acme"]

    @pytest.mark.usefixtures("identified")
    def test_a_code_alone_matches_any_system(self, client: TestClient) -> None:
        assert found(client, "Patient", identifier="2345") == ["acme", "bare", "other"]

    @pytest.mark.usefixtures("identified")
    def test_an_empty_system_matches_only_values_without_one(self, client: TestClient) -> None:
        assert found(client, "Patient", identifier="|2345") == ["bare"]

    @pytest.mark.usefixtures("identified")
    def test_a_system_alone_matches_every_code_in_it(self, client: TestClient) -> None:
        assert found(client, "Patient", identifier=f"{self.ACME}|") == ["acme", "acme2"]

    @pytest.mark.usefixtures("identified")
    def test_not_includes_resources_without_a_value(self, client: TestClient) -> None:
        # ":not ... includes all patients that do not have gender = male, including patients
        # that do not have a gender at all"
        assert found(client, "Patient", **{"gender:not": "male"}) == ["acme2", "bare", "other"]

    @pytest.mark.usefixtures("identified")
    def test_missing_true_and_false_partition_the_resources(self, client: TestClient) -> None:
        assert found(client, "Patient", **{"gender:missing": "true"}) == ["acme2", "other"]
        assert found(client, "Patient", **{"gender:missing": "false"}) == ["acme", "bare"]

    @pytest.mark.usefixtures("identified")
    def test_booleans_are_tokens(self, client: TestClient) -> None:
        # "GET [base]/Patient?active=true"
        assert found(client, "Patient", active="true") == ["acme2"]

    @pytest.mark.usefixtures("identified")
    def test_codes_are_case_sensitive(self, client: TestClient) -> None:
        assert found(client, "Patient", gender="MALE") == []

    def test_codeable_concept_matches_any_coding(self, client: TestClient) -> None:
        load(
            client,
            observation(
                "two",
                code={
                    "coding": [
                        {"system": LOINC, "code": "15074-8"},
                        {"system": "http://snomed.info/sct", "code": "x"},
                    ]
                },
            ),
            observation("one"),
        )
        assert found(client, "Observation", code="http://snomed.info/sct|x") == ["two"]
        assert found(client, "Observation", code=f"{LOINC}|1234-5") == ["one"]

    def test_an_escaped_comma_is_part_of_the_code(self, client: TestClient) -> None:
        # search.html#escaping: "code=a\,b is a request for any Observation that has a code
        # of a,b"; "code=a,b" is a or b
        load(
            client,
            observation("ab", code={"coding": [{"code": "a,b"}]}),
            observation("a", code={"coding": [{"code": "a"}]}),
            observation("b", code={"coding": [{"code": "b"}]}),
        )
        assert found(client, "Observation", code="a\\,b") == ["ab"]
        assert found(client, "Observation", code="a,b") == ["a", "b"]

    def test_an_escaped_bar_is_part_of_the_system(self, client: TestClient) -> None:
        load(client, observation("odd", code={"coding": [{"system": "urn:x|y", "code": "c"}]}))
        assert found(client, "Observation", code="urn:x\\|y|c") == ["odd"]

    def test_id_matches_exactly_and_case_sensitively(self, client: TestClient) -> None:
        load(client, patient("abc"), patient("ABC"), patient("abcd"))
        assert found(client, "Patient", _id="abc") == ["abc"]
        assert found(client, "Patient", _id="abc,abcd") == ["abc", "abcd"]

    def test_deceased_false_includes_patients_without_the_element(self, client: TestClient) -> None:
        load(
            client,
            patient("dead", deceasedDateTime="2015-02-14T13:42:00+10:00"),
            patient("alive", deceasedBoolean=False),
            patient("unknown"),
        )
        assert found(client, "Patient", deceased="true") == ["dead"]
        assert found(client, "Patient", deceased="false") == ["alive", "unknown"]


class TestDateSearch:
    @pytest.fixture
    def instants(self, client: TestClient) -> None:
        load(
            client,
            observation("midnight", effectiveDateTime="2013-01-14T00:00:00Z"),
            observation("ten", effectiveDateTime="2013-01-14T10:00:00Z"),
            observation("next-day", effectiveDateTime="2013-01-15T00:00:00Z"),
            observation("whole-day", effectiveDateTime="2013-01-14"),
        )

    @pytest.fixture
    def periods(self, client: TestClient) -> None:
        load(
            client,
            observation("from-21-jan", effectivePeriod={"start": "2013-01-21"}),
            observation("from-15-mar", effectivePeriod={"start": "2013-03-15"}),
            observation("until-21-jan", effectivePeriod={"end": "2013-01-21"}),
        )

    @pytest.mark.usefixtures("instants")
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            # "eq2013-01-14: 2013-01-14T00:00 matches, 2013-01-14T10:00 matches,
            # 2013-01-15T00:00 does not match"
            ("eq2013-01-14", ["midnight", "ten", "whole-day"]),
            ("2013-01-14", ["midnight", "ten", "whole-day"]),
            # "ne2013-01-14: 2013-01-15T00:00 matches, 2013-01-14T00:00 and T10:00 do not"
            ("ne2013-01-14", ["next-day"]),
            # "lt2013-01-14T10:00: 2013-01-14 matches, because it includes the part of
            # 14-Jan 2013 before 10am"
            ("lt2013-01-14T10:00", ["midnight", "whole-day"]),
            # "gt2013-01-14T10:00: 2013-01-14 matches, because it includes the part of
            # 14-Jan 2013 after 10am"
            ("gt2013-01-14T10:00", ["next-day", "whole-day"]),
            ("ge2013-01-15", ["next-day"]),
            ("le2013-01-14", ["midnight", "ten", "whole-day"]),
            ("eq2013-01", ["midnight", "next-day", "ten", "whole-day"]),
            ("eq2013-01-14T10:00", ["ten"]),
            ("gt2013", []),
            ("lt2013-01-14", []),
        ],
    )
    def test_prefixes_on_instants(
        self, client: TestClient, value: str, expected: list[str]
    ) -> None:
        assert found(client, "Observation", date=value) == expected

    @pytest.mark.usefixtures("periods")
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            # "ge2013-03-14: "from 21-Jan 2013 onwards" is included because that period may
            # include times after 14-Mar 2013"
            ("ge2013-03-14", ["from-15-mar", "from-21-jan"]),
            # "le2013-03-14: "from 21-Jan 2013 onwards" is included because that period may
            # include times before 14-Mar 2013"
            ("le2013-03-14", ["from-21-jan", "until-21-jan"]),
            # "sa2013-03-14: "from 15-Mar 2013 onwards" is included ... "from 21-Jan 2013
            # onwards" is not ... "before and including 21-Jan 2013" is not"
            ("sa2013-03-14", ["from-15-mar"]),
            # "eb2013-03-14: ... "before and including 21-Jan 2013" is included"
            ("eb2013-03-14", ["until-21-jan"]),
            ("eq2013-03-14", []),
            ("ne2013-03-14", ["from-15-mar", "from-21-jan", "until-21-jan"]),
        ],
    )
    def test_prefixes_on_open_periods(
        self, client: TestClient, value: str, expected: list[str]
    ) -> None:
        assert found(client, "Observation", date=value) == expected

    def test_approximately_includes_the_day_but_not_distant_dates(self, client: TestClient) -> None:
        # "ap2013-03-14: 14-Mar 2013 is included - as it exactly matches; 21-Jan 2013 is not
        # included ...; 15-Jun 2015 is not included"
        load(
            client,
            observation("mar-14", effectiveDateTime="2013-03-14T09:00:00Z"),
            observation("jan-21", effectiveDateTime="2013-01-21"),
            observation("jun-2015", effectiveDateTime="2015-06-15"),
        )
        assert found(client, "Observation", date="ap2013-03-14") == ["mar-14"]

    def test_time_zones_are_compared_as_instants(self, client: TestClient) -> None:
        load(client, observation("brisbane", effectiveDateTime="2013-01-14T09:00:00+10:00"))
        assert found(client, "Observation", date="2013-01-13T23:00:00Z") == ["brisbane"]
        assert found(client, "Observation", date="2013-01-13") == ["brisbane"]

    def test_a_two_year_window_combines_ge_and_le(self, client: TestClient) -> None:
        # "GET [base]/Patient/23/Procedure?date=ge2010-01-01&date=le2011-12-31"
        load(
            client,
            patient("early", birthDate="2009-12-31"),
            patient("in", birthDate="2011-06-01"),
            patient("late", birthDate="2012-01-01"),
        )
        response = client.get(
            "/fhir/Patient", params=[("birthdate", "ge2010-01-01"), ("birthdate", "le2011-12-31")]
        )
        assert ids(response.json()) == ["in"]

    def test_a_malformed_date_is_a_400(self, client: TestClient) -> None:
        # search.html#errors: "GET [base]/Condition?onset=23%20May%202009" has incorrect format
        response = client.get("/fhir/Condition", params={"onset-date": "23 May 2009"})
        assert response.status_code == 400
        assert outcome_of(response)["issue"][0]["severity"] == "error"

    def test_last_updated_compares_the_server_time(self, client: TestClient) -> None:
        first = create(client, {"resourceType": "Patient"})
        time.sleep(0.01)
        second = create(client, {"resourceType": "Patient"})
        assert found(client, "Patient", _lastUpdated="gt2010-10-01") == sorted(
            [first["id"], second["id"]]
        )
        assert found(client, "Patient", _lastUpdated="lt2010-10-01") == []
        stamp = first["meta"]["lastUpdated"]
        assert found(client, "Patient", _lastUpdated=stamp) == [first["id"]]
        assert found(client, "Patient", _lastUpdated=f"gt{stamp}") == [second["id"]]


class TestNumberSearch:
    @pytest.fixture
    def probabilities(self, client: TestClient) -> None:
        def risk(res_id: str, value: float) -> dict[str, Any]:
            return {
                "resourceType": "RiskAssessment",
                "id": res_id,
                "status": "final",
                "subject": {"reference": "Patient/p"},
                "prediction": [{"probabilityDecimal": value}],
            }

        load(
            client,
            risk("r99-4", 99.4),
            risk("r99-5", 99.5),
            risk("r99-996", 99.996),
            risk("r100", 100),
            risk("r100-004", 100.004),
            risk("r100-5", 100.5),
        )

    @pytest.mark.usefixtures("probabilities")
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            # "[parameter]=100: ... values in the range [99.5 ... 100.5)"
            ("100", ["r100", "r100-004", "r99-5", "r99-996"]),
            # "[parameter]=100.00: ... values in the range [99.995 ... 100.005)"
            ("100.00", ["r100", "r100-004", "r99-996"]),
            # "100 and 1.00e2 both have the same number of significant digits - three"
            ("1.00e2", ["r100", "r100-004", "r99-5", "r99-996"]),
            # "lt100: Values that are less than exactly 100"
            ("lt100", ["r99-4", "r99-5", "r99-996"]),
            ("le100", ["r100", "r99-4", "r99-5", "r99-996"]),
            ("gt100", ["r100-004", "r100-5"]),
            ("ge100", ["r100", "r100-004", "r100-5"]),
            # "ne100: Values that are not equal to 100 (actually, in the range 99.5 to 100.5)"
            ("ne100", ["r100-5", "r99-4"]),
            # "sa & eb ... treated as if they have arbitrarily high precision"
            ("sa100", ["r100-004", "r100-5"]),
            ("eb100", ["r99-4", "r99-5", "r99-996"]),
            ("ap100", ["r100", "r100-004", "r100-5", "r99-4", "r99-5", "r99-996"]),
        ],
    )
    def test_precision_and_prefixes(
        self, client: TestClient, value: str, expected: list[str]
    ) -> None:
        assert found(client, "RiskAssessment", probability=value) == expected

    def test_the_spec_probability_example(self, client: TestClient) -> None:
        # "GET [base]/RiskAssessment?probability=gt0.8 (could also be probability=gt8e-1)"
        load(
            client,
            *(
                {
                    "resourceType": "RiskAssessment",
                    "id": res_id,
                    "status": "final",
                    "subject": {"reference": "Patient/p"},
                    "prediction": [{"probabilityDecimal": value}],
                }
                for res_id, value in (("low", 0.02), ("high", 0.9), ("edge", 0.8))
            ),
        )
        assert found(client, "RiskAssessment", probability="gt0.8") == ["high"]
        assert found(client, "RiskAssessment", probability="gt8e-1") == ["high"]

    def test_a_value_that_is_not_a_number_is_a_400(self, client: TestClient) -> None:
        response = client.get("/fhir/RiskAssessment", params={"probability": "gtlots"})
        assert response.status_code == 400
        outcome_of(response)


class TestQuantitySearch:
    @pytest.fixture
    def quantities(self, client: TestClient) -> None:
        def measured(res_id: str, value: float, **unit: str) -> dict[str, Any]:
            return observation(res_id, valueQuantity={"value": value, **unit})

        load(
            client,
            measured("mg-5-4", 5.4, unit="mg", system=UCUM, code="mg"),
            measured("unit-only", 5.4, unit="mg"),
            measured("mg-5-45", 5.45, unit="mg", system=UCUM, code="mg"),
            measured("mg-5-35", 5.35, unit="mg", system=UCUM, code="mg"),
            measured("g-5-4", 5.4, unit="g", system=UCUM, code="g"),
            measured("g-0-0054", 0.0054, unit="g", system=UCUM, code="g"),
        )

    @pytest.mark.usefixtures("quantities")
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            # "value-quantity=5.4|http://unitsofmeasure.org|mg: a value of 5.4(+/-0.05) mg"
            (f"5.4|{UCUM}|mg", ["mg-5-35", "mg-5-4"]),
            # "5.40e-3|http://unitsofmeasure.org|g: a value of 0.0054(+/-0.000005) g"
            (f"5.40e-3|{UCUM}|g", ["g-0-0054"]),
            # "5.4||mg: ... either the code (code) or the stated human unit (unit) are "mg""
            ("5.4||mg", ["mg-5-35", "mg-5-4", "unit-only"]),
            # "value-quantity=5.4: a value of 5.4(+/-0.05) irrespective of the unit"
            ("5.4", ["g-5-4", "mg-5-35", "mg-5-4", "unit-only"]),
            # "le5.4|http://unitsofmeasure.org|mg: less than 5.4 mg exactly"
            (f"le5.4|{UCUM}|mg", ["mg-5-35", "mg-5-4"]),
            (f"gt5.4|{UCUM}|mg", ["mg-5-45"]),
            # "ap5.4|...|mg: about 5.4 mg (typically, within 10% of the value)"
            (f"ap5.4|{UCUM}|mg", ["mg-5-35", "mg-5-4", "mg-5-45"]),
        ],
    )
    def test_spec_examples(self, client: TestClient, value: str, expected: list[str]) -> None:
        assert found(client, "Observation", **{"value-quantity": value}) == expected

    def test_a_malformed_quantity_is_a_400(self, client: TestClient) -> None:
        response = client.get("/fhir/Observation", params={"value-quantity": "5.4|mg"})
        assert response.status_code == 400


class TestReferenceSearch:
    @pytest.fixture
    def subjects(self, client: TestClient) -> None:
        load(
            client,
            patient("23"),
            observation("relative", subject={"reference": "Patient/23"}),
            observation("absolute", subject={"reference": f"{BASE}/Patient/23"}),
            observation("elsewhere", subject={"reference": "http://other.org/fhir/Patient/23"}),
            observation("group", subject={"reference": "Group/23"}),
            observation("versioned", subject={"reference": "Patient/23/_history/1"}),
            observation("nobody"),
        )

    @pytest.mark.usefixtures("subjects")
    def test_type_and_id_match_relative_and_local_absolute_references(
        self, client: TestClient
    ) -> None:
        # "A relative reference resolving to the same value as a specified absolute URL, or
        # vice versa, qualifies as a match"
        assert found(client, "Observation", subject="Patient/23") == [
            "absolute",
            "relative",
            "versioned",
        ]

    @pytest.mark.usefixtures("subjects")
    def test_the_local_absolute_url_matches_both_forms(self, client: TestClient) -> None:
        # "searching for reference=http://example.org/fhir/Patient/123 will also match both"
        assert found(client, "Observation", subject=f"{BASE}/Patient/23") == [
            "absolute",
            "relative",
            "versioned",
        ]

    @pytest.mark.usefixtures("subjects")
    def test_another_servers_url_matches_only_itself(self, client: TestClient) -> None:
        assert found(client, "Observation", subject="http://other.org/fhir/Patient/23") == [
            "elsewhere"
        ]

    @pytest.mark.usefixtures("subjects")
    def test_a_type_modifier_equals_a_typed_value(self, client: TestClient) -> None:
        # "GET [base]/Observation?subject:Patient=23 ... has the same effect"
        assert found(client, "Observation", **{"subject:Patient": "23"}) == found(
            client, "Observation", subject="Patient/23"
        )

    @pytest.mark.usefixtures("subjects")
    def test_patient_is_subject_limited_to_patients(self, client: TestClient) -> None:
        # "When using the patient search parameter, there is no need to specify ":Patient""
        assert found(client, "Observation", patient="23") == ["absolute", "relative", "versioned"]

    @pytest.mark.usefixtures("subjects")
    def test_missing_finds_resources_without_a_reference(self, client: TestClient) -> None:
        assert found(client, "Observation", **{"subject:missing": "true"}) == ["nobody"]


class TestReferenceIdentifier:
    def test_identifier_matches_the_reference_identifier_only(self, client: TestClient) -> None:
        # search.html#reference: "subject:identifier=http://example.org/fhir/mrn|12345 ... would
        # match [a subject with that identifier] but will not match [a subject with only
        # reference Patient/abc] even if the Patient resource ... includes the requested
        # identifier"
        mrn = {"system": "http://example.org/fhir/mrn", "value": "12345"}
        load(
            client,
            patient("abc", identifier=[mrn]),
            observation("by-identifier", subject={"reference": "Patient/abc", "identifier": mrn}),
            observation("by-reference", subject={"reference": "Patient/abc"}),
        )
        value = "http://example.org/fhir/mrn|12345"
        assert found(client, "Observation", **{"subject:identifier": value}) == ["by-identifier"]
        assert found(client, "Observation", **{"subject:identifier": "12345"}) == ["by-identifier"]


class TestUriSearch:
    @pytest.fixture
    def value_sets(self, client: TestClient) -> None:
        def value_set(res_id: str, url: str) -> dict[str, Any]:
            return {"resourceType": "ValueSet", "id": res_id, "status": "active", "url": url}

        load(
            client,
            value_set("vs123", "http://acme.org/fhir/ValueSet/123"),
            value_set("vs124", "http://acme.org/fhir/ValueSet/124"),
            value_set("root", "http://acme.org/fhir"),
            value_set("other", "http://example.org/fhir/ValueSet/123"),
            value_set("oid", "urn:oid:1.2.3.4.5"),
        )

    @pytest.mark.usefixtures("value_sets")
    def test_default_match_is_the_whole_uri(self, client: TestClient) -> None:
        # "GET [base]/ValueSet?url=http://acme.org/fhir/ValueSet/123"
        assert found(client, "ValueSet", url="http://acme.org/fhir/ValueSet/123") == ["vs123"]
        assert found(client, "ValueSet", url="http://acme.org/fhir/ValueSet/12") == []

    @pytest.mark.usefixtures("value_sets")
    def test_an_oid_matches_exactly(self, client: TestClient) -> None:
        assert found(client, "ValueSet", url="urn:oid:1.2.3.4.5") == ["oid"]

    @pytest.mark.usefixtures("value_sets")
    def test_below_matches_urls_starting_with_the_value(self, client: TestClient) -> None:
        # "url:below=http://acme.org/fhir/ ... any value sets that have a URL that starts with"
        assert found(client, "ValueSet", **{"url:below": "http://acme.org/fhir/"}) == [
            "vs123",
            "vs124",
        ]

    @pytest.mark.usefixtures("value_sets")
    def test_above_matches_urls_the_value_starts_with(self, client: TestClient) -> None:
        # "url:above=http://acme.org/fhir/ValueSet/123/_history/5 ... will match on any value set
        # with the specified URL, but also on [its ancestors]"
        value = "http://acme.org/fhir/ValueSet/123/_history/5"
        assert found(client, "ValueSet", **{"url:above": value}) == ["root", "vs123"]


class TestMissingModifier:
    """search.html#modifiers: ":missing=true ... resources that don't have a value for the
    parameter"; ":missing=false ... resources that have a value" - for every parameter type."""

    @pytest.mark.parametrize(
        ("path", "with_value", "param"),
        [
            ("Patient", {"birthDate": "1970-01-01"}, "birthdate"),
            ("Patient", {"gender": "male"}, "gender"),
            ("Patient", {"name": [{"family": "X"}]}, "family"),
            (
                "Patient",
                {"generalPractitioner": [{"reference": "Practitioner/1"}]},
                "general-practitioner",
            ),
            ("RiskAssessment", {"prediction": [{"probabilityDecimal": 0.5}]}, "probability"),
            ("Observation", {"valueQuantity": {"value": 1, "unit": "kg"}}, "value-quantity"),
            ("ValueSet", {"url": "http://acme.org/fhir/ValueSet/1"}, "url"),
        ],
    )
    def test_true_and_false_split_resources_with_and_without_a_value(
        self, client: TestClient, path: str, with_value: dict[str, Any], param: str
    ) -> None:
        required = {
            "RiskAssessment": {"status": "final", "subject": {"reference": "Patient/p"}},
            "Observation": {"status": "final", "code": {"text": "x"}},
            "ValueSet": {"status": "active"},
        }.get(path, {})
        load(
            client,
            {"resourceType": path, "id": "has", **required, **with_value},
            {"resourceType": path, "id": "lacks", **required},
        )
        assert found(client, path, **{f"{param}:missing": "true"}) == ["lacks"]
        assert found(client, path, **{f"{param}:missing": "false"}) == ["has"]


class TestChainedSearch:
    @pytest.fixture
    def records(self, client: TestClient) -> None:
        load(
            client,
            patient(
                "peter",
                name=[{"given": ["Peter"], "family": "Chalmers"}],
                identifier=[{"system": "urn:mrn", "value": "7"}],
            ),
            patient(
                "paul", name=[{"given": ["Paul"]}], identifier=[{"system": "urn:mrn", "value": "8"}]
            ),
            {"resourceType": "Location", "id": "peterhouse", "name": "Peterhouse"},
            observation("peter-glucose", subject={"reference": "Patient/peter"}),
            observation("paul-glucose", subject={"reference": "Patient/paul"}),
            observation(
                "peter-other",
                subject={"reference": "Patient/peter"},
                code={"coding": [{"system": LOINC, "code": "9999-9"}]},
            ),
            observation("at-peterhouse", subject={"reference": "Location/peterhouse"}),
        )

    @pytest.mark.usefixtures("records")
    def test_patient_identifier(self, client: TestClient) -> None:
        # search.html#errors: "GET [base]/Observation?patient.identifier=...mrn|123456"
        assert found(client, "Observation", **{"patient.identifier": "urn:mrn|7"}) == [
            "peter-glucose",
            "peter-other",
        ]

    @pytest.mark.usefixtures("records")
    def test_an_unknown_identifier_gives_an_empty_bundle_not_an_error(
        self, client: TestClient
    ) -> None:
        assert found(client, "Observation", **{"patient.identifier": "urn:mrn|123456"}) == []

    @pytest.mark.usefixtures("records")
    def test_a_typed_chain(self, client: TestClient) -> None:
        # "GET [base]/DiagnosticReport?subject:Patient.name=peter"
        assert found(client, "Observation", **{"subject:Patient.name": "peter"}) == [
            "peter-glucose",
            "peter-other",
        ]

    @pytest.mark.usefixtures("records")
    def test_an_untyped_chain_searches_every_target_type(self, client: TestClient) -> None:
        # "DiagnosticReport?subject.name=peter is a request to return all the lab reports that
        # have a subject whose name includes "peter""
        assert found(client, "Observation", **{"subject.name": "peter"}) == [
            "at-peterhouse",
            "peter-glucose",
            "peter-other",
        ]

    @pytest.mark.usefixtures("records")
    def test_the_filter_example_code_and_subject_name(self, client: TestClient) -> None:
        # search.html#filter: "Observation?code=http://loinc.org|1234-5&subject.name=peter"
        response = client.get(
            "/fhir/Observation",
            params=[("code", f"{LOINC}|1234-5"), ("subject.name", "peter")],
        )
        assert ids(response.json()) == ["at-peterhouse", "peter-glucose"]

    @pytest.mark.usefixtures("records")
    def test_a_reference_to_another_server_does_not_chain_to_a_local_resource(
        self, client: TestClient
    ) -> None:
        load(
            client,
            observation("remote", subject={"reference": "http://other.org/fhir/Patient/peter"}),
        )
        assert "remote" not in found(client, "Observation", **{"patient.identifier": "urn:mrn|7"})

    @pytest.mark.usefixtures("records")
    def test_a_deleted_target_no_longer_matches(self, client: TestClient) -> None:
        assert client.delete("/fhir/Patient/peter").status_code == 204
        assert found(client, "Observation", **{"patient.identifier": "urn:mrn|7"}) == []

    def test_chains_are_evaluated_independently(self, client: TestClient) -> None:
        # "Patient?general-practitioner.name=Joe&general-practitioner.address-state=MN may return
        # Patients cared for by Joe from CA and Jane from MN"
        def practitioner(res_id: str, name: str, state: str) -> dict[str, Any]:
            return {
                "resourceType": "Practitioner",
                "id": res_id,
                "name": [{"given": [name]}],
                "address": [{"state": state}],
            }

        load(
            client,
            practitioner("joe", "Joe", "CA"),
            practitioner("jane", "Jane", "MN"),
            patient(
                "both",
                generalPractitioner=[
                    {"reference": "Practitioner/joe"},
                    {"reference": "Practitioner/jane"},
                ],
            ),
            patient("joe-only", generalPractitioner=[{"reference": "Practitioner/joe"}]),
        )
        response = client.get(
            "/fhir/Patient",
            params=[
                ("general-practitioner.name", "Joe"),
                ("general-practitioner.address-state", "MN"),
            ],
        )
        assert ids(response.json()) == ["both"]


class TestReverseChaining:
    @pytest.fixture
    def results(self, client: TestClient) -> None:
        def coded(res_id: str, subject: str, code: str) -> dict[str, Any]:
            return observation(
                res_id,
                subject={"reference": subject},
                code={"coding": [{"system": LOINC, "code": code}]},
            )

        load(
            client,
            patient("with-1234", gender="male"),
            patient("with-both", gender="female"),
            patient("with-other"),
            patient("without"),
            coded("o1", "Patient/with-1234", "1234-5"),
            coded("o2", "Patient/with-both", "1234-5"),
            coded("o3", "Patient/with-both", "456"),
            coded("o4", "Patient/with-other", "456"),
            coded("o5", "Group/with-1234", "456"),
        )

    @pytest.mark.usefixtures("results")
    def test_has_selects_resources_referred_to_by_matching_resources(
        self, client: TestClient
    ) -> None:
        # "GET [base]/Patient?_has:Observation:patient:code=1234-5 ... Patient resources, where
        # the patient resource is referred to by at least one Observation where the observation
        # has a code of 1234"
        assert found(client, "Patient", **{"_has:Observation:patient:code": "1234-5"}) == [
            "with-1234",
            "with-both",
        ]

    @pytest.mark.usefixtures("results")
    def test_or_values_and_repeated_has_parameters(self, client: TestClient) -> None:
        # "Or searches are allowed (..._has:Observation:patient:code=123,456), and multiple _has
        # parameters are allowed ... processed independently"
        name = "_has:Observation:patient:code"
        assert found(client, "Patient", **{name: "1234-5,456"}) == [
            "with-1234",
            "with-both",
            "with-other",
        ]
        response = client.get("/fhir/Patient", params=[(name, "1234-5"), (name, "456")])
        assert ids(response.json()) == ["with-both"]

    @pytest.mark.usefixtures("results")
    def test_has_combines_with_other_parameters(self, client: TestClient) -> None:
        response = client.get(
            "/fhir/Patient",
            params=[("_has:Observation:patient:code", "1234-5"), ("gender", "female")],
        )
        assert ids(response.json()) == ["with-both"]


class TestPaging:
    @pytest.fixture
    def seven(self, client: TestClient) -> list[str]:
        load(client, *(patient(f"p{i}", gender="other") for i in range(7)))
        return [f"p{i}" for i in range(7)]

    def test_following_next_links_returns_every_match_once(
        self, client: TestClient, seven: list[str]
    ) -> None:
        seen: list[str] = []
        url: str | None = "/fhir/Patient?gender=other&_count=3"
        pages = 0
        while url:
            bundle = client.get(url).json()
            assert bundle["total"] == 7
            page = [e["resource"]["id"] for e in bundle.get("entry", [])]
            assert len(page) <= 3
            seen += page
            pages += 1
            url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        assert pages == 3
        assert sorted(seen) == seen == sorted(set(seen))
        assert seen == sorted(seven)

    def test_links_repeat_count_and_criteria(self, client: TestClient, seven: list[str]) -> None:
        bundle = search(client, "Patient", gender="other", _count=3)
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        assert set(links) == {"self", "first", "next"}
        assert "_count=3" in links["next"]
        assert "gender=other" in links["next"]

    def test_the_last_page_has_no_next_link(self, client: TestClient, seven: list[str]) -> None:
        bundle = search(client, "Patient", _count=3, _offset=6)
        assert [link["relation"] for link in bundle["link"]].count("next") == 0
        assert len(bundle["entry"]) == 1

    def test_count_limits_matches_not_includes(self, client: TestClient) -> None:
        load(
            client,
            patient("p"),
            observation("o1", subject={"reference": "Patient/p"}),
            observation("o2", subject={"reference": "Patient/p"}),
        )
        bundle = search(client, "Observation", _count=1, _include="Observation:subject")
        modes = sorted(e["search"]["mode"] for e in bundle["entry"])
        assert modes == ["include", "match"]

    def test_count_zero_returns_only_the_total(self, client: TestClient, seven: list[str]) -> None:
        # search.html#count: "_count=0 ... returns a bundle that reports the total number of
        # resources that match in Bundle.total, but with no entries, and no prev/next/last links"
        bundle = search(client, "Patient", _count=0)
        assert bundle["total"] == 7
        assert "entry" not in bundle
        assert {link["relation"] for link in bundle["link"]} <= {"self", "first"}

    def test_summary_count_returns_only_the_total(
        self, client: TestClient, seven: list[str]
    ) -> None:
        bundle = search(client, "Patient", _summary="count")
        assert (bundle["total"], bundle.get("entry")) == (7, None)


class TestSort:
    @pytest.fixture
    def people(self, client: TestClient) -> None:
        load(
            client,
            patient("a", gender="male", birthDate="1980-05-01", name=[{"family": "baker"}]),
            patient("b", gender="female", birthDate="1975-01-01", name=[{"family": "Adams"}]),
            patient("c", gender="male", birthDate="1990-12-31", name=[{"family": "Clark"}]),
            patient(
                "d",
                gender="female",
                birthDate="1985-07-04",
                name=[{"family": "Young"}, {"family": "Able"}],
            ),
            patient("e"),
        )

    def order(self, client: TestClient, sort: str) -> list[str]:
        bundle = search(client, "Patient", _sort=sort)
        return [e["resource"]["id"] for e in bundle["entry"]]

    @pytest.mark.usefixtures("people")
    def test_ascending_puts_missing_values_last(self, client: TestClient) -> None:
        assert self.order(client, "birthdate") == ["b", "a", "d", "c", "e"]

    @pytest.mark.usefixtures("people")
    def test_a_minus_sorts_descending(self, client: TestClient) -> None:
        assert self.order(client, "-birthdate") == ["c", "d", "a", "b", "e"]

    @pytest.mark.usefixtures("people")
    def test_keys_apply_in_priority_order(self, client: TestClient) -> None:
        assert self.order(client, "gender,-birthdate") == ["d", "b", "c", "a", "e"]

    @pytest.mark.usefixtures("people")
    def test_strings_sort_case_insensitively_on_the_earliest_value(
        self, client: TestClient
    ) -> None:
        # "the sort is based on the item in the set of multiple parameters that comes earliest
        # in the specified sort order"; "sorting SHOULD be performed on a case-insensitive basis"
        assert self.order(client, "family") == ["d", "b", "a", "c", "e"]
        assert self.order(client, "-family") == ["d", "c", "a", "b", "e"]

    @pytest.mark.usefixtures("people")
    def test_sort_by_id(self, client: TestClient) -> None:
        assert self.order(client, "-_id") == ["e", "d", "c", "b", "a"]

    @pytest.mark.usefixtures("people")
    def test_an_unsortable_parameter_is_a_400(self, client: TestClient) -> None:
        response = client.get("/fhir/Patient", params={"_sort": "nonsense"})
        assert response.status_code == 400
        outcome_of(response)


class TestIncludes:
    @pytest.fixture
    def chart(self, client: TestClient) -> None:
        load(
            client,
            patient("pat"),
            patient("lonely"),
            {"resourceType": "Practitioner", "id": "doc"},
            observation(
                "o1",
                subject={"reference": "Patient/pat"},
                performer=[{"reference": "Practitioner/doc"}],
            ),
            observation("o2", subject={"reference": "Patient/pat"}),
        )

    def modes(self, bundle: dict[str, Any]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for entry in bundle.get("entry", []):
            resource = entry["resource"]
            out.setdefault(entry["search"]["mode"], []).append(
                f"{resource['resourceType']}/{resource['id']}"
            )
        return {mode: sorted(keys) for mode, keys in out.items()}

    @pytest.mark.usefixtures("chart")
    def test_include_adds_each_referenced_resource_once(self, client: TestClient) -> None:
        bundle = search(client, "Observation", _include="Observation:patient")
        assert self.modes(bundle) == {
            "match": ["Observation/o1", "Observation/o2"],
            "include": ["Patient/pat"],
        }
        assert bundle["total"] == 2

    @pytest.mark.usefixtures("chart")
    def test_revinclude_adds_the_referring_resources(self, client: TestClient) -> None:
        bundle = search(client, "Patient", _id="pat,lonely", _revinclude="Observation:subject")
        assert self.modes(bundle) == {
            "match": ["Patient/lonely", "Patient/pat"],
            "include": ["Observation/o1", "Observation/o2"],
        }

    @pytest.mark.usefixtures("chart")
    def test_wildcard_includes_every_reference(self, client: TestClient) -> None:
        # search.html#include: "use the wild card "*" for the search parameter name"
        bundle = search(client, "Observation", _id="o1", _include="Observation:*")
        assert self.modes(bundle)["include"] == ["Patient/pat", "Practitioner/doc"]

    @pytest.mark.usefixtures("chart")
    def test_the_target_type_limits_the_include(self, client: TestClient) -> None:
        bundle = search(client, "Observation", _id="o1", _include="Observation:performer:Patient")
        assert "include" not in self.modes(bundle)

    def test_iterate_follows_included_resources(self, client: TestClient) -> None:
        # "MedicationDispense?_include=MedicationDispense:prescription
        #  &_include:iterate=MedicationRequest:performer" (performer is requester in R4)
        load(
            client,
            {"resourceType": "Practitioner", "id": "prescriber"},
            {
                "resourceType": "MedicationRequest",
                "id": "rx",
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": {"text": "metformin"},
                "subject": {"reference": "Patient/p"},
                "requester": {"reference": "Practitioner/prescriber"},
            },
            {
                "resourceType": "MedicationDispense",
                "id": "fill",
                "status": "completed",
                "medicationCodeableConcept": {"text": "metformin"},
                "authorizingPrescription": [{"reference": "MedicationRequest/rx"}],
            },
        )
        plain = search(
            client,
            "MedicationDispense",
            _include=["MedicationDispense:prescription", "MedicationRequest:requester"],
        )
        assert self.modes(plain)["include"] == ["MedicationRequest/rx"]
        iterated = client.get(
            "/fhir/MedicationDispense",
            params=[
                ("_include", "MedicationDispense:prescription"),
                ("_include:iterate", "MedicationRequest:requester"),
            ],
        ).json()
        assert self.modes(iterated)["include"] == [
            "MedicationRequest/rx",
            "Practitioner/prescriber",
        ]

    @pytest.mark.usefixtures("chart")
    def test_a_reference_to_another_server_is_not_the_local_resource(
        self, client: TestClient
    ) -> None:
        load(
            client,
            observation("remote", subject={"reference": "http://other.org/fhir/Patient/pat"}),
            observation("local-url", subject={"reference": f"{BASE}/Patient/pat"}),
        )
        remote = search(client, "Observation", _id="remote", _include="Observation:subject")
        assert self.modes(remote) == {"match": ["Observation/remote"]}
        local = search(client, "Observation", _id="local-url", _include="Observation:subject")
        assert self.modes(local)["include"] == ["Patient/pat"]
        back = search(client, "Patient", _id="pat", _revinclude="Observation:subject")
        assert self.modes(back)["include"] == [
            "Observation/local-url",
            "Observation/o1",
            "Observation/o2",
        ]

    @pytest.mark.usefixtures("chart")
    def test_a_missing_target_is_omitted_without_error(self, client: TestClient) -> None:
        load(client, observation("dangling", subject={"reference": "Patient/gone"}))
        bundle = search(client, "Observation", _id="dangling", _include="Observation:subject")
        assert self.modes(bundle) == {"match": ["Observation/dangling"]}

    @pytest.mark.usefixtures("chart")
    def test_each_page_carries_its_own_includes(self, client: TestClient) -> None:
        # search.html#paging: "all _include resources that are related to the primary resources
        # returned for the page SHOULD also be returned as part of that same page"
        for offset in (0, 1):
            bundle = search(
                client, "Observation", _count=1, _offset=offset, _include="Observation:subject"
            )
            assert self.modes(bundle)["include"] == ["Patient/pat"]


class TestPostSearch:
    def test_form_parameters_search_like_get(self, client: TestClient) -> None:
        load(
            client,
            patient("eve", name=[{"given": ["Eve"]}]),
            patient("bob", name=[{"given": ["Bob"]}]),
        )
        response = client.post(
            "/fhir/Patient/_search",
            content="given=eve",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200
        bundle = response.json()
        assert ids(bundle) == ["eve"]
        self_link = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
        assert self_link.startswith(f"{BASE}/Patient?")
        assert "given=eve" in self_link


class TestSummaryAndElements:
    def test_elements_keeps_the_listed_elements_and_marks_subsetted(
        self, client: TestClient
    ) -> None:
        # "GET [base]/Patient?_elements=identifier,active,link"
        load(
            client,
            patient(
                "p", identifier=[{"value": "1"}], active=True, gender="male", name=[{"family": "X"}]
            ),
        )
        (entry,) = search(client, "Patient", _elements="identifier,active,link")["entry"]
        resource = entry["resource"]
        assert set(resource) == {"resourceType", "id", "meta", "identifier", "active"}
        assert {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
            "code": "SUBSETTED",
        } in resource["meta"]["tag"]

    NARRATIVE = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}

    def shaped(self, client: TestClient, path: str, **params: str) -> dict[str, Any]:
        (entry,) = search(client, path, **params)["entry"]
        resource: dict[str, Any] = entry["resource"]
        return resource

    def test_elements_adds_the_mandatory_elements(self, client: TestClient) -> None:
        # "Servers SHOULD always return mandatory elements whether they are requested or not"
        load(client, observation("o", subject={"reference": "Patient/p"}, text=self.NARRATIVE))
        resource = self.shaped(client, "Observation", _elements="subject")
        assert set(resource) == {"resourceType", "id", "meta", "subject", "status", "code"}

    def test_summary_true_keeps_the_summary_elements(self, client: TestClient) -> None:
        # R4 Patient: name, gender, birthDate are summary; text, contact, communication are not
        load(
            client,
            patient(
                "p",
                text=self.NARRATIVE,
                name=[{"family": "X"}],
                gender="male",
                birthDate="1970-01-01",
                contact=[{"name": {"family": "Y"}}],
                communication=[{"language": {"text": "English"}}],
            ),
        )
        resource = self.shaped(client, "Patient", _summary="true")
        assert set(resource) == {"resourceType", "id", "meta", "name", "gender", "birthDate"}
        assert "SUBSETTED" in [t["code"] for t in resource["meta"]["tag"]]

    def test_summary_text_keeps_text_and_mandatory_elements(self, client: TestClient) -> None:
        # "_summary=text: Return only the text element, the id element, the meta element, and
        # only top-level mandatory elements"
        load(client, observation("o", subject={"reference": "Patient/p"}, text=self.NARRATIVE))
        resource = self.shaped(client, "Observation", _summary="text")
        assert set(resource) == {"resourceType", "id", "meta", "text", "status", "code"}

    def test_summary_data_removes_the_text(self, client: TestClient) -> None:
        load(client, observation("o", subject={"reference": "Patient/p"}, text=self.NARRATIVE))
        resource = self.shaped(client, "Observation", _summary="data")
        assert set(resource) == {"resourceType", "id", "meta", "status", "code", "subject"}
        assert "SUBSETTED" in [t["code"] for t in resource["meta"]["tag"]]

    def test_summary_false_returns_the_whole_resource(self, client: TestClient) -> None:
        load(client, observation("o", text=self.NARRATIVE))
        resource = self.shaped(client, "Observation", _summary="false")
        assert resource["text"] == self.NARRATIVE
        assert "tag" not in resource["meta"]

    def test_elements_does_not_apply_to_included_resources(self, client: TestClient) -> None:
        load(
            client,
            patient("p", gender="male"),
            observation("o", subject={"reference": "Patient/p"}),
        )
        bundle = search(client, "Observation", _elements="status", _include="Observation:subject")
        included = next(e for e in bundle["entry"] if e["search"]["mode"] == "include")
        assert included["resource"]["gender"] == "male"


class TestHandling:
    def test_strict_rejects_an_unknown_parameter(self, client: TestClient) -> None:
        response = client.get(
            "/fhir/Patient", params={"nonsense": "1"}, headers={"Prefer": "handling=strict"}
        )
        assert response.status_code == 400
        assert "nonsense" in outcome_of(response)["issue"][0]["diagnostics"]

    def test_lenient_ignores_it_and_says_so(self, client: TestClient) -> None:
        load(client, patient("p", gender="male"), patient("q", gender="female"))
        response = client.get(
            "/fhir/Patient",
            params={"nonsense": "1", "gender": "male"},
            headers={"Prefer": "handling=lenient"},
        )
        assert response.status_code == 200
        bundle = response.json()
        assert ids(bundle) == ["p"]
        (outcome,) = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
        assert outcome["resource"]["resourceType"] == "OperationOutcome"
        assert "nonsense" in outcome["resource"]["issue"][0]["diagnostics"]
        self_link = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
        assert "nonsense" not in self_link
        assert "gender=male" in self_link

    def test_lenient_is_the_default(self, client: TestClient) -> None:
        assert client.get("/fhir/Patient", params={"nonsense": "1"}).status_code == 200

    def test_an_empty_parameter_is_ignored(self, client: TestClient) -> None:
        # search.html#errors: "Empty parameters are not an error - they are just ignored"
        load(client, patient("p"))
        response = client.get("/fhir/Patient?name=", headers={"Prefer": "handling=strict"})
        assert response.status_code == 200
        assert ids(response.json()) == ["p"]

    @pytest.mark.parametrize(
        ("name", "value"),
        [("given:bogus", "x"), ("gender:text", "male"), ("birthdate:contains", "2000")],
    )
    def test_an_unsupported_modifier_is_a_400_even_when_lenient(
        self, client: TestClient, name: str, value: str
    ) -> None:
        # search.html#modifiers: "Server SHALL reject any search request that contains ... a
        # modifier that the server does not support for that parameter ... 400"
        response = client.get("/fhir/Patient", params={name: value})
        assert response.status_code == 400
        assert outcome_of(response)["issue"][0]["severity"] == "error"

    def test_an_unknown_resource_type_is_a_404(self, client: TestClient) -> None:
        response = client.get("/fhir/Nonsense", params={"name": "x"})
        assert response.status_code == 404
        outcome_of(response)


class TestSystemSearch:
    def test_type_selects_the_types_and_their_common_parameters(self, client: TestClient) -> None:
        load(
            client,
            patient("p"),
            observation("o", subject={"reference": "Patient/p"}),
            {"resourceType": "Condition", "id": "c", "subject": {"reference": "Patient/p"}},
            {"resourceType": "Condition", "id": "other", "subject": {"reference": "Patient/x"}},
        )
        bundle = search(client, "", _type="Observation,Condition", patient="Patient/p")
        keys = sorted(
            f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]
        )
        assert keys == ["Condition/c", "Observation/o"]

    def test_common_parameters_need_no_type(self, client: TestClient) -> None:
        # search.html#searchcontexts: "if _type is not included, all parameters SHALL be common to
        # all resource types"; search.html#tag: "GET [base]/Condition?_tag=..."
        tag = {"system": "http://acme.org/codes", "code": "needs-review"}
        load(
            client,
            patient("same", meta={"tag": [tag]}),
            observation("same"),
            {
                "resourceType": "Condition",
                "id": "c",
                "meta": {"tag": [tag]},
                "subject": {"reference": "Patient/same"},
            },
        )

        def keys(bundle: dict[str, Any]) -> list[str]:
            return sorted(
                f"{e['resource']['resourceType']}/{e['resource']['id']}"
                for e in bundle.get("entry", [])
                if e["search"]["mode"] == "match"
            )

        assert keys(search(client, "", _id="same")) == ["Observation/same", "Patient/same"]
        assert keys(search(client, "", _tag="http://acme.org/codes|needs-review")) == [
            "Condition/c",
            "Patient/same",
        ]

    def test_a_type_specific_parameter_without_type_is_unknown(self, client: TestClient) -> None:
        response = client.get(
            "/fhir", params={"gender": "male"}, headers={"Prefer": "handling=strict"}
        )
        assert response.status_code == 400
        outcome_of(response)


class TestEverything:
    def test_returns_the_patient_its_compartment_and_what_it_references(
        self, client: TestClient
    ) -> None:
        load(
            client,
            {"resourceType": "Organization", "id": "clinic"},
            patient("p", managingOrganization={"reference": "Organization/clinic"}),
            patient("q"),
            {"resourceType": "Practitioner", "id": "doc"},
            observation(
                "mine",
                subject={"reference": "Patient/p"},
                performer=[{"reference": "Practitioner/doc"}],
            ),
            observation("theirs", subject={"reference": "Patient/q"}),
        )
        response = client.get("/fhir/Patient/p/$everything")
        assert response.status_code == 200
        bundle = response.json()
        keys = sorted(
            f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]
        )
        assert keys == ["Observation/mine", "Organization/clinic", "Patient/p", "Practitioner/doc"]
        assert bundle["type"] == "searchset"

    def test_resources_of_another_servers_patient_are_left_out(self, client: TestClient) -> None:
        load(
            client,
            patient("p"),
            observation("here", subject={"reference": "Patient/p"}),
            observation("there", subject={"reference": "http://other.org/fhir/Patient/p"}),
        )
        bundle = client.get("/fhir/Patient/p/$everything").json()
        assert sorted(e["resource"]["id"] for e in bundle["entry"]) == ["here", "p"]

    def test_an_unknown_patient_is_a_404(self, client: TestClient) -> None:
        response = client.get("/fhir/Patient/nobody/$everything")
        assert response.status_code == 404
        outcome_of(response)


@pytest.fixture
def client(shared_client: TestClient) -> TestClient:
    return shared_client
