"""What a worker process sends back: the prepared rows as plain values, read back unchanged."""

from __future__ import annotations

import pickle

import pytest

from carebridge.ingest import identity
from carebridge.ingest.feeds import DISPENSING
from carebridge.ingest.identity import new_patient_id
from carebridge.ingest.preparation import Assignment, RowPreparer, from_wire, to_wire
from carebridge.ingest.records import Identifier
from carebridge.ingest.sources import dispensing
from tests.ingest.conftest import FILL


@pytest.mark.parametrize("packed", [True, False])
def test_prepared_rows_survive_the_trip_from_a_worker(packed: bool) -> None:
    good = tuple(FILL[c] for c in DISPENSING.column_names)
    refill = tuple({**FILL, "refill_number": "1"}[c] for c in DISPENSING.column_names)
    short = good[:-3]  # a dead letter
    patient = new_patient_id(Identifier(identity.PHARMACY_MEMBER, FILL["pharmacy_member_id"]))
    assignment = Assignment(patient, True)
    prepared = RowPreparer(dispensing.SOURCE, packed).prepare(
        [(2, good), (3, refill), (4, short)], [assignment, assignment, assignment]
    )
    assert [len(r.resources) for r in prepared] == [7, 1, 0]
    assert prepared[2].error
    received = from_wire(pickle.loads(pickle.dumps(to_wire(prepared))))
    assert received == prepared
