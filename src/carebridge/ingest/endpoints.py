"""`POST /ingest/dispensing` and `POST /ingest/claims`: the CSV pipelines over an uploaded file.

The upload (multipart/form-data, field `file`) is spooled to a temporary file and ingested with
the same batching, checkpoints, dead letters and patient matching as `carebridge ingest`. By
default the request waits and the response is the run's summary. With `Prefer: respond-async`
(large files) the answer is 202 at once, with `Content-Location: .../ingest/jobs/{id}`; polling
that URL gives 202 (with `X-Progress`) while the job runs and 200 with the same summary once it
has finished (uploads.py). The same bytes uploaded again resume an unfinished run or, after a
complete one, change nothing.

The router checks no credentials itself: access control is applied where it is mounted (app.py:
a token whose scopes allow creating every resource type; docs/ingest.md, docs/security.md).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Header, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from carebridge.fhir.unit_of_work import guard_of
from carebridge.ingest import uploads
from carebridge.ingest.schemas import IngestRunRead
from carebridge.kit.errors import AppError
from carebridge.kit.jobs import JobRunner

router = APIRouter(prefix="/ingest", tags=["ingest"])
Upload = Annotated[UploadFile, File(description="The feed's CSV file, header row first.")]
Feed = Literal["dispensing", "claims"]
Prefer = Annotated[
    str | None,
    Header(description="`respond-async`: answer 202 at once and ingest in the background."),
]


@router.post(
    "/{feed}",
    response_model=IngestRunRead,
    responses={202: {"description": "accepted; poll the Content-Location URL"}},
)
def upload_feed(
    request: Request, feed: Feed, file: Upload, prefer: Prefer = None
) -> IngestRunRead | Response:
    """Ingest a pharmacy dispensing CSV (`feeds.DISPENSING`, one row per fill) or a payer claims
    CSV (`feeds.CLAIMS`, one row per claim)."""
    return _ingest(request, feed, file, prefer)


@router.get(
    "/jobs/{job_id}",
    response_model=IngestRunRead,
    responses={202: {"description": "still running"}},
)
def upload_job(request: Request, job_id: str) -> Any:
    """The state of an asynchronous upload: 202 while it runs, 200 with the run summary when it
    has finished, 500 with an OperationOutcome if it failed. Only its uploader may see it."""
    job = uploads.job_status(request.app.state.engine, job_id, guard_of(request).principal())
    if job["status"] == "complete":
        return JSONResponse(job["result"])
    if job["status"] == "failed":
        raise AppError(500, "exception", job["error"] or "the ingest run failed")
    return Response(status_code=202, headers={"X-Progress": job["status"]})


def _ingest(
    request: Request, feed: str, upload: UploadFile, prefer: str | None
) -> IngestRunRead | Response:
    engine = request.app.state.engine
    name = PurePath(upload.filename or f"{feed}.csv").name[:255] or f"{feed}.csv"
    with tempfile.TemporaryDirectory(prefix="carebridge-ingest-") as folder:
        path = Path(folder) / "upload.csv"
        with path.open("wb") as spool:
            shutil.copyfileobj(upload.file, spool)
        if not _wants_async(prefer):
            return uploads.ingest_now(engine, feed, path, name)
        owner = guard_of(request).principal()
        upload_dir = Path(request.app.state.settings.upload_dir)
        job_id = uploads.accept(engine, upload_dir, feed, name, path, owner)
    schedule_upload(request.app.state, job_id)
    location = f"{str(request.base_url).rstrip('/')}/ingest/jobs/{job_id}"
    return Response(status_code=202, headers={"Content-Location": location})


def _wants_async(prefer: str | None) -> bool:
    return any(p.strip() == "respond-async" for p in (prefer or "").split(","))


def schedule_upload(state: object, job_id: str) -> None:
    """Run an upload job in the server's job runner (also used to resume jobs at startup)."""
    jobs: JobRunner = state.jobs  # type: ignore[attr-defined]
    engine = state.engine  # type: ignore[attr-defined]
    jobs.submit(f"ingest {job_id}", lambda: uploads.run_job(engine, job_id))
