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
from carebridge.kit.errors import AppError, InvalidRequestError, information_outcome

FHIR_JSON = "application/fhir+json"
NDJSON = "application/fhir+ndjson"
_ACCEPTED_BODY_TYPES = ("application/fhir+json", "application/json", "application/json+fhir", "")


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
    digits = value.strip().removeprefix("W/").strip('"')
    if not digits.isdigit():
        raise InvalidRequestError(f'If-Match {value!r} must be a version ETag like W/"3"')
    return int(digits)


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
