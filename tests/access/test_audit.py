"""AuditEvent construction (R4 auditevent.html, IHE BALP)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from fhir.resources.R4B import get_fhir_model_class

from carebridge.access.audit import Actor, audit_event, outcome_code
from carebridge.fhir.guard import AccessRecord, Interaction

WHEN = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


class TestOutcomeCode:
    @pytest.mark.parametrize(
        ("status", "code"),
        [(200, "0"), (201, "0"), (304, "0"), (401, "4"), (403, "4"), (404, "4"), (500, "8")],
    )
    def test_http_status_maps_to_audit_outcome(self, status: int, code: str) -> None:
        assert outcome_code(status) == code


class TestAuditEvent:
    def test_read_is_action_r_with_the_resource_as_entity(self) -> None:
        event = audit_event(
            AccessRecord(Interaction.READ, "Observation", 200, entities=("Observation/o1",)),
            Actor("client-1"),
            WHEN,
            "carebridge",
        )
        assert event["action"] == "R"
        assert event["subtype"][0]["code"] == "read"
        assert event["outcome"] == "0"
        assert [e["what"]["reference"] for e in event["entity"]] == ["Observation/o1"]

    def test_search_is_action_e_and_keeps_the_query_base64(self) -> None:
        event = audit_event(
            AccessRecord(Interaction.SEARCH_TYPE, "Observation", 200, query="patient=p1&code=x"),
            Actor("client-1"),
            WHEN,
            "carebridge",
        )
        assert event["action"] == "E"
        query = next(e for e in event["entity"] if e["role"]["code"] == "24")
        assert base64.b64decode(query["query"]).decode() == "patient=p1&code=x"

    def test_agent_is_the_fhir_user_with_purpose_of_use(self) -> None:
        event = audit_event(
            AccessRecord(Interaction.READ, "Patient", 200, patients=("p1",)),
            Actor("client-1", "Practitioner/9", "ETREAT"),
            WHEN,
            "carebridge",
        )
        agent = event["agent"][0]
        assert agent["who"] == {"reference": "Practitioner/9"}
        assert agent["purposeOfUse"][0]["coding"][0]["code"] == "ETREAT"
        assert event["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT"
        assert event["entity"][0]["role"]["code"] == "1"

    def test_refusal_is_a_minor_failure_with_its_reason(self) -> None:
        event = audit_event(
            AccessRecord(Interaction.DELETE, "Patient", 403, detail="insufficient scope"),
            Actor("client-2"),
            WHEN,
            "carebridge",
        )
        assert event["action"] == "D"
        assert event["outcome"] == "4"
        assert event["outcomeDesc"] == "insufficient scope"

    def test_every_event_is_a_valid_r4_audit_event(self) -> None:
        for interaction in Interaction:
            event = audit_event(
                AccessRecord(interaction, "Patient", 200, ("Patient/p",), ("p",), "a=b"),
                Actor("c", "Practitioner/1", "TREAT", "127.0.0.1"),
                WHEN,
                "carebridge",
            )
            get_fhir_model_class("AuditEvent").model_validate(event)
