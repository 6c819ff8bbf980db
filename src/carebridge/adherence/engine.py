"""Proportion of Days Covered (PDC) for one patient and one PQA adherence measure.

Pure: fills, stays and dates in, a ``PdcResult`` out; no clock, no I/O. Each rule below names the
option that changes it and the section of docs/clinical.md ("Medication adherence") that gives its
source and the default chosen where sources differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from fractions import Fraction

from carebridge.adherence.measures import ExclusionReason, Measure, MeasureId

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class DateRange:
    """An inclusive range of calendar days."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"range ends ({self.end}) before it starts ({self.start})")

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end

    def __len__(self) -> int:
        return (self.end - self.start).days + 1

    def overlaps(self, other: DateRange) -> bool:
        return self.start <= other.end and other.start <= self.end

    def days(self) -> Iterator[date]:
        return (self.start + timedelta(days=n) for n in range(len(self)))


Stay = DateRange
"""An inpatient or skilled-nursing-facility stay, admission day through discharge day."""


@dataclass(frozen=True)
class Fill:
    """One dispensing of one target ingredient (a combination product yields one per target)."""

    date_of_service: date
    days_supply: int
    ingredient: str

    def __post_init__(self) -> None:
        if self.days_supply < 1:
            raise ValueError(f"days supply must be at least 1, got {self.days_supply}")


class DrugExclusionWindow(StrEnum):
    MEASUREMENT_PERIOD = "measurement-period"
    TREATMENT_PERIOD = "treatment-period"


@dataclass(frozen=True)
class PatientEvents:
    """What the measure needs to know about the patient besides fills.

    ``disenrollment_date`` is the last day the patient was enrolled; ``hospice`` and ``esrd`` are
    the date ranges of hospice enrolment and of ESRD evidence (diagnosis or dialysis coverage).
    """

    birth_date: date | None = None
    death_date: date | None = None
    disenrollment_date: date | None = None
    hospice: tuple[DateRange, ...] = ()
    esrd: tuple[DateRange, ...] = ()
    stays: tuple[Stay, ...] = ()


@dataclass(frozen=True)
class PdcOptions:
    """Where the specifications leave a choice; every default is the one docs/clinical.md argues."""

    min_days_before_end: int = 91
    minimum_age: int = 18
    adjust_for_stays: bool = True
    carry_in_prior_supply: bool = False
    drug_exclusion_window: DrugExclusionWindow = DrugExclusionWindow.TREATMENT_PERIOD


@dataclass(frozen=True)
class PdcResult:
    measure: MeasureId
    eligible: bool
    pdc: float | None
    adherent: bool
    days_covered: int
    days_in_period: int
    exclusion_reason: ExclusionReason | None
    index_date: date | None = None
    treatment_end: date | None = None


def proportion_of_days_covered(
    fills: Iterable[Fill],
    measure: Measure,
    period: DateRange,
    *,
    events: PatientEvents | None = None,
    options: PdcOptions | None = None,
) -> PdcResult:
    """PDC of ``measure`` over ``period`` (the measurement year), following the PQA specification.

    Denominator: at least two fills of the class on different dates of service in the period;
    the index prescription start date (IPSD, first such fill) at least 91 days before the end of
    the treatment period, which runs from the IPSD to the period end, or to death or disenrollment.
    Numerator: days covered by any drug of the class (same-drug overlaps shifted forward, supply
    held during inpatient/SNF stays), over the days of the treatment period not spent in a stay.
    Adherent when PDC >= 80 %. Sources: PQA PDC measure specifications; CMS Part C & D Star
    Ratings Technical Notes, medication adherence measures and their IP/SNF adjustment.
    """
    events = events or PatientEvents()
    options = options or PdcOptions()
    end = treatment_end(period, events)
    fills = sorted(fills, key=_fill_order)
    in_class = [f for f in fills if f.ingredient in measure.ingredients]
    dated = [f for f in in_class if period.start <= f.date_of_service <= end]
    reason = _denominator_reason(dated, period, end, events, options)
    if reason is not None:
        return _ineligible(measure, reason)
    treatment = DateRange(dated[0].date_of_service, end)
    reason = _exclusion_reason(fills, measure, period, treatment, events, options)
    if reason is not None:
        return _ineligible(measure, reason, treatment)
    counted = in_class if options.carry_in_prior_supply else dated
    counted = [f for f in counted if f.date_of_service <= end]
    held = held_days(events.stays) if options.adjust_for_stays else frozenset()
    return _score(measure, treatment, covered_days(counted, window=treatment, held=held), held)


def treatment_end(period: DateRange, events: PatientEvents) -> date:
    """The period end, or the day of death or the last enrolled day when earlier (PQA)."""
    return min(d for d in (period.end, events.death_date, events.disenrollment_date) if d)


def covered_days(
    fills: Iterable[Fill], *, window: DateRange, held: frozenset[date] = frozenset()
) -> frozenset[date]:
    """Days in ``window`` on which at least one ingredient has supply.

    Different ingredients of a class count concurrently: a day is covered if any covers it
    (PQA). Supply past the window end is not counted.
    """
    days: set[date] = set()
    for same_drug in _by_ingredient(fills).values():
        days.update(d for d in supply_days(same_drug, held=held, until=window.end) if d in window)
    return frozenset(days)


def supply_days(
    fills: Iterable[Fill], *, held: frozenset[date] = frozenset(), until: date | None = None
) -> Iterator[date]:
    """The days one drug's supply is taken, in order.

    A fill starts on its date of service or on the day after the previous supply of the same
    drug runs out, whichever is later, so an early refill shifts forward and the shift chains
    (PQA). On ``held`` days (inpatient/SNF stays) no supply is used: what was on hand resumes
    after discharge and pushes later fills along (CMS IP/SNF adjustment).
    """
    next_free = date.min
    for fill in sorted(fills, key=_fill_order):
        day = max(fill.date_of_service, next_free)
        remaining = fill.days_supply
        while remaining and (until is None or day <= until):
            if day not in held:
                yield day
                remaining -= 1
            day += ONE_DAY
        next_free = day


def held_days(stays: Iterable[Stay]) -> frozenset[date]:
    """Every day of every stay: removed from the denominator and not consuming supply."""
    return frozenset(day for stay in stays for day in stay.days())


def latest_birth_date(day: date, age: int) -> date:
    """The last birth date of someone at least ``age`` years old on ``day``.

    Someone born on 29 February has a birthday on 28 February in other years.
    """
    try:
        return day.replace(year=day.year - age)
    except ValueError:
        return day.replace(year=day.year - age, day=28)


def _fill_order(fill: Fill) -> tuple[date, int, str]:
    return fill.date_of_service, fill.days_supply, fill.ingredient


def _by_ingredient(fills: Iterable[Fill]) -> Mapping[str, list[Fill]]:
    groups: dict[str, list[Fill]] = {}
    for fill in fills:
        groups.setdefault(fill.ingredient, []).append(fill)
    return groups


def _denominator_reason(
    dated: list[Fill], period: DateRange, end: date, events: PatientEvents, options: PdcOptions
) -> ExclusionReason | None:
    adult_by = latest_birth_date(period.start, options.minimum_age)
    if events.birth_date and events.birth_date > adult_by:
        return ExclusionReason.UNDER_18
    if len({f.date_of_service for f in dated}) < 2:
        return ExclusionReason.FEWER_THAN_TWO_FILLS
    if (end - dated[0].date_of_service).days < options.min_days_before_end:
        return ExclusionReason.IPSD_TOO_LATE
    return None


def _exclusion_reason(
    fills: list[Fill],
    measure: Measure,
    period: DateRange,
    treatment: DateRange,
    events: PatientEvents,
    options: PdcOptions,
) -> ExclusionReason | None:
    if measure.excludes_hospice and any(r.overlaps(period) for r in events.hospice):
        return ExclusionReason.HOSPICE
    if measure.excludes_esrd and any(r.overlaps(period) for r in events.esrd):
        return ExclusionReason.ESRD
    in_treatment = options.drug_exclusion_window is DrugExclusionWindow.TREATMENT_PERIOD
    window = treatment if in_treatment else period
    for fill in fills:
        reason = measure.drug_exclusions.get(fill.ingredient)
        if reason is not None and fill.date_of_service in window:
            return reason
    return None


def _score(
    measure: Measure, treatment: DateRange, covered: frozenset[date], held: frozenset[date]
) -> PdcResult:
    at_risk = sum(1 for day in treatment.days() if day not in held)
    if at_risk == 0:
        return _ineligible(measure, ExclusionReason.NO_DAYS_AT_RISK, treatment)
    ratio = Fraction(len(covered), at_risk)
    return PdcResult(
        measure=measure.id,
        eligible=True,
        pdc=float(ratio),
        adherent=ratio >= measure.threshold,
        days_covered=len(covered),
        days_in_period=at_risk,
        exclusion_reason=None,
        index_date=treatment.start,
        treatment_end=treatment.end,
    )


def _ineligible(
    measure: Measure, reason: ExclusionReason, treatment: DateRange | None = None
) -> PdcResult:
    return PdcResult(
        measure=measure.id,
        eligible=False,
        pdc=None,
        adherent=False,
        days_covered=0,
        days_in_period=0,
        exclusion_reason=reason,
        index_date=treatment.start if treatment else None,
        treatment_end=treatment.end if treatment else None,
    )
