"""The one place that reads the wall clock, so that everything else can take time as a parameter."""

from __future__ import annotations

from datetime import UTC, date, datetime


def utc_now() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)


def today() -> date:
    """Current UTC calendar date."""
    return utc_now().date()
