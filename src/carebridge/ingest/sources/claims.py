"""The payer claims feed (`feeds.CLAIMS`, CMS-1500 / UB-04 header fields): one row per claim."""

from __future__ import annotations

from carebridge.ingest.feeds import CLAIMS
from carebridge.ingest.mappers.claims import claim_patient, claim_resources
from carebridge.ingest.mappers.visits import merge_encounters
from carebridge.ingest.sources.delimited import CsvSource

SOURCE = CsvSource(
    feed=CLAIMS,
    patient_of=claim_patient,
    map_row=claim_resources,
    identity_columns=(
        "payer_member_id",
        "patient_first_name",
        "patient_last_name",
        "patient_birth_date",
        "patient_sex",
    ),
    merge_rules={"Encounter": merge_encounters},
)
