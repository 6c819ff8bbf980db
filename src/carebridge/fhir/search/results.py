"""Statements that read what a compiled search matches: its count, a page, the keys of its
matches, and a search narrowed to keys found already (pure statement building)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, String, and_, bindparam, false, func, select

from carebridge.fhir.search.json_list import InJsonList, JsonKeys
from carebridge.fhir.search.query import SearchQuery
from carebridge.fhir.search.sql import Compiled
from carebridge.fhir.tables import resource


def page_statement(compiled: Compiled, query: SearchQuery) -> Select[tuple[object, ...]]:
    return (
        select(resource)
        .where(compiled.where)
        .order_by(*compiled.order_by)
        .limit(query.count)
        .offset(query.offset)
    )


def count_statement(compiled: Compiled) -> Select[Any]:
    return select(func.count()).select_from(resource).where(compiled.where)


def keys_statement(compiled: Compiled, limit: int) -> Select[int, str]:
    """(how many, the keys as the text of a JSON array) of up to `limit` matches, in no
    particular order: one row, whatever their number, whose list `only_rows` binds again as
    it came (no row per key to build and no list to serialize in Python)."""
    keys = select(resource.c.pk).where(compiled.where).limit(limit).subquery("matched")
    return select(func.count(), JsonKeys(keys.c.pk)).select_from(keys)


def only_rows(compiled: Compiled, keys: str, count: int) -> Compiled:
    """The rows of `keys` (`count` keys as one JSON array, json_list.py), in the order of
    `compiled`: the matches of a search whose keys were found already (their number is the
    total)."""
    if not count:
        return Compiled(false(), compiled.order_by, 0)
    listed = bindparam(None, keys, type_=String())
    chosen = InJsonList(resource.c.pk, listed, integers=True, seek=True)
    return Compiled(and_(resource.c.deleted == false(), chosen), compiled.order_by, count)
