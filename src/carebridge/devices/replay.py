"""Replay the synthetic generator's device streams through MQTT, as real devices would send them.

Reads `DIR/devices/devices.csv` (columns of `ingest.feeds.DEVICE_REGISTRY`) and
`DIR/devices/<device_id>.jsonl` (one generic-format reading per line, docs/synthetic-data.md).

- Each device is registered under its serial as the Device id. Its patient is the Patient whose
  identifier is `https://carebridge.dev/fhir/sid/pharmacy-member|<pharmacy_member_id>` (the system
  the generator's Bundles use); if none exists, a minimal Patient with only that identifier is
  created so readings are never orphaned, and a later load of the Bundles can be merged by
  identifier.
- A device that is already registered gets a new credential (the old one only exists as a hash),
  so replaying twice works; its earlier readings are recognised as duplicates by the gateway.
- Readings are sent in file order, `per_message` to a message, as `{"credential": ..., "readings":
  [...]}` with QoS 1 to `devices/<device_id>/readings`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine

from carebridge.devices import service
from carebridge.devices.gateway import BrokerAddress
from carebridge.devices.registry import DeviceKind
from carebridge.devices.repository import DeviceRepository
from carebridge.fhir.store import FhirStore
from carebridge.kit.clock import utc_now

PHARMACY_MEMBER_SYSTEM = "https://carebridge.dev/fhir/sid/pharmacy-member"


@dataclass(frozen=True)
class StreamDevice:
    device_id: str
    member_id: str
    kind: DeviceKind
    vendor: str


def read_registry(directory: Path) -> list[StreamDevice]:
    with (directory / "devices" / "devices.csv").open(newline="", encoding="utf-8") as handle:
        return [
            StreamDevice(
                row["device_id"], row["pharmacy_member_id"], DeviceKind(row["kind"]), row["vendor"]
            )
            for row in csv.DictReader(handle)
        ]


def enrol(engine: Engine, devices: Iterable[StreamDevice]) -> dict[str, str]:
    """Register (or re-key) every device in one transaction; device id → credential."""
    tokens: dict[str, str] = {}
    now = utc_now()
    with engine.begin() as conn:
        store, repo = FhirStore(conn), DeviceRepository(conn)
        patients: dict[str, str] = {}
        for device in devices:
            if device.member_id not in patients:
                patients[device.member_id] = service.patient_by_identifier(
                    store, PHARMACY_MEMBER_SYSTEM, device.member_id, now
                )
            if repo.credentials([device.device_id]):
                tokens[device.device_id] = service.rotate_credential(repo, device.device_id, now)
                continue
            made = service.register_device(
                store,
                repo,
                patient_id=patients[device.member_id],
                kind=device.kind,
                vendor=device.vendor,
                device_id=device.device_id,
                now=now,
            )
            tokens[device.device_id] = made.credential
    return tokens


def messages(
    directory: Path, tokens: dict[str, str], per_message: int, topic_prefix: str = ""
) -> Iterator[tuple[str, bytes, int]]:
    """(topic, payload, readings in it) for every device's stream, in file order."""
    prefix = f"{topic_prefix.strip('/')}/" if topic_prefix.strip("/") else ""
    for device_id, token in tokens.items():
        path = directory / "devices" / f"{device_id}.jsonl"
        lines = [line for line in path.read_bytes().splitlines() if line.strip()]
        for start in range(0, len(lines), per_message):
            readings = [orjson.loads(line) for line in lines[start : start + per_message]]
            payload = orjson.dumps({"credential": token, "readings": readings})
            yield f"{prefix}devices/{device_id}/readings", payload, len(readings)


def publish(broker: str, items: Iterable[tuple[str, bytes, int]], client_id: str) -> int:
    """Publish with QoS 1 and wait until the broker has acknowledged every message."""
    address = BrokerAddress.parse(broker)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.max_inflight_messages_set(200)
    client.connect(address.host, address.port)
    client.loop_start()
    readings = 0
    pending: list[mqtt.MQTTMessageInfo] = []
    try:
        for topic, payload, count in items:
            pending.append(client.publish(topic, payload, qos=1))
            readings += count
        for info in pending:
            info.wait_for_publish(timeout=60)
    finally:
        client.disconnect()
        client.loop_stop()
    return readings
