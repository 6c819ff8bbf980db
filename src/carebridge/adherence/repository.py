"""Read-only extraction of what the cohort engine needs from the FHIR store's resource table.

Population-wide scoring reads every MedicationDispense at once; paging FHIR searches would cost a
count and a sort per page, so this repository streams the current, non-deleted resources of a
type straight from ``resource`` (the same statement shape as Bulk Data export,
``fhir/bulk_export.py``). It returns raw FHIR dicts; mapping them is ``mapping.py``'s job.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, false, select

from carebridge.fhir.tables import resource

Resource = dict[str, Any]
_BATCH = 5_000


class AdherenceRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def current(self, res_type: str) -> Iterator[Resource]:
        """Current content of every non-deleted resource of ``res_type``, in insertion order."""
        statement = (
            select(resource.c.content)
            .where(resource.c.res_type == res_type, resource.c.deleted == false())
            .order_by(resource.c.pk)
        )
        rows = self.conn.execution_options(stream_results=True, yield_per=_BATCH).execute(statement)
        for (content,) in rows:
            if content:
                yield content

    def by_reference(self, res_type: str) -> dict[str, Resource]:
        """Every current resource of ``res_type`` keyed by its relative reference ``Type/id``."""
        return {f"{res_type}/{r['id']}": r for r in self.current(res_type)}
