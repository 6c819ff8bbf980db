"""Refill follow-up for the pharmacist's worklist: run-out dates, lateness, gaps, unfilled scripts.

Pure, with time as ``as_of``. Supply is tracked per ingredient with the same rules as the PDC
engine (early refills shift forward and chain; supply is held during inpatient/SNF stays), so a
run-out date here agrees with the coverage the measure will later count. Fills dated after
``as_of`` are not yet known and are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from carebridge.adherence.engine import ONE_DAY, DateRange, Fill, Stay, held_days, supply_days


@dataclass(frozen=True)
class RefillStatus:
    """Where one ingredient's supply stands on ``as_of``.

    ``run_out`` is the last day supply lasts; ``days_late`` counts the days after it, up to and
    including ``as_of`` and outside stays, on which the patient had none.
    """

    ingredient: str
    last_fill: date
    run_out: date
    days_on_hand: int
    days_late: int

    @property
    def next_refill_due(self) -> date:
        return self.run_out + ONE_DAY


@dataclass(frozen=True)
class Gap:
    """A run of days without supply; ``open`` when it is still running on ``as_of``."""

    ingredient: str
    start: date
    end: date
    open: bool

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class Prescription:
    """What a MedicationRequest contributes: when it was written and for which ingredients."""

    id: str
    authored_on: date
    ingredients: frozenset[str]


class DispenseOutcome(StrEnum):
    DISPENSED = "dispensed"
    NOT_DISPENSED = "not-dispensed"
    PENDING = "pending"


@dataclass(frozen=True)
class PrescriptionFollowUp:
    prescription: Prescription
    outcome: DispenseOutcome
    first_dispensed: date | None = None


def run_out_dates(
    fills: Iterable[Fill], *, as_of: date, stays: Iterable[Stay] = ()
) -> Mapping[str, date]:
    """The predicted last day of supply per ingredient, after overlap shifting and stays."""
    return {s.ingredient: s.run_out for s in refill_status(fills, as_of=as_of, stays=stays)}


def refill_status(
    fills: Iterable[Fill], *, as_of: date, stays: Iterable[Stay] = ()
) -> tuple[RefillStatus, ...]:
    """Per ingredient: last fill, run-out date, days still on hand and days late on ``as_of``.

    A refill is due the day after run-out; every later day up to ``as_of`` that is not spent in a
    stay counts as a day late (the patient is out of the drug that day).
    """
    held = held_days(stays)
    statuses = []
    for ingredient, same in sorted(_known_by(fills, as_of).items()):
        days = list(supply_days(same, held=held))
        run_out = days[-1]
        late = _days_outside(DateRange(run_out + ONE_DAY, as_of), held) if run_out < as_of else 0
        on_hand = sum(1 for day in days if day > as_of)
        last = max(f.date_of_service for f in same)
        statuses.append(RefillStatus(ingredient, last, run_out, on_hand, late))
    return tuple(statuses)


def coverage_gaps(
    fills: Iterable[Fill], *, as_of: date, over_days: int = 0, stays: Iterable[Stay] = ()
) -> tuple[Gap, ...]:
    """Runs of more than ``over_days`` days without supply, per ingredient, up to ``as_of``.

    A gap starts the day after supply runs out and ends the day before the next supply starts;
    stay days are not gaps (the hospital supplies the drug), so they split or shorten one.
    """
    held = held_days(stays)
    gaps: list[Gap] = []
    for ingredient, same in sorted(_known_by(fills, as_of).items()):
        covered = set(supply_days(same, held=held, until=as_of)) | held
        first = min(f.date_of_service for f in same)
        gaps += _gaps_in(ingredient, DateRange(first, as_of), covered)
    return tuple(g for g in gaps if g.days > over_days)


def primary_non_adherence(
    prescriptions: Iterable[Prescription],
    fills: Iterable[Fill],
    *,
    as_of: date,
    window_days: int = 30,
) -> tuple[PrescriptionFollowUp, ...]:
    """Whether each new prescription was dispensed within ``window_days`` of being written.

    Any fill of one of its ingredients from the day it was written through ``window_days`` later
    counts. Until that window has passed on ``as_of`` an undispensed prescription is pending.
    """
    known = [f for f in fills if f.date_of_service <= as_of]
    return tuple(_follow_up(p, known, as_of, window_days) for p in prescriptions)


def _follow_up(
    prescription: Prescription, fills: list[Fill], as_of: date, window_days: int
) -> PrescriptionFollowUp:
    deadline = prescription.authored_on + window_days * ONE_DAY
    dates = [
        f.date_of_service
        for f in fills
        if f.ingredient in prescription.ingredients
        and prescription.authored_on <= f.date_of_service <= deadline
    ]
    if dates:
        return PrescriptionFollowUp(prescription, DispenseOutcome.DISPENSED, min(dates))
    if as_of > deadline:
        return PrescriptionFollowUp(prescription, DispenseOutcome.NOT_DISPENSED)
    return PrescriptionFollowUp(prescription, DispenseOutcome.PENDING)


def _known_by(fills: Iterable[Fill], as_of: date) -> dict[str, list[Fill]]:
    groups: dict[str, list[Fill]] = {}
    for fill in fills:
        if fill.date_of_service <= as_of:
            groups.setdefault(fill.ingredient, []).append(fill)
    return groups


def _days_outside(span: DateRange, held: frozenset[date]) -> int:
    return sum(1 for day in span.days() if day not in held)


def _gaps_in(ingredient: str, span: DateRange, covered: set[date]) -> list[Gap]:
    gaps: list[Gap] = []
    start: date | None = None
    for day in span.days():
        if day not in covered and start is None:
            start = day
        elif day in covered and start is not None:
            gaps.append(Gap(ingredient, start, day - ONE_DAY, open=False))
            start = None
    if start is not None:
        gaps.append(Gap(ingredient, start, span.end, open=True))
    return gaps
