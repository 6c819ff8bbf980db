"""Adherence fixtures: one local Spark session shared by every Spark test of the run.

Spark tests are marked ``spark``. As in ``make test``, they are deselected (never skipped) unless
the run selects markers with ``-m``, e.g. ``pytest -m spark tests/adherence``; a Spark session
takes about ten seconds to start, more than the rest of the adherence suite together. When they
are selected and PySpark or Java is missing, they fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("markexpr"):
        return
    spark = [i for i in items if i.get_closest_marker("spark") and "adherence" in i.nodeid]
    if spark:
        config.hook.pytest_deselected(items=spark)
        items[:] = [i for i in items if i not in spark]


@pytest.fixture(scope="session")
def spark_session() -> Iterator[Any]:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        pytest.fail("PySpark is not installed: pip install -e '.[spark]'")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("carebridge-adherence-tests")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.fixture
def client(settings: Any) -> Iterator[Any]:
    """The API with the adherence router mounted ahead of the generic FHIR routes (as app.py
    does), so ``/fhir/OperationDefinition/patient-adherence`` is not read as a stored resource."""
    from fastapi import Depends
    from fastapi.testclient import TestClient

    from carebridge.access.guard import install_guard
    from carebridge.adherence.endpoints import open_router, router
    from carebridge.app import create_app
    from tests.conftest import bearer

    app = create_app(settings)
    existing = list(app.router.routes)
    app.include_router(open_router)
    app.include_router(router, dependencies=[Depends(install_guard)])
    added = app.router.routes[len(existing) :]
    app.router.routes[:] = [*added, *existing]
    with TestClient(app, base_url="http://testserver", headers=bearer(settings)) as test_client:
        yield test_client
    app.state.engine.dispose()
