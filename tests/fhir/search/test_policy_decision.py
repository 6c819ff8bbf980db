"""A policy decided for one patient from its facts (the rules of docs/security.md, as in SQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from carebridge.fhir.guard import PatientPolicy, Relationship
from carebridge.fhir.search.policy_decision import (
    ConsentRule,
    PatientFacts,
    allowed_types,
    link_sources,
    visible_keys,
)

TYPES = ("Patient", "Observation", "Condition", "AuditEvent")
STORE = ("Organization", "store1")
TEAM = ("CareTeam", "team-1")


def policy(
    *,
    actors: frozenset[tuple[str, str]] = frozenset({STORE, TEAM}),
    default_permit: bool = True,
    override: bool = False,
) -> PatientPolicy:
    return PatientPolicy(
        actors=actors,
        purpose="TREAT",
        default_permit=default_permit,
        relationships=(Relationship("Patient", None, "organization"),),
        at=datetime(2026, 1, 1, tzinfo=UTC),
        override=override,
    )


def rule(
    effect: str,
    actor: tuple[str, str] | None = None,
    purpose: str | None = None,
    class_type: str | None = None,
) -> ConsentRule:
    return ConsentRule(effect, *(actor or (None, None)), purpose, class_type)


def facts(*rules: ConsentRule, linked: tuple[tuple[str, str], ...] = (STORE,)) -> PatientFacts:
    return PatientFacts(frozenset(linked), rules)


ALL = frozenset({"Patient", "Observation", "Condition"})  # AuditEvent is hidden from users
NO: frozenset[str] = frozenset()


class TestAllowedTypes:
    @pytest.mark.parametrize(
        ("case", "the_policy", "the_facts", "expected"),
        [
            ("linked, no Consent: default permit", policy(), facts(), ALL),
            ("linked, no Consent: opt-in", policy(default_permit=False), facts(), NO),
            ("not linked", policy(), facts(linked=(("Organization", "store2"),)), NO),
            ("linked through a CareTeam", policy(), facts(linked=(TEAM,)), ALL),
            ("no links, no actors", policy(actors=frozenset()), facts(), NO),
            (
                "named by a permit",
                policy(default_permit=False),
                facts(rule("permit", STORE), linked=()),
                ALL,
            ),
            (
                "a deny naming the user relates nobody",
                policy(),
                facts(rule("deny", STORE), linked=()),
                NO,
            ),
            ("a permit for anyone relates nobody", policy(), facts(rule("permit"), linked=()), NO),
            ("a deny for everyone", policy(), facts(rule("deny")), NO),
            (
                "the first rule that matches decides",
                policy(),
                facts(rule("permit", class_type="Observation"), rule("deny")),
                frozenset({"Observation"}),
            ),
            (
                "a rule for another actor does not match",
                policy(),
                facts(rule("deny", ("Organization", "store2")), rule("permit")),
                ALL,
            ),
            (
                "a rule for another purpose does not match",
                policy(default_permit=False),
                facts(rule("permit", purpose="HPAYMT")),
                NO,
            ),
            (
                "a rule for the purpose matches",
                policy(default_permit=False),
                facts(rule("permit", purpose="TREAT", class_type="Condition")),
                frozenset({"Condition"}),
            ),
            ("break the glass", policy(override=True), facts(rule("deny"), linked=()), ALL),
        ],
    )
    def test_cases(
        self,
        case: str,
        the_policy: PatientPolicy,
        the_facts: PatientFacts,
        expected: frozenset[str],
    ) -> None:
        assert allowed_types(the_policy, the_facts, TYPES) == expected, case

    def test_only_the_types_asked_for_are_answered(self) -> None:
        assert allowed_types(policy(), facts(), ["Observation"]) == {"Observation"}


COMPARTMENT = ("Observation", "Condition", "AuditEvent")
ROWS = [
    (1, "Patient", "p1"),
    (2, "Observation", "o1"),  # p1's
    (3, "Observation", "o2"),  # p2's
    (4, "Observation", "o3"),  # nobody's
    (5, "Medication", "m1"),  # not patient data
    (6, "AuditEvent", "a1"),  # p1's, hidden from users
    (7, "Condition", "c1"),  # p1's and p2's
    (8, "Observation", "o4"),  # p1's too
]
PATIENTS_OF = {2: {"p1"}, 3: {"p2"}, 6: {"p1"}, 7: {"p1", "p2"}, 8: {"p1"}}


class TestVisibleKeys:
    @pytest.mark.parametrize(
        ("case", "the_policy", "facts_of", "expected"),
        [
            ("p1 related, p2 not", policy(), {"p1": facts()}, {1, 2, 5, 7, 8}),
            ("neither related", policy(), {}, {5}),
            (
                "p1 denies Observations, p2 related",
                policy(),
                {"p1": facts(rule("deny", class_type="Observation")), "p2": facts()},
                {1, 3, 5, 7},
            ),
            (
                "break the glass: data of some patient",
                policy(override=True),
                {},
                {1, 2, 3, 5, 7, 8},
            ),
        ],
    )
    def test_cases(
        self,
        case: str,
        the_policy: PatientPolicy,
        facts_of: dict[str, PatientFacts],
        expected: set[int],
    ) -> None:
        found = visible_keys(the_policy, ROWS, PATIENTS_OF, facts_of, COMPARTMENT)
        assert found == expected, case


class TestLinkSources:
    def test_kinds_are_grouped_by_source_in_order(self) -> None:
        links = (
            Relationship("CareTeam", "patient", "participant"),
            Relationship("Patient", None, "organization"),
            Relationship("Encounter", "patient", "participant"),
            Relationship("Encounter", "patient", "service-provider"),
        )
        assert list(link_sources(links).items()) == [  # `patient` is read as subject rows
            (("CareTeam", "subject"), {"participant"}),
            (("Encounter", "subject"), {"participant", "service-provider"}),
        ]
