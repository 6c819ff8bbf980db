"""A compiled subset of FHIRPath: the forms used by the R4 search parameter expressions.

The R4 search parameter definitions (http://hl7.org/fhir/R4/searchparameter-registry.html) express
what to index as FHIRPath. A general FHIRPath engine (e.g. fhirpathpy) evaluates ~50x slower than a
precompiled path walk, and indexing runs on every write, so the expressions are compiled once into
small step lists. The grammar covered is exactly what the R4 definitions use for non-composite
parameters:

    Type.a.b                               member navigation (arrays flattened)
    (Type.a as T) / Type.a.as(T)           choice-type selection: a[x] -> aT
    (Type.a as T).b                        navigation after a cast
    Type.a.where(resolve() is T)           references whose target type is T
    Type.a.where(f='v')                    elements whose field f equals v
    Type.a[0]                              indexing
    Type.a.exists() and Type.a != false    boolean presence (Patient.deceased)

Anything else raises `UnsupportedExpressionError`, so an unsupported definition is never indexed
silently wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


class UnsupportedExpressionError(ValueError):
    pass


@dataclass(frozen=True)
class Member:
    """Navigate to `name`; `choices` lists the JSON keys of a choice element (`effective[x]`)."""

    name: str
    choices: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        return self.choices or (self.name,)


@dataclass(frozen=True)
class ChoiceType:
    """Replace the preceding member `a` by `a<Type>` (FHIR JSON choice naming)."""

    type_name: str


@dataclass(frozen=True)
class ReferenceTo:
    type_name: str


@dataclass(frozen=True)
class FieldEquals:
    field: str
    value: str


@dataclass(frozen=True)
class Index:
    position: int


@dataclass(frozen=True)
class PresentAndNotFalse:
    pass


Step = Member | ChoiceType | ReferenceTo | FieldEquals | Index | PresentAndNotFalse


@dataclass(frozen=True)
class CompiledPath:
    resource_type: str
    steps: tuple[Step, ...]

    def evaluate(self, resource: dict[str, Any]) -> list[Any]:
        return list(_walk(self.steps, [resource]))

    def first_keys(self) -> tuple[str, ...]:
        """The top-level JSON keys a resource must have for this path to yield anything.

        Empty when the path yields a value whatever the resource holds (`exists() and ...` is
        `false` on a resource without the element).
        """
        if self.steps and isinstance(self.steps[-1], PresentAndNotFalse):
            return ()
        first = self.steps[0] if self.steps else None
        if isinstance(first, Member):
            if len(self.steps) > 1 and isinstance(self.steps[1], ChoiceType):
                return (_choice_key(first.name, self.steps[1].type_name),)
            return first.keys
        return ()

    def with_choices(self, choices: dict[str, list[str]]) -> CompiledPath:
        """Expand bare choice members (`Observation.effective`) into their typed JSON keys."""
        steps: list[Step] = []
        element = self.resource_type
        for index, step in enumerate(self.steps):
            if isinstance(step, Member):
                element = f"{element}.{step.name}"
                following = self.steps[index + 1] if index + 1 < len(self.steps) else None
                types = choices.get(element)
                if types and not isinstance(following, ChoiceType):
                    step = Member(step.name, tuple(_choice_key(step.name, t) for t in types))
            steps.append(step)
        return CompiledPath(self.resource_type, tuple(steps))


_CAST = re.compile(r"^\((?P<path>[A-Za-z][\w.]*) as (?P<type>\w+)\)(?P<rest>(\.\w+)*)$")
_SEGMENT = re.compile(
    r"\.as\((?P<as>\w+)\)"
    r"|\.where\(resolve\(\) is (?P<resolve>\w+)\)"
    r"|\.where\((?P<field>\w+)\s*=\s*'(?P<value>[^']*)'\)"
    r"|\[(?P<index>\d+)\]"
    r"|\.(?P<member>\w+)"
)
_EXISTS = re.compile(r"^(?P<path>[A-Za-z][\w.]*)\.exists\(\) and (?P=path) != false$")


def compile_expression(expression: str, context_type: str | None = None) -> list[CompiledPath]:
    """Compile a `|`-separated search parameter expression into one path per alternative.

    A part that starts with a lower-case member (R4's InsurancePlan-name says `name | alias`) is
    read relative to `context_type`, as a FHIRPath engine evaluating on that resource would.
    """
    parts = _split_union(expression)
    if context_type:
        parts = [p if p[0] in "(%" or p[0].isupper() else f"{context_type}.{p}" for p in parts]
    return [compile_path(part) for part in parts]


def compile_path(part: str) -> CompiledPath:
    exists = _EXISTS.match(part)
    if exists:
        compiled = compile_path(exists.group("path"))
        return CompiledPath(compiled.resource_type, (*compiled.steps, PresentAndNotFalse()))
    cast = _CAST.match(part)
    if cast:
        inner = compile_path(cast.group("path"))
        rest = (
            compile_path(inner.resource_type + cast.group("rest")) if cast.group("rest") else None
        )
        tail = rest.steps if rest else ()
        return CompiledPath(inner.resource_type, (*inner.steps, ChoiceType(cast["type"]), *tail))
    head = re.match(r"^[A-Z]\w*", part)
    if not head:
        raise UnsupportedExpressionError(f"expression must start with a type name: {part!r}")
    return CompiledPath(head.group(0), _parse_steps(part, head.end()))


def _parse_steps(part: str, position: int) -> tuple[Step, ...]:
    steps: list[Step] = []
    while position < len(part):
        match = _SEGMENT.match(part, position)
        if not match:
            raise UnsupportedExpressionError(
                f"unsupported FHIRPath at {part[position:]!r} in {part!r}"
            )
        steps.append(_step_from(match))
        position = match.end()
    return tuple(steps)


def _step_from(match: re.Match[str]) -> Step:
    if match.group("as"):
        return ChoiceType(match.group("as"))
    if match.group("resolve"):
        return ReferenceTo(match.group("resolve"))
    if match.group("field"):
        return FieldEquals(match.group("field"), match.group("value"))
    if match.group("index") is not None:
        return Index(int(match.group("index")))
    return Member(match.group("member"))


def _split_union(expression: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in expression:
        depth += char == "("
        depth -= char == ")"
        if char == "|" and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in (p.strip() for p in parts) if p]


def _walk(steps: tuple[Step, ...], items: list[Any]) -> Iterator[Any]:
    for index, step in enumerate(steps):
        if isinstance(step, ChoiceType):
            continue  # applied together with the preceding member below
        following = steps[index + 1] if index + 1 < len(steps) else None
        items = _apply(step, items, following)
        if not items and not isinstance(steps[-1], PresentAndNotFalse):
            return
    yield from items


def _apply(step: Step, items: list[Any], following: Step | None) -> list[Any]:
    if isinstance(step, Member):
        if isinstance(following, ChoiceType):
            return _members(items, (_choice_key(step.name, following.type_name),))
        return _members(items, step.keys)
    if isinstance(step, ReferenceTo):
        return [i for i in items if reference_type(i) == step.type_name]
    if isinstance(step, FieldEquals):
        return [i for i in items if isinstance(i, dict) and i.get(step.field) == step.value]
    if isinstance(step, Index):
        return items[step.position : step.position + 1]
    if isinstance(step, PresentAndNotFalse):
        return [True] if any(i is not False for i in items) else [False]
    raise UnsupportedExpressionError(repr(step))  # pragma: no cover - exhaustive


def _choice_key(name: str, type_name: str) -> str:
    return name + type_name[0].upper() + type_name[1:]


def _members(items: list[Any], keys: tuple[str, ...]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        for key in keys:
            value = item.get(key)
            if value is None:
                continue
            if isinstance(value, list):
                out.extend(value)
            else:
                out.append(value)
    return out


def reference_type(item: Any) -> str | None:
    """The target type a Reference names: from its `reference` (`Type/id`, an absolute URL
    ending in `Type/id`, with or without `_history`), else its declared `type`."""
    if not isinstance(item, dict):
        return None
    ref = item.get("reference")
    if isinstance(ref, str) and "/" in ref:
        parts = ref.split("/")
        if len(parts) >= 2:
            # Type/id, Type/id/_history/v, or absolute http(s)://base/Type/id
            if "_history" in parts:
                parts = parts[: parts.index("_history")]
            return parts[-2]
    declared = item.get("type")
    return declared if isinstance(declared, str) else None


# -- many paths at once ---------------------------------------------------------------------------
_Op = Member | ReferenceTo | FieldEquals | Index


@dataclass(eq=False)
class _Node:
    op: _Op
    children: list[_Node]
    slots: list[int]  # the outputs whose path ends here

    def child(self, op: _Op) -> _Node:
        for node in self.children:
            if node.op == op:
                return node
        node = _Node(op, [], [])
        self.children.append(node)
        return node


class PathSet:
    """Several compiled paths evaluated over one resource in one walk.

    Indexing evaluates every search parameter of a resource type on each write, and their paths
    share prefixes (`Observation.code` for `code` and `combo-code`, `Observation.subject` for
    `subject` and `patient`). The paths are merged into a tree, so each prefix is navigated once
    and only the branches under the resource's own top-level keys are visited. Each path has an
    output slot (several paths may share one); `evaluate` returns the values per slot, as
    `CompiledPath.evaluate` would give them.
    """

    def __init__(self, paths: list[tuple[int, CompiledPath]]) -> None:
        self._roots: dict[str, list[_Node]] = {}
        self._alone: list[tuple[int, CompiledPath]] = []
        top: dict[_Op, _Node] = {}
        for slot, path in paths:
            ops = _fused(path.steps)
            if ops is None:
                self._alone.append((slot, path))
                continue
            first = ops[0]
            assert isinstance(first, Member)
            node = top.get(first)
            if node is None:
                node = top[first] = _Node(first, [], [])
                for key in first.keys:
                    self._roots.setdefault(key, []).append(node)
            for op in ops[1:]:
                node = node.child(op)
            node.slots.append(slot)

    def evaluate(self, resource: dict[str, Any]) -> dict[int, list[Any]]:
        out: dict[int, list[Any]] = {}
        roots = self._roots
        for key, value in resource.items():
            nodes = roots.get(key)
            if nodes is not None and value is not None:
                items = value if isinstance(value, list) else [value]
                for node in nodes:
                    _descend(node, items, out)
        for slot, path in self._alone:
            values = path.evaluate(resource)
            if values:
                out.setdefault(slot, []).extend(values)
        return out


def _fused(steps: tuple[Step, ...]) -> list[_Op] | None:
    """Steps with each `as(T)` folded into the member before it; None for paths the tree does
    not take (no leading member, `exists()`, or an index over a choice element's values)."""
    ops: list[_Op] = []
    for index, step in enumerate(steps):
        if isinstance(step, ChoiceType):
            continue
        if isinstance(step, PresentAndNotFalse):
            return None
        following = steps[index + 1] if index + 1 < len(steps) else None
        if isinstance(step, Member) and isinstance(following, ChoiceType):
            step = Member(_choice_key(step.name, following.type_name))
        ops.append(step)
    if not ops or not isinstance(ops[0], Member):
        return None
    if len(ops[0].keys) > 1 and any(isinstance(op, Index) for op in ops):
        return None
    return ops


def _descend(node: _Node, items: list[Any], out: dict[int, list[Any]]) -> None:
    for slot in node.slots:
        out.setdefault(slot, []).extend(items)
    for child in node.children:
        op = child.op
        if isinstance(op, Member):
            found = _members(items, op.keys)
        elif isinstance(op, ReferenceTo):
            found = [i for i in items if reference_type(i) == op.type_name]
        elif isinstance(op, FieldEquals):
            found = [i for i in items if isinstance(i, dict) and i.get(op.field) == op.value]
        else:
            found = items[op.position : op.position + 1]
        if found:
            _descend(child, found, out)
