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
from typing import Any, TypeVar

from carebridge.adherence.engine import DateRange
from carebridge.adherence.evaluation import GroupBy, ReportType
from carebridge.adherence.measures import MeasureId
from carebridge.kit.errors import InvalidRequestError

OPERATION = "patient-adherence"
Value = date | bool | str
_BOOLEANS = {"true": True, "false": False}
T = TypeVar("T")


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
    period = _period(values)
    codes = [str(v) for v in values.get("measure", [])]
    unknown = sorted(set(codes) - {m.value for m in MeasureId})
    if unknown:
        known = ", ".join(m.value for m in MeasureId)
        raise InvalidRequestError(f"unknown measure {', '.join(unknown)}; known: {known}")
    measures = tuple(dict.fromkeys(MeasureId(c) for c in codes)) or tuple(MeasureId)
    persist = bool(values.get("persist", [False])[0])
    return AdherenceRequest(period, measures, persist)


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


EVALUATE_OPERATION = "measure-evaluate-measure"
_REPORT_TYPES = {
    "summary": ReportType.SUMMARY,
    "population": ReportType.SUMMARY,
    "subject-list": ReportType.SUBJECT_LIST,
    "individual": ReportType.INDIVIDUAL,
    "subject": ReportType.INDIVIDUAL,
}


@dataclass(frozen=True)
class EvaluateRequest:
    period: DateRange
    report_type: ReportType
    subject: str | None = None  # a Patient id
    group_by: GroupBy | None = None
    persist: bool = False


def evaluate_request(pairs: Sequence[tuple[str, str]]) -> EvaluateRequest:
    """The validated request of ``Measure/[id]/$evaluate-measure`` from its query parameters.

    R4 names the report types subject, subject-list and population and the patient parameter
    ``patient``; MeasureReport.type and R4B/R5 say individual, summary and ``subject``: both are
    accepted.
    """
    values = parse_operation_parameters(operation_definition(EVALUATE_OPERATION), pairs)
    period = _period(values)
    subjects = [str(v) for v in (*values.get("subject", []), *values.get("patient", []))]
    if len(subjects) > 1:
        raise InvalidRequestError("give subject or patient, not both")
    subject = _patient_id(subjects[0]) if subjects else None
    default = ReportType.INDIVIDUAL if subject else ReportType.SUMMARY
    report_type = _choice("reportType", values, _REPORT_TYPES) or default
    group_by = _choice("groupBy", values, {g.value: g for g in GroupBy})
    if (report_type is ReportType.INDIVIDUAL) != (subject is not None):
        raise InvalidRequestError("reportType individual needs a subject, and only it takes one")
    if group_by is not None and report_type is ReportType.INDIVIDUAL:
        raise InvalidRequestError("groupBy applies to summary and subject-list reports")
    persist = bool(values.get("persist", [False])[0])
    return EvaluateRequest(period, report_type, subject, group_by, persist)


def _period(values: Mapping[str, list[Value]]) -> DateRange:
    start, end = values["periodStart"][0], values["periodEnd"][0]
    assert isinstance(start, date)
    assert isinstance(end, date)
    if end < start:
        raise InvalidRequestError(f"periodEnd ({end}) is before periodStart ({start})")
    return DateRange(start, end)


def _choice(name: str, values: Mapping[str, list[Value]], known: Mapping[str, T]) -> T | None:
    given = [str(v) for v in values.get(name, [])]
    if not given:
        return None
    if given[0] not in known:
        raise InvalidRequestError(f"{name} must be one of {', '.join(known)}, got {given[0]!r}")
    return known[given[0]]


def _patient_id(reference: str) -> str:
    kind, _, patient_id = reference.rpartition("/")
    if kind not in ("Patient", "") or not patient_id:
        raise InvalidRequestError(f"subject must be Patient/<id>, got {reference!r}")
    return patient_id
