"""Patient assignment for batches of CSV rows, in the main process.

Applies the matching rule (`matching.py`) in row order over the patient index: links and
demographic keys are read from the database once per identifier and key, and what this run
decides is kept in memory so later rows see it before it commits. A decision is written to the
index (links, the patient's demographic key, the matching report) in the transaction of the first
batch in which a row using it is stored, so a row that ends in the dead letters leaves no link
behind. The same identity columns always get the same decision within a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from carebridge.ingest.identity import new_patient_id
from carebridge.ingest.mappers.fields import check_encoding
from carebridge.ingest.matching import MatchIssue, match_patient
from carebridge.ingest.preparation import Assignment
from carebridge.ingest.records import Identifier, RowError, SourcePatient
from carebridge.ingest.repository import IngestRepository
from carebridge.ingest.sources.delimited import CsvSource, RawRow

Identity = tuple[str, ...]


@dataclass
class _Pending:
    links: list[tuple[Identifier, str]] = field(default_factory=list)  # (identifier, method)
    key: str | None = None  # demographic key of a patient this run created
    issues: list[MatchIssue] = field(default_factory=list)


@dataclass(frozen=True)
class IndexWrites:
    links: list[tuple[Identifier, str, str]]  # (identifier, patient id, method)
    patients: list[tuple[str, str | None, str]]  # (patient id, demographic key, feed)
    issues: list[tuple[int | None, MatchIssue]]  # (source line, issue)


class PatientLinker:
    def __init__(self, source: CsvSource) -> None:
        self.source = source
        self.positions = source.identity_positions
        self.links: dict[Identifier, str] = {}
        self.looked_up: set[Identifier] = set()
        self.by_key: dict[str, list[str]] = {}
        self.keys_loaded: set[str] = set()
        self.decided: dict[Identity, Assignment | None] = {}
        self.pending: dict[str, _Pending] = {}

    def assign(self, repo: IngestRepository, rows: Sequence[RawRow]) -> list[Assignment | None]:
        """The patient of each row, or None when the row does not say who it is about."""
        identities = [self._identity(fields) for _, fields in rows]
        fresh = dict.fromkeys(i for i in identities if i is not None and i not in self.decided)
        records = {identity: self._record(identity) for identity in fresh}
        self._load(repo, [r for r in records.values() if r is not None])
        for identity, record in records.items():
            self.decided[identity] = self._decide(record) if record else None
        return [self.decided[i] if i is not None else None for i in identities]

    def take(self, first_lines: Mapping[str, int]) -> IndexWrites:
        """Index writes for the patients stored in this batch (patient id -> first source line)."""
        writes = IndexWrites([], [], [])
        for patient_id, line in first_lines.items():
            pending = self.pending.pop(patient_id, None)
            if pending is None:
                continue
            writes.links.extend((i, patient_id, method) for i, method in pending.links)
            if pending.key is not None:
                writes.patients.append((patient_id, pending.key, self.source.feed.name))
            writes.issues.extend((line, issue) for issue in pending.issues)
        return writes

    def _identity(self, fields: tuple[str, ...]) -> Identity | None:
        try:
            return tuple(fields[p] for p in self.positions)
        except IndexError:
            return None  # a short row: the worker reports it

    def _record(self, identity: Identity) -> SourcePatient | None:
        try:
            check_encoding(identity)
            record = dict(zip(self.source.identity_columns, identity, strict=True))
            return self.source.patient_of(record)
        except RowError:
            return None

    def _load(self, repo: IngestRepository, records: list[SourcePatient]) -> None:
        unknown = [
            i
            for r in records
            for i in r.identifiers
            if i not in self.links and i not in self.looked_up
        ]
        self.links.update(repo.links_for(unknown))
        self.looked_up.update(unknown)
        keys = [
            r.demographics.key() for r in records if not any(i in self.links for i in r.identifiers)
        ]
        fresh = [k for k in dict.fromkeys(keys) if k not in self.keys_loaded]
        for key, patients in repo.patients_by_key(fresh).items():
            self.by_key.setdefault(key, []).extend(patients)
        self.keys_loaded.update(fresh)

    def _decide(self, record: SourcePatient) -> Assignment:
        key = record.demographics.key()
        match = match_patient(record, self.links, self.by_key.get(key, ()))
        pending = self.pending.setdefault(match.patient_id, _Pending())
        for identifier in match.links:
            self.links[identifier] = match.patient_id
            pending.links.append((identifier, match.method.value))
        if match.created:
            self.by_key.setdefault(key, []).append(match.patient_id)
            pending.key = key
        if match.issue is not None:
            pending.issues.append(match.issue)
        return Assignment(match.patient_id, match.patient_id == new_patient_id(record.primary))
