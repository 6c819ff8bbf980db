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

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from carebridge.fhir.search.access_links import AccessRow, access_rows, rules_markers
from carebridge.fhir.search.consent_rules import ConsentRow, consent_rows
from carebridge.fhir.search.dates import HIGH, LOW, InvalidDateError, date_range
from carebridge.fhir.search.derived import (
    identifiers_only,
    inferred_target,
    splits_words,
    unwritten,
)
from carebridge.fhir.search.fhirpath import PathSet, reference_type
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
_NAME_ONLY_PARTS = frozenset(_NAME_PARTS) - {"text"}  # an element with one of these is a HumanName
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")
_CURRENCY_SYSTEM = "urn:iso:std:iso:4217"
_CONTACT_POINT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})


@dataclass(slots=True)
class IndexRows:
    token: list[TokenRow] = field(default_factory=list)
    string: list[StringRow] = field(default_factory=list)
    date: list[DateRow] = field(default_factory=list)
    reference: list[ReferenceRow] = field(default_factory=list)
    quantity: list[QuantityRow] = field(default_factory=list)
    number: list[NumberRow] = field(default_factory=list)
    uri: list[UriRow] = field(default_factory=list)
    consent: list[ConsentRow] = field(default_factory=list)  # Consent rules (consent_rules.py)
    access: list[AccessRow] = field(default_factory=list)  # patient-actor links (access_links.py)


def index_rows(resource: dict[str, Any]) -> IndexRows:
    """Every index row for `resource`, deduplicated per table."""
    rows = IndexRows()
    params, builders, paths = _type_paths(resource["resourceType"])
    for slot, values in paths.evaluate(resource).items():
        builders[slot](params[slot], values, rows)
    if resource["resourceType"] == "Consent":
        rows.consent = consent_rows(resource, registry().resource_types)
    _dedupe(rows)
    rows.access = access_rows(resource["resourceType"], resource.get("id"), rows.reference)
    if rows.consent:
        rows.access += rules_markers(resource.get("id"), (row[0] for row in rows.consent))
    return rows


def param_index_rows(param: SearchParam, resource: dict[str, Any]) -> IndexRows:
    """The rows `param` alone would have on `resource` if it were written like any other
    parameter (what a derived parameter's rows must equal: derived.py)."""
    rows = IndexRows()
    values = [v for path in param.paths for v in path.evaluate(resource)]
    if values:
        _ROW_BUILDERS[param.type](param, values, rows)
    _dedupe(rows)
    return rows


_Builder = Callable[[SearchParam, list[Any], "IndexRows"], None]


@cache
def _type_paths(
    resource_type: str,
) -> tuple[tuple[SearchParam, ...], tuple[_Builder, ...], PathSet]:
    """The type's parameters that write rows, their row builders, and all their paths as one
    PathSet (slot = parameter). Parameters answered from other parameters' rows (derived.py)
    write nothing, or only their `:identifier` tokens."""
    skipped, identifiers = unwritten(resource_type), identifiers_only(resource_type)
    params = tuple(p for p in registry().indexed_params(resource_type) if p.code not in skipped)
    builders = tuple(
        _reference_identifiers if p.code in identifiers else _ROW_BUILDERS[p.type] for p in params
    )
    return (
        params,
        builders,
        PathSet([(slot, path) for slot, p in enumerate(params) for path in p.paths]),
    )


def _dedupe(rows: IndexRows) -> None:
    for name in ("token", "string", "date", "reference", "quantity", "number", "uri"):
        table = getattr(rows, name)
        if len(table) > 1:
            setattr(rows, name, list(dict.fromkeys(table)))


def _tokens(param: SearchParam, values: list[Any], rows: IndexRows) -> None:
    _add_tokens(param.code, values, rows.token)


def _add_tokens(code: str, values: Iterable[Any], out: list[TokenRow]) -> None:
    """(code, system, value) rows, appended to `out` (no generator: this runs on every write)."""
    for value in values:
        if isinstance(value, dict):
            coding = value.get("coding")
            if coding is not None:
                _add_tokens(code, coding, out)
            elif isinstance(token := value.get("code"), str):
                out.append((code, value.get("system"), token))
            elif isinstance(token := value.get("value"), str):
                system = value.get("system")
                # ContactPoint.system is a code (phone, email, ...), not a namespace URI
                out.append((code, None if system in _CONTACT_POINT_SYSTEMS else system, token))
        elif isinstance(value, bool):
            out.append((code, None, "true" if value else "false"))
        elif isinstance(value, str):
            out.append((code, None, value))


def _strings(param: SearchParam, values: list[Any], rows: IndexRows) -> None:
    """One row per string part; a multi-word family name is also searchable by each of its words
    ("Carreno" and "Quinones" both match "Carreno Quinones", search.html#string), with the whole
    name kept as the exact value."""
    family = splits_words(param)
    for text, is_family in _string_parts(values):
        rows.string.append((param.code, normalize_string(text), text))
        if family or is_family:
            rows.string.extend((param.code, normalize_string(w), text) for w in text.split()[1:])


def _string_parts(values: Iterable[Any]) -> Iterator[tuple[str, bool]]:
    """(text, is a family name) for strings and the string parts of HumanName and Address."""
    for value in values:
        if isinstance(value, str):
            yield value, False
        elif isinstance(value, dict):
            is_name = not _NAME_ONLY_PARTS.isdisjoint(value)
            for part in _NAME_PARTS if is_name else _ADDRESS_PARTS:
                item = value.get(part)
                for text in item if isinstance(item, list) else [item]:
                    if isinstance(text, str):
                        yield text, part == "family" and is_name


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
    """Only a Timing's outer limits matter (search.html#date): one range from the earliest event
    or bound to the latest."""
    ranges = [date_range(event) for event in value.get("event", [])]
    bounds = value.get("repeat", {}).get("boundsPeriod")
    if bounds:
        ranges.append(_period(bounds))
    if ranges:
        yield min(r[0] for r in ranges), max(r[1] for r in ranges)


def _references(param: SearchParam, values: list[Any], rows: IndexRows) -> None:
    """Reference rows; a Reference.identifier also gives a token row under `<code>:identifier`
    for the `:identifier` modifier (search.html#reference).

    The target type is the one the reference string names, else its declared `type` (what
    `where(resolve() is T)` tests, so `patient` rows are exactly the `subject` rows with target
    type Patient: derived.py), else the parameter's only target type for a bare id."""
    _reference_identifiers(param, values, rows)
    for value in values:
        text = value.get("reference") if isinstance(value, dict) else value
        if isinstance(text, str):
            rtype, rid, url = parse_reference(text)
            if rtype is None and rid is None and url is None:
                continue
            if rtype is None:
                rtype = reference_type(value)
            if rtype is None and rid is not None:
                rtype = inferred_target(param)
            rows.reference.append((param.code, rtype, rid, url))


def _reference_identifiers(param: SearchParam, values: list[Any], rows: IndexRows) -> None:
    for value in values:
        identifier = value.get("identifier") if isinstance(value, dict) else None
        if isinstance(identifier, dict) and isinstance(identifier.get("value"), str):
            rows.token.append(
                (f"{param.code}:identifier", identifier.get("system"), identifier["value"])
            )


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
