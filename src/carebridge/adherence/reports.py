"""PDC results as FHIR R4 resources: the ``$adherence`` Parameters and stored MeasureReports.

Pure: ``PdcResult`` in, plain FHIR dicts out.

- Parameters (R4 parameters.html): one ``measure`` parameter per measure, its parts as declared
  in the operation's OperationDefinition (``definitions/patient-adherence.json``).
- MeasureReport (R4 measurereport.html): type ``individual``, one group whose populations use the
  codes of http://terminology.hl7.org/CodeSystem/measure-population (initial-population,
  denominator, denominator-exclusion, numerator) with a count of 0 or 1, and ``measureScore`` the
  PDC. Mapping of the PQA rules (PQA PDC measure specification, docs/clinical.md) onto them: the
  initial population and denominator are patients meeting the age, two-fill and 91-day rules;
  hospice, ESRD, the exclusion drugs and a treatment period spent in stays are denominator
  exclusions; the numerator is PDC >= 80 %.
"""

from __future__ import annotations

import uuid
from typing import Any

from carebridge.adherence.engine import DateRange, PdcResult
from carebridge.adherence.measures import ExclusionReason, MeasureId

MEASURE_BASE = "https://carebridge.dev/fhir/Measure/"
POPULATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-population"
_ID_NAMESPACE = uuid.UUID("6f1f3b0e-5a43-4c43-9d7e-3d2b0f6a4d11")
NOT_IN_DENOMINATOR = frozenset(
    {
        ExclusionReason.UNDER_18,
        ExclusionReason.FEWER_THAN_TWO_FILLS,
        ExclusionReason.IPSD_TOO_LATE,
    }
)

Resource = dict[str, Any]


def adherence_parameters(
    results: tuple[PdcResult, ...], report_ids: dict[MeasureId, str] | None = None
) -> Resource:
    """The ``$adherence`` output: one ``measure`` parameter per result."""
    report_ids = report_ids or {}
    return {
        "resourceType": "Parameters",
        "parameter": [_measure_parameter(r, report_ids.get(r.measure)) for r in results],
    }


def _measure_parameter(result: PdcResult, report_id: str | None) -> Resource:
    parts: list[Resource] = [
        {"name": "code", "valueCode": result.measure.value},
        {"name": "eligible", "valueBoolean": result.eligible},
    ]
    if result.pdc is not None:
        parts.append({"name": "pdc", "valueDecimal": round(result.pdc, 4)})
    parts += [
        {"name": "adherent", "valueBoolean": result.adherent},
        {"name": "daysCovered", "valueInteger": result.days_covered},
        {"name": "daysInPeriod", "valueInteger": result.days_in_period},
    ]
    if result.exclusion_reason is not None:
        parts.append({"name": "exclusionReason", "valueString": result.exclusion_reason.value})
    if report_id is not None:
        parts.append({"name": "measureReport", "valueReference": {"reference": report_id}})
    return {"name": "measure", "part": parts}


def measure_report_id(patient_id: str, measure: MeasureId, period: DateRange) -> str:
    """Same patient, measure and period, same id: a rerun updates the report (a UUID v5)."""
    key = f"{patient_id}|{measure.value}|{period.start.isoformat()}|{period.end.isoformat()}"
    return str(uuid.uuid5(_ID_NAMESPACE, key))


def measure_report(patient_id: str, result: PdcResult, period: DateRange) -> Resource:
    """An individual MeasureReport for one patient and measure (R4 measurereport.html).

    No ``date`` is written: the content depends only on the inputs, so rerunning with unchanged
    data leaves the stored version as it is.
    """
    group: Resource = {"population": _populations(result)}
    if result.pdc is not None:
        group["measureScore"] = {"value": round(result.pdc, 4)}
    report: Resource = {
        "resourceType": "MeasureReport",
        "id": measure_report_id(patient_id, result.measure, period),
        "status": "complete",
        "type": "individual",
        "measure": MEASURE_BASE + result.measure.value,
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "improvementNotation": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/measure-improvement-notation",
                    "code": "increase",
                }
            ]
        },
        "group": [group],
    }
    return report


def population_flags(result: PdcResult) -> dict[str, bool]:
    """Membership of one result in each R4 measure population (codes of POPULATION_SYSTEM)."""
    in_denominator = result.exclusion_reason not in NOT_IN_DENOMINATOR
    return {
        "initial-population": in_denominator,
        "denominator": in_denominator,
        "denominator-exclusion": in_denominator and not result.eligible,
        "numerator": result.adherent,
    }


def _populations(result: PdcResult) -> list[Resource]:
    return [
        {"code": {"coding": [{"system": POPULATION_SYSTEM, "code": code}]}, "count": int(flag)}
        for code, flag in population_flags(result).items()
    ]
