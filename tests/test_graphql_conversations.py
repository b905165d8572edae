"""The conversation queries end to end: listing, filters, one conversation. Which
conversations a filter must match is worked out from their source files (tests/product_rules.py),
not read back from the rows the importer wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.storage.local import LocalStorage

from . import product_rules as rules
from .sources import Source, import_demo

LIST = """
query($filter: ConversationFilterInput, $first: Int, $after: String) {
  conversations(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id personaKey emotionalArcKey trainingTopicKey qualityScore
                          enrichmentStatus pairCount createdAt } }
  }
}
"""


async def gql(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def imported(
    db: Database, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> list[Source]:
    """30 generated conversations, imported; their source files in generation order."""
    return await import_demo(owner_writers, storage, tmp_path / "demo", 30, seed=11)


def _keys(document: dict[str, Any]) -> dict[str, str]:
    return rules.scaffolding(document)


def _score_at_least(document: dict[str, Any], floor: float) -> bool:
    score = rules.conversation_score(document)
    return score is not None and score >= floor


async def test_pages_walk_every_conversation_once_newest_first(
    client: httpx.AsyncClient, db: Database, imported: list[Source]
) -> None:
    seen: list[str] = []
    after = None
    while True:
        body = await gql(client, LIST, first=7, after=after)
        connection = body["data"]["conversations"]
        assert connection["totalCount"] == len(imported)
        seen += [edge["node"]["id"] for edge in connection["edges"]]
        assert connection["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    # Newest first by the time each row was created (ties by id): the database's clock.
    async with db.session() as conn:
        rows = await conn.fetch("SELECT conversation_id, created_at FROM conversations")
    expected = sorted(rows, key=lambda r: (r["created_at"], r["conversation_id"]), reverse=True)
    assert seen == [str(r["conversation_id"]) for r in expected]
    assert sorted(seen) == sorted(str(s.id) for s in imported)


@pytest.mark.parametrize(
    ("graphql_filter", "matches"),
    [
        ({"personaKey": "anxious_planner"}, lambda d: _keys(d)["persona_key"] == "anxious_planner"),
        (
            {"emotionalArcKey": "fear_to_confidence"},
            lambda d: _keys(d)["emotional_arc_key"] == "fear_to_confidence",
        ),
        (
            {"trainingTopicKey": "eldercare_costs"},
            lambda d: _keys(d)["training_topic_key"] == "eldercare_costs",
        ),
        ({"minQuality": 3.5}, lambda d: _score_at_least(d, 3.5)),
        # Every imported file is enriched, and none failed.
        ({"enrichmentStatus": "COMPLETED"}, lambda d: True),
        ({"enrichmentStatus": "FAILED"}, lambda d: False),
        (
            {"personaKey": "overwhelmed_avoider", "minQuality": 3},
            lambda d: _keys(d)["persona_key"] == "overwhelmed_avoider" and _score_at_least(d, 3),
        ),
    ],
)
async def test_filters(
    client: httpx.AsyncClient,
    imported: list[Source],
    graphql_filter: dict[str, Any],
    matches: Any,
) -> None:
    body = await gql(client, LIST, filter=graphql_filter, first=100)
    connection = body["data"]["conversations"]
    expected = {str(s.id) for s in imported if matches(s.document)}
    assert {e["node"]["id"] for e in connection["edges"]} == expected
    assert connection["totalCount"] == len(expected)


async def test_conversation_by_id(client: httpx.AsyncClient, imported: list[Source]) -> None:
    source = imported[0]
    query = """query($id: ID!) { conversation(id: $id) {
        id title personaName trainablePairCount validation { valid warnings { code path } } } }"""
    body = await gql(client, query, id=str(source.id))
    node = body["data"]["conversation"]
    assert node["id"] == str(source.id)
    assert node["trainablePairCount"] == rules.trainable(source.document)
    assert node["personaName"] == _keys(source.document)["persona_name"]
    assert node["validation"]["valid"] is True

    missing = await gql(client, query, id="00000000-0000-0000-0000-000000000000")
    assert missing["data"]["conversation"] is None


async def test_bad_arguments_get_clear_errors(client: httpx.AsyncClient, db: Database) -> None:
    body = await gql(client, '{ conversation(id: "nope") { id } }')
    assert body["errors"][0]["message"] == "id: 'nope' is not a UUID"
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    body = await gql(client, LIST, first=101)
    assert "first must be between 0 and 100" in body["errors"][0]["message"]

    body = await gql(client, LIST, after="garbage")
    assert "is not valid" in body["errors"][0]["message"]
