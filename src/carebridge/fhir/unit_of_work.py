"""One request = one transaction, guarded and audited (ADR 0004, ADR 0009).

`in_transaction` asks the request's Guard to authorize the interaction (403 before any work),
opens one transaction with a store confined to the caller's AccessScope, runs the work, and
writes the AuditEvent for it in the same transaction, so an access and its audit record commit or
roll back together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from carebridge.fhir.guard import UNRESTRICTED, AccessRecord, AccessScope, Guard, Interaction
from carebridge.fhir.records import (
    HistoryPage,
    Method,
    SearchPage,
    StoredResource,
    WriteOp,
    WriteResult,
)
from carebridge.fhir.store import FhirStore
from carebridge.kit.errors import AppError
from carebridge.kit.ids import new_id

T = TypeVar("T")
_MAX_AUDITED_ENTITIES = 100


@dataclass(frozen=True)
class Access:
    """What a request does: one interaction on one or more types (none: system level)."""

    interaction: Interaction
    types: tuple[str, ...] = ()
    also: tuple[tuple[Interaction, str], ...] = field(default=())  # further checks (Bundles)

    def checks(self) -> list[tuple[Interaction, str | None]]:
        first: list[tuple[Interaction, str | None]] = (
            [(self.interaction, t) for t in self.types]
            if self.types
            else [(self.interaction, None)]
        )
        return [*first, *self.also]


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def guard_of(request: Request) -> Guard:
    guard: Guard | None = getattr(request.state, "guard", None)
    if guard is None:  # fail closed: a router mounted without the access dependency
        raise AppError(401, "login", "an access token is required")
    return guard


def authorize(request: Request, access: Access) -> AccessScope:
    guard = guard_of(request)
    scopes = [guard.authorize(interaction, rtype) for interaction, rtype in access.checks()]
    return scopes[0] if scopes else UNRESTRICTED


@contextmanager
def unit_of_work(request: Request, scope: AccessScope = UNRESTRICTED) -> Iterator[FhirStore]:
    """One transaction: commit on success, roll back on any error."""
    with request.app.state.engine.begin() as conn:
        yield FhirStore(conn, base_url(request), scope)


async def in_transaction(request: Request, access: Access, work: Callable[[FhirStore], T]) -> T:
    """Authorize, run `work` in one transaction within the caller's scope, audit it there."""
    scope = authorize(request, access)
    guard = guard_of(request)

    def run() -> T:
        with unit_of_work(request, scope) as store:
            result = work(store)
            touched = _touched(result)[:_MAX_AUDITED_ENTITIES]
            patients = store.patients_of(touched)
            record = access_record(access, result, scope, request.url.query or None, patients)
            audit = WriteOp(Method.POST, "AuditEvent", new_id(), guard.audit_event(record))
            FhirStore(store.conn, store.base_url).write([audit])  # the server's own record
            return result

    return await run_in_threadpool(run)


def access_record(
    access: Access,
    result: Any,
    scope: AccessScope,
    query: str | None,
    patients_touched: set[str] | None = None,
) -> AccessRecord:
    """What the AuditEvent says was touched: references only, never content. The patients are
    those whose compartment a touched resource is in (so a patient's access log shows a read of
    their Observation)."""
    touched = _touched(result)
    references = tuple(dict.fromkeys(r.reference for r in touched))[:_MAX_AUDITED_ENTITIES]
    patients = {r.res_id for r in touched if r.res_type == "Patient"} | (patients_touched or set())
    if scope.patient_id:
        patients.add(scope.patient_id)
    is_search = access.interaction in (Interaction.SEARCH_TYPE, Interaction.SEARCH_SYSTEM)
    return AccessRecord(
        interaction=access.interaction,
        resource_type=access.types[0] if len(access.types) == 1 else None,
        outcome=200,
        entities=references,
        patients=tuple(sorted(patients)),
        query=query if is_search else None,
    )


def _touched(result: Any) -> Sequence[StoredResource]:
    if isinstance(result, StoredResource):
        return [result]
    if isinstance(result, WriteResult):
        return [result.stored] if result.stored else []
    if isinstance(result, SearchPage):
        return [*result.matches, *result.included]
    if isinstance(result, HistoryPage):
        return result.entries
    if isinstance(result, list):
        return [r for item in result for r in _touched(item)]
    return []
