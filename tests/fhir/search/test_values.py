"""String normalization, prefix ranges, references and escaping (R4 search.html#string, #reference,
#escaping)."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebridge.fhir.search.values import (
    next_prefix,
    normalize_string,
    parse_reference,
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
