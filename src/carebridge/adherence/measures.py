"""The PQA adherence measures (PDC-DR, PDC-RASA, PDC-STA) and their medication classes.

Every medication is keyed by its RxNorm ingredient RXCUI (term type IN). A fill counts toward a
measure through its *target ingredient*: a combination product counts as the ingredient of the
class it carries (losartan/hydrochlorothiazide is losartan for PDC-RASA), which is also what makes
two fills "the same drug" for overlap shifting.

Sources (see docs/clinical.md, "Medication adherence"):
- classes: Pharmacy Quality Alliance (PQA) PDC measure specifications, as summarised in the CMS
  Part C & D Star Ratings Technical Notes (measures "Medication Adherence for Diabetes Medications",
  "... for Hypertension (RAS antagonists)", "... for Cholesterol (Statins)");
- codes: each ingredient carries the ``Evidence`` it was checked against.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from types import MappingProxyType


class MeasureId(StrEnum):
    PDC_DR = "PDC-DR"
    PDC_RASA = "PDC-RASA"
    PDC_STA = "PDC-STA"


class Evidence(StrEnum):
    """Where an ingredient RXCUI in these tables was checked."""

    VSAC_RAS = (
        "VSAC 2.16.840.1.113883.3.526.3.1489 ACE Inhibitor or ARB or ARNI Ingredient "
        "(expansion 20240502, RxNorm 2024-01)"
    )
    VSAC_STATIN = "VSAC 2.16.840.1.113762.1.4.1110.42 Statin Allergen (expansion 20240502)"
    US_CORE = "US Core 3.1.1 ValueSet us-core-allergy-substance (RxNorm part)"
    VSAC_DIABETES = (
        "VSAC 2.16.840.1.113762.1.4.1190.58 Diabetes Medications "
        "(expansion 2025-07-02, RxNorm 06022025)"
    )
    CROSS_CHECKED = "independent public diabetes code lists (not an RxNorm release)"


class ExclusionReason(StrEnum):
    """Why a patient is not in a measure's denominator, or is excluded from it."""

    UNDER_18 = "under-18"
    FEWER_THAN_TWO_FILLS = "fewer-than-two-fills"
    IPSD_TOO_LATE = "ipsd-too-late"
    NO_DAYS_AT_RISK = "no-days-at-risk"
    HOSPICE = "hospice"
    ESRD = "esrd"
    INSULIN = "insulin"
    SACUBITRIL_VALSARTAN = "sacubitril-valsartan"


@dataclass(frozen=True)
class Ingredient:
    rxcui: str
    name: str
    group: str
    evidence: Evidence


@dataclass(frozen=True)
class Measure:
    id: MeasureId
    title: str
    ingredients: frozenset[str]
    drug_exclusions: Mapping[str, ExclusionReason]
    excludes_hospice: bool = True
    excludes_esrd: bool = True
    threshold: Fraction = Fraction(4, 5)


_US, _X, _VD = Evidence.US_CORE, Evidence.CROSS_CHECKED, Evidence.VSAC_DIABETES

DIABETES: tuple[Ingredient, ...] = (
    Ingredient("6809", "metformin", "biguanide", _US),
    Ingredient("4821", "glipizide", "sulfonylurea", _US),
    Ingredient("4815", "glyburide", "sulfonylurea", _US),
    Ingredient("25789", "glimepiride", "sulfonylurea", _US),
    Ingredient("2404", "chlorpropamide", "sulfonylurea", _VD),
    Ingredient("10633", "tolazamide", "sulfonylurea", _VD),
    Ingredient("10635", "tolbutamide", "sulfonylurea", _VD),
    Ingredient("33738", "pioglitazone", "thiazolidinedione", _US),
    Ingredient("84108", "rosiglitazone", "thiazolidinedione", _US),
    Ingredient("593411", "sitagliptin", "dpp-4 inhibitor", _US),
    Ingredient("857974", "saxagliptin", "dpp-4 inhibitor", _US),
    Ingredient("1100699", "linagliptin", "dpp-4 inhibitor", _VD),
    Ingredient("1368001", "alogliptin", "dpp-4 inhibitor", _VD),
    Ingredient("1373458", "canagliflozin", "sglt2 inhibitor", _VD),
    Ingredient("1488564", "dapagliflozin", "sglt2 inhibitor", _VD),
    Ingredient("1545653", "empagliflozin", "sglt2 inhibitor", _VD),
    Ingredient("1992672", "ertugliflozin", "sglt2 inhibitor", _VD),
    Ingredient("2627044", "bexagliflozin", "sglt2 inhibitor", _X),
    Ingredient("274332", "nateglinide", "meglitinide", _VD),
    Ingredient("73044", "repaglinide", "meglitinide", _VD),
    Ingredient("60548", "exenatide", "glp-1 receptor agonist", _US),
    Ingredient("475968", "liraglutide", "glp-1 receptor agonist", _US),
    Ingredient("1551291", "dulaglutide", "glp-1 receptor agonist", _VD),
    Ingredient("1991302", "semaglutide", "glp-1 receptor agonist", _VD),
    Ingredient("1440051", "lixisenatide", "glp-1 receptor agonist", _VD),
    Ingredient("1534763", "albiglutide", "glp-1 receptor agonist", _VD),
    Ingredient("2601723", "tirzepatide", "gip/glp-1 receptor agonist", _X),
)

INSULINS: tuple[Ingredient, ...] = (
    Ingredient("274783", "insulin glargine", "insulin", _US),
    Ingredient("86009", "insulin lispro", "insulin", _VD),
    Ingredient("51428", "insulin aspart", "insulin", _X),
    Ingredient("139825", "insulin detemir", "insulin", _VD),
    Ingredient("1670007", "insulin degludec", "insulin", _VD),
    Ingredient("400008", "insulin glulisine", "insulin", _VD),
    Ingredient("253182", "insulin, regular, human", "insulin", _VD),
    Ingredient("5856", "insulin", "insulin", _X),
)

_RAS = Evidence.VSAC_RAS

RAS_ANTAGONISTS: tuple[Ingredient, ...] = (
    Ingredient("18867", "benazepril", "ace inhibitor", _RAS),
    Ingredient("1998", "captopril", "ace inhibitor", _RAS),
    Ingredient("3827", "enalapril", "ace inhibitor", _RAS),
    Ingredient("50166", "fosinopril", "ace inhibitor", _RAS),
    Ingredient("29046", "lisinopril", "ace inhibitor", _RAS),
    Ingredient("30131", "moexipril", "ace inhibitor", _RAS),
    Ingredient("54552", "perindopril", "ace inhibitor", _RAS),
    Ingredient("35208", "quinapril", "ace inhibitor", _RAS),
    Ingredient("35296", "ramipril", "ace inhibitor", _RAS),
    Ingredient("38454", "trandolapril", "ace inhibitor", _RAS),
    Ingredient("1091643", "azilsartan", "angiotensin ii receptor blocker", _RAS),
    Ingredient("214354", "candesartan", "angiotensin ii receptor blocker", _RAS),
    Ingredient("83515", "eprosartan", "angiotensin ii receptor blocker", _RAS),
    Ingredient("83818", "irbesartan", "angiotensin ii receptor blocker", _RAS),
    Ingredient("52175", "losartan", "angiotensin ii receptor blocker", _RAS),
    Ingredient("321064", "olmesartan", "angiotensin ii receptor blocker", _RAS),
    Ingredient("73494", "telmisartan", "angiotensin ii receptor blocker", _RAS),
    Ingredient("69749", "valsartan", "angiotensin ii receptor blocker", _RAS),
    Ingredient("325646", "aliskiren", "direct renin inhibitor", _X),
)

SACUBITRIL = Ingredient("1656328", "sacubitril", "neprilysin inhibitor", _RAS)

_STA = Evidence.VSAC_STATIN

STATINS: tuple[Ingredient, ...] = (
    Ingredient("83367", "atorvastatin", "statin", _STA),
    Ingredient("41127", "fluvastatin", "statin", _STA),
    Ingredient("6472", "lovastatin", "statin", _STA),
    Ingredient("861634", "pitavastatin", "statin", _STA),
    Ingredient("42463", "pravastatin", "statin", _STA),
    Ingredient("301542", "rosuvastatin", "statin", _STA),
    Ingredient("36567", "simvastatin", "statin", _STA),
)

ALL_INGREDIENTS: Mapping[str, Ingredient] = MappingProxyType(
    {i.rxcui: i for i in (*DIABETES, *INSULINS, *RAS_ANTAGONISTS, SACUBITRIL, *STATINS)}
)


def _rxcuis(ingredients: tuple[Ingredient, ...]) -> frozenset[str]:
    return frozenset(i.rxcui for i in ingredients)


MEASURES: Mapping[MeasureId, Measure] = MappingProxyType(
    {
        MeasureId.PDC_DR: Measure(
            MeasureId.PDC_DR,
            "Proportion of Days Covered: Diabetes All Class",
            _rxcuis(DIABETES),
            MappingProxyType(dict.fromkeys(_rxcuis(INSULINS), ExclusionReason.INSULIN)),
        ),
        MeasureId.PDC_RASA: Measure(
            MeasureId.PDC_RASA,
            "Proportion of Days Covered: Renin Angiotensin System Antagonists",
            _rxcuis(RAS_ANTAGONISTS),
            MappingProxyType({SACUBITRIL.rxcui: ExclusionReason.SACUBITRIL_VALSARTAN}),
        ),
        MeasureId.PDC_STA: Measure(
            MeasureId.PDC_STA,
            "Proportion of Days Covered: Statins",
            _rxcuis(STATINS),
            MappingProxyType({}),
        ),
    }
)


def measure(measure_id: MeasureId | str) -> Measure:
    """The measure definition for ``measure_id`` ("PDC-DR", "PDC-RASA" or "PDC-STA")."""
    return MEASURES[MeasureId(measure_id)]


def measures_for_ingredient(rxcui: str) -> tuple[MeasureId, ...]:
    """Measures whose class or exclusion list names this ingredient, so a fill can be routed."""
    return tuple(
        m.id for m in MEASURES.values() if rxcui in m.ingredients or rxcui in m.drug_exclusions
    )


def ingredient_rxcuis_by_name() -> Mapping[str, str]:
    """Lower-case ingredient name to RXCUI, for reading ingredients out of display text."""
    return MappingProxyType({i.name: i.rxcui for i in ALL_INGREDIENTS.values()})
