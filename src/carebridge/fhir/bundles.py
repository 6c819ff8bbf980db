"""Building response Bundles: searchset, history, and transaction/batch response entries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from carebridge.fhir import service
from carebridge.fhir.records import HistoryPage, Outcome, SearchPage, StoredResource, WriteResult
from carebridge.fhir.search.dates import instant_text
from carebridge.fhir.search.query import SearchQuery
from carebridge.fhir.service import FhirContext
from carebridge.fhir.store import FhirStore
from carebridge.fhir.validation import mandatory_elements, summary_elements
from carebridge.kit.errors import AppError, Issue, operation_outcome

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}
_REASONS = {200: "OK", 201: "Created", 204: "No Content"}


def etag(version: int) -> str:
    return f'W/"{version}"'


def location(ctx_base: str, stored: StoredResource) -> str:
    return f"{ctx_base}/{stored.res_type}/{stored.res_id}/_history/{stored.version}"


def entry_response(result: WriteResult, minimal: bool, status: int | None = None) -> dict[str, Any]:
    code = status or result.status
    response: dict[str, Any] = {"status": f"{code} {_REASONS.get(code, '')}".strip()}
    stored = result.stored
    entry: dict[str, Any] = {"response": response}
    if stored is not None and result.outcome not in (Outcome.DELETED, Outcome.NOT_PRESENT):
        response["location"] = f"{stored.res_type}/{stored.res_id}/_history/{stored.version}"
        response["etag"] = etag(stored.version)
        response["lastModified"] = instant_text(stored.last_updated)
        if not minimal and stored.content is not None:
            entry["resource"] = stored.content
    return entry


def error_entry(exc: AppError) -> dict[str, Any]:
    return {"response": {"status": str(exc.status), "outcome": exc.to_operation_outcome()}}


def read_entry(
    store: FhirStore, ctx: FhirContext, res_type: str, res_id: str | None, condition: str | None
) -> dict[str, Any]:
    """A GET inside a Bundle: a read or a search."""
    if res_id:
        stored = store.read(res_type, res_id)
        return {
            "resource": stored.content,
            "response": {"status": "200 OK", "etag": etag(stored.version)},
        }
    params = service.parse_condition(condition) if condition else []
    query = service.query_for(ctx, res_type, params)
    page = store.search(query)
    bundle = searchset(ctx.base_url, f"{res_type}", params, query, page)
    return {"resource": bundle, "response": {"status": "200 OK"}}


def _full_url(base: str, stored: StoredResource) -> str:
    return f"{base}/{stored.res_type}/{stored.res_id}"


def _shape(content: dict[str, Any], query: SearchQuery) -> dict[str, Any]:
    """`_elements` or `_summary` applied to a match (search.html#summary, #elements): the kept
    elements plus id, meta and the mandatory elements, tagged SUBSETTED."""
    rtype = content.get("resourceType", "")
    always = {"resourceType", "id", "meta"}
    if query.elements:
        keep = set(query.elements) | {f"_{e}" for e in query.elements}
        keep |= always | mandatory_elements(rtype)
    elif query.summary == "true":
        keep = always | summary_elements(rtype) | mandatory_elements(rtype)
    elif query.summary == "text":
        keep = always | {"text"} | mandatory_elements(rtype)
    elif query.summary == "data":
        keep = set(content) - {"text"}
    else:
        return content
    shaped = {k: v for k, v in content.items() if k in keep}
    meta = dict(shaped.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    shaped["meta"] = meta
    return shaped


def searchset(
    base: str, path: str, params: Sequence[tuple[str, str]], query: SearchQuery, page: SearchPage
) -> dict[str, Any]:
    """A searchset Bundle with self/first/next/previous links (search.html#paging)."""
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if page.total is not None:
        bundle["total"] = page.total
    bundle["link"] = _links(base, path, params, query, page)
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": _full_url(base, m),
            "resource": _shape(m.content or {}, query),
            "search": {"mode": "match"},
        }
        for m in page.matches
    ]
    entries += [
        {"fullUrl": _full_url(base, r), "resource": r.content, "search": {"mode": "include"}}
        for r in page.included
    ]
    if query.ignored:
        outcome = operation_outcome(
            [
                Issue("warning", "not-supported", f"search parameter {name!r} was ignored")
                for name in query.ignored
            ]
        )
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    if entries:
        bundle["entry"] = entries
    return bundle


def _links(
    base: str, path: str, params: Sequence[tuple[str, str]], query: SearchQuery, page: SearchPage
) -> list[dict[str, str]]:
    kept = [(k, v) for k, v in params if k not in ("_offset", "_count") and k not in query.ignored]

    def url(offset: int) -> str:
        qs = urlencode([*kept, ("_count", str(query.count)), ("_offset", str(offset))])
        return f"{base}/{path}?{qs}"

    links = [{"relation": "self", "url": url(query.offset)}, {"relation": "first", "url": url(0)}]
    more = len(page.matches) == query.count and (
        page.total is None or query.offset + query.count < page.total
    )
    if more and query.summary != "count":
        links.append({"relation": "next", "url": url(query.offset + query.count)})
    if query.offset > 0:
        links.append({"relation": "previous", "url": url(max(0, query.offset - query.count))})
    return links


def history_bundle(
    base: str,
    path: str,
    page: HistoryPage,
    count: int,
    offset: int,
    extra: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """A history Bundle (http.html#history): newest first, deletions without a resource."""
    entries = []
    for item in page.entries:
        entry: dict[str, Any] = {
            "fullUrl": _full_url(base, item),
            "request": {
                "method": item.method,
                "url": f"{item.res_type}/{item.res_id}" if item.method != "POST" else item.res_type,
            },
            "response": {
                "status": "204 No Content"
                if item.deleted
                else ("201 Created" if item.version == 1 else "200 OK"),
                "etag": etag(item.version),
                "lastModified": instant_text(item.last_updated),
            },
        }
        if item.content is not None:
            entry["resource"] = item.content
        entries.append(entry)
    links = [
        {
            "relation": "self",
            "url": f"{base}/{path}?" + urlencode([*extra, ("_count", count), ("_offset", offset)]),
        }
    ]
    if offset + count < page.total:
        links.append(
            {
                "relation": "next",
                "url": f"{base}/{path}?"
                + urlencode([*extra, ("_count", count), ("_offset", offset + count)]),
            }
        )
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "history",
        "total": page.total,
        "link": links,
    }
    if entries:
        bundle["entry"] = entries
    return bundle
