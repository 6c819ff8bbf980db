"""Operation parameters read from an OperationDefinition; Encounter stays; outreach wording."""

from __future__ import annotations

from datetime import date

import pytest

from carebridge.adherence.engine import DateRange
from carebridge.adherence.mapping import patient_events, stays_from_encounters
from carebridge.adherence.measures import MeasureId
from carebridge.adherence.operation import adherence_request, parse_operation_parameters
from carebridge.adherence.outreach import (
    Channel,
    OutreachAction,
    Reason,
    SupplyLine,
    reminder_communication,
)
from carebridge.adherence.refills import RefillStatus
from carebridge.kit.errors import InvalidRequestError

DEFINITION = {
    "code": "demo",
    "parameter": [
        {"name": "label", "use": "in", "min": 0, "max": "2", "type": "string"},
        {"name": "flag", "use": "in", "min": 1, "max": "1", "type": "boolean"},
        {"name": "result", "use": "out", "min": 1, "max": "1", "type": "string"},
    ],
}


class TestParseOperationParameters:
    def test_types_cardinality_and_result_parameters(self):
        values = parse_operation_parameters(
            DEFINITION, [("flag", "false"), ("label", "a,b"), ("_format", "json")]
        )
        assert values == {"flag": [False], "label": ["a,b"]}

    @pytest.mark.parametrize(
        "pairs",
        [
            [],
            [("flag", "true"), ("flag", "true")],
            [("flag", "true"), ("label", "a"), ("label", "b"), ("label", "c")],
            [("flag", "true"), ("result", "x")],
        ],
    )
    def test_refuses_what_the_definition_does_not_allow(self, pairs):
        with pytest.raises(InvalidRequestError):
            parse_operation_parameters(DEFINITION, pairs)

    def test_adherence_defaults_to_every_measure(self):
        request = adherence_request([("periodStart", "2025-01-01"), ("periodEnd", "2025-06-30")])
        assert request.period == DateRange(date(2025, 1, 1), date(2025, 6, 30))
        assert request.measures == tuple(MeasureId)
        assert request.persist is False


def encounter(code: str, start: str, end: str | None, status: str = "finished") -> dict:
    period = {"start": start, **({"end": end} if end else {})}
    return {"status": status, "class": {"code": code}, "period": period}


class TestStaysFromEncounters:
    @pytest.mark.parametrize(
        ("resource", "expected"),
        [
            (encounter("IMP", "2025-02-01", "2025-02-03"), [("2025-02-01", "2025-02-03")]),
            (
                encounter("NONAC", "2025-02-01T08:00:00Z", "2025-02-20"),
                [("2025-02-01", "2025-02-20")],
            ),
            (encounter("ACUTE", "2025-02-01", None, "in-progress"), [("2025-02-01", "2025-03-31")]),
            (encounter("AMB", "2025-02-01", "2025-02-01"), []),
            (encounter("IMP", "2025-02-01", "2025-02-03", "cancelled"), []),
            (encounter("IMP", "2025-02-05", "2025-02-03"), []),
            (encounter("IMP", "2025", "2025-02-03"), []),
        ],
    )
    def test_inpatient_classes_become_stays(self, resource, expected):
        stays = stays_from_encounters([resource], as_of=date(2025, 3, 31))
        assert [(s.start.isoformat(), s.end.isoformat()) for s in stays] == expected

    def test_open_stay_without_as_of_is_skipped(self):
        assert stays_from_encounters([encounter("IMP", "2025-02-01", None)]) == ()

    def test_patient_events_read_birth_and_death(self):
        events = patient_events({"birthDate": "1950-03-04", "deceasedDateTime": "2025-05-06"})
        assert (events.birth_date, events.death_date) == (date(1950, 3, 4), date(2025, 5, 6))


def test_reminder_names_an_unknown_ingredient_generically():
    status = RefillStatus("999999", date(2025, 1, 1), date(2025, 7, 16), 2, 0)
    action = OutreachAction(
        SupplyLine("p", status, "MedicationDispense/d"), Reason.DUE_SOON, False, "routine"
    )
    communication = reminder_communication(action, Channel.APP, as_of=date(2025, 7, 14))
    assert communication["payload"][0]["contentString"].startswith(
        "Your medicine supply lasts until 2025-07-16"
    )
    assert communication["about"] == [{"reference": "MedicationDispense/d"}]
