"""Bulk Data $export (kick-off, polling, NDJSON files) and the bulk load path, incl. the round trip
load -> $export -> load into a fresh store."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import Engine, false, func, select

from carebridge.fhir.bulk_load import LoadReport, Record, bundle_order, load_records, read_ndjson
from carebridge.fhir.tables import metadata, resource
from tests.conftest import poll_async, synthea_dir
from tests.fhir.conftest import FHIR_JSON, put

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


def wait_for_manifest(client: TestClient, status_url: str) -> dict[str, Any]:
    return poll_async(client, status_url.replace("http://testserver", ""))


def download(client: TestClient, manifest: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    files: dict[str, list[dict[str, Any]]] = {}
    for output in manifest["output"]:
        response = client.get(output["url"].replace("http://testserver", ""))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/fhir+ndjson")
        lines = [orjson.loads(line) for line in response.text.splitlines() if line]
        assert len(lines) == output["count"]
        files[output["type"]] = lines
    return files


def load_synthea(client: TestClient) -> None:
    folder = synthea_dir()
    bundles = {p: orjson.loads(p.read_bytes()) for p in folder.glob("*.json")}
    for path in bundle_order(bundles):
        response = client.post(
            "/fhir", content=path.read_bytes(), headers={**FHIR_JSON, "Prefer": "return=minimal"}
        )
        assert response.status_code == 200, response.text


def counts_by_type(engine: Engine) -> Counter[str]:
    """Current, non-deleted resources per type (AuditEvents record the test's own accesses)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(resource.c.res_type, func.count())
            .where(resource.c.deleted == false(), resource.c.res_type != "AuditEvent")
            .group_by(resource.c.res_type)
        )
        return Counter({str(row[0]): int(row[1]) for row in rows})


class TestExportKickOff:
    def test_system_export_returns_202_with_a_status_url(self, client: TestClient) -> None:
        response = client.get("/fhir/$export", headers=ASYNC)
        assert response.status_code == 202
        assert "/fhir/$export-poll-status/" in response.headers["Content-Location"]

    def test_unsupported_output_format_is_400(self, client: TestClient) -> None:
        response = client.get("/fhir/$export", params={"_outputFormat": "text/csv"}, headers=ASYNC)
        assert response.status_code == 400
        assert response.json()["resourceType"] == "OperationOutcome"

    def test_unknown_type_is_400(self, client: TestClient) -> None:
        response = client.get("/fhir/$export", params={"_type": "Nonsense"}, headers=ASYNC)
        assert response.status_code == 400

    def test_group_export_of_unknown_group_is_404(self, client: TestClient) -> None:
        assert client.get("/fhir/Group/nope/$export", headers=ASYNC).status_code == 404

    def test_unknown_job_status_is_404(self, client: TestClient) -> None:
        assert client.get("/fhir/$export-poll-status/nope").status_code == 404


class TestExportContent:
    def test_type_and_since_filter_the_output(self, client: TestClient) -> None:
        put(client, {"resourceType": "Patient", "id": "p1"})
        put(client, {"resourceType": "Organization", "id": "o1", "name": "Store 7"})
        response = client.get("/fhir/$export", params={"_type": "Patient"}, headers=ASYNC)
        files = download(client, wait_for_manifest(client, response.headers["Content-Location"]))
        assert list(files) == ["Patient"]
        later = client.get(
            "/fhir/$export", params={"_since": "2999-01-01T00:00:00Z"}, headers=ASYNC
        )
        assert wait_for_manifest(client, later.headers["Content-Location"])["output"] == []

    def test_patient_and_group_export_stay_inside_the_compartments(
        self, client: TestClient
    ) -> None:
        put(client, {"resourceType": "Patient", "id": "a"})
        put(client, {"resourceType": "Patient", "id": "b"})
        for pid in ("a", "b"):
            put(
                client,
                {
                    "resourceType": "Observation",
                    "id": f"obs-{pid}",
                    "status": "final",
                    "code": {"text": "x"},
                    "subject": {"reference": f"Patient/{pid}"},
                },
            )
        put(client, {"resourceType": "Organization", "id": "org", "name": "not in a compartment"})
        put(
            client,
            {
                "resourceType": "Group",
                "id": "g",
                "type": "person",
                "actual": True,
                "member": [{"entity": {"reference": "Patient/a"}}],
            },
        )
        patient_level = client.get("/fhir/Patient/$export", headers=ASYNC)
        files = download(
            client, wait_for_manifest(client, patient_level.headers["Content-Location"])
        )
        assert "Organization" not in files
        assert sorted(r["id"] for r in files["Observation"]) == ["obs-a", "obs-b"]
        group_level = client.get(
            "/fhir/Group/g/$export", params={"_type": "Patient,Observation"}, headers=ASYNC
        )
        files = download(client, wait_for_manifest(client, group_level.headers["Content-Location"]))
        assert [r["id"] for r in files["Patient"]] == ["a"]
        assert [r["id"] for r in files["Observation"]] == ["obs-a"]

    def test_deleted_resources_are_not_exported(self, client: TestClient) -> None:
        put(client, {"resourceType": "Patient", "id": "keep"})
        put(client, {"resourceType": "Patient", "id": "drop"})
        client.delete("/fhir/Patient/drop")
        response = client.get("/fhir/$export", headers=ASYNC)
        files = download(client, wait_for_manifest(client, response.headers["Content-Location"]))
        assert [r["id"] for r in files["Patient"]] == ["keep"]

    def test_cancel_removes_the_job(self, client: TestClient) -> None:
        response = client.get("/fhir/$export", headers=ASYNC)
        path = response.headers["Content-Location"].replace("http://testserver", "")
        assert client.delete(path).status_code == 202
        assert client.get(path).status_code == 404


class TestRoundTrip:
    def test_synthea_load_export_reload_gives_the_same_counts(
        self, client: TestClient, engine: Engine, tmp_path: Path
    ) -> None:
        load_synthea(client)
        before = counts_by_type(engine)
        assert before["Patient"] == 13
        response = client.get("/fhir/$export", headers=ASYNC)
        files = download(client, wait_for_manifest(client, response.headers["Content-Location"]))
        exported = {t: len(rows) for t, rows in files.items() if t != "AuditEvent"}
        assert exported == dict(before)
        with engine.begin() as conn:  # a fresh store: empty every table
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
        records = [Record(t, r) for t, rows in files.items() for r in rows]
        report = load_records(engine, records, batch_size=250)
        assert report.dead_letters == []
        assert counts_by_type(engine) == before

    def test_reloading_ndjson_creates_no_new_versions(self, engine: Engine, tmp_path: Path) -> None:
        path = tmp_path / "patients.ndjson"
        path.write_bytes(
            b"\n".join(orjson.dumps({"resourceType": "Patient", "id": f"p{i}"}) for i in range(30))
        )
        first = load_records(engine, read_ndjson(path, LoadReport()), batch_size=7)
        second = load_records(engine, read_ndjson(path, LoadReport()), batch_size=7)
        assert first.outcomes[("Patient", "created")] == 30
        assert second.outcomes[("Patient", "unchanged")] == 30
        assert counts_by_type(engine)["Patient"] == 30


class TestBulkLoadDeadLetters:
    def test_bad_lines_are_dead_lettered_and_the_rest_loads(
        self, engine: Engine, tmp_path: Path
    ) -> None:
        path = tmp_path / "mixed.ndjson"
        path.write_text(
            '{"resourceType": "Patient", "id": "ok1"}\n'
            "{not json\n"
            '{"resourceType": "Nonsense", "id": "x"}\n'
            '{"resourceType": "Patient", "id": "bad id with spaces"}\n'
            '{"resourceType": "Patient", "id": "ok2"}\n'
        )
        report = LoadReport()
        report.merge(load_records(engine, read_ndjson(path, report), batch_size=2))
        assert report.outcomes[("Patient", "created")] == 2
        sources = sorted(d.source for d in report.dead_letters)
        assert sources == ["mixed.ndjson:2", "mixed.ndjson:3", "mixed.ndjson:4"]
        assert all(d.reason for d in report.dead_letters)


class TestImport:
    def test_import_loads_an_ndjson_body(self, client: TestClient) -> None:
        body = b'{"resourceType": "Patient", "id": "i1"}\n{"resourceType": "Patient", "id": "i2"}\n'
        response = client.post(
            "/fhir/$import", content=body, headers={"content-type": "application/fhir+ndjson"}
        )
        assert response.status_code == 200
        assert client.get("/fhir/Patient/i2").status_code == 200

    def test_import_reports_bad_lines_with_207(self, client: TestClient) -> None:
        body = b'{"resourceType": "Patient", "id": "i3"}\n{broken\n'
        response = client.post(
            "/fhir/$import", content=body, headers={"content-type": "application/fhir+ndjson"}
        )
        assert response.status_code == 207
        assert any("line 2" in i["diagnostics"] for i in response.json()["issue"])
