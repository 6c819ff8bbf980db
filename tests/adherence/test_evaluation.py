"""Population MeasureReports from scored results (evaluation.py): counts, rate, strata."""

from __future__ import annotations

from datetime import date

import pytest

from carebridge.adherence.engine import DateRange, PdcResult
from carebridge.adherence.evaluation import (
    GroupBy,
    ReportType,
    Scored,
    adherent_rate,
    measure_resource,
    population_report,
    population_report_id,
)
from carebridge.adherence.measures import ExclusionReason, MeasureId
from carebridge.fhir.validation import validate_resource

YEAR = DateRange(date(2025, 1, 1), date(2025, 12, 31))
RASA = MeasureId.PDC_RASA


def result(pdc: float | None, reason: ExclusionReason | None = None) -> PdcResult:
    eligible = reason is None
    return PdcResult(
        RASA,
        eligible,
        pdc if eligible else None,
        bool(eligible and pdc is not None and pdc >= 0.8),
        0,
        0,
        reason,
    )


ADHERENT, LAPSED = result(0.9), result(0.5)
ESRD, ONE_FILL = (
    result(None, ExclusionReason.ESRD),
    result(None, ExclusionReason.FEWER_THAN_TWO_FILLS),
)


class TestAdherentRate:
    @pytest.mark.parametrize(
        ("results", "expected"),
        [
            ([ADHERENT, LAPSED], 0.5),
            ([ADHERENT, LAPSED, ESRD, ONE_FILL], 0.5),  # exclusions leave the denominator
            ([ADHERENT, ADHERENT, LAPSED], 2 / 3),
            ([ESRD, ONE_FILL], None),
            ([], None),
        ],
    )
    def test_is_numerator_over_denominator_less_exclusions(self, results, expected):
        assert adherent_rate(results) == expected


class TestPopulationReport:
    def test_strata_add_up_to_the_group(self):
        scored = [
            Scored("a", ADHERENT, "Location/1"),
            Scored("b", LAPSED, "Location/1"),
            Scored("c", ESRD, "Location/2"),
            Scored("d", ONE_FILL, "Location/2"),
        ]
        report = population_report(RASA, YEAR, scored, group_by=GroupBy.STORE)
        validate_resource(report)
        (group,) = report["group"]
        totals = {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]}
        summed: dict[str, int] = {}
        for stratum in group["stratifier"][0]["stratum"]:
            for p in stratum["population"]:
                code = p["code"]["coding"][0]["code"]
                summed[code] = summed.get(code, 0) + p["count"]
        assert (
            summed
            == totals
            == {
                "initial-population": 3,
                "denominator": 3,
                "denominator-exclusion": 1,
                "numerator": 1,
            }
        )

    def test_ids_differ_by_type_and_grouping_only(self):
        ids = {
            population_report_id(RASA, YEAR, t, g)
            for t in (ReportType.SUMMARY, ReportType.SUBJECT_LIST)
            for g in (None, GroupBy.STORE, GroupBy.ORGANIZATION)
        }
        assert len(ids) == 6
        assert population_report_id(RASA, YEAR, ReportType.SUMMARY, None) == population_report_id(
            RASA, YEAR, ReportType.SUMMARY, None
        )


@pytest.mark.parametrize("measure_id", list(MeasureId))
def test_measure_resources_are_valid_r4(measure_id):
    resource = validate_resource(measure_resource(measure_id))
    assert resource["id"] == measure_id.value.lower()
    assert resource["url"].endswith(measure_id.value)
