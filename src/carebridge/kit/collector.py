"""Garbage-collector thresholds for bulk work (loads, feeds, device gateways), process-wide.

A load allocates millions of short-lived, acyclic objects (rows, resources, index rows). With the
default thresholds the cyclic collector runs every 700 allocations and, as a run's caches grow,
walks an ever larger heap: 20-25% of a feed run's time, 17% of a bulk load's writer samples and
about 35% of a device gateway's CPU time per reading (166 -> 106 µs preparing, 51 -> 36 µs
committing, on PostgreSQL), measured. Reference counting frees these objects anyway, so bulk
work collects rarely. The thresholds are process-wide, so the API, whose process serves other
requests, leaves them alone.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

BULK_GC_THRESHOLDS = (100_000, 50, 1_000)


@contextmanager
def fewer_collections(enabled: bool = True) -> Iterator[None]:
    """Raise the thresholds for the duration of the block (no-op when not `enabled`)."""
    if not enabled:
        yield
        return
    before = gc.get_threshold()
    gc.set_threshold(*BULK_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def collect_rarely() -> None:
    """For a process that only does bulk work (a pool initializer, a device gateway)."""
    gc.set_threshold(*BULK_GC_THRESHOLDS)
