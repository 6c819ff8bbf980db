"""MQTT end to end against a real broker: QoS 1, persistent session, ack after commit.

The gateway runs as a subprocess (`python -m carebridge.cli.devices gateway`), is killed with
SIGKILL in the middle of the stream and started again; every published reading must be stored
exactly once. The broker is CAREBRIDGE_TEST_MQTT_URL (default mqtt://127.0.0.1:1883); if it cannot
be reached the tests fail, they never skip.
"""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import Engine

from carebridge.devices import service
from carebridge.devices.registry import DeviceKind
from carebridge.devices.repository import DeviceRepository
from carebridge.fhir.records import Method, WriteOp
from carebridge.fhir.store import FhirStore
from carebridge.kit.clock import utc_now
from tests.devices.mqtt_support import (
    GatewayProcess,
    observation_versions,
    publish,
    wait_for,
)

pytestmark = pytest.mark.mqtt

START = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)


def setup_devices(engine: Engine, count: int) -> dict[str, str]:
    now = utc_now()
    tokens = {}
    with engine.begin() as conn:
        store, repo = FhirStore(conn), DeviceRepository(conn)
        patient = {"resourceType": "Patient", "id": "pat-1"}
        store.write([WriteOp(Method.PUT, "Patient", "pat-1", patient)])
        for index in range(count):
            made = service.register_device(
                store,
                repo,
                patient_id="pat-1",
                kind=DeviceKind.WEIGHT,
                device_id=f"scale-{uuid.uuid4().hex[:6]}-{index}",
                now=now,
            )
            tokens[made.device_id] = made.credential
    return tokens


def payloads(
    prefix: str, tokens: dict[str, str], messages: int, per_message: int
) -> list[tuple[str, bytes]]:
    out = []
    devices = list(tokens)
    for number in range(messages):
        device = devices[number % len(devices)]
        readings = [
            {
                "kind": "weight",
                "time": (START + timedelta(minutes=number * per_message + i)).isoformat(),
                "value": 80 + i / 10,
                "unit": "kg",
            }
            for i in range(per_message)
        ]
        body = {"credential": tokens[device], "readings": readings}
        out.append((f"{prefix}/devices/{device}/readings", orjson.dumps(body)))
    return out


def settle_and_stop(engine: Engine, gateway: GatewayProcess, expected: int) -> list[int]:
    """Wait for `expected` Observations, give stragglers a second (anything more arriving would
    be a duplicate), stop the gateway cleanly; the versions stored."""
    wait_for(engine, expected)
    time.sleep(1.0)
    versions = observation_versions(engine)
    assert gateway.stop() == 0
    return versions


def assert_stored_once(engine: Engine, versions: list[int], expected: int) -> None:
    assert len(versions) == expected
    assert set(versions) == {1}
    with engine.connect() as conn:
        assert DeviceRepository(conn).dead_letters() == []


class TestGatewayRestart:
    def test_every_reading_is_stored_exactly_once_across_a_crash(
        self, engine: Engine, broker_url: str, gateway_id: str
    ) -> None:
        db_url = engine.url.render_as_string(hide_password=False)
        tokens = setup_devices(engine, 5)
        items = payloads(gateway_id, tokens, messages=300, per_message=5)
        gateway = GatewayProcess(db_url, broker_url, gateway_id)
        gateway.start()
        try:
            publish(broker_url, items[:120])
            time.sleep(0.05)  # let the gateway take some of them in flight
            gateway.kill()
            publish(broker_url, items[120:])  # queued by the broker for the persistent session
            gateway.start()
            publish(broker_url, items[100:140])  # devices resend some: duplicates
            versions = settle_and_stop(engine, gateway, 1500)
        finally:
            gateway.kill()
        assert_stored_once(engine, versions, 1500)

    def test_a_pool_shares_the_stream_and_survives_losing_a_process(
        self, engine: Engine, broker_url: str, gateway_id: str
    ) -> None:
        db_url = engine.url.render_as_string(hide_password=False)
        tokens = setup_devices(engine, 5)
        items = payloads(gateway_id, tokens, messages=300, per_message=5)
        pool = GatewayProcess(db_url, broker_url, gateway_id, processes=2)
        pool.start()
        try:
            pids = {
                int(p) for p in re.findall(r"gateway-\d\[(\d+)\] subscribed", "".join(pool.log))
            }
            assert len(pids) == 2
            publish(broker_url, items[:120])
            time.sleep(0.05)
            os.kill(min(pids), signal.SIGKILL)  # the pool starts it again with its session
            publish(broker_url, items[120:])
            versions = settle_and_stop(engine, pool, 1500)
        finally:
            pool.kill()
        assert_stored_once(engine, versions, 1500)
        log = "".join(pool.log)
        assert "starting it again" in log
        shares = dict(re.findall(r"gateway-(\d)\[\d+\] stopped: \d+ messages, (\d+) stored", log))
        assert set(shares) == {"1", "2"}
        assert all(int(stored) > 0 for stored in shares.values())  # the broker shared the stream

    def test_refused_devices_are_dead_lettered_and_acknowledged(
        self, engine: Engine, broker_url: str, gateway_id: str
    ) -> None:
        db_url = engine.url.render_as_string(hide_password=False)
        tokens = setup_devices(engine, 1)
        [(topic, good)] = payloads(gateway_id, tokens, messages=1, per_message=1)
        wrong = orjson.dumps({**orjson.loads(good), "credential": "x.y"})
        unknown = topic.replace("/scale-", "/ghost-")
        gateway = GatewayProcess(db_url, broker_url, gateway_id)
        gateway.start()
        try:
            publish(
                broker_url, [(topic, wrong), (unknown, good), (topic, b"not json"), (topic, good)]
            )
            versions = wait_for(engine, 1)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    letters = DeviceRepository(conn).dead_letters()
                if len(letters) >= 3:
                    break
                time.sleep(0.2)
            assert gateway.stop() == 0
        finally:
            gateway.kill()
        assert versions == [1]
        reasons = sorted(letter.reason for letter in letters)
        assert reasons == [
            "credential missing or wrong",
            "credential missing or wrong",
            "unknown device",
        ]
        assert all("credential" not in (letter.payload or {}) for letter in letters)
