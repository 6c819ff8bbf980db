"""PDC engine: hand-computed cases for every rule, then properties over random fill histories.

Calendar arithmetic in comments uses 2023 (365 days: Jan 31, Feb 28, Mar 31, Apr 30, May 31,
Jun 30, Jul 31, Aug 31, Sep 30, Oct 31, Nov 30, Dec 31).
"""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carebridge.adherence.engine import (
    DateRange,
    DrugExclusionWindow,
    Fill,
    PatientEvents,
    PdcOptions,
    Stay,
    covered_days,
    held_days,
    latest_birth_date,
    proportion_of_days_covered,
    supply_days,
    treatment_end,
)
from carebridge.adherence.measures import ExclusionReason, MeasureId, measure

LISINOPRIL, LOSARTAN, VALSARTAN, SACUBITRIL = "29046", "52175", "69749", "1656328"
METFORMIN, SITAGLIPTIN, INSULIN_GLARGINE = "6809", "593411", "274783"
ATORVASTATIN = "83367"
YEAR_2023 = DateRange(date(2023, 1, 1), date(2023, 12, 31))
RASA, DIABETES, STATINS = measure("PDC-RASA"), measure("PDC-DR"), measure("PDC-STA")


def d(text: str) -> date:
    return date.fromisoformat(text)


def fill(day: str, days: int, ingredient: str = LISINOPRIL) -> Fill:
    return Fill(d(day), days, ingredient)


QUARTERLY = [fill("2023-01-01", 90), fill("2023-04-01", 90), fill("2023-06-30", 90)]


class TestProportionOfDaysCovered:
    @pytest.mark.parametrize(
        ("fills", "covered", "days"),
        [
            pytest.param(
                # Jan1-Mar31, Apr1-Jun29, Jun30-Sep27, Sep28-Dec26: 4 x 90, Dec 27-31 uncovered
                [*QUARTERLY, fill("2023-09-28", 90)],
                360,
                365,
                id="refills-on-time",
            ),
            pytest.param(
                # 2nd fill Jan21 shifts to Jan31-Mar1; 3rd (Feb10) chains to Mar2-Mar31
                [fill("2023-01-01", 30), fill("2023-01-21", 30), fill("2023-02-10", 30)],
                90,
                365,
                id="early-refills-shift-forward-and-chain",
            ),
            pytest.param(
                # lisinopril Jan1-Mar31, losartan Mar1-May29 in parallel: Jan1-May29 = 149
                [fill("2023-01-01", 90), fill("2023-03-01", 90, LOSARTAN)],
                149,
                365,
                id="different-drugs-of-a-class-count-concurrently",
            ),
            pytest.param(
                # Dec 1 fill of 90 days counts only Dec 1-31: 90 + 90 + 90 + 31
                [*QUARTERLY, fill("2023-12-01", 90)],
                301,
                365,
                id="supply-past-the-period-end-is-cut",
            ),
            pytest.param(
                # IPSD Oct 1 is 91 days before Dec 31: Oct1-30 and Nov1-30 over Oct1-Dec31
                [fill("2023-10-01", 30), fill("2023-11-01", 30)],
                60,
                92,
                id="ipsd-exactly-91-days-before-the-end",
            ),
            pytest.param(
                # Jan1-Jul19 (200) + Jul20-Oct19 (92) = 292 = 0.8 x 365
                [fill("2023-01-01", 200), fill("2023-07-20", 92)],
                292,
                365,
                id="pdc-of-exactly-eighty-percent",
            ),
        ],
    )
    def test_counts_days_covered_over_the_treatment_period(self, fills, covered, days):
        result = proportion_of_days_covered(fills, RASA, YEAR_2023)

        assert (result.eligible, result.days_covered, result.days_in_period) == (
            True,
            covered,
            days,
        )
        assert result.pdc == pytest.approx(covered / days)

    def test_is_adherent_at_exactly_eighty_percent(self):
        fills = [fill("2023-01-01", 200), fill("2023-07-20", 92)]

        assert proportion_of_days_covered(fills, RASA, YEAR_2023).adherent is True

    def test_is_not_adherent_one_day_below_eighty_percent(self):
        fills = [fill("2023-01-01", 200), fill("2023-07-20", 91)]  # 291 / 365

        assert proportion_of_days_covered(fills, RASA, YEAR_2023).adherent is False

    def test_starts_the_treatment_period_at_the_first_fill_in_the_period(self):
        # Feb1-May1 + May2-Jul30 = 180 days over Feb1-Dec31 = 334 days
        fills = [fill("2023-02-01", 90), fill("2023-05-02", 90)]

        result = proportion_of_days_covered(fills, RASA, YEAR_2023)

        assert (result.index_date, result.days_covered, result.days_in_period) == (
            d("2023-02-01"),
            180,
            334,
        )

    def test_ignores_supply_carried_in_from_before_the_period_by_default(self):
        fills = [fill("2022-12-01", 90), fill("2023-02-01", 90), fill("2023-05-02", 90)]

        result = proportion_of_days_covered(fills, RASA, YEAR_2023)

        assert (result.days_covered, result.days_in_period) == (180, 334)

    def test_can_count_supply_carried_in_from_before_the_period(self):
        # Dec1-Feb28 carries in; Feb1 fill shifts to Mar1-May29; May2 fill to May30-Aug27
        fills = [fill("2022-12-01", 90), fill("2023-02-01", 90), fill("2023-05-02", 90)]
        options = PdcOptions(carry_in_prior_supply=True)

        result = proportion_of_days_covered(fills, RASA, YEAR_2023, options=options)

        assert (result.days_covered, result.days_in_period) == (208, 334)

    def test_ignores_fills_of_drugs_outside_the_class(self):
        fills = [*QUARTERLY, fill("2023-09-28", 90, ATORVASTATIN)]

        assert proportion_of_days_covered(fills, RASA, YEAR_2023).days_covered == 270

    def test_shifts_a_combination_fill_against_its_target_ingredient(self):
        # sitagliptin/metformin on Jan 1 is two fills; metformin on Mar 1 shifts to Apr 1-Jun 29
        fills = [
            fill("2023-01-01", 90, METFORMIN),
            fill("2023-01-01", 90, SITAGLIPTIN),
            fill("2023-03-01", 90, METFORMIN),
        ]

        result = proportion_of_days_covered(fills, DIABETES, YEAR_2023)

        assert result.days_covered == 180

    def test_needs_two_fills_on_different_dates(self):
        fills = [fill("2023-01-01", 90), fill("2023-01-01", 90, LOSARTAN)]

        result = proportion_of_days_covered(fills, RASA, YEAR_2023)

        assert (result.eligible, result.exclusion_reason) == (
            False,
            ExclusionReason.FEWER_THAN_TWO_FILLS,
        )

    def test_does_not_count_a_fill_before_the_period_toward_the_two_fills(self):
        fills = [fill("2022-12-20", 90), fill("2023-03-01", 90)]

        reason = proportion_of_days_covered(fills, RASA, YEAR_2023).exclusion_reason

        assert reason is ExclusionReason.FEWER_THAN_TWO_FILLS

    def test_excludes_an_index_date_less_than_91_days_before_the_end(self):
        fills = [fill("2023-10-02", 30), fill("2023-11-01", 30)]  # Dec 31 - Oct 2 = 90 days

        reason = proportion_of_days_covered(fills, RASA, YEAR_2023).exclusion_reason

        assert reason is ExclusionReason.IPSD_TOO_LATE

    def test_ends_the_treatment_period_at_death(self):
        # Jan1-Mar31 + Apr1-Jun29 = 180 over Jan1-Jun30 = 181; the July fill is ignored
        fills = [*QUARTERLY[:2], fill("2023-07-15", 90)]
        events = PatientEvents(death_date=d("2023-06-30"))

        result = proportion_of_days_covered(fills, RASA, YEAR_2023, events=events)

        assert (result.days_covered, result.days_in_period, result.treatment_end) == (
            180,
            181,
            d("2023-06-30"),
        )

    def test_ends_the_treatment_period_at_disenrollment(self):
        events = PatientEvents(disenrollment_date=d("2023-05-31"))  # Jan1-May31 = 151 days

        result = proportion_of_days_covered(QUARTERLY, RASA, YEAR_2023, events=events)

        assert (result.days_covered, result.days_in_period, result.pdc) == (151, 151, 1.0)

    def test_applies_the_91_day_rule_to_the_end_of_enrollment(self):
        fills = [fill("2023-03-01", 30), fill("2023-04-01", 30)]
        events = PatientEvents(death_date=d("2023-05-01"))  # May 1 - Mar 1 = 61 days

        reason = proportion_of_days_covered(fills, RASA, YEAR_2023, events=events)

        assert reason.exclusion_reason is ExclusionReason.IPSD_TOO_LATE

    def test_excludes_patients_under_18_at_the_start_of_the_period(self):
        events = PatientEvents(birth_date=d("2005-01-02"))

        result = proportion_of_days_covered(QUARTERLY, RASA, YEAR_2023, events=events)

        assert result.exclusion_reason is ExclusionReason.UNDER_18

    def test_includes_patients_turning_18_on_the_first_day(self):
        events = PatientEvents(birth_date=d("2005-01-01"))

        assert proportion_of_days_covered(QUARTERLY, RASA, YEAR_2023, events=events).eligible

    @pytest.mark.parametrize("measure_id", list(MeasureId))
    def test_excludes_hospice_during_the_period(self, measure_id):
        events = PatientEvents(hospice=(DateRange(d("2023-11-01"), d("2024-02-01")),))
        targets = (LISINOPRIL, METFORMIN, ATORVASTATIN)
        fills = [Fill(f.date_of_service, 90, target) for f in QUARTERLY for target in targets]

        result = proportion_of_days_covered(fills, measure(measure_id), YEAR_2023, events=events)

        assert result.exclusion_reason is ExclusionReason.HOSPICE

    def test_keeps_patients_whose_hospice_ended_before_the_period(self):
        events = PatientEvents(hospice=(DateRange(d("2022-10-01"), d("2022-12-31")),))

        assert proportion_of_days_covered(QUARTERLY, RASA, YEAR_2023, events=events).eligible

    @pytest.mark.parametrize(
        ("target", "measure_id"), [(LISINOPRIL, "PDC-RASA"), (ATORVASTATIN, "PDC-STA")]
    )
    def test_excludes_esrd_during_the_period(self, target, measure_id):
        events = PatientEvents(esrd=(DateRange(d("2023-08-01"), d("2023-08-01")),))
        fills = [Fill(f.date_of_service, 90, target) for f in QUARTERLY]

        result = proportion_of_days_covered(fills, measure(measure_id), YEAR_2023, events=events)

        assert result.exclusion_reason is ExclusionReason.ESRD

    def test_excludes_insulin_from_the_diabetes_measure(self):
        fills = [fill("2023-01-01", 90, METFORMIN), fill("2023-04-01", 90, METFORMIN)]
        fills.append(fill("2023-06-01", 30, INSULIN_GLARGINE))

        reason = proportion_of_days_covered(fills, DIABETES, YEAR_2023).exclusion_reason

        assert reason is ExclusionReason.INSULIN

    def test_ignores_insulin_before_the_index_date_by_default(self):
        fills = [fill("2023-03-01", 90, METFORMIN), fill("2023-06-01", 90, METFORMIN)]
        fills.append(fill("2023-01-15", 30, INSULIN_GLARGINE))

        assert proportion_of_days_covered(fills, DIABETES, YEAR_2023).eligible

    def test_can_exclude_insulin_anywhere_in_the_measurement_period(self):
        fills = [fill("2023-03-01", 90, METFORMIN), fill("2023-06-01", 90, METFORMIN)]
        fills.append(fill("2023-01-15", 30, INSULIN_GLARGINE))
        options = PdcOptions(drug_exclusion_window=DrugExclusionWindow.MEASUREMENT_PERIOD)

        result = proportion_of_days_covered(fills, DIABETES, YEAR_2023, options=options)

        assert result.exclusion_reason is ExclusionReason.INSULIN

    def test_excludes_sacubitril_valsartan_from_the_ras_antagonist_measure(self):
        fills = [fill("2023-01-01", 90, VALSARTAN), fill("2023-04-01", 90, VALSARTAN)]
        fills += [fill("2023-07-01", 90, VALSARTAN), fill("2023-07-01", 90, SACUBITRIL)]

        reason = proportion_of_days_covered(fills, RASA, YEAR_2023).exclusion_reason

        assert reason is ExclusionReason.SACUBITRIL_VALSARTAN

    def test_does_not_exclude_insulin_users_from_the_statin_measure(self):
        fills = [Fill(f.date_of_service, 90, ATORVASTATIN) for f in QUARTERLY]
        fills.append(fill("2023-02-01", 30, INSULIN_GLARGINE))

        assert proportion_of_days_covered(fills, STATINS, YEAR_2023).eligible

    def test_removes_stay_days_and_holds_supply_through_a_stay(self):
        # Feb 1-10 in hospital: Jan1-31, resume Feb11-Apr10 (59), Apr11-Jul9, Jul10-Oct7,
        # Oct8-Dec31 (85): 31 + 59 + 90 + 90 + 85 = 355 over 365 - 10 = 355 days
        fills = [*QUARTERLY, fill("2023-09-28", 90)]
        events = PatientEvents(stays=(Stay(d("2023-02-01"), d("2023-02-10")),))

        result = proportion_of_days_covered(fills, RASA, YEAR_2023, events=events)

        assert (result.days_covered, result.days_in_period, result.pdc) == (355, 355, 1.0)

    def test_starts_a_fill_dispensed_during_a_stay_after_discharge(self):
        # Jan1-Feb28 (59 of 60), held Mar1-10, last day Mar 11; Mar 5 fill runs Mar12-Jun9
        fills = [fill("2023-01-01", 60), fill("2023-03-05", 90)]
        events = PatientEvents(stays=(Stay(d("2023-03-01"), d("2023-03-10")),))

        result = proportion_of_days_covered(fills, RASA, YEAR_2023, events=events)

        assert (result.days_covered, result.days_in_period) == (150, 355)

    def test_can_ignore_stays(self):
        fills = [*QUARTERLY, fill("2023-09-28", 90)]
        events = PatientEvents(stays=(Stay(d("2023-02-01"), d("2023-02-10")),))
        options = PdcOptions(adjust_for_stays=False)

        result = proportion_of_days_covered(fills, RASA, YEAR_2023, events=events, options=options)

        assert (result.days_covered, result.days_in_period) == (360, 365)

    def test_does_not_shrink_the_period_for_a_stay_before_the_index_date(self):
        fills = [fill("2023-02-01", 90), fill("2023-05-02", 90)]
        events = PatientEvents(stays=(Stay(d("2023-01-05"), d("2023-01-10")),))

        result = proportion_of_days_covered(fills, RASA, YEAR_2023, events=events)

        assert result.days_in_period == 334

    def test_is_ineligible_when_the_whole_treatment_period_is_a_stay(self):
        events = PatientEvents(stays=(YEAR_2023,))

        result = proportion_of_days_covered(QUARTERLY, RASA, YEAR_2023, events=events)

        assert result.exclusion_reason is ExclusionReason.NO_DAYS_AT_RISK


class TestSupplyDays:
    def test_runs_consecutive_days_from_the_date_of_service(self):
        days = list(supply_days([fill("2023-01-30", 3)]))

        assert days == [d("2023-01-30"), d("2023-01-31"), d("2023-02-01")]

    def test_stops_at_until(self):
        assert len(list(supply_days([fill("2023-12-30", 30)], until=d("2023-12-31")))) == 2

    def test_pauses_on_held_days(self):
        days = list(supply_days([fill("2023-01-01", 2)], held=frozenset({d("2023-01-02")})))

        assert days == [d("2023-01-01"), d("2023-01-03")]


class TestCoveredDays:
    def test_counts_a_day_covered_by_two_drugs_once(self):
        fills = [fill("2023-01-01", 10), fill("2023-01-01", 10, LOSARTAN)]

        assert len(covered_days(fills, window=YEAR_2023)) == 10

    def test_keeps_only_days_inside_the_window(self):
        window = DateRange(d("2023-01-05"), d("2023-01-06"))

        assert covered_days([fill("2023-01-01", 10)], window=window) == {
            d("2023-01-05"),
            d("2023-01-06"),
        }


class TestTreatmentEnd:
    def test_is_the_earliest_of_period_end_death_and_disenrollment(self):
        events = PatientEvents(death_date=d("2023-09-01"), disenrollment_date=d("2023-08-31"))

        assert treatment_end(YEAR_2023, events) == d("2023-08-31")


class TestHeldDays:
    def test_includes_admission_and_discharge_days(self):
        stays = [Stay(d("2023-03-01"), d("2023-03-02")), Stay(d("2023-03-02"), d("2023-03-03"))]

        assert held_days(stays) == {d("2023-03-01"), d("2023-03-02"), d("2023-03-03")}


class TestLatestBirthDate:
    def test_is_the_same_day_that_many_years_earlier(self):
        assert latest_birth_date(d("2023-01-01"), 18) == d("2005-01-01")

    def test_moves_29_february_to_28_february(self):
        assert latest_birth_date(d("2024-02-29"), 18) == d("2006-02-28")


class TestDateRange:
    def test_rejects_an_end_before_the_start(self):
        with pytest.raises(ValueError, match="before it starts"):
            DateRange(d("2023-01-02"), d("2023-01-01"))

    def test_counts_both_ends(self):
        assert len(YEAR_2023) == 365


class TestFill:
    def test_rejects_a_days_supply_below_one(self):
        with pytest.raises(ValueError, match="at least 1"):
            Fill(d("2023-01-01"), 0, LISINOPRIL)


# --- properties -----------------------------------------------------------------------------

START, SPAN = date(2022, 11, 1), 440
# Mostly class drugs dated in 2023, so that most histories are eligible; now and then a statin
# (another class) or sacubitril (an exclusion) to exercise the filters.
INGREDIENTS = [*[LISINOPRIL] * 4, *[LOSARTAN] * 4, ATORVASTATIN, SACUBITRIL]
days_strategy = st.integers(0, SPAN).map(lambda n: START + timedelta(days=n))
fills_strategy = st.lists(
    st.builds(
        Fill,
        date_of_service=days_strategy,
        days_supply=st.integers(1, 120),
        ingredient=st.sampled_from(INGREDIENTS),
    ),
    min_size=1,
    max_size=8,
)
stays_strategy = st.lists(
    st.tuples(days_strategy, st.integers(0, 30)).map(
        lambda t: Stay(t[0], t[0] + timedelta(days=t[1]))
    ),
    max_size=3,
)
options_strategy = st.builds(
    PdcOptions, adjust_for_stays=st.booleans(), carry_in_prior_supply=st.booleans()
)


def stock_oracle(fills, window, held, carry_in):
    """Day-by-day stock simulation: an independent statement of the numerator."""
    counted = [
        f
        for f in fills
        if f.ingredient in RASA.ingredients
        and f.date_of_service <= window.end
        and (carry_in or f.date_of_service >= YEAR_2023.start)
    ]
    covered = set()
    for ingredient in {f.ingredient for f in counted}:
        dispensed = {}
        for f in counted:
            if f.ingredient == ingredient:
                dispensed[f.date_of_service] = dispensed.get(f.date_of_service, 0) + f.days_supply
        stock, day = 0, min(dispensed)
        while day <= window.end:
            stock += dispensed.get(day, 0)
            if day not in held and stock > 0:
                stock -= 1
                if day >= window.start:
                    covered.add(day)
            day += timedelta(days=1)
    return len(covered)


class TestProportionOfDaysCoveredProperties:
    @settings(max_examples=40, deadline=None)
    @given(fills=fills_strategy, stays=stays_strategy, options=options_strategy)
    def test_pdc_stays_between_zero_and_one(self, fills, stays, options):
        events = PatientEvents(stays=tuple(stays))
        result = proportion_of_days_covered(fills, RASA, YEAR_2023, events=events, options=options)

        assert result.pdc is None or 0 <= result.pdc <= 1
        assert 0 <= result.days_covered <= result.days_in_period

    @settings(max_examples=60, deadline=None)
    @given(fills=fills_strategy, stays=stays_strategy, options=options_strategy)
    def test_numerator_matches_a_day_by_day_stock_simulation(self, fills, stays, options):
        events = PatientEvents(stays=tuple(stays))
        result = proportion_of_days_covered(fills, RASA, YEAR_2023, events=events, options=options)
        held = held_days(stays) if options.adjust_for_stays else frozenset()

        if result.eligible:
            window = DateRange(result.index_date, YEAR_2023.end)
            carry_in = options.carry_in_prior_supply
            ratio = Fraction(result.days_covered, result.days_in_period)
            assert result.days_covered == stock_oracle(fills, window, held, carry_in)
            assert result.days_in_period == sum(1 for x in window.days() if x not in held)
            assert result.adherent == (ratio >= Fraction(4, 5))

    @settings(max_examples=30, deadline=None)
    @given(fills=fills_strategy, stays=stays_strategy, data=st.data())
    def test_input_order_changes_nothing(self, fills, stays, data):
        shuffled = data.draw(st.permutations(fills))
        shuffled_stays = data.draw(st.permutations(stays))

        assert proportion_of_days_covered(
            shuffled, RASA, YEAR_2023, events=PatientEvents(stays=tuple(shuffled_stays))
        ) == proportion_of_days_covered(
            fills, RASA, YEAR_2023, events=PatientEvents(stays=tuple(stays))
        )

    @settings(max_examples=20, deadline=None)
    @given(fills=fills_strategy)
    def test_is_deterministic(self, fills):
        first = proportion_of_days_covered(fills, RASA, YEAR_2023)

        assert proportion_of_days_covered(list(fills), RASA, YEAR_2023) == first

    @settings(max_examples=50, deadline=None)
    @given(
        fills=fills_strategy,
        extra=st.builds(
            Fill,
            date_of_service=days_strategy,
            days_supply=st.integers(1, 120),
            ingredient=st.sampled_from([LISINOPRIL, LOSARTAN]),
        ),
        stays=stays_strategy,
        window=st.sampled_from(DrugExclusionWindow),
    )
    def test_adding_a_class_fill_never_lowers_days_covered(self, fills, extra, stays, window):
        # What holds is weaker than "PDC never falls". A class fill dated before the IPSD moves
        # the IPSD earlier: the denominator grows (PDC can fall, see the next test) and, with the
        # treatment-period window, an exclusion-drug fill can come inside the treatment period.
        events = PatientEvents(stays=tuple(stays))
        options = PdcOptions(drug_exclusion_window=window)
        before = proportion_of_days_covered(fills, RASA, YEAR_2023, events=events, options=options)
        after = proportion_of_days_covered(
            [*fills, extra], RASA, YEAR_2023, events=events, options=options
        )

        if before.eligible and after.eligible:
            assert after.days_covered >= before.days_covered
            if extra.date_of_service >= before.index_date:
                assert after.pdc >= before.pdc
        elif before.eligible:
            newly_inside = [
                f
                for f in fills
                if f.ingredient == SACUBITRIL
                and extra.date_of_service <= f.date_of_service < before.index_date
            ]
            assert window is DrugExclusionWindow.TREATMENT_PERIOD
            assert after.exclusion_reason is ExclusionReason.SACUBITRIL_VALSARTAN
            assert newly_inside

    def test_adding_an_earlier_fill_can_bring_an_exclusion_into_the_treatment_period(self):
        fills = [fill("2023-03-01", 90), fill("2023-06-01", 90), fill("2023-02-01", 30, SACUBITRIL)]

        before = proportion_of_days_covered(fills, RASA, YEAR_2023)
        after = proportion_of_days_covered([fill("2023-01-15", 30), *fills], RASA, YEAR_2023)

        assert (before.eligible, after.exclusion_reason) == (
            True,
            ExclusionReason.SACUBITRIL_VALSARTAN,
        )

    def test_adding_an_earlier_fill_can_lower_pdc(self):
        fills = [fill("2023-06-01", 90), fill("2023-08-30", 90)]  # Jun1-Nov27 over Jun1-Dec31
        before = proportion_of_days_covered(fills, RASA, YEAR_2023)

        after = proportion_of_days_covered([fill("2023-01-01", 10), *fills], RASA, YEAR_2023)

        assert after.days_covered == before.days_covered + 10
        assert after.pdc < before.pdc
