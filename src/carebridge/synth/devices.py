"""Home devices: who is enrolled, the readings each device sends, and realistic data-quality faults.

Enrolment (assumptions): 15% of hypertensive patients get a BP cuff, 20% of diabetic patients a
glucose meter, 50% of heart-failure patients a scale and 30% an oximeter; enrolment falls in the
first half of the window. Each device reads on a given day with its own probability (45-95%), in
the morning; 30% of BP-cuff days add an evening reading.

Values come from the patient's clinical state: BP from the treated systolic/diastolic with
day-to-day noise; fasting glucose from HbA1c through the ADAG estimated-average-glucose line
(eAG mg/dL = 28.7 x A1c - 46.7, Nathan 2008, Diabetes Care 31:1473) minus 10 mg/dL; weight around
the patient's weight, rising about 0.7 lb/day over the week before a heart-failure patient's
admission (fluid gain precedes decompensation); SpO2 around 96% (95% with heart failure).

Data-quality faults, at documented default rates (ground truth kept in boolean columns):
duplicates 1% of readings (sent twice), out-of-order 2% (delivered after the next reading),
implausible 0.2% (zero or impossible values), skewed clock on 3% of devices (whole stream
shifted by 1-12 hours either way). Vendors differ in units: glucose in mg/dL or mmol/L, weight
in lb or kg.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from carebridge.synth.conditions import Condition
from carebridge.synth.identifiers import make_numbers
from carebridge.synth.outcomes import EncounterKind
from carebridge.synth.window import Window

GLUCOSE_MG_PER_MMOL = 18.0156  # glucose molar mass 180.156 g/mol
KG_PER_LB = 0.45359237


@dataclass(frozen=True)
class Vendor:
    name: str
    prefix: str
    glucose_unit: str
    weight_unit: str


VENDORS = (
    Vendor("Northbeam Health", "NB", "mg/dL", "lb"),
    Vendor("Velora Medical", "VM", "mmol/L", "kg"),
    Vendor("Quillon Devices", "QD", "mg/dL", "lb"),
)
KINDS = ("bp", "glucose", "weight", "spo2")
KIND_CONDITION = (
    Condition.HYPERTENSION,
    Condition.DIABETES,
    Condition.HEART_FAILURE,
    Condition.HEART_FAILURE,
)


@dataclass(frozen=True)
class DeviceParameters:
    enrolment_share: tuple[float, float, float, float] = (0.15, 0.20, 0.50, 0.30)
    vendor_weights: tuple[float, float, float] = (0.5, 0.2, 0.3)
    daily_use: tuple[float, float] = (0.45, 0.95)
    evening_bp_share: float = 0.30
    duplicate_rate: float = 0.01
    out_of_order_rate: float = 0.02
    implausible_rate: float = 0.002
    skewed_clock_device_share: float = 0.03
    clock_skew_hours: tuple[int, int] = (1, 13)
    pre_admission_gain_lb_per_day: float = 0.7
    pre_admission_days: int = 7


@dataclass(frozen=True)
class DeviceData:
    registry: pd.DataFrame  # patient_index, kind, vendor, store, enrolled_offset, device_id
    readings: pd.DataFrame  # in file order per device


@dataclass(frozen=True)
class DeviceInputs:
    flags: npt.NDArray[np.bool_]
    patients: pd.DataFrame
    control: pd.DataFrame
    encounters: pd.DataFrame


def enrol(
    rng: np.random.Generator, inputs: DeviceInputs, window: Window, params: DeviceParameters
) -> pd.DataFrame:
    parts = []
    for kind_index, condition in enumerate(KIND_CONDITION):
        eligible = np.nonzero(inputs.flags[:, condition])[0]
        chosen = eligible[rng.random(len(eligible)) < params.enrolment_share[kind_index]]
        parts.append(pd.DataFrame({"patient_index": chosen, "kind": kind_index}))
    registry = pd.concat(parts, ignore_index=True)
    count = len(registry)
    registry["vendor"] = rng.choice(len(VENDORS), size=count, p=np.array(params.vendor_weights))
    registry["store"] = inputs.patients["home_store"].to_numpy()[
        registry["patient_index"].to_numpy()
    ]
    registry["enrolled_offset"] = rng.integers(0, max(window.days // 2, 1), size=count)
    registry["daily_use"] = rng.uniform(*params.daily_use, size=count)
    serial = make_numbers(rng, count, 7)
    registry["device_id"] = [
        f"{VENDORS[v].prefix}-{KINDS[k].upper()}-{s}"
        for v, k, s in zip(registry["vendor"], registry["kind"], serial.tolist(), strict=True)
    ]
    return registry


def _reading_days(
    rng: np.random.Generator, registry: pd.DataFrame, window: Window, params: DeviceParameters
) -> pd.DataFrame:
    enrolled = registry["enrolled_offset"].to_numpy()
    days = window.days - enrolled
    device = np.repeat(np.arange(len(registry)), days)
    first = np.repeat(np.cumsum(days) - days, days)
    day = enrolled[device] + np.arange(len(device)) - first
    keep = rng.random(len(device)) < registry["daily_use"].to_numpy()[device]
    device, day = device[keep], day[keep]
    seconds = rng.integers(6 * 3600, 10 * 3600, size=len(device))
    is_bp = registry["kind"].to_numpy()[device] == 0
    evening = is_bp & (rng.random(len(device)) < params.evening_bp_share)
    extra_seconds = rng.integers(19 * 3600, 22 * 3600, size=int(evening.sum()))
    device = np.concatenate([device, device[evening]])
    day = np.concatenate([day, day[evening]])
    seconds = np.concatenate([seconds, extra_seconds])
    frame = pd.DataFrame({"device_index": device, "day": day, "second": seconds})
    return frame.sort_values(["device_index", "day", "second"], kind="mergesort").reset_index(
        drop=True
    )


def _pre_admission_gain(
    patient: npt.NDArray[np.int64],
    day: npt.NDArray[np.int64],
    encounters: pd.DataFrame,
    params: DeviceParameters,
) -> npt.NDArray[np.float64]:
    """Weight gained in the days before each patient's next admission."""
    stays = encounters[encounters["kind"] == EncounterKind.INPATIENT]
    key = np.sort(stays["patient_index"].to_numpy() * 100_000 + stays["start_offset"].to_numpy())
    reading_key = patient * 100_000 + day
    position = np.minimum(np.searchsorted(key, reading_key), max(len(key) - 1, 0))
    if len(key) == 0:
        return np.zeros(len(patient))
    next_key = key[position]
    ahead = next_key - reading_key
    near = (next_key // 100_000 == patient) & (ahead >= 0) & (ahead < params.pre_admission_days)
    return np.where(
        near, (params.pre_admission_days - ahead) * params.pre_admission_gain_lb_per_day, 0.0
    )


def _values(
    rng: np.random.Generator,
    readings: pd.DataFrame,
    registry: pd.DataFrame,
    inputs: DeviceInputs,
    params: DeviceParameters,
) -> None:
    device = readings["device_index"].to_numpy()
    patient = registry["patient_index"].to_numpy()[device]
    vendor = registry["vendor"].to_numpy()[device]
    count = len(readings)
    control = inputs.control
    hf = inputs.flags[patient, Condition.HEART_FAILURE]
    readings["systolic"] = np.round(control["sbp"].to_numpy()[patient] + rng.normal(0, 8, count))
    readings["diastolic"] = np.round(control["dbp"].to_numpy()[patient] + rng.normal(0, 5, count))
    readings["pulse"] = np.round(rng.normal(np.where(hf, 68, 73), 8, count))
    eag = 28.7 * control["a1c"].to_numpy()[patient] - 46.7
    glucose = np.clip(eag - 10.0 + rng.normal(0, 18, count), 55, 450)
    mmol = np.array([v.glucose_unit == "mmol/L" for v in VENDORS])[vendor]
    readings["glucose"] = np.where(
        mmol, np.round(glucose / GLUCOSE_MG_PER_MMOL, 1), np.round(glucose)
    )
    gain = _pre_admission_gain(patient, readings["day"].to_numpy(), inputs.encounters, params)
    pounds = inputs.patients["weight_lb"].to_numpy()[patient] + rng.normal(0, 1.0, count) + gain
    kg = np.array([v.weight_unit == "kg" for v in VENDORS])[vendor]
    readings["weight"] = np.where(kg, np.round(pounds * KG_PER_LB, 1), np.round(pounds, 1))
    readings["spo2"] = np.clip(np.round(rng.normal(np.where(hf, 95, 96.5), 1.5, count)), 85, 100)


def _implausible(
    rng: np.random.Generator, readings: pd.DataFrame, params: DeviceParameters
) -> None:
    bad = rng.random(len(readings)) < params.implausible_rate
    zero = rng.random(len(readings)) < 0.5
    for column, impossible in (
        ("systolic", 320),
        ("glucose", 900),
        ("weight", 1500),
        ("spo2", 150),
    ):
        readings[column] = np.where(bad, np.where(zero, 0, impossible), readings[column])
    readings["implausible"] = bad


def _clock_and_order(
    rng: np.random.Generator,
    readings: pd.DataFrame,
    registry: pd.DataFrame,
    window: Window,
    params: DeviceParameters,
) -> pd.DataFrame:
    skewed = rng.random(len(registry)) < params.skewed_clock_device_share
    hours = rng.integers(*params.clock_skew_hours, size=len(registry)) * rng.choice(
        [-1, 1], len(registry)
    )
    shift = np.where(skewed, hours * 3600, 0)[readings["device_index"].to_numpy()]
    start = np.datetime64(window.start, "s").astype(np.int64)
    readings["epoch_seconds"] = (
        start + readings["day"].to_numpy() * 86400 + readings["second"].to_numpy() + shift
    )
    readings["skewed_clock"] = shift != 0
    order = np.arange(len(readings), dtype=np.float64)
    device = readings["device_index"].to_numpy()
    same_device_next = np.append(device[1:] == device[:-1], False)
    late = (rng.random(len(readings)) < params.out_of_order_rate) & same_device_next
    order[late] += 1.5  # delivered after the following reading
    readings["out_of_order"] = late
    readings = readings.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)
    duplicate = rng.random(len(readings)) < params.duplicate_rate
    copies = readings[duplicate].copy()
    copies["duplicate"] = True
    readings["duplicate"] = False
    position = np.concatenate([np.arange(len(readings)), np.nonzero(duplicate)[0] + 0.5])
    merged = pd.concat([readings, copies], ignore_index=True)
    return merged.iloc[np.argsort(position, kind="stable")].reset_index(drop=True)


def simulate_devices(
    rng: np.random.Generator, inputs: DeviceInputs, window: Window, params: DeviceParameters
) -> DeviceData:
    registry = enrol(rng, inputs, window, params)
    readings = _reading_days(rng, registry, window, params)
    _values(rng, readings, registry, inputs, params)
    _implausible(rng, readings, params)
    readings = _clock_and_order(rng, readings, registry, window, params)
    readings["kind"] = registry["kind"].to_numpy()[readings["device_index"].to_numpy()]
    return DeviceData(registry=registry, readings=readings)
