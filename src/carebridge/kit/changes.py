"""Writes per resource type made by this process, counted.

A cache of data read from the store (roles: access/role_lookup.py) compares these counts to
know, without a query, that this process has changed nothing it depends on since it last
looked. Changes made by other processes it still has to ask the database about.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable

_lock = threading.Lock()
_writes: Counter[str] = Counter()


def note_writes(resource_types: Iterable[str]) -> None:
    """Count a write of each of `resource_types` (called by the FHIR writer, before commit)."""
    with _lock:
        _writes.update(set(resource_types))


def writes_of(resource_types: Iterable[str]) -> int:
    """How many writes of `resource_types` this process has counted."""
    with _lock:  # a list, not a generator: asked on every request (role_lookup.py)
        return sum([_writes[t] for t in resource_types if t in _writes])
