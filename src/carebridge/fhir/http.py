"""HTTP plumbing for /fhir: media types, request bodies, Prefer headers, responses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from carebridge.fhir.bundles import etag, location
from carebridge.fhir.records import StoredResource, WriteResult
from carebridge.fhir.search.dates import instant_text
from carebridge.kit.digits import required_etag_version
from carebridge.kit.errors import AppError, InvalidRequestError, information_outcome

FHIR_JSON = "application/fhir+json"
NDJSON = "application/fhir+ndjson"
_ACCEPTED_BODY_TYPES = ("application/fhir+json", "application/json", "application/json+fhir", "")
# http.html#mime: the `_format` values and media ranges that let this server answer in JSON
_JSON_FORMATS = frozenset(
    {"json", "application/json", "application/fhir+json", "application/json+fhir"}
)
_JSON_RANGES = _JSON_FORMATS - {"json"} | {"*/*", "application/*"}


@dataclass(frozen=True)
class Prefer:
    returns: str = "representation"  # minimal | representation | OperationOutcome
    handling: str = "lenient"  # strict | lenient
    respond_async: bool = False


def parse_prefer(request: Request) -> Prefer:
    values: dict[str, str] = {}
    respond_async = False
    for header in request.headers.getlist("prefer"):
        for item in header.split(","):
            key, _, value = item.strip().partition("=")
            if key.strip() == "respond-async":
                respond_async = True
            elif value:
                values[key.strip().lower()] = value.strip().strip('"')
    returns = values.get("return", "representation")
    if returns not in ("minimal", "representation", "OperationOutcome"):
        returns = "representation"
    handling = values.get("handling", "lenient")
    return Prefer(returns, "strict" if handling == "strict" else "lenient", respond_async)


def check_json_acceptable(request: Request) -> None:
    """Refuse a request that accepts no JSON with 406 Not Acceptable (http.html#mime).

    This server writes JSON only (no XML, no Turtle). `_format` overrides the Accept header; its
    JSON values are `json`, `application/json` and `application/fhir+json` (an unencoded `+` in
    the query string arrives as a space and is read as `+`). Without `_format`, an Accept header
    must allow one of those media types (`*/*` and `application/*` do, a range with `q=0` does
    not); no Accept header means JSON.
    """
    formats = [f for f in request.query_params.getlist("_format") if f.strip()]
    refused = [f for f in formats if _media(f.replace(" ", "+")) not in _JSON_FORMATS]
    if refused:
        raise AppError(
            406,
            "not-supported",
            f"_format={refused[0]!r} is not supported: this server answers in JSON only"
            " (_format=json or application/fhir+json)",
        )
    accept = ",".join(request.headers.getlist("accept")).strip()
    if not formats and accept and not _accepts_json(accept):
        raise AppError(
            406,
            "not-supported",
            f"Accept: {accept[:200]!r} allows no JSON media type: this server answers in"
            " application/fhir+json only",
        )


def _media(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _accepts_json(accept: str) -> bool:
    """Whether an Accept header (RFC 9110 section 12.5.1) allows a JSON media type."""
    for media_range in accept.split(","):
        media, *params = media_range.split(";")
        if _media(media) in _JSON_RANGES and _quality(params) > 0:
            return True
    return False


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 1.0  # a malformed weight does not refuse the range
    return 1.0


def fhir_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = orjson.dumps(body) if body is not None else b""
    media = FHIR_JSON if body is not None else None
    return Response(content=content, status_code=status, media_type=media, headers=headers)


def error_response(exc: AppError) -> Response:
    return fhir_response(exc.to_operation_outcome(), exc.status, exc.headers or None)


async def json_body(request: Request, max_bytes: int) -> Any:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in _ACCEPTED_BODY_TYPES:
        raise AppError(
            415,
            "not-supported",
            f"content type {media!r} is not supported; send application/fhir+json",
        )
    raw = await request.body()
    if len(raw) > max_bytes:
        raise AppError(
            413, "too-costly", f"the request body is {len(raw)} bytes; the limit is {max_bytes}"
        )
    if not raw.strip():
        raise InvalidRequestError("the request has no body; a FHIR JSON resource is required")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"the body is not valid JSON: {exc}") from None


def if_match_version(request: Request) -> int | None:
    value = request.headers.get("if-match")
    if value is None:
        return None
    return required_etag_version(value.strip())


def resource_headers(base: str, stored: StoredResource, *, with_location: bool) -> dict[str, str]:
    headers = {"ETag": etag(stored.version), "Last-Modified": instant_text(stored.last_updated)}
    if with_location:
        headers["Location"] = location(base, stored)
        headers["Content-Location"] = location(base, stored)
    return headers


def write_response(base: str, result: WriteResult, prefer: Prefer) -> Response:
    """Response to create/update per `Prefer: return=` (http.html#ops)."""
    stored = result.stored
    assert stored is not None
    headers = resource_headers(base, stored, with_location=True)
    if prefer.returns == "minimal":
        return fhir_response(None, result.status, headers)
    if prefer.returns == "OperationOutcome":
        message = (
            f"{stored.res_type}/{stored.res_id} version {stored.version}: {result.outcome.value}"
        )
        return fhir_response(information_outcome(message), result.status, headers)
    return fhir_response(stored.content, result.status, headers)
