"""kit/digits.py: whole numbers from clients, ASCII digits only and bounded."""

from __future__ import annotations

import pytest

from carebridge.kit.digits import (
    ETAG_VERSION_MAX,
    ascii_digits,
    ascii_int,
    etag_version,
    required_etag_version,
)
from carebridge.kit.errors import InvalidRequestError


@pytest.mark.parametrize(("text", "expected"), [("0", True), ("0042", True), ("", False)])
def test_ascii_digits(text: str, expected: bool) -> None:
    assert ascii_digits(text) is expected


@pytest.mark.parametrize("text", ["²", "١٢", "-1", "+1", " 1", "1.0", "1e3"])
def test_anything_but_ascii_digits_is_no_number(text: str) -> None:
    assert not ascii_digits(text)
    assert ascii_int(text, 10**6) is None


def test_values_up_to_the_bound_are_read() -> None:
    assert ascii_int("0", 5) == 0
    assert ascii_int("005", 5) == 5
    assert ascii_int("6", 5) is None


def test_a_value_too_long_for_its_bound_is_refused_before_conversion() -> None:
    assert ascii_int("9" * 5000, 2**63 - 1) is None  # int() refuses more than 4,300 digits
    assert ascii_int("0" * 5000 + "7", 10) == 7


@pytest.mark.parametrize(("value", "expected"), [('W/"3"', 3), ('"12"', 12), ("7", 7)])
def test_etag_versions(value: str, expected: int) -> None:
    assert etag_version(value) == expected


@pytest.mark.parametrize("value", ['W/"x"', 'W/""', 'W/"²"', f'W/"{ETAG_VERSION_MAX + 1}"'])
def test_not_etag_versions(value: str) -> None:
    assert etag_version(value) is None


def test_a_required_etag_version_is_read_or_refused_with_a_400() -> None:
    assert required_etag_version('W/"12"') == 12
    with pytest.raises(InvalidRequestError, match='is not a version ETag like W/"3"'):
        required_etag_version('W/"²"')
    with pytest.raises(InvalidRequestError, match="is not a version ETag"):
        required_etag_version(f'W/"{"9" * 5000}"')
