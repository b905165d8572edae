"""The training-file queries end to end: `trainingFiles` (listing, filters), `trainingFile(id)`,
a conversation's `trainingFiles`, the `conversations` filters that refer to a file, `viewer`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from graphql_api.config import Settings
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.services import Services
from graphql_api.storage.local import LocalStorage

from .conftest import OTHER_USER, USER, bearer
from .sources import Source, ids_of
from .training_file_graphql import (
    ARCHIVE,
    FILE_FIELDS,
    LIST_FILES,
    create,
    errors_of,
    gql,
    import_thirty,
    insert_pending,
)


@pytest.fixture
async def imported(
    db: Database, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> list[Source]:
    return await import_thirty(owner_writers, storage, tmp_path)


async def test_list_active_newest_first_archived_on_request(
    client: httpx.AsyncClient, db: Database, imported: list[Source]
) -> None:
    created = [
        (await create(client, f"listed_{number}", ids_of(imported[number : number + 2])))["id"]
        for number in range(4)
    ]
    newest_first = created[::-1]
    archived = newest_first[1]
    body = await gql(client, ARCHIVE, id=archived)
    assert body["data"]["archiveTrainingFile"]["trainingFile"]["status"] == "ARCHIVED"

    async def listed(**variables: Any) -> tuple[list[str], int]:
        body = await gql(client, LIST_FILES, **variables)
        assert "errors" not in body, body
        connection = body["data"]["trainingFiles"]
        return [e["node"]["id"] for e in connection["edges"]], connection["totalCount"]

    active = [i for i in newest_first if i != archived]
    assert await listed() == (active, 3)
    assert await listed(filter={}) == (active, 3)
    assert await listed(filter={"status": "ACTIVE"}) == (active, 3)
    assert await listed(filter={"status": "ARCHIVED"}) == ([archived], 1)
    assert await listed(filter={"status": None}) == (newest_first, 4)
    assert await listed(filter={"status": None, "createdBy": str(OTHER_USER)}) == ([], 0)

    # Pages of two walk the same order.
    seen: list[str] = []
    after = None
    while True:
        body = await gql(client, LIST_FILES, filter={"status": None}, first=2, after=after)
        connection = body["data"]["trainingFiles"]
        seen += [e["node"]["id"] for e in connection["edges"]]
        assert connection["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert seen == newest_first


async def test_training_file_by_id(
    client: httpx.AsyncClient, db: Database, imported: list[Source]
) -> None:
    created = await create(client, "by_id", ids_of(imported[:4]), "described")
    query = f"query($id: ID!) {{ trainingFile(id: $id) {{ {FILE_FIELDS} }} }}"
    body = await gql(client, query, id=created["id"])
    assert body["data"]["trainingFile"] == created

    async with db.session() as conn:
        row = await conn.fetchrow("SELECT * FROM training_files WHERE id = $1", UUID(created["id"]))
    node = body["data"]["trainingFile"]
    assert node["jsonFileSize"] == row["json_file_size"]
    assert node["pairCount"] == row["total_training_pairs"]
    assert datetime.fromisoformat(node["lastUpdatedAt"]) == row["last_updated_at"]

    body = await gql(client, query, id=str(uuid4()))
    assert body == {"data": {"trainingFile": None}}


async def test_conversation_lists_its_training_files(
    client: httpx.AsyncClient, db: Database, imported: list[Source]
) -> None:
    first = await create(client, "first", ids_of(imported[:3]))
    second = await create(client, "second", ids_of(imported[2:5]))
    query = "query($id: ID!) { conversation(id: $id) { id trainingFiles { id name } } }"

    # Newest file first: the third conversation is in both, the sixth in none.
    newest_first = [(second, imported[2:5]), (first, imported[:3])]
    for source in imported[:6]:
        body = await gql(client, query, id=str(source.id))
        expected = [
            {"id": file["id"], "name": file["name"]}
            for file, members in newest_first
            if source in members
        ]
        assert body["data"]["conversation"]["trainingFiles"] == expected
    shared = await gql(client, query, id=str(imported[2].id))
    assert [f["id"] for f in shared["data"]["conversation"]["trainingFiles"]] == [
        second["id"],
        first["id"],
    ]


async def test_conversations_not_in_file_and_eligible(
    client: httpx.AsyncClient, db: Database, imported: list[Source]
) -> None:
    created = await create(client, "partial", ids_of(imported[:5]))
    pending = await insert_pending(db)
    query = """query($filter: ConversationFilterInput) {
        conversations(filter: $filter, first: 100) { totalCount nodes { id } } }"""

    # Every imported conversation is enriched and stored: all but the file's five are eligible.
    expected = {str(i) for i in ids_of(imported[5:])}
    assert len(expected) == 25

    body = await gql(
        client, query, filter={"notInTrainingFile": created["id"], "eligibleOnly": True}
    )
    connection = body["data"]["conversations"]
    assert {n["id"] for n in connection["nodes"]} == expected
    assert connection["totalCount"] == len(expected)

    # Without eligibleOnly the pending conversation is listed too.
    body = await gql(client, query, filter={"notInTrainingFile": created["id"]})
    assert {n["id"] for n in body["data"]["conversations"]["nodes"]} == expected | {str(pending)}


async def test_viewer_is_the_token_user(
    client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient, settings: Settings
) -> None:
    body = await gql(client, "{ viewer { id } }")
    assert body == {"data": {"viewer": {"id": str(USER)}}}
    other = await anonymous_client.post(
        "/graphql", json={"query": "{ viewer { id } }"}, headers=bearer(settings, OTHER_USER)
    )
    assert other.json() == {"data": {"viewer": {"id": str(OTHER_USER)}}}


async def test_name_contains_treats_sql_metacharacters_as_text(
    client: httpx.AsyncClient, services: Services, imported: list[Source]
) -> None:
    names = ["100% real", "snake_case", "O'Brien's plan", "plain file", "back\\slash"]
    for number, name in enumerate(names):
        await services.training_files.create_training_file(USER, name, None, [imported[number].id])

    async def matching(fragment: str) -> set[str]:
        body = await gql(client, LIST_FILES, filter={"nameContains": fragment})
        assert "errors" not in body, body
        return {e["node"]["name"] for e in body["data"]["trainingFiles"]["edges"]}

    assert await matching("%") == {"100% real"}
    assert await matching("_") == {"snake_case"}
    assert await matching("'") == {"O'Brien's plan"}
    assert await matching("o'BRIEN") == {"O'Brien's plan"}
    assert await matching("\\") == {"back\\slash"}
    assert await matching("%'; DROP TABLE training_files; --") == set()
    assert await matching("PLAIN") == {"plain file"}
    assert await matching("") == set(names)
    assert len(await matching("L")) == 4


NODE = """query ($id: ID!) { node(id: $id) { __typename id
  ... on TrainingFile { name conversationCount }
  ... on Conversation { pairCount } } }"""
NODES = "query ($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"


async def test_node_refetches_either_kind_by_its_id(
    client: httpx.AsyncClient, imported: list[Source]
) -> None:
    created = await create(client, "refetched", ids_of(imported[:3]))
    body = await gql(client, NODE, id=created["id"])
    assert body == {
        "data": {
            "node": {
                "__typename": "TrainingFile",
                "id": created["id"],
                "name": "refetched",
                "conversationCount": 3,
            }
        }
    }
    conversation = imported[4]
    body = await gql(client, NODE, id=str(conversation.id))
    assert body["data"]["node"] == {
        "__typename": "Conversation",
        "id": str(conversation.id),
        "pairCount": len(conversation.document["training_pairs"]),
    }
    assert (await gql(client, NODE, id=str(uuid4())))["data"] == {"node": None}


async def test_nodes_answer_in_the_order_asked_with_null_for_missing(
    client: httpx.AsyncClient, imported: list[Source]
) -> None:
    created = await create(client, "listed among nodes", ids_of(imported[:1]))
    missing = str(uuid4())
    asked = [str(imported[2].id), missing, created["id"], str(imported[1].id)]
    body = await gql(client, NODES, ids=asked)
    assert body["data"]["nodes"] == [
        {"__typename": "Conversation", "id": asked[0]},
        None,
        {"__typename": "TrainingFile", "id": created["id"]},
        {"__typename": "Conversation", "id": asked[3]},
    ]


async def test_nodes_refuse_bad_ids_and_too_many(client: httpx.AsyncClient) -> None:
    body = await gql(client, NODE, id="nope")
    assert errors_of(body) == [("BAD_USER_INPUT", "id: 'nope' is not a UUID")]
    body = await gql(client, NODES, ids=[str(uuid4()) for _ in range(101)])
    assert errors_of(body) == [("BAD_USER_INPUT", "ids: at most 100 ids, got 101")]


async def test_deprecated_names_still_answer_with_the_new_ones(
    client: httpx.AsyncClient, imported: list[Source]
) -> None:
    created = await create(client, "renamed fields", ids_of(imported[:2]))
    body = await gql(
        client,
        """query ($id: ID!) { trainingFile(id: $id) {
          pairCount totalTrainingPairs trainablePairCount trainablePairs
          conversations { nodes { brandVoiceAlignmentScore brandVoiceAlignment } } } }""",
        id=created["id"],
    )
    file = body["data"]["trainingFile"]
    pairs = sum(len(s.document["training_pairs"]) for s in imported[:2])
    assert file["pairCount"] == file["totalTrainingPairs"] == pairs
    assert file["trainablePairCount"] == file["trainablePairs"] > 0
    for conversation in file["conversations"]["nodes"]:
        assert conversation["brandVoiceAlignment"] == conversation["brandVoiceAlignmentScore"]
