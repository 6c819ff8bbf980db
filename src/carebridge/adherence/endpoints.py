"""``Patient/$adherence`` over HTTP (R4 operations.html): thin, one transaction per request.

GET scores without side effects; POST with ``persist=true`` also stores the MeasureReports, since
an operation that changes state must not be invoked with GET. Parameters are read from the query
string and validated against the operation's OperationDefinition (``operation.py``).

Mount with the access dependency like every protected FHIR router: reading needs read access to
the types in ``READS`` (the dispenses and what exclusions and stays are read from);
``persist`` also needs create and update on MeasureReport. The OperationDefinition itself is
public, like the CapabilityStatement.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from carebridge.adherence import population as population_service
from carebridge.adherence import service as adherence_service
from carebridge.adherence.operation import (
    EVALUATE_OPERATION,
    AdherenceRequest,
    EvaluateRequest,
    adherence_request,
    evaluate_request,
    operation_definition,
)
from carebridge.fhir.guard import Interaction
from carebridge.fhir.http import fhir_response
from carebridge.fhir.store import FhirStore
from carebridge.fhir.unit_of_work import Access, in_transaction
from carebridge.kit.errors import InvalidRequestError

router = APIRouter(prefix="/fhir")
open_router = APIRouter(prefix="/fhir")  # no token needed: the OperationDefinition only
READS = (
    "Patient",
    "MedicationDispense",
    "Medication",
    "Encounter",
    "Condition",
    "Procedure",
    "EpisodeOfCare",
    "Coverage",
)
SCORE = Access(Interaction.OPERATION, READS)
SCORE_AND_STORE = Access(
    Interaction.OPERATION,
    READS,
    also=((Interaction.CREATE, "MeasureReport"), (Interaction.UPDATE, "MeasureReport")),
)


EVALUATE = Access(Interaction.OPERATION, (*READS, "Location"))
EVALUATE_AND_STORE = Access(
    Interaction.OPERATION,
    (*READS, "Location"),
    also=(
        (Interaction.CREATE, "MeasureReport"),
        (Interaction.UPDATE, "MeasureReport"),
        (Interaction.CREATE, "Measure"),
    ),
)


@open_router.get("/OperationDefinition/patient-adherence")
async def adherence_definition() -> Response:
    """The OperationDefinition that declares ``Patient/$adherence``."""
    return fhir_response(dict(operation_definition()))


@open_router.get("/OperationDefinition/measure-evaluate-measure")
async def evaluate_definition() -> Response:
    """The OperationDefinition that declares ``Measure/[id]/$evaluate-measure``."""
    return fhir_response(dict(operation_definition(EVALUATE_OPERATION)))


@router.get("/Measure/{measure_id}/$evaluate-measure")
async def evaluate_measure(request: Request, measure_id: str) -> Response:
    """A PQA adherence measure over the population or one patient as a MeasureReport (R4
    measure-operation-evaluate-measure.html; rules: PQA PDC specification, docs/clinical.md)."""
    parsed = evaluate_request(list(request.query_params.multi_items()))
    if parsed.persist:
        raise InvalidRequestError("persist=true changes state: invoke $evaluate-measure with POST")
    return await _evaluate(request, EVALUATE, measure_id, parsed)


@router.post("/Measure/{measure_id}/$evaluate-measure")
async def evaluate_measure_post(request: Request, measure_id: str) -> Response:
    """As GET; with ``persist=true`` the MeasureReport (and missing Measures) are stored."""
    parsed = evaluate_request(list(request.query_params.multi_items()))
    access = EVALUATE_AND_STORE if parsed.persist else EVALUATE
    return await _evaluate(request, access, measure_id, parsed)


@router.get("/Patient/{patient_id}/$adherence")
async def patient_adherence(request: Request, patient_id: str) -> Response:
    """PQA PDC per measure for one patient (PQA PDC specification; docs/clinical.md)."""
    parsed = adherence_request(list(request.query_params.multi_items()))
    if parsed.persist:
        raise InvalidRequestError("persist=true changes state: invoke $adherence with POST")
    return await _answer(request, SCORE, patient_id, parsed)


@router.post("/Patient/{patient_id}/$adherence")
async def patient_adherence_post(request: Request, patient_id: str) -> Response:
    """As GET; with ``persist=true`` one MeasureReport per measure is stored or updated."""
    parsed = adherence_request(list(request.query_params.multi_items()))
    return await _answer(request, SCORE_AND_STORE if parsed.persist else SCORE, patient_id, parsed)


async def _answer(
    request: Request, access: Access, patient_id: str, parsed: AdherenceRequest
) -> Response:
    """Run the operation in one guarded transaction. The work returns the resources it read
    followed by the answer: the audit record lists what a list's StoredResources name, so the
    AuditEvent names the patient and the dispenses without the Parameters being stored."""

    def work(store: FhirStore) -> list[Any]:
        answer = adherence_service.adherence_operation(store, patient_id, parsed)
        return [*answer.read, answer]

    result = await in_transaction(request, access, work)
    answer: adherence_service.AdherenceAnswer = result[-1]
    return fhir_response(answer.parameters)


async def _evaluate(
    request: Request, access: Access, measure_id: str, parsed: EvaluateRequest
) -> Response:
    population_service.measure_id_of(measure_id)  # 404 before any work

    def work(store: FhirStore) -> list[Any]:
        answer = population_service.evaluate_measure(store, measure_id, parsed)
        return [*answer.read, answer]

    result = await in_transaction(request, access, work)
    answer: population_service.EvaluateAnswer = result[-1]
    return fhir_response(answer.report)
