"""PostgreSQL keeps a finer histogram of token codes (migration 0007), so a rare code is not
estimated at a handful of rows and chosen to drive a search over a selective patient."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text


@pytest.mark.postgres
def test_token_codes_have_a_statistics_target_of_1000(postgres_url: str) -> None:
    from carebridge.fhir.schema import upgrade
    from carebridge.kit.db import create_db_engine

    engine: Engine = create_db_engine(postgres_url)
    upgrade(engine)
    with engine.connect() as conn:
        target = conn.execute(
            text(
                "SELECT attstattarget FROM pg_attribute"
                " WHERE attrelid = 'search_token'::regclass AND attname = 'code'"
            )
        ).scalar_one()
    engine.dispose()
    assert target == 1000
