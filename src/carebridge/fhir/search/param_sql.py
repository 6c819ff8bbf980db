"""SQL conditions selecting a search parameter's index rows (pure statement building).

A parameter's values are in the rows of the parameters it is indexed as (derived.py): its own,
or, for a derived parameter, those of its parts (`combo-code` -> `code`, `component-code`),
restricted to a target type for `X.where(resolve() is T)` (`patient` -> `subject` rows that
reference a Patient). Every statement that reads index rows by parameter goes through here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, or_

from carebridge.fhir.search.derived import IndexedAs, derivations_of, indexed_as


def param_rows(table: Any, resource_type: str | None, code: str) -> ColumnElement[bool]:
    """Rows of `table` (an index table or alias) holding `code`'s values, among rows the caller
    has confined to `resource_type`. Without a type (a search over several types), each type
    answers `code` its own way."""
    if resource_type:
        return _where(table, indexed_as(resource_type, code))
    derived = derivations_of(code)
    if not derived:
        return table.c.param == code  # type: ignore[no-any-return]
    return or_(
        and_(table.c.res_type.not_in(sorted(derived)), table.c.param == code),
        *(and_(table.c.res_type == t, _where(table, where)) for t, where in derived.items()),
    )


def _where(table: Any, where: IndexedAs) -> ColumnElement[bool]:
    codes = where.codes
    param = table.c.param == codes[0] if len(codes) == 1 else table.c.param.in_(codes)
    if where.target_type is None:
        return param  # type: ignore[no-any-return]
    return and_(param, table.c.target_type == where.target_type)
