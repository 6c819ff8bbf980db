"""Bulk Data endpoints: $export kick-off (system, Patient, Group), status polling, NDJSON files,
and an NDJSON $import. Mounted before the generic /fhir routes so `$export` is not read as a type.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from carebridge.fhir import bulk_export
from carebridge.fhir.bulk_export import ExportRequest
from carebridge.fhir.bulk_load import DeadLetter, LoadReport, Record, load_records
from carebridge.fhir.endpoints import parse_since, settings_of
from carebridge.fhir.guard import Interaction
from carebridge.fhir.http import NDJSON, fhir_response
from carebridge.fhir.unit_of_work import Access, authorize, base_url, guard_of, in_transaction
from carebridge.fhir.validation import known_type
from carebridge.kit.errors import (
    AppError,
    InvalidRequestError,
    Issue,
    NotFoundError,
    operation_outcome,
)
from carebridge.kit.jobs import JobRunner

router = APIRouter(prefix="/fhir")


def _export_dir(request: Request) -> Path:
    return Path(settings_of(request).export_dir)


def _export_request(request: Request, level: str, group_id: str | None = None) -> ExportRequest:
    params = request.query_params
    bulk_export.check_output_format(params.get("_outputFormat"))
    if "_typeFilter" in params:
        raise InvalidRequestError("_typeFilter is not supported")
    types = tuple(t for t in params.get("_type", "").split(",") if t)
    for t in types:
        if not known_type(t):
            raise InvalidRequestError(f"_type {t!r} is not an R4 resource type")
    return ExportRequest(
        level, types, parse_since(params.get("_since")), group_id, str(request.url)
    )


async def _kick_off(request: Request, export: ExportRequest) -> Response:
    access = Access(Interaction.SEARCH_SYSTEM)
    scoped = replace(export, scope=authorize(request, access), owner=_owner(request))
    job_id = await in_transaction(
        request, access, lambda store: bulk_export.kick_off(store.conn, scoped)
    )
    schedule_export(request.app.state, job_id, base_url(request))
    status_url = f"{base_url(request)}/$export-poll-status/{job_id}"
    return Response(status_code=202, headers={"Content-Location": status_url})


def _owner(request: Request) -> str:
    """Export jobs run in the background with their requester's scope (what they may see, in
    SQL, as for a search); only the requester may poll, cancel and download."""
    return guard_of(request).principal()


def schedule_export(state: object, job_id: str, fhir_base: str) -> None:
    jobs: JobRunner = state.jobs  # type: ignore[attr-defined]
    engine = state.engine  # type: ignore[attr-defined]
    folder = Path(state.settings.export_dir)  # type: ignore[attr-defined]
    jobs.submit(
        f"export {job_id}",
        lambda: bulk_export.run_export(engine, job_id, folder, f"{fhir_base}/$export-file"),
    )


@router.get("/$export")
async def export_system(request: Request) -> Response:
    return await _kick_off(request, _export_request(request, "system"))


@router.get("/Patient/$export")
async def export_patients(request: Request) -> Response:
    return await _kick_off(request, _export_request(request, "patient"))


@router.get("/Group/{group_id}/$export")
async def export_group(request: Request, group_id: str) -> Response:
    access = Access(Interaction.READ, ("Group",))
    await in_transaction(request, access, lambda store: store.read("Group", group_id))
    return await _kick_off(request, _export_request(request, "group", group_id))


@router.get("/$export-poll-status/{job_id}")
async def export_status(request: Request, job_id: str) -> Response:
    access = Access(Interaction.OPERATION)
    job = await in_transaction(
        request, access, lambda store: bulk_export.job_row(store.conn, job_id, _owner(request))
    )
    status, manifest, progress = bulk_export.manifest_or_progress(job)
    if status == 200:
        return Response(content=_json(manifest), status_code=200, media_type="application/json")
    if status == 500:
        error = AppError(500, "exception", f"export failed: {progress}")
        return fhir_response(error.to_operation_outcome(), 500)
    return Response(status_code=202, headers={"X-Progress": progress or "", "Retry-After": "1"})


@router.delete("/$export-poll-status/{job_id}")
async def export_cancel(request: Request, job_id: str) -> Response:
    authorize(request, Access(Interaction.OPERATION))
    bulk_export.cancel(request.app.state.engine, job_id, _export_dir(request), _owner(request))
    return Response(status_code=202)


@router.get("/$export-file/{job_id}/{file_name}")
async def export_file(request: Request, job_id: str, file_name: str) -> Response:
    authorize(request, Access(Interaction.OPERATION))
    with request.app.state.engine.connect() as conn:
        bulk_export.job_row(conn, job_id, _owner(request))
    path = _export_dir(request) / job_id / file_name
    if "/" in file_name or ".." in file_name or not path.is_file():
        raise NotFoundError(f"no export file {job_id}/{file_name}")
    return FileResponse(path, media_type=NDJSON)


@router.post("/$import")
async def import_ndjson(request: Request) -> Response:
    """Load an NDJSON body (one resource per line) through the bulk path; returns a summary."""
    media = request.headers.get("content-type", "").split(";")[0].strip()
    access = Access(Interaction.CREATE, also=((Interaction.UPDATE, "*"),))
    authorize(request, access)
    if media not in (NDJSON, "application/ndjson", "application/x-ndjson"):
        raise AppError(415, "not-supported", "$import takes an application/fhir+ndjson body")
    raw = await request.body()
    if len(raw) > settings_of(request).max_request_bytes:
        raise AppError(413, "too-costly", "the NDJSON body is larger than the request limit")
    report = LoadReport()
    records = list(_records(raw, report))
    engine = request.app.state.engine
    loaded = await run_in_threadpool(load_records, engine, records)
    report.merge(loaded)
    await in_transaction(request, access, lambda _store: None)  # the import's AuditEvent
    issues = [
        Issue("information", "informational", f"{rtype}: {n} {outcome}")
        for (rtype, outcome), n in sorted(report.outcomes.items())
    ]
    issues += [Issue("error", "invalid", f"{d.source}: {d.reason}") for d in report.dead_letters]
    status = 200 if not report.dead_letters else 207 if report.stored else 400
    return fhir_response(
        operation_outcome(issues or [Issue("information", "informational", "nothing to load")]),
        status,
    )


def _records(raw: bytes, report: LoadReport) -> list[Record]:
    out = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(Record(f"line {number}", orjson.loads(line)))
        except orjson.JSONDecodeError as exc:
            report.dead_letters.append(DeadLetter(f"line {number}", f"not valid JSON: {exc}"))
    return out


def _json(value: object) -> bytes:
    return orjson.dumps(value)
