"""``Measure/$evaluate-measure`` as FHIR R4: the Measure resources and population MeasureReports.

Pure: scored (patient, result, stratum) rows in, plain FHIR dicts out.

- Measure (R4 measure.html): one per PQA measure, ids ``pdc-dr``, ``pdc-rasa``, ``pdc-sta``;
  ``url`` is the canonical the individual MeasureReports already name (``reports.MEASURE_BASE``),
  scoring ``proportion``, the four populations of the R4 measure-population code system and a
  ``store`` stratifier.
- MeasureReport (R4 measurereport.html, measure-operation-evaluate-measure.html): ``summary``
  (population counts, stratified by store or organisation) or ``subject-list`` (the same, each
  population also naming its patients in a contained List). ``measureScore`` is the PQA rate:
  the proportion of patients in the denominator, exclusions removed, with PDC >= 80 %.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from carebridge.adherence.engine import DateRange, PdcResult
from carebridge.adherence.measures import MeasureId, measure
from carebridge.adherence.reports import (
    MEASURE_BASE,
    POPULATION_SYSTEM,
    population_flags,
)

Resource = dict[str, Any]
MEASURE_IDS = {m.value.lower(): m for m in MeasureId}  # pdc-dr -> PDC-DR
POPULATIONS = ("initial-population", "denominator", "denominator-exclusion", "numerator")
STRATIFIER_SYSTEM = "https://carebridge.dev/fhir/CodeSystem/adherence-stratifier"
UNATTRIBUTED = "unattributed"
# R4 requires a criteria Expression per population. There is no CQL library: the criteria name
# the population and the engine (adherence/engine.py) decides membership.
_CRITERIA = {
    "initial-population": "Initial Population",
    "denominator": "Denominator",
    "denominator-exclusion": "Denominator Exclusion",
    "numerator": "Numerator",
}
_CRITERIA_NOTE = "Evaluated by carebridge's PQA PDC engine (docs/clinical.md), not by CQL."
_ID_NAMESPACE = uuid.UUID("0f5d8a4e-2b6c-4f1e-8a57-5c1f6e0b9d23")
_IMPROVEMENT = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/measure-improvement-notation",
            "code": "increase",
        }
    ]
}


class ReportType(StrEnum):
    INDIVIDUAL = "individual"
    SUBJECT_LIST = "subject-list"
    SUMMARY = "summary"


class GroupBy(StrEnum):
    STORE = "store"
    ORGANIZATION = "organization"


@dataclass(frozen=True)
class Scored:
    """One patient's result for the measure, and the stratum (a Location or Organization
    reference, or ``UNATTRIBUTED``) it is counted in."""

    patient_id: str
    result: PdcResult
    stratum: str = UNATTRIBUTED


def measure_resource(measure_id: MeasureId) -> Resource:
    """The R4 Measure resource of one PQA adherence measure."""
    definition = measure(measure_id)
    return {
        "resourceType": "Measure",
        "id": measure_id.value.lower(),
        "url": MEASURE_BASE + measure_id.value,
        "version": "1",
        "name": measure_id.value.replace("-", ""),
        "title": definition.title,
        "status": "active",
        "description": (
            f"PQA Proportion of Days Covered, {definition.title}: the share of patients in the "
            "denominator (>= 18, two fills on different days, index date >= 91 days before the "
            "treatment end; hospice, ESRD and the measure's exclusion drugs excluded) whose PDC "
            "is at least 80 %."
        ),
        "scoring": _concept("http://terminology.hl7.org/CodeSystem/measure-scoring", "proportion"),
        "improvementNotation": _IMPROVEMENT,
        "group": [
            {
                "population": [
                    {
                        "code": _concept(POPULATION_SYSTEM, code),
                        "criteria": {
                            "language": "text/cql-identifier",
                            "expression": _CRITERIA[code],
                            "description": _CRITERIA_NOTE,
                        },
                    }
                    for code in POPULATIONS
                ],
                "stratifier": [
                    {
                        "code": _concept(STRATIFIER_SYSTEM, GroupBy.STORE.value),
                        "description": "The pharmacy (Location) of the latest qualifying fill.",
                    }
                ],
            }
        ],
    }


def population_report(
    measure_id: MeasureId,
    period: DateRange,
    scored: Sequence[Scored],
    *,
    report_type: ReportType = ReportType.SUMMARY,
    group_by: GroupBy | None = None,
) -> Resource:
    """A summary or subject-list MeasureReport over ``scored`` (R4 measurereport.html)."""
    group: Resource = {"population": _populations(scored, listed=report_type)}
    score = adherent_rate(r.result for r in scored)
    if score is not None:
        group["measureScore"] = {"value": round(score, 4)}
    if group_by is not None:
        group["stratifier"] = [_stratifier(scored, group_by)]
    report: Resource = {
        "resourceType": "MeasureReport",
        "id": population_report_id(measure_id, period, report_type, group_by),
        "status": "complete",
        "type": report_type.value,
        "measure": MEASURE_BASE + measure_id.value,
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "improvementNotation": _IMPROVEMENT,
        "group": [group],
    }
    if report_type is ReportType.SUBJECT_LIST:
        report["contained"] = _subject_lists(scored)
    return report


def adherent_rate(results: Iterable[PdcResult]) -> float | None:
    """Numerator over denominator less exclusions (PQA's rate); None with nobody to score."""
    eligible = adherent = 0
    for result in results:
        eligible += result.eligible
        adherent += result.adherent
    return adherent / eligible if eligible else None


def population_report_id(
    measure_id: MeasureId, period: DateRange, report_type: ReportType, group_by: GroupBy | None
) -> str:
    """Same measure, period, type and grouping, same id: a rerun updates the stored report."""
    key = "|".join(
        (measure_id.value, period.start.isoformat(), period.end.isoformat(), report_type.value)
    )
    return str(uuid.uuid5(_ID_NAMESPACE, f"{key}|{group_by or ''}"))


def _counts(scored: Iterable[Scored]) -> dict[str, list[str]]:
    members: dict[str, list[str]] = {code: [] for code in POPULATIONS}
    for row in scored:
        for code, flag in population_flags(row.result).items():
            if flag:
                members[code].append(row.patient_id)
    return members


def _populations(scored: Sequence[Scored], *, listed: ReportType) -> list[Resource]:
    populations = []
    for code, patients in _counts(scored).items():
        population: Resource = {"code": _concept(POPULATION_SYSTEM, code), "count": len(patients)}
        if listed is ReportType.SUBJECT_LIST:
            population["subjectResults"] = {"reference": f"#{code}"}
        populations.append(population)
    return populations


def _stratifier(scored: Sequence[Scored], group_by: GroupBy) -> Resource:
    strata: dict[str, list[Scored]] = {}
    for row in scored:
        strata.setdefault(row.stratum, []).append(row)
    stratum_list = []
    for value, rows in sorted(strata.items()):
        stratum: Resource = {
            "value": {"text": value},
            "population": [
                {"code": _concept(POPULATION_SYSTEM, code), "count": len(patients)}
                for code, patients in _counts(rows).items()
            ],
        }
        score = adherent_rate(r.result for r in rows)
        if score is not None:
            stratum["measureScore"] = {"value": round(score, 4)}
        stratum_list.append(stratum)
    return {"code": [_concept(STRATIFIER_SYSTEM, group_by.value)], "stratum": stratum_list}


def _subject_lists(scored: Sequence[Scored]) -> list[Resource]:
    return [
        {
            "resourceType": "List",
            "id": code,
            "status": "current",
            "mode": "snapshot",
            "title": code,
            "entry": [{"item": {"reference": f"Patient/{pid}"}} for pid in sorted(patients)],
        }
        for code, patients in _counts(scored).items()
    ]


def _concept(system: str, code: str) -> Resource:
    return {"coding": [{"system": system, "code": code}]}
