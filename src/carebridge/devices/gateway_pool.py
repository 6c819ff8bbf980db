"""Several gateway processes sharing one subscription, for more throughput than one process.

One gateway process is bound by the Python interpreter (normalizing, indexing and serializing
readings hold its lock), so throughput grows with processes, not threads. `run_pool` starts
`processes` gateways, each with its own persistent MQTT session (client id `{client_id}-{n}`)
subscribed to the shared subscription `$share/{client_id}/devices/+/readings`: the broker hands
each message to one of them. Every gateway keeps the single-gateway guarantees (QoS 1, ack after
commit, dedupe keys), so a message redelivered to another process after a crash is still stored
once. A gateway's own queued messages wait in its session until it is back (Mosquitto keeps
them per session), so a restarted pool loses nothing.

SIGTERM or SIGINT to the parent stops every gateway after its current batch.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from carebridge.devices.gateway import Gateway, GatewayStats, Received
from carebridge.devices.service import DeliveryReport, intake_config
from carebridge.kit.collector import collect_rarely
from carebridge.kit.db import create_db_engine

log = logging.getLogger("carebridge.devices.gateway")

OnCommit = Callable[[Sequence[Received], Sequence[DeliveryReport]], None]


@dataclass(frozen=True)
class GatewaySpec:
    """What each gateway process needs (picklable: processes are spawned)."""

    database_url: str
    broker: str
    client_id: str
    topic_prefix: str = ""
    batch_size: int = 500
    max_wait: float = 0.2
    templates_dir: Path | None = None


def run_pool(spec: GatewaySpec, processes: int, on_commit: OnCommit | None = None) -> GatewayStats:
    """Run `processes` gateways until SIGTERM/SIGINT; returns their summed statistics."""
    pool = GatewayPool(spec, processes, on_commit)
    previous = {
        sig: signal.signal(sig, lambda _s, _f: pool.stop())
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        return pool.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class GatewayPool:
    """`processes` gateway processes, supervised: one that dies is started again (same client
    id, so its session and queued messages carry on). `on_commit` (picklable) runs in each
    gateway process after each committed batch. `run()` blocks until `stop()`."""

    def __init__(
        self, spec: GatewaySpec, processes: int, on_commit: OnCommit | None = None
    ) -> None:
        self.spec, self.processes, self.on_commit = spec, processes, on_commit
        self.context = mp.get_context("spawn")
        self.results: Any = self.context.Queue()
        self.workers: dict[int, Any] = {}
        self.stopping = False
        self.total = GatewayStats()

    def run(self) -> GatewayStats:
        for index in range(1, self.processes + 1):
            self.start(index)
        return self.supervise()

    def start(self, index: int) -> None:
        worker = self.context.Process(
            target=_gateway_process,
            args=(self.spec, index, self.results, self.on_commit),
            name=f"gateway-{index}",
        )
        worker.start()
        self.workers[index] = worker

    def stop(self) -> None:
        self.stopping = True
        for worker in self.workers.values():
            if worker.is_alive():
                worker.terminate()  # SIGTERM: the gateway finishes its batch and reports

    def supervise(self) -> GatewayStats:
        while True:
            self._collect_results(timeout=1.0)
            alive = [w for w in self.workers.values() if w.is_alive()]
            if self.stopping and not alive:
                self._collect_results(timeout=0.5)
                return self.total
            if not self.stopping:
                self._restart_dead()

    def _collect_results(self, timeout: float) -> None:
        wait: float | None = timeout
        while True:
            try:
                stats: GatewayStats = self.results.get(timeout=wait)
            except queue.Empty:
                return
            for name in ("batches", "messages", "stored", "duplicate", "refused"):
                setattr(self.total, name, getattr(self.total, name) + getattr(stats, name))
            wait = 0.01

    def _restart_dead(self) -> None:
        for index, worker in list(self.workers.items()):
            if not worker.is_alive():
                log.warning(
                    "gateway-%d exited (code %s); starting it again", index, worker.exitcode
                )
                self.start(index)


def _gateway_process(
    spec: GatewaySpec, index: int, results: Any, on_commit: OnCommit | None
) -> None:
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s gateway-{index}[%(process)d] %(message)s"
    )
    collect_rarely()  # a gateway process only does intake (kit/collector.py)
    engine = create_db_engine(spec.database_url)
    gateway = Gateway(
        engine,
        spec.broker,
        client_id=f"{spec.client_id}-{index}",
        topic_prefix=spec.topic_prefix,
        shared_group=spec.client_id,
        batch_size=spec.batch_size,
        max_wait=spec.max_wait,
        config=intake_config(spec.templates_dir),
        on_commit=on_commit,
    )

    def stop(_signum: int, _frame: FrameType | None) -> None:
        gateway.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; Ctrl-C reaches it too
    threading.Thread(target=_stop_with_parent, args=(gateway,), daemon=True).start()
    try:
        stats = gateway.run()
        log.info("stopped: %d messages, %d stored", stats.messages, stats.stored)
        results.put(stats)
    finally:
        engine.dispose()


def _stop_with_parent(gateway: Gateway) -> None:
    """A gateway whose parent is gone (killed) stops too, rather than run unsupervised."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(1.0)
    gateway.stop()
