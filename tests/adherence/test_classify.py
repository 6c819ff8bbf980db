"""Classification of dispensed products to PDC target ingredients."""

from __future__ import annotations

import pytest

from carebridge.adherence.classify import (
    Coding,
    classify_medication,
    ingredients_for_code,
    ingredients_in_text,
    normalize_ndc,
)

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC = "http://hl7.org/fhir/sid/ndc"
LISINOPRIL, LOSARTAN, VALSARTAN, SACUBITRIL = "29046", "52175", "69749", "1656328"
METFORMIN, SITAGLIPTIN, ATORVASTATIN = "6809", "593411", "83367"
INSULIN_GLARGINE, INSULIN = "274783", "5856"


def rx(code: str, display: str | None = None) -> Coding:
    return Coding(RXNORM, code, display)


class TestClassifyMedication:
    @pytest.mark.parametrize(
        ("coding", "expected"),
        [
            pytest.param(rx(LISINOPRIL), {LISINOPRIL}, id="ingredient-rxcui"),
            pytest.param(rx("314076"), {LISINOPRIL}, id="lisinopril-10-mg-tablet"),
            pytest.param(rx("617310"), {ATORVASTATIN}, id="atorvastatin-20-mg-tablet"),
            pytest.param(rx("617312"), {ATORVASTATIN}, id="atorvastatin-10-mg-tablet"),
            pytest.param(rx("860975"), {METFORMIN}, id="metformin-500-mg-er-tablet"),
            pytest.param(rx("197885"), {LISINOPRIL}, id="lisinopril-hctz-is-lisinopril"),
            pytest.param(rx("861819"), {METFORMIN, SITAGLIPTIN}, id="sitagliptin-metformin"),
            pytest.param(rx("1656340"), {SACUBITRIL, VALSARTAN}, id="sacubitril-valsartan"),
            pytest.param(
                Coding("urn:oid:2.16.840.1.113883.6.88", "314076"), {LISINOPRIL}, id="oid-system"
            ),
        ],
    )
    def test_reads_ingredients_from_a_known_rxnorm_code(self, coding, expected):
        assert classify_medication([coding]) == expected

    def test_reads_the_display_of_an_unknown_product_code(self):
        coding = rx(
            "999999999", "losartan potassium 50 MG / hydrochlorothiazide 12.5 MG Oral Tablet"
        )

        assert classify_medication([coding]) == {LOSARTAN}

    def test_reads_the_text_when_no_coding_is_known(self):
        assert classify_medication([], text="LIPITOR 20MG TAB") == {ATORVASTATIN}

    def test_prefers_a_known_code_over_a_contradicting_display(self):
        assert classify_medication([rx("314076", "atorvastatin 20 MG")]) == {LISINOPRIL}

    def test_returns_nothing_for_a_drug_outside_the_measures(self):
        assert classify_medication([rx("197361", "amlodipine 5 MG Oral Tablet")]) == frozenset()

    def test_uses_a_supplied_ndc_table(self):
        table = {"01234567890": (LISINOPRIL,)}

        assert classify_medication([Coding(NDC, "1234-5678-90")], ndc_table=table) == {LISINOPRIL}

    def test_ships_no_unverified_ndc(self):
        assert classify_medication([Coding(NDC, "1234-5678-90")]) == frozenset()


class TestIngredientsForCode:
    def test_ignores_other_code_systems(self):
        assert ingredients_for_code(Coding("http://snomed.info/sct", "372912004")) == ()

    def test_ignores_a_coding_without_code(self):
        assert ingredients_for_code(Coding(RXNORM, None, "lisinopril")) == ()


class TestIngredientsInText:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("lisinopril 10 MG Oral Tablet", {LISINOPRIL}, id="rxnorm-name"),
            pytest.param("METFORMIN HCL 500MG TAB", {METFORMIN}, id="upper-case-abbreviated"),
            pytest.param(
                "insulin glargine-yfgn 100 UNT/ML Pen Injector",
                {INSULIN_GLARGINE},
                id="longest-name-wins",
            ),
            pytest.param("insulin isophane, human", {INSULIN}, id="unlisted-insulin-is-insulin"),
            pytest.param("Entresto 49-51 mg", {SACUBITRIL, VALSARTAN}, id="brand-combination"),
            pytest.param("prolisinoprilx", frozenset(), id="whole-words-only"),
        ],
    )
    def test_finds_ingredient_names(self, text, expected):
        assert ingredients_in_text(text) == expected


class TestNormalizeNdc:
    @pytest.mark.parametrize(
        ("code", "expected"),
        [
            pytest.param("1234-5678-90", "01234567890", id="4-4-2"),
            pytest.param("12345-678-90", "12345067890", id="5-3-2"),
            pytest.param("12345-6789-0", "12345678900", id="5-4-1"),
            pytest.param("12345-6789-01", "12345678901", id="5-4-2"),
            pytest.param("12345678901", "12345678901", id="11-digits"),
            pytest.param("1234567890", None, id="ambiguous-10-digits"),
            pytest.param("123456-789-01", None, id="segment-too-long"),
            pytest.param("123-45-6", None, id="too-few-digits"),
            pytest.param("abcde-1234-12", None, id="not-digits"),
        ],
    )
    def test_pads_to_the_eleven_digit_form(self, code, expected):
        assert normalize_ndc(code) == expected
