"""Database engines: SQLite (embedded default) and PostgreSQL (production), one configuration each.

SQLite runs in WAL mode with `synchronous=NORMAL` (durable across application crashes; the last
transactions may be lost only on power failure, https://www.sqlite.org/wal.html) and a busy timeout
so a concurrent writer waits instead of failing. New database files use 8 KiB pages (PostgreSQL's
size; SQLite's default is 4 KiB): a bulk load's writer spent about 4% less time, searches were not
measurably slower (32 KiB pages made loads 20% cheaper but searches 40-60% slower; bench/README.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use the psycopg 3 driver for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _json_serializer(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_db_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for `url`, with the JSON codec and dialect settings carebridge relies on."""
    url = normalize_url(url)
    if is_sqlite(url):
        _ensure_parent_dir(url)
        engine = create_engine(
            url,
            echo=echo,
            json_serializer=_json_serializer,
            json_deserializer=orjson.loads,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url,
        echo=echo,
        json_serializer=_json_serializer,
        json_deserializer=orjson.loads,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
    )


def _ensure_parent_dir(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA page_size=8192")  # takes effect only when the file is created
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA cache_size=-200000")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.execute("PRAGMA mmap_size=1073741824")
    cursor.close()


def refresh_statistics(engine: Engine, *, full: bool = False) -> None:
    """Update the query planner's statistics after bulk changes.

    SQLite has no automatic statistics: without them it may drive a search from a broad index
    (all Observations) instead of the per-resource one. `ANALYZE` after a load fixes the plans;
    `PRAGMA optimize` (https://www.sqlite.org/pragma.html#pragma_optimize) is the cheap variant
    for start-up. PostgreSQL's autovacuum analyzes eventually; after a bulk load we do it now.
    """
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("ANALYZE" if full else "PRAGMA optimize")
        else:
            conn.exec_driver_sql("ANALYZE")
        conn.commit()
