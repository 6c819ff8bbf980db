"""Validation of incoming resources against the FHIR R4 structure definitions.

Structural validation uses the `fhir.resources` R4B models (R4B shares R4's structure for every
resource carebridge stores; the R4B-only resources are refused by type check first). Every problem
becomes an OperationOutcome issue whose `expression` is the FHIRPath of the element, e.g.
`Patient.name[0].given`, so a client can point at the field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, time
from decimal import Decimal
from functools import cache
from itertools import islice
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from carebridge.fhir.search.parameters import registry
from carebridge.kit.errors import Issue, ValidationFailedError
from carebridge.kit.ids import is_valid_id

_MAX_ISSUES = 20


def known_type(resource_type: str) -> bool:
    return resource_type in registry().resource_types


def check_shape(body: Any, *, expected_type: str | None = None) -> dict[str, Any]:
    """Cheap checks every write path applies: a JSON object of a known R4 type with a valid id."""
    if not isinstance(body, dict):
        raise ValidationFailedError([Issue("error", "structure", "the body must be a JSON object")])
    rtype = body.get("resourceType")
    if not isinstance(rtype, str) or not known_type(rtype):
        raise ValidationFailedError(
            [Issue("error", "structure", f"resourceType {rtype!r} is not an R4 resource type")]
        )
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
    model = _model(resource["resourceType"])
    if model is None:  # R4 types without an R4B model (see ADR 0008): shape check only
        return resource
    json_issues = list(islice(_json_issues(model, resource, resource["resourceType"]), _MAX_ISSUES))
    if json_issues:
        raise ValidationFailedError(json_issues)
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        raise ValidationFailedError(_issues(resource["resourceType"], exc)) from None
    except (TypeError, ValueError) as exc:  # some model validators raise plain errors
        raise ValidationFailedError([Issue("error", "structure", str(exc)[:500])]) from None
    return resource


@cache
def _model(resource_type: str) -> Any:
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


def _issues(resource_type: str, exc: ValidationError) -> list[Issue]:
    issues = []
    for error in exc.errors()[:_MAX_ISSUES]:
        path = fhirpath_of(resource_type, error["loc"])
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


def _json_issues(model: Any, node: dict[str, Any], path: str) -> Iterator[Issue]:
    """Problems with `node` as the FHIR JSON form of `model`: nulls, empty arrays or objects, and
    primitives of the wrong JSON type. Unknown elements are left to the model validation."""
    kinds = _element_kinds(model)
    for key, value in node.items():
        if key == "resourceType":
            continue
        where = f"{path}.{key}"
        kind, codes = kinds.get(key), _element_codes(model).get(key)
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
            yield from _value_issues(kind, item, at)
            if codes and isinstance(item, str) and item not in codes:
                yield Issue(
                    "error", "code-invalid", f"{at}: {item!r} is not one of {sorted(codes)}", (at,)
                )


def _value_issues(kind: Any, value: Any, where: str) -> Iterator[Issue]:
    if value is None:
        yield Issue("error", "structure", f"{where}: null is not allowed in FHIR JSON", (where,))
    elif isinstance(value, dict):
        yield from _object_issues(kind, value, where)
    elif isinstance(kind, str) and kind in _JSON_KINDS:
        expected = _JSON_KINDS[kind]
        if not isinstance(value, expected) or (kind != "boolean" and isinstance(value, bool)):
            yield _wrong_type(where, kind)
    elif kind is not None and not isinstance(kind, str):
        yield _wrong_type(where, "object")


def _object_issues(kind: Any, value: dict[str, Any], where: str) -> Iterator[Issue]:
    if not value:
        yield Issue("error", "structure", f"{where}: objects must not be empty", (where,))
    elif kind == "resource":
        contained = (
            _model(value["resourceType"]) if isinstance(value.get("resourceType"), str) else None
        )
        if contained is not None:
            yield from _json_issues(contained, value, value["resourceType"])
    elif isinstance(kind, str):
        yield _wrong_type(where, kind)
    elif kind is not None:
        yield from _json_issues(kind, value, where)


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


@cache
def _element_codes(model: Any) -> dict[str, frozenset[str]]:
    """JSON key -> the codes a required binding to a closed value set allows (R4 terminologies:
    a code outside them is an error)."""
    codes: dict[str, frozenset[str]] = {}
    for name, info in model.model_fields.items():
        values = _extra(info).get("enum_values")
        if isinstance(values, list) and values and "+" not in values:
            codes[info.alias or name] = frozenset(str(v) for v in values)
    return codes


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
    klass = getattr(annotation, "get_model_klass", None)
    if klass is None:
        return None
    model = klass()
    return "resource" if model.__name__ in ("Resource", "DomainResource") else model
