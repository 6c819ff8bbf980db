"""The entries of a transaction or batch Bundle, parsed and checked (R4 http.html#transaction):
each entry's request method and URL, its resource, If-None-Exist and If-Match, and the type, id
or search condition the URL names. `ORDER` is the processing order the specification gives
(DELETE, POST, PUT/PATCH, GET/HEAD).

`request.url` is relative to the server's base (http.html#trules, bundle.html#transaction); an
absolute URL under this server's own base is accepted as the same relative URL. Operations
(`ValueSet/$lookup`) are not supported inside a Bundle and are refused naming the entry."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from carebridge.fhir.records import StoredResource
from carebridge.fhir.validation import check_shape, known_type
from carebridge.kit.digits import required_etag_version
from carebridge.kit.errors import InvalidRequestError, NotSupportedError

ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # a URI scheme (RFC 3986 section 3.1)


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


def parse_entry(index: int, raw: Any, *, base_url: str = "") -> Entry:
    """Entry `index` of a transaction or batch; `base_url` is this server's FHIR base."""
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
        _relative(where, url, base_url),
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
    return required_etag_version(value) if isinstance(value, str) else None


def _relative(where: str, url: str, base_url: str) -> str:
    """`url` relative to the server's base: an absolute URL must start with this server's own
    base (`{base}/Patient/1` -> `Patient/1`)."""
    if not _ABSOLUTE.match(url):
        return url
    base = base_url.rstrip("/")
    if base and url.startswith(f"{base}/"):
        return url.removeprefix(f"{base}/")
    expected = f"this server's base {base}" if base else "the server's base"
    raise InvalidRequestError(
        f"{where}: request.url must be relative to {expected} (Type, Type/id or Type?query),"
        f" got {url!r}",
        expression=(f"{where}.request.url",),
    )


def _split_url(entry: Entry) -> None:
    where = f"Bundle.entry[{entry.index}]"
    path, _, query = entry.url.partition("?")
    parts = [p for p in path.split("/") if p]
    operation = next((p for p in parts if p.startswith("$")), None)
    if operation is not None:
        error = NotSupportedError(
            f"{where}: operation {operation} is not supported in a transaction or batch"
            f" (request.url {entry.url!r})"
        )
        error.expression = (f"{where}.request.url",)
        raise error
    if not parts:
        raise InvalidRequestError(
            f"{where}.request.url {entry.url!r} names no resource type",
            expression=(f"{where}.request.url",),
        )
    if not known_type(parts[0]):
        raise InvalidRequestError(
            f"{where}.request.url {entry.url!r} does not start with an R4 resource type",
            expression=(f"{where}.request.url",),
        )
    entry.res_type = parts[0]
    if len(parts) >= 2:
        entry.res_id = parts[1]
    if query:
        entry.condition = query
