"""`expr IN <a JSON list bound as one parameter>` (json_list.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, String, bindparam, func, insert, select
from sqlalchemy.dialects import sqlite

from carebridge.fhir.search.json_list import InJsonList, JsonKeys
from carebridge.fhir.tables import resource
from carebridge.kit.clock import utc_now


def listed(values: list[object]) -> object:
    return bindparam(None, json.dumps(values), type_=String())


@pytest.fixture
def keys(engine: Engine) -> list[int]:
    with engine.begin() as conn:
        rows = conn.execute(
            insert(resource).returning(resource.c.pk),
            [
                {
                    "res_type": "Patient",
                    "res_id": f"p{n}",
                    "version": 1,
                    "last_updated": utc_now().replace(tzinfo=None),
                    "deleted": False,
                    "method": "PUT",
                    "content": None,
                }
                for n in range(3)
            ],
        )
        return sorted(r.pk for r in rows)


@pytest.mark.parametrize("seek", [False, True])
class TestInJsonList:
    def test_strings(self, engine: Engine, keys: list[int], seek: bool) -> None:
        where = InJsonList(resource.c.res_id, listed(["p0", "p2", "x"]), seek=seek)
        with engine.connect() as conn:
            found = {r.res_id for r in conn.execute(select(resource.c.res_id).where(where))}
        assert found == {"p0", "p2"}

    def test_integers(self, engine: Engine, keys: list[int], seek: bool) -> None:
        where = InJsonList(resource.c.pk, listed([keys[1], -1]), integers=True, seek=seek)
        with engine.connect() as conn:
            assert list(conn.execute(select(resource.c.pk).where(where)).scalars()) == [keys[1]]


def test_sqlite_gets_a_plain_comparison_an_index_can_serve() -> None:
    statement = select(resource.c.pk).where(
        resource.c.res_type == "Patient", InJsonList(resource.c.res_id, listed(["p0"]))
    )
    text = str(statement.compile(dialect=sqlite.dialect()))
    assert "= 1" not in text
    assert "IN (SELECT value FROM json_each(" in text


class TestJsonKeys:
    def test_the_values_as_a_list_bound_again_as_it_came(
        self, engine: Engine, keys: list[int]
    ) -> None:
        chosen = select(resource.c.pk).where(resource.c.res_id != "p1").subquery()
        with engine.connect() as conn:
            count, text = conn.execute(
                select(func.count(), JsonKeys(chosen.c.pk)).select_from(chosen)
            ).one()
            assert isinstance(text, str)
            assert count == 2
            assert sorted(json.loads(text)) == [keys[0], keys[2]]
            where = InJsonList(resource.c.pk, bindparam(None, text, type_=String()), integers=True)
            assert sorted(conn.execute(select(resource.c.pk).where(where)).scalars()) == [
                keys[0],
                keys[2],
            ]

    def test_no_rows_give_an_empty_list(self, engine: Engine, keys: list[int]) -> None:
        chosen = select(resource.c.pk).where(resource.c.res_id == "none").subquery()
        with engine.connect() as conn:
            row = conn.execute(select(func.count(), JsonKeys(chosen.c.pk)).select_from(chosen))
            assert tuple(row.one()) == (0, "[]")
