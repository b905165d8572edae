from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.storage.local import LocalStorage

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
) -> list[dict[str, Any]]:
    """30 generated conversations in the database; their rows as the test's ground truth."""
    importer = ConversationImporter(owner_writers, storage)
    for path in write_demo_set(tmp_path / "demo", 30, seed=11):
        await importer.import_file(path)
    async with db.session() as conn:
        rows = await conn.fetch("SELECT * FROM conversations")
    return [dict(r) for r in rows]


async def test_pages_walk_every_conversation_once_newest_first(
    client: httpx.AsyncClient, imported: list[dict[str, Any]]
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
    expected = sorted(imported, key=lambda r: (r["created_at"], r["conversation_id"]), reverse=True)
    assert seen == [str(r["conversation_id"]) for r in expected]


@pytest.mark.parametrize(
    ("graphql_filter", "matches"),
    [
        ({"personaKey": "anxious_planner"}, lambda r: r["persona_key"] == "anxious_planner"),
        (
            {"emotionalArcKey": "fear_to_confidence"},
            lambda r: r["emotional_arc_key"] == "fear_to_confidence",
        ),
        (
            {"trainingTopicKey": "eldercare_costs"},
            lambda r: r["training_topic_key"] == "eldercare_costs",
        ),
        (
            {"minQuality": 3.5},
            lambda r: r["quality_score"] is not None and r["quality_score"] >= 3.5,
        ),
        ({"enrichmentStatus": "COMPLETED"}, lambda r: r["enrichment_status"] == "completed"),
        ({"enrichmentStatus": "FAILED"}, lambda r: r["enrichment_status"] == "failed"),
        (
            {"personaKey": "overwhelmed_avoider", "minQuality": 3},
            lambda r: (
                r["persona_key"] == "overwhelmed_avoider"
                and r["quality_score"] is not None
                and r["quality_score"] >= 3
            ),
        ),
    ],
)
async def test_filters(
    client: httpx.AsyncClient,
    imported: list[dict[str, Any]],
    graphql_filter: dict[str, Any],
    matches: Any,
) -> None:
    body = await gql(client, LIST, filter=graphql_filter, first=100)
    connection = body["data"]["conversations"]
    expected = {str(r["conversation_id"]) for r in imported if matches(r)}
    assert {e["node"]["id"] for e in connection["edges"]} == expected
    assert connection["totalCount"] == len(expected)


async def test_conversation_by_id(
    client: httpx.AsyncClient, imported: list[dict[str, Any]]
) -> None:
    row = imported[0]
    query = """query($id: ID!) { conversation(id: $id) {
        id title personaName trainablePairCount validation { valid warnings { code path } } } }"""
    body = await gql(client, query, id=str(row["conversation_id"]))
    node = body["data"]["conversation"]
    assert node["id"] == str(row["conversation_id"])
    assert node["trainablePairCount"] == row["trainable_pair_count"]
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
