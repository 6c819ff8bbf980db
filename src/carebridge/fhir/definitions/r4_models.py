"""Models for the R4 (4.0.1) resource types whose structure the `fhir.resources` R4B models change.

carebridge validates with the R4B models (ADR 0008), which match R4 for every stored type except
these (the R4B release redesigned the evidence resources, http://hl7.org/fhir/R4B/evidence.html):

- Evidence: R4 has `exposureBackground` (1..1), `exposureVariant`, `outcome`, `name`,
  `shortTitle`, `subtitle`, `jurisdiction`, `copyright`, `effectivePeriod`, `topic`; R4B drops
  them and requires `variableDefinition` instead;
- EvidenceVariable: R4 has `type`, `jurisdiction`, `copyright`, `approvalDate`,
  `lastReviewDate`, `effectivePeriod`, `topic`, and in `characteristic` (1..* in R4)
  `definitionDataRequirement`, `definitionTriggerDefinition`, `usageContext`,
  `participantEffective[x]` and a Duration `timeFromStart`; R4B replaces them.

Their R4 elements come from the R4 StructureDefinitions (`structures_r4.json`); the models built
here follow the fhir.resources conventions (R4B data types, which R4 shares for every type these
use; a `_name` sibling for each primitive; choice and required-primitive rules), so the validator
treats them like any other model.
"""

from __future__ import annotations

import json
import types
from functools import cache
from importlib import resources
from typing import Any, ClassVar

from fhir.resources.R4B import backboneelement, domainresource, fhirtypes
from pydantic import Field

_Element = dict[str, Any]  # one entry of structures_r4.json: path, types, min, max, summary


class _R4Rules:
    """The per-class methods fhir.resources generates, read from class attributes: the element
    names in order, primitives with minimum cardinality 1 (value or extension), choice groups."""

    r4_elements: ClassVar[list[str]] = []
    r4_required: ClassVar[list[tuple[str, str | None]]] = []
    r4_choices: ClassVar[dict[str, list[str]]] = {}

    @classmethod
    def elements_sequence(cls) -> list[str]:
        return list(cls.r4_elements)

    def get_required_fields(self) -> list[tuple[str, str | None]]:
        return list(self.r4_required)

    def get_one_of_many_fields(self) -> dict[str, list[str]]:
        return {prefix: list(keys) for prefix, keys in self.r4_choices.items()}


def r4_types() -> frozenset[str]:
    """The resource types validated against their R4 elements instead of an R4B model."""
    return frozenset(_structures())


@cache
def r4_model(resource_type: str) -> Any:
    """The R4 model of `resource_type`, or None when its R4B model is R4's structure."""
    elements = _structures().get(resource_type)
    if elements is None:
        return None
    return _build(resource_type, resource_type, elements, domainresource.DomainResource)


@cache
def _structures() -> dict[str, list[_Element]]:
    text = resources.files("carebridge.fhir.definitions").joinpath("structures_r4.json")
    types_: dict[str, list[_Element]] = json.loads(text.read_text("utf-8"))["types"]
    return types_


def _build(path: str, name: str, elements: list[_Element], base: Any) -> Any:
    """The model of the element at `path` (a resource or a backbone element) and its children."""
    namespace: dict[str, Any] = {"__resource_type__": name, "__module__": __name__}
    fields = _Fields(namespace)
    for element in (e for e in elements if e["path"].rpartition(".")[0] == path):
        element_name = element["path"].rpartition(".")[2]
        if element["types"] == ["BackboneElement"]:
            child_name = name + element_name[0].upper() + element_name[1:]
            child = _build(element["path"], child_name, elements, backboneelement.BackboneElement)
            fields.add(element_name, child, element)
        elif element_name.endswith("[x]"):
            prefix = element_name.removesuffix("[x]")
            keys = [prefix + code[0].upper() + code[1:] for code in element["types"]]
            fields.choices[prefix] = keys
            choice = {"one_of_many": prefix, "one_of_many_required": element["min"] >= 1}
            for key, code in zip(keys, element["types"], strict=True):
                fields.add(key, code, element, optional=True, **choice)
        else:
            (code,) = element["types"]
            fields.add(element_name, code, element)
    own = [key for key in fields.annotations if not key.endswith("__ext")]
    rules = ("r4_elements", "r4_required", "r4_choices")
    fields.annotations |= dict.fromkeys(rules, ClassVar[Any])
    namespace |= {
        "__annotations__": fields.annotations,
        "r4_elements": [*base.elements_sequence(), *own],
        "r4_required": fields.required,
        "r4_choices": fields.choices,
    }
    return types.new_class(name, (_R4Rules, base), exec_body=lambda ns: ns.update(namespace))


class _Fields:
    """Collects a model's fields the way fhir.resources declares them."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace
        self.annotations: dict[str, Any] = {}
        self.required: list[tuple[str, str | None]] = []
        self.choices: dict[str, list[str]] = {}

    def add(
        self, key: str, kind: Any, element: _Element, *, optional: bool = False, **extra: Any
    ) -> None:
        """Element `key` of R4 type code `kind` (or a backbone model), plus `key__ext` for a
        primitive: primitives may carry only extensions (json.html#primitive), so a mandatory
        primitive is checked by `get_required_fields`, not by pydantic."""
        primitive = isinstance(kind, str) and kind[0].islower()
        annotation = _type(kind) if isinstance(kind, str) else kind
        many = element["max"] != "1"
        required = element["min"] >= 1 and not optional
        schema: dict[str, Any] = {"element_property": True, **extra}
        if element["summary"]:
            schema["summary_element_property"] = True
        if primitive and required:
            schema["element_required"] = True
            self.required.append((key, f"{key}__ext"))
        if many:  # list[T | None] for primitives: nulls align values with `_key` extensions
            annotation = types.GenericAlias(list, annotation | None if primitive else annotation)
        if required and not primitive:
            self.namespace[key] = Field(default=..., alias=key, json_schema_extra=schema)
        else:
            annotation = annotation | None
            self.namespace[key] = Field(default=None, alias=key, json_schema_extra=schema)
        self.annotations[key] = annotation
        if primitive:
            ext: Any = fhirtypes.FHIRPrimitiveExtensionType
            self.annotations[f"{key}__ext"] = (
                types.GenericAlias(list, ext | None) if many else ext
            ) | None
            self.namespace[f"{key}__ext"] = Field(default=None, alias=f"_{key}")


def _type(code: str) -> Any:
    """`fhirtypes` annotation of an R4 type code (`dateTime` -> DateTimeType)."""
    return getattr(fhirtypes, f"{code[0].upper()}{code[1:]}Type")
