"""The FHIR R4 RESTful API under /fhir (http.html): one route per interaction.

Endpoints stay thin: parse HTTP, open one transaction, call `service`, shape the response. The
database work runs in the thread pool so the event loop keeps serving other requests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from carebridge.config import Settings
from carebridge.fhir import capability, service
from carebridge.fhir.bundles import history_bundle, searchset
from carebridge.fhir.guard import Interaction
from carebridge.fhir.http import (
    Prefer,
    check_json_acceptable,
    fhir_response,
    if_match_version,
    json_body,
    parse_prefer,
    resource_headers,
    write_response,
)
from carebridge.fhir.search.dates import InvalidDateError, date_range
from carebridge.fhir.search.parse import Limits, paging_value
from carebridge.fhir.service import FhirContext
from carebridge.fhir.store import FhirStore
from carebridge.fhir.transaction import process_bundle
from carebridge.fhir.unit_of_work import Access, base_url, in_transaction
from carebridge.fhir.validation import known_type
from carebridge.kit.digits import ascii_digits, ascii_int
from carebridge.kit.errors import InvalidRequestError, NotFoundError, NotSupportedError

# Every response here is FHIR JSON: a request that accepts no JSON is a 406 (http.html#mime).
_negotiated = [Depends(check_json_acceptable)]
router = APIRouter(prefix="/fhir", dependencies=_negotiated)
# no token needed: the CapabilityStatement only
open_router = APIRouter(prefix="/fhir", dependencies=_negotiated)
T = TypeVar("T")
# Versions are stored in an INTEGER column (32 bits on PostgreSQL): a larger one names nothing.
_MAX_VERSION = 2**31 - 1


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def context_of(request: Request, prefer: Prefer | None = None) -> FhirContext:
    settings = settings_of(request)
    prefer = prefer or parse_prefer(request)
    limits = Limits(settings.default_page_size, settings.max_page_size)
    return FhirContext(
        base_url=base_url(request), strict=prefer.handling == "strict", limits=limits
    )


def _check_type(resource_type: str) -> None:
    if not known_type(resource_type):
        raise NotFoundError(f"{resource_type!r} is not a FHIR R4 resource type")


def _check_mutable(resource_type: str) -> None:
    """The audit trail is append-only: AuditEvents are never updated or deleted."""
    if resource_type == "AuditEvent":
        raise NotSupportedError("AuditEvent records are append-only", status=405)


_BUNDLE_METHODS = {
    "POST": Interaction.CREATE,
    "PUT": Interaction.UPDATE,
    "DELETE": Interaction.DELETE,
}


def bundle_checks(body: Any) -> tuple[tuple[Interaction, str], ...]:
    """The (interaction, type) pairs a transaction/batch Bundle needs permission for."""
    checks: set[tuple[Interaction, str]] = set()
    entries = body.get("entry") if isinstance(body, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict) or not isinstance(request.get("url"), str):
            continue
        path, _, query = request["url"].partition("?")
        parts = [p for p in path.split("/") if p]
        if not parts or not known_type(parts[0]):
            continue
        method = str(request.get("method", ""))
        if method in _BUNDLE_METHODS:
            if parts[0] == "AuditEvent" and method != "POST":
                raise NotSupportedError("AuditEvent records are append-only", status=405)
            checks.add((_BUNDLE_METHODS[method], parts[0]))
        elif method in ("GET", "HEAD"):
            read = Interaction.READ if len(parts) > 1 and not query else Interaction.SEARCH_TYPE
            checks.add((read, parts[0]))
    return tuple(sorted(checks))


def _query_pairs(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


def parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return date_range(value)[0]
    except InvalidDateError as exc:
        raise InvalidRequestError(f"_since: {exc}") from None


def _paging(request: Request) -> tuple[int, int]:
    """`_count` (capped at the page size limit) and `_offset` of a history or $everything
    request, checked like a search's (`paging_value`)."""
    params = request.query_params
    settings = settings_of(request)
    count = paging_value("_count", params.get("_count", str(settings.default_page_size)))
    offset = paging_value("_offset", params.get("_offset", "0"))
    return min(count, settings.max_page_size), offset


@open_router.get("/metadata")
async def metadata(request: Request) -> Response:
    return fhir_response(capability.capability_statement(base_url(request)))


@router.post("")
@router.post("/")
async def transaction_or_batch(request: Request) -> Response:
    settings = settings_of(request)
    body = await json_body(request, settings.max_request_bytes)
    prefer = parse_prefer(request)
    ctx = context_of(request, prefer)
    minimal = prefer.returns == "minimal"
    access = Access(Interaction.TRANSACTION, also=bundle_checks(body))
    result = await in_transaction(
        request,
        access,
        lambda store: process_bundle(
            store, ctx, body, max_entries=settings.max_bundle_entries, minimal=minimal
        ),
    )
    if not result.get("entry"):
        result.pop("entry", None)  # JSON arrays are never empty (R4 json.html)
    return fhir_response(result)


@router.get("")
@router.get("/")
async def system_search(request: Request) -> Response:
    ctx = context_of(request)
    params = _query_pairs(request)
    query = service.query_for(ctx, None, params)
    access = Access(Interaction.SEARCH_SYSTEM, query.resource_types)
    page = await in_transaction(request, access, lambda store: store.search(query))
    return fhir_response(searchset(ctx.base_url, "", params, query, page))


@router.get("/_history")
async def system_history(request: Request) -> Response:
    return await _history(request, None, None, "_history")


async def _history(
    request: Request, res_type: str | None, res_id: str | None, path: str
) -> Response:
    count, offset = _paging(request)
    since_raw = request.query_params.get("_since")
    since = parse_since(since_raw)

    def work(store: FhirStore) -> Any:
        if res_id is not None and store.find(res_type or "", res_id) is None:
            raise NotFoundError(f"{res_type}/{res_id} is not known")
        return store.history(res_type, res_id, since=since, count=count, offset=offset)

    interaction = (
        Interaction.HISTORY_INSTANCE
        if res_id
        else Interaction.HISTORY_TYPE
        if res_type
        else Interaction.HISTORY_SYSTEM
    )
    access = Access(interaction, (res_type,) if res_type else ())
    page = await in_transaction(request, access, work)
    extra = [("_since", since_raw)] if since_raw else []
    return fhir_response(history_bundle(base_url(request), path, page, count, offset, extra))


@router.get("/{resource_type}/_history")
async def type_history(request: Request, resource_type: str) -> Response:
    _check_type(resource_type)
    return await _history(request, resource_type, None, f"{resource_type}/_history")


@router.get("/{resource_type}/{res_id}/_history")
async def instance_history(request: Request, resource_type: str, res_id: str) -> Response:
    _check_type(resource_type)
    return await _history(request, resource_type, res_id, f"{resource_type}/{res_id}/_history")


@router.get("/{resource_type}/{res_id}/_history/{version}")
async def vread(request: Request, resource_type: str, res_id: str, version: str) -> Response:
    _check_type(resource_type)
    number = _version_number(version)
    stored = await in_transaction(
        request,
        Access(Interaction.VREAD, (resource_type,)),
        lambda store: store.vread(resource_type, res_id, number),
    )
    return fhir_response(
        stored.content, 200, resource_headers(base_url(request), stored, with_location=False)
    )


def _version_number(version: str) -> int:
    """The version id of a vread (http.html#vread); one that is not a number this server could
    have assigned names no version: 404."""
    if not ascii_digits(version):
        raise NotFoundError(f"version {version[:40]!r} is not a version number")
    number = ascii_int(version, _MAX_VERSION)
    if number is None:
        raise NotFoundError(f"version {version[:40]} is beyond the largest version number")
    return number


@router.get("/Patient/{res_id}/$everything")
async def patient_everything(request: Request, res_id: str) -> Response:
    """Patient/$everything: the record as a searchset Bundle, paged with _count/_offset."""
    params = request.query_params
    types = tuple(t for t in params.get("_type", "").split(",") if t)
    since = parse_since(params.get("_since"))
    count, offset = _paging(request)
    found = await in_transaction(
        request,
        Access(Interaction.OPERATION, ("Patient",)),
        lambda store: service.everything(store, res_id, types=types, since=since),
    )
    base = base_url(request)
    window = found[offset : offset + count]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(found)}
    links = [
        {
            "relation": "self",
            "url": f"{base}/Patient/{res_id}/$everything?_count={count}&_offset={offset}",
        }
    ]
    if offset + count < len(found):
        links.append(
            {
                "relation": "next",
                "url": f"{base}/Patient/{res_id}/$everything"
                f"?_count={count}&_offset={offset + count}",
            }
        )
    bundle["link"] = links
    entries = [
        {
            "fullUrl": f"{base}/{r.res_type}/{r.res_id}",
            "resource": r.content,
            "search": {"mode": "match"},
        }
        for r in window
    ]
    if entries:
        bundle["entry"] = entries
    return fhir_response(bundle)


@router.get("/{resource_type}")
async def search_type(request: Request, resource_type: str) -> Response:
    return await _search(request, resource_type, _query_pairs(request))


@router.post("/{resource_type}/_search")
async def search_post(request: Request, resource_type: str) -> Response:
    form = await request.form()
    params = [(k, str(v)) for k, v in form.multi_items()] + _query_pairs(request)
    return await _search(request, resource_type, params)


async def _search(request: Request, resource_type: str, params: list[tuple[str, str]]) -> Response:
    _check_type(resource_type)
    ctx = context_of(request)
    query = service.query_for(ctx, resource_type, params)
    access = Access(Interaction.SEARCH_TYPE, (resource_type,))
    page = await in_transaction(request, access, lambda store: store.search(query))
    return fhir_response(searchset(ctx.base_url, resource_type, params, query, page))


@router.get("/{resource_type}/{res_id}")
async def read(request: Request, resource_type: str, res_id: str) -> Response:
    _check_type(resource_type)
    access = Access(Interaction.READ, (resource_type,))
    stored = await in_transaction(request, access, lambda store: store.read(resource_type, res_id))
    headers = resource_headers(base_url(request), stored, with_location=False)
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return fhir_response(stored.content, 200, headers)


@router.post("/{resource_type}")
async def create(request: Request, resource_type: str) -> Response:
    _check_type(resource_type)
    body = await json_body(request, settings_of(request).max_request_bytes)
    prefer = parse_prefer(request)
    ctx = context_of(request, prefer)
    if_none_exist = request.headers.get("if-none-exist")
    result = await in_transaction(
        request,
        Access(Interaction.CREATE, (resource_type,)),
        lambda store: service.create(store, ctx, resource_type, body, if_none_exist=if_none_exist),
    )
    return write_response(ctx.base_url, result, prefer)


@router.put("/{resource_type}/{res_id}")
async def update(request: Request, resource_type: str, res_id: str) -> Response:
    _check_type(resource_type)
    _check_mutable(resource_type)
    body = await json_body(request, settings_of(request).max_request_bytes)
    prefer = parse_prefer(request)
    ctx = context_of(request, prefer)
    version = if_match_version(request)
    result = await in_transaction(
        request,
        Access(Interaction.UPDATE, (resource_type,)),
        lambda store: service.update(store, ctx, resource_type, res_id, body, if_match=version),
    )
    return write_response(ctx.base_url, result, prefer)


@router.put("/{resource_type}")
async def conditional_update(request: Request, resource_type: str) -> Response:
    _check_type(resource_type)
    _check_mutable(resource_type)
    condition = request.url.query
    if not condition:
        raise InvalidRequestError(
            "PUT to a type URL needs search criteria (conditional update) or an id"
        )
    body = await json_body(request, settings_of(request).max_request_bytes)
    prefer = parse_prefer(request)
    ctx = context_of(request, prefer)
    result = await in_transaction(
        request,
        Access(Interaction.UPDATE, (resource_type,)),
        lambda store: service.conditional_update(store, ctx, resource_type, condition, body),
    )
    return write_response(ctx.base_url, result, prefer)


@router.delete("/{resource_type}/{res_id}")
async def delete(request: Request, resource_type: str, res_id: str) -> Response:
    _check_type(resource_type)
    _check_mutable(resource_type)
    await in_transaction(
        request,
        Access(Interaction.DELETE, (resource_type,)),
        lambda store: service.delete(store, resource_type, res_id),
    )
    return Response(status_code=204)


@router.delete("/{resource_type}")
async def conditional_delete(request: Request, resource_type: str) -> Response:
    _check_type(resource_type)
    _check_mutable(resource_type)
    condition = request.url.query
    if not condition:
        raise NotSupportedError(
            "DELETE on a type needs search criteria (conditional delete)", status=405
        )
    ctx = context_of(request)
    await in_transaction(
        request,
        Access(Interaction.DELETE, (resource_type,)),
        lambda store: service.conditional_delete(store, ctx, resource_type, condition),
    )
    return Response(status_code=204)
