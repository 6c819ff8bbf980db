"""Clinical control (blood pressure, HbA1c, LDL) and the provider-recorded observations.

Each patient has an untreated level; treatment lowers it in proportion to how much of the drug
the patient actually has (the PDC of that condition's prescriptions), so non-adherence shows up
as poor control. Effect sizes at full adherence:

- Antihypertensives: 9.1 mmHg systolic / 5.5 mmHg diastolic per drug at standard dose, additive
  across classes (Law et al., BMJ 2003;326:1427, 354 randomised trials).
- Metformin: 1.0 HbA1c point; a second oral class 0.8 more (ADA/EASD consensus and ADA
  Standards of Care: oral agents lower HbA1c by about 0.7-1.0% each; the exact values are ours).
- Statins: LDL-C down 40%, mid-range of "moderate intensity" (30-49%) in the 2018 AHA/ACC
  cholesterol guideline.

Untreated levels and spreads are assumptions chosen so that well-treated adherent patients reach
usual targets. Poor control: systolic >= 140 mmHg (hypertension), HbA1c > 9% (the HEDIS
"poor control" cut-off), LDL >= 130 mg/dL (hyperlipidaemia).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from carebridge.synth.conditions import Condition, ConditionSet
from carebridge.synth.identifiers import make_uuids
from carebridge.synth.regimens import DRUGS, DrugClass


@dataclass(frozen=True)
class ControlParameters:
    sbp_untreated: tuple[float, float] = (145.0, 12.0)  # mean, sd for hypertensive patients
    dbp_untreated: tuple[float, float] = (90.0, 8.0)
    sbp_normal: tuple[float, float] = (121.0, 10.0)
    dbp_normal: tuple[float, float] = (76.0, 7.0)
    sbp_drop_per_drug: float = 9.1
    dbp_drop_per_drug: float = 5.5
    a1c_untreated: tuple[float, float] = (8.9, 1.2)
    a1c_normal: tuple[float, float] = (5.4, 0.3)
    a1c_drop_metformin: float = 1.0
    a1c_drop_second_agent: float = 0.8
    ldl_untreated: tuple[float, float] = (165.0, 30.0)
    ldl_normal: tuple[float, float] = (112.0, 28.0)
    ldl_statin_reduction: float = 0.40
    poor_sbp: float = 140.0
    poor_a1c: float = 9.0
    poor_ldl: float = 130.0
    bp_visit_noise: tuple[float, float] = (6.0, 4.0)  # visit-to-visit sd, systolic/diastolic
    max_bp_observations: int = 3
    max_a1c_observations: int = 2


ANTIHYPERTENSIVE = (
    DrugClass.ACE_INHIBITOR,
    DrugClass.ARB,
    DrugClass.CALCIUM_CHANNEL_BLOCKER,
    DrugClass.THIAZIDE,
)


def _condition_dose(
    lines: pd.DataFrame, line_pdc: npt.NDArray[np.float64], classes: tuple[DrugClass, ...], n: int
) -> npt.NDArray[np.float64]:
    """Per patient, the sum of PDCs of lines in `classes` (an adherence-weighted drug count)."""
    drug_class = np.array([int(d.drug_class) for d in DRUGS])[lines["drug"].to_numpy()]
    mask = np.isin(drug_class, [int(c) for c in classes])
    patient = lines["patient_index"].to_numpy()[mask]
    return np.bincount(patient, weights=line_pdc[mask], minlength=n).astype(np.float64)


def _draw(
    rng: np.random.Generator,
    has: npt.NDArray[np.bool_],
    sick: tuple[float, float],
    well: tuple[float, float],
) -> npt.NDArray[np.float64]:
    return np.where(has, rng.normal(*sick, len(has)), rng.normal(*well, len(has)))


@dataclass(frozen=True)
class _Treated:
    """Inputs shared by the three control measures."""

    flags: npt.NDArray[np.bool_]
    lines: pd.DataFrame
    line_pdc: npt.NDArray[np.float64]

    def dose(self, *classes: DrugClass) -> npt.NDArray[np.float64]:
        return _condition_dose(self.lines, self.line_pdc, classes, len(self.flags))


def _blood_pressure(
    rng: np.random.Generator, treated: _Treated, params: ControlParameters
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    htn = treated.flags[:, Condition.HYPERTENSION]
    dose = treated.dose(*ANTIHYPERTENSIVE)
    sbp = _draw(rng, htn, params.sbp_untreated, params.sbp_normal)
    dbp = _draw(rng, htn, params.dbp_untreated, params.dbp_normal)
    sbp = np.clip(sbp - params.sbp_drop_per_drug * dose, 90, 220)
    dbp = np.clip(np.minimum(dbp - params.dbp_drop_per_drug * dose, sbp - 25), 50, 130)
    return sbp, dbp


def _a1c(
    rng: np.random.Generator, treated: _Treated, params: ControlParameters
) -> npt.NDArray[np.float64]:
    dm = treated.flags[:, Condition.DIABETES]
    a1c = _draw(rng, dm, params.a1c_untreated, params.a1c_normal)
    a1c = a1c - params.a1c_drop_metformin * treated.dose(DrugClass.BIGUANIDE)
    a1c = a1c - params.a1c_drop_second_agent * treated.dose(DrugClass.SULFONYLUREA)
    return np.clip(a1c, 4.5, 14.0)


def _ldl(
    rng: np.random.Generator, treated: _Treated, params: ControlParameters
) -> npt.NDArray[np.float64]:
    hld = treated.flags[:, Condition.HYPERLIPIDAEMIA]
    ldl = _draw(rng, hld, params.ldl_untreated, params.ldl_normal)
    statin = np.minimum(treated.dose(DrugClass.STATIN), 1.0)
    return np.clip(ldl * (1.0 - params.ldl_statin_reduction * statin), 40, 300)


def control_state(
    rng: np.random.Generator,
    conditions: ConditionSet,
    lines: pd.DataFrame,
    line_pdc: npt.NDArray[np.float64],
    params: ControlParameters,
) -> pd.DataFrame:
    """Per patient: treated systolic/diastolic, HbA1c, LDL and the poor-control flags."""
    treated = _Treated(conditions.flags, lines, line_pdc)
    sbp, dbp = _blood_pressure(rng, treated, params)
    frame = pd.DataFrame({"sbp": sbp, "dbp": dbp})
    frame["a1c"] = _a1c(rng, treated, params)
    frame["ldl"] = _ldl(rng, treated, params)
    flags = conditions.flags
    frame["poor_bp"] = flags[:, Condition.HYPERTENSION] & (sbp >= params.poor_sbp)
    frame["poor_a1c"] = flags[:, Condition.DIABETES] & (frame["a1c"].to_numpy() > params.poor_a1c)
    frame["poor_ldl"] = flags[:, Condition.HYPERLIPIDAEMIA] & (
        frame["ldl"].to_numpy() >= params.poor_ldl
    )
    frame["poor_control"] = frame["poor_bp"] | frame["poor_a1c"] | frame["poor_ldl"]
    return frame


def nonadherent_patients(
    patient_pdc: npt.NDArray[np.float64], threshold: float
) -> npt.NDArray[np.bool_]:
    """Patients with prescriptions whose mean PDC is below the threshold."""
    return np.nan_to_num(patient_pdc, nan=1.0) < threshold


@dataclass(frozen=True)
class _Visits:
    patient: npt.NDArray[np.int64]
    day: npt.NDArray[np.int64]


def observations(
    rng: np.random.Generator,
    office_visits: pd.DataFrame,
    conditions: ConditionSet,
    control: pd.DataFrame,
    params: ControlParameters,
) -> pd.DataFrame:
    """Observations recorded at office visits: BP at each (latest few), HbA1c for diabetes, LDL
    once for hyperlipidaemia. Columns: patient_index, kind, offset, value, value2, obs_uuid."""
    ordered = office_visits.sort_values(["patient_index", "start_offset"], kind="mergesort")
    visits = _Visits(ordered["patient_index"].to_numpy(), ordered["start_offset"].to_numpy())
    latest_rank = ordered.groupby("patient_index").cumcount(ascending=False).to_numpy()
    first_rank = ordered.groupby("patient_index").cumcount().to_numpy()
    flags = conditions.flags[visits.patient]
    a1c_keep = flags[:, Condition.DIABETES] & (latest_rank < params.max_a1c_observations)
    ldl_keep = flags[:, Condition.HYPERLIPIDAEMIA] & (first_rank == 0)
    parts = [
        _bp(rng, visits, latest_rank < params.max_bp_observations, control, params),
        _lab(rng, "a1c", visits, a1c_keep, control["a1c"].to_numpy(), noise=0.25, decimals=1),
        _lab(rng, "ldl", visits, ldl_keep, control["ldl"].to_numpy(), noise=8.0, decimals=0),
    ]
    table = pd.concat(parts, ignore_index=True)
    table = table.sort_values(["patient_index", "offset", "kind"], kind="mergesort")
    table = table.reset_index(drop=True)
    table["obs_uuid"] = make_uuids(rng, len(table))
    return table


def _bp(
    rng: np.random.Generator,
    visits: _Visits,
    keep: npt.NDArray[np.bool_],
    control: pd.DataFrame,
    params: ControlParameters,
) -> pd.DataFrame:
    p, d = visits.patient[keep], visits.day[keep]
    sbp = control["sbp"].to_numpy()[p] + rng.normal(0, params.bp_visit_noise[0], len(p))
    dbp = control["dbp"].to_numpy()[p] + rng.normal(0, params.bp_visit_noise[1], len(p))
    return pd.DataFrame(
        {
            "patient_index": p,
            "kind": "bp",
            "offset": d,
            "value": np.round(sbp),
            "value2": np.round(dbp),
        }
    )


def _lab(
    rng: np.random.Generator,
    kind: str,
    visits: _Visits,
    keep: npt.NDArray[np.bool_],
    level: npt.NDArray[np.float64],
    *,
    noise: float,
    decimals: int,
) -> pd.DataFrame:
    p, d = visits.patient[keep], visits.day[keep]
    value = np.round(level[p] + rng.normal(0, noise, len(p)), decimals)
    return pd.DataFrame(
        {"patient_index": p, "kind": kind, "offset": d, "value": value, "value2": np.nan}
    )
