"""Resource -> search index rows, computed at write time (pure).

Each indexed parameter's compiled FHIRPath gives the elements to index; each element is turned
into rows according to the parameter type and the element's data type, following the mapping table
in R4 search.html ("Search parameter types" and "Data type" matrices):

    token      Coding, CodeableConcept (every coding), Identifier, ContactPoint, code/string/uri,
               boolean -> (system, code)
    string     string, HumanName (family, given, prefix, suffix, text), Address (every part)
    date       date, dateTime, instant, Period, Timing (events and bounds) -> [start, end]
    reference  Reference (relative Type/id or absolute URL), canonical -> (type, id, url)
    quantity   Quantity, Age, Duration, Money, SimpleQuantity -> (value, system, code, unit)
    number     integer, decimal
    uri        uri, url, canonical
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from carebridge.fhir.search.dates import HIGH, LOW, InvalidDateError, date_range
from carebridge.fhir.search.parameters import SearchParam, registry
from carebridge.fhir.search.values import normalize_string, parse_reference

TokenRow = tuple[str, str | None, str]  # param, system, code
StringRow = tuple[str, str, str]  # param, normalized, exact
DateRow = tuple[str, datetime, datetime]  # param, start, end
ReferenceRow = tuple[str, str | None, str | None, str | None]  # param, type, id, url
QuantityRow = tuple[
    str, float, str | None, str | None, str | None
]  # param, value, system, code, unit
NumberRow = tuple[str, float]
UriRow = tuple[str, str]

_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")
_CURRENCY_SYSTEM = "urn:iso:std:iso:4217"


@dataclass
class IndexRows:
    token: list[TokenRow] = field(default_factory=list)
    string: list[StringRow] = field(default_factory=list)
    date: list[DateRow] = field(default_factory=list)
    reference: list[ReferenceRow] = field(default_factory=list)
    quantity: list[QuantityRow] = field(default_factory=list)
    number: list[NumberRow] = field(default_factory=list)
    uri: list[UriRow] = field(default_factory=list)


def index_rows(resource: dict[str, Any]) -> IndexRows:
    """Every index row for `resource`, deduplicated per table."""
    rows = IndexRows()
    for param in registry().indexed_params(resource["resourceType"]):
        if param.first_keys.isdisjoint(resource.keys()):
            continue
        values = [v for path in param.paths for v in path.evaluate(resource)]
        if values:
            _ROW_BUILDERS[param.type](param, values, rows)
    _dedupe(rows)
    return rows


def _dedupe(rows: IndexRows) -> None:
    for name in ("token", "string", "date", "reference", "quantity", "number", "uri"):
        table = getattr(rows, name)
        if len(table) > 1:
            setattr(rows, name, list(dict.fromkeys(table)))


def _tokens(param: SearchParam, values: list[Any], rows: IndexRows) -> None:
    rows.token.extend((param.code, system, code) for system, code in _token_pairs(values))


def _token_pairs(values: Iterable[Any]) -> Iterator[tuple[str | None, str]]:
    for value in values:
        if isinstance(value, bool):
            yield None, "true" if value else "false"
        elif isinstance(value, str):
            yield None, value
        elif isinstance(value, dict):
            if "coding" in value:
                yield from _token_pairs(value["coding"])
            elif "code" in value and isinstance(value["code"], str):
                yield value.get("system"), value["code"]
            elif "value" in value and isinstance(value["value"], str):
                yield value.get("system"), value["value"]


def _strings(param: SearchParam, values: list[Any], rows: IndexRows) -> None:
    for text in _string_parts(values):
        rows.string.append((param.code, normalize_string(text), text))


def _string_parts(values: Iterable[Any]) -> Iterator[str]:
    for value in values:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            parts = _NAME_PARTS if ("family" in value or "given" in value) else _ADDRESS_PARTS
            for part in parts:
                item = value.get(part)
                if isinstance(item, list):
                    yield from (i for i in item if isinstance(i, str))
                elif isinstance(item, str):
                    yield item


def _dates(param: SearchParam, values: list[Any], rows: IndexRows) -> None:
    for start, end in _date_ranges(values):
        rows.date.append((param.code, start, end))


def _date_ranges(values: Iterable[Any]) -> Iterator[tuple[datetime, datetime]]:
    for value in values:
        try:
            if isinstance(value, str):
                yield date_range(value)
            elif isinstance(value, dict) and ("start" in value or "end" in value):
                yield _period(value)
            elif isinstance(value, dict) and ("event" in value or "repeat" in value):
                yield from _timing(value)
        except InvalidDateError:
            continue


def _period(value: dict[str, Any]) -> tuple[datetime, datetime]:
    start = date_range(value["start"])[0] if value.get("start") else LOW
    end = date_range(value["end"])[1] if value.get("end") else HIGH
    return start, end


def _timing(value: dict[str, Any]) -> Iterator[tuple[datetime, datetime]]:
    for event in value.get("event", []):
        yield date_range(event)
    bounds = value.get("repeat", {}).get("boundsPeriod")
    if bounds:
        yield _period(bounds)


def _references(param: SearchParam, values: list[Any], rows: IndexRows) -> None:
    for value in values:
        text = value.get("reference") if isinstance(value, dict) else value
        if isinstance(text, str):
            rtype, rid, url = parse_reference(text)
            if rtype is None and rid is None and url is None:
                continue
            if rtype is None and len(param.targets) == 1 and rid is not None:
                rtype = param.targets[0]
            rows.reference.append((param.code, rtype, rid, url))


def _quantities(param: SearchParam, values: list[Any], rows: IndexRows) -> None:
    for value in values:
        if not isinstance(value, dict) or not isinstance(value.get("value"), int | float):
            continue
        number = float(value["value"])
        if "currency" in value:
            rows.quantity.append((param.code, number, _CURRENCY_SYSTEM, value["currency"], None))
        else:
            unit = value.get("unit")
            rows.quantity.append((param.code, number, value.get("system"), value.get("code"), unit))


def _numbers(param: SearchParam, values: list[Any], rows: IndexRows) -> None:
    for value in values:
        if isinstance(value, int | float) and not isinstance(value, bool):
            rows.number.append((param.code, float(value)))


def _uris(param: SearchParam, values: list[Any], rows: IndexRows) -> None:
    for value in values:
        if isinstance(value, str):
            rows.uri.append((param.code, value))


_ROW_BUILDERS = {
    "token": _tokens,
    "string": _strings,
    "date": _dates,
    "reference": _references,
    "quantity": _quantities,
    "number": _numbers,
    "uri": _uris,
}
