"""Utilisation and outcomes: office visits, emergency visits, admissions, 30-day readmissions and
post-acute skilled-nursing stays.

Event counts are Poisson with a per-patient yearly rate = age-band base rate x a relative risk per
chronic condition x explicit effect sizes for non-adherence (PDC < 80%) and poor control. Defaults
(sources in docs/synthetic-data.md):

- ER visits: NHAMCS 2019-2021 gives 41-47 visits per 100 adults under 75 and 66 at 75+ per year
  (NCHS Data Brief 478; MMWR QuickStats 71(42)); base rates here are for people without the four
  conditions and are lower, the condition multipliers bring the mix back near those figures.
- Admissions: HCUP 2012 reports 116 stays per 1,000 population (all ages, including maternal)
  and a mean stay of 4.5 days (Statistical Brief 180); base rates rise with age (assumption).
- Non-adherence: relative risk 1.5 for ER visits and 1.6 for admissions (Ho 2006: adjusted OR 1.58
  for all-cause hospitalisation at PDC < 80%; a 268,792-person cohort found OR 0.64 for ER visits
  and 0.56 for medical admissions in the most vs least adherent, i.e. about 1.6-1.8 the other way).
- Poor control: relative risk 1.3 for both (assumption).
- 30-day readmission: base 12%, x1.5 with heart failure, x1.6 when non-adherent (Jencks 2009:
  19.6% of Medicare discharges readmitted within 30 days; Rosen 2017: 20.0% vs 9.3% readmitted
  with low vs high adherence). One round: readmissions are not themselves followed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt
import pandas as pd

from carebridge.synth.conditions import CODINGS, Condition
from carebridge.synth.window import Window


class EncounterKind(IntEnum):
    OFFICE = 0
    EMERGENCY = 1
    INPATIENT = 2
    SNF = 3


@dataclass(frozen=True)
class OutcomeParameters:
    office_visits_base: float = 1.0  # visits/year without a chronic condition
    office_visits_per_condition: float = 1.0
    er_base_by_band: tuple[float, ...] = (0.24, 0.21, 0.22, 0.33)  # visits/person-year
    admission_base_by_band: tuple[float, ...] = (0.02, 0.035, 0.06, 0.11)
    er_condition_rr: tuple[float, ...] = (1.15, 1.3, 1.0, 2.0)  # HTN, T2D, lipids, HF
    admission_condition_rr: tuple[float, ...] = (1.1, 1.4, 1.0, 2.5)
    nonadherent_er_rr: float = 1.5
    nonadherent_admission_rr: float = 1.6
    poor_control_er_rr: float = 1.3
    poor_control_admission_rr: float = 1.3
    admitted_via_er_share: float = 0.7
    readmission_base: float = 0.12
    readmission_heart_failure_rr: float = 1.5
    readmission_nonadherent_rr: float = 1.6
    mean_length_of_stay_days: float = 4.5
    snf_discharge_share: tuple[float, float] = (0.03, 0.15)  # under 65, 65 and over
    home_health_share: float = 0.10
    snf_stay_days: tuple[int, int] = (10, 31)


Choice = tuple[tuple[str, ...], tuple[float, ...]]
# Reasons: index 0 is "no chronic condition involved", then one per Condition.
REASON_WEIGHTS = (1.0, 1.0, 1.0, 0.5, 3.0)
ER_REASONS: tuple[Choice, ...] = (
    (("R10.9", "J06.9", "N39.0", "R07.9", "R51.9"), (0.25, 0.25, 0.2, 0.15, 0.15)),
    (("I16.9", "R51.9", "R07.9", "R55"), (0.3, 0.25, 0.3, 0.15)),
    (("E11.65", "E16.2", "N39.0", "R55"), (0.4, 0.2, 0.2, 0.2)),
    (("R07.9",), (1.0,)),
    (("I50.9", "R06.02", "R07.9", "J18.9"), (0.4, 0.25, 0.2, 0.15)),
)
ADMISSION_REASONS: tuple[Choice, ...] = (
    (("J18.9", "A41.9", "N39.0", "R55"), (0.35, 0.25, 0.2, 0.2)),
    (("I21.4", "I63.9", "I16.9"), (0.4, 0.3, 0.3)),
    (("E11.65", "A41.9", "N17.9"), (0.4, 0.3, 0.3)),
    (("I21.4", "I63.9"), (0.6, 0.4)),
    (("I50.9", "J18.9", "N17.9"), (0.6, 0.2, 0.2)),
)
SECONDARY_ORDER = (
    Condition.HEART_FAILURE,
    Condition.DIABETES,
    Condition.HYPERTENSION,
    Condition.HYPERLIPIDAEMIA,
)


@dataclass(frozen=True)
class PatientRisk:
    """Inputs the outcome model reads for every patient."""

    age: npt.NDArray[np.int64]
    age_band: npt.NDArray[np.int8]
    flags: npt.NDArray[np.bool_]
    nonadherent: npt.NDArray[np.bool_]
    poor_control: npt.NDArray[np.bool_]
    poor_a1c: npt.NDArray[np.bool_]


def _rate(
    risk: PatientRisk,
    base: tuple[float, ...],
    condition_rr: tuple[float, ...],
    nonadherent_rr: float,
    poor_rr: float,
) -> npt.NDArray[np.float64]:
    rate = np.array(base)[risk.age_band]
    rate = rate * np.prod(np.where(risk.flags, np.array(condition_rr), 1.0), axis=1)
    rate = rate * np.where(risk.nonadherent, nonadherent_rr, 1.0)
    result: npt.NDArray[np.float64] = rate * np.where(risk.poor_control, poor_rr, 1.0)
    return result


def _repeat(counts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    return np.repeat(np.arange(len(counts)), counts)


def chronic_codes(risk: PatientRisk) -> npt.NDArray[np.object_]:
    """ICD-10-CM code per patient and condition (columns in SECONDARY_ORDER), '' when absent."""
    columns = []
    for condition in SECONDARY_ORDER:
        coding = CODINGS[condition]
        code = np.where(risk.poor_a1c, coding.icd10_poorly_controlled, coding.icd10)
        columns.append(np.where(risk.flags[:, condition], code, ""))
    return np.stack(columns, axis=1).astype(object)


def _reasons(
    rng: np.random.Generator,
    flags: npt.NDArray[np.bool_],
    general_weight: float,
) -> npt.NDArray[np.int64]:
    """Weighted choice (Efraimidis-Spirakis keys) among 'general' and the patient's conditions."""
    weights = np.array((general_weight, *REASON_WEIGHTS[1:]))
    keys = rng.random((len(flags), len(weights))) ** (1.0 / np.maximum(weights, 1e-9))
    present = np.hstack([np.full((len(flags), 1), general_weight > 0), flags])
    chosen: npt.NDArray[np.int64] = np.argmax(np.where(present, keys, -1.0), axis=1)
    return chosen


def _codes(
    rng: np.random.Generator, reasons: npt.NDArray[np.int64], table: tuple[Choice, ...]
) -> npt.NDArray[np.object_]:
    out = np.empty(len(reasons), dtype=object)
    for reason, (codes, weights) in enumerate(table):
        mask = reasons == reason
        out[mask] = np.array(codes, dtype=object)[
            rng.choice(len(codes), size=int(mask.sum()), p=np.array(weights))
        ]
    return out


def _office(
    rng: np.random.Generator, risk: PatientRisk, window: Window, params: OutcomeParameters
) -> pd.DataFrame:
    n_conditions = risk.flags.sum(axis=1)
    expected = params.office_visits_base + params.office_visits_per_condition * n_conditions
    counts = rng.poisson(expected * window.years)
    counts = np.where(n_conditions > 0, np.maximum(counts, 1), counts)
    patient = _repeat(counts)
    reasons = _reasons(rng, risk.flags[patient], general_weight=0.0)
    reasons = np.where(n_conditions[patient] > 0, reasons, 0)
    chronic = chronic_codes(risk)
    order = np.array([0, *[SECONDARY_ORDER.index(Condition(c)) for c in range(len(Condition))]])
    primary = np.where(reasons > 0, chronic[patient, order[reasons]], "Z00.00")
    return _frame(
        patient, EncounterKind.OFFICE, rng.integers(0, window.days, len(patient)), primary
    )


def _frame(
    patient: npt.NDArray[np.int64],
    kind: EncounterKind,
    start: npt.NDArray[np.int64],
    primary: npt.NDArray[np.object_],
    end: npt.NDArray[np.int64] | None = None,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_index": patient,
            "kind": np.full(len(patient), int(kind), np.int8),
            "start_offset": start,
            "end_offset": start if end is None else end,
            "primary_dx": primary.astype(object),
            "admitted": False,
            "readmission": False,
            "discharge_status": "",
        }
    )


def _stays(
    rng: np.random.Generator,
    patient: npt.NDArray[np.int64],
    admit: npt.NDArray[np.int64],
    risk: PatientRisk,
    params: OutcomeParameters,
) -> pd.DataFrame:
    """Inpatient stays starting on `admit`, with length of stay and discharge status."""
    stay = 1 + rng.poisson(params.mean_length_of_stay_days - 1.0, len(patient))
    primary = _codes(rng, _reasons(rng, risk.flags[patient], 1.0), ADMISSION_REASONS)
    frame = _frame(patient, EncounterKind.INPATIENT, admit, primary, admit + stay)
    senior = risk.age[patient] >= 65
    under_65, over_65 = params.snf_discharge_share
    to_snf = rng.random(len(patient)) < np.where(senior, over_65, under_65)
    home_health = ~to_snf & (rng.random(len(patient)) < params.home_health_share)
    frame["discharge_status"] = np.where(to_snf, "03", np.where(home_health, "06", "01"))
    return frame


def _admissions(
    rng: np.random.Generator, risk: PatientRisk, window: Window, params: OutcomeParameters
) -> pd.DataFrame:
    rate = _rate(
        risk,
        params.admission_base_by_band,
        params.admission_condition_rr,
        params.nonadherent_admission_rr,
        params.poor_control_admission_rr,
    )
    patient = _repeat(rng.poisson(rate * window.years))
    index = _stays(rng, patient, rng.integers(0, window.days, len(patient)), risk, params)
    p_readmit = params.readmission_base * np.where(
        risk.flags[patient, Condition.HEART_FAILURE], params.readmission_heart_failure_rr, 1.0
    )
    p_readmit = p_readmit * np.where(
        risk.nonadherent[patient], params.readmission_nonadherent_rr, 1.0
    )
    again_day = index["end_offset"].to_numpy() + rng.integers(1, 31, len(patient))
    again = (rng.random(len(patient)) < p_readmit) & (again_day < window.days)
    readmits = _stays(rng, patient[again], again_day[again], risk, params)
    readmits["readmission"] = True
    return pd.concat([index, readmits], ignore_index=True)


def _emergency(
    rng: np.random.Generator,
    risk: PatientRisk,
    admissions: pd.DataFrame,
    window: Window,
    params: OutcomeParameters,
) -> pd.DataFrame:
    rate = _rate(
        risk,
        params.er_base_by_band,
        params.er_condition_rr,
        params.nonadherent_er_rr,
        params.poor_control_er_rr,
    )
    patient = _repeat(rng.poisson(rate * window.years))
    primary = _codes(rng, _reasons(rng, risk.flags[patient], 1.0), ER_REASONS)
    treat_and_release = _frame(
        patient, EncounterKind.EMERGENCY, rng.integers(0, window.days, len(patient)), primary
    )
    via_er = admissions[rng.random(len(admissions)) < params.admitted_via_er_share]
    admitted = _frame(
        via_er["patient_index"].to_numpy(),
        EncounterKind.EMERGENCY,
        via_er["start_offset"].to_numpy(),
        via_er["primary_dx"].to_numpy(),
    )
    admitted["admitted"] = True
    return pd.concat([treat_and_release, admitted], ignore_index=True)


def _snf(
    rng: np.random.Generator, admissions: pd.DataFrame, params: OutcomeParameters
) -> pd.DataFrame:
    sent = admissions[admissions["discharge_status"] == "03"]
    start = sent["end_offset"].to_numpy()
    stay = rng.integers(*params.snf_stay_days, size=len(sent))
    frame = _frame(
        sent["patient_index"].to_numpy(),
        EncounterKind.SNF,
        start,
        sent["primary_dx"].to_numpy(),
        start + stay,
    )
    frame["discharge_status"] = "01"
    return frame


def simulate_encounters(
    rng: np.random.Generator, risk: PatientRisk, window: Window, params: OutcomeParameters
) -> pd.DataFrame:
    """All encounters, sorted by start day, with primary and up to three secondary diagnoses."""
    office = _office(rng, risk, window, params)
    admissions = _admissions(rng, risk, window, params)
    emergency = _emergency(rng, risk, admissions, window, params)
    snf = _snf(rng, admissions, params)
    encounters = pd.concat([office, emergency, admissions, snf], ignore_index=True)
    encounters = encounters.sort_values(
        ["start_offset", "patient_index", "kind"], kind="mergesort"
    ).reset_index(drop=True)
    _add_secondary(encounters, chronic_codes(risk))
    return encounters


def _add_secondary(encounters: pd.DataFrame, chronic: npt.NDArray[np.object_]) -> None:
    codes = chronic[encounters["patient_index"].to_numpy()].copy()
    codes[codes == encounters["primary_dx"].to_numpy()[:, None]] = ""
    order = np.argsort(codes == "", axis=1, kind="stable")
    codes = np.take_along_axis(codes, order, axis=1)
    for k in range(3):
        encounters[f"secondary_{k + 1}"] = codes[:, k]
