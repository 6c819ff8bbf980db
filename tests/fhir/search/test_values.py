"""String normalization, prefix ranges, references and escaping (R4 search.html#string, #reference,
#escaping)."""

from __future__ import annotations

import math
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebridge.fhir.search.values import (
    next_prefix,
    normalize_string,
    number_range,
    parse_reference,
    split_prefix,
    split_unescaped,
    unescape,
)


class TestNormalizeString:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("Eve", "eve"),
            ("EVE", "eve"),
            ("Évelyn", "evelyn"),
            ("Carreño Quiñones", "carreno quinones"),
            ("Zoë", "zoe"),
            ("  Peter   James\tChalmers ", "peter james chalmers"),
            ("Straße", "strasse"),
            ("Ångström", "angstrom"),
        ],
    )
    def test_case_accents_and_spacing_are_ignored(self, text: str, expected: str) -> None:
        assert normalize_string(text) == expected

    def test_the_spec_example_names_start_with_eve(self) -> None:
        # search.html#string: given=eve matches "Eve" and "Evelyn" but not "Severine"
        for name in ("Eve", "Evelyn"):
            assert normalize_string(name).startswith(normalize_string("eve"))
        assert not normalize_string("Severine").startswith(normalize_string("eve"))

    @given(st.text())
    def test_normalizing_twice_changes_nothing(self, text: str) -> None:
        once = normalize_string(text)
        assert normalize_string(once) == once

    @given(st.text(alphabet=string.ascii_letters + " -'"))
    def test_case_never_matters(self, text: str) -> None:
        assert normalize_string(text.upper()) == normalize_string(text.lower())


class TestNextPrefix:
    @pytest.mark.parametrize(
        ("prefix", "expected"),
        [("eve", "evf"), ("a", "b"), ("az", "a{"), ("", "\U0010ffff")],
    )
    def test_is_the_prefix_with_its_last_character_incremented(
        self, prefix: str, expected: str
    ) -> None:
        assert next_prefix(prefix) == expected

    @given(st.text(st.characters(max_codepoint=0xFFFF), min_size=1), st.text())
    def test_every_extension_sorts_inside_the_range(self, prefix: str, tail: str) -> None:
        value = prefix + tail
        assert prefix <= value < next_prefix(prefix)

    @given(
        st.text(st.characters(max_codepoint=0xFFFF), min_size=1),
        st.text(st.characters(max_codepoint=0xFFFF), min_size=1),
    )
    def test_strings_with_another_start_sort_outside_the_range(
        self, prefix: str, other: str
    ) -> None:
        if not other.startswith(prefix):
            assert not prefix <= other < next_prefix(prefix)


class TestParseReference:
    @pytest.mark.parametrize(
        ("reference", "expected"),
        [
            ("Patient/123", ("Patient", "123", None)),
            ("Patient/123/_history/2", ("Patient", "123", None)),
            (
                "http://example.org/fhir/Patient/123",
                ("Patient", "123", "http://example.org/fhir/Patient/123"),
            ),
            (
                "http://example.org/fhir/Patient/123/_history/4",
                ("Patient", "123", "http://example.org/fhir/Patient/123/_history/4"),
            ),
            (
                "urn:uuid:04121321-4af5-424c-a0e1-ed3aab1c349d",
                (None, None, "urn:uuid:04121321-4af5-424c-a0e1-ed3aab1c349d"),
            ),
            ("urn:oid:1.2.3.4.5", (None, None, "urn:oid:1.2.3.4.5")),
            ("#p1", (None, None, None)),
            ("", (None, None, None)),
        ],
    )
    def test_relative_absolute_and_logical_forms(
        self, reference: str, expected: tuple[str | None, str | None, str | None]
    ) -> None:
        assert parse_reference(reference) == expected


class TestSplitPrefix:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("gt100", ("gt", "100")),
            ("ap5.4", ("ap", "5.4")),
            ("100", ("eq", "100")),
            ("ne-1", ("ne", "-1")),
            ("gtNaN", ("eq", "gtNaN")),  # a letter after two letters is no prefix
            ("eq", ("eq", "eq")),
        ],
    )
    def test_search_html_prefixes(self, value: str, expected: tuple[str, str]) -> None:
        assert split_prefix(value) == expected


class TestNumberRange:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            # search.html#number: "100 ... the range [99.5 ... 100.5)"; "1.00e2" likewise
            ("100", (100.0, 99.5, 100.5)),
            ("100.00", (100.0, 99.995, 100.005)),
            ("1.00e2", (100.0, 99.5, 100.5)),
            ("-0.5", (-0.5, -0.55, -0.45)),
        ],
    )
    def test_the_value_and_its_implicit_range(
        self, text: str, expected: tuple[float, float, float]
    ) -> None:
        assert number_range(text) == pytest.approx(expected)

    @pytest.mark.parametrize(
        "text",
        ["NaN", "nan", "Infinity", "-Infinity", "inf", " 5", "+5", "1_000", "5.", ".5", "0x10", ""],
    )
    def test_anything_but_an_r4_decimal_is_refused(self, text: str) -> None:
        with pytest.raises(ValueError, match="not a decimal"):
            number_range(text)

    @pytest.mark.parametrize("text", ["1e999", "-1e999", "1" * 400, "2e308"])
    def test_a_value_beyond_the_float_range_is_refused(self, text: str) -> None:
        with pytest.raises(ValueError, match="beyond the range"):
            number_range(text)

    def test_a_precision_that_makes_the_range_infinite_is_refused(self) -> None:
        with pytest.raises(ValueError, match="infinite"):
            number_range("0e99999999")

    @pytest.mark.parametrize("text", ["1e-99999999999", "0e-99999999", "1.7976931348623157e308"])
    def test_extreme_but_finite_values_give_finite_bounds(self, text: str) -> None:
        assert all(math.isfinite(b) for b in number_range(text))

    @given(st.floats(allow_nan=False, allow_infinity=False))
    def test_every_finite_float_written_as_a_decimal_is_accepted(self, value: float) -> None:
        number, low, high = number_range(_decimal_text(value))
        assert low <= number <= high


def _decimal_text(value: float) -> str:
    """`value` in the lexical form of an R4 decimal (Python writes `1e-05`, `1e+16`, `-0.0`)."""
    mantissa, _, exponent = f"{value:.17e}".partition("e")
    return f"{mantissa}e{int(exponent)}"


def _escape(value: str) -> str:
    """search.html#escaping: `\\` escapes `$`, `,`, `|` and itself."""
    out = value.replace("\\", "\\\\")
    for char in "$,|":
        out = out.replace(char, "\\" + char)
    return out


class TestUnescape:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("xx\\$xx", "xx$xx"),
            ("xx\\\\xx", "xx\\xx"),
            ("a\\,b", "a,b"),
            ("a\\|b", "a|b"),
            ("plain", "plain"),
            ("\\\\\\,", "\\,"),
        ],
    )
    def test_spec_examples(self, text: str, expected: str) -> None:
        assert unescape(text) == expected

    @given(st.text())
    def test_is_the_inverse_of_escaping(self, text: str) -> None:
        assert unescape(_escape(text)) == text


class TestSplitUnescaped:
    @pytest.mark.parametrize(
        ("text", "separator", "expected"),
        [
            ("a,b", ",", ["a", "b"]),
            ("a\\,b", ",", ["a\\,b"]),
            ("a\\\\,b", ",", ["a\\\\", "b"]),
            ("http://loinc.org|1234-5", "|", ["http://loinc.org", "1234-5"]),
            ("|1234-5", "|", ["", "1234-5"]),
            ("http://loinc.org|", "|", ["http://loinc.org", ""]),
            ("sys\\|tem|code", "|", ["sys\\|tem", "code"]),
            ("5.4|http://unitsofmeasure.org|mg", "|", ["5.4", "http://unitsofmeasure.org", "mg"]),
            ("gender$mixed", "$", ["gender", "mixed"]),
        ],
    )
    def test_splits_only_on_unescaped_separators(
        self, text: str, separator: str, expected: list[str]
    ) -> None:
        assert split_unescaped(text, separator) == expected

    @given(st.lists(st.text(), min_size=1, max_size=5))
    def test_escaped_parts_round_trip(self, parts: list[str]) -> None:
        joined = "|".join(_escape(p) for p in parts)
        assert [unescape(p) for p in split_unescaped(joined, "|")] == parts
