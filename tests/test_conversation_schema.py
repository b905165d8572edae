"""graphql_api.conversations.schema: the schema file compiled, and the walk that lists
departures from it."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import pytest

from graphql_api.conversations.schema import (
    CONVERSATION,
    Node,
    Violation,
    compile_schema,
    walk,
)
from graphql_api.domain.vocabulary import CONVERSATION_SCHEMA

from .conversation_documents import document, require_shared


def _found(value: Any, node: Node) -> list[tuple[str, tuple[str | int, ...]]]:
    out: list[Violation] = []
    walk(value, node, (), out)
    return [(v.keyword, v.path) for v in out]


def test_the_packaged_schema_is_the_upstream_file_unchanged() -> None:
    shared = require_shared() / "individual-conversation.schema.json"
    packaged = files("graphql_api.domain") / "data" / "individual-conversation.schema.json"
    assert packaged.read_bytes() == shared.read_bytes()


def _properties(node: Node | None) -> dict[str, Node]:
    assert node is not None and node.properties is not None
    return dict(node.properties)


def test_the_v4_additions_are_the_five_the_schema_marks() -> None:
    pair = _properties(CONVERSATION)["training_pairs"].items
    metadata = _properties(_properties(pair)["conversation_metadata"])
    assert {name for name, node in metadata.items() if node.v4_addition} == {
        "persona_archetype",
        "emotional_arc",
        "emotional_arc_key",
        "training_topic",
        "training_topic_key",
    }


def test_a_valid_document_has_no_violations() -> None:
    assert _found(document(), CONVERSATION) == []


def test_integers_are_not_floats_or_booleans() -> None:
    node = compile_schema({"type": "integer", "minimum": 1})
    assert _found(3, node) == []
    assert _found(3.0, node) == [("type", ())]
    assert _found(True, node) == [("type", ())]
    assert _found(0, node) == [("minimum", ())]
    assert _found(2, compile_schema({"type": "number"})) == []


def test_objects_list_missing_required_and_unknown_keys() -> None:
    node = compile_schema(
        {
            "type": "object",
            "required": ["a"],
            "properties": {"a": {"type": "string"}, "b": {"type": "object", "properties": {}}},
        }
    )
    assert _found({"b": {"deep": 1}, "c": 2}, node) == [
        ("required", ("a",)),
        ("additionalProperties", ("b", "deep")),
        ("additionalProperties", ("c",)),
    ]


def test_a_wrong_type_hides_the_rest_of_the_value() -> None:
    node = compile_schema({"type": "string", "enum": ["x"], "minLength": 3})
    assert _found(5, node) == [("type", ())]
    assert _found("y", node) == [("enum", ()), ("minLength", ())]


def test_local_references_resolve_once() -> None:
    schema = {
        "type": "array",
        "items": {"$ref": "#/$defs/turn"},
        "$defs": {"turn": {"type": "integer"}},
    }
    assert _found([1, "2", 3], compile_schema(schema)) == [("type", (1,))]


@pytest.mark.parametrize(
    "schema",
    [
        {"oneOf": [{"type": "string"}]},
        {"$ref": "https://example.com/other.json"},
        {"type": "string", "format": "email"},
        {"type": "object", "additionalProperties": {"type": "string"}},
        {"type": "object", "required": ["a"], "properties": {}},
    ],
)
def test_what_the_walk_cannot_judge_fails_to_compile(schema: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        compile_schema(schema)


def test_the_packaged_schema_compiles() -> None:
    assert compile_schema(CONVERSATION_SCHEMA).properties is not None
