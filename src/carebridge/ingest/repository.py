"""SQL for the ingest tables: runs and checkpoints, dead letters, the patient index and the
matching report. Each repository works inside its caller's transaction (ADR 0004)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from carebridge.fhir.tables import bulk_job
from carebridge.ingest.matching import MatchIssue
from carebridge.ingest.records import Identifier
from carebridge.ingest.tables import (
    ingest_checkpoint,
    ingest_dead_letter,
    ingest_match_issue,
    ingest_patient,
    ingest_patient_link,
    ingest_run,
)

RUNNING, COMPLETED, FAILED = "running", "completed", "failed"
_CHUNK = 500
_TOTALS = ("last_line", "batches", "rows_read", "rows_loaded", "rows_failed")


@dataclass(frozen=True)
class RunTotals:
    last_line: int = 1  # the header line: nothing committed yet
    batches: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_failed: int = 0


@dataclass(frozen=True)
class Run:
    run_id: str
    feed: str
    file_name: str
    file_hash: str
    status: str
    started: datetime
    finished: datetime | None
    totals: RunTotals


@dataclass(frozen=True)
class DeadLetter:
    line: int | None
    row: str | None
    reason: str


@dataclass(frozen=True)
class StoredDeadLetter:
    run_id: str
    file_name: str
    line: int | None
    row: str | None
    reason: str


@dataclass(frozen=True)
class StoredIssue:
    run_id: str
    file_name: str
    line: int | None
    kind: str
    identifier: str
    patient_id: str
    candidates: tuple[str, ...]


UPLOAD_JOB = "ingest"  # bulk_job.kind of feed uploads


class IngestRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- upload jobs (feed files ingested in the background) --------------------------------------
    def add_upload_job(self, job_id: str, request: dict[str, Any], now: datetime) -> None:
        self.conn.execute(
            insert(bulk_job).values(
                id=job_id, kind=UPLOAD_JOB, status="queued", request=request, created=now
            )
        )

    def upload_job(self, job_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            select(bulk_job).where(bulk_job.c.id == job_id, bulk_job.c.kind == UPLOAD_JOB)
        ).first()
        return dict(row._mapping) if row is not None else None

    def pending_upload_jobs(self) -> list[str]:
        rows = self.conn.execute(
            select(bulk_job.c.id)
            .where(bulk_job.c.kind == UPLOAD_JOB, bulk_job.c.status.in_(("queued", "running")))
            .order_by(bulk_job.c.created)
        )
        return [r.id for r in rows]

    def set_upload_job(
        self,
        job_id: str,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        finished: datetime | None = None,
    ) -> None:
        self.conn.execute(
            update(bulk_job)
            .where(bulk_job.c.id == job_id)
            .values(status=status, result=result, error=error, finished=finished)
        )

    # -- runs -----------------------------------------------------------------------------------
    def resumable_run(self, feed: str, file_hash: str) -> Run | None:
        """The latest unfinished run of this feed over the same bytes (crashed or failed)."""
        runs = self._runs(
            ingest_run.c.feed == feed,
            ingest_run.c.file_hash == file_hash,
            ingest_run.c.status != COMPLETED,
        )
        return runs[0] if runs else None

    def start_run(self, run: Run) -> None:
        self.conn.execute(
            insert(ingest_run).values(
                run_id=run.run_id,
                feed=run.feed,
                file_name=run.file_name,
                file_hash=run.file_hash,
                status=run.status,
                started=run.started,
            )
        )
        self.conn.execute(
            insert(ingest_checkpoint).values(
                run_id=run.run_id,
                file_name=run.file_name,
                file_hash=run.file_hash,
                updated=run.started,
                **_totals(run.totals),
            )
        )

    def save_checkpoint(self, run_id: str, totals: RunTotals, now: datetime) -> None:
        self.conn.execute(
            update(ingest_checkpoint)
            .where(ingest_checkpoint.c.run_id == run_id)
            .values(updated=now, **_totals(totals))
        )

    def set_status(self, run_id: str, status: str, now: datetime) -> None:
        finished = None if status == RUNNING else now
        self.conn.execute(
            update(ingest_run)
            .where(ingest_run.c.run_id == run_id)
            .values(status=status, finished=finished)
        )

    def run(self, run_id: str) -> Run | None:
        runs = self._runs(ingest_run.c.run_id == run_id)
        return runs[0] if runs else None

    def runs(self, limit: int = 20) -> list[Run]:
        return self._runs(limit=limit)

    def _runs(self, *conditions: Any, limit: int = 1) -> list[Run]:
        statement = (
            select(ingest_run, *(ingest_checkpoint.c[name] for name in _TOTALS))
            .join(ingest_checkpoint, ingest_checkpoint.c.run_id == ingest_run.c.run_id)
            .where(*conditions)
            .order_by(ingest_run.c.started.desc(), ingest_run.c.run_id)
            .limit(limit)
        )
        return [_run(row._mapping) for row in self.conn.execute(statement)]

    # -- dead letters ---------------------------------------------------------------------------
    def add_dead_letters(self, run: Run, letters: Sequence[DeadLetter], now: datetime) -> None:
        if letters:
            self.conn.execute(
                insert(ingest_dead_letter),
                [
                    {
                        "run_id": run.run_id,
                        "feed": run.feed,
                        "file_name": run.file_name,
                        "line": letter.line,
                        "row": letter.row,
                        "reason": letter.reason,
                        "created": now,
                    }
                    for letter in letters
                ],
            )

    def dead_letters(self, run_id: str | None = None, limit: int = 100) -> list[StoredDeadLetter]:
        table = ingest_dead_letter
        statement = select(table).order_by(table.c.pk).limit(limit)
        if run_id:
            statement = statement.where(table.c.run_id == run_id)
        return [
            StoredDeadLetter(r.run_id, r.file_name, r.line, r.row, r.reason)
            for r in self.conn.execute(statement)
        ]

    def dead_letter_count(self, run_id: str) -> int:
        table = ingest_dead_letter
        statement = select(func.count()).select_from(table).where(table.c.run_id == run_id)
        return int(self.conn.execute(statement).scalar_one())

    # -- patient index --------------------------------------------------------------------------
    def links_for(self, identifiers: Iterable[Identifier]) -> dict[Identifier, str]:
        """Patient ids of the identifiers that are linked (one indexed IN per system and chunk)."""
        by_system: dict[str, list[str]] = {}
        for identifier in dict.fromkeys(identifiers):
            by_system.setdefault(identifier.system, []).append(identifier.value)
        found: dict[Identifier, str] = {}
        link = ingest_patient_link
        for system, values in by_system.items():
            for start in range(0, len(values), _CHUNK):
                rows = self.conn.execute(
                    select(link.c.value, link.c.patient_id).where(
                        link.c.system == system, link.c.value.in_(values[start : start + _CHUNK])
                    )
                )
                found.update((Identifier(system, v), p) for v, p in rows)
        return found

    def patients_by_key(self, keys: Iterable[str]) -> dict[str, list[str]]:
        """Patient ids per demographic key, in id order."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, list[str]] = {}
        table = ingest_patient
        for start in range(0, len(wanted), _CHUNK):
            rows = self.conn.execute(
                select(table.c.demographic_key, table.c.patient_id)
                .where(table.c.demographic_key.in_(wanted[start : start + _CHUNK]))
                .order_by(table.c.patient_id)
            )
            for key, patient_id in rows:
                found.setdefault(key, []).append(patient_id)
        return found

    def add_links(self, links: Sequence[tuple[Identifier, str, str]], run_id: str) -> None:
        """Link (identifier, patient id, method) triples; identifiers already linked are kept."""
        known = self.links_for(identifier for identifier, _, _ in links)
        fresh = {i: (p, m) for i, p, m in links if i not in known}
        if fresh:
            self.conn.execute(
                insert(ingest_patient_link),
                [
                    {"system": i.system, "value": i.value, "patient_id": p, "method": m}
                    | {"run_id": run_id}
                    for i, (p, m) in fresh.items()
                ],
            )

    def add_patients(self, patients: Sequence[tuple[str, str | None, str]]) -> None:
        """Register (patient id, demographic key, feed) triples; known patients are kept."""
        ids = list(dict.fromkeys(p for p, _, _ in patients))
        known = {
            row.patient_id
            for start in range(0, len(ids), _CHUNK)
            for row in self.conn.execute(
                select(ingest_patient.c.patient_id).where(
                    ingest_patient.c.patient_id.in_(ids[start : start + _CHUNK])
                )
            )
        }
        fresh = {p: (k, f) for p, k, f in patients if p not in known}
        if fresh:
            self.conn.execute(
                insert(ingest_patient),
                [{"patient_id": p, "demographic_key": k, "feed": f} for p, (k, f) in fresh.items()],
            )

    # -- matching report ------------------------------------------------------------------------
    def add_issues(
        self, run: Run, issues: Sequence[tuple[int | None, MatchIssue]], now: datetime
    ) -> None:
        if issues:
            self.conn.execute(
                insert(ingest_match_issue),
                [_issue_row(run, line, issue, now) for line, issue in issues],
            )

    def issues(
        self, run_id: str | None = None, kinds: Sequence[str] = (), limit: int = 100
    ) -> list[StoredIssue]:
        table = ingest_match_issue
        statement = select(table).order_by(table.c.pk).limit(limit)
        if run_id:
            statement = statement.where(table.c.run_id == run_id)
        if kinds:
            statement = statement.where(table.c.kind.in_(kinds))
        return [_stored_issue(row._mapping) for row in self.conn.execute(statement)]

    def issue_counts(self, run_id: str) -> Counter[str]:
        table = ingest_match_issue
        rows = self.conn.execute(
            select(table.c.kind, func.count())
            .where(table.c.run_id == run_id)
            .group_by(table.c.kind)
        )
        return Counter({kind: int(n) for kind, n in rows})


def _totals(totals: RunTotals) -> dict[str, int]:
    return {name: getattr(totals, name) for name in _TOTALS}


def _run(row: Any) -> Run:
    totals = RunTotals(**{name: row[name] for name in _TOTALS})
    return Run(
        row["run_id"],
        row["feed"],
        row["file_name"],
        row["file_hash"],
        row["status"],
        row["started"],
        row["finished"],
        totals,
    )


def _issue_row(run: Run, line: int | None, issue: MatchIssue, now: datetime) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "feed": run.feed,
        "file_name": run.file_name,
        "line": line,
        "kind": issue.kind.value,
        "system": issue.identifier.system,
        "value": issue.identifier.value,
        "patient_id": issue.patient_id,
        "candidates": " ".join(issue.candidates),
        "created": now,
    }


def _stored_issue(row: Any) -> StoredIssue:
    return StoredIssue(
        row["run_id"],
        row["file_name"],
        row["line"],
        row["kind"],
        f"{row['system']}|{row['value']}",
        row["patient_id"],
        tuple(row["candidates"].split()),
    )
