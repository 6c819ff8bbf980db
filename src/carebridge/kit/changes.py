"""Writes of watched resource types made by this process, counted.

A cache of data read from the store (roles: access/role_lookup.py) compares a counter to the
value it saw to know, without a query, that this process has changed nothing it depends on
since it last looked. Changes made by other processes it still has to ask the database about.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

_lock = threading.Lock()


class WriteCounter:
    """Counts the writes (each a batch of resources) that touched any of `types`. Read without
    a lock: an int attribute is replaced whole, and it only grows."""

    __slots__ = ("types", "value")

    def __init__(self, types: frozenset[str]) -> None:
        self.types = types
        self.value = 0


_counters: list[WriteCounter] = []


def watch(resource_types: Iterable[str]) -> WriteCounter:
    """A counter of this process's writes of any of `resource_types` from now on."""
    counter = WriteCounter(frozenset(resource_types))
    with _lock:
        _counters.append(counter)
    return counter


def note_writes(resource_types: Iterable[str]) -> None:
    """Count a write of `resource_types` (called by the FHIR writer, before commit)."""
    written = set(resource_types)
    with _lock:
        for counter in _counters:
            if not counter.types.isdisjoint(written):
                counter.value += 1
