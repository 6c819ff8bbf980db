"""Declarative device templates: which payloads a vendor sends and how to read them.

In the spirit of the IoMT FHIR connector's "device content" templates
(https://learn.microsoft.com/azure/healthcare-apis/iot/overview-of-device-mapping), a template
selects reading objects in a payload, decides by a type discriminator whether it understands each,
and names where the kind, time, values, unit and specimen are. Emitting the FHIR Observation is
not configurable: it follows from the reading kind (see `mapping`), so every vendor's readings
come out coded the same way. Templates are JSON, one per file, so an operator adds a vendor
by dropping a file in a directory; docs/devices.md describes the format.

Every path is validated when the template is loaded (see `jsonpath` for the subset), as are kinds,
fixed units and the value names each kind requires. Errors name the file and the field:
`vendor-x.json: values.systolic: JSON path 'sys' must start with '$'`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from carebridge.devices import jsonpath
from carebridge.devices.kinds import (
    ReadingKind,
    Specimen,
    allowed_values,
    kind_spec,
    required_values,
)
from carebridge.devices.units import UnitError, factor_to_canonical, ucum_code

BUILTIN_DIRECTORY = "vendors"
_KIND_VALUES = frozenset(kind.value for kind in ReadingKind)
_SPECIMEN_VALUES = frozenset(specimen.value for specimen in Specimen)


def _check_path(text: str) -> str:
    jsonpath.parse(text)
    return text


PathText = Annotated[str, AfterValidator(_check_path)]
Scalar = str | int | float | bool


class TemplateError(ValueError):
    """A template file that cannot be used; the message names the file and the fields."""

    def __init__(self, source: str, problems: Iterable[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__("\n".join(f"{source}: {problem}" for problem in self.problems))


class TimeFormat(StrEnum):
    ISO8601 = "iso8601"  # must carry a UTC offset or Z
    EPOCH_SECONDS = "epoch_seconds"
    EPOCH_MILLIS = "epoch_millis"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSource(_Model):
    """Where a text field comes from: a `fixed` value, or a `path` with optional `default`
    (used when the path selects nothing or null) and `map` (payload value -> our value)."""

    path: PathText | None = None
    fixed: str | None = None
    default: str | None = None
    map: dict[str, str] | None = None

    @model_validator(mode="after")
    def _path_or_fixed(self) -> Self:
        if (self.path is None) == (self.fixed is None):
            raise ValueError("give exactly one of 'path' or 'fixed'")
        if self.fixed is not None and (self.default is not None or self.map is not None):
            raise ValueError("'default' and 'map' only apply to a 'path'")
        return self

    def possible_values(self) -> tuple[str, ...] | None:
        """Every value this source can yield, or None when the payload decides freely."""
        if self.fixed is not None:
            return (self.fixed,)
        if self.map is not None:
            return tuple(dict.fromkeys(self.map.values()))
        return None


class TimeSource(_Model):
    path: PathText
    format: TimeFormat = TimeFormat.ISO8601


class MatchRule(_Model):
    """A reading object matches when every `present` path selects a non-null value and every
    `equals` path selects exactly the given JSON scalar (the type discriminator)."""

    present: tuple[PathText, ...] = ()
    equals: dict[PathText, Scalar] = Field(default_factory=dict)


class DeviceTemplate(_Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    readings: PathText = "$"
    match: MatchRule = MatchRule()
    kind: FieldSource
    time: TimeSource
    values: dict[str, PathText]
    unit: FieldSource
    specimen: FieldSource | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        # Value names and a fixed unit are checked against the kinds, so only once those are known.
        problems = self._kind_problems() or [*self._value_problems(), *self._unit_problems()]
        problems += self._specimen_problems()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def possible_kinds(self) -> tuple[ReadingKind, ...]:
        values = self.kind.possible_values()
        if values is None:
            return tuple(ReadingKind)
        return tuple(ReadingKind(v) for v in values if v in _KIND_VALUES)

    def _kind_problems(self) -> list[str]:
        where = "kind.fixed" if self.kind.fixed is not None else "kind.map"
        known = ", ".join(ReadingKind)
        return [
            f"{where}: unknown kind {value!r}; known kinds: {known}"
            for value in self.kind.possible_values() or ()
            if value not in _KIND_VALUES
        ]

    def _value_problems(self) -> list[str]:
        kinds = self.possible_kinds()
        allowed = {name for kind in kinds for name in allowed_values(kind)}
        required = {name for kind in kinds for name in required_values(kind)}
        unknown = sorted(set(self.values) - allowed)
        missing = sorted(required - set(self.values))
        problems = [f"values.{name}: not a value of {'/'.join(kinds)}" for name in unknown]
        return problems + [f"values: missing {name!r}" for name in missing]

    def _unit_problems(self) -> list[str]:
        if self.unit.fixed is None:
            return []
        try:
            code = ucum_code(self.unit.fixed)
            for kind in self.possible_kinds():
                factor_to_canonical(code, kind_spec(kind).slots[0].measure)
        except UnitError as error:
            return [f"unit.fixed: {error}"]
        return []

    def _specimen_problems(self) -> list[str]:
        values = self.specimen.possible_values() if self.specimen else None
        known = ", ".join(Specimen)
        return [
            f"specimen: unknown specimen {value!r}; known: {known}"
            for value in values or ()
            if value not in _SPECIMEN_VALUES
        ]


def _problems(error: ValidationError) -> list[str]:
    """One line per problem; cross-field problems already start with the field they concern."""
    problems = []
    for detail in error.errors():
        where = "".join(f"{part}." for part in detail["loc"])
        for line in detail["msg"].removeprefix("Value error, ").splitlines():
            problems.append(f"{where.rstrip('.')}: {line}" if where else line)
    return problems


def parse_template(text: str | bytes, source: str) -> DeviceTemplate:
    """Validate one template document; `source` names it in errors (usually the file name)."""
    try:
        return DeviceTemplate.model_validate_json(text)
    except ValidationError as error:
        raise TemplateError(source, _problems(error)) from error


def load_template_file(path: Path) -> DeviceTemplate:
    return parse_template(path.read_bytes(), path.name)


def _unique(templates: list[DeviceTemplate], sources: list[str]) -> tuple[DeviceTemplate, ...]:
    seen: dict[str, str] = {}
    for template, source in zip(templates, sources, strict=True):
        if template.name in seen:
            problem = f"name: {template.name!r} is already used by {seen[template.name]}"
            raise TemplateError(source, [problem])
        seen[template.name] = source
    return tuple(templates)


def load_templates(directory: Path) -> tuple[DeviceTemplate, ...]:
    """Every `*.json` template in a directory, in file-name order (the matching priority)."""
    if not directory.is_dir():
        raise TemplateError(str(directory), ["not a directory"])
    files = sorted(directory.glob("*.json"))
    return _unique([load_template_file(f) for f in files], [f.name for f in files])


def builtin_templates() -> tuple[DeviceTemplate, ...]:
    """The templates shipped in `carebridge/devices/vendors/`, in file-name order."""
    directory = resources.files("carebridge.devices") / BUILTIN_DIRECTORY
    files = sorted((f for f in directory.iterdir() if f.name.endswith(".json")), key=_name)
    return _unique([parse_template(f.read_bytes(), f.name) for f in files], [f.name for f in files])


def _name(entry: Traversable) -> str:
    return entry.name


def combine(*groups: Iterable[DeviceTemplate]) -> tuple[DeviceTemplate, ...]:
    """Concatenate template groups in priority order, refusing duplicate names.

    Operators put their own directory first so their templates win over built-ins that match the
    same reading; a duplicate name is an error rather than a silent override.
    """
    templates = [t for group in groups for t in group]
    return _unique(templates, [f"template {t.name}" for t in templates])
