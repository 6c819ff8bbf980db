"""The CSV and provider-record pipelines on SQLite and PostgreSQL: stored resources, idempotent
re-runs, dead letters, checkpoints and resumption, and patient matching across feeds."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine

from carebridge.fhir.bulk_indexes import ensure_indexes
from carebridge.ingest import identity
from carebridge.ingest import service as ingest_service
from carebridge.ingest.identity import new_patient_id
from carebridge.ingest.pipeline import IngestOptions
from carebridge.ingest.records import Identifier, IngestReport
from carebridge.ingest.sources.delimited import FeedFormatError
from carebridge.ingest.sources.fhir import ingest_fhir
from tests.ingest.conftest import (
    CLAIM,
    FILL,
    claims,
    contents,
    counts,
    fills,
    snapshot,
    twin,
    wipe,
)

OPTIONS = IngestOptions(batch_size=50, workers=0, analyze=False)


def column(path: Path, name: str) -> list[str]:
    with path.open(newline="") as handle:
        return [row[name] for row in csv.DictReader(handle)]


def ingest(engine: Engine, feed: str, path: Path, workers: int = 0) -> IngestReport:
    chosen = replace(OPTIONS, workers=workers)
    return ingest_service.ingest_feed(engine, feed, path, options=chosen)


class TestDirectory:
    def test_every_feed_is_stored_against_the_provider_patients_once(
        self, engine: Engine, population: Path
    ) -> None:
        reports = ingest_service.ingest_directory(engine, population, options=OPTIONS)
        assert [r.feed for r in reports] == ["provider-fhir", "pharmacy-dispensing", "payer-claims"]
        assert [r.failed for r in reports] == [0, 0, 0]
        found = counts(engine)
        assert found["Patient"] == 30
        assert found["MedicationDispense"] == len(
            column(population / "dispensing.csv", "fill_date")
        )
        assert found["ExplanationOfBenefit"] == len(column(population / "claims.csv", "claim_id"))
        patients = {f"Patient/{p['id']}" for p in contents(engine, "Patient")}
        dispensed = {d["subject"]["reference"] for d in contents(engine, "MedicationDispense")}
        billed = {e["patient"]["reference"] for e in contents(engine, "ExplanationOfBenefit")}
        assert dispensed | billed <= patients
        assert not any(r.issues for r in reports)
        self.then_a_second_run_stores_nothing_new(engine, population)

    def then_a_second_run_stores_nothing_new(self, engine: Engine, population: Path) -> None:
        before = snapshot(engine)
        again = ingest_service.ingest_directory(engine, population, options=OPTIONS)
        assert snapshot(engine) == before
        # A visit's Encounter is written again when a later batch brings another of its claims.
        assert {v for (t, _), (v, _) in before.items() if t != "Encounter"} == {1}
        assert {outcome for r in again for _, outcome in r.outcomes} == {"unchanged"}


ER_FACILITY = {
    **CLAIM,
    "claim_id": "CLM20",
    "bill_type": "0131",
    "place_of_service": "23",
    "service_date": "2025-05-02",
    "discharge_date": "",
    "discharge_status": "",
    "diagnosis_1": "J06.9",
    "diagnosis_2": "",
    "procedure_code": "99284",
    "revenue_code": "0450",
}
ER_PHYSICIAN = {
    **ER_FACILITY,
    "claim_id": "CLM21",
    "claim_type": "professional",
    "bill_type": "",
    "provider_npi": "1245319599",
    "diagnosis_1": "J06.9",
    "diagnosis_2": "R50.9",
    "revenue_code": "",
}
OFFICE = {**ER_PHYSICIAN, "claim_id": "CLM22", "place_of_service": "11", "procedure_code": "99213"}


class TestVisits:
    """The facility and physician claims of one ER visit share its Encounter, whatever their
    order and batches; an office claim the same day keeps its own."""

    @pytest.mark.parametrize("order", ["facility-first", "physician-first"])
    @pytest.mark.parametrize("batch_size", [1, 50])
    def test_one_encounter_per_visit(
        self, engine: Engine, tmp_path: Path, order: str, batch_size: int
    ) -> None:
        visit = (
            [ER_FACILITY, ER_PHYSICIAN]
            if order == "facility-first"
            else [ER_PHYSICIAN, ER_FACILITY]
        )
        path = claims(tmp_path / "claims.csv", *visit, OFFICE)
        options = replace(OPTIONS, batch_size=batch_size)
        ingest_service.ingest_feed(engine, "claims", path, options=options)
        encounters = {e["class"]["code"]: e for e in contents(engine, "Encounter")}
        assert sorted(encounters) == ["AMB", "EMER"]
        er = encounters["EMER"]
        assert [i["value"] for i in er["identifier"]] == ["SYN04-CLM20", "SYN04-CLM21"]
        assert er["period"] == {"start": "2025-05-02", "end": "2025-05-02"}
        assert er["serviceProvider"]["identifier"]["value"] == CLAIM["provider_npi"]
        assert [p["individual"]["identifier"]["value"] for p in er["participant"]] == ["1245319599"]
        assert len(er["diagnosis"]) == 3  # J06.9 on both claims, R50.9 on the physician's
        conditions = {c["id"]: c for c in contents(engine, "Condition")}
        cited = {d["condition"]["reference"].split("/")[1] for d in er["diagnosis"]}
        assert cited <= conditions.keys()
        benefits = contents(engine, "ExplanationOfBenefit")
        visit_eobs = [
            b
            for b in benefits
            if b["item"][0]["encounter"][0]["reference"] == f"Encounter/{er['id']}"
        ]
        assert len(visit_eobs) == 2
        before = snapshot(engine)
        ingest_service.ingest_feed(engine, "claims", path, options=replace(options, resume=False))
        assert snapshot(engine) == before

    def test_the_visit_is_the_same_whatever_the_order(self, engine: Engine, tmp_path: Path) -> None:
        stored = []
        for visit in ([ER_FACILITY, ER_PHYSICIAN], [ER_PHYSICIAN, ER_FACILITY]):
            wipe(engine)
            path = claims(tmp_path / "claims.csv", *visit)
            ingest_service.ingest_feed(
                engine, "claims", path, options=replace(OPTIONS, batch_size=1)
            )
            stored.append({k: c for k, (_, c) in snapshot(engine).items()})
        assert stored[0] == stored[1]


class TestDeadLetters:
    def test_bad_rows_are_dead_lettered_with_line_and_reason(
        self, engine: Engine, tmp_path: Path
    ) -> None:
        path = fills(
            tmp_path / "dispensing.csv",
            FILL,
            {**FILL, "refill_number": "2", "fill_date": "2025-02-30"},
            {**FILL, "refill_number": "3"},
        )
        with path.open("ab") as handle:
            handle.write(b"PM1,Ann,Smith\n")
            handle.write(",".join(["PM\xff", *list(FILL.values())[1:]]).encode("latin-1") + b"\n")
        report = ingest(engine, "dispensing", path)
        assert (report.rows, report.loaded, report.failed) == (5, 2, 3)
        letters = ingest_service.dead_letters(engine, report.run_id)
        assert [(d.line, d.reason) for d in letters] == [
            (3, "fill_date: not a date (YYYY-MM-DD)"),
            (5, "row: 3 fields, the feed has 22"),
            (6, "row: not valid UTF-8"),
        ]
        assert letters[0].row is not None
        assert letters[0].row.split(",")[16] == "2025-02-30"
        assert counts(engine)["MedicationDispense"] == 2

    def test_a_file_with_another_header_is_refused_before_anything_is_written(
        self, engine: Engine, tmp_path: Path
    ) -> None:
        path = claims(tmp_path / "claims.csv", CLAIM)
        with pytest.raises(FeedFormatError, match="not a pharmacy-dispensing file"):
            ingest(engine, "dispensing", path)
        assert ingest_service.runs(engine) == []


class TestResume:
    def test_a_stopped_run_resumes_after_its_checkpoint_to_the_same_store(
        self, engine: Engine, population: Path
    ) -> None:
        source = population / "dispensing.csv"
        ingest(engine, "dispensing", source)
        clean = snapshot(engine)
        wipe(engine)
        batches: list[int] = []

        def stop_after_two_batches(rows: int) -> None:
            batches.append(rows)
            if len(batches) == 2:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            ingest_service.ingest_feed(
                engine, "dispensing", source, options=OPTIONS, progress=stop_after_two_batches
            )
        assert counts(engine)["MedicationDispense"] == 100
        (stopped,) = ingest_service.runs(engine)
        assert (stopped.status, stopped.totals.last_line) == ("failed", 101)
        resumed = ingest(engine, "dispensing", source)
        assert (resumed.run_id, resumed.resumed_after) == (stopped.run_id, 101)
        assert resumed.rows == len(column(source, "fill_date"))
        assert snapshot(engine) == clean

    def test_worker_processes_give_the_same_store(self, engine: Engine, population: Path) -> None:
        ingest(engine, "dispensing", population / "dispensing.csv")
        in_process = snapshot(engine)
        wipe(engine)
        ingest(engine, "dispensing", population / "dispensing.csv", workers=1)
        assert snapshot(engine) == in_process

    def test_deferring_the_lookup_indexes_gives_the_same_store(
        self, engine: Engine, population: Path
    ) -> None:
        ingest(engine, "dispensing", population / "dispensing.csv")
        kept = snapshot(engine)
        wipe(engine)
        deferred = replace(OPTIONS, defer_indexes=True)
        ingest_service.ingest_feed(
            engine, "dispensing", population / "dispensing.csv", options=deferred
        )
        assert snapshot(engine) == kept
        assert ensure_indexes(engine) == []  # every index is back


class TestMatchingAcrossFeeds:
    def test_claims_find_pharmacy_patients_by_the_payer_member_id(
        self, engine: Engine, population: Path
    ) -> None:
        ingest(engine, "dispensing", population / "dispensing.csv")
        report = ingest(engine, "claims", population / "claims.csv")
        members = set(column(population / "claims.csv", "payer_member_id"))
        billed_fills = set(column(population / "dispensing.csv", "payer_member_id")) - {""}
        pharmacy = set(column(population / "dispensing.csv", "pharmacy_member_id"))
        assert report.issues == {"unmatched": len(members - billed_fills)}
        assert counts(engine)["Patient"] == len(pharmacy) + len(members - billed_fills)
        pharmacy_patients = {
            new_patient_id(Identifier(identity.PHARMACY_MEMBER, m)) for m in pharmacy
        }
        covered = {c["beneficiary"]["reference"][8:] for c in contents(engine, "Coverage")}
        assert len(covered & pharmacy_patients) == len(members & billed_fills)

    def test_provider_records_after_the_pharmacy_feed_are_reported_not_merged(
        self, engine: Engine, population: Path
    ) -> None:
        ingest(engine, "dispensing", population / "dispensing.csv")
        (report,) = ingest_fhir(engine, [population / "fhir"], options=OPTIONS)
        pharmacy = set(column(population / "dispensing.csv", "pharmacy_member_id"))
        assert counts(engine)["Patient"] == 30 + len(pharmacy)
        conflicts = ingest_service.match_issues(engine, report.run_id, ["conflict"], limit=1000)
        systems = {issue.identifier.split("|")[0] for issue in conflicts}
        assert identity.PHARMACY_MEMBER in systems
        reported = {issue.identifier.split("|")[1] for issue in conflicts}
        assert pharmacy <= reported

    def test_a_unique_demographic_match_attaches_and_is_reported(
        self, engine: Engine, tmp_path: Path
    ) -> None:
        ingest(engine, "dispensing", fills(tmp_path / "d.csv", {**FILL, "payer_member_id": ""}))
        ann = {"patient_first_name": "ANN", "patient_last_name": "smith", "patient_sex": "F"}
        row = {**CLAIM, **ann, "patient_birth_date": "1960-01-02", "payer_member_id": "09W1"}
        report = ingest(engine, "claims", claims(tmp_path / "c.csv", row))
        assert report.issues == {"demographic-match": 1}
        (coverage,) = contents(engine, "Coverage")
        patient = new_patient_id(Identifier(identity.PHARMACY_MEMBER, "PM100"))
        assert coverage["beneficiary"]["reference"] == f"Patient/{patient}"
        assert counts(engine)["Patient"] == 1

    def test_namesakes_are_ambiguous_and_not_merged(self, engine: Engine, tmp_path: Path) -> None:
        twins = tmp_path / "twins.ndjson"
        twins.write_bytes(b"".join(orjson.dumps(twin(n)) + b"\n" for n in ("a", "b")))
        ingest_fhir(engine, [twins], options=OPTIONS)
        row = {**CLAIM, "patient_first_name": "Ann", "patient_last_name": "Smith"}
        row |= {"patient_birth_date": "1960-01-02", "patient_sex": "F"}
        report = ingest(engine, "claims", claims(tmp_path / "c.csv", row))
        assert report.issues == {"ambiguous": 1}
        (issue,) = ingest_service.match_issues(engine, report.run_id, ["ambiguous"])
        assert issue.candidates == ("twin-a", "twin-b")
        assert counts(engine)["Patient"] == 3
