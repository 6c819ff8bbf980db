"""API representations of ingest runs."""

from __future__ import annotations

from pydantic import BaseModel

from carebridge.ingest.records import IngestReport
from carebridge.ingest.repository import StoredDeadLetter


class DeadLetterRead(BaseModel):
    line: int | None
    reason: str


class IngestRunRead(BaseModel):
    """The outcome of one upload: run totals, writes per resource type, matching report counts,
    and the first dead letters (line and reason; the rows stay in the database)."""

    run_id: str
    feed: str
    file_name: str
    resumed_after_line: int
    rows: int
    stored: int
    dead_letter_count: int
    outcomes: dict[str, dict[str, int]]
    patient_matching: dict[str, int]
    dead_letters: list[DeadLetterRead]

    @classmethod
    def from_report(cls, report: IngestReport, letters: list[StoredDeadLetter]) -> IngestRunRead:
        outcomes: dict[str, dict[str, int]] = {}
        for (res_type, outcome), n in sorted(report.outcomes.items()):
            outcomes.setdefault(res_type, {})[outcome] = n
        return cls(
            run_id=report.run_id,
            feed=report.feed,
            file_name=report.file_name,
            resumed_after_line=report.resumed_after,
            rows=report.rows,
            stored=report.loaded,
            dead_letter_count=report.failed,
            outcomes=outcomes,
            patient_matching=dict(sorted(report.issues.items())),
            dead_letters=[DeadLetterRead(line=d.line, reason=d.reason) for d in letters],
        )
