"""Reference rewriting for Bundles (R4 bundle.html#references, http.html#trules) (pure).

Inside a Bundle, a reference may name another entry by its fullUrl (`urn:uuid:...` or an absolute
URL) or be a conditional reference (`Patient?identifier=...`). Before storage every such reference
is replaced by the `Type/id` that the server assigned or found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

Resolver = Callable[[str], str | None]


def is_conditional(reference: str) -> bool:
    head = reference.split("?", 1)[0]
    return "?" in reference and "/" not in head and head[:1].isupper()


def iter_references(node: Any) -> Iterator[str]:
    """Every `reference` string anywhere in a resource."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from iter_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from iter_references(item)


def rewrite_references(node: Any, resolve: Resolver) -> Any:
    """A copy of `node` with every resolvable `reference` replaced; others stay as they are."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                out[key] = resolve(value) or value
            else:
                out[key] = rewrite_references(value, resolve)
        return out
    if isinstance(node, list):
        return [rewrite_references(item, resolve) for item in node]
    return node
