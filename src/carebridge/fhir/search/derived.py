"""Search parameters answered from other parameters' index rows instead of rows of their own.

Many R4 parameters select exactly what other parameters of the same resource type select:

- **unions**: Observation `combo-code` is `Observation.code | Observation.component.code`, the
  union of `code` and `component-code`; `combo-value-quantity` and `combo-value-concept` are
  alike; Practitioner `phonetic` has the same expression as `name`.
- **restrictions**: Observation `patient` is `Observation.subject.where(resolve() is Patient)`:
  the `subject` references whose target type is Patient.

Writing their rows again would repeat values already stored (on a Synthea population, about one
index row in six). So they are not written: a search on them reads the rows of the parameters
they are made of (`IndexedAs`), and the SQL says `param IN (...)`, plus `target_type = T` for a
restriction.

The derivation is computed from the compiled R4 expressions (parameters.py), never listed by
hand, and is exact by construction:

- a union is derived only from parameters whose rows are built the same way (same search
  parameter type; strings split family names alike; references infer a bare id's target
  alike), and whose path sets together are exactly its path set;
- a restriction `X.where(resolve() is T)` is derived from the parameter whose paths are exactly
  the `X`s, provided that parameter has more than one target type: its reference rows carry the
  type `reference_type` gives (the same function `resolve() is T` tests, fhirpath.py), so its
  rows with target type T are exactly the restricted parameter's rows. A restriction keeps its
  own `<code>:identifier` token rows (a logical reference's type is not in the token row).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from carebridge.fhir.search.fhirpath import Member, ReferenceTo, Step
from carebridge.fhir.search.parameters import SearchParam, patient_compartment, registry

Shape = frozenset[tuple[Step, ...]]
IDENTIFIER_SUFFIX = ":identifier"


@dataclass(frozen=True)
class IndexedAs:
    """Where a parameter's rows are: the rows of `codes` (of the same resource type), only those
    referencing a `target_type` when it is set."""

    codes: tuple[str, ...]
    target_type: str | None = None


def indexed_as(resource_type: str, code: str) -> IndexedAs:
    """The index rows that answer `code` on `resource_type` (the code itself when it is stored).
    `code` may be a reference parameter's `<code>:identifier` token."""
    base = code.removesuffix(IDENTIFIER_SUFFIX)
    found = derivations(resource_type).get(base)
    if found is None:
        return IndexedAs((code,))
    if base == code:
        return found
    if found.target_type is not None:  # a restriction keeps its own identifier tokens
        return IndexedAs((code,))
    return IndexedAs(tuple(c + IDENTIFIER_SUFFIX for c in found.codes))


def unwritten(resource_type: str) -> frozenset[str]:
    """Codes of `resource_type` whose rows extraction does not write at all (unions)."""
    return frozenset(c for c, d in derivations(resource_type).items() if d.target_type is None)


def identifiers_only(resource_type: str) -> frozenset[str]:
    """Codes of `resource_type` for which extraction writes only `<code>:identifier` tokens
    (restrictions)."""
    return frozenset(c for c, d in derivations(resource_type).items() if d.target_type is not None)


def stored_codes(resource_type: str, codes: Iterable[str], target_type: str) -> tuple[str, ...]:
    """The stored reference codes whose rows with target `target_type` are the rows of `codes`
    with that target (the Patient compartment's parameters: `Encounter.patient` is `subject`)."""
    found: set[str] = set()
    for code in codes:
        where = indexed_as(resource_type, code)
        if where.target_type in (None, target_type):
            found.update(where.codes)
    return tuple(sorted(found))


def stored_actor_codes(resource_type: str, codes: Iterable[str]) -> tuple[str, ...]:
    """The stored codes whose rows are the rows of `codes`, for references matched against a
    set of actors (relationships: a CareTeam's `participant`, a Coverage's `payor`). A
    restriction cannot be one: its target type would be lost (list its source instead)."""
    found: set[str] = set()
    for code in codes:
        where = indexed_as(resource_type, code)
        if where.target_type is not None:
            raise ValueError(
                f"{resource_type}.{code} selects {where.target_type} references of"
                f" {'/'.join(where.codes)}; name that parameter for an actor instead"
            )
        found.update(where.codes)
    return tuple(sorted(found))


@cache
def compartment_index_params() -> dict[str, tuple[str, ...]]:
    """Resource type -> the stored reference codes whose rows pointing at a Patient place a
    resource in that Patient's compartment (R4 CompartmentDefinition `patient`)."""
    return {
        res_type: stored_codes(res_type, codes, "Patient")
        for res_type, codes in patient_compartment().items()
    }


@cache
def derivations(resource_type: str) -> dict[str, IndexedAs]:
    """Every derived parameter of `resource_type`: restrictions first, then unions over the
    parameters left."""
    params = registry().indexed_params(resource_type)
    shapes = {p.code: _shape(p) for p in params}
    restricted = _restrictions(params, shapes)
    found: dict[str, IndexedAs] = {}
    stored: list[SearchParam] = []
    ordered = sorted(params, key=lambda p: (len(shapes[p.code]), p.code))
    for param in (p for p in ordered if p.code not in restricted):
        parts = [q for q in stored if _covers(q, param, shapes)]
        union: set[tuple[Step, ...]] = set()
        union.update(*(shapes[q.code] for q in parts))
        if parts and union == shapes[param.code]:
            found[param.code] = IndexedAs(tuple(q.code for q in parts))
        else:
            stored.append(param)
    for code, (source, target) in restricted.items():
        found[code] = IndexedAs(found.get(source, IndexedAs((source,))).codes, target)
    return found


@cache
def derivations_of(code: str) -> dict[str, IndexedAs]:
    """Resource type -> where `code`'s rows are, for the types where it is not stored as itself
    (a search over several types at once)."""
    found: dict[str, IndexedAs] = {}
    for res_type in sorted(registry().resource_types):
        where = indexed_as(res_type, code)
        if where != IndexedAs((code,)):
            found[res_type] = where
    return found


def _shape(param: SearchParam) -> Shape:
    return frozenset(path.steps for path in param.paths)


def _covers(part: SearchParam, whole: SearchParam, shapes: dict[str, Shape]) -> bool:
    """`part` selects a subset of what `whole` selects, and builds its rows the same way."""
    return (
        part.type == whole.type
        and shapes[part.code] <= shapes[whole.code]
        and splits_words(part) == splits_words(whole)
        and inferred_target(part) == inferred_target(whole)
    )


def _restrictions(
    params: tuple[SearchParam, ...], shapes: dict[str, Shape]
) -> dict[str, tuple[str, str]]:
    """code -> (source code, target type) for the `X.where(resolve() is T)` parameters."""
    by_shape = {
        shapes[p.code]: p.code
        for p in params
        if p.type == "reference" and len(p.targets) != 1 and _restricted_to(shapes[p.code]) is None
    }
    found: dict[str, tuple[str, str]] = {}
    for param in params:
        target = _restricted_to(shapes[param.code]) if param.type == "reference" else None
        if target is None:
            continue
        source = by_shape.get(frozenset(steps[:-1] for steps in shapes[param.code]))
        if source is not None and source != param.code:
            found[param.code] = (source, target)
    return found


def _restricted_to(shape: Shape) -> str | None:
    """T when every path of `shape` ends with `where(resolve() is T)` (the same T)."""
    last = {steps[-1] if steps else None for steps in shape}
    if len(last) != 1:
        return None
    (step,) = last
    return step.type_name if isinstance(step, ReferenceTo) else None


@cache
def splits_words(param: SearchParam) -> bool:
    """A string parameter over family names: every word of a multi-word family name is also
    indexed (extract.py)."""
    return any(p.steps and p.steps[-1] == Member("family") for p in param.paths)


def inferred_target(param: SearchParam) -> str | None:
    """The target type a reference parameter gives a bare id whose type nothing else tells: its
    only target type, if it has one."""
    return param.targets[0] if len(param.targets) == 1 else None
