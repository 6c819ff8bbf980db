"""FHIR Bulk Data export (https://hl7.org/fhir/uv/bulkdata/export.html): system, Patient and Group
level, asynchronous, NDJSON files, `_type` and `_since`.

A kick-off inserts a `bulk_job` row; after commit the job runs on the job runner, streams each
resource type into `<export_dir>/<job>/<Type>.ndjson` and records the manifest. Status polling
reads the row, so a restarted server still answers for finished jobs and resumes queued ones.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, and_, false, select, update

from carebridge.fhir.guard import UNRESTRICTED, AccessScope, scope_from_json, scope_to_json
from carebridge.fhir.search.dates import instant_text
from carebridge.fhir.search.derived import compartment_index_params
from carebridge.fhir.search.parameters import patient_compartment
from carebridge.fhir.search.sql import scope_conditions
from carebridge.fhir.tables import bulk_job, resource, search_reference
from carebridge.kit.clock import utc_now
from carebridge.kit.errors import InvalidRequestError, NotFoundError
from carebridge.kit.ids import new_id

NDJSON_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")


@dataclass(frozen=True)
class ExportRequest:
    level: str  # system | patient | group
    types: tuple[str, ...]
    since: datetime | None
    group_id: str | None
    request_url: str
    scope: AccessScope = UNRESTRICTED  # the requester's: the export shows only what they may see
    owner: str = ""  # the requester (guard principal): only they may poll and download

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "types": list(self.types),
            "since": self.since.isoformat() if self.since else None,
            "group_id": self.group_id,
            "request_url": self.request_url,
            "scope": scope_to_json(self.scope),
            "owner": self.owner,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> ExportRequest:
        since = datetime.fromisoformat(data["since"]) if data.get("since") else None
        return ExportRequest(
            data["level"],
            tuple(data["types"]),
            since,
            data.get("group_id"),
            data["request_url"],
            scope_from_json(data.get("scope")),
            data.get("owner", ""),
        )


def check_output_format(value: str | None) -> None:
    if value is not None and value not in NDJSON_FORMATS:
        raise InvalidRequestError(
            f"_outputFormat {value!r} is not supported; use application/fhir+ndjson"
        )


def kick_off(conn: Connection, request: ExportRequest) -> str:
    job_id = new_id()
    conn.execute(
        bulk_job.insert().values(
            id=job_id, kind="export", status="queued", request=request.to_json(), created=_now()
        )
    )
    return job_id


def job_row(conn: Connection, job_id: str, owner: str | None = None) -> dict[str, Any]:
    """The job; 404 when it does not exist or (with `owner`) belongs to someone else."""
    row = conn.execute(
        select(bulk_job).where(bulk_job.c.id == job_id, bulk_job.c.kind == "export")
    ).first()
    if row is None or (owner is not None and (row.request or {}).get("owner", "") != owner):
        raise NotFoundError(f"no export job {job_id}")
    return dict(row._mapping)


def pending_jobs(conn: Connection) -> list[str]:
    rows = conn.execute(
        select(bulk_job.c.id).where(
            bulk_job.c.kind == "export", bulk_job.c.status.in_(("queued", "running"))
        )
    )
    return [r.id for r in rows]


def cancel(engine: Engine, job_id: str, export_dir: Path, owner: str | None = None) -> None:
    with engine.begin() as conn:
        job_row(conn, job_id, owner)
        conn.execute(bulk_job.delete().where(bulk_job.c.id == job_id))
    shutil.rmtree(export_dir / job_id, ignore_errors=True)


def run_export(engine: Engine, job_id: str, export_dir: Path, file_url: str) -> None:
    """Execute a queued export job; records `complete` with the manifest, or `failed`."""
    with engine.begin() as conn:
        job = job_row(conn, job_id)
        if job["status"] not in ("queued", "running"):
            return
        conn.execute(update(bulk_job).where(bulk_job.c.id == job_id).values(status="running"))
    request = ExportRequest.from_json(job["request"])
    started = _now()
    try:
        outputs = _write_files(engine, request, export_dir / job_id, f"{file_url}/{job_id}")
    except Exception as exc:
        _finish(engine, job_id, "failed", None, type(exc).__name__)
        raise
    manifest = {
        "transactionTime": instant_text(started),
        "request": request.request_url,
        "requiresAccessToken": True,
        "output": outputs,
        "error": [],
    }
    _finish(engine, job_id, "complete", manifest, None)


def _finish(
    engine: Engine, job_id: str, status: str, result: dict[str, Any] | None, error: str | None
) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(bulk_job)
            .where(bulk_job.c.id == job_id)
            .values(status=status, result=result, error=error, finished=_now())
        )


def _write_files(
    engine: Engine, request: ExportRequest, folder: Path, url: str
) -> list[dict[str, Any]]:
    folder.mkdir(parents=True, exist_ok=True)
    outputs = []
    with engine.connect() as conn:
        for res_type in _types(conn, request):
            count = _write_type(conn, request, res_type, folder / f"{res_type}.ndjson")
            if count:
                outputs.append(
                    {"type": res_type, "url": f"{url}/{res_type}.ndjson", "count": count}
                )
            else:
                (folder / f"{res_type}.ndjson").unlink(missing_ok=True)
    return outputs


def _types(conn: Connection, request: ExportRequest) -> list[str]:
    if request.types:
        return sorted(request.types)
    present = conn.execute(
        select(resource.c.res_type).where(resource.c.deleted == false()).distinct()
    )
    names = sorted(r.res_type for r in present)
    if request.level != "system":
        allowed = set(patient_compartment()) | {"Patient"}
        names = [n for n in names if n in allowed]
    return names


def _write_type(conn: Connection, request: ExportRequest, res_type: str, path: Path) -> int:
    statement = select(resource.c.content).where(
        resource.c.res_type == res_type, resource.c.deleted == false()
    )
    if request.since is not None:
        statement = statement.where(resource.c.last_updated >= request.since)
    if request.level != "system":
        statement = statement.where(_in_patient_compartments(conn, request, res_type))
    statement = statement.where(*scope_conditions(request.scope, [res_type]))
    count = 0
    with path.open("wb") as handle:
        result = conn.execution_options(stream_results=True, yield_per=2000).execute(
            statement.order_by(resource.c.pk)
        )
        for (content,) in result:
            handle.write(orjson.dumps(content))
            handle.write(b"\n")
            count += 1
    return count


def _in_patient_compartments(conn: Connection, request: ExportRequest, res_type: str) -> Any:
    """Patient/Group level: resources in the compartment of every (or every member) patient."""
    members = _group_members(conn, request.group_id) if request.level == "group" else None
    if res_type == "Patient":
        return resource.c.res_id.in_(members) if members is not None else resource.c.pk.is_not(None)
    params = compartment_index_params().get(res_type, ())
    ref = search_reference
    condition = and_(
        ref.c.res_type == res_type, ref.c.param.in_(params), ref.c.target_type == "Patient"
    )
    if members is not None:
        condition = and_(condition, ref.c.target_id.in_(members))
    return resource.c.pk.in_(select(ref.c.res_pk).where(condition))


def _group_members(conn: Connection, group_id: str | None) -> list[str]:
    row = conn.execute(
        select(resource.c.content).where(
            resource.c.res_type == "Group",
            resource.c.res_id == group_id,
            resource.c.deleted == false(),
        )
    ).first()
    if row is None:
        raise NotFoundError(f"Group/{group_id} is not known")
    members = []
    for member in (row.content or {}).get("member", []):
        reference = member.get("entity", {}).get("reference", "")
        if reference.startswith("Patient/"):
            members.append(reference.split("/", 1)[1])
    return members


def manifest_or_progress(job: dict[str, Any]) -> tuple[int, dict[str, Any] | None, str | None]:
    """(HTTP status, manifest, X-Progress) for a status poll."""
    if job["status"] == "complete":
        return 200, job["result"], None
    if job["status"] == "failed":
        return 500, None, job["error"]
    return 202, None, job["status"]


def _now() -> datetime:
    return utc_now().replace(tzinfo=None)
