"""The client table and the assertion replay guard, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData

from carebridge.access.repository import ClientRepository
from carebridge.access.schemas import ClientCreate
from carebridge.access.tables import client, client_assertion_jti
from carebridge.kit.clock import utc_now
from tests.access.conftest import register


class TestMigration:
    def test_migration_0002_matches_the_table_definitions(self, engine: Engine) -> None:
        ours = MetaData()
        for table in (client, client_assertion_jti):
            table.to_metadata(ours)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn)
            differences = [
                d
                for d in compare_metadata(context, ours)
                if d[0] != "remove_table" and not (d[0] == "remove_index" and _foreign(d))
            ]
        assert differences == []


def _foreign(difference: tuple[object, ...]) -> bool:
    index = difference[1]
    return getattr(getattr(index, "table", None), "name", "") not in (
        "client",
        "client_assertion_jti",
    )


class TestClientRepository:
    def test_add_get_by_name_and_list(self, engine: Engine) -> None:
        registered = register(engine, ClientCreate("a", "system/*.rs", with_secret=True))
        register(engine, ClientCreate("b", "user/*.rs", fhir_user="Practitioner/1"))
        with engine.connect() as conn:
            repo = ClientRepository(conn)
            stored = repo.get(registered.client.client_id)
            assert stored == registered.client
            assert repo.by_name("b") is not None
            assert [c.name for c in repo.all()] == ["a", "b"]
            assert repo.get("missing") is None

    def test_created_is_utc(self, engine: Engine) -> None:
        registered = register(engine, ClientCreate("a", "system/*.rs"))
        with engine.connect() as conn:
            stored = ClientRepository(conn).get(registered.client.client_id)
        assert stored is not None
        assert stored.created.utcoffset() == timedelta(0)

    def test_remove_and_deactivate(self, engine: Engine) -> None:
        client_id = register(engine, ClientCreate("a", "system/*.rs")).client.client_id
        with engine.begin() as conn:
            repo = ClientRepository(conn)
            assert repo.set_active(client_id, False)
            stored = repo.get(client_id)
            assert stored is not None
            assert not stored.active
            assert repo.remove(client_id)
            assert not repo.remove(client_id)
            assert not repo.set_active(client_id, True)


class TestReplayGuard:
    def test_a_jti_is_accepted_once_per_client(self, engine: Engine) -> None:
        first = register(engine, ClientCreate("a", "system/*.rs")).client.client_id
        second = register(engine, ClientCreate("b", "system/*.rs")).client.client_id
        expires = utc_now() + timedelta(minutes=5)
        with engine.begin() as conn:
            repo = ClientRepository(conn)
            assert repo.remember_assertion(first, "jti-1", expires)
            assert not repo.remember_assertion(first, "jti-1", expires)
            assert repo.remember_assertion(second, "jti-1", expires)

    def test_expired_jtis_are_forgotten(self, engine: Engine) -> None:
        client_id = register(engine, ClientCreate("a", "system/*.rs")).client.client_id
        now = utc_now()
        with engine.begin() as conn:
            repo = ClientRepository(conn)
            repo.remember_assertion(client_id, "old", now - timedelta(minutes=1))
            repo.remember_assertion(client_id, "live", now + timedelta(minutes=1))
            assert repo.forget_assertions_before(now) == 1
            assert repo.remember_assertion(client_id, "old", now + timedelta(minutes=1))
            assert not repo.remember_assertion(client_id, "live", now + timedelta(minutes=1))

    def test_removing_a_client_removes_its_jtis(self, engine: Engine) -> None:
        client_id = register(engine, ClientCreate("a", "system/*.rs")).client.client_id
        with engine.begin() as conn:
            repo = ClientRepository(conn)
            repo.remember_assertion(client_id, "j", utc_now() + timedelta(minutes=1))
            repo.remove(client_id)
            assert conn.execute(client_assertion_jti.select()).first() is None
