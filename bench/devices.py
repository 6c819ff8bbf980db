"""Device readings benchmark: publish → committed Observation, through MQTT and through HTTP, on
SQLite and/or PostgreSQL; throughput and end-to-end latency p50/p95.

    python bench/devices.py --backend postgres --readings 30000 --rate 5000
    python bench/devices.py --backend postgres --readings 30000 --rate 5000 --gateways 2 --no-http
    python bench/devices.py --backend both --readings 10000 --rate 1000 --per-message 10

MQTT: a publisher *process* sends `--readings` generic-format readings, `--per-message` to a QoS 1
message, paced at `--rate` readings/s, to a private Mosquitto started for the run (no persistence,
`max_queued_messages 0` so nothing is dropped under backlog, `max_inflight_messages` from
`--inflight`, default 100). With `--gateways 1` the gateway (`devices.gateway.Gateway`, ack after
commit) runs in a thread of this process; with N > 1 a `GatewayPool` of N processes on a shared
subscription. Each gateway records the commit time of every message it stores. Latency = commit
time - publish time, per message; throughput = readings / (last commit - first publish). The run
fails if any reading is missing afterwards.

HTTP: `POST /devices/readings` through the ASGI app in process (no network), one device credential,
`--http-batch` readings per request, sequential; latency is per request (`--no-http` skips it).

Prints a table and writes bench/results/devices-<backend>-<rate>per-s-<N>gw.json with the machine's
load average.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from carebridge.app import create_app
from carebridge.config import Settings
from carebridge.devices import endpoints as device_endpoints
from carebridge.devices import service
from carebridge.devices.gateway import Gateway, Received
from carebridge.devices.gateway_pool import GatewayPool, GatewaySpec
from carebridge.devices.registry import DeviceKind
from carebridge.devices.repository import DeviceRepository
from carebridge.devices.service import DeliveryReport
from carebridge.fhir.records import Method, WriteOp
from carebridge.fhir.schema import upgrade
from carebridge.fhir.store import FhirStore
from carebridge.fhir.tables import resource
from carebridge.kit.clock import utc_now
from carebridge.kit.collector import collect_rarely
from carebridge.kit.db import create_db_engine
from harness import Report, database_url, latency_summary, stopwatch

START = datetime(2024, 1, 1, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_broker(workdir: Path, inflight: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        f"max_queued_messages 0\nmax_inflight_messages {inflight}\n"
    )
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    broker = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return broker, port
        except OSError:
            time.sleep(0.1)
    broker.kill()
    sys.exit("mosquitto did not start")


def prepare(url: str, devices: int) -> tuple[Engine, dict[str, str]]:
    engine = create_db_engine(url)
    upgrade(engine)
    tokens: dict[str, str] = {}
    with engine.begin() as conn:
        store, repo = FhirStore(conn), DeviceRepository(conn)
        store.write([WriteOp(Method.PUT, "Patient", "bench-p", {"resourceType": "Patient"})])
        for index in range(devices):
            made = service.register_device(
                store,
                repo,
                patient_id="bench-p",
                kind=DeviceKind.WEIGHT,
                device_id=f"bench-scale-{index}",
                now=utc_now(),
            )
            tokens[made.device_id] = made.credential
    return engine, tokens


def readings(offset: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "kind": "weight",
            "time": (START + timedelta(seconds=offset + i)).isoformat(),
            "value": 70 + (offset + i) % 300 / 10,
            "unit": "kg",
        }
        for i in range(count)
    ]


def observations(engine: Engine) -> int:
    with engine.connect() as conn:
        statement = select(func.count()).where(resource.c.res_type == "Observation")
        return int(conn.execute(statement).scalar_one())


# -- MQTT -----------------------------------------------------------------------------------------
def publisher(port: int, tokens: dict[str, str], args: Any, out: Any) -> None:
    """Runs in its own process: paced QoS 1 publishing; sends back {seq: publish time}."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-publisher")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    devices = list(tokens)
    messages = args.readings // args.per_message
    interval = args.per_message / args.rate
    sent: dict[int, float] = {}
    infos = []
    begin = time.time()
    for seq in range(messages):
        due = begin + seq * interval
        pause = due - time.time()
        if pause > 0:
            time.sleep(pause)
        device = devices[seq % len(devices)]
        body = {
            "seq": seq,
            "credential": tokens[device],
            "readings": readings(seq * args.per_message, args.per_message),
        }
        sent[seq] = time.time()
        infos.append(client.publish(f"devices/{device}/readings", orjson.dumps(body), qos=1))
    for info in infos:
        info.wait_for_publish(120)
    client.disconnect()
    client.loop_stop()
    out.put(sent)


def record_commits(out: Any, batch: Sequence[Received], _reports: Sequence[DeliveryReport]) -> None:
    """on_commit in a pool's gateway process: (seq, commit time) of each message, to the bench."""
    now = time.time()
    out.put([(orjson.loads(m.payload)["seq"], now) for m in batch])


class Gateways:
    """The gateway under test: one in a thread of this process, or a pool of processes."""

    def __init__(self, engine: Engine, port: int, count: int) -> None:
        self.committed: dict[int, float] = {}
        self.count = count
        broker = f"mqtt://127.0.0.1:{port}"
        if count == 1:
            collect_rarely()  # as `carebridge devices gateway` does in its process
            self.single = Gateway(engine, broker, client_id="bench-gw", on_commit=self._record)
            self.runner = threading.Thread(target=self.single.run, daemon=True)
            return
        self.queue: Any = mp.get_context("spawn").Queue()
        url = engine.url.render_as_string(hide_password=False)
        self.pool = GatewayPool(
            GatewaySpec(url, broker, "bench-gw"), count, partial(record_commits, self.queue)
        )
        self.runner = threading.Thread(target=self.pool.run, daemon=True)

    def _record(self, batch: Sequence[Received], _reports: Sequence[DeliveryReport]) -> None:
        now = time.time()
        for message in batch:
            self.committed[orjson.loads(message.payload)["seq"]] = now

    def start(self) -> None:
        self.runner.start()
        if self.count == 1:
            if not self.single.subscribed.wait(10):
                sys.exit("the gateway did not subscribe")
        else:
            time.sleep(8)  # spawned processes import, connect and subscribe

    def drain(self) -> None:
        if self.count > 1:
            while not self.queue.empty():
                self.committed.update(self.queue.get())

    def stop(self) -> int:
        if self.count == 1:
            self.single.stop()
            self.runner.join(30)
            return self.single.stats.batches
        self.pool.stop()
        self.runner.join(60)
        self.drain()
        return self.pool.total.batches


def mqtt_run(url: str, args: Any, workdir: Path) -> dict[str, Any]:
    engine, tokens = prepare(url, args.devices)
    broker, port = start_broker(workdir, args.inflight)
    gateways = Gateways(engine, port, args.gateways)
    try:
        gateways.start()
        out: Any = mp.Queue()
        pub = mp.Process(target=publisher, args=(port, tokens, args, out))
        pub.start()
        sent: dict[int, float] = out.get(timeout=3600)
        pub.join()
        deadline = time.time() + 3600
        while len(gateways.committed) < len(sent) and time.time() < deadline:
            gateways.drain()
            time.sleep(0.05)
        batches = gateways.stop()
    finally:
        broker.kill()
        broker.wait()
    committed = gateways.committed
    stored = observations(engine)
    engine.dispose()
    latencies = [committed[s] - sent[s] for s in sent if s in committed]
    span = max(committed.values()) - min(sent.values())
    total = len(sent) * args.per_message
    return {
        "readings": total,
        "stored": stored,
        "lost": total - stored,
        "per_s": total / span,
        **latency_summary(latencies),
        "batches": batches,
    }


# -- HTTP -----------------------------------------------------------------------------------------
def http_run(url: str, args: Any) -> dict[str, Any]:
    engine, tokens = prepare(url, 1)
    token = next(iter(tokens.values()))
    app = create_app(Settings(database_url=url))
    app.include_router(device_endpoints.readings_router)
    requests = args.readings // args.http_batch
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client, stopwatch() as elapsed:
        for number in range(requests):
            body = {"readings": readings(number * args.http_batch, args.http_batch)}
            began = time.perf_counter()
            response = client.post("/devices/readings", json=body, headers=headers)
            latencies.append(time.perf_counter() - began)
            if response.status_code != 200:
                sys.exit(f"HTTP intake failed: {response.status_code} {response.text[:300]}")
    app.state.engine.dispose()
    total = requests * args.http_batch
    stored = observations(engine)
    engine.dispose()
    per_s = total / elapsed()
    counts = {"readings": total, "stored": stored, "lost": total - stored, "per_s": per_s}
    return counts | latency_summary(latencies)


def run(backend: str, args: Any) -> None:
    report = Report(
        "devices",
        ["path", "readings", "stored", "lost", "readings/s", "p50 ms", "p95 ms", "batches"],
    )
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        mqtt_url = database_url(backend, "bench_devices_mqtt", fresh=True)
        mqtt_result = mqtt_run(mqtt_url, args, Path(tmp))
    results = [("MQTT → gateway", mqtt_result)]
    if not args.no_http:
        http_url = database_url(backend, "bench_devices_http", fresh=True)
        results.append(("HTTP batch", http_run(http_url, args)))
    for name, result in results:
        report.add(
            f"{name} ({args.rate:,}/s offered, {args.gateways} process)"
            if name.startswith("MQTT")
            else name,
            result["readings"],
            result["stored"],
            result["lost"],
            float(result["per_s"]),
            float(result["p50_ms"]),
            float(result["p95_ms"]),
            result.get("batches", ""),
        )
    report.meta = {
        "rate_offered": args.rate,
        "per_message": args.per_message,
        "http_batch": args.http_batch,
        "devices": args.devices,
        "gateway_processes": args.gateways,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "broker": "private mosquitto, max_queued_messages 0",
        "max_inflight_messages": args.inflight,
    }
    report.emit(f"{backend}-{args.rate}per-s-{args.gateways}gw")
    print(f"load average before {load_before}, after {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--readings", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=5_000, help="offered readings/s (MQTT)")
    parser.add_argument("--per-message", type=int, default=10)
    parser.add_argument("--http-batch", type=int, default=100)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument(
        "--gateways", type=int, default=1, help="gateway processes (a shared subscription)"
    )
    parser.add_argument("--no-http", action="store_true", help="only the MQTT path")
    parser.add_argument(
        "--inflight", type=int, default=100, help="broker max_inflight_messages per session"
    )
    args = parser.parse_args()
    for backend in ("sqlite", "postgres") if args.backend == "both" else (args.backend,):
        run(backend, args)


if __name__ == "__main__":
    main()
