"""Feed uploads ingested in the background: the asynchronous form of `POST /ingest/{feed}`.

A store's nightly file can hold a million rows, more than an HTTP request should wait for. With
`Prefer: respond-async` (the FHIR asynchronous request pattern,
http://hl7.org/fhir/R4/async.html) the upload is kept under `upload_dir`, a job is recorded
(`bulk_job`, kind `ingest`) and the answer is 202 with the job's status URL in
`Content-Location`. The job runs the same pipeline as `carebridge ingest` (batches, checkpoints,
dead letters); polling the status URL answers 202 while it runs and 200 with the run summary once
it has finished. A server that stops mid-job runs it again at startup, and the pipeline resumes
after the last committed batch, so nothing is lost or stored twice. The file is deleted when its
job has finished.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from carebridge.ingest import service as ingest_service
from carebridge.ingest.pipeline import IngestOptions
from carebridge.ingest.repository import IngestRepository
from carebridge.ingest.schemas import IngestRunRead
from carebridge.kit.clock import utc_now
from carebridge.kit.errors import NotFoundError
from carebridge.kit.ids import new_id

SHOWN_DEAD_LETTERS = 100


def accept(
    engine: Engine, upload_dir: Path, feed: str, file_name: str, spooled: Path, owner: str
) -> str:
    """Keep the spooled upload under `upload_dir` and record its job; returns the job id."""
    job_id = new_id()
    upload_dir.mkdir(parents=True, exist_ok=True)
    kept = upload_dir / f"{job_id}.csv"
    shutil.move(spooled, kept)
    request = {"feed": feed, "file_name": file_name, "path": str(kept.resolve()), "owner": owner}
    with engine.begin() as conn:
        IngestRepository(conn).add_upload_job(job_id, request, utc_now())
    return job_id


def ingest_now(engine: Engine, feed: str, path: Path, file_name: str) -> IngestRunRead:
    """Run the pipeline over one file in this thread; the summary with the first dead letters."""
    options = IngestOptions(workers=0, tune_gc=False)
    report = ingest_service.ingest_feed(engine, feed, path, file_name=file_name, options=options)
    letters = ingest_service.dead_letters(engine, report.run_id, SHOWN_DEAD_LETTERS)
    return IngestRunRead.from_report(report, letters)


def run_job(engine: Engine, job_id: str) -> None:
    """Run one upload job (in the job runner); its state and summary go to its record."""
    with engine.begin() as conn:
        repo = IngestRepository(conn)
        job = repo.upload_job(job_id)
        if job is None or job["status"] not in ("queued", "running"):
            return
        repo.set_upload_job(job_id, "running")
    request: dict[str, Any] = job["request"]
    path = Path(request["path"])
    try:
        summary = ingest_now(engine, request["feed"], path, request["file_name"])
    except Exception as exc:
        _finish(engine, job_id, "failed", None, f"the ingest run failed ({type(exc).__name__})")
        raise
    _finish(engine, job_id, "complete", summary.model_dump(), None)
    path.unlink(missing_ok=True)


def _finish(
    engine: Engine, job_id: str, status: str, result: dict[str, Any] | None, error: str | None
) -> None:
    with engine.begin() as conn:
        IngestRepository(conn).set_upload_job(
            job_id, status, result=result, error=error, finished=utc_now()
        )


def job_status(engine: Engine, job_id: str, owner: str) -> dict[str, Any]:
    """The job as its uploader may see it; 404 for another caller's job or an unknown id."""
    with engine.connect() as conn:
        job = IngestRepository(conn).upload_job(job_id)
    if job is None or job["request"].get("owner") != owner:
        raise NotFoundError(f"no ingest job {job_id}")
    return job


def pending(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return IngestRepository(conn).pending_upload_jobs()
