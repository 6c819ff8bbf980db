"""Parse FHIR search parameters (R4 search.html) into a `SearchQuery` (pure).

Unknown parameters, and the special ones this server does not implement (`_filter`, `_text`,
`_content`, `_query`, `_list`), are an error under `Prefer: handling=strict` and are ignored and
reported under `handling=lenient` (search.html#errors). Unsupported modifiers are always an error
(search.html#modifiers: the server SHALL reject them), and so are invalid values of a parameter the
server does support: a malformed date, a number that is not a finite decimal, an empty token `|`, a
reference naming no resource, a malformed `_has`, paging values out of range. Silently ignoring
them would return wrong results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from carebridge.fhir.search.parameters import SearchParam, registry
from carebridge.fhir.search.query import Criterion, Include, SearchQuery, SortKey
from carebridge.fhir.search.values import (
    number_range,
    split_prefix,
    split_unescaped,
    unescape,
)
from carebridge.kit.digits import ascii_digits, ascii_int
from carebridge.kit.errors import InvalidRequestError, NotSupportedError

RESULT_PARAMS = frozenset(
    {
        "_count",
        "_offset",
        "_sort",
        "_include",
        "_revinclude",
        "_summary",
        "_elements",
        "_total",
        "_format",
        "_pretty",
        "_type",
    }
)
SPECIAL = {"_id": "token", "_lastUpdated": "date"}
SUPPORTED_MODIFIERS = {
    "token": {"missing", "not"},
    "string": {"missing", "exact", "contains"},
    "date": {"missing"},
    "reference": {"missing"},
    "quantity": {"missing"},
    "number": {"missing"},
    "uri": {"missing", "below", "above"},
}
SUMMARY_MODES = {"count", "true", "false", "data", "text"}
# The largest LIMIT and OFFSET SQLite and PostgreSQL take (a signed 64-bit integer): the bound of
# `_count` and `_offset`, so a larger value is a 400 and not an overflow in the database driver.
MAX_PAGING = 2**63 - 1
TOTAL_MODES = {"none", "estimate", "accurate"}


@dataclass(frozen=True)
class Limits:
    default_count: int = 50
    max_count: int = 1000


def split_values(raw: str) -> tuple[str, ...]:
    """Split an OR list on unescaped commas (search.html#escaping).

    Escapes stay in the values; the SQL builder splits token and quantity values on `|` and then
    unescapes each part.
    """
    return tuple(split_unescaped(raw, ","))


def parse_search(
    resource_types: Sequence[str],
    params: Sequence[tuple[str, str]],
    *,
    strict: bool = False,
    limits: Limits | None = None,
) -> SearchQuery:
    """Turn request parameters into a query; raise on what cannot be honoured."""
    limits = limits or Limits()
    result: dict[str, list[str]] = {}
    filters: list[tuple[str, str]] = []
    for name, value in params:
        base = name.split(":", 1)[0].split(".", 1)[0]
        if base in RESULT_PARAMS:
            result.setdefault(base, []).append(value if ":" not in name else f"{name}={value}")
        else:
            filters.append((name, value))
    types = tuple(resource_types)
    if "_type" in result and not resource_types:
        types = tuple(t for v in result["_type"] for t in split_values(v) if t)
        _check_types(types)
    criteria: list[Criterion] = []
    ignored: list[str] = []
    for name, value in filters:
        criterion = (
            _criterion(types, name, value, strict=strict) if any(split_values(value)) else None
        )
        if criterion is None:  # unknown under lenient handling, or empty (search.html#errors)
            ignored.append(name)
        else:
            criteria.append(criterion)
    count = _count(result.get("_count", []), limits)
    summary = _choice("_summary", result.get("_summary", []), SUMMARY_MODES)
    return SearchQuery(
        resource_types=types,
        criteria=tuple(criteria),
        sort=_sort(types, result.get("_sort", [])),
        count=count,
        offset=paging_value("_offset", result.get("_offset", ["0"])[-1]),
        includes=_includes(result.get("_include", []), False)
        + _includes(result.get("_revinclude", []), True),
        summary="count" if count == 0 else summary,  # search.html#count
        elements=tuple(e for v in result.get("_elements", []) for e in split_values(v) if e),
        total=_choice("_total", result.get("_total", []), TOTAL_MODES) or "accurate",
        ignored=tuple(ignored),
    )


def _check_types(types: Sequence[str]) -> None:
    known = registry().resource_types
    for t in types:
        if t not in known:
            raise InvalidRequestError(f"unknown resource type in _type: {t!r}")


def _criterion(types: tuple[str, ...], name: str, value: str, *, strict: bool) -> Criterion | None:
    if name == "_has" or name.startswith("_has:"):
        return _reverse_chained(types, name, value)
    if "." in name.split(":", 1)[0] or ("." in name and ":" in name.split(".", 1)[0]):
        return _chained(types, name, value, strict=strict)
    code, _, modifier = name.partition(":")
    resource_type = types[0] if len(types) == 1 else ""
    if code in SPECIAL:
        return _make(resource_type, code, SPECIAL[code], modifier or None, value, special=code)
    param = _lookup(types, code)
    if param is None or not param.indexed:
        return _unknown(types, code, strict=strict, known=param is not None)
    if modifier and param.type == "reference" and modifier in registry().resource_types:
        return _make(resource_type, code, "reference", None, _typed_refs(modifier, value), param)
    if modifier == "identifier" and param.type == "reference":
        # search.html#reference: matches Reference.identifier as a token (indexed that way)
        return _make(resource_type, f"{code}:identifier", "token", None, value, param)
    return _make(resource_type, code, param.type, modifier or None, value, param)


def _lookup(types: tuple[str, ...], code: str) -> SearchParam | None:
    if not types:
        return _common_param(code)
    found = [registry().get(t, code) for t in types]
    params = [p for p in found if p is not None]
    if types and len(params) == len(types):
        kinds = {p.type for p in params}
        if len(kinds) == 1:
            return params[0]
    return None


@cache
def _common_param(code: str) -> SearchParam | None:
    """A parameter every resource type has (`_tag`, `_profile`, ...), usable without `_type`
    (search.html#searchcontexts: without _type, "all parameters SHALL be common to all resource
    types")."""
    param = registry().get(min(registry().resource_types), code)
    if param is None or "/SearchParameter/Resource-" not in param.url:
        return None
    return param


def _typed_refs(target_type: str, value: str) -> str:
    return ",".join(v if "/" in v else f"{target_type}/{v}" for v in split_values(value))


def _make(
    resource_type: str,
    code: str,
    type_: str,
    modifier: str | None,
    value: str,
    param: SearchParam | None = None,
    special: str | None = None,
) -> Criterion:
    if modifier and modifier not in SUPPORTED_MODIFIERS.get(type_, set()):
        raise NotSupportedError(
            f"modifier ':{modifier}' is not supported on {type_} parameter {code!r}"
        )
    if modifier == "missing" and value not in ("true", "false"):
        raise InvalidRequestError(f"{code}:missing takes true or false, not {value!r}")
    values = tuple(v for v in split_values(value) if v)
    if modifier != "missing" and special is None:
        for v in values:
            _check_value(code, type_, v)
    return Criterion(resource_type, code, type_, modifier, values, param, special)


def _check_value(code: str, type_: str, value: str) -> None:
    """Refuse a value that cannot mean anything for its parameter type (always, like any invalid
    value: search.html#errors lets lenient handling ignore unknown parameters, not bad values)."""
    if type_ == "number":
        _check_number(code, value)
    elif type_ == "quantity":
        parts = split_unescaped(value, "|")
        if len(parts) not in (1, 3):
            raise InvalidRequestError(
                f"{code}: a quantity is [prefix]number[|system|code], not {_shown(value)}"
            )
        _check_number(code, parts[0])
    elif type_ == "token" and split_unescaped(value, "|") == ["", ""]:
        # search.html#token: [code], [system]|[code], |[code] or [system]| -- `|` is neither
        raise InvalidRequestError(
            f"{code}: '|' has neither a system nor a code;"
            " use [code], [system]|[code], |[code] or [system]|"
        )
    elif type_ == "reference" and not _names_a_resource(value):
        raise InvalidRequestError(
            f"{code}: {_shown(value)} names no resource; use [id], [type]/[id] or an absolute URL"
            " (search.html#reference)"
        )


def _check_number(code: str, value: str) -> None:
    """search.html#number and #quantity: the value (after any prefix) is a decimal, finite."""
    try:
        number_range(split_prefix(value)[1])
    except ValueError as exc:
        raise InvalidRequestError(f"{code}: {exc}") from None


def _names_a_resource(value: str) -> bool:
    """Whether a reference search value has an id or a URL: `Patient/`, `/` and `|` have not.
    What follows an unescaped `|` (a canonical's version) is not looked at."""
    target = unescape(split_unescaped(value, "|")[0])
    if ":" in target:  # an absolute URL or urn
        return not target.endswith("/")
    path = target.split("/")
    if "_history" in path:
        path = path[: path.index("_history")]
    return bool(path) and all(path)


def _shown(value: str, limit: int = 60) -> str:
    """A client's value quoted for a diagnostic, shortened when very long."""
    return repr(value if len(value) <= limit else value[: limit - 3] + "...")


def _unknown(types: tuple[str, ...], code: str, *, strict: bool, known: bool) -> Criterion | None:
    where = "/".join(types) or "system-level search"
    reason = "is not indexed" if known else "is not a known search parameter"
    if code in ("_text", "_content", "_query", "_list", "_filter"):
        reason = "is not supported"
    if strict:
        raise InvalidRequestError(f"{code!r} {reason} for {where} (Prefer: handling=strict)")
    return None


def _chained(types: tuple[str, ...], name: str, value: str, *, strict: bool) -> Criterion | None:
    """`subject:Patient.name=peter` or `subject.name=peter` (search.html#chaining).

    Without a `:Type`, the chain applies to every target type of the reference that defines the
    chained parameter, so `Observation?subject.name=peter` finds subjects named peter of any type.
    """
    head, _, rest = name.partition(".")
    ref_code, _, target_type = head.partition(":")
    if "." in rest.split(":", 1)[0]:
        raise NotSupportedError(f"chains deeper than one level are not supported: {name!r}")
    ref = _lookup(types, ref_code)
    if ref is None or ref.type != "reference":
        return _unknown(types, ref_code, strict=strict, known=False)
    if target_type and target_type not in ref.targets:
        raise InvalidRequestError(
            f"{ref_code} refers to {', '.join(ref.targets) or 'no resource type'},"
            f" not {target_type}"
        )
    inner_code = rest.split(":", 1)[0]
    candidates = (target_type,) if target_type else ref.targets
    targets = tuple(t for t in candidates if inner_code in SPECIAL or _is_indexed(t, inner_code))
    if not targets:
        return _unknown(candidates, inner_code, strict=strict, known=False)
    chain = tuple(_criterion((t,), rest, value, strict=True) for t in targets)
    return Criterion(
        types[0] if len(types) == 1 else "",
        ref_code,
        "reference",
        None,
        (),
        ref,
        chain=tuple(c for c in chain if c is not None),
    )


def _reverse_chained(types: tuple[str, ...], name: str, value: str) -> Criterion:
    """`_has:Observation:patient:code=1234-5` (search.html#has): the resources that an Observation
    with code 1234-5 refers to through its `patient` parameter. `_has` is supported, so a
    malformed one (a bare `_has=...` included) is an error whatever the handling."""
    parts = name.split(":", 3)
    if len(parts) != 4 or not all(parts[1:]):
        raise InvalidRequestError(f"_has takes _has:Type:reference:parameter, not {name!r}")
    _, source, ref_code, rest = parts
    if rest.startswith("_has:"):
        raise NotSupportedError(f"nested _has is not supported: {name!r}")
    ref = registry().get(source, ref_code)
    if ref is None or ref.type != "reference" or not ref.indexed:
        raise InvalidRequestError(f"{source}:{ref_code} is not a reference search parameter")
    inner = _criterion((source,), rest, value, strict=True)
    assert inner is not None  # strict parsing raises instead of returning None
    resource_type = types[0] if len(types) == 1 else ""
    return Criterion(
        resource_type, "_has", "reference", None, (), ref, special="_has", chain=(inner,)
    )


def _is_indexed(resource_type: str, code: str) -> bool:
    param = registry().get(resource_type, code)
    return param is not None and param.indexed


def _sort(types: tuple[str, ...], raw: list[str]) -> tuple[SortKey, ...]:
    keys: list[SortKey] = []
    for item in (v for r in raw for v in split_values(r)):
        descending = item.startswith("-")
        code = item.lstrip("-")
        if code in SPECIAL:
            keys.append(SortKey(code, SPECIAL[code], descending, special=code))
            continue
        param = _lookup(types, code)
        if param is None or not param.indexed or param.type in ("reference",):
            raise InvalidRequestError(
                f"cannot sort by {code!r} for {'/'.join(types) or 'all types'}"
            )
        keys.append(SortKey(code, param.type, descending))
    return tuple(keys)


def _count(raw: list[str], limits: Limits) -> int:
    if not raw:
        return limits.default_count
    return min(paging_value("_count", raw[-1]), limits.max_count)


def paging_value(name: str, value: str) -> int:
    """`_count` or `_offset` (search.html#count) as an int in [0, MAX_PAGING].

    ASCII digits only (`str.isdigit` also accepts `²`, which `int` refuses); a larger value than
    the database can page by is a 400 naming the parameter, not an overflow in the driver.
    """
    if not ascii_digits(value):
        raise InvalidRequestError(f"{name} must be a non-negative integer, not {_shown(value)}")
    number = ascii_int(value, MAX_PAGING)
    if number is None:
        raise InvalidRequestError(f"{name} must be at most {MAX_PAGING}, not {_shown(value)}")
    return number


def _choice(name: str, raw: list[str], allowed: set[str]) -> str | None:
    if not raw:
        return None
    value = raw[-1]
    if value not in allowed:
        raise InvalidRequestError(
            f"{name} must be one of {', '.join(sorted(allowed))}, not {value!r}"
        )
    return value


def _includes(raw: list[str], reverse: bool) -> tuple[Include, ...]:
    out: list[Include] = []
    for entry in raw:
        iterate = entry.startswith(("_include:iterate=", "_revinclude:iterate="))
        spec = entry.split("=", 1)[1] if "=" in entry and entry.startswith("_") else entry
        parts = spec.split(":")
        if len(parts) not in (2, 3):
            raise InvalidRequestError(
                f"_include/_revinclude must be Type:param[:targetType], not {spec!r}"
            )
        source, code = parts[0], parts[1]
        param = registry().get(source, code)
        wildcard = code == "*" and source in registry().resource_types  # every reference param
        if not wildcard and (param is None or param.type != "reference"):
            raise InvalidRequestError(f"{source}:{code} is not a reference search parameter")
        target = parts[2] if len(parts) == 3 else None
        out.append(Include(source, code, target, reverse, iterate))
    return tuple(out)
