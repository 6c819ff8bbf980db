"""Shared benchmark plumbing: databases per backend, timing, result tables and JSON files."""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from carebridge.kit.db import normalize_url

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DATA = ROOT / "bench" / ".data"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def database_url(backend: str, name: str, *, fresh: bool) -> str:
    """A benchmark database for `backend` (sqlite file under bench/.data, or a PostgreSQL db)."""
    if backend == "sqlite":
        DATA.mkdir(parents=True, exist_ok=True)
        path = DATA / f"{name}.db"
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    admin_url = normalize_url(os.environ.get("CAREBRIDGE_BENCH_POSTGRES_URL", DEFAULT_PG))
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if fresh:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        ).first()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    start = time.perf_counter()
    elapsed: list[float] = []
    yield lambda: elapsed[0] if elapsed else time.perf_counter() - start
    elapsed.append(time.perf_counter() - start)


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def p95_ratio_interval(
    baseline: list[float], other: list[float], *, rounds: int = 400, seed: int = 0
) -> tuple[float, float]:
    """A 90% bootstrap interval of `percentile(other, 95) / percentile(baseline, 95) - 1`:
    the samples are resampled by index, both lists at once (sample i of each was taken in the
    same round, and is of the same request where the benchmark pairs them), and the 5th and
    95th percentiles of the ratios over `rounds` resamples are returned. It says how far the
    sampling alone may move a run's p95 overhead; drift of the machine between runs comes on
    top (the modes are interleaved, so it moves both alike within a run)."""
    n = min(len(baseline), len(other))
    if n == 0:
        return (float("nan"), float("nan"))
    rng = random.Random(seed)
    ratios = []
    for _ in range(rounds):
        picks = rng.choices(range(n), k=n)
        base = percentile([baseline[i] for i in picks], 95)
        ratios.append(percentile([other[i] for i in picks], 95) / base - 1)
    return percentile(ratios, 5), percentile(ratios, 95)


def latency_summary(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


@dataclass
class Report:
    name: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def add(self, *values: Any) -> None:
        self.rows.append(list(values))

    def emit(self, suffix: str) -> Path:
        table = Table(title=f"{self.name} ({suffix})")
        for column in self.columns:
            table.add_column(column, justify="right" if column != self.columns[0] else "left")
        for row in self.rows:
            table.add_row(*(f"{v:,.1f}" if isinstance(v, float) else str(v) for v in row))
        Console(width=160).print(table)
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{self.name}-{suffix}.json"
        payload = {
            "benchmark": self.name,
            "backend": suffix,
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "meta": self.meta,
            "columns": self.columns,
            "rows": self.rows,
        }
        path.write_text(json.dumps(payload, indent=2) + "\n")
        return path
