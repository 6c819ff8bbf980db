"""SMART App Launch 2.0 scopes: parsing (v2, v1 aliases, search restrictions) and decisions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carebridge.access.scopes import (
    Context,
    Interaction,
    InvalidScopeError,
    ResourceScope,
    decide,
    parse_scope,
    parse_scopes,
    uncovered,
)

C, R, U, D, S = (Interaction(x) for x in "cruds")


class TestParseScope:
    @pytest.mark.parametrize(
        ("text", "context", "resource_type", "interactions"),
        [
            ("patient/Observation.rs", Context.PATIENT, "Observation", {R, S}),
            ("user/*.cruds", Context.USER, "*", {C, R, U, D, S}),
            ("system/*.rs", Context.SYSTEM, "*", {R, S}),
            ("system/Patient.c", Context.SYSTEM, "Patient", {C}),
            ("user/Task.cud", Context.USER, "Task", {C, U, D}),
            ("patient/MedicationRequest.s", Context.PATIENT, "MedicationRequest", {S}),
            ("patient/Observation.read", Context.PATIENT, "Observation", {R, S}),
            ("user/*.write", Context.USER, "*", {C, U, D}),
            ("patient/*.*", Context.PATIENT, "*", {C, R, U, D, S}),
            ("system/Encounter.*", Context.SYSTEM, "Encounter", {C, R, U, D, S}),
        ],
    )
    def test_resource_scopes(
        self, text: str, context: Context, resource_type: str, interactions: set[Interaction]
    ) -> None:
        scope = parse_scope(text)
        assert isinstance(scope, ResourceScope)
        assert (scope.context, scope.resource_type) == (context, resource_type)
        assert scope.interactions == interactions
        assert scope.text == text
        assert scope.query == ()

    def test_search_restriction_is_kept(self) -> None:
        scope = parse_scope("patient/Observation.rs?category=http://x|laboratory&status=final")
        assert isinstance(scope, ResourceScope)
        assert scope.query == (("category", "http://x|laboratory"), ("status", "final"))
        assert scope.interactions == {R, S}

    def test_search_restriction_with_percent_encoding(self) -> None:
        scope = parse_scope("patient/Observation.rs?code=http%3A%2F%2Floinc.org%7C8480-6")
        assert isinstance(scope, ResourceScope)
        assert scope.query == (("code", "http://loinc.org|8480-6"),)

    @pytest.mark.parametrize(
        "text",
        [
            "openid",
            "fhirUser",
            "profile",
            "launch",
            "launch/patient",
            "launch/encounter",
            "offline_access",
            "online_access",
        ],
    )
    def test_non_resource_scopes_are_accepted_as_text(self, text: str) -> None:
        assert parse_scope(text) == text

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("*.*", "patient/, user/ or system/"),
            ("Observation.read", "patient/, user/ or system/"),
            ("admin/Observation.rs", "patient/, user/ or system/"),
            ("Patient/Observation.rs", "patient/, user/ or system/"),
            ("patient/Observation", "resource type name or *"),
            ("patient/observation.rs", "resource type name or *"),
            ("patient/Obs3rvation.rs", "resource type name or *"),
            ("patient/.rs", "resource type name or *"),
            ("patient/Observation.", "subset of 'cruds'"),
            ("patient/Observation.sr", "subset of 'cruds'"),
            ("patient/Observation.rr", "subset of 'cruds'"),
            ("patient/Observation.x", "subset of 'cruds'"),
            ("patient/Observation.READ", "subset of 'cruds'"),
            ("patient/Observation.rs.x", "subset of 'cruds'"),
            ("patient/Observation.rs?", "search parameters"),
            ("patient/Observation.rs?category", "search parameters"),
            ("patient/Observation.rs?=x", "search parameters"),
            ("launch/other", "patient/, user/ or system/"),
            ("openID", "patient/, user/ or system/"),
        ],
    )
    def test_invalid_scopes_say_why(self, text: str, reason: str) -> None:
        with pytest.raises(InvalidScopeError) as caught:
            parse_scope(text)
        assert reason in str(caught.value)
        assert caught.value.scope == text


class TestParseScopes:
    def test_splits_on_whitespace_and_drops_duplicates(self) -> None:
        scopes = parse_scopes("  system/*.rs openid\tsystem/*.rs  launch/patient ")
        assert [s.text for s in scopes.resource] == ["system/*.rs"]
        assert scopes.other == ("openid", "launch/patient")
        assert scopes.text == "system/*.rs openid launch/patient"

    @pytest.mark.parametrize("text", [None, "", "   "])
    def test_nothing_is_an_empty_set(self, text: str | None) -> None:
        assert parse_scopes(text).text == ""

    def test_one_invalid_scope_fails_the_set(self) -> None:
        with pytest.raises(InvalidScopeError, match="bogus"):
            parse_scopes("system/*.rs bogus")


class TestDecide:
    @pytest.mark.parametrize(
        ("granted", "resource_type", "interaction", "context"),
        [
            ("patient/Observation.rs", "Observation", R, Context.PATIENT),
            ("patient/Observation.rs", "Observation", S, Context.PATIENT),
            ("patient/Observation.rs", "Observation", C, None),
            ("patient/Observation.rs", "Condition", R, None),
            ("user/*.cruds", "Condition", D, Context.USER),
            ("system/*.rs", "Patient", U, None),
            ("system/*.rs", "Patient", R, Context.SYSTEM),
            ("patient/Observation.read", "Observation", S, Context.PATIENT),
            ("patient/Observation.read", "Observation", U, None),
            ("user/*.write", "Task", C, Context.USER),
            ("user/*.write", "Task", R, None),
            ("patient/*.*", "Task", D, Context.PATIENT),
            ("patient/*.rs user/Observation.r", "Observation", R, Context.USER),
            (
                "patient/*.rs user/Observation.r system/Observation.s",
                "Observation",
                R,
                Context.USER,
            ),
            ("patient/*.rs system/*.s", "Observation", S, Context.SYSTEM),
            ("openid fhirUser launch/patient offline_access", "Patient", R, None),
            ("", "Patient", R, None),
        ],
    )
    def test_decisions(
        self, granted: str, resource_type: str, interaction: Interaction, context: Context | None
    ) -> None:
        decision = decide(parse_scopes(granted), resource_type, interaction)
        assert decision.allowed is (context is not None)
        assert decision.context == context

    def test_matches_carry_search_restrictions(self) -> None:
        granted = parse_scopes(
            "patient/Observation.rs?category=laboratory patient/Observation.rs?category=vital-signs"
        )
        decision = decide(granted, "Observation", S)
        assert decision.restrictions == (
            (("category", "laboratory"),),
            (("category", "vital-signs"),),
        )

    def test_an_unrestricted_scope_lifts_restrictions(self) -> None:
        granted = parse_scopes("patient/Observation.rs?category=laboratory patient/*.rs")
        assert decide(granted, "Observation", R).restrictions == ()

    def test_restrictions_of_a_narrower_context_do_not_apply(self) -> None:
        granted = parse_scopes("patient/Observation.rs system/Observation.rs?category=laboratory")
        decision = decide(granted, "Observation", R)
        assert decision.context is Context.SYSTEM
        assert decision.restrictions == ((("category", "laboratory"),),)
        assert len(decision.matches) == 2


class TestUncovered:
    @pytest.mark.parametrize(
        ("allowed", "requested", "refused"),
        [
            ("system/*.cruds", "system/Observation.rs system/Patient.c", ()),
            ("system/*.rs", "system/Observation.rs", ()),
            ("system/*.rs", "system/Observation.read", ()),
            ("system/*.rs", "system/Observation.r", ()),
            ("system/*.rs", "system/Observation.rud", ("system/Observation.rud",)),
            ("system/*.rs", "user/Observation.rs", ("user/Observation.rs",)),
            ("system/Observation.rs", "system/*.rs", ("system/*.rs",)),
            ("system/*.*", "system/*.cruds", ()),
            ("user/*.write", "user/Task.cud", ()),
            ("user/*.write", "user/Task.cruds", ("user/Task.cruds",)),
            (
                "patient/Observation.rs?category=lab",
                "patient/Observation.rs",
                ("patient/Observation.rs",),
            ),
            ("patient/Observation.rs?category=lab", "patient/Observation.rs?category=lab", ()),
            (
                "patient/Observation.rs?category=lab",
                "patient/Observation.r?category=lab&code=1",
                (),
            ),
            ("patient/Observation.rs", "patient/Observation.rs?category=lab", ()),
            ("system/*.rs", "openid fhirUser launch/patient", ()),
        ],
    )
    def test_requested_scopes_must_be_covered(
        self, allowed: str, requested: str, refused: tuple[str, ...]
    ) -> None:
        assert uncovered(parse_scopes(allowed), parse_scopes(requested)) == refused


# -- properties ---------------------------------------------------------------------------------

RESOURCE_TYPES = ["Patient", "Observation", "Condition", "MedicationRequest"]
PERMISSIONS = ["c", "r", "u", "d", "s", "rs", "cud", "cruds", "crs", "ud", "read", "write", "*"]
EXPANDED = {"read": "rs", "write": "cud", "*": "cruds"}

scope_texts = st.builds(
    lambda context, rtype, permission: f"{context}/{rtype}.{permission}",
    st.sampled_from(["patient", "user", "system"]),
    st.sampled_from([*RESOURCE_TYPES, "*"]),
    st.sampled_from(PERMISSIONS),
)
scope_sets = st.lists(scope_texts, max_size=6).map(" ".join)
interactions = st.sampled_from(list(Interaction))


class TestDecisionProperties:
    @settings(deadline=None)
    @given(scope_sets, st.sampled_from(RESOURCE_TYPES), interactions)
    def test_never_allows_what_no_scope_names(
        self, granted: str, resource_type: str, interaction: Interaction
    ) -> None:
        named = any(
            rtype in (resource_type, "*") and interaction.value in EXPANDED.get(perm, perm)
            for rtype, perm in (item.split("/")[1].split(".") for item in granted.split())
        )
        assert decide(parse_scopes(granted), resource_type, interaction).allowed is named

    @settings(deadline=None)
    @given(scope_sets, scope_texts, st.sampled_from(RESOURCE_TYPES), interactions)
    def test_adding_a_scope_never_takes_access_away(
        self, granted: str, extra: str, resource_type: str, interaction: Interaction
    ) -> None:
        before = decide(parse_scopes(granted), resource_type, interaction).allowed
        after = decide(parse_scopes(f"{granted} {extra}"), resource_type, interaction).allowed
        assert after or not before

    @settings(deadline=None)
    @given(scope_sets)
    def test_a_scope_set_covers_itself_and_survives_a_round_trip(self, granted: str) -> None:
        scopes = parse_scopes(granted)
        assert uncovered(scopes, scopes) == ()
        assert parse_scopes(scopes.text) == scopes

    @settings(deadline=None)
    @given(scope_sets, scope_sets, st.sampled_from(RESOURCE_TYPES), interactions)
    def test_a_covered_request_allows_nothing_beyond_the_allowed_set(
        self, allowed: str, requested: str, resource_type: str, interaction: Interaction
    ) -> None:
        allowed_set, requested_set = parse_scopes(allowed), parse_scopes(requested)
        if uncovered(allowed_set, requested_set):
            return
        if decide(requested_set, resource_type, interaction).allowed:
            assert decide(allowed_set, resource_type, interaction).allowed
