"""SELECTs compiled once and run on the DB-API cursor (driver_select.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import DateTime, Engine, String, bindparam, insert, select

from carebridge.fhir.driver_select import driver_row, driver_rows, driver_statement
from carebridge.fhir.search.inline import inline
from carebridge.fhir.tables import resource

AT = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
STORED = AT.replace(tzinfo=None)  # the store keeps naive UTC


def updated_since() -> object:
    return select(resource.c.res_id).where(
        resource.c.res_type == inline("Patient"),
        resource.c.last_updated >= bindparam("since", type_=DateTime()),
        resource.c.res_id != bindparam("not_id", type_=String()),
    )


def add(conn: object, res_id: str, when: datetime) -> None:
    conn.execute(  # type: ignore[attr-defined]
        insert(resource).values(
            res_type="Patient",
            res_id=res_id,
            version=1,
            last_updated=when,
            deleted=False,
            method="PUT",
            content={"resourceType": "Patient", "id": res_id},
        )
    )


class TestDriverRows:
    def test_datetimes_compare_as_through_sqlalchemy(self, engine: Engine) -> None:
        with engine.begin() as conn:
            add(conn, "before", STORED - timedelta(seconds=1))
            add(conn, "at", STORED)
            add(conn, "after", STORED + timedelta(microseconds=1))
            with driver_rows(conn, updated_since(), {"since": AT, "not_id": "x"}) as rows:
                found = {r[0] for r in rows}
            through_sqlalchemy = conn.execute(updated_since(), {"since": AT, "not_id": "x"})
            assert found == {r[0] for r in through_sqlalchemy} == {"at", "after"}

    def test_rows_are_read_in_the_callers_transaction(self, engine: Engine) -> None:
        with engine.begin() as conn:
            add(conn, "uncommitted", AT)
            with driver_rows(conn, updated_since(), {"since": AT, "not_id": "x"}) as rows:
                assert [r[0] for r in rows] == ["uncommitted"]

    def test_a_reader_may_stop_early(self, engine: Engine) -> None:
        with engine.begin() as conn:
            for n in range(3):
                add(conn, f"p{n}", AT)
            with driver_rows(conn, updated_since(), {"since": AT, "not_id": "x"}) as rows:
                next(rows)
            with driver_rows(conn, updated_since(), {"since": AT, "not_id": "p0"}) as rows:
                assert len(list(rows)) == 2

    def test_a_statement_with_an_expanding_list_is_refused(self, engine: Engine) -> None:
        statement = select(resource.c.pk).where(resource.c.res_type.in_(["Patient", "Group"]))
        with pytest.raises(ValueError, match="inline"):
            driver_statement(statement, engine.dialect)


class TestDriverRow:
    def test_a_row_is_converted_as_through_sqlalchemy(self, engine: Engine) -> None:
        statement = select(resource).where(resource.c.res_id == bindparam("id", type_=String()))
        with engine.begin() as conn:
            add(conn, "p1", STORED + timedelta(microseconds=5))
            found = driver_row(conn, statement, {"id": "p1"})
            expected = conn.execute(statement, {"id": "p1"}).one()
        assert found == tuple(expected)
        assert isinstance(found[resource.c.keys().index("last_updated")], datetime)
        assert found[resource.c.keys().index("deleted")] is False
        assert found[resource.c.keys().index("content")] == {"resourceType": "Patient", "id": "p1"}

    def test_no_row_is_none(self, engine: Engine) -> None:
        statement = select(resource).where(resource.c.res_id == bindparam("id", type_=String()))
        with engine.begin() as conn:
            assert driver_row(conn, statement, {"id": "absent"}) is None

    def test_equal_times_in_two_zones_are_each_bound_as_they_are(self, engine: Engine) -> None:
        """Datetimes are processed once per value and zone: the same instant in another zone
        is other text on SQLite, which keeps wall-clock times."""
        compiled = driver_statement(updated_since(), engine.dialect)
        dialect = engine.dialect
        process = DateTime().dialect_impl(dialect).bind_processor(dialect) or (lambda v: v)
        elsewhere = AT.astimezone(timezone(timedelta(hours=1)))
        for when in (AT, elsewhere, AT, elsewhere):
            bound = compiled.parameters({"since": when, "not_id": "x"})
            values = bound.values() if isinstance(bound, dict) else bound
            assert process(when) in values
