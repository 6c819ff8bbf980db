"""Payload -> NormalizedReading / RejectedReading.

Expected canonical values are worked out by hand from the UCUM definitions (1 mm[Hg] = 133.3220 Pa,
1 [lb_av] = 453.59237 g, 1 [stone_av] = 14 [lb_av]) and glucose's molar mass (1 mmol/L =
18.0156 mg/dL), then rounded as `units.canonical_decimals` says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebridge.devices.kinds import ReadingKind
from carebridge.devices.normalize import NormalizationPolicy, normalize_payload
from carebridge.devices.readings import (
    ClockSkew,
    DeviceContext,
    NormalizedReading,
    RejectedReading,
)
from carebridge.devices.templates import DeviceTemplate, builtin_templates, parse_template

RECEIVED_AT = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
# 2025-03-01T08:00:00Z as Unix time: 20148 days after 1970-01-01, times 86400, plus 8 hours.
EPOCH_0800 = 20148 * 86400 + 8 * 3600
BUILTINS = builtin_templates()
CONTEXT = DeviceContext("cuff-17", "pat-42", RECEIVED_AT)
AT_0800 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
BP = ReadingKind.BLOOD_PRESSURE
HR = ReadingKind.HEART_RATE


def _normalize(payload: Any, context: DeviceContext = CONTEXT, **policy: Any) -> list[Any]:
    return normalize_payload(payload, context, BUILTINS, NormalizationPolicy(**policy))


def _generic(**reading: Any) -> dict[str, Any]:
    return {"readings": [{"time": "2025-03-01T08:00:00Z", **reading}]}


def _only(payload: Any) -> NormalizedReading:
    (reading,) = _normalize(payload)
    assert isinstance(reading, NormalizedReading)
    return reading


def _rejection(payload: Any) -> RejectedReading:
    (rejected,) = _normalize(payload)
    assert isinstance(rejected, RejectedReading)
    return rejected


@dataclass(frozen=True)
class Expected:
    template: str
    kind: ReadingKind
    codes: list[str]
    values: dict[str, float]
    unit: str
    originals: dict[str, tuple[float, str]]
    pulse: float | None = None


def _vendor_a(type_: str, **fields: Any) -> dict[str, Any]:
    return {"measurements": [{"type": type_, "ts": EPOCH_0800, **fields}]}


def _vendor_b(device_type: str, **fields: Any) -> dict[str, Any]:
    return {"deviceType": device_type, "measuredAt": "2025-03-01T08:00:00Z", **fields}


def _bp(
    template: str,
    systolic: float,
    diastolic: float,
    originals: dict[str, tuple[float, str]],
    pulse: float | None = None,
) -> Expected:
    values = {"systolic": systolic, "diastolic": diastolic}
    return Expected(template, BP, ["85354-9"], values, "mm[Hg]", originals, pulse)


def _single(
    template: str,
    kind: ReadingKind,
    codes: list[str],
    value: float,
    unit: str,
    original: tuple[float, str],
    pulse: float | None = None,
) -> Expected:
    return Expected(template, kind, codes, {"value": value}, unit, {"value": original}, pulse)


MMHG_128_82 = {"systolic": (128, "mmHg"), "diastolic": (82, "mmHg")}
KPA_17_1_10_9 = {"systolic": (17.1, "kPa"), "diastolic": (10.9, "kPa")}
GLUCOSE = ReadingKind.GLUCOSE
WEIGHT = ReadingKind.BODY_WEIGHT
SPO2 = ReadingKind.OXYGEN_SATURATION
CAPILLARY = ["41653-7", "2339-0"]
SPO2_CODES = ["59408-5", "2708-6"]

# fmt: off
CASES: list[tuple[str, Any, Expected]] = [
    ("generic-bp-mmhg",
     _generic(kind="bp", systolic=128, diastolic=82, pulse=70, unit="mmHg"),
     _bp("generic", 128, 82, MMHG_128_82, pulse=70)),
    # 17.1 kPa x 1000/133.3220 = 128.261 mm[Hg]; 10.9 kPa = 81.757 mm[Hg]
    ("generic-bp-kpa",
     _generic(kind="bp", systolic=17.1, diastolic=10.9, unit="kPa"),
     _bp("generic", 128.3, 81.8, KPA_17_1_10_9)),
    # 6.1 mmol/L x 18.0156 = 109.895 mg/dL
    ("generic-glucose-mmol",
     _generic(kind="glucose", value=6.1, unit="mmol/L"),
     _single("generic", GLUCOSE, ["2339-0"], 109.9, "mg/dL", (6.1, "mmol/L"))),
    ("generic-glucose-capillary",
     _generic(kind="glucose", value=110, unit="mg/dL", specimen="capillary"),
     _single("generic", GLUCOSE, CAPILLARY, 110, "mg/dL", (110, "mg/dL"))),
    # 180 lb x 0.45359237 = 81.6466 kg
    ("generic-weight-lb",
     _generic(kind="weight", value=180, unit="lb"),
     _single("generic", WEIGHT, ["29463-7"], 81.65, "kg", (180, "lb"))),
    ("generic-spo2",
     _generic(kind="spo2", value=97, unit="%"),
     _single("generic", SPO2, SPO2_CODES, 97, "%", (97, "%"))),
    ("generic-heart-rate",
     _generic(kind="hr", value=64, unit="bpm"),
     _single("generic", HR, ["8867-4"], 64, "/min", (64, "bpm"))),
    ("vendor-a-bp",
     _vendor_a("blood_pressure", sys=128, dia=82, pul=70),
     _bp("vendor-a-bp", 128, 82, MMHG_128_82, pulse=70)),
    ("vendor-a-glucose",
     _vendor_a("blood_glucose", glu=110),
     _single("vendor-a-glucose", GLUCOSE, CAPILLARY, 110, "mg/dL", (110, "mg/dL"))),
    ("vendor-a-scale",
     _vendor_a("weight", grams=81650),
     _single("vendor-a-scale", WEIGHT, ["29463-7"], 81.65, "kg", (81650, "g"))),
    ("vendor-a-oximeter",
     _vendor_a("spo2", spo2=97, pr=72),
     _single("vendor-a-oximeter", SPO2, SPO2_CODES, 97, "%", (97, "%"), pulse=72)),
    ("vendor-b-bp-kpa",
     _vendor_b("BPM", systolic=17.1, diastolic=10.9, pressureUnit="kPa", heartRate=70,
               measuredAt="2025-03-01T09:00:00+01:00"),
     _bp("vendor-b-bp", 128.3, 81.8, KPA_17_1_10_9, pulse=70)),
    ("vendor-b-bp-default-unit",
     _vendor_b("BPM", systolic=128, diastolic=82),
     _bp("vendor-b-bp", 128, 82, MMHG_128_82)),
    # 7.2 mmol/L x 18.0156 = 129.712 mg/dL
    ("vendor-b-glucose",
     _vendor_b("GLUCOMETER", glucose=7.2, glucoseUnit="mmol/L", sampleSite="fingertip",
               measuredAt="2025-03-01T03:00:00-05:00"),
     _single("vendor-b-glucose", GLUCOSE, CAPILLARY, 129.7, "mg/dL", (7.2, "mmol/L"))),
    # 12.5 st x 14 x 0.45359237 = 79.3787 kg
    ("vendor-b-scale-stone",
     _vendor_b("SCALE", weight=12.5, weightUnit="st"),
     _single("vendor-b-scale", WEIGHT, ["29463-7"], 79.38, "kg", (12.5, "st"))),
    # 180.4 lb x 0.45359237 = 81.8281 kg
    ("vendor-b-scale-lbs",
     _vendor_b("SCALE", weight=180.4, weightUnit="lbs"),
     _single("vendor-b-scale", WEIGHT, ["29463-7"], 81.83, "kg", (180.4, "lbs"))),
    ("vendor-b-oximeter",
     {"deviceType": "OXIMETER", "spo2Percent": 97, "pulseRate": 72,
      "timestampMs": EPOCH_0800 * 1000},
     _single("vendor-b-oximeter", SPO2, SPO2_CODES, 97, "%", (97, "percent"), pulse=72)),
]
# fmt: on


class TestNormalizePayloadBuiltins:
    @pytest.mark.parametrize(
        ("payload", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
    )
    def test_reads_codes_and_canonical_values(self, payload: Any, expected: Expected) -> None:
        reading = _normalize(payload)[0]
        assert isinstance(reading, NormalizedReading)
        assert (reading.template, reading.kind) == (expected.template, expected.kind)
        assert [c.code for c in reading.codings] == expected.codes
        assert {m.name: m.value for m in reading.measurements} == expected.values
        assert {m.unit.code for m in reading.measurements} == {expected.unit}
        originals = {m.name: (m.original_value, m.original_unit) for m in reading.measurements}
        assert originals == expected.originals
        assert reading.effective == AT_0800
        assert (reading.flags, reading.clock_skew) == ((), None)

    @pytest.mark.parametrize(
        ("payload", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
    )
    def test_pulse_becomes_a_separate_heart_rate_reading(
        self, payload: Any, expected: Expected
    ) -> None:
        results = _normalize(payload)
        pulses = [r for r in results[1:] if isinstance(r, NormalizedReading)]
        assert [(p.kind, p.measurements[0].value) for p in pulses] == (
            [] if expected.pulse is None else [(HR, expected.pulse)]
        )
        assert all(p.codings[0].code == "8867-4" and p.effective == AT_0800 for p in pulses)

    def test_batch_keeps_payload_order_and_one_bad_reading_does_not_sink_it(self) -> None:
        payload = {
            "readings": [
                {"kind": "spo2", "time": "2025-03-01T08:00:00Z", "value": 97, "unit": "%"},
                {"kind": "spo2", "time": "2025-03-01T08:01:00Z", "unit": "%"},
                {"kind": "weight", "time": "2025-03-01T08:02:00Z", "value": 80, "unit": "kg"},
            ]
        }
        results = _normalize(payload)
        assert [type(r).__name__ for r in results] == [
            "NormalizedReading",
            "RejectedReading",
            "NormalizedReading",
        ]
        assert [r.location for r in results] == [f"$.readings[{i}]" for i in range(3)]

    def test_documented_generic_example_yields_five_observations(self) -> None:
        payload = {"readings": [
            {"kind": "bp", "time": "2025-03-01T08:00:00Z",
             "systolic": 128, "diastolic": 82, "pulse": 70, "unit": "mmHg"},
            {"kind": "glucose", "time": "2025-03-01T08:05:00Z", "value": 6.1, "unit": "mmol/L"},
            {"kind": "weight", "time": "2025-03-01T08:10:00Z", "value": 180, "unit": "lb"},
            {"kind": "spo2", "time": "2025-03-01T08:15:00Z", "value": 97, "unit": "%"},
        ]}  # fmt: skip
        results = _normalize(payload)
        assert [r.kind for r in results] == [BP, HR, GLUCOSE, WEIGHT, SPO2]
        assert len({r.dedupe_key for r in results}) == 5

    def test_keeps_patient_and_device_from_the_context(self) -> None:
        reading = _only(_generic(kind="spo2", value=97, unit="%"))
        assert (reading.device_id, reading.patient_id) == ("cuff-17", "pat-42")
        assert reading.received_at == RECEIVED_AT


class TestRejections:
    @pytest.mark.parametrize(
        ("reading", "reason"),
        [
            (
                {"kind": "temperature", "value": 37, "unit": "Cel"},
                "unknown kind 'temperature'; expected one of: bp, hr, glucose, weight, spo2",
            ),
            ({"value": 37, "unit": "%"}, "missing kind"),
            ({"kind": 5, "value": 97, "unit": "%"}, "kind must be text, got 5"),
            (
                {"kind": "bp", "systolic": 120, "unit": "mmHg"},
                "missing value 'diastolic' (path $.diastolic)",
            ),
            ({"kind": "spo2", "value": None, "unit": "%"}, "missing value 'value' (path $.value)"),
            ({"kind": "spo2", "value": "97", "unit": "%"}, "value 'value' is not a number: '97'"),
            ({"kind": "spo2", "value": True, "unit": "%"}, "value 'value' is not a number: True"),
            (
                {"kind": "spo2", "value": 10**400, "unit": "%"},
                "value 'value' is not a finite number",
            ),
            ({"kind": "spo2", "value": 97}, "missing unit"),
            ({"kind": "weight", "value": 80, "unit": "furlongs"}, "unknown unit 'furlongs'; known"),
            (
                {"kind": "bp", "systolic": 120, "diastolic": 80, "unit": "kg"},
                "unit 'kg' cannot express pressure",
            ),
            (
                {"kind": "glucose", "value": 5, "unit": "mmol/L", "specimen": "urine"},
                "unknown specimen 'urine'",
            ),
        ],
    )
    def test_unreadable_generic_reading_is_rejected_with_a_reason(
        self, reading: dict[str, Any], reason: str
    ) -> None:
        rejected = _rejection(_generic(**reading))
        assert rejected.reason.startswith(reason)
        assert (rejected.location, rejected.template) == ("$.readings[0]", "generic")

    @pytest.mark.parametrize(
        ("time", "reason"),
        [
            ("yesterday", "malformed time 'yesterday': Invalid isoformat string"),
            ("2025-03-01T08:00:00", "malformed time '2025-03-01T08:00:00': no UTC offset"),
            ("2025-02-30T08:00:00Z", "malformed time '2025-02-30T08:00:00Z'"),
            (1740816000, "malformed time 1740816000: expected ISO 8601 text"),
            (None, "missing time (path $.time)"),
        ],
    )
    def test_malformed_or_missing_time_is_rejected(self, time: Any, reason: str) -> None:
        payload = {"readings": [{"kind": "spo2", "time": time, "value": 97, "unit": "%"}]}
        assert _rejection(payload).reason.startswith(reason)

    def test_epoch_template_rejects_a_text_time(self) -> None:
        payload = {"measurements": [{"type": "spo2", "spo2": 97, "ts": "1740816000"}]}
        assert _rejection(payload).reason == (
            "malformed time '1740816000': expected a number of seconds since 1970-01-01T00:00:00Z"
        )

    def test_member_of_a_collection_no_template_claims_is_rejected(self) -> None:
        payload = {"measurements": [{"type": "temperature", "celsius": 37.2, "ts": EPOCH_0800}]}
        assert _rejection(payload) == RejectedReading(
            "no template matches this reading", "$.measurements[0]"
        )

    @pytest.mark.parametrize("payload", [{"foo": 1}, [1, 2], "text", None, {"deviceType": "TV"}])
    def test_payload_no_template_understands_gives_one_rejection(self, payload: Any) -> None:
        rejected = _rejection(payload)
        assert rejected.reason.startswith("no reading found that a template understands (tried: ")
        assert rejected.location == "$"

    def test_bad_pulse_rejects_only_the_heart_rate_reading(self) -> None:
        payload = _vendor_a("blood_pressure", sys=128, dia=82, pul="x")
        reading, rejected = _normalize(payload)
        assert isinstance(reading, NormalizedReading)
        assert reading.kind is BP
        assert rejected == RejectedReading(
            "heart rate: value 'pulse' is not a number: 'x'", "$.measurements[0]", "vendor-a-bp"
        )

    def test_glucometer_control_solution_test_is_rejected(self) -> None:
        payload = _vendor_b("GLUCOMETER", glucose=5.5, glucoseUnit="mmol/L", sampleSite="control")
        assert _rejection(payload).reason.startswith("unknown specimen 'control'; expected one of")


def _operator_template(**changes: Any) -> DeviceTemplate:
    document = {
        "name": "operator-bp",
        "readings": "$.readings[*]",
        "match": {"equals": {"$.kind": "bp"}},
        "kind": {"fixed": "blood-pressure"},
        "time": {"path": "$.time"},
        "values": {"systolic": "$.systolic", "diastolic": "$.diastolic"},
        "unit": {"fixed": "kPa"},
        **changes,
    }
    return parse_template(json.dumps(document), "operator-bp.json")


class TestUnmappedFields:
    """A template may read kind and specimen verbatim (no `map`); values must then be ours."""

    TEMPLATE = _operator_template(
        match={},
        kind={"path": "$.kind"},
        values={"systolic": "$.s", "diastolic": "$.d", "value": "$.v"},
        unit={"path": "$.unit"},
        specimen={"path": "$.specimen"},
    )

    def _results(self, **reading: Any) -> list[Any]:
        payload = {"readings": [{"time": "2025-03-01T08:00:00Z", "unit": "mg/dL", **reading}]}
        return normalize_payload(payload, CONTEXT, (self.TEMPLATE,))

    def test_verbatim_kind_and_specimen_are_used(self) -> None:
        (reading,) = self._results(kind="glucose", v=100, specimen="capillary")
        assert [c.code for c in reading.codings] == ["41653-7", "2339-0"]

    def test_unknown_verbatim_kind_is_rejected(self) -> None:
        (rejected,) = self._results(kind="bp", v=100)
        assert rejected.reason.startswith("unknown kind 'bp'; known kinds: blood-pressure")

    def test_unknown_verbatim_specimen_is_rejected(self) -> None:
        (rejected,) = self._results(kind="glucose", v=100, specimen="urine")
        assert rejected.reason == "unknown specimen 'urine'; known: blood, capillary"


class TestTemplatePriority:
    def test_first_template_to_claim_a_reading_wins(self) -> None:
        payload = _generic(kind="bp", systolic=16, diastolic=10, unit="kPa")
        (mine,) = normalize_payload(payload, CONTEXT, (_operator_template(), *BUILTINS))
        (builtin,) = normalize_payload(payload, CONTEXT, (*BUILTINS, _operator_template()))
        assert (mine.template, builtin.template) == ("operator-bp", "generic")

    def test_equals_is_strict_about_json_types(self) -> None:
        template = _operator_template(match={"equals": {"$.flag": True}})
        one = {
            "readings": [
                {"flag": 1, "time": "2025-03-01T08:00:00Z", "systolic": 16, "diastolic": 10}
            ]
        }
        assert isinstance(normalize_payload(one, CONTEXT, (template,))[0], RejectedReading)

    def test_present_requires_a_non_null_value(self) -> None:
        template = _operator_template(match={"present": ["$.systolic"]})
        payload = {"readings": [{"systolic": None, "time": "2025-03-01T08:00:00Z"}]}
        (rejected,) = normalize_payload(payload, CONTEXT, (template,))
        assert rejected == RejectedReading("no template matches this reading", "$.readings[0]")


class TestClockSkewInNormalization:
    def test_reading_far_in_the_future_is_kept_with_its_skew_recorded(self) -> None:
        reading = _only(_generic(kind="spo2", value=97, unit="%", time="2025-03-01T09:20:00Z"))
        assert reading.effective == datetime(2025, 3, 1, 9, 20, tzinfo=UTC)
        assert reading.clock_skew == ClockSkew(timedelta(minutes=20), timedelta(minutes=5))

    def test_threshold_is_a_parameter(self) -> None:
        payload = _generic(kind="spo2", value=97, unit="%", time="2025-03-01T09:20:00Z")
        (reading,) = _normalize(payload, max_future_skew=timedelta(minutes=30))
        assert reading.clock_skew is None

    def test_late_reading_is_accepted_without_skew(self) -> None:
        reading = _only(_generic(kind="spo2", value=97, unit="%", time="2025-02-20T08:00:00Z"))
        assert reading.clock_skew is None

    def test_out_of_order_readings_keep_payload_order(self) -> None:
        payload = {
            "readings": [
                {"kind": "spo2", "time": "2025-03-01T08:30:00Z", "value": 97, "unit": "%"},
                {"kind": "spo2", "time": "2025-03-01T07:30:00Z", "value": 96, "unit": "%"},
            ]
        }
        times = [r.effective.hour * 60 + r.effective.minute for r in _normalize(payload)]
        assert times == [8 * 60 + 30, 7 * 60 + 30]


class TestPlausibilityInNormalization:
    def test_implausible_blood_pressure_is_flagged_and_kept(self) -> None:
        reading = _only(_generic(kind="bp", systolic=320, diastolic=82, unit="mmHg"))
        assert reading.implausible
        assert [f.value_name for f in reading.flags] == ["systolic"]
        assert reading.measurements[0].value == 320

    def test_ranges_apply_to_the_canonical_value(self) -> None:
        # 900 lb = 408.23 kg: the 400 kg bound is checked after conversion, whatever the unit.
        reading = _only(_generic(kind="weight", value=900, unit="lb"))
        assert reading.flags[0].message.startswith("body-weight 408.23 kg is above")


# Every second from 2000-01-01 to 2040-01-01, as aware UTC datetimes.
_TIMES = st.integers(946_684_800, 2_208_988_800).map(lambda s: datetime.fromtimestamp(s, UTC))
_NUMBERS = st.integers(-10, 2000) | st.floats(-10, 2000, allow_nan=False)


def _reading(kind: str, unit: st.SearchStrategy[str], **values: Any) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {"kind": st.just(kind), "time": _TIMES.map(datetime.isoformat), "unit": unit, **values}
    )


_READINGS = st.one_of(
    _reading("bp", st.sampled_from(["mmHg", "kPa"]), systolic=_NUMBERS, diastolic=_NUMBERS),
    _reading("glucose", st.sampled_from(["mmol/L", "mg/dL", "kg"]), value=_NUMBERS),
    _reading("weight", st.sampled_from(["lb", "kg", "g", "st"]), value=_NUMBERS, pulse=_NUMBERS),
    _reading("spo2", st.sampled_from(["%", "percent"]), value=_NUMBERS),
    st.dictionaries(st.sampled_from(["kind", "time", "value", "unit"]), st.text(max_size=4)),
)
_PAYLOADS = st.lists(_READINGS, max_size=4).map(lambda readings: {"readings": readings})


class TestNormalizationProperties:
    @given(payload=_PAYLOADS)
    def test_is_deterministic(self, payload: dict[str, Any]) -> None:
        assert _normalize(payload) == _normalize(json.loads(json.dumps(payload)))

    @given(payload=_PAYLOADS)
    def test_every_reading_yields_at_least_one_result(self, payload: dict[str, Any]) -> None:
        locations = {r.location for r in _normalize(payload)}
        expected = {f"$.readings[{i}]" for i in range(len(payload["readings"]))} or {"$"}
        assert locations == expected

    @given(reading=_READINGS, data=st.data())
    def test_dedupe_key_is_stable_under_field_order(
        self, reading: dict[str, Any], data: st.DataObject
    ) -> None:
        order = data.draw(st.permutations(list(reading)))
        shuffled = {key: reading[key] for key in order}
        keys = [getattr(r, "dedupe_key", None) for r in _normalize({"readings": [reading]})]
        assert keys == [
            getattr(r, "dedupe_key", None) for r in _normalize({"readings": [shuffled]})
        ]

    @given(
        systolic=st.integers(301, 10_000) | st.integers(-1000, 49),
        diastolic=st.integers(20, 200),
    )
    def test_implausible_reading_is_flagged_never_dropped(
        self, systolic: int, diastolic: int
    ) -> None:
        reading = _only(_generic(kind="bp", systolic=systolic, diastolic=diastolic, unit="mmHg"))
        assert reading.implausible
        assert reading.measurements[0].value == systolic
