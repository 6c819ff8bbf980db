"""Reading a CSV feed file (the column contracts of `ingest/feeds.py`) and the adapter shape that
the dispensing and claims sources fill in.

Rows are read with the standard `csv` module (RFC 4180 quoting) and keep the number of the source
line they start on, so a dead letter points at the line a person can open. Bytes that are not
UTF-8 are kept as lone surrogates (`surrogateescape`) and refused per row, not per file. A header
that does not match the feed's contract refuses the whole file: the columns would be misread.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from carebridge.ingest.feeds import Feed
from carebridge.ingest.records import MappedResource, SourcePatient
from carebridge.kit.errors import InvalidRequestError

RawRow = tuple[int, tuple[str, ...]]  # (source line number, fields)
MapRow = Callable[[Mapping[str, str], str, bool], list[MappedResource]]
Merge = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class CsvSource:
    """One CSV feed: how to read who a row is about (main process, before matching) and how to
    map the row to resources for a patient (worker processes). Both are pure functions."""

    feed: Feed
    patient_of: Callable[[Mapping[str, str]], SourcePatient]
    map_row: MapRow
    identity_columns: tuple[str, ...]  # the columns `patient_of` reads
    # How the writer combines a resource that several rows describe (`MappedResource.merged`)
    # with what another row or the store already holds, by resource type.
    merge_rules: Mapping[str, Merge] = field(default_factory=dict)

    @property
    def identity_positions(self) -> tuple[int, ...]:
        return tuple(self.feed.column_names.index(c) for c in self.identity_columns)


class FeedFormatError(InvalidRequestError):
    """The file is not in the feed's format (wrong header)."""


def read_rows(path: Path, feed: Feed, *, after_line: int = 1) -> Iterator[RawRow]:
    """Data rows after source line `after_line` (1 = the header), skipping blank lines."""
    with _open(path) as handle:
        reader = csv.reader(handle)
        check_header(next(reader, None), feed)
        line = reader.line_num
        for fields in reader:
            start, line = line + 1, reader.line_num
            if fields and start > after_line:
                yield start, tuple(fields)


def check_file(path: Path, feed: Feed) -> None:
    """Refuse a file whose header is not the feed's, before anything is written."""
    with _open(path) as handle:
        check_header(next(csv.reader(handle), None), feed)


def _open(path: Path) -> TextIO:
    return path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")


def check_header(header: list[str] | None, feed: Feed) -> None:
    expected = list(feed.column_names)
    if header is None:
        raise FeedFormatError(f"the file is empty; a {feed.name} file starts with a header row")
    if [h.strip() for h in header] != expected:
        missing = [c for c in expected if c not in header]
        detail = f"missing {', '.join(missing)}" if missing else "columns out of order or extra"
        raise FeedFormatError(f"not a {feed.name} file: header does not match ({detail})")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def count_rows(path: Path) -> int:
    """Lines after the header (an estimate of data rows, for progress bars)."""
    with path.open("rb") as handle:
        lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
    return max(0, lines - 1)
