"""Patient/$adherence through the API, on SQLite and PostgreSQL, against hand-computed PDCs."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from carebridge.adherence.endpoints import router
from carebridge.app import create_app
from carebridge.fhir.validation import validate_resource
from tests.adherence import records

FHIR_JSON = {"content-type": "application/fhir+json"}
YEAR = {"periodStart": "2025-01-01", "periodEnd": "2025-12-31"}


def put_all(client: Any, resources: list[dict[str, Any]]) -> None:
    for resource in resources:
        response = client.put(
            f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=FHIR_JSON
        )
        assert response.status_code in (200, 201), response.text


def measures(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert body["resourceType"] == "Parameters"
    out = {}
    for parameter in body["parameter"]:
        assert parameter["name"] == "measure"
        parts = {}
        for part in parameter["part"]:
            [value] = [v for k, v in part.items() if k.startswith("value")]
            parts[part["name"]] = value
        out[parts["code"]] = parts
    return out


def adherence(client: Any, pid: str, **params: str) -> dict[str, dict[str, Any]]:
    response = client.get(f"/fhir/Patient/{pid}/$adherence", params={**YEAR, **params})
    assert response.status_code == 200, response.text
    get_fhir_model_class("Parameters").model_validate(response.json())
    return measures(response.json())


class TestPatientAdherence:
    def test_hand_computed_pdc_per_measure(self, client):
        put_all(client, records.adherent_statin_lapsing_ras_patient())
        found = adherence(client, "p1")
        assert found["PDC-RASA"] == {
            "code": "PDC-RASA",
            "eligible": True,
            "pdc": 0.7397,
            "adherent": False,
            "daysCovered": 270,
            "daysInPeriod": 365,
        }
        assert found["PDC-STA"] == {
            "code": "PDC-STA",
            "eligible": True,
            "pdc": 1.0,
            "adherent": True,
            "daysCovered": 356,
            "daysInPeriod": 356,
        }

    def test_not_eligible_has_no_pdc_and_says_why(self, client):
        put_all(client, records.adherent_statin_lapsing_ras_patient())
        found = adherence(client, "p1", measure="PDC-DR")
        assert found == {
            "PDC-DR": {
                "code": "PDC-DR",
                "eligible": False,
                "adherent": False,
                "daysCovered": 0,
                "daysInPeriod": 0,
                "exclusionReason": "fewer-than-two-fills",
            }
        }

    def test_exclusion_drug_excludes(self, client):
        put_all(client, records.excluded_patient())
        found = adherence(client, "p2", measure="PDC-RASA")
        assert found["PDC-RASA"]["eligible"] is False
        assert found["PDC-RASA"]["exclusionReason"] == "sacubitril-valsartan"
        assert "pdc" not in found["PDC-RASA"]

    def test_death_and_inpatient_stay_adjust_the_period(self, client):
        put_all(client, records.deceased_inpatient_patient())
        found = adherence(client, "p3", measure="PDC-RASA")
        assert found["PDC-RASA"]["daysInPeriod"] == 171
        assert found["PDC-RASA"]["daysCovered"] == 171
        assert found["PDC-RASA"]["adherent"] is True

    def test_measures_listed_with_commas_or_repeated(self, client):
        put_all(client, records.adherent_statin_lapsing_ras_patient())
        response = client.get(
            "/fhir/Patient/p1/$adherence",
            params=[*YEAR.items(), ("measure", "PDC-STA,PDC-RASA"), ("measure", "PDC-STA")],
        )
        assert response.status_code == 200
        assert list(measures(response.json())) == ["PDC-STA", "PDC-RASA"]

    def test_the_access_is_audited_with_the_patient_and_dispenses(self, client, engine):
        put_all(client, records.adherent_statin_lapsing_ras_patient())
        adherence(client, "p1", measure="PDC-STA")
        from sqlalchemy import select

        from carebridge.fhir.tables import resource

        with engine.connect() as conn:
            events = [
                row.content
                for row in conn.execute(select(resource).where(resource.c.res_type == "AuditEvent"))
            ]
        operations = [e for e in events if e.get("subtype", [{}])[0].get("code") == "operation"]
        assert operations, events[-1]
        named = {
            entity.get("what", {}).get("reference") for entity in operations[-1].get("entity", [])
        }
        assert {"Patient/p1", "MedicationDispense/s1", "Medication/atorvastatin"} <= named

    def test_unknown_patient_is_404(self, client):
        response = client.get("/fhir/Patient/nobody/$adherence", params=YEAR)
        assert response.status_code == 404
        assert response.json()["resourceType"] == "OperationOutcome"

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({"periodEnd": "2025-12-31"}, "periodStart"),
            ({"periodStart": "2025-01-01"}, "periodEnd"),
            ({**YEAR, "periodStart": "2025"}, "YYYY-MM-DD"),
            ({**YEAR, "periodEnd": "2025-02-30"}, "YYYY-MM-DD"),
            ({"periodStart": "2025-12-31", "periodEnd": "2025-01-01"}, "before"),
            ({**YEAR, "measure": "PDC-XYZ"}, "unknown measure"),
            ({**YEAR, "measure": "PDC-STA,"}, "empty code"),
            ({**YEAR, "colour": "blue"}, "unknown parameter"),
            ({**YEAR, "persist": "yes"}, "true or false"),
            ({**YEAR, "persist": "true"}, "POST"),
        ],
    )
    def test_bad_parameters_are_400_operation_outcomes(self, client, params, message):
        put_all(client, [records.patient("p1")])
        response = client.get("/fhir/Patient/p1/$adherence", params=params)
        assert response.status_code == 400, response.text
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert message in outcome["issue"][0]["diagnostics"]

    def test_repeated_single_parameter_is_400(self, client):
        put_all(client, [records.patient("p1")])
        response = client.get(
            "/fhir/Patient/p1/$adherence",
            params=[*YEAR.items(), ("periodEnd", "2025-06-30")],
        )
        assert response.status_code == 400
        assert "at most 1" in response.json()["issue"][0]["diagnostics"]

    def test_operation_definition_is_served_and_valid(self, client):
        response = client.get("/fhir/OperationDefinition/patient-adherence")
        assert response.status_code == 200
        definition = validate_resource(response.json())
        assert definition["code"] == "adherence"

    def test_route_works_when_mounted_after_the_generic_fhir_router(self, settings):
        from fastapi import Depends
        from fastapi.testclient import TestClient

        from carebridge.access.guard import install_guard
        from tests.conftest import bearer

        app = create_app(settings)
        app.include_router(router, dependencies=[Depends(install_guard)])
        with TestClient(app, headers=bearer(settings)) as late:
            put_all(late, records.adherent_statin_lapsing_ras_patient())
            response = late.get("/fhir/Patient/p1/$adherence", params=YEAR)
            assert response.status_code == 200
            assert measures(response.json())["PDC-STA"]["adherent"] is True
        app.state.engine.dispose()


class TestPersistedMeasureReports:
    def reports(self, client: Any) -> list[dict[str, Any]]:
        response = client.get("/fhir/MeasureReport", params={"subject": "Patient/p1"})
        assert response.status_code == 200
        return [e["resource"] for e in response.json().get("entry", [])]

    def persist(self, client: Any) -> dict[str, dict[str, Any]]:
        response = client.post("/fhir/Patient/p1/$adherence", params={**YEAR, "persist": "true"})
        assert response.status_code == 200, response.text
        return measures(response.json())

    def test_one_valid_report_per_measure_with_populations_and_score(self, client):
        put_all(client, records.adherent_statin_lapsing_ras_patient())
        found = self.persist(client)
        reports = {r["measure"].rsplit("/", 1)[1]: r for r in self.reports(client)}
        assert sorted(reports) == ["PDC-DR", "PDC-RASA", "PDC-STA"]
        for report in reports.values():
            validate_resource(report)
        assert found["PDC-STA"]["measureReport"] == {
            "reference": f"MeasureReport/{reports['PDC-STA']['id']}"
        }
        rasa = reports["PDC-RASA"]
        assert rasa["type"] == "individual"
        assert rasa["subject"] == {"reference": "Patient/p1"}
        assert rasa["period"] == {"start": "2025-01-01", "end": "2025-12-31"}
        assert rasa["group"][0]["measureScore"] == {"value": 0.7397}
        counts = {
            p["code"]["coding"][0]["code"]: p["count"] for p in rasa["group"][0]["population"]
        }
        assert counts == {
            "initial-population": 1,
            "denominator": 1,
            "denominator-exclusion": 0,
            "numerator": 0,
        }
        assert "measureScore" not in reports["PDC-DR"]["group"][0]

    def test_rerun_updates_instead_of_duplicating(self, client):
        put_all(client, records.adherent_statin_lapsing_ras_patient())
        self.persist(client)
        self.persist(client)
        reports = self.reports(client)
        assert len(reports) == 3
        assert {r["meta"]["versionId"] for r in reports} == {"1"}
        put_all(client, [records.dispense("d4", "p1", "2025-10-13", 90, records.LISINOPRIL)])
        found = self.persist(client)
        assert found["PDC-RASA"]["adherent"] is True
        reports = {r["measure"].rsplit("/", 1)[1]: r for r in self.reports(client)}
        assert len(reports) == 3
        assert reports["PDC-RASA"]["meta"]["versionId"] == "2"
        assert reports["PDC-STA"]["meta"]["versionId"] == "1"

    def test_persist_needs_write_access_to_measure_reports(self, client, settings):
        from tests.conftest import bearer

        put_all(client, records.adherent_statin_lapsing_ras_patient())
        read_only = bearer(settings, "system/*.rs")
        url = "/fhir/Patient/p1/$adherence"
        assert client.get(url, params=YEAR, headers=read_only).status_code == 200
        response = client.post(url, params={**YEAR, "persist": "true"}, headers=read_only)
        assert response.status_code == 403
        assert self.reports(client) == []

    def test_a_token_is_required(self, client):
        response = client.get(
            "/fhir/Patient/p1/$adherence", params=YEAR, headers={"Authorization": ""}
        )
        assert response.status_code == 401

    def test_get_does_not_store(self, client):
        put_all(client, records.adherent_statin_lapsing_ras_patient())
        adherence(client, "p1")
        assert self.reports(client) == []


class TestExclusionsFromTheRecord:
    """Hand-computed: ``records.quarterly_lisinopril_patient`` covers 360 of 365 days."""

    def test_without_events_the_patient_is_scored_over_the_year(self, client):
        put_all(client, records.quarterly_lisinopril_patient("p4"))
        found = adherence(client, "p4", measure="PDC-RASA")["PDC-RASA"]
        assert (found["daysCovered"], found["daysInPeriod"]) == (360, 365)

    @pytest.mark.parametrize("code", ["N18.6", "Z99.2"])
    def test_an_esrd_condition_excludes_from_pdc_rasa(self, client, code):
        put_all(client, records.quarterly_lisinopril_patient("p4"))
        put_all(client, [records.esrd_condition("c1", "p4", code)])
        found = adherence(client, "p4", measure="PDC-RASA")["PDC-RASA"]
        assert found["eligible"] is False
        assert found["exclusionReason"] == "esrd"
        assert "pdc" not in found

    def test_an_inpatient_claim_encounter_removes_the_stay_days(self, client):
        """The claims feed's inpatient Encounter, 03-30..04-04 (6 days): 365 - 6 = 359 days at
        risk; the first fill's supply is held during the stay (88 days before, 2 after, to
        04-06) and later fills shift: 04-07..07-05, 07-06..10-03, 10-04..12-31 (89): 359."""
        from carebridge.ingest.mappers.claims import claim_resources
        from tests.ingest.conftest import CLAIM

        (stay,) = [
            m.content for m in claim_resources(CLAIM, "p5", False) if m.res_type == "Encounter"
        ]
        put_all(client, [*records.quarterly_lisinopril_patient("p5"), stay])
        found = adherence(client, "p5", measure="PDC-RASA")["PDC-RASA"]
        assert (found["daysCovered"], found["daysInPeriod"]) == (359, 359)
        assert found["pdc"] == 1.0

    def test_a_hospice_episode_excludes_from_every_measure(self, client):
        put_all(client, records.quarterly_lisinopril_patient("p6"))
        put_all(client, [records.hospice_episode("h1", "p6")])
        found = adherence(client, "p6", measure="PDC-RASA")["PDC-RASA"]
        assert found["exclusionReason"] == "hospice"

    def test_the_end_of_part_d_coverage_ends_the_treatment_period(self, client):
        """Enrolled to 09-30: 273 days in period; fills cover 01-01..09-28 = 270 of them."""
        put_all(client, records.quarterly_lisinopril_patient("p7"))
        put_all(client, [records.part_d_coverage("cov1", "p7", "2025-09-30")])
        found = adherence(client, "p7", measure="PDC-RASA")["PDC-RASA"]
        assert (found["daysCovered"], found["daysInPeriod"]) == (270, 273)

    def test_reading_conditions_needs_read_access_to_them(self, client, settings):
        from tests.conftest import bearer

        put_all(client, records.quarterly_lisinopril_patient("p4"))
        narrow = bearer(
            settings,
            "system/Patient.rs system/MedicationDispense.rs system/Medication.rs "
            "system/Encounter.rs",
        )
        response = client.get("/fhir/Patient/p4/$adherence", params=YEAR, headers=narrow)
        assert response.status_code == 403
