"""Constants written into the SQL text (inline.py): quoted by the dialect, part of the
statement's cache key."""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from carebridge.fhir.search.inline import inline, inline_all
from carebridge.fhir.tables import resource


class TestInline:
    def test_a_constant_is_in_the_text_not_a_parameter(self) -> None:
        statement = select(resource.c.pk).where(resource.c.res_type == inline("Patient"))
        for dialect in (sqlite.dialect(), postgresql.dialect()):
            compiled = statement.compile(dialect=dialect)
            assert "= 'Patient'" in compiled.string
            assert not compiled.params

    def test_quotes_are_escaped_by_the_dialect(self) -> None:
        statement = select(inline("O'Brien").label("name"))
        assert "'O''Brien'" in str(statement.compile(dialect=sqlite.dialect()))

    def test_a_list_is_sorted_and_deduplicated(self) -> None:
        statement = select(resource.c.pk).where(
            resource.c.res_type.in_(inline_all(["Patient", "Group", "Patient"]))
        )
        assert "IN ('Group', 'Patient')" in str(statement.compile(dialect=sqlite.dialect()))

    def test_statements_that_differ_only_in_a_constant_do_not_share_a_cache_entry(
        self, engine: Engine
    ) -> None:
        with engine.connect() as conn:
            values = [conn.execute(select(inline(v).label("v"))).scalar_one() for v in "ab"]
        assert values == ["a", "b"]
