"""Provider records: FHIR R4 transaction/batch Bundles (.json) and NDJSON (.ndjson, resources or
one Bundle per line), stored by the FHIR bulk loader (`fhir.bulk_load`, ADR 0003 and 0005), then
entered in the patient index so the CSV feeds can match their rows to these patients.

The bulk loader commits per batch and re-running a file changes nothing (conditional creates on
the MRN and record identifiers, `urn:uuid:` identities), so an interrupted file is resumed by
running it again: the run keeps its id, nothing is duplicated. Records the loader refuses become
dead letters of the run. Every identifier of every Patient (MRN, pharmacy member id, payer member
id, ...) is linked to the stored patient; an identifier already linked to another patient is not
moved but reported as a conflict (a duplicate patient to resolve by hand).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine

from carebridge.fhir import service
from carebridge.fhir.bulk_load import DeadLetter as LoadDeadLetter
from carebridge.fhir.bulk_load import LoadReport, bundle_order, load_bundle, load_ndjson
from carebridge.fhir.service import FhirContext
from carebridge.fhir.store import FhirStore
from carebridge.ingest.mappers.patients import SEX
from carebridge.ingest.matching import IssueKind, MatchIssue
from carebridge.ingest.pipeline import IngestOptions, Progress, close_run, open_run
from carebridge.ingest.records import Demographics, Identifier, IngestReport
from carebridge.ingest.repository import (
    COMPLETED,
    FAILED,
    DeadLetter,
    IngestRepository,
    Run,
    RunTotals,
)
from carebridge.ingest.sources.delimited import file_sha256
from carebridge.kit.clock import utc_now

FEED = "provider-fhir"
_LINE = re.compile(r"^(?P<file>.+):(?P<line>\d+)$")
_CHUNK = 1000
_MAX_BUNDLE_ENTRIES = 100_000


@dataclass(frozen=True)
class ProviderPatient:
    line: int | None
    full_url: str | None
    res_id: str | None
    condition: str | None  # the entry's ifNoneExist, how the loader matched it
    identifiers: tuple[Identifier, ...]
    demographics: Demographics | None


def fhir_files(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """(Bundle .json files, .ndjson files) under the given files and folders, sorted."""
    files = [f for p in paths for f in (sorted(p.rglob("*")) if p.is_dir() else [p])]
    bundles = [f for f in files if f.is_file() and f.suffix == ".json"]
    return bundles, [f for f in files if f.is_file() and f.suffix == ".ndjson"]


def ingest_fhir(
    engine: Engine,
    paths: Sequence[Path],
    *,
    options: IngestOptions | None = None,
    progress: Progress | None = None,
) -> list[IngestReport]:
    """Load provider files (Bundles first, in reference order, then NDJSON), one run per file."""
    options = options or IngestOptions(batch_size=2000)
    bundle_files, ndjson_files = fhir_files(paths)
    bundles = {path: _read_bundle(path) for path in bundle_files}
    readable = {p: b for p, b in bundles.items() if isinstance(b, dict)}
    order = [p for p in bundles if p not in readable] + bundle_order(readable)
    reports = [
        _ingest_file(engine, path, partial(_load_bundle, engine, path, bundles[path]), progress)
        for path in order
    ]
    for path in ndjson_files:
        load = partial(_load_ndjson, engine, path, options, progress)
        reports.append(_ingest_file(engine, path, load, None))
    return reports


def _read_bundle(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        return None  # the loader reports it


def _load_bundle(engine: Engine, path: Path, bundle: Any) -> LoadReport:
    if not isinstance(bundle, dict):
        refused = LoadReport()
        refused.count("Bundle", "failed")
        refused.dead_letters.append(LoadDeadLetter(path.name, "not a JSON object (FHIR Bundle)"))
        return refused
    return load_bundle(engine, FhirContext(base_url=""), path, bundle, _MAX_BUNDLE_ENTRIES)


def _load_ndjson(
    engine: Engine, path: Path, options: IngestOptions, progress: Progress | None
) -> LoadReport:
    return load_ndjson(
        engine,
        path,
        batch_size=options.batch_size,
        workers=options.workers,
        progress=progress,
        tune_gc=options.tune_gc,
    )


def _ingest_file(
    engine: Engine, path: Path, load: Callable[[], LoadReport], progress: Progress | None
) -> IngestReport:
    run = open_run(engine, FEED, path.name, file_sha256(path), IngestOptions())
    try:
        loaded = load()
        issues = index_patients(engine, run, _patients(path))
        report = _finish(engine, run, loaded, issues)
    except BaseException:
        with suppress(Exception):  # the database may be what failed; keep the original error
            close_run(engine, run.run_id, FAILED)
        raise
    if progress and path.suffix == ".json":
        progress(report.rows)
    return report


def _finish(engine: Engine, run: Run, loaded: LoadReport, issues: list[MatchIssue]) -> IngestReport:
    letters = [_dead_letter(d.source, d.reason) for d in loaded.dead_letters]
    failed = sum(n for (_, outcome), n in loaded.outcomes.items() if outcome == "failed")
    stored = loaded.stored
    totals = RunTotals(0, 1, stored + failed, stored, failed)
    now = utc_now().replace(tzinfo=None)
    with engine.begin() as conn:
        repo = IngestRepository(conn)
        repo.add_dead_letters(run, letters, now)
        repo.save_checkpoint(run.run_id, totals, now)
        repo.set_status(run.run_id, COMPLETED, now)
    report = IngestReport(run.run_id, FEED, run.file_name, rows=stored + failed, loaded=stored)
    report.failed = failed
    report.outcomes.update({k: n for k, n in loaded.outcomes.items() if k[1] != "failed"})
    report.issues.update(issue.kind.value for issue in issues)
    return report


def _dead_letter(source: str, reason: str) -> DeadLetter:
    found = _LINE.match(source)
    if found:
        return DeadLetter(int(found["line"]), None, reason)
    return DeadLetter(None, None, f"{source}: {reason}")


# -- the patient index ----------------------------------------------------------------------------
def index_patients(
    engine: Engine, run: Run, patients: Iterator[ProviderPatient]
) -> list[MatchIssue]:
    """Link every stored provider Patient's identifiers and demographic key; report conflicts."""
    issues: list[MatchIssue] = []
    chunk: list[ProviderPatient] = []
    for patient in patients:
        chunk.append(patient)
        if len(chunk) >= _CHUNK:
            issues += _index_chunk(engine, run, chunk)
            chunk = []
    if chunk:
        issues += _index_chunk(engine, run, chunk)
    return issues


def _index_chunk(engine: Engine, run: Run, chunk: list[ProviderPatient]) -> list[MatchIssue]:
    with engine.begin() as conn:
        stored = _stored_ids(FhirStore(conn), chunk)
        repo = IngestRepository(conn)
        known = repo.links_for(i for p in chunk for i in p.identifiers)
        links, issues = _links(chunk, stored, known)
        repo.add_links(links, run.run_id)
        repo.add_patients([(stored[n], _key(p), FEED) for n, p in _found(chunk, stored)])
        repo.add_issues(run, issues, utc_now().replace(tzinfo=None))
    return [issue for _, issue in issues]


def _key(patient: ProviderPatient) -> str | None:
    return patient.demographics.key() if patient.demographics else None


def _found(
    chunk: list[ProviderPatient], stored: dict[int, str]
) -> Iterator[tuple[int, ProviderPatient]]:
    return ((n, p) for n, p in enumerate(chunk) if n in stored)


def _stored_ids(store: FhirStore, chunk: list[ProviderPatient]) -> dict[int, str]:
    """Position in chunk -> stored Patient id: by `urn:uuid:` alias, then by the entry's
    ifNoneExist condition (a conditional create that matched an existing patient)."""
    urns = store.resolve_urns(p.full_url for p in chunk if p.full_url)
    present = {r.res_id for r in store.fetch(("Patient", p.res_id) for p in chunk if p.res_id)}
    found: dict[int, str] = {}
    for n, patient in enumerate(chunk):
        alias = urns.get(patient.full_url or "")
        if patient.res_id:
            if patient.res_id in present:
                found[n] = patient.res_id
        elif alias and alias[0] == "Patient":
            found[n] = alias[1]
        elif patient.condition:
            matches = service.find_matches(store, FhirContext(""), "Patient", patient.condition)
            if len(matches) == 1:
                found[n] = matches[0].res_id
    return found


def _links(
    chunk: list[ProviderPatient], stored: dict[int, str], known: dict[Identifier, str]
) -> tuple[list[tuple[Identifier, str, str]], list[tuple[int | None, MatchIssue]]]:
    owner = dict(known)
    links: list[tuple[Identifier, str, str]] = []
    issues: list[tuple[int | None, MatchIssue]] = []
    for n, patient in _found(chunk, stored):
        patient_id = stored[n]
        for identifier in patient.identifiers:
            current = owner.setdefault(identifier, patient_id)
            if current != patient_id:
                issue = MatchIssue(IssueKind.CONFLICT, identifier, patient_id, (current,))
                issues.append((patient.line, issue))
            elif identifier not in known:
                links.append((identifier, patient_id, "source"))
    return links, issues


# -- reading Patients from provider files ---------------------------------------------------------
def _patients(path: Path) -> Iterator[ProviderPatient]:
    if path.suffix == ".json":
        bundle = _read_bundle(path)
        yield from _in_record(None, bundle)
        return
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if b'"Patient"' in line:
                try:
                    yield from _in_record(number, orjson.loads(line))
                except orjson.JSONDecodeError:
                    continue  # the loader reported it


def _in_record(line: int | None, record: Any) -> Iterator[ProviderPatient]:
    if not isinstance(record, dict):
        return
    if record.get("resourceType") == "Patient" and isinstance(record.get("id"), str):
        yield _patient(line, record, res_id=record["id"])
    if record.get("resourceType") != "Bundle":
        return
    for entry in record.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "Patient":
            request = entry.get("request") or {}
            yield _patient(
                line, resource, full_url=entry.get("fullUrl"), condition=request.get("ifNoneExist")
            )


def _patient(
    line: int | None,
    resource: dict[str, Any],
    *,
    res_id: str | None = None,
    full_url: str | None = None,
    condition: str | None = None,
) -> ProviderPatient:
    identifiers = tuple(
        Identifier(i["system"], i["value"])
        for i in resource.get("identifier") or []
        if isinstance(i, dict)
        and isinstance(i.get("system"), str)
        and isinstance(i.get("value"), str)
    )
    return ProviderPatient(line, full_url, res_id, condition, identifiers, _demographics(resource))


def _demographics(resource: dict[str, Any]) -> Demographics | None:
    names = resource.get("name") or [{}]
    name = names[0] if isinstance(names[0], dict) else {}
    given = (name.get("given") or [None])[0]
    family, birth = name.get("family"), resource.get("birthDate")
    sex = SEX.get(resource.get("gender") or "", "U")
    if not (isinstance(family, str) and isinstance(given, str) and isinstance(birth, str)):
        return None
    return Demographics(family, given, birth, sex)
