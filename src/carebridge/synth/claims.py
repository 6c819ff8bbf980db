"""Payer claims for covered patients, one row per claim, in the `CLAIMS` feed layout.

Each encounter bills like it would in the US: an office visit is one professional claim; an ER
visit a hospital outpatient claim (type of bill 0131, revenue code 0450) plus the ER physician's
professional claim; a stay a hospital inpatient claim (0111, room and board 0120, discharge date
and status) plus the admitting physician's claim; a skilled-nursing stay a 0211 claim plus the
nursing-facility visit. HbA1c and LDL tests bill from an independent laboratory (POS 81).

Charges are illustrative, not sourced: log-normal around the medians below (sd 0.35 on the log
scale), facility stays per day; the payer pays 35-65% of billed. Uninsured patients have no claims.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from carebridge.ingest.feeds import CLAIMS
from carebridge.synth.conditions import Condition
from carebridge.synth.outcomes import SECONDARY_ORDER, EncounterKind
from carebridge.synth.providers import PAYERS
from carebridge.synth.window import Window, iso_days


@dataclass(frozen=True)
class ChargeParameters:
    office_low: float = 180.0
    office_moderate: float = 260.0
    preventive: float = 250.0
    er_facility: float = 2800.0
    er_professional: float = 550.0
    inpatient_facility_per_day: float = 3000.0
    inpatient_professional: float = 420.0
    snf_facility_per_day: float = 650.0
    snf_professional: float = 210.0
    lab: float = 50.0
    log_sd: float = 0.35
    paid_share: tuple[float, float] = (0.35, 0.65)


@dataclass(frozen=True)
class ClaimInputs:
    patients: pd.DataFrame
    flags: npt.NDArray[np.bool_]
    encounters: pd.DataFrame
    observations: pd.DataFrame
    prescribers: pd.DataFrame
    facilities: pd.DataFrame


def _part(
    encounters: pd.DataFrame,
    *,
    claim_type: str,
    pos: str,
    npi: npt.NDArray[np.object_],
    procedure: npt.NDArray[np.object_] | str,
    amount: npt.NDArray[np.float64] | float,
    bill_type: str = "",
    revenue: str = "",
    discharge: bool = False,
) -> pd.DataFrame:
    part = encounters[["patient_index", "start_offset", "primary_dx"]].copy()
    for k in (1, 2, 3):
        part[f"secondary_{k}"] = encounters[f"secondary_{k}"].to_numpy()
    part["claim_type"], part["bill_type"], part["place_of_service"] = claim_type, bill_type, pos
    part["revenue_code"], part["procedure_code"] = revenue, procedure
    part["provider_npi"] = npi
    part["discharge_offset"] = encounters["end_offset"].to_numpy() if discharge else -1
    part["discharge_status"] = encounters["discharge_status"].to_numpy() if discharge else ""
    part["median_amount"] = amount
    return part


def _facility_npi(
    inputs: ClaimInputs, kind: str, patient: npt.NDArray[np.int64]
) -> npt.NDArray[np.object_]:
    npis = inputs.facilities.loc[inputs.facilities["kind"] == kind, "npi"].to_numpy()
    home = inputs.patients["home_store"].to_numpy()[patient]
    chosen: npt.NDArray[np.object_] = npis[home % len(npis)].astype(object)
    return chosen


def _physician_npi(
    rng: np.random.Generator, inputs: ClaimInputs, count: int
) -> npt.NDArray[np.object_]:
    npis = inputs.prescribers["npi"].to_numpy()
    chosen: npt.NDArray[np.object_] = npis[rng.integers(0, len(npis), count)].astype(object)
    return chosen


def _office_parts(inputs: ClaimInputs, charges: ChargeParameters) -> pd.DataFrame:
    office = inputs.encounters[inputs.encounters["kind"] == EncounterKind.OFFICE]
    patient = office["patient_index"].to_numpy()
    age = inputs.patients["age"].to_numpy()[patient]
    preventive = np.where(age >= 65, "99397", np.where(age >= 40, "99396", "99395"))
    complex_visit = inputs.flags[patient].sum(axis=1) >= 2
    visit = np.where(complex_visit, "99214", "99213")
    is_preventive = office["primary_dx"].to_numpy() == "Z00.00"
    amount = np.where(
        is_preventive,
        charges.preventive,
        np.where(complex_visit, charges.office_moderate, charges.office_low),
    )
    pcp = inputs.prescribers["npi"].to_numpy()[inputs.patients["pcp"].to_numpy()[patient]]
    procedure = np.where(is_preventive, preventive, visit).astype(object)
    return _part(
        office,
        claim_type="professional",
        pos="11",
        npi=pcp.astype(object),
        procedure=procedure,
        amount=amount,
    )


def _er_parts(
    rng: np.random.Generator, inputs: ClaimInputs, charges: ChargeParameters
) -> list[pd.DataFrame]:
    """Hospital outpatient claim (TOB 0131, revenue 0450) plus the ER physician's claim."""
    er = inputs.encounters[inputs.encounters["kind"] == EncounterKind.EMERGENCY]
    level = np.where(er["admitted"].to_numpy(), "99285", "99284").astype(object)
    facility = _facility_npi(inputs, "hospital", er["patient_index"].to_numpy())
    return [
        _part(
            er,
            claim_type="institutional",
            bill_type="0131",
            pos="23",
            revenue="0450",
            npi=facility,
            procedure=level,
            amount=charges.er_facility,
        ),
        _part(
            er,
            claim_type="professional",
            pos="23",
            npi=_physician_npi(rng, inputs, len(er)),
            procedure=level,
            amount=charges.er_professional,
        ),
    ]


@dataclass(frozen=True)
class _StayBilling:
    kind: EncounterKind
    bill_type: str
    pos: str
    facility_kind: str
    per_day: float
    visit_code: str
    visit_amount: float


def _stay_parts(
    rng: np.random.Generator, inputs: ClaimInputs, billing: _StayBilling
) -> list[pd.DataFrame]:
    """Facility claim per stay (room and board 0120, charged per day) plus the physician visit."""
    stays = inputs.encounters[inputs.encounters["kind"] == billing.kind]
    days = (stays["end_offset"] - stays["start_offset"]).to_numpy()
    facility = _facility_npi(inputs, billing.facility_kind, stays["patient_index"].to_numpy())
    return [
        _part(
            stays,
            claim_type="institutional",
            bill_type=billing.bill_type,
            pos=billing.pos,
            revenue="0120",
            npi=facility,
            procedure="",
            amount=billing.per_day * days,
            discharge=True,
        ),
        _part(
            stays,
            claim_type="professional",
            pos=billing.pos,
            npi=_physician_npi(rng, inputs, len(stays)),
            procedure=billing.visit_code,
            amount=billing.visit_amount,
        ),
    ]


def _hospital_parts(
    rng: np.random.Generator, inputs: ClaimInputs, charges: ChargeParameters
) -> list[pd.DataFrame]:
    inpatient = _StayBilling(
        EncounterKind.INPATIENT,
        "0111",
        "21",
        "hospital",
        charges.inpatient_facility_per_day,
        "99223",
        charges.inpatient_professional,
    )
    snf = _StayBilling(
        EncounterKind.SNF,
        "0211",
        "31",
        "snf",
        charges.snf_facility_per_day,
        "99304",
        charges.snf_professional,
    )
    return [
        *_er_parts(rng, inputs, charges),
        *_stay_parts(rng, inputs, inpatient),
        *_stay_parts(rng, inputs, snf),
    ]


def _lab_parts(
    inputs: ClaimInputs, chronic: npt.NDArray[np.object_], charges: ChargeParameters
) -> pd.DataFrame:
    labs = inputs.observations[inputs.observations["kind"] != "bp"]
    patient = labs["patient_index"].to_numpy()
    is_a1c = labs["kind"].to_numpy() == "a1c"
    dm_column = SECONDARY_ORDER.index(Condition.DIABETES)
    frame = pd.DataFrame(
        {
            "patient_index": patient,
            "start_offset": labs["offset"].to_numpy(),
            "end_offset": labs["offset"].to_numpy(),
            "primary_dx": np.where(is_a1c, chronic[patient, dm_column], "E78.5"),
            "discharge_status": "",
        }
    )
    for k in (1, 2, 3):
        frame[f"secondary_{k}"] = ""
    npi = _facility_npi(inputs, "lab", patient)
    procedure = np.where(is_a1c, "83036", "80061").astype(object)
    return _part(
        frame, claim_type="professional", pos="81", npi=npi, procedure=procedure, amount=charges.lab
    )


def build_claims(
    rng: np.random.Generator,
    inputs: ClaimInputs,
    chronic: npt.NDArray[np.object_],
    window: Window,
    charges: ChargeParameters,
) -> pd.DataFrame:
    """The claims feed table (strings, CLAIMS column order), sorted by service date."""
    parts = [
        _office_parts(inputs, charges),
        *_hospital_parts(rng, inputs, charges),
        _lab_parts(inputs, chronic, charges),
    ]
    claims = pd.concat(parts, ignore_index=True)
    covered = inputs.patients["payer_index"].to_numpy()[claims["patient_index"].to_numpy()] >= 0
    claims = (
        claims[covered]
        .sort_values(
            ["start_offset", "patient_index", "claim_type", "place_of_service"], kind="mergesort"
        )
        .reset_index(drop=True)
    )
    billed = np.round(
        claims["median_amount"].to_numpy() * rng.lognormal(0, charges.log_sd, len(claims)), 2
    )
    paid = np.round(billed * rng.uniform(*charges.paid_share, len(claims)), 2)
    return _feed_table(claims, inputs.patients, window, billed, paid)


def _feed_table(
    claims: pd.DataFrame,
    patients: pd.DataFrame,
    window: Window,
    billed: npt.NDArray[np.float64],
    paid: npt.NDArray[np.float64],
) -> pd.DataFrame:
    patient = claims["patient_index"].to_numpy()
    payer = patients["payer_index"].to_numpy()[patient]
    discharge = claims["discharge_offset"].to_numpy()
    table = pd.DataFrame(
        {
            "claim_id": [f"CLM{i + 1:09d}" for i in range(len(claims))],
            "claim_type": claims["claim_type"],
            "bill_type": claims["bill_type"],
            "place_of_service": claims["place_of_service"],
            "payer_id": [PAYERS[p].payer_id for p in payer.tolist()],
            "payer_name": [PAYERS[p].name for p in payer.tolist()],
            "payer_member_id": patients["payer_member_id"].to_numpy()[patient],
            "patient_first_name": patients["first_name"].to_numpy()[patient],
            "patient_last_name": patients["last_name"].to_numpy()[patient],
            "patient_birth_date": iso_days(patients["birth_date"].to_numpy()[patient]),
            "patient_sex": patients["sex"].to_numpy()[patient],
            "provider_npi": claims["provider_npi"],
            "service_date": window.iso(claims["start_offset"].to_numpy()),
            "discharge_date": np.where(discharge >= 0, window.iso(np.maximum(discharge, 0)), ""),
            "discharge_status": claims["discharge_status"],
            "diagnosis_1": claims["primary_dx"],
            "diagnosis_2": claims["secondary_1"],
            "diagnosis_3": claims["secondary_2"],
            "diagnosis_4": claims["secondary_3"],
            "procedure_code": claims["procedure_code"],
            "revenue_code": claims["revenue_code"],
            "billed_amount": [f"{b:.2f}" for b in billed.tolist()],
            "paid_amount": [f"{p:.2f}" for p in paid.tolist()],
        }
    )
    table["patient_index"] = patient  # kept for joins in tests and bundles; dropped by the writer
    return table[[*CLAIMS.column_names, "patient_index"]]
