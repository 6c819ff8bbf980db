"""Parameters of ``Patient/$adherence``, parsed and validated from its OperationDefinition.

The OperationDefinition (``definitions/patient-adherence.json``, R4 operationdefinition.html) is
the single statement of what the operation accepts: names, cardinality (``min``/``max``) and
types of the ``in`` parameters. ``parse_operation_parameters`` reads any instance of it; the
adherence-specific checks (a known measure code, a period that ends after it starts) follow in
``adherence_request``. Pure: no I/O beyond reading the packaged definition once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from carebridge.adherence.engine import DateRange
from carebridge.adherence.measures import MeasureId
from carebridge.kit.errors import InvalidRequestError

OPERATION = "patient-adherence"
Value = date | bool | str
_BOOLEANS = {"true": True, "false": False}


@dataclass(frozen=True)
class AdherenceRequest:
    period: DateRange
    measures: tuple[MeasureId, ...]
    persist: bool = False


@cache
def operation_definition(name: str = OPERATION) -> Mapping[str, Any]:
    """The packaged OperationDefinition resource ``name``.json."""
    text = resources.files("carebridge.adherence.definitions").joinpath(f"{name}.json").read_text()
    definition: dict[str, Any] = json.loads(text)
    return definition


def parse_operation_parameters(
    definition: Mapping[str, Any], pairs: Sequence[tuple[str, str]]
) -> dict[str, list[Value]]:
    """Query parameters -> typed values per ``in`` parameter, checked against the definition.

    Unknown names, values that do not parse as the declared type, and cardinality outside
    ``min``..``max`` are 400 errors (R4 operations.html: the server rejects what it cannot honour).
    A ``code`` parameter may list several values separated by commas.
    """
    declared = {p["name"]: p for p in definition["parameter"] if p["use"] == "in"}
    values: dict[str, list[Value]] = {}
    for name, raw in pairs:
        if name.startswith("_"):
            continue  # _format, _pretty: general result parameters
        parameter = declared.get(name)
        if parameter is None:
            raise InvalidRequestError(
                f"unknown parameter {name!r} for ${definition['code']}; "
                f"known: {', '.join(sorted(declared))}"
            )
        values.setdefault(name, []).extend(_typed(name, parameter["type"], raw))
    for name, parameter in declared.items():
        _check_cardinality(name, parameter, len(values.get(name, [])))
    return values


def adherence_request(pairs: Sequence[tuple[str, str]]) -> AdherenceRequest:
    """The validated request of ``Patient/$adherence`` from its query parameters."""
    values = parse_operation_parameters(operation_definition(), pairs)
    start, end = values["periodStart"][0], values["periodEnd"][0]
    assert isinstance(start, date)
    assert isinstance(end, date)
    if end < start:
        raise InvalidRequestError(f"periodEnd ({end}) is before periodStart ({start})")
    codes = [str(v) for v in values.get("measure", [])]
    unknown = sorted(set(codes) - {m.value for m in MeasureId})
    if unknown:
        known = ", ".join(m.value for m in MeasureId)
        raise InvalidRequestError(f"unknown measure {', '.join(unknown)}; known: {known}")
    measures = tuple(dict.fromkeys(MeasureId(c) for c in codes)) or tuple(MeasureId)
    persist = bool(values.get("persist", [False])[0])
    return AdherenceRequest(DateRange(start, end), measures, persist)


def _typed(name: str, type_: str, raw: str) -> list[Value]:
    if type_ == "date":
        return [_date(name, raw)]
    if type_ == "boolean":
        if raw not in _BOOLEANS:
            raise InvalidRequestError(f"{name} must be true or false, got {raw!r}")
        return [_BOOLEANS[raw]]
    if type_ == "code":
        codes = [c.strip() for c in raw.split(",")]
        if not all(codes):
            raise InvalidRequestError(f"{name} has an empty code in {raw!r}")
        return list(codes)
    return [raw]


def _date(name: str, raw: str) -> date:
    """A full FHIR date (YYYY-MM-DD); partial dates do not name a day and are refused."""
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidRequestError(f"{name} must be a date YYYY-MM-DD, got {raw!r}") from None


def _check_cardinality(name: str, parameter: Mapping[str, Any], count: int) -> None:
    if count < int(parameter.get("min", 0)):
        raise InvalidRequestError(f"parameter {name!r} is required")
    maximum = parameter.get("max", "*")
    if maximum != "*" and count > int(maximum):
        raise InvalidRequestError(f"parameter {name!r} may appear at most {maximum} time(s)")
