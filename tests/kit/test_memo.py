"""`computed_once` (kit/memo.py): a value computed on first read, then read as an attribute."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, field

import pytest

from carebridge.kit.memo import computed_once


@dataclass(frozen=True)
class Record:
    value: int
    calls: list[int] = field(default_factory=list)

    @computed_once
    def doubled(self) -> int:
        """Twice the value."""
        self.calls.append(self.value)
        return self.value * 2


def test_computed_on_first_read_only() -> None:
    record = Record(21)
    assert record.calls == []
    assert record.doubled == 42
    assert record.doubled == 42
    assert record.calls == [21]
    assert record.__dict__["doubled"] == 42


def test_each_instance_has_its_own_value() -> None:
    first, second = Record(1), Record(2)
    assert (first.doubled, second.doubled) == (2, 4)


def test_the_class_attribute_is_the_descriptor() -> None:
    assert isinstance(Record.doubled, computed_once)
    assert Record.doubled.__doc__ == "Twice the value."


def test_the_record_stays_frozen() -> None:
    record = Record(1)
    _ = record.doubled
    with pytest.raises(FrozenInstanceError):
        record.value = 3  # type: ignore[misc]
