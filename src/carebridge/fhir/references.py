"""Reference rewriting for Bundles (R4 bundle.html#references, http.html#trules) (pure).

Inside a Bundle, a reference may name another entry by its fullUrl (`urn:uuid:...` or an absolute
URL) or be a conditional reference (`Patient?identifier=...`). Before storage every such reference
is replaced by the `Type/id` that the server assigned or found.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
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


def rewrite_references(node: Any, resolve: Resolver, links: Mapping[str, str] | None = None) -> Any:
    """A copy of `node` with every resolvable `reference` replaced; others stay as they are.

    `links` maps placeholder fullUrls (`urn:uuid:...`) to `Type/id`; `url` elements (such as
    Attachment.url) holding one and `href`/`src` links in the narrative are rewritten too
    (http.html#trules: "Servers SHALL replace all matching links in the bundle"). Identifier
    values are strings, not links, and stay as they are.
    """
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                out[key] = resolve(value) or value
            elif key == "url" and isinstance(value, str) and links:
                out[key] = links.get(value, value)
            elif key == "div" and isinstance(value, str) and links:
                out[key] = _NARRATIVE_LINK.sub(lambda m: _relinked(m, links), value)
            else:
                out[key] = rewrite_references(value, resolve, links)
        return out
    if isinstance(node, list):
        return [rewrite_references(item, resolve, links) for item in node]
    return node


_NARRATIVE_LINK = re.compile(r'(?P<attr>\b(?:href|src)=)(?P<q>["\'])(?P<url>urn:[^"\']+)(?P=q)')


def _relinked(match: re.Match[str], links: Mapping[str, str]) -> str:
    url = links.get(match["url"], match["url"])
    return f"{match['attr']}{match['q']}{url}{match['q']}"
