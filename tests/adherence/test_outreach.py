"""Refill outreach: the rules table-driven, the resources valid R4, the service idempotent."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from carebridge.adherence import service as adherence_service
from carebridge.adherence.outreach import (
    Channel,
    OutreachRules,
    Reason,
    SupplyLine,
    follow_up_task,
    outreach_actions,
    preferred_channel,
    reachable,
    reminder_communication,
)
from carebridge.adherence.refills import RefillStatus
from carebridge.fhir.records import Method, WriteOp
from carebridge.fhir.store import FhirStore
from carebridge.fhir.validation import validate_resource
from tests.adherence import records

AS_OF = date(2025, 7, 14)


def line(run_out: str, days_late: int, patient: str = "p") -> SupplyLine:
    status = RefillStatus("29046", date(2025, 4, 1), date.fromisoformat(run_out), 0, days_late)
    return SupplyLine(patient, status, "MedicationDispense/d", "MedicationRequest/r")


class TestOutreachActions:
    @pytest.mark.parametrize(
        ("run_out", "days_late", "expected"),
        [
            ("2025-08-30", 0, None),  # plenty on hand
            ("2025-07-22", 0, None),  # runs out in 8 days
            ("2025-07-21", 0, (Reason.DUE_SOON, False, "routine")),  # within 7 days
            ("2025-07-14", 0, (Reason.DUE_SOON, False, "routine")),  # last day today
            ("2025-07-13", 1, (Reason.LATE, False, "routine")),
            ("2025-07-01", 13, (Reason.LATE, False, "routine")),
            ("2025-06-30", 14, (Reason.LATE, True, "urgent")),
            ("2025-06-14", 30, (Reason.LATE, True, "asap")),
            ("2025-04-15", 90, (Reason.LATE, True, "asap")),
            ("2025-04-14", 91, None),  # stopped therapy: no longer chased
        ],
    )
    def test_default_rules(self, run_out, days_late, expected):
        actions = outreach_actions([line(run_out, days_late)], as_of=AS_OF)
        found = [(a.reason, a.follow_up, a.priority) for a in actions]
        assert found == ([expected] if expected else [])

    def test_thresholds_are_arguments(self):
        rules = OutreachRules(due_within_days=30, task_after_days=3)
        actions = outreach_actions(
            [line("2025-08-10", 0, "a"), line("2025-07-10", 4, "b")], as_of=AS_OF, rules=rules
        )
        assert [(a.line.patient_id, a.reason, a.follow_up) for a in actions] == [
            ("a", Reason.DUE_SOON, False),
            ("b", Reason.LATE, True),
        ]


class TestPatientContact:
    @pytest.mark.parametrize(
        ("telecom", "expected"),
        [
            ([], Channel.APP),
            ([{"system": "phone", "use": "home", "value": "1"}], Channel.APP),
            ([{"system": "phone", "use": "mobile", "value": "1"}], Channel.SMS),
            ([{"system": "sms", "value": "1"}], Channel.SMS),
            ([{"system": "email", "value": "a@b"}, {"system": "sms", "value": "1"}], Channel.EMAIL),
            (
                [{"system": "email", "value": "a@b", "rank": 2}, {"system": "sms", "rank": 1}],
                Channel.SMS,
            ),
            (
                [{"system": "sms", "value": "1", "period": {"end": "2020-01-01"}}],
                Channel.APP,
            ),
        ],
    )
    def test_preferred_channel(self, telecom, expected):
        assert preferred_channel({"telecom": telecom}) is expected

    @pytest.mark.parametrize(
        ("patient", "expected"),
        [
            ({"id": "p"}, True),
            ({}, False),
            ({"id": "p", "active": False}, False),
            ({"id": "p", "deceasedBoolean": True}, False),
            ({"id": "p", "deceasedDateTime": "2025-07-14T01:00:00Z"}, False),
            ({"id": "p", "deceasedDateTime": "2025-08-01"}, True),
        ],
    )
    def test_reachable(self, patient, expected):
        assert reachable(patient, AS_OF) is expected


class TestOutreachResources:
    def test_reminder_is_a_valid_unsent_communication(self):
        [action] = outreach_actions([line("2025-06-30", 14)], as_of=AS_OF)
        communication = validate_resource(reminder_communication(action, Channel.SMS, as_of=AS_OF))
        assert communication["status"] == "preparation"
        assert communication["medium"][0]["coding"][0]["code"] == "sms"
        assert communication["about"] == [{"reference": "MedicationRequest/r"}]
        assert communication["recipient"] == [{"reference": "Patient/p"}]
        assert "lisinopril ran out 14 days ago" in communication["payload"][0]["contentString"]

    def test_task_is_a_valid_order_for_the_pharmacist(self):
        [action] = outreach_actions([line("2025-06-30", 14)], as_of=AS_OF)
        task = validate_resource(follow_up_task(action, as_of=AS_OF))
        assert (task["status"], task["intent"], task["priority"]) == (
            "requested",
            "order",
            "urgent",
        )
        assert task["for"] == {"reference": "Patient/p"}
        assert task["focus"] == {"reference": "MedicationRequest/r"}
        assert task["code"]["text"] == "refill reminder follow-up"

    def test_ids_are_stable_per_day_and_differ_across_days(self):
        [action] = outreach_actions([line("2025-06-30", 14)], as_of=AS_OF)
        first = reminder_communication(action, Channel.SMS, as_of=AS_OF)["id"]
        assert reminder_communication(action, Channel.APP, as_of=AS_OF)["id"] == first
        assert reminder_communication(action, Channel.SMS, as_of=date(2025, 7, 15))["id"] != first


def store_with(engine: Any, resources: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        ops = [WriteOp(Method.PUT, r["resourceType"], r["id"], r) for r in resources]
        FhirStore(conn).write(ops)


def outreach(engine: Any, **kwargs: Any) -> adherence_service.OutreachSummary:
    with engine.begin() as conn:
        return adherence_service.refill_outreach(FhirStore(conn), as_of=AS_OF, **kwargs)


def stored(engine: Any, res_type: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        from carebridge.fhir.search.parse import parse_search

        page = FhirStore(conn).search(parse_search([res_type], []))
        return [m.content for m in page.matches if m.content]


def population() -> list[dict[str, Any]]:
    """On 2025-07-14: p1's lisinopril ran out 06-29 (15 days late: reminder and task), its
    statin lasts until 07-28 (nothing); p2's valsartan ran out 07-03 (11 days late: reminder) and
    sacubitril 06-30 (14 days late: reminder and task); p3 died and is not contacted."""
    p1 = records.adherent_statin_lapsing_ras_patient()
    prescribed = {"authorizingPrescription": [{"reference": "MedicationRequest/rx1"}]}
    p1 = [{**r, **prescribed} if r.get("id") == "d2" else r for r in p1]
    return [*p1, *records.excluded_patient(), *records.deceased_inpatient_patient()]


class TestRefillOutreachService:
    def test_writes_reminders_and_tasks(self, engine):
        store_with(engine, population())
        summary = outreach(engine)
        assert (summary.communications_created, summary.tasks_created) == (3, 2)
        communications = stored(engine, "Communication")
        by_patient = sorted(
            (c["subject"]["reference"], c["about"][0]["reference"]) for c in communications
        )
        assert by_patient == [
            ("Patient/p1", "MedicationRequest/rx1"),
            ("Patient/p2", "MedicationDispense/v2"),
            ("Patient/p2", "MedicationDispense/v3"),
        ]
        p1 = next(c for c in communications if c["subject"]["reference"] == "Patient/p1")
        assert p1["medium"][0]["coding"][0]["code"] == "email"
        tasks = stored(engine, "Task")
        assert sorted(t["focus"]["reference"] for t in tasks) == [
            "MedicationDispense/v3",
            "MedicationRequest/rx1",
        ]

    def test_rerun_the_same_day_writes_nothing_new(self, engine):
        store_with(engine, population())
        outreach(engine)
        again = outreach(engine)
        assert (again.communications_created, again.tasks_created, again.already_present) == (
            0,
            0,
            5,
        )
        assert len(stored(engine, "Communication")) == 3
        assert len(stored(engine, "Task")) == 2

    def test_dry_run_writes_nothing(self, engine):
        store_with(engine, population())
        summary = outreach(engine, dry_run=True)
        assert len(summary.actions) == 3
        assert stored(engine, "Communication") == []
