"""Validation of incoming resources against the FHIR R4 structure definitions.

Structural validation uses the `fhir.resources` R4B models (R4B shares R4's structure for every
resource carebridge stores; the R4B-only resources are refused by type check first). Every problem
becomes an OperationOutcome issue whose `expression` is the FHIRPath of the element, e.g.
`Patient.name[0].given`, so a client can point at the field.
"""

from __future__ import annotations

from functools import cache
from typing import Any

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
