"""`kill -9` in the middle of a run, then the same command again: the same store as a run that
was never interrupted (checkpoints commit with their batch)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import Engine

from carebridge.ingest import service as ingest_service
from carebridge.ingest.pipeline import IngestOptions
from tests.ingest.conftest import counts, snapshot, wipe

ROOT = Path(__file__).resolve().parents[2]
RUN = """
import sys, time
from pathlib import Path
from carebridge.ingest import service
from carebridge.ingest.pipeline import IngestOptions
from carebridge.kit.db import create_db_engine

options = IngestOptions(batch_size=20, workers=1, analyze=False)
service.ingest_feed(
    create_db_engine(sys.argv[1]), "dispensing", Path(sys.argv[2]),
    options=options, progress=lambda rows: time.sleep(0.2),
)
"""


def wait_for_batches(engine: Engine, batches: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = ingest_service.runs(engine)
        if found and found[0].totals.batches >= batches:
            return
        assert process.poll() is None, "the ingest finished or died before it could be killed"
        time.sleep(0.05)
    raise AssertionError("no checkpoint within 60 s")


def test_kill_9_mid_run_then_the_same_command_gives_the_same_store(
    engine: Engine, population: Path
) -> None:
    source = population / "dispensing.csv"
    options = IngestOptions(batch_size=20, workers=0, analyze=False)
    ingest_service.ingest_feed(engine, "dispensing", source, options=options)
    clean = snapshot(engine)
    wipe(engine)
    url = engine.url.render_as_string(hide_password=False)
    process = subprocess.Popen(
        [sys.executable, "-c", RUN, url, str(source)], cwd=ROOT, start_new_session=True
    )
    try:
        wait_for_batches(engine, 2, process)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the ingest and its worker process
        process.wait()
    (killed,) = ingest_service.runs(engine)
    assert killed.status == "running"
    assert 0 < counts(engine)["MedicationDispense"] < len(clean)
    resumed = ingest_service.ingest_feed(engine, "dispensing", source, options=options)
    assert (resumed.run_id, resumed.resumed_after) == (killed.run_id, killed.totals.last_line)
    assert snapshot(engine) == clean
