"""A document's text is validated once: later requests with the same text (and any variables)
skip validation, while invalid documents, and documents past the limits, are refused every
time. The product schema (limits included) is checked over HTTP in test_hostile_input.py and
test_graphql_errors.py; here a small schema counts validations with a rule of its own."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import strawberry
from graphql import ValidationRule
from strawberry.extensions import AddValidationRules, QueryDepthLimiter

from graphql_api.config import Settings
from graphql_api.graphql.schema import build_schema
from graphql_api.graphql.validation_cache import CachedValidation, ValidDocuments

VALIDATIONS: list[str] = []


class CountingRule(ValidationRule):
    """Records each document it validates (a real rule: graphql-core runs it as any other)."""

    def enter_document(self, *args: Any) -> None:
        VALIDATIONS.append("validated")


@strawberry.type
class Node:
    name: str

    @strawberry.field
    def child(self) -> Node:
        return Node(name=f"{self.name}/child")


@strawberry.type
class Query:
    @strawberry.field
    def node(self, name: str) -> Node:
        return Node(name=name)


def schema(valid: ValidDocuments) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        extensions=[
            partial(QueryDepthLimiter, max_depth=3),
            partial(AddValidationRules, [CountingRule]),
            partial(CachedValidation, valid=valid),
        ],
    )


@pytest.fixture(autouse=True)
def _forget_validations() -> None:
    VALIDATIONS.clear()


QUERY = "query ($name: String!) { node(name: $name) { name child { name } } }"


async def test_a_valid_document_is_validated_once_whatever_its_variables() -> None:
    served = schema(ValidDocuments())

    answers = [
        await served.execute(QUERY, variable_values={"name": name}) for name in ("a", "b", "c")
    ]

    assert [a.errors for a in answers] == [None, None, None]
    assert [a.data for a in answers] == [
        {"node": {"name": name, "child": {"name": f"{name}/child"}}} for name in ("a", "b", "c")
    ]
    assert VALIDATIONS == ["validated"]


async def test_an_invalid_document_is_refused_every_time() -> None:
    served = schema(ValidDocuments())
    unknown_field = '{ node(name: "x") { colour } }'
    too_deep = '{ node(name: "x") { child { child { child { name } } } } }'

    for text in (unknown_field, too_deep, unknown_field, too_deep):
        answer = await served.execute(text)
        assert answer.errors, text
        assert answer.data is None

    assert len(VALIDATIONS) == 4


async def test_the_cache_forgets_the_least_recently_used_text_past_its_bound() -> None:
    valid = ValidDocuments(max_documents=2)
    served = schema(valid)
    texts = [f'{{ node(name: "{n}") {{ name }} }}' for n in range(3)]

    for text in (texts[0], texts[1], texts[0], texts[2]):  # texts[1] is the oldest when full
        assert (await served.execute(text)).errors is None
    VALIDATIONS.clear()
    for text in (texts[0], texts[2], texts[1]):
        assert (await served.execute(text)).errors is None

    assert VALIDATIONS == ["validated"]  # only texts[1], forgotten, was validated again


async def test_each_product_schema_has_a_cache_of_its_own() -> None:
    """The limits are part of validation, so a schema built with a lower depth limit must not
    take another schema's word for a document that passed there."""
    deep = "{ trainingFiles { edges { node { conversations { nodes { id } } } } } }"
    lenient = build_schema()
    strict = build_schema(Settings.from_env({"JWT_SECRET": "x" * 32, "GRAPHQL_MAX_DEPTH": "3"}))

    # Validation passes here (execution then fails: no request context), so it is remembered.
    passed = await lenient.execute(deep)
    assert not any("depth" in e.message for e in passed.errors or [])
    refused = await strict.execute(deep)

    assert refused.errors and "exceeds maximum operation depth" in refused.errors[0].message
