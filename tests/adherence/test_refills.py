"""Refill follow-up: run-out, lateness, gaps and prescriptions never dispensed."""

from __future__ import annotations

from datetime import date

from carebridge.adherence.engine import Fill, Stay
from carebridge.adherence.refills import (
    DispenseOutcome,
    Gap,
    Prescription,
    coverage_gaps,
    primary_non_adherence,
    refill_status,
    run_out_dates,
)

LISINOPRIL, LOSARTAN, ATORVASTATIN = "29046", "52175", "83367"


def d(text: str) -> date:
    return date.fromisoformat(text)


def fill(day: str, days: int, ingredient: str = LISINOPRIL) -> Fill:
    return Fill(d(day), days, ingredient)


EARLY_REFILL = [fill("2023-01-01", 30), fill("2023-01-21", 30)]  # Jan1-Jan30, then Jan31-Mar1


class TestRunOutDates:
    def test_shifts_an_early_refill_to_after_the_current_supply(self):
        assert run_out_dates(EARLY_REFILL, as_of=d("2023-02-01")) == {LISINOPRIL: d("2023-03-01")}

    def test_tracks_each_ingredient_separately(self):
        fills = [fill("2023-01-01", 30), fill("2023-01-10", 90, ATORVASTATIN)]

        assert run_out_dates(fills, as_of=d("2023-01-15")) == {
            LISINOPRIL: d("2023-01-30"),
            ATORVASTATIN: d("2023-04-09"),
        }

    def test_extends_supply_by_the_days_spent_in_a_stay(self):
        stays = [Stay(d("2023-01-10"), d("2023-01-14"))]

        dates = run_out_dates([fill("2023-01-01", 30)], as_of=d("2023-01-20"), stays=stays)

        assert dates == {LISINOPRIL: d("2023-02-04")}

    def test_ignores_fills_after_as_of(self):
        dates = run_out_dates(EARLY_REFILL, as_of=d("2023-01-20"))

        assert dates == {LISINOPRIL: d("2023-01-30")}


class TestRefillStatus:
    def test_counts_days_still_on_hand(self):
        # Feb 16 - Mar 1 remain after Feb 15
        [status] = refill_status(EARLY_REFILL, as_of=d("2023-02-15"))

        assert (status.days_on_hand, status.days_late, status.last_fill) == (14, 0, d("2023-01-21"))

    def test_counts_days_late_after_run_out_through_as_of(self):
        # out from Mar 2: Mar 2, 3, 4, 5
        [status] = refill_status(EARLY_REFILL, as_of=d("2023-03-05"))

        assert (status.days_on_hand, status.days_late) == (0, 4)

    def test_is_not_late_on_the_run_out_day(self):
        [status] = refill_status(EARLY_REFILL, as_of=d("2023-03-01"))

        assert status.days_late == 0

    def test_does_not_count_stay_days_as_late(self):
        stays = [Stay(d("2023-03-03"), d("2023-03-04"))]

        [status] = refill_status(EARLY_REFILL, as_of=d("2023-03-05"), stays=stays)

        assert status.days_late == 2

    def test_gives_the_next_refill_due_date(self):
        [status] = refill_status(EARLY_REFILL, as_of=d("2023-02-15"))

        assert status.next_refill_due == d("2023-03-02")


class TestCoverageGaps:
    FILLS = (fill("2023-01-01", 30), fill("2023-03-01", 30))  # Jan1-Jan30, Mar1-Mar30

    def test_lists_closed_and_open_gaps(self):
        gaps = coverage_gaps(self.FILLS, as_of=d("2023-04-10"))

        assert gaps == (
            Gap(LISINOPRIL, d("2023-01-31"), d("2023-02-28"), open=False),
            Gap(LISINOPRIL, d("2023-03-31"), d("2023-04-10"), open=True),
        )

    def test_keeps_only_gaps_over_the_threshold(self):
        gaps = coverage_gaps(self.FILLS, as_of=d("2023-04-10"), over_days=15)

        assert [g.days for g in gaps] == [29]

    def test_splits_a_gap_at_a_stay(self):
        stays = [Stay(d("2023-02-10"), d("2023-02-12"))]

        gaps = coverage_gaps(self.FILLS, as_of=d("2023-03-30"), stays=stays)

        assert [(g.start, g.days) for g in gaps] == [(d("2023-01-31"), 10), (d("2023-02-13"), 16)]

    def test_finds_no_gap_in_continuous_supply(self):
        assert coverage_gaps(EARLY_REFILL, as_of=d("2023-03-01")) == ()


class TestPrimaryNonAdherence:
    SCRIPT = Prescription("rx-1", d("2023-01-01"), frozenset({LISINOPRIL}))

    def test_marks_a_prescription_dispensed_within_the_window(self):
        [follow_up] = primary_non_adherence(
            [self.SCRIPT], [fill("2023-01-31", 30)], as_of=d("2023-03-01")
        )

        assert (follow_up.outcome, follow_up.first_dispensed) == (
            DispenseOutcome.DISPENSED,
            d("2023-01-31"),
        )

    def test_marks_a_prescription_not_dispensed_once_the_window_has_passed(self):
        [follow_up] = primary_non_adherence(
            [self.SCRIPT], [fill("2023-02-01", 30)], as_of=d("2023-03-01")
        )

        assert follow_up.outcome is DispenseOutcome.NOT_DISPENSED

    def test_keeps_a_prescription_pending_inside_the_window(self):
        [follow_up] = primary_non_adherence([self.SCRIPT], [], as_of=d("2023-01-31"))

        assert follow_up.outcome is DispenseOutcome.PENDING

    def test_does_not_count_a_fill_of_another_drug(self):
        [follow_up] = primary_non_adherence(
            [self.SCRIPT], [fill("2023-01-05", 30, LOSARTAN)], as_of=d("2023-03-01")
        )

        assert follow_up.outcome is DispenseOutcome.NOT_DISPENSED

    def test_does_not_count_a_fill_before_the_prescription(self):
        [follow_up] = primary_non_adherence(
            [self.SCRIPT], [fill("2022-12-20", 30)], as_of=d("2023-03-01")
        )

        assert follow_up.outcome is DispenseOutcome.NOT_DISPENSED

    def test_does_not_count_a_fill_not_yet_known_on_as_of(self):
        [follow_up] = primary_non_adherence(
            [self.SCRIPT], [fill("2023-01-20", 30)], as_of=d("2023-01-10")
        )

        assert follow_up.outcome is DispenseOutcome.PENDING
