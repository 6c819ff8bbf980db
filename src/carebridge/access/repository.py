"""SQL for the access layer: OAuth2 clients and the client-assertion replay guard."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from carebridge.access.schemas import Client
from carebridge.access.tables import client, client_assertion_jti


class ClientRepository:
    """Clients on one connection; the caller owns the transaction (one request = one unit)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, value: Client) -> None:
        self._conn.execute(insert(client).values(**_row(value)))

    def get(self, client_id: str) -> Client | None:
        row = self._conn.execute(select(client).where(client.c.client_id == client_id)).first()
        return _client(row._mapping) if row else None

    def by_name(self, name: str) -> Client | None:
        row = self._conn.execute(select(client).where(client.c.name == name)).first()
        return _client(row._mapping) if row else None

    def all(self) -> list[Client]:
        rows = self._conn.execute(select(client).order_by(client.c.created, client.c.name))
        return [_client(row._mapping) for row in rows]

    def remove(self, client_id: str) -> bool:
        result = self._conn.execute(delete(client).where(client.c.client_id == client_id))
        return result.rowcount > 0

    def set_active(self, client_id: str, active: bool) -> bool:
        statement = update(client).where(client.c.client_id == client_id).values(active=active)
        return self._conn.execute(statement).rowcount > 0

    def remember_assertion(self, client_id: str, jti: str, expires_at: datetime) -> bool:
        """Record an assertion's `jti`; False if it was already used (a replay).

        Insert-if-absent is one atomic statement on both backends, so two concurrent requests
        with the same assertion cannot both succeed.
        """
        dialect = sqlite if self._conn.dialect.name == "sqlite" else postgresql
        statement = (
            dialect.insert(client_assertion_jti)
            .values(client_id=client_id, jti=jti, expires_at=_naive(expires_at))
            .on_conflict_do_nothing()
            .returning(client_assertion_jti.c.jti)
        )
        return self._conn.execute(statement).first() is not None

    def forget_assertions_before(self, moment: datetime) -> int:
        """Drop `jti`s of assertions that expired: they can no longer be replayed anyway."""
        statement = delete(client_assertion_jti).where(
            client_assertion_jti.c.expires_at < _naive(moment)
        )
        return self._conn.execute(statement).rowcount


def _naive(moment: datetime) -> datetime:
    """Stored instants are naive UTC (portable across SQLite and PostgreSQL)."""
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def _row(value: Client) -> dict[str, Any]:
    return {
        "client_id": value.client_id,
        "name": value.name,
        "secret_hash": value.secret_hash,
        "secret_salt": value.secret_salt,
        "public_key": value.public_key,
        "allowed_scopes": value.allowed_scopes,
        "patient": value.patient,
        "fhir_user": value.fhir_user,
        "active": value.active,
        "created": _naive(value.created),
    }


def _client(row: Any) -> Client:
    values = {column.name: row[column.name] for column in client.columns}
    values["created"] = values["created"].replace(tzinfo=UTC)
    return Client(**values)
