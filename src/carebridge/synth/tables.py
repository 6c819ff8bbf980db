"""Flat feed tables (pure): the dispensing feed and the device registry in their CSV layouts.

Columns and order come from `carebridge.ingest.feeds`, the contract with the ingest adapters.
A trailing `patient_index` column (not part of the feed) is kept for joins; writers drop it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from carebridge.ingest.feeds import DEVICE_REGISTRY, DISPENSING
from carebridge.synth.devices import KINDS, VENDORS
from carebridge.synth.regimens import DRUGS
from carebridge.synth.window import Window, iso_days


def dispensing_table(
    fills: pd.DataFrame,
    patients: pd.DataFrame,
    stores: pd.DataFrame,
    prescribers: pd.DataFrame,
    window: Window,
) -> pd.DataFrame:
    patient = fills["patient_index"].to_numpy()
    store = fills["store"].to_numpy()
    prescriber = fills["prescriber"].to_numpy()
    drug = fills["drug"].to_numpy()
    table = pd.DataFrame(
        {
            "pharmacy_member_id": patients["pharmacy_member_id"].to_numpy()[patient],
            "patient_first_name": patients["first_name"].to_numpy()[patient],
            "patient_last_name": patients["last_name"].to_numpy()[patient],
            "patient_birth_date": iso_days(patients["birth_date"].to_numpy()[patient]),
            "patient_sex": patients["sex"].to_numpy()[patient],
            "patient_postal_code": patients["postal_code"].to_numpy()[patient],
            "store_ncpdp_id": stores["ncpdp_id"].to_numpy()[store],
            "store_name": stores["name"].to_numpy()[store],
            "prescriber_npi": prescribers["npi"].to_numpy()[prescriber],
            "prescriber_first_name": prescribers["first_name"].to_numpy()[prescriber],
            "prescriber_last_name": prescribers["last_name"].to_numpy()[prescriber],
            "rxcui": np.array([d.rxcui for d in DRUGS], dtype=object)[drug],
            "drug_name": np.array([d.name for d in DRUGS], dtype=object)[drug],
            "ndc11": np.array([d.ndc11 for d in DRUGS], dtype=object)[drug],
            "quantity_dispensed": fills["quantity"].to_numpy(),
            "days_supply": fills["days_supply"].to_numpy(),
            "fill_date": window.iso(fills["fill_offset"].to_numpy()),
            "refill_number": fills["refill_number"].to_numpy(),
            "refills_authorized": fills["refills_authorized"].to_numpy(),
            "prescription_number": fills["rx_number"].astype(str).to_numpy(),
            "date_written": window.iso(fills["written_offset"].to_numpy()),
            "payer_member_id": patients["payer_member_id"].to_numpy()[patient],
        }
    )
    table["patient_index"] = patient
    return table[[*DISPENSING.column_names, "patient_index"]]


def device_registry_table(
    registry: pd.DataFrame, patients: pd.DataFrame, stores: pd.DataFrame, window: Window
) -> pd.DataFrame:
    patient = registry["patient_index"].to_numpy()
    table = pd.DataFrame(
        {
            "device_id": registry["device_id"].to_numpy(),
            "pharmacy_member_id": patients["pharmacy_member_id"].to_numpy()[patient],
            "kind": np.array(KINDS, dtype=object)[registry["kind"].to_numpy()],
            "vendor": np.array([v.name for v in VENDORS], dtype=object)[
                registry["vendor"].to_numpy()
            ],
            "store_ncpdp_id": stores["ncpdp_id"].to_numpy()[registry["store"].to_numpy()],
            "enrolled_on": window.iso(registry["enrolled_offset"].to_numpy()),
        }
    )
    table["patient_index"] = patient
    return table[[*DEVICE_REGISTRY.column_names, "patient_index"]]
