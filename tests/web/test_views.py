"""Plain-language rendering of access log entries, decisions and defaults (pure)."""

from __future__ import annotations

import pytest

from carebridge.web import views


class TestWhoText:
    @pytest.mark.parametrize(
        ("who", "expected"),
        [
            ("Patient/ann", "you"),
            ("Practitioner/pharm", "Practitioner/pharm"),
            ("local-admin", "app local-admin"),
            (None, "unknown"),
        ],
    )
    def test_names_the_actor(self, who: str | None, expected: str) -> None:
        assert views.who_text(who, "ann") == expected


class TestRecordTypes:
    @pytest.mark.parametrize(
        ("resources", "expected"),
        [
            (
                ["Patient/ann", "Observation/1", "Observation/2", "Condition/3"],
                "Observation, Condition",
            ),
            (["Patient/ann"], "Patient"),
            ([], ""),
            (["Patient/ann", "Patient/ben"], "Patient"),
        ],
    )
    def test_lists_the_kinds_touched_besides_the_patient_themself(
        self, resources: list[str], expected: str
    ) -> None:
        assert views.record_types(resources, "ann") == expected


class TestWhenText:
    @pytest.mark.parametrize(
        ("instant", "expected"),
        [
            ("2026-11-23T06:50:12.123Z", "2026-11-23 06:50:12 UTC"),
            ("2026-11-23T08:50:12+02:00", "2026-11-23 06:50:12 UTC"),
            ("2026-11-23", "2026-11-23"),
            ("yesterday", "yesterday"),
            (None, ""),
        ],
    )
    def test_reads_as_utc(self, instant: str | None, expected: str) -> None:
        assert views.when_text(instant) == expected


def test_a_log_entry_becomes_a_row() -> None:
    entry = {
        "when": "2026-11-23T06:50:12Z",
        "who": "Practitioner/pharm",
        "action": "search-type",
        "outcome": "failure",
        "purpose": "ETREAT",
        "breakTheGlass": True,
        "resources": ["Patient/ann", "Observation/o"],
    }
    assert views.log_rows([entry, {}], "ann") == [
        views.LogRow(
            "2026-11-23 06:50:12 UTC",
            "Practitioner/pharm",
            "searched",
            "search-type",
            "Observation",
            "emergency treatment (ETREAT)",
            "failure",
            True,
        ),
        views.LogRow("", "unknown", "unknown", "", "", "", "", False),
    ]


@pytest.mark.parametrize(
    ("decision", "sentence"),
    [
        (
            {"actor": "Organization/payer", "access": "permit", "types": ["Observation"]},
            "Organization/payer may see your Observation records.",
        ),
        (
            {"actor": "Practitioner/p", "access": "deny", "types": [], "purpose": "TREAT"},
            "Practitioner/p may not see your record for treatment (TREAT).",
        ),
        (
            {"actor": "CareTeam/c", "access": "permit", "purpose": "XYZ"},
            "CareTeam/c may see your record for XYZ.",
        ),
    ],
)
def test_a_decision_reads_as_a_sentence(decision: dict[str, object], sentence: str) -> None:
    (row,) = views.decision_rows([decision])
    assert row.sentence == sentence
    assert f"{row.actor_type}/{row.actor_id}" == decision["actor"]


@pytest.mark.parametrize(
    ("defaults", "words"),
    [
        ({"TREAT": "opt-out"}, "unless you decide below that one of them may not"),
        ({"TREAT": "opt-in"}, "only if you decide below that they may"),
        ({"HPAYMT": "opt-in"}, "sees nothing of your record unless"),
        ({"HPAYMT": "opt-out"}, "can see the records of its members"),
        ({"HOPERAT": "opt-in"}, "opt-in for healthcare operations (HOPERAT)."),
    ],
)
def test_defaults_read_as_sentences(defaults: dict[str, str], words: str) -> None:
    (row,) = views.default_rows(defaults)
    assert words in row.sentence


@pytest.mark.parametrize(
    ("text", "types"),
    [
        ("Observation, Condition", ["Observation", "Condition"]),
        (
            " Observation  Condition;MedicationDispense ",
            ["Observation", "Condition", "MedicationDispense"],
        ),
        ("", []),
    ],
)
def test_types_are_split_on_commas_and_spaces(text: str, types: list[str]) -> None:
    assert views.parse_types(text) == types
