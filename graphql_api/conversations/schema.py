"""The v4 conversation schema compiled once into a tree of nodes, and a walk that lists every
place a document departs from it.

The schema file is the only description of the format; this module interprets the keywords
it uses, and compiling fails on any other, so a changed schema is never half-understood. It
does not judge: `validation` decides which departures block an import.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, NamedTuple

from ..domain.vocabulary import CONVERSATION_SCHEMA
from .issues import Path

__all__ = [
    "ABSENT",
    "CONVERSATION",
    "Node",
    "Violation",
    "compile_schema",
    "iso_date",
    "json_type",
    "walk",
]

ABSENT: Final[Any] = object()

_ANNOTATIONS: Final = frozenset(
    {"$schema", "$id", "$defs", "title", "description", "examples", "default"}
)
_KEYWORDS: Final = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "$ref",
        "enum",
        "const",
        "minimum",
        "maximum",
        "minLength",
        "minItems",
        "pattern",
        "format",
    }
)
_FORMATS: Final = frozenset({"date"})
# How the schema marks what older files lack ("Machine-readable archetype key (v4 addition)").
_V4_MARK: Final = "(v4 addition)"
_DATE_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, eq=False)
class Node:
    """One schema location. `kinds` are the JSON types it accepts ("number" takes integers)."""

    types: tuple[str, ...] = ()
    kinds: frozenset[str] = frozenset()
    properties: Mapping[str, Node] | None = None
    required: frozenset[str] = frozenset()
    items: Node | None = None
    enum: tuple[Any, ...] | None = None
    const: Any = ABSENT
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    min_items: int | None = None
    pattern: re.Pattern[str] | None = None
    format: str | None = None
    v4_addition: bool = False


_ANY: Final = Node()


class Violation(NamedTuple):
    """`keyword` is the schema keyword departed from; for "required" the path names the missing
    key and `node` is its schema; "additionalProperties" is a key the schema does not describe."""

    keyword: str
    path: Path
    node: Node
    value: Any


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def iso_date(value: Any) -> date | None:
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


# --------------------------------------------------------------------------- compiling


class _Compiler:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self._defs: Mapping[str, Any] = root.get("$defs", {})
        self._compiled: dict[str, Node] = {}

    def node(self, schema: Mapping[str, Any]) -> Node:
        unknown = set(schema) - _KEYWORDS - _ANNOTATIONS
        if unknown:
            raise ValueError(f"schema keywords {sorted(unknown)} are not supported")
        if "$ref" in schema:
            return self._ref(schema["$ref"])
        types = _types(schema)
        return Node(
            types=types,
            kinds=frozenset(types) | ({"integer"} if "number" in types else set()),
            properties=self._properties(schema),
            required=frozenset(schema.get("required", ())),
            items=self.node(schema["items"]) if "items" in schema else None,
            enum=tuple(schema["enum"]) if "enum" in schema else None,
            const=schema.get("const", ABSENT),
            minimum=schema.get("minimum"),
            maximum=schema.get("maximum"),
            min_length=schema.get("minLength"),
            min_items=schema.get("minItems"),
            pattern=re.compile(schema["pattern"]) if "pattern" in schema else None,
            format=_format(schema),
            v4_addition=_V4_MARK in schema.get("description", ""),
        )

    def _ref(self, ref: str) -> Node:
        name = ref.removeprefix("#/$defs/")
        if name == ref or name not in self._defs:
            raise ValueError(f"only local #/$defs/ references are supported, not {ref!r}")
        if name not in self._compiled:
            self._compiled[name] = self.node(self._defs[name])
        return self._compiled[name]

    def _properties(self, schema: Mapping[str, Any]) -> Mapping[str, Node] | None:
        if schema.get("additionalProperties", False) is not False:
            raise ValueError("only additionalProperties: false is supported")
        properties = schema.get("properties")
        undescribed = set(schema.get("required", ())) - set(properties or ())
        if undescribed:
            raise ValueError(f"required keys {sorted(undescribed)} have no schema")
        if properties is None:
            return None
        return {name: self.node(child) for name, child in properties.items()}


def _types(schema: Mapping[str, Any]) -> tuple[str, ...]:
    declared = schema.get("type", ())
    return (declared,) if isinstance(declared, str) else tuple(declared)


def _format(schema: Mapping[str, Any]) -> str | None:
    name = schema.get("format")
    if name is not None and name not in _FORMATS:
        raise ValueError(f"format {name!r} is not supported")
    return name


def compile_schema(schema: Mapping[str, Any]) -> Node:
    return _Compiler(schema).node(schema)


CONVERSATION: Final = compile_schema(CONVERSATION_SCHEMA)


# --------------------------------------------------------------------------- the walk


def walk(value: Any, node: Node, path: Path, out: list[Violation]) -> None:
    """Append every violation of `value` (at `path`) against `node` to `out`.

    A value of the wrong type is reported once, for its type: its other keywords, and what is
    inside it, are not checked. Every object the schema describes is treated as closed (the
    schema closes only the top level), so unknown keys anywhere are listed.
    """
    kind = json_type(value)
    if node.kinds and kind not in node.kinds:
        out.append(Violation("type", path, node, value))
        return
    if node.enum is not None and value not in node.enum:
        out.append(Violation("enum", path, node, value))
    if node.const is not ABSENT and value != node.const:
        out.append(Violation("const", path, node, value))
    if kind == "object":
        _walk_object(value, node, path, out)
    elif kind == "array":
        _walk_array(value, node, path, out)
    elif kind == "string":
        _check_string(value, node, path, out)
    elif kind in ("integer", "number"):
        _check_number(value, node, path, out)


def _walk_object(value: dict[str, Any], node: Node, path: Path, out: list[Violation]) -> None:
    properties = node.properties
    if properties is None:
        return
    for name, child in properties.items():
        if name in value:
            walk(value[name], child, (*path, name), out)
        elif name in node.required:
            out.append(Violation("required", (*path, name), child, ABSENT))
    for name in value:
        if name not in properties:
            out.append(Violation("additionalProperties", (*path, name), _ANY, value[name]))


def _walk_array(value: list[Any], node: Node, path: Path, out: list[Violation]) -> None:
    if node.min_items is not None and len(value) < node.min_items:
        out.append(Violation("minItems", path, node, value))
    if node.items is not None:
        for index, item in enumerate(value):
            walk(item, node.items, (*path, index), out)


def _check_string(value: str, node: Node, path: Path, out: list[Violation]) -> None:
    if node.min_length is not None and len(value) < node.min_length:
        out.append(Violation("minLength", path, node, value))
    if node.pattern is not None and not node.pattern.search(value):
        out.append(Violation("pattern", path, node, value))
    if node.format == "date" and iso_date(value) is None:
        out.append(Violation("format", path, node, value))


def _check_number(value: float, node: Node, path: Path, out: list[Violation]) -> None:
    if node.minimum is not None and value < node.minimum:
        out.append(Violation("minimum", path, node, value))
    elif node.maximum is not None and value > node.maximum:
        out.append(Violation("maximum", path, node, value))
