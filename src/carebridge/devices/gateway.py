"""MQTT gateway: device topics → batched transactions → acknowledgements after commit.

Devices publish to `devices/{deviceId}/readings` with QoS 1. The payload is one of the JSON
formats that `normalize` understands, plus a top-level `credential` field holding the device
credential. (MQTT username/password are not an option: a subscriber never sees the publisher's
CONNECT credentials, and the broker is shared by all devices.)

Delivery guarantees, with the MQTT 3.1.1 rules they rest on
(https://docs.oasis-open.org/mqtt/mqtt/v3.1.1/os/mqtt-v3.1.1-os.html):

- **Persistent session.** A fixed client id with CleanSession=0 (§3.1.2.4): while the gateway is
  down the broker keeps its subscription and queues QoS 1 messages for it.
- **Ack after commit.** paho-mqtt 2.x `manual_ack=True`: a PUBACK is sent only once the batch's
  transaction has committed, in the order the PUBLISH packets arrived (§4.6). A message received
  but not acknowledged when the gateway dies is sent again on reconnect (§4.4).
- **At least once, with an exactly-once effect.** A crash between commit and PUBACK redelivers
  messages that are already stored. Observation ids are dedupe keys, so the second delivery finds
  them and reports `duplicate`; nothing is written twice.
- **Batches.** Messages are gathered until `batch_size` messages, `max_wait` seconds after the
  first one, or a short idle gap (the broker sends at most its in-flight window, default 20
  messages, before it waits for acknowledgements). Each batch is one transaction.
- **Two stages.** A batch is prepared (credentials and device links read, readings normalized,
  Observations serialized with their index rows) while the previous one commits in a second
  thread, so the database's work overlaps the gateway's. Commits and acknowledgements stay in
  arrival order; at most one prepared batch waits.
- **Poison messages.** If a batch fails, its messages are retried one by one; a message that still
  fails is dead-lettered with the error type (never its content in logs) and acknowledged, so one
  bad message cannot stall the stream. If even that fails (database down), nothing is
  acknowledged and the batch is retried after a pause.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine

from carebridge.devices import service
from carebridge.devices.repository import DeadLetter, DeviceRepository
from carebridge.devices.service import Delivery, DeliveryReport, IntakeConfig, PreparedIntake
from carebridge.fhir.store import FhirStore
from carebridge.kit.clock import utc_now

log = logging.getLogger("carebridge.devices.gateway")

TOPIC_FILTER = "devices/+/readings"
DEFAULT_CLIENT_ID = "carebridge-gateway"
DEFAULT_BROKER = "mqtt://127.0.0.1:1883"


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parsed = urlparse(url if "://" in url else f"mqtt://{url}")
        if parsed.scheme not in ("mqtt", "tcp"):
            raise ValueError(f"unsupported broker URL scheme {parsed.scheme!r}; use mqtt://")
        return cls(parsed.hostname or "127.0.0.1", parsed.port or 1883)


@dataclass(frozen=True)
class Received:
    mid: int
    qos: int
    topic: str
    payload: bytes
    at: float  # time.monotonic() on arrival


@dataclass
class GatewayStats:
    batches: int = 0
    messages: int = 0
    stored: int = 0
    duplicate: int = 0
    refused: int = 0
    started: float = field(default_factory=time.monotonic)

    def add(self, reports: Sequence[DeliveryReport]) -> None:
        self.batches += 1
        self.messages += len(reports)
        for report in reports:
            self.stored += report.count(service.ReadingOutcome.STORED)
            self.duplicate += report.count(service.ReadingOutcome.DUPLICATE)
            self.refused += report.count(service.ReadingOutcome.REFUSED)


def topic_filter(prefix: str = "", shared_group: str | None = None) -> str:
    """`devices/+/readings`, optionally under a prefix (a site, a region, a test run); with a
    group, the shared subscription `$share/{group}/...` (MQTT 5.0 §4.8.2, which Mosquitto also
    offers to 3.1.1 clients): the broker hands each message to one gateway of the group."""
    base = f"{prefix.strip('/')}/{TOPIC_FILTER}" if prefix.strip("/") else TOPIC_FILTER
    return f"$share/{shared_group}/{base}" if shared_group else base


def device_of_topic(topic: str) -> str | None:
    """The device id in `[prefix/]devices/{id}/readings`."""
    parts = topic.split("/")
    if len(parts) >= 3 and parts[-3] == "devices" and parts[-1] == "readings" and parts[-2]:
        return parts[-2]
    return None


def to_delivery(message: Received) -> Delivery:
    """Decode one message; undecodable ones become deliveries that the service refuses."""
    device_id = device_of_topic(message.topic) or ""
    try:
        payload: Any = orjson.loads(message.payload)
    except orjson.JSONDecodeError:
        payload = {"undecodable": message.payload[:2000].decode("utf-8", "replace")}
    body, credential = service.split_credential(payload)
    return Delivery(device_id, body, utc_now(), credential or "")


class Gateway:
    """Subscribes, batches, commits, acknowledges. `run()` blocks until `stop()`."""

    def __init__(
        self,
        engine: Engine,
        broker: str = DEFAULT_BROKER,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        topic_prefix: str = "",
        shared_group: str | None = None,
        batch_size: int = 500,
        max_wait: float = 0.2,
        idle_gap: float = 0.01,
        config: IntakeConfig | None = None,
        on_commit: Callable[[Sequence[Received], Sequence[DeliveryReport]], None] | None = None,
    ) -> None:
        self.engine = engine
        self.address = BrokerAddress.parse(broker)
        self.topic = topic_filter(topic_prefix, shared_group)
        self.batch_size, self.max_wait, self.idle_gap = batch_size, max_wait, idle_gap
        self.config = config or IntakeConfig()
        self.on_commit = on_commit
        self.stats = GatewayStats()
        self.subscribed = threading.Event()
        self._stopping = threading.Event()
        self._inbox: queue.Queue[Received] = queue.Queue()
        self._ready: queue.Queue[tuple[list[Received], PreparedIntake | None] | None] = queue.Queue(
            maxsize=1
        )
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    # -- MQTT callbacks (network thread) ----------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, code: Any, _p: Any) -> None:
        if code.is_failure:
            log.error("broker refused the connection: %s", code)
            return
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        if any(code.is_failure for code in codes):
            log.error("the broker refused the subscription to %s", self.topic)
            return
        self.subscribed.set()
        log.info("subscribed to %s", self.topic)

    def _on_message(self, _client: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self._inbox.put(
            Received(
                message.mid, message.qos, message.topic, bytes(message.payload), time.monotonic()
            )
        )

    # -- main loop --------------------------------------------------------------------------------
    def run(self) -> GatewayStats:
        self._client.connect(self.address.host, self.address.port, keepalive=30)
        self._client.loop_start()
        committer = threading.Thread(target=self._commit_loop, name="gateway-commit", daemon=True)
        committer.start()
        try:
            while not self._stopping.is_set():
                batch = self._collect()
                if batch:
                    self._ready.put((batch, self._prepare(batch)))
        finally:
            self._stopping.set()  # also if the loop failed: a committer retrying a batch gives up
            self._ready.put(None)
            committer.join()
            self._client.disconnect()
            self._client.loop_stop()
        return self.stats

    def stop(self) -> None:
        self._stopping.set()

    def _collect(self) -> list[Received]:
        try:
            first = self._inbox.get(timeout=0.1)
        except queue.Empty:
            return []
        batch, deadline = [first], time.monotonic() + self.max_wait
        while len(batch) < self.batch_size:
            wait = min(self.idle_gap, deadline - time.monotonic())
            if wait <= 0:
                break
            try:
                batch.append(self._inbox.get(timeout=wait))
            except queue.Empty:
                break
        return batch

    def _prepare(self, batch: Sequence[Received]) -> PreparedIntake | None:
        """Normalize and serialize a batch (reads only) while the previous one commits; None if
        that fails, and the committer then runs the whole intake itself."""
        deliveries = [to_delivery(m) for m in batch]
        try:
            with self.engine.connect() as conn:
                return service.prepare(
                    FhirStore(conn), DeviceRepository(conn), deliveries, self.config
                )
        except Exception as exc:
            log.warning("preparing a batch of %d failed (%s)", len(batch), type(exc))
            return None

    def _commit_loop(self) -> None:
        """Commits prepared batches in arrival order and acknowledges them (its own thread, so
        the next batch is prepared meanwhile; the queue holds one batch, which bounds memory)."""
        while True:
            item = self._ready.get()
            if item is None:
                return
            self._settle(*item)

    def _settle(self, batch: list[Received], prepared: PreparedIntake | None) -> None:
        while not self._stopping.is_set():
            try:
                reports = self._commit(batch, prepared)
            except Exception as exc:
                log.warning("batch of %d failed (%s); retrying one by one", len(batch), type(exc))
                if not self._one_by_one(batch):
                    time.sleep(1.0)
                    prepared = None
                    continue
                return
            self._acknowledge(batch)
            self.stats.add(reports)
            if self.on_commit is not None:
                self.on_commit(batch, reports)
            return

    def _commit(
        self, batch: Sequence[Received], prepared: PreparedIntake | None = None
    ) -> list[DeliveryReport]:
        with self.engine.begin() as conn:
            store, repo = FhirStore(conn), DeviceRepository(conn)
            if prepared is None:
                return service.ingest(store, repo, [to_delivery(m) for m in batch], self.config)
            return service.commit(store, repo, prepared)

    def _one_by_one(self, batch: list[Received]) -> bool:
        """Each message in its own transaction; False when the database itself is failing."""
        for message in batch:
            try:
                reports = self._commit([message])
            except Exception as exc:
                if not self._dead_letter(message, type(exc).__name__):
                    return False
                reports = []
            self._acknowledge([message])
            self.stats.add(reports)
        return True

    def _dead_letter(self, message: Received, error: str) -> bool:
        letter = DeadLetter(
            device_of_topic(message.topic) or message.topic[:64],
            {"raw": message.payload[:100_000].decode("utf-8", "replace")},
            f"internal error: {error}",
            utc_now(),
        )
        try:
            with self.engine.begin() as conn:
                DeviceRepository(conn).add_dead_letters([letter])
        except Exception:
            log.error("cannot reach the database; the batch stays unacknowledged")
            return False
        return True

    def _acknowledge(self, batch: Sequence[Received]) -> None:
        for message in batch:
            if message.qos > 0:
                self._client.ack(message.mid, message.qos)
