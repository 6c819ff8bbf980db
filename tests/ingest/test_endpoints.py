"""`POST /ingest/dispensing` and `POST /ingest/claims`: multipart uploads through the pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from carebridge.app import create_app
from carebridge.config import Settings
from carebridge.fhir.http import error_response
from carebridge.ingest import uploads
from carebridge.ingest.endpoints import router
from carebridge.kit.errors import AppError
from tests.conftest import bearer, poll_async
from tests.ingest.conftest import CLAIM, claims


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    """The router alone on an app with the store's error handling: authentication is the
    access layer's (docs/ingest.md), so these tests do not depend on how app.py mounts it."""
    app = FastAPI()
    app.state.engine = engine
    app.include_router(router)

    @app.exception_handler(AppError)
    async def app_error(_request: Request, exc: AppError) -> Response:
        return error_response(exc)

    with TestClient(app) as test_client:
        yield test_client


def upload(client: TestClient, feed: str, path: Path) -> dict[str, object]:
    with path.open("rb") as handle:
        response = client.post(f"/ingest/{feed}", files={"file": (path.name, handle, "text/csv")})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_an_uploaded_dispensing_file_is_ingested_and_a_second_upload_changes_nothing(
    client: TestClient, population: Path
) -> None:
    source = population / "dispensing.csv"
    rows = len(source.read_text().splitlines()) - 1
    first = upload(client, "dispensing", source)
    assert (first["file_name"], first["rows"], first["stored"]) == ("dispensing.csv", rows, rows)
    outcomes = first["outcomes"]
    assert isinstance(outcomes, dict)
    assert outcomes["MedicationDispense"] == {"created": rows}
    again = upload(client, "dispensing", source)
    assert again["run_id"] != first["run_id"]
    repeated = again["outcomes"]
    assert isinstance(repeated, dict)
    assert {o for per_type in repeated.values() for o in per_type} == {"unchanged"}


def test_the_response_lists_dead_letters_by_line(client: TestClient, tmp_path: Path) -> None:
    path = claims(tmp_path / "claims.csv", CLAIM, {**CLAIM, "claim_id": "C2", "diagnosis_1": "?"})
    body = upload(client, "claims", path)
    assert (body["stored"], body["dead_letter_count"]) == (1, 1)
    assert body["dead_letters"] == [{"line": 3, "reason": "diagnosis_1: not an ICD-10-CM code"}]
    assert body["patient_matching"] == {"unmatched": 1}


def test_a_file_of_another_feed_is_an_operation_outcome(
    client: TestClient, population: Path
) -> None:
    with (population / "dispensing.csv").open("rb") as handle:
        response = client.post("/ingest/claims", files={"file": ("x.csv", handle, "text/csv")})
    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "not a payer-claims file" in outcome["issue"][0]["diagnostics"]


def test_the_mounted_uploads_need_a_token_that_may_create_every_type(
    settings: Settings, tmp_path: Path
) -> None:
    app = create_app(settings)
    path = claims(tmp_path / "claims.csv", CLAIM)
    with TestClient(app) as mounted:

        def post(headers: dict[str, str]) -> int:
            with path.open("rb") as handle:
                files = {"file": (path.name, handle, "text/csv")}
                return mounted.post("/ingest/claims", files=files, headers=headers).status_code

        assert post({}) == 401
        assert post(bearer(settings, "system/Patient.c")) == 403
        assert post(bearer(settings, "system/*.c")) == 200
    app.state.engine.dispose()


# -- asynchronous uploads (Prefer: respond-async) --------------------------------------------------


def test_an_async_upload_answers_202_and_its_job_gives_the_same_summary(
    settings: Settings, population: Path, tmp_path: Path
) -> None:
    app = create_app(settings.model_copy(update={"upload_dir": tmp_path / "uploads"}))
    admin = bearer(settings, "system/*.cruds")
    source = population / "dispensing.csv"
    rows = len(source.read_text().splitlines()) - 1
    with TestClient(app) as api, source.open("rb") as handle:
        response = api.post(
            "/ingest/dispensing",
            files={"file": (source.name, handle, "text/csv")},
            headers={**admin, "Prefer": "respond-async"},
        )
        assert response.status_code == 202, response.text
        status_url = response.headers["Content-Location"]
        assert "/ingest/jobs/" in status_url
        summary = poll_async(api, status_url, admin, timeout=60)
        other = bearer(settings, "system/*.cruds", fhir_user="Practitioner/someone")
        assert api.get(status_url, headers=other).status_code == 404  # not the uploader
    app.state.engine.dispose()
    assert (summary["file_name"], summary["rows"], summary["stored"]) == (
        "dispensing.csv",
        rows,
        rows,
    )
    assert list((tmp_path / "uploads").iterdir()) == []  # the kept file is gone once done


def test_an_upload_job_left_by_a_stopped_server_runs_at_the_next_start(
    settings: Settings, tmp_path: Path
) -> None:
    path = claims(tmp_path / "claims.csv", CLAIM)
    custom = settings.model_copy(update={"upload_dir": tmp_path / "uploads"})
    admin = bearer(settings, "system/*.cruds")
    first = create_app(custom)
    with TestClient(first) as api:  # a job recorded but never run, as after a crash
        owner = "test-client - -"
        job_id = uploads.accept(
            first.state.engine, custom.upload_dir, "claims", "c.csv", path, owner
        )
    first.state.engine.dispose()
    second = create_app(custom)
    with TestClient(second) as api:
        summary = poll_async(api, f"/ingest/jobs/{job_id}", admin, timeout=60)
    second.state.engine.dispose()
    assert (summary["file_name"], summary["stored"]) == ("c.csv", 1)


def test_an_unknown_feed_is_refused_with_an_operation_outcome(
    settings: Settings, tmp_path: Path
) -> None:
    app = create_app(settings)
    path = claims(tmp_path / "claims.csv", CLAIM)
    with TestClient(app) as mounted, path.open("rb") as handle:
        response = mounted.post(
            "/ingest/labs",
            files={"file": (path.name, handle, "text/csv")},
            headers=bearer(settings, "system/*.cruds"),
        )
    app.state.engine.dispose()
    assert response.status_code in (400, 422)
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "dispensing" in str(outcome)
