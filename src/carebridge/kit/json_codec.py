"""JSON encode/decode with orjson (fast, strict UTF-8)."""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def dumps_bytes(value: Any) -> bytes:
    return orjson.dumps(value)


def loads(raw: str | bytes) -> Any:
    return orjson.loads(raw)


JSONDecodeError = orjson.JSONDecodeError
