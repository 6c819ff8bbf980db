"""Measure/[id]/$evaluate-measure through the API against a hand-built population.

Measurement year 2025, PDC-RASA (lisinopril), stores L1 and L2 of organisation o1, L3 of o2:

| patient | fills (90 days each) | store of latest fill | result |
|---|---|---|---|
| pa | 01-01, 04-01, 07-01, 10-01 | L1 | 360/365, adherent |
| pb | 01-01, 04-01 | L1 | 180/365, not adherent |
| pc | quarterly, and an ESRD Condition | L2 | denominator exclusion (esrd) |
| pd | 01-01 only | L3 | not in the initial population (one fill) |
| pe | quarterly, the last at L3, the others at L2 | L3 | adherent |
| pf | atorvastatin only | L1 | not scored for PDC-RASA |

So: initial population = denominator = 4 (pa pb pc pe), exclusion 1 (pc), numerator 2 (pa pe),
rate 2 / (4 - 1) = 0.6667.
"""

from __future__ import annotations

from typing import Any

import pytest

from carebridge.fhir.validation import validate_resource
from tests.adherence import records
from tests.adherence.test_endpoints import put_all

YEAR = {"periodStart": "2025-01-01", "periodEnd": "2025-12-31"}
URL = "/fhir/Measure/pdc-rasa/$evaluate-measure"
QUARTERS = ("2025-01-01", "2025-04-01", "2025-07-01", "2025-10-01")


def location(lid: str, org: str) -> dict[str, Any]:
    return {
        "resourceType": "Location",
        "id": lid,
        "name": f"Store {lid}",
        "managingOrganization": {"reference": f"Organization/{org}"},
    }


def fills(pid: str, days: tuple[str, ...], stores: tuple[str, ...], rxcui: str) -> list[Any]:
    return [
        records.dispense(
            f"{pid}-{n}", pid, day, 90, rxcui, location={"reference": f"Location/{store}"}
        )
        for n, (day, store) in enumerate(zip(days, stores, strict=True))
    ]


def population() -> list[dict[str, Any]]:
    lis, ator = records.LISINOPRIL, records.ATORVASTATIN
    return [
        {"resourceType": "Organization", "id": "o1", "name": "North"},
        {"resourceType": "Organization", "id": "o2", "name": "South"},
        location("L1", "o1"),
        location("L2", "o1"),
        location("L3", "o2"),
        *(records.patient(pid) for pid in ("pa", "pb", "pc", "pd", "pe", "pf")),
        *fills("pa", QUARTERS, ("L1",) * 4, lis),
        *fills("pb", QUARTERS[:2], ("L1",) * 2, lis),
        *fills("pc", QUARTERS, ("L2",) * 4, lis),
        records.esrd_condition("c-pc", "pc"),
        *fills("pd", QUARTERS[:1], ("L3",), lis),
        *fills("pe", QUARTERS, ("L2", "L2", "L2", "L3"), lis),
        *fills("pf", QUARTERS, ("L1",) * 4, ator),
    ]


def counts(populations: list[dict[str, Any]]) -> dict[str, int]:
    return {p["code"]["coding"][0]["code"]: p["count"] for p in populations}


def evaluate(client: Any, **params: str) -> dict[str, Any]:
    response = client.get(URL, params={**YEAR, **params})
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    validate_resource(report)
    return report


@pytest.fixture
def loaded(client):
    put_all(client, population())
    return client


class TestSummary:
    def test_counts_and_rate_of_the_population(self, loaded):
        report = evaluate(loaded)
        assert report["resourceType"] == "MeasureReport"
        assert report["type"] == "summary"
        assert report["measure"] == "https://carebridge.dev/fhir/Measure/PDC-RASA"
        (group,) = report["group"]
        assert counts(group["population"]) == {
            "initial-population": 4,
            "denominator": 4,
            "denominator-exclusion": 1,
            "numerator": 2,
        }
        assert group["measureScore"] == {"value": 0.6667}
        assert "stratifier" not in group

    def test_stratified_by_store(self, loaded):
        (group,) = evaluate(loaded, groupBy="store")["group"]
        (stratifier,) = group["stratifier"]
        strata = {s["value"]["text"]: s for s in stratifier["stratum"]}
        assert sorted(strata) == ["Location/L1", "Location/L2", "Location/L3"]
        assert counts(strata["Location/L1"]["population"])["numerator"] == 1
        assert strata["Location/L1"]["measureScore"] == {"value": 0.5}
        assert counts(strata["Location/L2"]["population"])["denominator-exclusion"] == 1
        assert "measureScore" not in strata["Location/L2"]
        assert counts(strata["Location/L3"]["population"])["initial-population"] == 1
        assert strata["Location/L3"]["measureScore"] == {"value": 1.0}

    def test_stratified_by_organization(self, loaded):
        (group,) = evaluate(loaded, groupBy="organization")["group"]
        strata = {s["value"]["text"]: s for s in group["stratifier"][0]["stratum"]}
        assert counts(strata["Organization/o1"]["population"]) == {
            "initial-population": 3,
            "denominator": 3,
            "denominator-exclusion": 1,
            "numerator": 1,
        }
        assert strata["Organization/o1"]["measureScore"] == {"value": 0.5}
        assert strata["Organization/o2"]["measureScore"] == {"value": 1.0}

    def test_r4_population_alias(self, loaded):
        assert evaluate(loaded, reportType="population")["type"] == "summary"

    def test_another_measure_counts_other_patients(self, loaded):
        response = loaded.get("/fhir/Measure/pdc-sta/$evaluate-measure", params=YEAR)
        assert response.status_code == 200
        assert counts(response.json()["group"][0]["population"])["numerator"] == 1  # pf


class TestSubjectListAndIndividual:
    def test_subject_list_names_the_patients_of_each_population(self, loaded):
        report = evaluate(loaded, reportType="subject-list")
        assert report["type"] == "subject-list"
        lists = {c["id"]: c for c in report["contained"]}
        numerator = [e["item"]["reference"] for e in lists["numerator"]["entry"]]
        assert numerator == ["Patient/pa", "Patient/pe"]
        excluded = [e["item"]["reference"] for e in lists["denominator-exclusion"]["entry"]]
        assert excluded == ["Patient/pc"]
        population = report["group"][0]["population"]
        assert {p["subjectResults"]["reference"] for p in population} == {
            f"#{code}" for code in lists
        }

    @pytest.mark.parametrize("param", ["subject", "patient"])
    def test_individual_report_for_one_patient(self, loaded, param):
        report = evaluate(loaded, **{param: "Patient/pb"})
        assert report["type"] == "individual"
        assert report["subject"] == {"reference": "Patient/pb"}
        assert counts(report["group"][0]["population"])["numerator"] == 0
        assert report["group"][0]["measureScore"] == {"value": round(180 / 365, 4)}


class TestPersistAndErrors:
    def test_persist_stores_the_report_and_the_measures_once(self, loaded):
        url = f"{URL}?periodStart=2025-01-01&periodEnd=2025-12-31&groupBy=store&persist=true"
        first = loaded.post(url)
        second = loaded.post(url)
        assert first.status_code == second.status_code == 200, first.text
        report_id = first.json()["id"]
        assert second.json()["id"] == report_id
        stored = loaded.get(f"/fhir/MeasureReport/{report_id}")
        assert stored.status_code == 200
        assert stored.json()["meta"]["versionId"] == "1"
        for key in ("pdc-dr", "pdc-rasa", "pdc-sta"):
            measure = loaded.get(f"/fhir/Measure/{key}")
            assert measure.status_code == 200
            assert measure.json()["meta"]["versionId"] == "1"
            validate_resource(measure.json())

    def test_get_does_not_store(self, loaded):
        evaluate(loaded)
        assert loaded.get("/fhir/MeasureReport").json().get("entry", []) == []

    @pytest.mark.parametrize(
        ("params", "status", "message"),
        [
            ({**YEAR, "persist": "true"}, 400, "POST"),
            ({**YEAR, "reportType": "individual"}, 400, "subject"),
            ({**YEAR, "reportType": "summary", "subject": "Patient/pa"}, 400, "subject"),
            ({**YEAR, "subject": "Patient/pa", "groupBy": "store"}, 400, "groupBy"),
            ({**YEAR, "groupBy": "region"}, 400, "groupBy"),
            ({**YEAR, "subject": "Group/g1"}, 400, "Patient/"),
            ({"periodStart": "2025-01-01"}, 400, "periodEnd"),
        ],
    )
    def test_bad_parameters_are_operation_outcomes(self, loaded, params, status, message):
        response = loaded.get(URL, params=params)
        assert response.status_code == status, response.text
        assert message in response.json()["issue"][0]["diagnostics"]

    def test_unknown_measure_is_404(self, loaded):
        response = loaded.get("/fhir/Measure/pdc-xyz/$evaluate-measure", params=YEAR)
        assert response.status_code == 404
        assert response.json()["resourceType"] == "OperationOutcome"

    def test_a_token_is_required(self, loaded):
        response = loaded.get(URL, params=YEAR, headers={"Authorization": ""})
        assert response.status_code == 401

    def test_persist_needs_write_access(self, loaded, settings):
        from tests.conftest import bearer

        read_only = bearer(settings, "system/*.rs")
        assert loaded.get(URL, params=YEAR, headers=read_only).status_code == 200
        url = f"{URL}?periodStart=2025-01-01&periodEnd=2025-12-31&persist=true"
        assert loaded.post(url, headers=read_only).status_code == 403

    def test_the_operation_definition_is_served(self, loaded):
        response = loaded.get("/fhir/OperationDefinition/measure-evaluate-measure")
        assert response.status_code == 200
        assert validate_resource(response.json())["code"] == "evaluate-measure"


def test_served_by_the_app_as_create_app_mounts_it(settings):
    from fastapi.testclient import TestClient

    from carebridge.app import create_app
    from tests.conftest import bearer

    app = create_app(settings)
    with TestClient(app, headers=bearer(settings)) as plain:
        put_all(plain, population())
        response = plain.get(URL, params=YEAR)
        assert response.status_code == 200, response.text
        assert response.json()["group"][0]["measureScore"] == {"value": 0.6667}
    app.state.engine.dispose()
