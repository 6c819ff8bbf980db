"""The pharmacy dispensing feed (`feeds.DISPENSING`, NCPDP D.0 fields): one row per fill."""

from __future__ import annotations

from carebridge.ingest.feeds import DISPENSING
from carebridge.ingest.mappers.dispensing import fill_patient, fill_resources
from carebridge.ingest.sources.delimited import CsvSource

SOURCE = CsvSource(
    feed=DISPENSING,
    patient_of=fill_patient,
    map_row=fill_resources,
    identity_columns=(
        "pharmacy_member_id",
        "patient_first_name",
        "patient_last_name",
        "patient_birth_date",
        "patient_sex",
        "payer_member_id",
    ),
)
