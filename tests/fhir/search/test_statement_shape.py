"""The shape of search statements that planners must not undo (search/sql.py)."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite

from carebridge.fhir.search.parse import parse_search
from carebridge.fhir.search.results import count_statement
from carebridge.fhir.search.sql import compile_query


def _count_sql(dialect: object) -> str:
    query = parse_search(
        ["Observation"],
        [
            ("patient", "Patient/p1"),
            ("code", "http://loinc.org|85354-9"),
            ("date", "ge2015-01-01"),
        ],
    )
    statement = count_statement(compile_query(query, "http://server/fhir"))
    return str(statement.compile(dialect=dialect))  # type: ignore[arg-type]


def test_the_patient_drives_and_the_other_criteria_stay_per_row_probes() -> None:
    """On PostgreSQL, an EXISTS without OFFSET becomes a semi-join the planner may start from;
    a prepared statement's generic plan then started from a common code (bench/README)."""
    for dialect in (postgresql.dialect(), sqlite.dialect()):
        sql = _count_sql(dialect)
        driving, *probes = sql.split("EXISTS")
        assert "IN (SELECT search_reference.res_pk" in driving
        assert len(probes) == 2
        assert "search_token" in probes[0]
        assert "search_date" in probes[1]
        assert all("OFFSET 0" in probe for probe in probes)
