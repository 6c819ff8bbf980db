"""Helpers for the MQTT end-to-end tests: a gateway subprocess, sessions, publishing, waiting."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine

from carebridge.devices.gateway import BrokerAddress
from carebridge.fhir.store import FhirStore


class GatewayProcess:
    def __init__(self, db_url: str, broker: str, client_id: str, processes: int = 1) -> None:
        # The client id doubles as topic prefix: parallel runs never see each other's devices.
        self.args = [
            sys.executable,
            "-m",
            "carebridge.cli.devices",
            "gateway",
            "--broker",
            broker,
            "--db",
            db_url,
            "--client-id",
            client_id,
            "--topic-prefix",
            client_id,
            "--processes",
            str(processes),
        ]
        self.processes = processes
        self.process: subprocess.Popen[str] | None = None
        self.watcher: threading.Thread | None = None
        self.log: list[str] = []

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
        )
        ready = threading.Event()
        stream = self.process.stderr
        assert stream is not None
        subscribed = 0

        def watch() -> None:
            nonlocal subscribed
            with stream:
                for line in stream:
                    self.log.append(line)
                    if "subscribed" in line:
                        subscribed += 1
                        if subscribed >= self.processes:
                            ready.set()

        self.watcher = threading.Thread(target=watch, daemon=True)
        self.watcher.start()
        if not ready.wait(30):
            self.kill()
            pytest.fail("the gateway did not subscribe within 30 s")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self._join()

    def _join(self) -> None:
        if self.watcher is not None:
            self.watcher.join(10)

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(30)
        self._join()
        return code


def _client(client_id: str, clean: bool = True) -> mqtt.Client:
    return mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)


def drop_session(broker: str, client_id: str) -> None:
    """Connect once with CleanSession=1 so the broker forgets the gateway's queued session."""
    address = BrokerAddress.parse(broker)
    client = _client(client_id)
    client.connect(address.host, address.port)
    client.loop_start()
    time.sleep(0.2)
    client.disconnect()
    client.loop_stop()


def publish(broker: str, items: list[tuple[str, bytes]]) -> None:
    address = BrokerAddress.parse(broker)
    client = _client(f"cb-test-pub-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(100)
    client.connect(address.host, address.port)
    client.loop_start()
    infos = [client.publish(topic, payload, qos=1) for topic, payload in items]
    for info in infos:
        info.wait_for_publish(30)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS
    client.disconnect()
    client.loop_stop()


def observation_versions(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        page = FhirStore(conn).history("Observation", count=100_000)
    return [entry.version for entry in page.entries]


def wait_for(engine: Engine, expected: int, timeout: float = 60) -> list[int]:
    deadline = time.monotonic() + timeout
    versions = observation_versions(engine)
    while len(versions) < expected and time.monotonic() < deadline:
        time.sleep(0.3)
        versions = observation_versions(engine)
    return versions
