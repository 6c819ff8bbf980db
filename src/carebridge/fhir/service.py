"""FHIR interactions (R4 http.html) over the store, independent of HTTP.

The REST endpoints, transaction/batch processing and the CLI all call these functions, so each
interaction has one implementation. Functions take the store (bound to the caller's transaction)
and a `FhirContext`; they never commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from carebridge.fhir.records import Method, Outcome, StoredResource, WriteOp, WriteResult
from carebridge.fhir.search.parse import Limits, parse_search
from carebridge.fhir.search.query import SearchQuery
from carebridge.fhir.store import FhirStore
from carebridge.fhir.validation import check_shape, validate_resource
from carebridge.kit.errors import InvalidRequestError, PreconditionFailedError
from carebridge.kit.ids import new_id


@dataclass(frozen=True)
class FhirContext:
    base_url: str
    strict: bool = False
    limits: Limits = field(default_factory=Limits)
    validate: bool = True


def _checked(ctx: FhirContext, body: Any, resource_type: str) -> dict[str, Any]:
    if ctx.validate:
        return validate_resource(body, expected_type=resource_type)
    return check_shape(body, expected_type=resource_type)


def query_for(
    ctx: FhirContext,
    resource_type: str | None,
    params: list[tuple[str, str]],
    *,
    strict: bool | None = None,
) -> SearchQuery:
    types = [resource_type] if resource_type else []
    return parse_search(
        types, params, strict=ctx.strict if strict is None else strict, limits=ctx.limits
    )


def parse_condition(condition: str) -> list[tuple[str, str]]:
    """`identifier=a|b&active=true` (If-None-Exist, conditional URLs) -> parameter pairs."""
    pairs = parse_qsl(condition.lstrip("?"), keep_blank_values=True)
    if not pairs:
        raise InvalidRequestError(f"the condition {condition!r} has no search parameters")
    return pairs


def find_matches(
    store: FhirStore, ctx: FhirContext, resource_type: str, condition: str
) -> list[StoredResource]:
    """Resources matching a conditional interaction's condition (unknown params are errors)."""
    query = query_for(ctx, resource_type, parse_condition(condition), strict=True)
    limited = SearchQuery(query.resource_types, query.criteria, count=2, total="none")
    return store.search(limited).matches


def create(
    store: FhirStore,
    ctx: FhirContext,
    resource_type: str,
    body: Any,
    *,
    if_none_exist: str | None = None,
) -> WriteResult:
    """create (http.html#create): the server assigns the id; conditional with If-None-Exist."""
    resource = _checked(ctx, body, resource_type)
    if if_none_exist:
        matches = find_matches(store, ctx, resource_type, if_none_exist)
        if len(matches) > 1:
            raise PreconditionFailedError(
                f"If-None-Exist {if_none_exist!r} matches {len(matches)} resources;"
                " it must match at most one"
            )
        if matches:
            op = WriteOp(Method.POST, resource_type, matches[0].res_id, resource)
            return WriteResult(op, Outcome.UNCHANGED, matches[0])
    op = WriteOp(Method.POST, resource_type, new_id(), {**resource})
    return store.write([op])[0]


def update(
    store: FhirStore,
    ctx: FhirContext,
    resource_type: str,
    res_id: str,
    body: Any,
    *,
    if_match: int | None = None,
) -> WriteResult:
    """update, and update-as-create when the id is new (http.html#update)."""
    resource = _checked(ctx, body, resource_type)
    if resource.get("id") != res_id:
        raise InvalidRequestError(
            f"the resource id {resource.get('id')!r} must equal the id in the URL ({res_id!r})",
            expression=(f"{resource_type}.id",),
        )
    return store.write([WriteOp(Method.PUT, resource_type, res_id, resource, if_match=if_match)])[0]


def conditional_update(
    store: FhirStore, ctx: FhirContext, resource_type: str, condition: str, body: Any
) -> WriteResult:
    """PUT Type?criteria (http.html#cond-update): 0 matches create, 1 updates, more is 412."""
    resource = _checked(ctx, body, resource_type)
    matches = find_matches(store, ctx, resource_type, condition)
    if len(matches) > 1:
        raise PreconditionFailedError(
            f"conditional update {condition!r} matches more than one resource"
        )
    if matches:
        res_id = matches[0].res_id
        if resource.get("id") not in (None, res_id):
            raise InvalidRequestError(
                f"the resource id {resource['id']!r} differs from the matched"
                f" {resource_type}/{res_id}"
            )
    else:
        res_id = resource.get("id") or new_id()
    return store.write([WriteOp(Method.PUT, resource_type, res_id, {**resource, "id": res_id})])[0]


def delete(store: FhirStore, resource_type: str, res_id: str) -> WriteResult:
    """delete (http.html#delete): soft; the resource's history stays readable."""
    return store.write([WriteOp(Method.DELETE, resource_type, res_id)])[0]


def conditional_delete(
    store: FhirStore, ctx: FhirContext, resource_type: str, condition: str
) -> list[WriteResult]:
    matches = find_matches(store, ctx, resource_type, condition)
    if len(matches) > 1:
        raise PreconditionFailedError(
            f"conditional delete {condition!r} matches more than one resource"
        )
    ops = [WriteOp(Method.DELETE, m.res_type, m.res_id) for m in matches]
    return store.write(ops) if ops else []


def everything(
    store: FhirStore, patient_id: str, *, types: tuple[str, ...] = (), since: Any = None
) -> list[StoredResource]:
    """Patient/$everything (patient-operation-everything.html): the patient, its compartment, and
    the resources those reference (practitioners, organizations, medications, locations)."""
    patient = store.read("Patient", patient_id)
    members = store.patient_compartment_keys(patient_id)
    pks = [pk for _, _, pk in members]
    member_keys = {(t, i) for t, i, _ in members}
    referenced = store.referenced_keys([*pks, patient.pk]) - member_keys - {("Patient", patient_id)}
    found = store.fetch(member_keys | referenced)
    found.sort(key=lambda r: (r.res_type, r.res_id))
    result = [patient, *found]
    if types:
        result = [r for r in result if r.res_type in types]
    if since is not None:
        result = [r for r in result if r.last_updated >= since]
    return result
