"""Identifiers: FHIR logical ids (spec 2.1.0 `id`: [A-Za-z0-9\\-\\.]{1,64})."""

from __future__ import annotations

import re
import uuid

FHIR_ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def new_id() -> str:
    """A fresh, globally unique FHIR logical id."""
    return str(uuid.uuid4())


def is_valid_id(value: str) -> bool:
    return bool(FHIR_ID_PATTERN.match(value))
