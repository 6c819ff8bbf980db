"""`POST /ingest/dispensing` and `POST /ingest/claims`: the CSV pipelines over an uploaded file.

The upload (multipart/form-data, field `file`) is spooled to a temporary file and ingested in the
request's worker thread, in this process (`workers=0`), with the same batching, checkpoints,
dead letters and patient matching as `carebridge ingest`; the response is the run's summary. The
same bytes uploaded again resume an unfinished run or, after a complete one, change nothing.

The router checks no credentials itself: access control is applied where it is mounted (app.py:
a token whose scopes allow creating every resource type; docs/ingest.md, docs/security.md).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path, PurePath
from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile

from carebridge.ingest import service as ingest_service
from carebridge.ingest.pipeline import IngestOptions
from carebridge.ingest.schemas import IngestRunRead

router = APIRouter(prefix="/ingest", tags=["ingest"])
Upload = Annotated[UploadFile, File(description="The feed's CSV file, header row first.")]
_SHOWN_DEAD_LETTERS = 100


@router.post("/dispensing", response_model=IngestRunRead)
def upload_dispensing(request: Request, file: Upload) -> IngestRunRead:
    """Ingest a pharmacy dispensing CSV (`feeds.DISPENSING`, one row per fill)."""
    return _ingest(request, "dispensing", file)


@router.post("/claims", response_model=IngestRunRead)
def upload_claims(request: Request, file: Upload) -> IngestRunRead:
    """Ingest a payer claims CSV (`feeds.CLAIMS`, one row per claim)."""
    return _ingest(request, "claims", file)


def _ingest(request: Request, feed: str, upload: UploadFile) -> IngestRunRead:
    engine = request.app.state.engine
    name = PurePath(upload.filename or f"{feed}.csv").name[:255] or f"{feed}.csv"
    with tempfile.TemporaryDirectory(prefix="carebridge-ingest-") as folder:
        path = Path(folder) / "upload.csv"
        with path.open("wb") as spool:
            shutil.copyfileobj(upload.file, spool)
        options = IngestOptions(workers=0, tune_gc=False)
        report = ingest_service.ingest_feed(engine, feed, path, file_name=name, options=options)
    letters = ingest_service.dead_letters(engine, report.run_id, _SHOWN_DEAD_LETTERS)
    return IngestRunRead.from_report(report, letters)
