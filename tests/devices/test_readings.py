"""Reading identity (dedupe key), clock skew, time parsing and the device context."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebridge.devices.kinds import ReadingKind
from carebridge.devices.readings import (
    ClockSkew,
    DeviceContext,
    dedupe_key,
    detect_clock_skew,
    parse_time,
)
from carebridge.devices.templates import TimeFormat
from carebridge.kit.ids import is_valid_id

AT_0800 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
BP = ReadingKind.BLOOD_PRESSURE
FIVE_MINUTES = timedelta(minutes=5)


class TestDedupeKey:
    def test_same_device_kind_and_time_give_the_same_key(self) -> None:
        assert dedupe_key("cuff-17", BP, AT_0800) == dedupe_key("cuff-17", BP, AT_0800)

    def test_same_instant_in_another_offset_gives_the_same_key(self) -> None:
        paris = AT_0800.astimezone(timezone(timedelta(hours=1)))
        assert dedupe_key("cuff-17", BP, paris) == dedupe_key("cuff-17", BP, AT_0800)

    @pytest.mark.parametrize(
        ("device", "kind", "moment"),
        [
            ("cuff-18", BP, AT_0800),
            ("cuff-17", ReadingKind.HEART_RATE, AT_0800),
            ("cuff-17", BP, AT_0800 + timedelta(seconds=1)),
            ("cuff-17", BP, AT_0800 + timedelta(microseconds=1)),
        ],
    )
    def test_another_device_kind_or_time_gives_another_key(
        self, device: str, kind: ReadingKind, moment: datetime
    ) -> None:
        assert dedupe_key(device, kind, moment) != dedupe_key("cuff-17", BP, AT_0800)

    def test_key_is_128_bits_of_hex_and_a_valid_fhir_id(self) -> None:
        key = dedupe_key("cuff-17", BP, AT_0800)
        assert len(key) == 32
        assert int(key, 16) >= 0
        assert is_valid_id(key)

    @given(seconds=st.integers(0, 4_000_000_000), hours=st.integers(-12, 14))
    def test_key_depends_on_the_instant_not_its_offset(self, seconds: int, hours: int) -> None:
        moment = datetime.fromtimestamp(seconds, UTC)
        shifted = moment.astimezone(timezone(timedelta(hours=hours)))
        assert dedupe_key("scale-1", ReadingKind.BODY_WEIGHT, shifted) == dedupe_key(
            "scale-1", ReadingKind.BODY_WEIGHT, moment
        )


class TestDetectClockSkew:
    def test_reading_further_ahead_than_the_threshold_is_skewed(self) -> None:
        skew = detect_clock_skew(AT_0800 + timedelta(minutes=6), AT_0800, FIVE_MINUTES)
        assert skew == ClockSkew(timedelta(minutes=6), FIVE_MINUTES)

    def test_reading_exactly_at_the_threshold_is_not_skewed(self) -> None:
        assert detect_clock_skew(AT_0800 + FIVE_MINUTES, AT_0800, FIVE_MINUTES) is None

    def test_late_reading_is_not_skewed(self) -> None:
        assert detect_clock_skew(AT_0800 - timedelta(days=30), AT_0800, FIVE_MINUTES) is None


class TestParseTime:
    @pytest.mark.parametrize(
        ("raw", "time_format", "expected"),
        [
            ("2025-03-01T08:00:00Z", TimeFormat.ISO8601, AT_0800),
            ("2025-03-01T09:00:00+01:00", TimeFormat.ISO8601, AT_0800),
            ("2025-03-01T03:00:00-05:00", TimeFormat.ISO8601, AT_0800),
            (
                "2025-03-01T08:00:00.250Z",
                TimeFormat.ISO8601,
                AT_0800 + timedelta(milliseconds=250),
            ),
            (1_740_816_000, TimeFormat.EPOCH_SECONDS, AT_0800),
            (1_740_816_000.5, TimeFormat.EPOCH_SECONDS, AT_0800 + timedelta(milliseconds=500)),
            (1_740_816_000_123, TimeFormat.EPOCH_MILLIS, AT_0800 + timedelta(milliseconds=123)),
        ],
    )
    def test_returns_aware_utc(self, raw: Any, time_format: TimeFormat, expected: datetime) -> None:
        parsed = parse_time(raw, time_format)
        assert parsed == expected
        assert parsed.tzinfo is UTC

    @pytest.mark.parametrize(
        ("raw", "time_format", "message"),
        [
            ("2025-03-01T08:00:00", TimeFormat.ISO8601, "no UTC offset"),
            ("01/03/2025 08:00", TimeFormat.ISO8601, "Invalid isoformat string"),
            (1_740_816_000, TimeFormat.ISO8601, "expected ISO 8601 text"),
            ("1740816000", TimeFormat.EPOCH_SECONDS, "expected a number of seconds"),
            (True, TimeFormat.EPOCH_MILLIS, "expected a number of milliseconds"),
            (10**20, TimeFormat.EPOCH_SECONDS, "out of the representable range"),
            (float("nan"), TimeFormat.EPOCH_SECONDS, "out of the representable range"),
        ],
    )
    def test_says_what_is_wrong(self, raw: Any, time_format: TimeFormat, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            parse_time(raw, time_format)


class TestDeviceContext:
    def test_accepts_fhir_ids_and_an_aware_time(self) -> None:
        context = DeviceContext("cuff-17", "pat-42", AT_0800)
        assert context.received_at == AT_0800

    def test_refuses_a_naive_received_at(self) -> None:
        with pytest.raises(ValueError, match="received_at must be timezone-aware"):
            DeviceContext("cuff-17", "pat-42", AT_0800.replace(tzinfo=None))

    @pytest.mark.parametrize(("device", "patient"), [("cuff 17", "pat-42"), ("cuff-17", "")])
    def test_refuses_ids_that_are_not_fhir_ids(self, device: str, patient: str) -> None:
        with pytest.raises(ValueError, match="is not a valid FHIR id"):
            DeviceContext(device, patient, AT_0800)
