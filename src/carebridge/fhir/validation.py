"""Validation of incoming resources against the FHIR R4 (4.0.1) definitions.

Structure: the `fhir.resources` R4B models (ADR 0008), except where R4B is not R4's structure.
Compared element by element with the R4 StructureDefinitions, the R4B models differ for:
- Evidence and EvidenceVariable, redesigned in R4B: validated with models built from their R4
  elements instead (`definitions/r4_models.py`);
- the eighteen R4 types R4B removed (MedicinalProduct*, Substance* families,
  EffectEvidenceSynthesis, RiskEvidenceSynthesis): shape check only;
- the open type `value[x]`: R4B dropped `Meta` (R4 `Extension.valueMeta`,
  `ElementDefinition.fixedMeta` ...) and added CodeableReference and RatioRange; not corrected.
Nested resources (`contained`, `Bundle.entry.resource`) of the types above are set aside from the
R4B model of their container and validated with their own model.

Codes: a `code` element is closed to a list only where R4 binds it `required` to a value set that
enumerates its codes (terminologies.html#required), from `definitions/required_codes_r4.json`.
Extensible and preferred bindings, and required ones to open value sets such as MIME types
(`CapabilityStatement.format`, `Attachment.contentType`), accept any code; the models' own
`enum_values`, parsed from short descriptions ("xml | json | ttl | mime type", "... | etc."), are
not used.

Every problem becomes an OperationOutcome issue whose `expression` is the FHIRPath of the
element, e.g. `Patient.name[0].given`, so a client can point at the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from functools import cache
from importlib import resources
from itertools import islice
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from fhir.resources.R4B import get_fhir_model_class
from pydantic import BaseModel, ValidationError

from carebridge.fhir.definitions.r4_models import r4_model, r4_types
from carebridge.fhir.search.parameters import registry
from carebridge.kit.errors import Issue, ValidationFailedError
from carebridge.kit.ids import is_valid_id

_MAX_ISSUES = 20


# R4 resource types that are never stored (they have no search parameters, so `known_type` is
# false for them): why, for the diagnostic
_NOT_STORED = {
    "Parameters": "has no RESTful endpoint in R4 (parameters.html): it carries the parameters of"
    " an operation and is not stored",
}


def known_type(resource_type: str) -> bool:
    return resource_type in registry().resource_types


def check_shape(body: Any, *, expected_type: str | None = None) -> dict[str, Any]:
    """Cheap checks every write path applies: a JSON object of a known R4 type with a valid id."""
    if not isinstance(body, dict):
        raise ValidationFailedError([Issue("error", "structure", "the body must be a JSON object")])
    rtype = body.get("resourceType")
    if not isinstance(rtype, str) or not known_type(rtype):
        reason = _NOT_STORED.get(rtype) if isinstance(rtype, str) else None
        message = f"resourceType {rtype!r} " + (reason or "is not an R4 resource type")
        raise ValidationFailedError([Issue("error", "structure", message)])
    if expected_type and rtype != expected_type:
        raise ValidationFailedError(
            [
                Issue(
                    "error",
                    "invalid",
                    f"resourceType {rtype} does not match the URL's {expected_type}",
                    (f"{rtype}.resourceType",),
                )
            ]
        )
    rid = body.get("id")
    if rid is not None and (not isinstance(rid, str) or not is_valid_id(rid)):
        raise ValidationFailedError(
            [
                Issue(
                    "error",
                    "value",
                    f"id {rid!r} is not a valid FHIR id ([A-Za-z0-9-.]{{1,64}})",
                    (f"{rtype}.id",),
                )
            ]
        )
    return body


def validate_resource(body: Any, *, expected_type: str | None = None) -> dict[str, Any]:
    """Full structural validation; raises ValidationFailedError listing every problem found."""
    resource = check_shape(body, expected_type=expected_type)
    rtype = resource["resourceType"]
    model = _model(rtype)
    if model is None:  # R4 types without an R4B model (see ADR 0008): shape check only
        return resource
    json_issues = list(islice(_json_issues(model, resource, rtype, rtype), _MAX_ISSUES))
    if json_issues:
        raise ValidationFailedError(json_issues)
    issues = list(islice(_model_issues(model, resource, rtype), _MAX_ISSUES))
    if issues:
        raise ValidationFailedError(issues)
    return resource


def _model_issues(model: Any, resource: dict[str, Any], path: str) -> Iterator[Issue]:
    """The model's verdict on `resource`; nested resources the R4B models cannot validate (their
    type has an R4 model, or no R4B model) are replaced by a stand-in and validated on their own.
    """
    set_aside: list[tuple[tuple[str | int, ...], dict[str, Any]]] = []
    _find_set_aside(resource, [], set_aside)
    checked = resource
    for trail, _ in set_aside:
        checked = _replaced(checked, trail, _STAND_IN)
    try:
        model.model_validate(checked)
    except ValidationError as exc:
        yield from _issues(path, exc)
    except (TypeError, ValueError) as exc:  # some model validators raise plain errors
        yield Issue("error", "structure", str(exc)[:500])
    for trail, nested in set_aside:
        nested_model = _model(nested["resourceType"])
        if nested_model is not None:
            yield from _model_issues(nested_model, nested, fhirpath_of(path, trail))


# a valid resource in every place a resource may be nested, standing in for one set aside
_STAND_IN = {"resourceType": "Basic", "code": {"text": "validated separately"}}


def _find_set_aside(
    node: Any, trail: list[str | int], found: list[tuple[tuple[str | int, ...], dict[str, Any]]]
) -> None:
    if isinstance(node, dict):
        rtype = node.get("resourceType")
        if trail and isinstance(rtype, str) and _own_model_needed(rtype):
            found.append((tuple(trail), node))
            return
        items: Iterable[tuple[str | int, Any]] = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return
    for key, value in items:
        if isinstance(value, dict | list):
            trail.append(key)
            _find_set_aside(value, trail, found)
            trail.pop()


def _replaced(node: Any, trail: tuple[str | int, ...], value: Any) -> Any:
    """A copy of `node` with the element at `trail` replaced; the rest is shared."""
    if not trail:
        return value
    head, rest = trail[0], trail[1:]
    if isinstance(node, list) and isinstance(head, int):
        return [*node[:head], _replaced(node[head], rest, value), *node[head + 1 :]]
    return {**node, head: _replaced(node[head], rest, value)}


@cache
def _own_model_needed(resource_type: str) -> bool:
    return known_type(resource_type) and (
        resource_type in r4_types() or _r4b_model(resource_type) is None
    )


@cache
def _model(resource_type: str) -> Any:
    """The model R4 content of `resource_type` is validated with (None: shape check only)."""
    return r4_model(resource_type) or _r4b_model(resource_type)


@cache
def _r4b_model(resource_type: str) -> Any:
    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError):
        return None


@cache
def summary_elements(resource_type: str) -> frozenset[str]:
    """Top-level JSON keys marked isSummary in the R4 definition (`_summary=true`)."""
    return _top_level_keys(resource_type, _is_summary)


@cache
def mandatory_elements(resource_type: str) -> frozenset[str]:
    """Top-level JSON keys with minimum cardinality 1 (a choice counts with all its types)."""
    return _top_level_keys(resource_type, _is_mandatory)


def _is_summary(info: Any) -> bool:
    return bool(_extra(info).get("summary_element_property"))


def _is_mandatory(info: Any) -> bool:
    extra = _extra(info)
    return bool(
        info.is_required() or extra.get("element_required") or extra.get("one_of_many_required")
    )


def _top_level_keys(resource_type: str, wanted: Callable[[Any], bool]) -> frozenset[str]:
    model = _model(resource_type)
    if model is None:
        return frozenset()
    keys = {info.alias or name for name, info in model.model_fields.items() if wanted(info)}
    return frozenset(keys | {f"_{k}" for k in keys})


def _extra(info: Any) -> dict[str, Any]:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def _issues(resource_path: str, exc: ValidationError) -> list[Issue]:
    issues = []
    for error in exc.errors()[:_MAX_ISSUES]:
        path = fhirpath_of(resource_path, error["loc"])
        message = f"{path}: {error['msg']}"
        code = "required" if error["type"] == "missing" else "structure"
        if error["type"] == "extra_forbidden":
            message = f"{path}: unknown element"
        issues.append(Issue("error", code, message, (path,)))
    return issues


def fhirpath_of(resource_type: str, loc: tuple[int | str, ...]) -> str:
    """pydantic's error location -> FHIRPath (`('name', 0, 'given')` -> `Patient.name[0].given`)."""
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith("function-") or part == "__root__":
            continue
        else:
            path += f".{part.removesuffix('__ext')}"
    return path


# -- FHIR JSON representation rules (R4 json.html) -------------------------------------------------
# The models coerce leniently ("yes" -> true, "2" -> 2) and accept null and empty arrays; the JSON
# format allows none of these, so the raw JSON is checked against the models' element types first.

_JSON_KINDS: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "integer": (int,),
    "decimal": (int, float),
    "string": (str,),
}


def _json_issues(model: Any, node: dict[str, Any], path: str, defined: str) -> Iterator[Issue]:
    """Problems with `node` as the FHIR JSON form of `model`: nulls, empty arrays or objects,
    primitives of the wrong JSON type, codes outside a closed required binding. `defined` is the
    element's path in the R4 definitions (`Timing.repeat` for any Timing's `repeat`). Unknown
    elements are left to the model validation."""
    kinds = _element_kinds(model)
    for key, value in node.items():
        if key == "resourceType":
            continue
        where = f"{path}.{key}"
        kind, codes = kinds.get(key), _terminology().codes.get(f"{defined}.{key}")
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not value:
            yield Issue("error", "structure", f"{where}: arrays must not be empty", (where,))
        # a null keeps primitives and their `_name` extensions aligned (json.html#primitive)
        nulls_allowed = isinstance(value, list) and (
            isinstance(node.get(f"_{key}"), list) or key.startswith("_")
        )
        for index, item in enumerate(items):
            at = f"{where}[{index}]" if isinstance(value, list) else where
            if item is None and nulls_allowed:
                continue
            yield from _value_issues(kind, item, at, _child_definition(defined, key, kind))
            if codes and isinstance(item, str) and item not in codes:
                yield Issue(
                    "error", "code-invalid", f"{at}: {item!r} is not one of {sorted(codes)}", (at,)
                )


def _value_issues(kind: Any, value: Any, where: str, defined: str) -> Iterator[Issue]:
    if value is None:
        yield Issue("error", "structure", f"{where}: null is not allowed in FHIR JSON", (where,))
    elif isinstance(value, dict):
        yield from _object_issues(kind, value, where, defined)
    elif isinstance(kind, str) and kind in _JSON_KINDS:
        expected = _JSON_KINDS[kind]
        if not isinstance(value, expected) or (kind != "boolean" and isinstance(value, bool)):
            yield _wrong_type(where, kind)
    elif kind is not None and not isinstance(kind, str):
        yield _wrong_type(where, "object")


def _object_issues(kind: Any, value: dict[str, Any], where: str, defined: str) -> Iterator[Issue]:
    if not value:
        yield Issue("error", "structure", f"{where}: objects must not be empty", (where,))
    elif kind == "resource":
        rtype = value.get("resourceType")
        if isinstance(rtype, str) and (contained := _model(rtype)) is not None:
            yield from _json_issues(contained, value, where, rtype)
    elif isinstance(kind, str):
        yield _wrong_type(where, kind)
    elif kind is not None:
        yield from _json_issues(kind, value, where, defined)


def _wrong_type(where: str, kind: str) -> Issue:
    article = "an" if kind[0] in "aeiou" else "a"
    return Issue("error", "structure", f"{where}: must be {article} {kind} in FHIR JSON", (where,))


@cache
def _element_kinds(model: Any) -> dict[str, Any]:
    """JSON key -> 'boolean' | 'integer' | 'decimal' | 'string' | 'resource' | element model."""
    kinds: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        kind = _model("Element") if key.startswith("_") else _kind(info.annotation)
        if kind is not None:
            kinds[key] = kind
    return kinds


@dataclass(frozen=True)
class _Terminology:
    """`definitions/required_codes_r4.json`: the R4 complex data types, the elements defined by
    reference to another (`Questionnaire.item.item` -> `Questionnaire.item`), and element path ->
    the codes of its required binding where that value set is a closed list."""

    datatypes: frozenset[str]
    references: dict[str, str]
    codes: dict[str, frozenset[str]]


@cache
def _terminology() -> _Terminology:
    text = resources.files("carebridge.fhir.definitions").joinpath("required_codes_r4.json")
    data = json.loads(text.read_text("utf-8"))
    return _Terminology(
        frozenset(data["datatypes"]),
        data["references"],
        {path: frozenset(codes) for path, codes in data["codes"].items()},
    )


def _child_definition(defined: str, key: str, kind: Any) -> str:
    """The R4 definition path of element `key` of the element defined at `defined`: a data type
    is defined once (`HumanName.use`), a backbone element under its parent."""
    name = getattr(kind, "__name__", "")
    terminology = _terminology()
    if name in terminology.datatypes:
        return str(name)
    child = f"{defined}.{key}"
    return terminology.references.get(child, child)


def _kind(annotation: Any) -> Any:
    """An element's JSON kind from its model annotation (Optional, List, Annotated unwrapped)."""
    while True:
        origin = get_origin(annotation)
        if origin in (Union, UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return None
            annotation = args[0]
        elif origin in (list, Annotated):
            annotation = get_args(annotation)[0]
        else:
            break
    simple = {bool: "boolean", int: "integer", float: "decimal", Decimal: "decimal"}
    if annotation in simple:
        return simple[annotation]
    if annotation in (str, date, datetime, time, bytes):
        return "string"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        model: Any = annotation  # a backbone element of an R4 model (definitions/r4_models.py)
    else:
        klass = getattr(annotation, "get_model_klass", None)
        if klass is None:
            return None
        model = klass()
    return "resource" if model.__name__ in ("Resource", "DomainResource") else model
