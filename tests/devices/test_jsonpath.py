"""The JSONPath subset used by device templates."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebridge.devices.jsonpath import (
    MISSING,
    Index,
    JsonPathError,
    Member,
    Wildcard,
    parse,
)

DOCUMENT: dict[str, Any] = {
    "measurements": [{"sys": 128, "dia": 82}, {"sys": 131, "dia": None}],
    "device": {"serial number": "A-1", "fw": "2.1"},
    "it's": 1,
}


class TestParse:
    @pytest.mark.parametrize(
        ("text", "segments"),
        [
            ("$", ()),
            ("$.sys", (Member("sys"),)),
            ("$.a_b-c.d", (Member("a_b-c"), Member("d"))),
            ("$.measurements[0].sys", (Member("measurements"), Index(0), Member("sys"))),
            ("$.measurements[-1]", (Member("measurements"), Index(-1))),
            ("$.measurements[*]", (Member("measurements"), Wildcard())),
            ("$['serial number']", (Member("serial number"),)),
            ('$["serial number"]', (Member("serial number"),)),
            ("$['it\\'s']", (Member("it's"),)),
        ],
    )
    def test_parses_supported_syntax(self, text: str, segments: tuple[object, ...]) -> None:
        assert parse(text).segments == segments

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("sys", "must start with '\\$'"),
            ("", "must start with '\\$'"),
            ("$..sys", "unsupported syntax at position 1"),
            ("$.measurements[?(@.sys)]", "unsupported syntax at position 14"),
            ("$.sys ", "unsupported syntax at position 5"),
            ("$[", "unsupported syntax at position 1"),
            ("$.1abc", "unsupported syntax at position 1"),
        ],
    )
    def test_rejects_syntax_outside_the_subset_with_its_position(
        self, text: str, message: str
    ) -> None:
        with pytest.raises(JsonPathError, match=message):
            parse(text)

    def test_says_whether_a_path_can_select_many_values(self) -> None:
        assert parse("$.measurements[*].sys").selects_many
        assert not parse("$.measurements[0].sys").selects_many


class TestFind:
    def test_root_selects_the_document(self) -> None:
        assert parse("$").find(DOCUMENT) == [("$", DOCUMENT)]

    def test_wildcard_selects_every_list_element_in_order(self) -> None:
        found = parse("$.measurements[*].sys").find(DOCUMENT)
        assert found == [("$.measurements[0].sys", 128), ("$.measurements[1].sys", 131)]

    def test_wildcard_over_an_object_selects_member_values(self) -> None:
        found = parse("$.device[*]").find(DOCUMENT)
        assert found == [("$.device['serial number']", "A-1"), ("$.device.fw", "2.1")]

    def test_negative_index_counts_from_the_end_and_reports_the_real_position(self) -> None:
        assert parse("$.measurements[-1].sys").find(DOCUMENT) == [("$.measurements[1].sys", 131)]

    def test_index_past_the_end_selects_nothing(self) -> None:
        assert parse("$.measurements[5]").find(DOCUMENT) == []

    def test_member_of_a_non_object_selects_nothing(self) -> None:
        assert parse("$.measurements.sys").find(DOCUMENT) == []

    def test_index_into_an_object_selects_nothing(self) -> None:
        assert parse("$.device[0]").find(DOCUMENT) == []

    def test_wildcard_over_a_scalar_selects_nothing(self) -> None:
        assert parse("$['it\\'s'][*]").find(DOCUMENT) == []

    def test_location_quotes_names_that_are_not_identifiers(self) -> None:
        assert parse("$['it\\'s']").find(DOCUMENT) == [("$['it\\'s']", 1)]


class TestFirst:
    def test_returns_the_first_selected_value(self) -> None:
        assert parse("$.measurements[*].sys").first(DOCUMENT) == 128

    def test_returns_missing_when_nothing_is_selected(self) -> None:
        assert parse("$.measurements[0].pul").first(DOCUMENT) is MISSING

    def test_keeps_json_null_distinct_from_missing(self) -> None:
        assert parse("$.measurements[1].dia").first(DOCUMENT) is None


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


class TestLocations:
    @given(document=_JSON)
    def test_every_reported_location_is_a_path_back_to_the_same_value(self, document: Any) -> None:
        for path in ("$[*]", "$[*][*]"):
            for location, value in parse(path).find(document):
                assert parse(location).find(document) == [(location, value)]


_KEYS = st.sampled_from(["a", "b", "readings", "0"])
_DOCS = st.recursive(
    st.none() | st.booleans() | st.integers(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=20,
)
_PATHS = st.lists(st.sampled_from([".a", ".b", ".readings", "[0]", "[-1]", "[*]"]), max_size=4)


class TestFirstAgreesWithFind:
    @given(document=_DOCS, segments=_PATHS)
    def test_first_is_the_first_value_that_find_selects(
        self, document: Any, segments: list[str]
    ) -> None:
        path = parse("$" + "".join(segments))
        found = path.find(document)
        assert path.first(document) == (found[0][1] if found else MISSING)
