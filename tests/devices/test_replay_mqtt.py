"""`devices replay`: the generator's streams, through a real broker and gateway, into the store.

Every distinct reading in the streams (by dedupe key, after normalization) ends up as exactly one
Observation; the generator's duplicated readings do not; patients are created by member id.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine

from carebridge.devices import replay
from carebridge.devices.normalize import NormalizationPolicy, normalize_payload
from carebridge.devices.readings import DeviceContext, NormalizedReading
from carebridge.devices.templates import builtin_templates
from carebridge.fhir.service import FhirContext, find_matches
from carebridge.fhir.store import FhirStore
from carebridge.kit.clock import utc_now
from carebridge.synth.dataset import SynthConfig, generate
from carebridge.synth.writers import write_dataset
from tests.devices.mqtt_support import GatewayProcess, observation_versions, wait_for

pytestmark = pytest.mark.mqtt


def expected_keys(directory: Path, devices: list[replay.StreamDevice]) -> set[str]:
    keys: set[str] = set()
    templates = builtin_templates()
    for device in devices:
        lines = (directory / "devices" / f"{device.device_id}.jsonl").read_text().splitlines()
        payload = {"readings": [orjson.loads(line) for line in lines]}
        context = DeviceContext(device.device_id, "p", utc_now())
        for result in normalize_payload(payload, context, templates, NormalizationPolicy()):
            if isinstance(result, NormalizedReading):
                keys.add(result.dedupe_key)
    return keys


def test_replay_stores_every_distinct_reading_once(
    engine: Engine, broker_url: str, gateway_id: str, tmp_path: Path
) -> None:
    write_dataset(generate(SynthConfig(patients=60, seed=7, stores=2, months=1)), tmp_path)
    devices = replay.read_registry(tmp_path)
    assert devices, "the generator wrote no devices"
    expected = expected_keys(tmp_path, devices)
    db_url = engine.url.render_as_string(hide_password=False)
    gateway = GatewayProcess(db_url, broker_url, gateway_id)
    gateway.start()
    try:
        tokens = replay.enrol(engine, devices)
        items = replay.messages(tmp_path, tokens, per_message=20, topic_prefix=gateway_id)
        replay.publish(broker_url, items, f"{gateway_id}-replay")
        wait_for(engine, len(expected))
        assert gateway.stop() == 0
    finally:
        gateway.kill()
    versions = observation_versions(engine)
    assert len(versions) == len(expected)
    assert set(versions) == {1}
    with engine.connect() as conn:
        store = FhirStore(conn)
        member = devices[0].member_id
        query = f"identifier={replay.PHARMACY_MEMBER_SYSTEM}|{member}"
        assert len(find_matches(store, FhirContext(""), "Patient", query)) == 1
