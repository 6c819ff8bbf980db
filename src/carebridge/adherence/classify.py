"""Which target ingredients a dispensed medication carries, read from its codings.

Pharmacy feeds code the same tablet in several ways: the RxNorm ingredient, the clinical or
branded drug (SCD/SBD), an NDC, or only a description. PQA counts fills by target ingredient, so
every path ends in ingredient RXCUIs from ``measures``. Codes win over text; text is read only
when no code is known, because a display can be abbreviated or wrong while a code is not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from carebridge.adherence.measures import ALL_INGREDIENTS, ingredient_rxcuis_by_name
from carebridge.adherence.products import BRAND_INGREDIENTS, NDC_INGREDIENTS, PRODUCT_INGREDIENTS

RXNORM_SYSTEMS = frozenset(
    {"http://www.nlm.nih.gov/research/umls/rxnorm", "urn:oid:2.16.840.1.113883.6.88"}
)
NDC_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/ndc", "urn:oid:2.16.840.1.113883.6.69"})
_NDC_WIDTHS = (5, 4, 2)


@dataclass(frozen=True)
class Coding:
    """A (system, code, display) triple, as carried by a FHIR Coding or a claim line."""

    system: str | None
    code: str | None
    display: str | None = None


def classify_medication(
    codings: Iterable[Coding],
    *,
    text: str | None = None,
    ndc_table: Mapping[str, tuple[str, ...]] = NDC_INGREDIENTS,
) -> frozenset[str]:
    """Target ingredient RXCUIs of one dispensed product.

    Known codes are used first: an ingredient RXCUI as is, an SCD/SBD through the product table,
    an NDC through ``ndc_table``. Only when none is known are the ingredient (or brand) names in
    the displays and in ``text`` read, e.g. "hydrochlorothiazide 12.5 MG / losartan potassium
    50 MG Oral Tablet" gives losartan. An empty result means no measure drug was recognised.
    """
    codings = tuple(codings)
    by_code = frozenset(rx for c in codings for rx in ingredients_for_code(c, ndc_table))
    if by_code:
        return by_code
    texts = [c.display for c in codings if c.display]
    texts += [text] if text else []
    return frozenset(rx for t in texts for rx in ingredients_in_text(t))


def ingredients_for_code(
    coding: Coding, ndc_table: Mapping[str, tuple[str, ...]] = NDC_INGREDIENTS
) -> tuple[str, ...]:
    """Ingredients of a coded product, or () when the system or code is not known here."""
    code = (coding.code or "").strip()
    if coding.system in RXNORM_SYSTEMS:
        return (code,) if code in ALL_INGREDIENTS else PRODUCT_INGREDIENTS.get(code, ())
    if coding.system in NDC_SYSTEMS:
        ndc = normalize_ndc(code)
        return ndc_table.get(ndc, ()) if ndc else ()
    return ()


def ingredients_in_text(text: str) -> frozenset[str]:
    """Ingredients named in free text (an RxNorm name, a pharmacy description, a brand).

    Names match whole words, longest first, and a matched span is blanked so that "insulin
    glargine" is not also read as plain "insulin". Salt words ("losartan potassium") need no
    entry: the base name matches.
    """
    remaining = text.lower()
    found: set[str] = set()
    for pattern, rxcuis in _NAME_PATTERNS:
        match = pattern.search(remaining)
        if match:
            found.update(rxcuis)
            remaining = remaining[: match.start()] + " " * len(match[0]) + remaining[match.end() :]
    return frozenset(found)


def normalize_ndc(code: str) -> str | None:
    """The 11-digit (5-4-2) form of an NDC, or None when the code is not a readable NDC.

    Hyphenated 10-digit NDCs (4-4-2, 5-3-2, 5-4-1) are padded in the short segment, as in the
    HIPAA 11-digit format; an unhyphenated 10-digit code is ambiguous and rejected.
    """
    parts = code.strip().split("-")
    if len(parts) == 1:
        return parts[0] if len(parts[0]) == 11 and parts[0].isdigit() else None
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    if any(len(p) > w for p, w in zip(parts, _NDC_WIDTHS, strict=True)):
        return None
    if sum(len(p) for p in parts) not in (10, 11):
        return None
    return "".join(p.zfill(w) for p, w in zip(parts, _NDC_WIDTHS, strict=True))


def _name_patterns() -> tuple[tuple[re.Pattern[str], tuple[str, ...]], ...]:
    names: dict[str, tuple[str, ...]] = dict(BRAND_INGREDIENTS)
    names.update({name: (rx,) for name, rx in ingredient_rxcuis_by_name().items()})
    ordered = sorted(names, key=lambda n: (-len(n), n))
    return tuple(
        (re.compile(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])"), names[name])
        for name in ordered
    )


_NAME_PATTERNS = _name_patterns()
