"""`carebridge adherence` and `carebridge adherence outreach` through Typer's CliRunner."""

from __future__ import annotations

import csv
from typing import Any

import typer
from typer.testing import CliRunner

from carebridge.cli import adherence as adherence_cli
from carebridge.fhir.records import Method, WriteOp
from carebridge.fhir.store import FhirStore
from tests.adherence import records

runner = CliRunner()


def cli() -> typer.Typer:
    app = typer.Typer()
    adherence_cli.register(app)

    @app.callback()
    def main() -> None:
        """carebridge"""

    return app


def location(lid: str, ncpdp: str) -> dict[str, Any]:
    system = "http://terminology.hl7.org/NamingSystem/NCPDPProviderIdentificationNumber"
    return {
        "resourceType": "Location",
        "id": lid,
        "identifier": [{"system": system, "value": ncpdp}],
    }


def at(resources: list[dict[str, Any]], lid: str) -> list[dict[str, Any]]:
    where = {"location": {"reference": f"Location/{lid}"}}
    return [{**r, **where} if r["resourceType"] == "MedicationDispense" else r for r in resources]


def load(engine: Any) -> None:
    resources = [
        location("north", "3600011"),
        location("south", "3600029"),
        *at(records.adherent_statin_lapsing_ras_patient(), "north"),
        *at(records.excluded_patient(), "south"),
    ]
    with engine.begin() as conn:
        FhirStore(conn).write(
            [WriteOp(Method.PUT, r["resourceType"], r["id"], r) for r in resources]
        )


def rows(path: Any) -> dict[tuple[str, str], dict[str, str]]:
    with path.open() as handle:
        return {(r["patient_id"], r["measure"]): r for r in csv.DictReader(handle)}


class TestAdherenceCommand:
    def test_scores_the_population_and_writes_csv(self, engine, settings, tmp_path):
        load(engine)
        out = tmp_path / "report.csv"
        result = runner.invoke(
            cli(),
            ["adherence", "--period", "2025", "--out", str(out), "--db", settings.database_url],
        )
        assert result.exit_code == 0, result.output
        assert "PDC-RASA" in result.output
        assert "0.0%" in result.output  # PDC-RASA: p1 not adherent, p2 excluded
        assert "100.0%" in result.output  # PDC-STA: p1 adherent
        found = rows(out)
        assert found[("p1", "PDC-RASA")]["pdc"] == "0.7397"
        assert found[("p1", "PDC-RASA")]["days_covered"] == "270"
        assert found[("p1", "PDC-STA")]["adherent"] == "true"
        assert found[("p2", "PDC-RASA")]["exclusion_reason"] == "sacubitril-valsartan"
        assert found[("p2", "PDC-RASA")]["pdc"] == ""

    def test_store_filters_by_the_dispensing_location(self, engine, settings, tmp_path):
        load(engine)
        out = tmp_path / "south.csv"
        result = runner.invoke(
            cli(),
            [
                *("adherence", "--period", "2025", "--store", "3600029"),
                *("--out", str(out), "--db", settings.database_url),
            ],
        )
        assert result.exit_code == 0, result.output
        assert {patient for patient, _ in rows(out)} == {"p2"}

    def test_period_is_required_and_parsed(self, settings):
        result = runner.invoke(cli(), ["adherence", "--db", settings.database_url])
        assert result.exit_code != 0
        assert "--period" in result.output
        result = runner.invoke(cli(), ["adherence", "--period", "last year"])
        assert result.exit_code != 0


class TestOutreachCommand:
    def test_dry_run_then_write_then_rerun(self, engine, settings):
        load(engine)
        args = ["adherence", "outreach", "--as-of", "2025-07-14", "--db", settings.database_url]
        dry = runner.invoke(cli(), [*args, "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert "pharmacist follow-ups" in dry.output
        assert "written" not in dry.output
        first = runner.invoke(cli(), args)
        assert first.exit_code == 0, first.output
        assert "Communications written" in first.output
        again = runner.invoke(cli(), args)
        assert again.exit_code == 0
        assert "already present" in again.output
        with engine.connect() as conn:
            from carebridge.fhir.search.parse import parse_search

            page = FhirStore(conn).search(parse_search(["Communication"], [("_summary", "count")]))
        assert page.total == 3

    def test_bad_date(self, settings):
        result = runner.invoke(cli(), ["adherence", "outreach", "--as-of", "14/07/2025"])
        assert result.exit_code != 0


def write(engine: Any, resources: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        FhirStore(conn).write(
            [WriteOp(Method.PUT, r["resourceType"], r["id"], r) for r in resources]
        )


def score(settings: Any, tmp_path: Any) -> dict[tuple[str, str], dict[str, str]]:
    out = tmp_path / "report.csv"
    result = runner.invoke(
        cli(), ["adherence", "--period", "2025", "--out", str(out), "--db", settings.database_url]
    )
    assert result.exit_code == 0, result.output
    return rows(out)


class TestPopulationReadsTheClinicalRecord:
    """The same exclusion and stay rules as `Patient/$adherence` (docs/clinical.md)."""

    def test_an_esrd_diagnosis_excludes_the_patient(self, engine, settings, tmp_path):
        load(engine)
        esrd = {
            "resourceType": "Condition",
            "id": "p1-esrd",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": "active",
                    }
                ]
            },
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "N18.6"}]},
            "subject": {"reference": "Patient/p1"},
            "onsetDateTime": "2025-02-01",
        }
        write(engine, [esrd])
        found = score(settings, tmp_path)
        assert found[("p1", "PDC-RASA")]["exclusion_reason"] == "esrd"
        # ESRD excludes from all three measures here (docs/clinical.md, Measure.excludes_esrd)
        assert found[("p1", "PDC-STA")]["exclusion_reason"] == "esrd"
        assert found[("p2", "PDC-RASA")]["exclusion_reason"] == "sacubitril-valsartan"

    def test_an_inpatient_stay_is_taken_out_of_the_period(self, engine, settings, tmp_path):
        load(engine)
        before = score(settings, tmp_path)[("p1", "PDC-STA")]
        stay = {
            "resourceType": "Encounter",
            "id": "p1-stay",
            "status": "finished",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "IMP",
            },
            "subject": {"reference": "Patient/p1"},
            "period": {"start": "2025-06-01", "end": "2025-06-10"},
        }
        write(engine, [stay])
        after = score(settings, tmp_path)[("p1", "PDC-STA")]
        assert int(after["days_in_period"]) == int(before["days_in_period"]) - 10
