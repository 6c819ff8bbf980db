"""SQL for the device registry's own tables: credentials and dead letters.

Device resources and Observations go through the FHIR store; only what must not be a FHIR
resource (credential hashes) or could not become one (refused payloads) lives here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from carebridge.devices.credentials import IssuedCredential, StoredCredential
from carebridge.devices.tables import device_credential, device_dead_letter

_CHUNK = 500


@dataclass(frozen=True)
class DeadLetter:
    device_id: str
    payload: Any
    reason: str
    received_at: datetime


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None) if moment.tzinfo else moment


class DeviceRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add_credential(self, issued: IssuedCredential, now: datetime) -> None:
        self.conn.execute(
            insert(device_credential).values(
                device_id=issued.device_id,
                secret_hash=issued.secret_hash,
                secret_salt=issued.secret_salt,
                created=_naive(now),
                retired_at=None,
            )
        )

    def replace_credential(self, issued: IssuedCredential, now: datetime) -> None:
        self.conn.execute(
            update(device_credential)
            .where(device_credential.c.device_id == issued.device_id)
            .values(
                secret_hash=issued.secret_hash,
                secret_salt=issued.secret_salt,
                created=_naive(now),
                retired_at=None,
            )
        )

    def retire(self, device_id: str, now: datetime) -> bool:
        result = self.conn.execute(
            update(device_credential)
            .where(device_credential.c.device_id == device_id)
            .values(retired_at=_naive(now))
        )
        return bool(result.rowcount)

    def credentials(self, device_ids: Iterable[str]) -> dict[str, StoredCredential]:
        wanted = list(dict.fromkeys(device_ids))
        found: dict[str, StoredCredential] = {}
        for start in range(0, len(wanted), _CHUNK):
            rows = self.conn.execute(
                select(device_credential).where(
                    device_credential.c.device_id.in_(wanted[start : start + _CHUNK])
                )
            )
            for row in rows:
                found[row.device_id] = StoredCredential(
                    row.device_id, row.secret_hash, row.secret_salt, row.retired_at is not None
                )
        return found

    def device_ids(self) -> list[str]:
        rows = self.conn.execute(
            select(device_credential.c.device_id).order_by(device_credential.c.device_id)
        )
        return [row.device_id for row in rows]

    def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        self.conn.execute(
            insert(device_dead_letter),
            [
                {
                    "device_id": letter.device_id[:64],
                    "payload": letter.payload,
                    "reason": letter.reason,
                    "received_at": _naive(letter.received_at),
                }
                for letter in letters
            ],
        )

    def dead_letters(self, device_id: str | None = None, limit: int = 1000) -> list[DeadLetter]:
        statement = select(device_dead_letter).order_by(device_dead_letter.c.pk).limit(limit)
        if device_id is not None:
            statement = statement.where(device_dead_letter.c.device_id == device_id)
        return [
            DeadLetter(r.device_id, r.payload, r.reason, r.received_at)
            for r in self.conn.execute(statement)
        ]

    def count_dead_letters(self) -> int:
        return int(
            self.conn.execute(select(func.count()).select_from(device_dead_letter)).scalar_one()
        )
