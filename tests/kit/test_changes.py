"""kit/changes.py: counters of this process's writes of watched resource types."""

from __future__ import annotations

from carebridge.kit.changes import note_writes, watch


def test_a_counter_counts_writes_of_its_types_only() -> None:
    counter = watch(["CareTeam", "PractitionerRole"])
    assert counter.value == 0
    note_writes(["Observation", "Patient"])
    assert counter.value == 0
    note_writes(["CareTeam", "CareTeam", "Observation"])
    assert counter.value == 1
    note_writes(iter(["PractitionerRole"]))  # any iterable, read once
    assert counter.value == 2


def test_counters_are_independent() -> None:
    roles, consents = watch(["CareTeam"]), watch(["Consent"])
    note_writes(["Consent"])
    assert (roles.value, consents.value) == (0, 1)
