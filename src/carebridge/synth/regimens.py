"""Medication regimens: the RxNorm clinical-drug table and who is prescribed what.

Every RXCUI is an RxNorm SCD checked against two public sources (see docs/synthetic-data.md):
Synthea's MEPS-derived medication modules (which carry RxNorm codes and SCD names) and openFDA NDC
directory records whose `openfda.rxcui` lists that single RXCUI. An NDC is given only where such
a single-RXCUI openFDA record was found (10-digit package NDC converted to the 11-digit 5-4-2
form by zero-padding the short segment); otherwise `ndc11` is empty.

Regimen choices follow common US first-line practice (ACC/AHA 2017 hypertension guideline:
ACE inhibitor, ARB, calcium-channel blocker or thiazide first, a second class when needed; ADA
Standards of Care: metformin first; ACC/AHA 2018 cholesterol guideline: statins; guideline
heart-failure therapy: beta-blocker, loop diuretic, ACE inhibitor/ARB, mineralocorticoid
antagonist). Ingredient shares among ACE/ARB and statin users follow MEPS as tabulated in
Synthea's modules (lisinopril 43% vs losartan 25%; atorvastatin 50%, simvastatin 22%,
rosuvastatin 11%); the remaining weights are assumptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt
import pandas as pd

from carebridge.synth.conditions import Condition, ConditionSet
from carebridge.synth.identifiers import make_uuids


class DrugClass(IntEnum):
    ACE_INHIBITOR = 0
    ARB = 1
    CALCIUM_CHANNEL_BLOCKER = 2
    THIAZIDE = 3
    BETA_BLOCKER = 4
    LOOP_DIURETIC = 5
    MINERALOCORTICOID_ANTAGONIST = 6
    BIGUANIDE = 7
    SULFONYLUREA = 8
    STATIN = 9


@dataclass(frozen=True)
class Drug:
    rxcui: str
    name: str
    ndc11: str
    drug_class: DrugClass
    units_per_day: int
    sig: str


ONCE = "Take 1 tablet by mouth once daily"
TWICE = "Take 1 tablet by mouth twice daily"
DC = DrugClass
DRUGS: tuple[Drug, ...] = (
    Drug("314076", "lisinopril 10 MG Oral Tablet", "70518115204", DC.ACE_INHIBITOR, 1, ONCE),
    Drug("314077", "lisinopril 20 MG Oral Tablet", "", DC.ACE_INHIBITOR, 1, ONCE),
    Drug("979492", "losartan potassium 50 MG Oral Tablet", "", DC.ARB, 1, ONCE),
    Drug(
        "197361", "amlodipine 5 MG Oral Tablet", "51655029152", DC.CALCIUM_CHANNEL_BLOCKER, 1, ONCE
    ),
    Drug(
        "308135", "amlodipine 10 MG Oral Tablet", "68071252009", DC.CALCIUM_CHANNEL_BLOCKER, 1, ONCE
    ),
    Drug("310798", "hydrochlorothiazide 25 MG Oral Tablet", "68071481901", DC.THIAZIDE, 1, ONCE),
    Drug(
        "861007",
        "metformin hydrochloride 500 MG Oral Tablet",
        "68071390006",
        DC.BIGUANIDE,
        2,
        TWICE,
    ),
    Drug(
        "861004",
        "metformin hydrochloride 1000 MG Oral Tablet",
        "50090786800",
        DC.BIGUANIDE,
        2,
        TWICE,
    ),
    Drug("310490", "glipizide 5 MG Oral Tablet", "55289080693", DC.SULFONYLUREA, 1, ONCE),
    Drug("617310", "atorvastatin 20 MG Oral Tablet", "", DC.STATIN, 1, ONCE),
    Drug("617311", "atorvastatin 40 MG Oral Tablet", "", DC.STATIN, 1, ONCE),
    Drug("859747", "rosuvastatin calcium 10 MG Oral Tablet", "", DC.STATIN, 1, ONCE),
    Drug("312961", "simvastatin 20 MG Oral Tablet", "", DC.STATIN, 1, ONCE),
    Drug("200031", "carvedilol 6.25 MG Oral Tablet", "", DC.BETA_BLOCKER, 2, TWICE),
    Drug("200032", "carvedilol 12.5 MG Oral Tablet", "", DC.BETA_BLOCKER, 2, TWICE),
    Drug(
        "866436",
        "24 HR metoprolol succinate 50 MG Extended Release Oral Tablet",
        "",
        DC.BETA_BLOCKER,
        1,
        ONCE,
    ),
    Drug("313988", "furosemide 40 MG Oral Tablet", "", DC.LOOP_DIURETIC, 1, ONCE),
    Drug(
        "313096", "spironolactone 25 MG Oral Tablet", "", DC.MINERALOCORTICOID_ANTAGONIST, 1, ONCE
    ),
)
DRUG_INDEX = {drug.rxcui: i for i, drug in enumerate(DRUGS)}

Choice = tuple[tuple[str, ...], tuple[float, ...]]  # (RXCUIs, weights)
HTN_CLASS_PRODUCTS: dict[DrugClass, Choice] = {
    DC.ACE_INHIBITOR: (("314076", "314077"), (0.6, 0.4)),
    DC.ARB: (("979492",), (1.0,)),
    DC.CALCIUM_CHANNEL_BLOCKER: (("197361", "308135"), (0.65, 0.35)),
    DC.THIAZIDE: (("310798",), (1.0,)),
}
HTN_FIRST_CLASS_WEIGHTS = (0.36, 0.22, 0.26, 0.16)  # ACE, ARB, CCB, thiazide
HTN_SECOND_CLASS: dict[DrugClass, tuple[tuple[DrugClass, ...], tuple[float, ...]]] = {
    DC.ACE_INHIBITOR: ((DC.CALCIUM_CHANNEL_BLOCKER, DC.THIAZIDE), (0.6, 0.4)),
    DC.ARB: ((DC.CALCIUM_CHANNEL_BLOCKER, DC.THIAZIDE), (0.6, 0.4)),
    DC.CALCIUM_CHANNEL_BLOCKER: ((DC.ACE_INHIBITOR, DC.ARB, DC.THIAZIDE), (0.45, 0.3, 0.25)),
    DC.THIAZIDE: ((DC.ACE_INHIBITOR, DC.ARB, DC.CALCIUM_CHANNEL_BLOCKER), (0.45, 0.25, 0.3)),
}
METFORMIN: Choice = (("861007", "861004"), (0.55, 0.45))
STATINS: Choice = (("617310", "617311", "859747", "312961"), (0.30, 0.30, 0.15, 0.25))
BETA_BLOCKERS: Choice = (("200031", "200032", "866436"), (0.3, 0.3, 0.4))
HF_RAAS: Choice = (("314076", "979492"), (0.5, 0.5))


@dataclass(frozen=True)
class RegimenParameters:
    second_antihypertensive_share: float = 0.35
    sulfonylurea_add_on_share: float = 0.25
    loop_diuretic_share: float = 0.85
    mra_share: float = 0.30
    ninety_day_share: float = 0.40  # 90-day supplies (mail/retail 90); the rest are 30-day
    refills_30_day: int = 11  # a year of fills per prescription
    refills_90_day: int = 3
    other_prescriber_share: float = 0.15  # lines written by someone other than the patient's PCP


def _pick(rng: np.random.Generator, choice: Choice, size: int) -> npt.NDArray[np.int64]:
    rxcuis, weights = choice
    picked = rng.choice(len(rxcuis), size=size, p=np.array(weights))
    return np.array([DRUG_INDEX[r] for r in rxcuis], dtype=np.int64)[picked]


def _htn_lines(
    rng: np.random.Generator, patients: npt.NDArray[np.int64], params: RegimenParameters
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    first_class = rng.choice(len(HTN_CLASS_PRODUCTS), size=len(patients), p=HTN_FIRST_CLASS_WEIGHTS)
    first = np.empty(len(patients), dtype=np.int64)
    second_class = np.full(len(patients), -1, dtype=np.int64)
    add_second = rng.random(len(patients)) < params.second_antihypertensive_share
    for cls, products in HTN_CLASS_PRODUCTS.items():
        mask = first_class == cls
        first[mask] = _pick(rng, products, int(mask.sum()))
        options, weights = HTN_SECOND_CLASS[cls]
        chosen = rng.choice(len(options), size=int(mask.sum()), p=np.array(weights))
        second_class[mask] = np.array([int(o) for o in options])[chosen]
    second = np.full(len(patients), -1, dtype=np.int64)
    for cls, products in HTN_CLASS_PRODUCTS.items():
        mask = add_second & (second_class == cls)
        second[mask] = _pick(rng, products, int(mask.sum()))
    keep = second >= 0
    return np.concatenate([patients, patients[keep]]), np.concatenate([first, second[keep]])


def _optional(
    rng: np.random.Generator, patients: npt.NDArray[np.int64], share: float, choice: Choice
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    chosen = patients[rng.random(len(patients)) < share]
    return chosen, _pick(rng, choice, len(chosen))


def _hf_lines(
    rng: np.random.Generator,
    patients: npt.NDArray[np.int64],
    has_raas: npt.NDArray[np.bool_],
    params: RegimenParameters,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    parts = [
        (patients, _pick(rng, BETA_BLOCKERS, len(patients))),
        _optional(rng, patients, params.loop_diuretic_share, (("313988",), (1.0,))),
        _optional(rng, patients, params.mra_share, (("313096",), (1.0,))),
        _optional(rng, patients[~has_raas[patients]], 1.0, HF_RAAS),
    ]
    return np.concatenate([p for p, _ in parts]), np.concatenate([d for _, d in parts])


def prescribe(
    rng: np.random.Generator,
    patients: pd.DataFrame,
    conditions: ConditionSet,
    prescriber_count: int,
    params: RegimenParameters,
) -> pd.DataFrame:
    """One row per prescription line (patient x drug), with timing of the current prescription."""
    flags = conditions.flags
    by_condition = {c: np.nonzero(flags[:, c])[0].astype(np.int64) for c in Condition}
    htn_p, htn_d = _htn_lines(rng, by_condition[Condition.HYPERTENSION], params)
    raas = np.isin(htn_d, [i for i, d in enumerate(DRUGS) if d.drug_class <= DC.ARB])
    has_raas = np.zeros(len(flags), dtype=bool)
    has_raas[htn_p[raas]] = True
    dm = by_condition[Condition.DIABETES]
    su_p, su_d = _optional(rng, dm, params.sulfonylurea_add_on_share, (("310490",), (1.0,)))
    hld = by_condition[Condition.HYPERLIPIDAEMIA]
    hf_p, hf_d = _hf_lines(rng, by_condition[Condition.HEART_FAILURE], has_raas, params)
    groups = [
        (Condition.HYPERTENSION, htn_p, htn_d),
        (Condition.DIABETES, dm, _pick(rng, METFORMIN, len(dm))),
        (Condition.DIABETES, su_p, su_d),
        (Condition.HYPERLIPIDAEMIA, hld, _pick(rng, STATINS, len(hld))),
        (Condition.HEART_FAILURE, hf_p, hf_d),
    ]
    lines = pd.DataFrame(
        {
            "patient_index": np.concatenate([g[1] for g in groups]),
            "condition": np.concatenate([np.full(len(g[1]), int(g[0]), np.int8) for g in groups]),
            "drug": np.concatenate([g[2] for g in groups]),
        }
    )
    lines = lines.sort_values(["patient_index", "condition", "drug"], kind="mergesort")
    lines = lines.reset_index(drop=True)
    _add_timing(rng, lines, conditions.table, params)
    _add_prescriber(rng, lines, patients["pcp"].to_numpy(), prescriber_count, params)
    lines["line_uuid"] = make_uuids(rng, len(lines))
    return lines


def _add_timing(
    rng: np.random.Generator,
    lines: pd.DataFrame,
    diagnoses: pd.DataFrame,
    params: RegimenParameters,
) -> None:
    """Days supply, refills and when the current prescription was written and first filled."""
    count = len(lines)
    onset = lines.merge(diagnoses, on=["patient_index", "condition"], how="left")["onset_offset"]
    onset_days = onset.to_numpy(dtype=np.int64)
    days = np.where(rng.random(count) < params.ninety_day_share, 90, 30)
    refills = np.where(days == 90, params.refills_90_day, params.refills_30_day)
    established = onset_days < 0
    already_filled = rng.integers(0, refills + 1)
    first_fill = np.where(
        established, rng.integers(0, days), onset_days + rng.integers(0, 4, count)
    )
    written = np.where(
        established, first_fill - already_filled * days - rng.integers(0, 8, count), onset_days
    )
    lines["days_supply"] = days
    lines["refills_authorized"] = refills
    lines["initial_refill"] = np.where(established, already_filled, 0)
    lines["first_offset"] = first_fill
    lines["written_offset"] = written


def _add_prescriber(
    rng: np.random.Generator,
    lines: pd.DataFrame,
    pcp: npt.NDArray[np.int64],
    prescriber_count: int,
    params: RegimenParameters,
) -> None:
    other = rng.integers(0, prescriber_count, size=len(lines))
    use_other = rng.random(len(lines)) < params.other_prescriber_share
    lines["prescriber"] = np.where(use_other, other, pcp[lines["patient_index"].to_numpy()])


def units_per_day(drug_indices: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    return np.array([d.units_per_day for d in DRUGS], dtype=np.int64)[drug_indices]
