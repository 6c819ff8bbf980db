"""transaction and batch Bundles (R4 http.html#transaction).

transaction: all-or-nothing; entries are processed DELETE, POST, PUT, GET as the spec orders them,
and entries with conditional references (`Patient?identifier=...`) are written after the others so
the search can find resources the same transaction creates; any failure rolls back everything and
returns an OperationOutcome naming the failing entry (`Bundle.entry[i]`).
batch: each entry in its own savepoint; failures are reported per entry and do not affect others.

In both, fullUrls (`urn:uuid:` or absolute) are resolved to the ids the server assigns, conditional
references and If-None-Exist are resolved by search, and `urn:uuid:` references to resources that
an earlier Bundle created are resolved through the urn alias table (ADR 0003). A POST whose
`urn:uuid:` fullUrl is already known updates that resource instead of duplicating it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from carebridge.fhir import service
from carebridge.fhir.bundle_entries import ORDER, Entry, parse_entry
from carebridge.fhir.bundles import entry_response, error_entry, read_entry
from carebridge.fhir.records import Method, Outcome, WriteOp, WriteResult
from carebridge.fhir.references import (
    Resolver,
    is_conditional,
    iter_references,
    rewrite_references,
)
from carebridge.fhir.service import FhirContext
from carebridge.fhir.store import FhirStore
from carebridge.fhir.validation import validate_resource
from carebridge.kit.errors import (
    AppError,
    InvalidRequestError,
    NotFoundError,
    PreconditionFailedError,
    TooCostlyError,
)
from carebridge.kit.ids import is_valid_id, new_id


@dataclass
class BundleResult:
    bundle: dict[str, Any]
    results: list[WriteResult] = field(default_factory=list)


def process_bundle(
    store: FhirStore,
    ctx: FhirContext,
    bundle: Any,
    *,
    max_entries: int,
    minimal: bool = False,
    outcomes: dict[int, str] | None = None,
) -> dict[str, Any]:
    """Process a transaction or batch Bundle and return the response Bundle.

    `outcomes`, when given, receives entry index -> created/updated/unchanged/deleted/not-present.
    """
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidRequestError(
            "POST to the base URL takes a Bundle of type transaction or batch"
        )
    kind = bundle.get("type")
    if kind not in ("transaction", "batch"):
        raise InvalidRequestError(f"Bundle.type must be transaction or batch, not {kind!r}")
    raw_entries = bundle.get("entry") or []
    if len(raw_entries) > max_entries:
        raise TooCostlyError(
            f"the Bundle has {len(raw_entries)} entries; the limit is {max_entries}"
        )
    if kind == "transaction":
        entries = [_parse(ctx, i, raw) for i, raw in enumerate(raw_entries)]
        return _transaction(store, ctx, entries, minimal, outcomes)
    return _batch(store, ctx, raw_entries, minimal, outcomes)


def _transaction(
    store: FhirStore,
    ctx: FhirContext,
    entries: list[Entry],
    minimal: bool,
    outcomes: dict[int, str] | None,
) -> dict[str, Any]:
    """All or nothing: the first failure propagates (the caller rolls back) naming its entry."""
    _assign_targets(store, ctx, entries)
    resolve = _resolver(store, ctx, entries, strict_missing=True, conditional=False)
    links = _placeholder_links(entries)
    for entry in entries:
        with _about(entry):
            if entry.resource is not None:
                entry.resource = rewrite_references(entry.resource, resolve, links)
                entry.deferred = _has_conditional(entry)
                if ctx.validate and not entry.deferred:
                    validate_resource(entry.resource, expected_type=entry.res_type)
    responses = _execute(store, ctx, entries, minimal, outcomes)
    return {"resourceType": "Bundle", "type": "transaction-response", "entry": responses}


def _batch(
    store: FhirStore,
    ctx: FhirContext,
    raw_entries: list[Any],
    minimal: bool,
    outcomes: dict[int, str] | None,
) -> dict[str, Any]:
    entries: list[Entry | None] = []
    responses: list[dict[str, Any] | None] = [None] * len(raw_entries)
    for index, raw in enumerate(raw_entries):
        try:
            entries.append(_parse(ctx, index, raw))
        except AppError as exc:
            entries.append(None)
            responses[index] = error_entry(exc)
    valid = [e for e in entries if e is not None]
    _assign_targets(store, ctx, valid, lenient=True)
    resolve = _resolver(store, ctx, valid, strict_missing=False, conditional=True)
    links = _placeholder_links(valid)
    for entry in sorted(valid, key=lambda e: (ORDER[e.method], e.index)):
        savepoint = store.conn.begin_nested()
        try:
            if entry.resource is not None:
                entry.resource = rewrite_references(entry.resource, resolve, links)
                _check_unresolved(entry)
                if ctx.validate:
                    validate_resource(entry.resource, expected_type=entry.res_type)
            responses[entry.index] = _execute(store, ctx, [entry], minimal, outcomes)[0]
            savepoint.commit()
        except AppError as exc:
            savepoint.rollback()
            responses[entry.index] = error_entry(exc)
    return {"resourceType": "Bundle", "type": "batch-response", "entry": responses}


def _parse(ctx: FhirContext, index: int, raw: Any) -> Entry:
    """Entry `index`, its request.url taken relative to this server's base (`ctx.base_url`, the
    base the response's fullUrls and locations use); errors name the entry."""
    try:
        return parse_entry(index, raw, base_url=ctx.base_url)
    except AppError as exc:
        _name_entry(exc, index)
        raise


@contextmanager
def _about(entry: Entry) -> Iterator[None]:
    """Name the entry in any error raised while processing it (`Bundle.entry[i]: ...`)."""
    try:
        yield
    except AppError as exc:
        _name_entry(exc, entry.index)
        raise


def _name_entry(exc: AppError, index: int) -> None:
    where = f"Bundle.entry[{index}]"
    if exc.message.startswith("Bundle.entry["):
        return
    exc.message = f"{where}: {exc.message}"
    exc.expression = tuple(_within(where, e) for e in exc.expression)
    exc.extra_issues = [
        replace(i, expression=tuple(_within(where, e) for e in i.expression))
        for i in exc.extra_issues
    ]


def _within(where: str, expression: str) -> str:
    """`Patient.birthDate` of entry 1 -> `Bundle.entry[1].resource.birthDate`."""
    if expression.startswith("Bundle."):
        return expression
    _, dot, rest = expression.partition(".")
    return f"{where}.resource{dot}{rest}"


def _assign_targets(
    store: FhirStore, ctx: FhirContext, entries: list[Entry], *, lenient: bool = False
) -> None:
    """Decide the id each POST/PUT entry will have, so references can point at it."""
    known = store.resolve_urns(
        e.full_url for e in entries if e.full_url and e.full_url.startswith("urn:")
    )
    for entry in entries:
        try:
            with _about(entry):
                _assign_target(store, ctx, entry, known)
        except AppError:
            if not lenient:
                raise
            entry.target = None


def _assign_target(
    store: FhirStore, ctx: FhirContext, entry: Entry, known: dict[str, tuple[str, str]]
) -> None:
    if entry.method == "POST":
        if entry.if_none_exist:
            matches = service.find_matches(store, ctx, entry.res_type, entry.if_none_exist)
            if len(matches) > 1:
                raise InvalidRequestError(
                    f"ifNoneExist {entry.if_none_exist!r} matches several resources", status=412
                )
            if matches:
                entry.existing = matches[0]
                entry.res_id = matches[0].res_id
        if entry.res_id is None:
            entry.res_id = _id_for_post(entry, known)
    elif entry.method == "PUT" and entry.condition:
        matches = service.find_matches(store, ctx, entry.res_type, entry.condition)
        if len(matches) > 1:
            raise InvalidRequestError(
                f"conditional update {entry.url!r} matches several resources", status=412
            )
        entry.res_id = (
            matches[0].res_id if matches else (entry.resource or {}).get("id") or new_id()
        )
    if entry.res_id and entry.method in ("POST", "PUT"):
        entry.target = f"{entry.res_type}/{entry.res_id}"


def _id_for_post(entry: Entry, known: dict[str, tuple[str, str]]) -> str:
    full_url = entry.full_url or ""
    if full_url in known and known[full_url][0] == entry.res_type:
        return known[full_url][1]
    candidate = full_url.removeprefix("urn:uuid:")
    if full_url.startswith("urn:uuid:") and is_valid_id(candidate):
        return candidate
    return new_id()


def _placeholder_links(entries: list[Entry]) -> dict[str, str]:
    """`urn:` fullUrl -> `Type/id`, for links outside `reference` elements."""
    return {
        e.full_url: e.target
        for e in entries
        if e.full_url and e.target and e.full_url.startswith("urn:")
    }


def _resolver(
    store: FhirStore,
    ctx: FhirContext,
    entries: list[Entry],
    *,
    strict_missing: bool,
    conditional: bool,
) -> Resolver:
    """Reference -> `Type/id` for bundle fullUrls, known urns and (if `conditional`) searches."""
    local = {e.full_url: e.target for e in entries if e.full_url and e.target}
    outside = {
        ref
        for e in entries
        if e.resource is not None
        for ref in iter_references(e.resource)
        if ref.startswith("urn:") and ref not in local
    }
    aliases = store.resolve_urns(outside)
    resolved: dict[str, str] = {}

    def resolve(reference: str) -> str | None:
        if reference in local:
            return local[reference]
        if reference in aliases:
            rtype, rid = aliases[reference]
            return f"{rtype}/{rid}"
        if is_conditional(reference):
            if not conditional:
                return None
            if reference not in resolved:
                resolved[reference] = _conditional_reference(store, ctx, reference)
            return resolved[reference]
        if strict_missing and reference.startswith("urn:"):
            raise NotFoundError(
                f"reference {reference} names no entry in this Bundle and no known resource"
            )
        return None

    return resolve


def _conditional_reference(store: FhirStore, ctx: FhirContext, reference: str) -> str:
    rtype, _, condition = reference.partition("?")
    matches = service.find_matches(store, ctx, rtype, condition)
    if len(matches) != 1:
        found = "no" if not matches else "several"
        raise InvalidRequestError(
            f"conditional reference {reference!r} matches {found} resources", status=412
        )
    return matches[0].reference


def _check_unresolved(entry: Entry) -> None:
    for ref in iter_references(entry.resource):
        if ref.startswith("urn:"):
            raise NotFoundError(
                f"reference {ref} names no entry in this Bundle and no known resource"
            )


def _has_conditional(entry: Entry) -> bool:
    return any(is_conditional(r) for r in iter_references(entry.resource))


def _execute(
    store: FhirStore,
    ctx: FhirContext,
    entries: list[Entry],
    minimal: bool,
    outcomes: dict[int, str] | None = None,
) -> list[dict[str, Any]]:
    """Writes in DELETE, POST, PUT order, then the entries whose conditional references could
    only be resolved after those writes, then GETs (http.html#trules)."""
    ordered = sorted(entries, key=lambda e: (ORDER[e.method], e.index))
    writes = [e for e in ordered if e.method in ("POST", "PUT", "DELETE")]
    deferred = [e for e in writes if e.deferred]
    responses: dict[int, dict[str, Any]] = {}
    written: dict[tuple[str, str], int] = {}
    first = [e for e in writes if e not in deferred]
    responses.update(_write(store, ctx, first, minimal, outcomes, written))
    if deferred:
        resolve = _resolver(store, ctx, entries, strict_missing=True, conditional=True)
        for entry in deferred:
            with _about(entry):
                entry.resource = rewrite_references(entry.resource, resolve)
                if ctx.validate:
                    validate_resource(entry.resource, expected_type=entry.res_type)
        responses.update(_write(store, ctx, deferred, minimal, outcomes, written))
    for entry in ordered:
        if entry.index not in responses:
            with _about(entry):
                responses[entry.index] = read_entry(
                    store, ctx, entry.res_type, entry.res_id, entry.condition
                )
    return [responses[e.index] for e in entries]


def _write(
    store: FhirStore,
    ctx: FhirContext,
    writes: list[Entry],
    minimal: bool,
    outcomes: dict[int, str] | None,
    written: dict[tuple[str, str], int],
) -> dict[int, dict[str, Any]]:
    """Apply the writes of `writes` in one batch; entry index -> response entry."""
    planned = _write_ops(store, ctx, writes)
    by_index = {e.index: e for e in writes}
    for index, op in planned.items():
        if op is not None:
            with _about(by_index[index]):
                _check_write(store, op, index, written)
    ops = [op for op in planned.values() if op is not None]
    results = dict(zip(map(id, ops), store.write(ops), strict=True)) if ops else {}
    if outcomes is not None:
        outcomes.update(
            {i: results[id(op)].outcome.value if op else "not-present" for i, op in planned.items()}
        )
        outcomes.update({e.index: "unchanged" for e in writes if e.existing is not None})
    responses: dict[int, dict[str, Any]] = {}
    for entry in writes:
        if entry.existing is not None:
            kept = WriteResult(
                WriteOp(Method.POST, entry.res_type, entry.existing.res_id),
                Outcome.UNCHANGED,
                entry.existing,
            )
            responses[entry.index] = entry_response(kept, minimal, status=200)
        else:
            op = planned[entry.index]
            responses[entry.index] = (
                entry_response(results[id(op)], minimal)
                if op
                else {"response": {"status": "204 No Content"}}
            )
    return responses


def _check_write(
    store: FhirStore, op: WriteOp, index: int, written: dict[tuple[str, str], int]
) -> None:
    """A resource may be written once per Bundle; If-Match must name the current version."""
    key = (op.res_type, op.res_id)
    if key in written:
        raise InvalidRequestError(
            f"{op.res_type}/{op.res_id} is also written by Bundle.entry[{written[key]}];"
            " a resource can only appear in a transaction once"
        )
    written[key] = index
    if op.if_match is not None:
        current = store.find(op.res_type, op.res_id)
        if current is None or current.deleted or current.version != op.if_match:
            have = "no current version" if current is None else f"version {current.version}"
            raise PreconditionFailedError(
                f"{op.res_type}/{op.res_id}: ifMatch expects version {op.if_match},"
                f" the server has {have}"
            )


def _write_ops(
    store: FhirStore, ctx: FhirContext, writes: list[Entry]
) -> dict[int, WriteOp | None]:
    """entry index -> its write (None: a conditional delete that matched nothing)."""
    ops: dict[int, WriteOp | None] = {}
    for entry in writes:
        if entry.existing is None:
            with _about(entry):
                ops[entry.index] = _write_op(store, ctx, entry)
    return ops


def _write_op(store: FhirStore, ctx: FhirContext, entry: Entry) -> WriteOp | None:
    if entry.method == "DELETE":
        return _delete_op(store, ctx, entry)
    assert entry.resource is not None
    assert entry.res_id is not None
    if entry.method == "PUT" and not entry.condition and entry.resource.get("id") != entry.res_id:
        raise InvalidRequestError(
            "resource id must equal the id in request.url",
            expression=(f"{entry.res_type}.id",),
        )
    content = {**entry.resource, "id": entry.res_id}
    urn = (
        entry.full_url
        if entry.method == "POST" and (entry.full_url or "").startswith("urn:")
        else None
    )
    method = Method.POST if entry.method == "POST" else Method.PUT
    return WriteOp(method, entry.res_type, entry.res_id, content, if_match=entry.if_match, urn=urn)


def _delete_op(store: FhirStore, ctx: FhirContext, entry: Entry) -> WriteOp | None:
    if entry.condition:
        matches = service.find_matches(store, ctx, entry.res_type, entry.condition)
        if len(matches) > 1:
            raise InvalidRequestError(
                f"conditional delete {entry.url!r} matches several resources", status=412
            )
        if not matches:
            return None
        entry.res_id = matches[0].res_id
    if not entry.res_id:
        raise InvalidRequestError("DELETE needs Type/id or Type?criteria")
    return WriteOp(Method.DELETE, entry.res_type, entry.res_id, if_match=entry.if_match)
