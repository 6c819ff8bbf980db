"""FHIR date/dateTime/instant strings as implicit ranges (R4 search.html#date).

"the date 2013-01-10 specifies all the time from 00:00 on 10-Jan 2013 to immediately before 00:00
on 11-Jan 2013"; a year covers Jan 1st to the last instant of Dec 31st, a month its first to its
last day. Every expected range below is worked out by hand from those rules.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebridge.fhir.search.dates import (
    HIGH,
    InvalidDateError,
    date_range,
    instant_text,
    to_naive_utc,
)

LAST = 999_999  # the last microsecond of a second


def utc(*parts: int) -> datetime:
    """A naive UTC datetime, the form the search index stores."""
    return datetime(*parts, tzinfo=UTC).replace(tzinfo=None)


class TestDateRange:
    @pytest.mark.parametrize(
        ("text", "start", "end"),
        [
            ("2013", utc(2013, 1, 1), utc(2013, 12, 31, 23, 59, 59, LAST)),
            ("2000-04", utc(2000, 4, 1), utc(2000, 4, 30, 23, 59, 59, LAST)),
            ("2020-02", utc(2020, 2, 1), utc(2020, 2, 29, 23, 59, 59, LAST)),
            ("2019-02", utc(2019, 2, 1), utc(2019, 2, 28, 23, 59, 59, LAST)),
            ("2013-12", utc(2013, 12, 1), utc(2013, 12, 31, 23, 59, 59, LAST)),
            ("2013-01-10", utc(2013, 1, 10), utc(2013, 1, 10, 23, 59, 59, LAST)),
            (
                "2013-01-14T10:00",
                utc(2013, 1, 14, 10, 0),
                utc(2013, 1, 14, 10, 0, 59, LAST),
            ),
            (
                "2015-08-12T05:23:45Z",
                utc(2015, 8, 12, 5, 23, 45),
                utc(2015, 8, 12, 5, 23, 45, LAST),
            ),
            (
                "2015-08-12T05:23:45.5Z",
                utc(2015, 8, 12, 5, 23, 45, 500_000),
                utc(2015, 8, 12, 5, 23, 45, 599_999),
            ),
            (
                "2015-08-12T05:23:45.123456Z",
                utc(2015, 8, 12, 5, 23, 45, 123_456),
                utc(2015, 8, 12, 5, 23, 45, 123_456),
            ),
        ],
    )
    def test_precision_sets_the_implicit_range(
        self, text: str, start: datetime, end: datetime
    ) -> None:
        assert date_range(text) == (start, end)

    def test_a_positive_offset_is_moved_back_to_utc(self) -> None:
        assert date_range("2013-01-14T10:00:00+10:00")[0] == utc(2013, 1, 14, 0, 0)

    def test_a_negative_offset_is_moved_forward_to_utc(self) -> None:
        assert date_range("2013-01-14T22:30:00-05:00")[0] == utc(2013, 1, 15, 3, 30)

    def test_an_offset_can_cross_a_year_boundary(self) -> None:
        start, end = date_range("2013-01-01T00:00:00+01:00")
        assert start == utc(2012, 12, 31, 23, 0)
        assert end == utc(2012, 12, 31, 23, 0, 0, LAST)

    def test_the_last_representable_year_ends_at_the_upper_bound(self) -> None:
        assert date_range("9999") == (utc(9999, 1, 1), HIGH)

    def test_surrounding_whitespace_is_ignored(self) -> None:
        assert date_range(" 2013 ") == date_range("2013")

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "13",
            "2013-1",
            "2013-01-1",
            "2013-13",
            "2020-13-01",
            "2019-02-29",
            "2013-01-32",
            "2013-01-14T25:00",
            "2013-01-14T10",
            "2013-01-14 10:00",
            "2013-01-14T10:00:00+1000",
            "14/01/2013",
            "23 May 2009",
            "2013-01-14T10:00:00z",
            "2013-01-14T10:00:00+25:00",
            "2013-01-14T10:00:00+10:60",
        ],
    )
    def test_malformed_or_impossible_dates_are_rejected(self, text: str) -> None:
        with pytest.raises(InvalidDateError):
            date_range(text)


def _date_texts() -> st.SearchStrategy[str]:
    def render(moment: datetime, precision: int) -> str:
        return moment.strftime(
            ["%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"][precision]
        )

    return st.builds(
        render,
        st.datetimes(min_value=utc(1800, 1, 1), max_value=utc(2200, 12, 31)),
        st.integers(0, 4),
    )


class TestDateRangeProperties:
    @given(_date_texts())
    def test_start_never_exceeds_end(self, text: str) -> None:
        start, end = date_range(text)
        assert start <= end

    @given(st.datetimes(min_value=utc(1800, 1, 1), max_value=utc(2200, 12, 31)))
    def test_finer_precision_nests_inside_coarser(self, moment: datetime) -> None:
        texts = [
            moment.strftime("%Y"),
            moment.strftime("%Y-%m"),
            moment.strftime("%Y-%m-%d"),
            moment.strftime("%Y-%m-%dT%H:%M"),
            moment.strftime("%Y-%m-%dT%H:%M:%S"),
        ]
        ranges = [date_range(t) for t in texts]
        for (outer_start, outer_end), (inner_start, inner_end) in pairwise(ranges):
            assert outer_start <= inner_start <= inner_end <= outer_end

    @given(st.datetimes(min_value=utc(1800, 1, 1), max_value=utc(2200, 12, 31)))
    def test_the_instant_itself_lies_in_its_day(self, moment: datetime) -> None:
        start, end = date_range(moment.strftime("%Y-%m-%d"))
        assert start <= moment <= end

    @given(
        st.datetimes(min_value=utc(1800, 1, 2), max_value=utc(2200, 12, 30)),
        st.integers(-14 * 60, 14 * 60).map(lambda m: m - m % 15),
    )
    def test_an_offset_denotes_the_same_instant_as_utc(
        self, moment: datetime, minutes: int
    ) -> None:
        moment = moment.replace(microsecond=0)
        local = moment + timedelta(minutes=minutes)
        sign = "+" if minutes >= 0 else "-"
        offset = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        text = local.strftime("%Y-%m-%dT%H:%M:%S") + offset
        assert date_range(text)[0] == moment

    @given(_date_texts())
    def test_adjacent_ranges_do_not_overlap(self, text: str) -> None:
        start, end = date_range(text)
        following = end + timedelta(microseconds=1)
        if following.year <= 9999 and len(text) > 4:
            assert not start <= following <= end


class TestInstantText:
    def test_naive_values_are_utc_with_milliseconds(self) -> None:
        assert instant_text(utc(2013, 1, 14, 10, 0, 5, 123_999)) == "2013-01-14T10:00:05.123Z"

    def test_aware_values_are_converted_to_utc(self) -> None:
        plus_two = timezone(timedelta(hours=2))
        assert instant_text(datetime(2013, 1, 14, 12, 0, tzinfo=plus_two)) == (
            "2013-01-14T10:00:00.000Z"
        )

    def test_round_trips_through_date_range(self) -> None:
        moment = utc(2024, 2, 29, 23, 59, 58, 250_000)
        assert date_range(instant_text(moment))[0] == moment


class TestToNaiveUtc:
    def test_naive_values_are_returned_unchanged(self) -> None:
        moment = utc(2020, 5, 1, 8)
        assert to_naive_utc(moment) == moment

    def test_aware_values_lose_their_zone_after_conversion(self) -> None:
        moment = datetime(2020, 5, 1, 8, tzinfo=timezone(timedelta(hours=-4)))
        assert to_naive_utc(moment) == utc(2020, 5, 1, 12)

    def test_utc_values_keep_their_clock_time(self) -> None:
        assert to_naive_utc(datetime(2020, 5, 1, 8, tzinfo=UTC)) == utc(2020, 5, 1, 8)
