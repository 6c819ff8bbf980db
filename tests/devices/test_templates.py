"""Template format, loading and validation errors that name the file and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from carebridge.devices.kinds import ReadingKind
from carebridge.devices.templates import (
    DeviceTemplate,
    TemplateError,
    TimeFormat,
    builtin_templates,
    combine,
    load_template_file,
    load_templates,
    parse_template,
)

VALID: dict[str, Any] = {
    "name": "vendor-x-bp",
    "readings": "$.data[*]",
    "match": {"present": ["$.sbp"], "equals": {"$.kind": "bp"}},
    "kind": {"fixed": "blood-pressure"},
    "time": {"path": "$.at", "format": "epoch_millis"},
    "values": {"systolic": "$.sbp", "diastolic": "$.dbp"},
    "unit": {"fixed": "kPa"},
}


def _with(**changes: Any) -> dict[str, Any]:
    return {**VALID, **changes}


def _write(directory: Path, name: str, document: dict[str, Any]) -> Path:
    path = directory / name
    path.write_text(json.dumps(document))
    return path


def _error(document: dict[str, Any]) -> str:
    with pytest.raises(TemplateError) as caught:
        parse_template(json.dumps(document), "vendor-x.json")
    return str(caught.value)


class TestBuiltinTemplates:
    def test_ship_the_generic_format_and_two_vendor_styles_per_device(self) -> None:
        names = [t.name for t in builtin_templates()]
        assert names == [
            "generic",
            "vendor-a-bp",
            "vendor-a-glucose",
            "vendor-a-oximeter",
            "vendor-a-scale",
            "vendor-b-bp",
            "vendor-b-glucose",
            "vendor-b-oximeter",
            "vendor-b-scale",
        ]

    @pytest.mark.parametrize(
        "kind",
        [
            ReadingKind.BLOOD_PRESSURE,
            ReadingKind.GLUCOSE,
            ReadingKind.BODY_WEIGHT,
            ReadingKind.OXYGEN_SATURATION,
        ],
    )
    def test_cover_each_device_kind_with_at_least_two_vendor_styles(
        self, kind: ReadingKind
    ) -> None:
        vendors = [t for t in builtin_templates() if t.possible_kinds() == (kind,)]
        assert len(vendors) >= 2

    def test_generic_template_reads_every_kind(self) -> None:
        generic = builtin_templates()[0]
        assert set(generic.possible_kinds()) == set(ReadingKind)


class TestParseTemplate:
    def test_reads_a_valid_template_with_defaults(self) -> None:
        template = parse_template(json.dumps(VALID), "vendor-x.json")
        assert isinstance(template, DeviceTemplate)
        assert template.time.format is TimeFormat.EPOCH_MILLIS
        assert template.specimen is None
        assert template.description == ""

    def test_kind_read_unmapped_from_the_payload_may_be_any_kind(self) -> None:
        values = {"systolic": "$.s", "diastolic": "$.d", "value": "$.v"}
        template = parse_template(
            json.dumps(_with(kind={"path": "$.k"}, values=values, unit={"path": "$.u"})), "x.json"
        )
        assert template.possible_kinds() == tuple(ReadingKind)

    def test_malformed_json_names_the_file(self) -> None:
        with pytest.raises(TemplateError, match=r"^vendor-x\.json: Invalid JSON"):
            parse_template("{not json", "vendor-x.json")

    def test_missing_field_names_it(self) -> None:
        document = {key: value for key, value in VALID.items() if key != "time"}
        assert _error(document) == "vendor-x.json: time: Field required"

    def test_unknown_field_is_refused(self) -> None:
        assert "vendor-x.json: colour: Extra inputs are not permitted" in _error(_with(colour=1))

    def test_invalid_path_names_the_value_and_the_problem(self) -> None:
        message = _error(_with(values={"systolic": "sbp", "diastolic": "$.dbp"}))
        assert message == "vendor-x.json: values.systolic: JSON path 'sbp' must start with '$'"

    def test_path_outside_the_subset_is_refused_at_load_time(self) -> None:
        message = _error(_with(readings="$..data"))
        assert message.startswith("vendor-x.json: readings: JSON path '$..data': unsupported")

    def test_invalid_match_path_names_the_match_field(self) -> None:
        message = _error(_with(match={"equals": {"kind": "bp"}}))
        assert "vendor-x.json: match.equals.kind.[key]: JSON path 'kind'" in message

    def test_unknown_fixed_kind_lists_the_known_kinds(self) -> None:
        message = _error(_with(kind={"fixed": "temperature"}))
        assert "kind.fixed: unknown kind 'temperature'; known kinds: blood-pressure" in message

    def test_unknown_mapped_kind_is_refused(self) -> None:
        message = _error(_with(kind={"path": "$.k", "map": {"t": "temperature"}}))
        assert "kind.map: unknown kind 'temperature'" in message

    def test_missing_required_value_is_named(self) -> None:
        message = _error(_with(values={"systolic": "$.sbp"}))
        assert message == "vendor-x.json: values: missing 'diastolic'"

    def test_value_name_foreign_to_the_kind_is_named(self) -> None:
        message = _error(_with(values={"systolic": "$.s", "diastolic": "$.d", "value": "$.v"}))
        assert "values.value: not a value of blood-pressure" in message

    def test_unknown_fixed_unit_is_refused(self) -> None:
        message = _error(_with(unit={"fixed": "psi"}))
        assert "unit.fixed: unknown unit 'psi'" in message

    def test_fixed_unit_of_the_wrong_measure_is_refused(self) -> None:
        message = _error(_with(unit={"fixed": "mmol/L"}))
        assert "unit.fixed: unit 'mmol/L' cannot express pressure" in message

    def test_unknown_specimen_is_refused(self) -> None:
        message = _error(_with(specimen={"fixed": "urine"}))
        assert "specimen: unknown specimen 'urine'; known: blood, capillary" in message

    def test_source_needs_exactly_one_of_path_or_fixed(self) -> None:
        message = _error(_with(unit={"path": "$.u", "fixed": "kPa"}))
        assert message == "vendor-x.json: unit: give exactly one of 'path' or 'fixed'"

    def test_default_only_applies_to_a_path(self) -> None:
        message = _error(_with(unit={"fixed": "kPa", "default": "mmHg"}))
        assert message == "vendor-x.json: unit: 'default' and 'map' only apply to a 'path'"

    def test_name_must_be_a_lowercase_slug(self) -> None:
        assert "vendor-x.json: name: String should match pattern" in _error(_with(name="Vendor X"))

    def test_unknown_time_format_is_refused(self) -> None:
        message = _error(_with(time={"path": "$.at", "format": "rfc822"}))
        assert "vendor-x.json: time.format: Input should be 'iso8601'" in message

    def test_several_problems_are_reported_together(self) -> None:
        message = _error(_with(values={"systolic": "$.s"}, unit={"fixed": "psi"}))
        lines = message.splitlines()
        assert [line.split(": ")[:2] for line in lines] == [
            ["vendor-x.json", "values"],
            ["vendor-x.json", "unit.fixed"],
        ]

    def test_value_names_are_not_checked_against_an_unknown_kind(self) -> None:
        message = _error(_with(kind={"fixed": "temperature"}, unit={"fixed": "psi"}))
        assert len(message.splitlines()) == 1


class TestLoadTemplates:
    def test_loads_every_json_file_in_name_order(self, tmp_path: Path) -> None:
        _write(tmp_path, "b.json", _with(name="second"))
        _write(tmp_path, "a.json", _with(name="first"))
        (tmp_path / "notes.txt").write_text("ignored")
        assert [t.name for t in load_templates(tmp_path)] == ["first", "second"]

    def test_error_names_the_failing_file(self, tmp_path: Path) -> None:
        _write(tmp_path, "ok.json", VALID)
        _write(tmp_path, "broken.json", _with(unit={"fixed": "psi"}))
        with pytest.raises(TemplateError, match=r"^broken\.json: unit\.fixed") as caught:
            load_templates(tmp_path)
        assert caught.value.source == "broken.json"

    def test_duplicate_names_are_refused(self, tmp_path: Path) -> None:
        _write(tmp_path, "a.json", VALID)
        _write(tmp_path, "b.json", VALID)
        with pytest.raises(
            TemplateError, match=r"b\.json: name: 'vendor-x-bp' is already used by a"
        ):
            load_templates(tmp_path)

    def test_missing_directory_is_an_error(self, tmp_path: Path) -> None:
        with pytest.raises(TemplateError, match="not a directory"):
            load_templates(tmp_path / "absent")

    def test_empty_directory_loads_nothing(self, tmp_path: Path) -> None:
        assert load_templates(tmp_path) == ()


class TestLoadTemplateFile:
    def test_loads_one_file_and_names_it_in_errors(self, tmp_path: Path) -> None:
        path = _write(tmp_path, "x.json", _with(name="bad name"))
        with pytest.raises(TemplateError, match=r"^x\.json: name"):
            load_template_file(path)


class TestCombine:
    def test_keeps_priority_order(self) -> None:
        operator = (parse_template(json.dumps(VALID), "x.json"),)
        combined = combine(operator, builtin_templates())
        assert combined[0].name == "vendor-x-bp"
        assert len(combined) == 1 + len(builtin_templates())

    def test_refuses_an_operator_template_reusing_a_builtin_name(self) -> None:
        clash = (parse_template(json.dumps(_with(name="generic")), "x.json"),)
        with pytest.raises(TemplateError, match="'generic' is already used"):
            combine(clash, builtin_templates())
