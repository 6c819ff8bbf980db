"""Chronic conditions: age-banded prevalence and co-morbidity of hypertension, type 2 diabetes,
(treated) hyperlipidaemia and heart failure.

Prevalence by age band (18-39, 40-59, 60-79, 80+), sources in docs/synthetic-data.md:

- Hypertension: NHANES 2017-2018, NCHS Data Brief 364 (Ostchega 2020): 22.4%, 54.5%, 74.5% (60+).
- Type 2 diabetes: NHANES 2017-March 2020 total diabetes by age (NHSR 158, Table 8: 4.4%, 16.4%,
  30.0% for 20-39, 40-59, 60+) times the diagnosed share (10.1 of 13.2 points, National Diabetes
  Statistics Report, Appendix Table 1) times 0.95 for type 2 (CDC: 90-95% of diabetes is type 2).
- Hyperlipidaemia on treatment: NCHS Data Brief 177 (Gu 2014): cholesterol-lowering medication use
  17% at 40-59, 48% at 75+; 60-79 set to 40% (between the two) and 18-39 to 2% (assumption).
- Heart failure: AHA Heart Disease and Stroke Statistics 2019 (NHANES 2013-2016): about 1.5% at
  40-59 and 12.4% at 80+; 60-79 set to 5% and 18-39 to 0.3% (interpolation, assumption).

Co-morbidity comes from a Gaussian copula: every condition's liability is `a*z + sqrt(1-a^2)*e`
with one shared cardiometabolic factor `z`, and a patient has the condition when the liability
exceeds the band's threshold. Marginal prevalence stays exactly the table value while conditions
cluster (heart failure loads most on the shared factor, as most heart-failure patients are
hypertensive). A share of diagnoses is new during the first half-year of the window; the rest
are established, with onset up to 15 years earlier.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from statistics import NormalDist

import numpy as np
import numpy.typing as npt
import pandas as pd

from carebridge.synth.identifiers import make_uuids


class Condition(IntEnum):
    HYPERTENSION = 0
    DIABETES = 1
    HYPERLIPIDAEMIA = 2
    HEART_FAILURE = 3


@dataclass(frozen=True)
class ConditionCoding:
    label: str
    snomed: str
    icd10: str
    icd10_poorly_controlled: str


CODINGS: dict[Condition, ConditionCoding] = {
    Condition.HYPERTENSION: ConditionCoding("Hypertension", "38341003", "I10", "I10"),
    Condition.DIABETES: ConditionCoding("Type 2 diabetes mellitus", "44054006", "E11.9", "E11.65"),
    Condition.HYPERLIPIDAEMIA: ConditionCoding("Hyperlipidemia", "55822004", "E78.5", "E78.5"),
    Condition.HEART_FAILURE: ConditionCoding("Heart failure", "84114007", "I50.9", "I50.9"),
}


@dataclass(frozen=True)
class ConditionParameters:
    prevalence: tuple[tuple[float, float, float, float], ...] = (
        (0.224, 0.545, 0.745, 0.745),  # hypertension
        (0.032, 0.119, 0.219, 0.219),  # type 2 diabetes (diagnosed)
        (0.020, 0.170, 0.400, 0.480),  # hyperlipidaemia on treatment
        (0.003, 0.015, 0.050, 0.124),  # heart failure
    )
    loadings: tuple[float, float, float, float] = (0.55, 0.55, 0.50, 0.70)
    new_diagnosis_share: float = 0.08
    new_diagnosis_window_days: int = 180
    max_years_since_onset: int = 15


@dataclass(frozen=True)
class ConditionSet:
    """`flags[i, c]` is True when patient i has Condition c; `table` has one row per diagnosis."""

    flags: npt.NDArray[np.bool_]
    table: pd.DataFrame


def thresholds(params: ConditionParameters) -> npt.NDArray[np.float64]:
    """Liability thresholds, shape (conditions, age bands)."""
    normal = NormalDist()
    return np.array([[normal.inv_cdf(1.0 - p) for p in row] for row in params.prevalence])


def assign_conditions(
    rng: np.random.Generator, patients: pd.DataFrame, params: ConditionParameters
) -> ConditionSet:
    band = patients["age_band"].to_numpy()
    count = len(band)
    shared = rng.standard_normal(count)
    loadings = np.array(params.loadings)
    own = rng.standard_normal((count, len(Condition)))
    liability = shared[:, None] * loadings + own * np.sqrt(1.0 - loadings**2)
    flags = liability > thresholds(params)[:, band].T
    table = _diagnoses(rng, flags, patients["age"].to_numpy(), params)
    return ConditionSet(flags=flags, table=table)


def _diagnoses(
    rng: np.random.Generator,
    flags: npt.NDArray[np.bool_],
    age: npt.NDArray[np.int64],
    params: ConditionParameters,
) -> pd.DataFrame:
    patient, condition = np.nonzero(flags)
    count = len(patient)
    adult_days = np.maximum((age[patient] - 18) * 365, 31)
    max_days = np.minimum(adult_days, params.max_years_since_onset * 365)
    established = -rng.integers(30, max_days + 1)
    new = rng.integers(0, params.new_diagnosis_window_days, size=count)
    is_new = rng.random(count) < params.new_diagnosis_share
    return pd.DataFrame(
        {
            "patient_index": patient,
            "condition": condition.astype(np.int8),
            "onset_offset": np.where(is_new, new, established),
            "condition_uuid": make_uuids(rng, count),
        }
    )
