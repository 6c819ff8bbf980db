"""The entries of a transaction or batch Bundle, parsed and checked (R4 http.html#transaction):
each entry's request method and URL, its resource, If-None-Exist and If-Match, and the type, id
or search condition the URL names. `ORDER` is the processing order the specification gives
(DELETE, POST, PUT/PATCH, GET/HEAD)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from carebridge.fhir.records import StoredResource
from carebridge.fhir.validation import check_shape
from carebridge.kit.errors import InvalidRequestError

ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


@dataclass
class Entry:
    index: int
    method: str
    url: str
    full_url: str | None
    resource: dict[str, Any] | None
    if_none_exist: str | None = None
    if_match: int | None = None
    res_type: str = ""
    res_id: str | None = None
    condition: str | None = None
    target: str | None = None  # Type/id this entry's fullUrl stands for
    existing: StoredResource | None = None  # conditional create that matched
    deferred: bool = False  # has conditional references, resolved after the other writes


def parse_entry(index: int, raw: Any) -> Entry:
    where = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("request"), dict):
        raise InvalidRequestError(f"{where}.request is required", expression=(f"{where}.request",))
    request = raw["request"]
    method, url = request.get("method"), request.get("url")
    if method not in ORDER or not isinstance(url, str) or not url:
        raise InvalidRequestError(
            f"{where}.request needs a method (GET/POST/PUT/DELETE) and a url",
            expression=(f"{where}.request",),
        )
    if method == "PATCH":
        raise InvalidRequestError(
            f"{where}: PATCH is not supported", expression=(f"{where}.request",)
        )
    entry = Entry(
        index,
        method,
        url,
        raw.get("fullUrl"),
        raw.get("resource"),
        request.get("ifNoneExist"),
        _etag_version(request.get("ifMatch")),
    )
    _split_url(entry)
    if method in ("POST", "PUT"):
        resource = check_shape(entry.resource, expected_type=entry.res_type)
        entry.resource = resource
    return entry


def _etag_version(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    digits = value.removeprefix("W/").strip('"')
    if not digits.isdigit():
        raise InvalidRequestError(f'If-Match {value!r} is not a version ETag like W/"3"')
    return int(digits)


def _split_url(entry: Entry) -> None:
    path, _, query = entry.url.partition("?")
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise InvalidRequestError(
            f"Bundle.entry[{entry.index}].request.url {entry.url!r} names no resource type"
        )
    entry.res_type = parts[0]
    if len(parts) >= 2:
        entry.res_id = parts[1]
    if query:
        entry.condition = query
