"""Column contracts of the flat feeds the synthetic generator writes and ingest adapters read.

Each feed is a UTF-8 CSV with a header row, comma separated, "\\n" line endings, dates as
ISO 8601 `YYYY-MM-DD`, decimals with a dot and two places, and an empty field for "not present".
Column order is part of the contract.

Sources for the field meanings:

- Pharmacy dispensing: NCPDP Telecommunication Standard D.0 field numbers (noted per column), the
  fields a pharmacy system sends when it bills a fill and therefore has in its export.
- Payer claims: CMS-1500 (professional, 837P) and UB-04 (institutional, 837I) form locators; place
  of service from the CMS Place of Service code set
  (https://www.cms.gov/medicare/coding-billing/place-of-service-codes/code-sets).
- Device registry: carebridge's own list of enrolled home devices.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DATE_FORMAT = "%Y-%m-%d"
ENCODING = "utf-8"
DELIMITER = ","


class ColumnType(StrEnum):
    STRING = "string"
    CODE = "code"
    DATE = "date"
    INTEGER = "integer"
    DECIMAL = "decimal"


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    required: bool
    description: str
    reference: str = ""  # the standard field this column carries, when there is one


@dataclass(frozen=True)
class Feed:
    name: str
    filename: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def required_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns if column.required)


S, C, D, INT, DEC = (
    ColumnType.STRING,
    ColumnType.CODE,
    ColumnType.DATE,
    ColumnType.INTEGER,
    ColumnType.DECIMAL,
)

DISPENSING = Feed(
    name="pharmacy-dispensing",
    filename="dispensing.csv",
    columns=(
        Column("pharmacy_member_id", S, True, "patient id in the pharmacy system", "332-CY"),
        Column("patient_first_name", S, True, "patient given name", "310-CA"),
        Column("patient_last_name", S, True, "patient family name", "311-CB"),
        Column("patient_birth_date", D, True, "patient date of birth", "304-C4"),
        Column("patient_sex", C, True, "M or F (NCPDP gender code 1 or 2)", "305-C5"),
        Column("patient_postal_code", S, True, "patient ZIP code", "325-CP"),
        Column("store_ncpdp_id", S, True, "7-digit NCPDP provider id of the store", "201-B1"),
        Column("store_name", S, True, "store display name"),
        Column("prescriber_npi", S, True, "prescriber NPI (qualifier 01)", "411-DB"),
        Column("prescriber_first_name", S, True, "prescriber given name", "364-2J"),
        Column("prescriber_last_name", S, True, "prescriber family name", "427-DR"),
        Column("rxcui", C, True, "RxNorm RXCUI of the clinical drug (SCD)"),
        Column("drug_name", S, True, "RxNorm SCD name"),
        Column("ndc11", C, False, "11-digit NDC dispensed (qualifier 03)", "407-D7"),
        Column("quantity_dispensed", DEC, True, "units dispensed", "442-E7"),
        Column("days_supply", INT, True, "days the fill covers", "405-D5"),
        Column("fill_date", D, True, "date of service", "401-D1"),
        Column("refill_number", INT, True, "0 for the original fill, then 1, 2, ...", "403-D3"),
        Column("refills_authorized", INT, True, "refills the prescriber allowed", "415-DF"),
        Column("prescription_number", S, True, "prescription/service reference", "402-D2"),
        Column("date_written", D, True, "date the prescription was written", "414-DE"),
        Column("payer_member_id", S, False, "cardholder id when the fill was billed", "302-C2"),
    ),
)

CLAIMS = Feed(
    name="payer-claims",
    filename="claims.csv",
    columns=(
        Column("claim_id", S, True, "payer claim number"),
        Column("claim_type", C, True, "professional (CMS-1500/837P) or institutional (UB-04)"),
        Column("bill_type", C, False, "UB-04 type of bill, institutional only", "UB-04 FL4"),
        Column("place_of_service", C, True, "CMS place-of-service code", "CMS-1500 24B"),
        Column("payer_id", S, True, "payer identifier"),
        Column("payer_name", S, True, "payer display name"),
        Column("payer_member_id", S, True, "member id at the payer", "CMS-1500 1a"),
        Column("patient_first_name", S, True, "member given name"),
        Column("patient_last_name", S, True, "member family name"),
        Column("patient_birth_date", D, True, "member date of birth"),
        Column("patient_sex", C, True, "M or F"),
        Column("provider_npi", S, True, "rendering (professional) or facility NPI"),
        Column("service_date", D, True, "service date, or admission date", "UB-04 FL6/FL12"),
        Column("discharge_date", D, False, "discharge date for stays", "UB-04 FL6"),
        Column("discharge_status", C, False, "patient discharge status", "UB-04 FL17"),
        Column("diagnosis_1", C, True, "principal/primary ICD-10-CM code", "UB-04 FL67"),
        Column("diagnosis_2", C, False, "secondary ICD-10-CM code"),
        Column("diagnosis_3", C, False, "secondary ICD-10-CM code"),
        Column("diagnosis_4", C, False, "secondary ICD-10-CM code"),
        Column("procedure_code", C, False, "CPT/HCPCS code", "CMS-1500 24D, UB-04 FL44"),
        Column("revenue_code", C, False, "4-digit revenue code", "UB-04 FL42"),
        Column("billed_amount", DEC, True, "total charges in USD", "UB-04 FL47"),
        Column("paid_amount", DEC, True, "amount the payer paid in USD"),
    ),
)

DEVICE_REGISTRY = Feed(
    name="device-registry",
    filename="devices.csv",
    columns=(
        Column("device_id", S, True, "device serial; also the stem of its readings file"),
        Column("pharmacy_member_id", S, True, "patient the device is enrolled to"),
        Column("kind", C, True, "bp, glucose, weight or spo2 (generic payload kinds)"),
        Column("vendor", S, True, "device vendor"),
        Column("store_ncpdp_id", S, True, "store that enrolled the device"),
        Column("enrolled_on", D, True, "enrolment date"),
    ),
)

FEEDS = (DISPENSING, CLAIMS, DEVICE_REGISTRY)
