"""The training-file GraphQL API end to end: real HTTP through the ASGI app (httpx), the real
embedded PostgreSQL and real local storage. Expected values are computed here, from the
database rows and from the files the download links serve, never from the code under test."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from uuid import UUID, uuid4

import asyncpg
import httpx
import jsonschema
import pytest

from graphql_api.app import create_app
from graphql_api.config import Settings
from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.downloads import sign_download
from graphql_api.pagination import Cursor
from graphql_api.runtime import DatabaseUrls, Pools
from graphql_api.services import Services
from graphql_api.storage.base import TRAINING_BUCKET
from graphql_api.storage.local import LocalStorage

from .conftest import OTHER_USER, TRAINING_FILE_SCHEMA, USER, bearer

SCHEMA = TRAINING_FILE_SCHEMA
CENTS = Decimal("0.01")
KINDS = (
    ("personas", "persona_key", "persona_name"),
    ("emotionalArcs", "emotional_arc_key", "emotional_arc_name"),
    ("trainingTopics", "training_topic_key", "training_topic_name"),
)

FILE_FIELDS = """
  id name description status version conversationCount totalTrainingPairs trainablePairs
  jsonFileSize jsonlFileSize createdBy createdAt updatedAt lastUpdatedAt
  qualitySummary { average minimum maximum humanReviewedCount humanReviewedPercentage }
  scaffoldingDistribution {
    personas { key name count percentage }
    emotionalArcs { key name count percentage }
    trainingTopics { key name count percentage }
  }
"""
USER_ERRORS = "userErrors { code field message conversationIds }"
CREATE = f"""
mutation($input: CreateTrainingFileInput!) {{
  createTrainingFile(input: $input) {{ trainingFile {{ {FILE_FIELDS} }} {USER_ERRORS} }}
}}"""
ADD = f"""
mutation($input: AddConversationsInput!) {{
  addConversations(input: $input) {{ trainingFile {{ {FILE_FIELDS} }} {USER_ERRORS} }}
}}"""
ARCHIVE = f"""
mutation($id: ID!) {{
  archiveTrainingFile(input: {{id: $id}}) {{ trainingFile {{ id status }} {USER_ERRORS} }}
}}"""
RESTORE = f"""
mutation($id: ID!) {{
  restoreTrainingFile(input: {{id: $id}}) {{ trainingFile {{ id status }} {USER_ERRORS} }}
}}"""
DOWNLOAD = f"""
mutation($id: ID!, $format: TrainingFileFormat!) {{
  downloadUrl(input: {{trainingFileId: $id, format: $format}}) {{
    url filename expiresInSeconds expiresAt {USER_ERRORS}
  }}
}}"""
LIST_FILES = """
query($filter: TrainingFileFilterInput, $first: Int, $after: String) {
  trainingFiles(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id name status createdAt } }
  }
}"""
FILE_CONVERSATIONS = """
query($id: ID!, $first: Int, $after: String) {
  trainingFile(id: $id) {
    id
    conversations(first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { cursor node { id } }
    }
  }
}"""


# ------------------------------------------------------------------------------ helpers


async def gql(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    return response.json()


async def create(
    client: httpx.AsyncClient,
    name: str,
    ids: Sequence[UUID],
    description: str | None = None,
) -> dict[str, Any]:
    body = await gql(
        client,
        CREATE,
        input={"name": name, "description": description, "conversationIds": [str(i) for i in ids]},
    )
    assert "errors" not in body, body
    payload = body["data"]["createTrainingFile"]
    assert payload["userErrors"] == []
    return payload["trainingFile"]


async def add(client: httpx.AsyncClient, file_id: str, ids: Sequence[UUID]) -> dict[str, Any]:
    body = await gql(
        client, ADD, input={"trainingFileId": file_id, "conversationIds": [str(i) for i in ids]}
    )
    assert "errors" not in body, body
    return body["data"]["addConversations"]


async def download(
    client: httpx.AsyncClient, file_id: str, file_format: str
) -> tuple[dict[str, Any], httpx.Response]:
    """The `downloadUrl` payload, and the response of fetching its url."""
    body = await gql(client, DOWNLOAD, id=file_id, format=file_format)
    assert "errors" not in body, body
    payload = body["data"]["downloadUrl"]
    assert payload["userErrors"] == []
    return payload, await client.get(payload["url"])


def rounded(value: Decimal) -> float:
    return float(value.quantize(CENTS, rounding=ROUND_HALF_UP))


def percentage(part: int, whole: int) -> float:
    return rounded(Decimal(part * 100) / whole) if whole else 0.0


async def rows_by_id(db: Database, ids: Sequence[UUID]) -> list[dict[str, Any]]:
    async with db.session() as conn:
        found = await conn.fetch(
            "SELECT * FROM conversations WHERE conversation_id = ANY($1::uuid[])", list(ids)
        )
    by_id = {r["conversation_id"]: dict(r) for r in found}
    return [by_id[i] for i in ids]


async def members(db: Database, file_id: str | UUID) -> list[tuple[UUID, int, UUID]]:
    async with db.session() as conn:
        found = await conn.fetch(
            "SELECT conversation_id, position, added_by FROM training_file_conversations"
            " WHERE training_file_id = $1 ORDER BY position",
            UUID(str(file_id)),
        )
    return [(r["conversation_id"], r["position"], r["added_by"]) for r in found]


async def snapshot(db: Database, storage: LocalStorage) -> tuple[Any, ...]:
    """Every training-file row, junction row and stored training object."""
    async with db.session() as conn:
        files = [dict(r) for r in await conn.fetch("SELECT * FROM training_files ORDER BY id")]
        junction = [
            dict(r)
            for r in await conn.fetch(
                "SELECT * FROM training_file_conversations ORDER BY training_file_id, position"
            )
        ]
        retired = [dict(r) for r in await conn.fetch("SELECT * FROM retired_objects")]
    root = storage.root / TRAINING_BUCKET
    objects = {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
    return files, junction, retired, objects


def expected_distribution(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per scaffolding kind: keys in order of first appearance in the file, with counts."""
    result: dict[str, list[dict[str, Any]]] = {}
    for kind, key_column, name_column in KINDS:
        entries: dict[str, dict[str, Any]] = {}
        for row in rows:
            key = row[key_column]
            if not key:
                continue
            entry = entries.setdefault(key, {"key": key, "name": row[name_column], "count": 0})
            entry["count"] += 1
        result[kind] = [
            {**e, "percentage": percentage(e["count"], len(rows))} for e in entries.values()
        ]
    return result


def pairs_of(full: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for c in full["conversations"] for p in c["training_pairs"]]


def expected_quality(full: dict[str, Any]) -> dict[str, Any]:
    """The quality summary recomputed from the pairs of a downloaded JSON file."""
    pairs = pairs_of(full)
    scores = [Decimal(str(p["training_metadata"]["quality_score"])) for p in pairs]
    reviewed = sum(p["training_metadata"].get("human_reviewed") is True for p in pairs)
    return {
        "average": rounded(sum(scores) / len(scores)),
        "minimum": float(min(scores)),
        "maximum": float(max(scores)),
        "humanReviewedCount": reviewed,
        "humanReviewedPercentage": percentage(reviewed, len(pairs)),
    }


def errors_of(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["extensions"]["code"], e["message"]) for e in body["errors"]]


@pytest.fixture
async def imported(
    db: Database, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> list[dict[str, Any]]:
    """30 generated, enriched conversations; their rows, in generation order."""
    importer = ConversationImporter(owner_writers, storage)
    ids = [
        (await importer.import_file(path)).conversation_id
        for path in write_demo_set(tmp_path / "demo", 30, seed=11)
    ]
    return await rows_by_id(db, ids)


def ids_of(rows: Sequence[dict[str, Any]]) -> list[UUID]:
    return [r["conversation_id"] for r in rows]


async def insert_pending(db: Database) -> UUID:
    """A conversation that is not enriched yet (no stored file)."""
    pending = uuid4()
    async with db.session() as conn:
        await conn.execute(
            "INSERT INTO conversations (conversation_id, enrichment_status)"
            " VALUES ($1, 'not_started')",
            pending,
        )
    return pending


def rounding_tie(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Three conversations whose human-reviewed percentage lies exactly halfway between two
    cents where half-up and half-even rounding disagree (e.g. 65.625): the file and the API
    must still report the same number."""
    for trio in itertools.combinations(rows, 3):
        reviewed = sum(r["human_reviewed_count"] for r in trio)
        pairs = sum(r["pair_count"] for r in trio)
        exact = Decimal(reviewed * 100) / pairs
        if exact.quantize(CENTS, ROUND_HALF_UP) != exact.quantize(CENTS, ROUND_HALF_EVEN):
            return list(trio)
    raise AssertionError("the demo set (seed 11) no longer has a rounding tie")


# ------------------------------------------------------------------ the seed's checklist


async def test_create_with_three(
    client: httpx.AsyncClient, db: Database, imported: list[dict[str, Any]]
) -> None:
    chosen = rounding_tie(imported)
    started = datetime.now(UTC)
    created = await create(
        client, "test_training_file_001", ids_of(chosen), "Test training file for validation"
    )

    assert created["name"] == "test_training_file_001"
    assert created["description"] == "Test training file for validation"
    assert created["status"] == "ACTIVE" and created["version"] == 1
    assert created["createdBy"] == str(USER)
    assert created["conversationCount"] == 3
    assert datetime.fromisoformat(created["createdAt"]) >= started - timedelta(seconds=1)

    _, json_response = await download(client, created["id"], "JSON")
    _, jsonl_response = await download(client, created["id"], "JSONL")
    assert created["jsonFileSize"] == len(json_response.content)
    assert created["jsonlFileSize"] == len(jsonl_response.content)
    full = json_response.json()
    lines = jsonl_response.text.splitlines()

    assert [c["conversation_metadata"]["conversation_id"] for c in full["conversations"]] == [
        str(r["conversation_id"]) for r in chosen
    ]
    pairs = pairs_of(full)
    assert created["totalTrainingPairs"] == len(pairs) == sum(r["pair_count"] for r in chosen)
    trainable = sum(p["target_response"] is not None for p in pairs)
    assert created["trainablePairs"] == trainable == len(lines) - 1

    quality = expected_quality(full)
    assert created["qualitySummary"] == quality
    # The file and the API agree, even on the halfway case the trio was chosen for.
    file_quality = full["training_file_metadata"]["quality_summary"]
    assert file_quality["human_reviewed_percentage"] == quality["humanReviewedPercentage"]
    assert file_quality["human_reviewed_count"] == quality["humanReviewedCount"]

    distribution = expected_distribution(chosen)
    assert created["scaffoldingDistribution"] == distribution
    file_distribution = full["training_file_metadata"]["scaffolding_distribution"]
    for kind, file_kind in (
        ("personas", "personas"),
        ("emotionalArcs", "emotional_arcs"),
        ("trainingTopics", "training_topics"),
    ):
        assert file_distribution[file_kind] == {e["key"]: e["count"] for e in distribution[kind]}

    assert await members(db, created["id"]) == [(c, i, USER) for i, c in enumerate(ids_of(chosen))]
    async with db.session() as conn:
        row = await conn.fetchrow(
            "SELECT * FROM training_files WHERE name = 'test_training_file_001'"
        )
    assert str(row["id"]) == created["id"]
    assert row["conversation_count"] == 3 and row["created_by"] == USER
    assert row["json_file_path"] == f"{row['id']}/v1/training.json"
    assert row["jsonl_file_path"] == f"{row['id']}/v1/training.jsonl"


async def test_add_two_gives_five_at_version_two(
    client: httpx.AsyncClient, db: Database, imported: list[dict[str, Any]]
) -> None:
    created = await create(client, "five", ids_of(imported[:3]))
    payload = await add(client, created["id"], ids_of(imported[3:5]))

    assert payload["userErrors"] == []
    added = payload["trainingFile"]
    assert added["id"] == created["id"]
    assert added["conversationCount"] == 5 and added["version"] == 2
    assert added["createdAt"] == created["createdAt"]
    assert added["lastUpdatedAt"] > created["lastUpdatedAt"]

    _, json_response = await download(client, added["id"], "JSON")
    _, jsonl_response = await download(client, added["id"], "JSONL")
    full = json_response.json()
    assert added["jsonFileSize"] == len(json_response.content)
    assert added["jsonlFileSize"] == len(jsonl_response.content)
    assert [c["conversation_metadata"]["conversation_id"] for c in full["conversations"]] == [
        str(i) for i in ids_of(imported[:5])
    ]
    assert added["totalTrainingPairs"] == sum(r["pair_count"] for r in imported[:5])
    assert added["trainablePairs"] == len(jsonl_response.text.splitlines()) - 1
    assert added["qualitySummary"] == expected_quality(full)
    assert added["scaffoldingDistribution"] == expected_distribution(imported[:5])
    assert await members(db, added["id"]) == [
        (c, i, USER) for i, c in enumerate(ids_of(imported[:5]))
    ]


async def test_duplicate_add_is_a_user_error_and_changes_nothing(
    client: httpx.AsyncClient, db: Database, storage: LocalStorage, imported: list[dict[str, Any]]
) -> None:
    created = await create(client, "dupes", ids_of(imported[:3]))
    before = await snapshot(db, storage)
    duplicate = imported[1]["conversation_id"]

    for request in ([duplicate], [imported[5]["conversation_id"], duplicate]):
        payload = await add(client, created["id"], request)
        assert payload["trainingFile"] is None
        assert payload["userErrors"] == [
            {
                "code": "ALREADY_IN_FILE",
                "field": "conversationIds",
                "message": f"Conversations already in training file: {duplicate}",
                "conversationIds": [str(duplicate)],
            }
        ]
        assert await snapshot(db, storage) == before


async def test_not_enriched_conversation_creates_nothing(
    client: httpx.AsyncClient, db: Database, storage: LocalStorage, imported: list[dict[str, Any]]
) -> None:
    pending = await insert_pending(db)
    missing = uuid4()
    before = await snapshot(db, storage)

    body = await gql(
        client,
        CREATE,
        input={
            "name": "test_invalid",
            "conversationIds": [str(imported[0]["conversation_id"]), str(pending)],
        },
    )
    payload = body["data"]["createTrainingFile"]
    assert payload["trainingFile"] is None
    [error] = payload["userErrors"]
    assert error["code"] == "NOT_ELIGIBLE" and error["field"] == "conversationIds"
    assert error["conversationIds"] == [str(pending)]
    assert str(pending) in error["message"]

    body = await gql(
        client, CREATE, input={"name": "test_missing", "conversationIds": [str(missing)]}
    )
    payload = body["data"]["createTrainingFile"]
    assert payload["trainingFile"] is None
    assert [(e["code"], e["conversationIds"]) for e in payload["userErrors"]] == [
        ("NOT_FOUND", [str(missing)])
    ]
    assert await snapshot(db, storage) == before


async def test_download_json(client: httpx.AsyncClient, imported: list[dict[str, Any]]) -> None:
    created = await create(client, "lora_json_check", ids_of(imported[6:10]))
    payload, response = await download(client, created["id"], "JSON")

    assert payload["filename"] == "lora_json_check.json"
    assert payload["expiresInSeconds"] == 3600
    expires_at = datetime.fromisoformat(payload["expiresAt"])
    assert abs(expires_at - (datetime.now(UTC) + timedelta(hours=1))) < timedelta(seconds=10)
    assert urlsplit(payload["url"]).path.startswith("/downloads/")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"] == 'attachment; filename="lora_json_check.json"'
    assert int(response.headers["content-length"]) == created["jsonFileSize"]
    full = response.json()
    jsonschema.Draft202012Validator(SCHEMA).validate(full)
    assert full["training_file_metadata"]["file_name"] == "lora_json_check"
    assert full["training_file_metadata"]["total_conversations"] == 4


async def test_download_jsonl(client: httpx.AsyncClient, imported: list[dict[str, Any]]) -> None:
    created = await create(client, "lora_jsonl_check", ids_of(imported[10:14]))
    payload, response = await download(client, created["id"], "JSONL")

    assert payload["filename"] == "lora_jsonl_check.jsonl"
    assert payload["expiresInSeconds"] == 3600
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert (
        response.headers["content-disposition"] == 'attachment; filename="lora_jsonl_check.jsonl"'
    )
    assert response.text.endswith("\n")
    lines = [json.loads(line) for line in response.text.splitlines()]
    meta = lines[0]["_meta"]
    assert len(lines) == meta["total_pairs"] + 1 == created["trainablePairs"] + 1
    meta_schema = {"$ref": "#/$defs/jsonl_meta_line", "$defs": SCHEMA["$defs"]}
    line_schema = {"$ref": "#/$defs/jsonl_pair_line", "$defs": SCHEMA["$defs"]}
    jsonschema.Draft202012Validator(meta_schema).validate(lines[0])
    for line in lines[1:]:
        jsonschema.Draft202012Validator(line_schema).validate(line)
    chosen = {str(i) for i in ids_of(imported[10:14])}
    assert {line["conversation_id"] for line in lines[1:]} == chosen


async def test_list_active_newest_first_archived_on_request(
    client: httpx.AsyncClient, db: Database, imported: list[dict[str, Any]]
) -> None:
    for number in range(4):
        await create(client, f"listed_{number}", ids_of(imported[number : number + 2]))
    async with db.session() as conn:
        rows = await conn.fetch(
            "SELECT id, name FROM training_files ORDER BY created_at DESC, id DESC"
        )
    newest_first = [str(r["id"]) for r in rows]
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


# ------------------------------------------------------------------ the rest of the API


async def test_archive_and_restore(
    client: httpx.AsyncClient, db: Database, storage: LocalStorage, imported: list[dict[str, Any]]
) -> None:
    created = await create(client, "shelved", ids_of(imported[:2]))
    body = await gql(client, ARCHIVE, id=created["id"])
    assert body["data"]["archiveTrainingFile"] == {
        "trainingFile": {"id": created["id"], "status": "ARCHIVED"},
        "userErrors": [],
    }
    async with db.session() as conn:
        assert await conn.fetchval("SELECT status FROM training_files") == "archived"

    # An archived file keeps its objects but takes no additions until restored.
    before = await snapshot(db, storage)
    payload = await add(client, created["id"], ids_of(imported[2:3]))
    assert payload["trainingFile"] is None
    assert [e["code"] for e in payload["userErrors"]] == ["CONFLICT"]
    assert await snapshot(db, storage) == before
    _, response = await download(client, created["id"], "JSON")
    assert response.status_code == 200

    body = await gql(client, RESTORE, id=created["id"])
    assert body["data"]["restoreTrainingFile"]["trainingFile"]["status"] == "ACTIVE"
    async with db.session() as conn:
        assert await conn.fetchval("SELECT status FROM training_files") == "active"
    payload = await add(client, created["id"], ids_of(imported[2:3]))
    assert payload["trainingFile"]["conversationCount"] == 3

    for mutation, key in ((ARCHIVE, "archiveTrainingFile"), (RESTORE, "restoreTrainingFile")):
        body = await gql(client, mutation, id=str(uuid4()))
        assert body["data"][key]["trainingFile"] is None
        assert [e["code"] for e in body["data"][key]["userErrors"]] == ["NOT_FOUND"]


async def test_training_file_by_id(
    client: httpx.AsyncClient, db: Database, imported: list[dict[str, Any]]
) -> None:
    created = await create(client, "by_id", ids_of(imported[:4]), "described")
    query = f"query($id: ID!) {{ trainingFile(id: $id) {{ {FILE_FIELDS} }} }}"
    body = await gql(client, query, id=created["id"])
    assert body["data"]["trainingFile"] == created

    async with db.session() as conn:
        row = await conn.fetchrow("SELECT * FROM training_files WHERE id = $1", UUID(created["id"]))
    node = body["data"]["trainingFile"]
    assert node["jsonFileSize"] == row["json_file_size"]
    assert node["totalTrainingPairs"] == row["total_training_pairs"]
    assert node["lastUpdatedAt"] == row["last_updated_at"].isoformat()

    body = await gql(client, query, id=str(uuid4()))
    assert body == {"data": {"trainingFile": None}}


async def test_conversation_lists_its_training_files(
    client: httpx.AsyncClient, db: Database, imported: list[dict[str, Any]]
) -> None:
    first = await create(client, "first", ids_of(imported[:3]))
    second = await create(client, "second", ids_of(imported[2:5]))
    query = "query($id: ID!) { conversation(id: $id) { id trainingFiles { id name } } }"

    async with db.session() as conn:
        junction = await conn.fetch(
            "SELECT j.conversation_id, f.id, f.name FROM training_file_conversations j"
            " JOIN training_files f ON f.id = j.training_file_id"
            " ORDER BY f.created_at DESC, f.id DESC"
        )
    for row in imported[:6]:
        body = await gql(client, query, id=str(row["conversation_id"]))
        expected = [
            {"id": str(j["id"]), "name": j["name"]}
            for j in junction
            if j["conversation_id"] == row["conversation_id"]
        ]
        assert body["data"]["conversation"]["trainingFiles"] == expected
    shared = await gql(client, query, id=str(imported[2]["conversation_id"]))
    assert {f["id"] for f in shared["data"]["conversation"]["trainingFiles"]} == {
        first["id"],
        second["id"],
    }


async def test_conversations_not_in_file_and_eligible(
    client: httpx.AsyncClient, db: Database, imported: list[dict[str, Any]]
) -> None:
    created = await create(client, "partial", ids_of(imported[:5]))
    pending = await insert_pending(db)
    query = """query($filter: ConversationFilterInput) {
        conversations(filter: $filter, first: 100) { totalCount nodes { id } } }"""

    async with db.session() as conn:
        eligible = await conn.fetch(
            "SELECT conversation_id FROM conversations c"
            " WHERE enrichment_status = 'completed' AND enriched_file_path IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM training_file_conversations j"
            "   WHERE j.training_file_id = $1 AND j.conversation_id = c.conversation_id)",
            UUID(created["id"]),
        )
    expected = {str(r["conversation_id"]) for r in eligible}
    assert len(expected) == len(imported) - 5

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


async def test_file_conversations_paginate_in_file_order(
    client: httpx.AsyncClient, db: Database, imported: list[dict[str, Any]]
) -> None:
    # Created newest-first-unfriendly: file order is request order, across an add.
    chosen = [imported[i]["conversation_id"] for i in (7, 2, 9, 0, 4)]
    created = await create(client, "ordered", chosen[:3])
    await add(client, created["id"], chosen[3:])
    in_file_order = [str(c) for c, _, _ in await members(db, created["id"])]
    assert in_file_order == [str(c) for c in chosen]

    seen: list[str] = []
    after = None
    while True:
        body = await gql(client, FILE_CONVERSATIONS, id=created["id"], first=2, after=after)
        assert "errors" not in body, body
        connection = body["data"]["trainingFile"]["conversations"]
        assert connection["totalCount"] == 5
        edges = connection["edges"]
        info = connection["pageInfo"]
        assert info["hasPreviousPage"] is (after is not None)
        assert info["startCursor"] == edges[0]["cursor"]
        assert info["endCursor"] == edges[-1]["cursor"]
        assert len({e["cursor"] for e in edges}) == len(edges)
        seen += [e["node"]["id"] for e in edges]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert seen == in_file_order

    # A cursor from the middle resumes right after its conversation.
    body = await gql(client, FILE_CONVERSATIONS, id=created["id"], first=1)
    middle = body["data"]["trainingFile"]["conversations"]["pageInfo"]["endCursor"]
    body = await gql(client, FILE_CONVERSATIONS, id=created["id"], first=100, after=middle)
    rest = body["data"]["trainingFile"]["conversations"]
    assert [e["node"]["id"] for e in rest["edges"]] == in_file_order[1:]
    assert rest["pageInfo"]["hasNextPage"] is False

    body = await gql(client, FILE_CONVERSATIONS, id=created["id"], first=0)
    empty = body["data"]["trainingFile"]["conversations"]
    assert empty["edges"] == [] and empty["pageInfo"]["hasNextPage"] is True


async def test_name_contains_treats_sql_metacharacters_as_text(
    client: httpx.AsyncClient, services: Services, imported: list[dict[str, Any]]
) -> None:
    names = ["100% real", "snake_case", "O'Brien's plan", "plain file", "back\\slash"]
    for number, name in enumerate(names):
        await services.training_files.create_training_file(
            USER, name, None, [imported[number]["conversation_id"]]
        )

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


# ------------------------------------------------------------------------------ auth


async def test_no_token_is_unauthenticated_but_introspection_works(
    anonymous_client: httpx.AsyncClient,
    db: Database,
    storage: LocalStorage,
    imported: list[dict[str, Any]],
) -> None:
    before = await snapshot(db, storage)
    some_id = str(imported[0]["conversation_id"])
    requests: list[tuple[str, dict[str, Any]]] = [
        ("{ viewer { id } }", {}),
        ("{ trainingFiles { totalCount } }", {}),
        ("query($id: ID!) { trainingFile(id: $id) { id } }", {"id": str(uuid4())}),
        ("{ conversations { totalCount } }", {}),
        ("query($id: ID!) { conversation(id: $id) { id } }", {"id": some_id}),
        (CREATE, {"input": {"name": "anonymous", "conversationIds": [some_id]}}),
        (ADD, {"input": {"trainingFileId": str(uuid4()), "conversationIds": [some_id]}}),
        (DOWNLOAD, {"id": str(uuid4()), "format": "JSON"}),
        (ARCHIVE, {"id": str(uuid4())}),
        (RESTORE, {"id": str(uuid4())}),
    ]
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        for query, variables in requests:
            response = await anonymous_client.post(
                "/graphql", json={"query": query, "variables": variables}, headers=headers
            )
            body = response.json()
            assert not any((body["data"] or {}).values()), query
            assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"], query
    assert await snapshot(db, storage) == before

    body = await gql(anonymous_client, "{ __schema { queryType { name } } }")
    assert body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


async def test_another_user_cannot_change_my_file(
    client: httpx.AsyncClient,
    anonymous_client: httpx.AsyncClient,
    settings: Settings,
    db: Database,
    storage: LocalStorage,
    imported: list[dict[str, Any]],
) -> None:
    created = await create(client, "mine", ids_of(imported[:3]))
    before = await snapshot(db, storage)
    other = bearer(settings, OTHER_USER)
    for query, variables in (
        (ADD, {"input": {"trainingFileId": created["id"], "conversationIds": [str(uuid4())]}}),
        (
            ADD,
            {
                "input": {
                    "trainingFileId": created["id"],
                    "conversationIds": [str(imported[5]["conversation_id"])],
                }
            },
        ),
        (ARCHIVE, {"id": created["id"]}),
    ):
        response = await anonymous_client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=other
        )
        body = response.json()
        assert body["data"] is None
        [error] = body["errors"]
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert "another user" in error["message"]
    assert await snapshot(db, storage) == before


async def test_tampered_or_expired_download_links_are_refused(
    client: httpx.AsyncClient, settings: Settings, imported: list[dict[str, Any]]
) -> None:
    created = await create(client, "guarded", ids_of(imported[:2]))
    payload, response = await download(client, created["id"], "JSON")
    assert response.status_code == 200
    url = urlsplit(payload["url"])
    params = dict(parse_qsl(url.query))

    def with_params(**changes: str) -> str:
        return f"{url.path}?{urlencode({**params, **changes})}"

    signature = params["signature"]
    forged = "0" if signature[-1] != "0" else "1"
    tampered = [
        with_params(signature=signature[:-1] + forged),
        with_params(filename="other.json"),
        with_params(type="application/x-ndjson"),
        with_params(expires=str(int(params["expires"]) + 3600)),
        url.path.replace("training.json", "training.jsonl") + "?" + url.query,
        url.path,
    ]
    for link in tampered:
        refused = await client.get(link)
        assert refused.status_code == 403, link
        assert "content-disposition" not in refused.headers

    bucket, key = url.path.removeprefix("/downloads/").split("/", 1)
    expired = sign_download(
        secret=settings.jwt_secret,
        base_url="http://testserver",
        bucket=bucket,
        key=key,
        filename="guarded.json",
        content_type="application/json",
        now=datetime.now(UTC) - timedelta(hours=2),
    )
    refused = await client.get(expired.url)
    assert refused.status_code == 403
    assert "expired" in refused.json()["error"]


# ----------------------------------------------------------------------- DataLoaders

NESTED = """
query($first: Int!) {
  trainingFiles(first: $first) {
    totalCount
    edges { cursor node {
      id name conversationCount
      qualitySummary { average minimum maximum humanReviewedCount humanReviewedPercentage }
      scaffoldingDistribution {
        personas { key name count percentage }
        emotionalArcs { key count }
        trainingTopics { key count }
      }
      conversations(first: 10) {
        totalCount
        pageInfo { hasNextPage endCursor }
        edges { cursor node {
          id title personaKey qualityScore tier pairCount trainingFiles { id }
        } }
      }
    } }
  }
}"""


class StatementCounter:
    """Counts the statements the app sends. asyncpg's own type introspection, which fills a
    per-connection cache the first time a connection meets a type, is not the app's doing."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, record: asyncpg.connection.LoggedQuery) -> None:
        query = " ".join(record.query.split())
        if query.startswith("WITH RECURSIVE typeinfo_tree") or "set_config('jit'" in query:
            return
        self.statements.append(query)


@pytest.fixture
async def counted(
    database_urls: DatabaseUrls,
    settings: Settings,
    db: Database,
    pools: Pools,
    storage: LocalStorage,
) -> AsyncIterator[tuple[httpx.AsyncClient, StatementCounter]]:
    """A client whose app runs on its own pool; every SQL statement it sends is counted."""
    counter = StatementCounter()
    dsn = database_urls.app

    async def init(conn: asyncpg.Connection) -> None:
        for type_name in ("json", "jsonb"):
            await conn.set_type_codec(
                type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
            )
        conn.add_query_logger(counter)

    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4, init=init)
    assert pool is not None
    try:
        services = Services(settings, Database(pool), pools.writers, pools.maintenance, storage)
        app = create_app(settings, services)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=bearer(settings, USER)
        ) as client:
            yield client, counter
    finally:
        await pool.close()


async def test_nested_page_costs_a_constant_number_of_statements(
    counted: tuple[httpx.AsyncClient, StatementCounter],
    services: Services,
    db: Database,
    imported: list[dict[str, Any]],
) -> None:
    client, counter = counted
    ids = ids_of(imported)
    service = services.training_files

    async def make(number: int) -> None:
        size = 1 + number % 3
        chosen = [ids[(number * 7 + k * 11) % len(ids)] for k in range(size)]
        await service.create_training_file(USER, f"bulk_{number:02d}", None, chosen)

    for batch in range(0, 50, 10):
        await asyncio.gather(*(make(n) for n in range(batch, batch + 10)))

    async def statements(first: int) -> tuple[list[str], dict[str, Any]]:
        await asyncio.sleep(0)
        counter.statements = []
        body = await gql(client, NESTED, first=first)
        assert "errors" not in body, body
        for _ in range(3):  # the query loggers are called soon after each statement
            await asyncio.sleep(0)
        return counter.statements, body["data"]["trainingFiles"]

    await statements(50)  # warm up: connections, prepared statements
    small, _ = await statements(5)
    large, page = await statements(50)
    assert len(small) == len(large), (small, large)
    # Per session: BEGIN, becoming the user, the query, COMMIT, the pool's reset. Four
    # sessions: the page, its total, the files' conversations, the conversations' files.
    queries = [
        q for q in large if q.startswith(("SELECT count", "SELECT k.", "SELECT j.", "SELECT id"))
    ]
    assert len(queries) == 4, large
    assert len(large) <= 20, large

    # And the big page is right: each file's conversations and their files, from the rows.
    assert page["totalCount"] == 50 and len(page["edges"]) == 50
    async with db.session() as conn:
        junction = await conn.fetch(
            "SELECT training_file_id, conversation_id, position FROM training_file_conversations"
            " ORDER BY training_file_id, position"
        )
    files_of: dict[str, set[str]] = {}
    members_of: dict[str, list[str]] = {}
    for j in junction:
        files_of.setdefault(str(j["conversation_id"]), set()).add(str(j["training_file_id"]))
        members_of.setdefault(str(j["training_file_id"]), []).append(str(j["conversation_id"]))
    rows = {str(r["conversation_id"]): r for r in imported}
    for edge in page["edges"]:
        node = edge["node"]
        connection = node["conversations"]
        assert [e["node"]["id"] for e in connection["edges"]] == members_of[node["id"]]
        assert connection["totalCount"] == node["conversationCount"]
        for conversation in (e["node"] for e in connection["edges"]):
            assert {f["id"] for f in conversation["trainingFiles"]} == files_of[conversation["id"]]
            assert conversation["pairCount"] == rows[conversation["id"]]["pair_count"]
        member_rows = [rows[i] for i in members_of[node["id"]]]
        assert (
            node["scaffoldingDistribution"]["personas"]
            == (expected_distribution(member_rows)["personas"])
        )


# ------------------------------------------------------------------------------ errors


async def test_bad_ids_are_named_in_clear_errors(
    client: httpx.AsyncClient, imported: list[dict[str, Any]]
) -> None:
    body = await gql(client, '{ trainingFile(id: "nope") { id } }')
    assert errors_of(body) == [("BAD_USER_INPUT", "id: 'nope' is not a UUID")]

    body = await gql(
        client,
        "query($f: ConversationFilterInput) { conversations(filter: $f) { totalCount } }",
        f={"notInTrainingFile": "nope"},
    )
    assert errors_of(body) == [("BAD_USER_INPUT", "notInTrainingFile: 'nope' is not a UUID")]

    body = await gql(client, LIST_FILES, filter={"createdBy": "12345"})
    assert errors_of(body) == [("BAD_USER_INPUT", "createdBy: '12345' is not a UUID")]

    some_id = str(imported[0]["conversation_id"])
    body = await gql(client, ADD, input={"trainingFileId": "nope", "conversationIds": [some_id]})
    assert body["data"]["addConversations"]["userErrors"] == [
        {
            "code": "BAD_USER_INPUT",
            "field": None,
            "message": "trainingFileId: 'nope' is not a UUID",
            "conversationIds": [],
        }
    ]
    body = await gql(client, DOWNLOAD, id="nope", format="JSONL")
    assert [e["message"] for e in body["data"]["downloadUrl"]["userErrors"]] == [
        "trainingFileId: 'nope' is not a UUID"
    ]
    assert body["data"]["downloadUrl"]["url"] is None
    body = await gql(client, ARCHIVE, id="nope")
    assert [e["message"] for e in body["data"]["archiveTrainingFile"]["userErrors"]] == [
        "id: 'nope' is not a UUID"
    ]
    body = await gql(client, CREATE, input={"name": "bad ids", "conversationIds": ["nope"]})
    assert [
        (e["code"], e["message"]) for e in body["data"]["createTrainingFile"]["userErrors"]
    ] == [("INVALID_ID", "'nope' is not a UUID")]

    body = await gql(client, DOWNLOAD, id=str(uuid4()), format="JSON")
    assert [e["code"] for e in body["data"]["downloadUrl"]["userErrors"]] == ["NOT_FOUND"]


async def test_page_size_and_cursors_are_checked(
    client: httpx.AsyncClient, imported: list[dict[str, Any]]
) -> None:
    created = await create(client, "paged", ids_of(imported[:3]))
    for first in (101, -1):
        body = await gql(client, LIST_FILES, first=first)
        assert errors_of(body) == [
            ("BAD_USER_INPUT", f"first must be between 0 and 100, got {first}")
        ]
        body = await gql(client, FILE_CONVERSATIONS, id=created["id"], first=first)
        assert errors_of(body) == [
            ("BAD_USER_INPUT", f"first must be between 0 and 100, got {first}")
        ]
    assert "errors" not in await gql(client, LIST_FILES, first=100)

    body = await gql(client, LIST_FILES, after="garbage")
    assert errors_of(body) == [("BAD_USER_INPUT", "cursor 'garbage' is not valid")]
    body = await gql(client, FILE_CONVERSATIONS, id=created["id"], after="garbage")
    assert errors_of(body) == [("BAD_USER_INPUT", "cursor 'garbage' is not valid")]

    # A cursor of one list is refused by the other.
    listed = await gql(client, LIST_FILES, first=1)
    file_cursor = listed["data"]["trainingFiles"]["pageInfo"]["endCursor"]
    paged = await gql(client, FILE_CONVERSATIONS, id=created["id"], first=1)
    position_cursor = paged["data"]["trainingFile"]["conversations"]["pageInfo"]["endCursor"]
    body = await gql(client, FILE_CONVERSATIONS, id=created["id"], after=file_cursor)
    assert errors_of(body) == [
        ("BAD_USER_INPUT", f"cursor {file_cursor!r} does not belong to this list")
    ]
    body = await gql(client, LIST_FILES, after=position_cursor)
    assert errors_of(body) == [
        ("BAD_USER_INPUT", f"cursor {position_cursor!r} does not belong to this list")
    ]

    # Well-formed but impossible positions are refused too, not passed on to the database.
    for position in (2**40, -5):
        forged = Cursor(None, None, position).encode()
        body = await gql(client, FILE_CONVERSATIONS, id=created["id"], after=forged)
        assert errors_of(body) == [
            ("BAD_USER_INPUT", f"cursor {forged!r} does not belong to this list")
        ]


async def test_forged_list_cursor_with_out_of_range_time_is_refused(
    client: httpx.AsyncClient,
) -> None:
    forged = Cursor(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))), uuid4()).encode()
    body = await gql(client, LIST_FILES, after=forged)
    assert [code for code, _ in errors_of(body)] == ["BAD_USER_INPUT"]


async def test_a_vanished_bucket_is_storage_unavailable_and_leaks_nothing(
    client: httpx.AsyncClient,
    db: Database,
    storage: LocalStorage,
    imported: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A real fault, no mocks: the training bucket's directory disappears.
    shutil.rmtree(storage.root / TRAINING_BUCKET)
    with caplog.at_level("CRITICAL"):
        response = await client.post(
            "/graphql",
            json={
                "query": CREATE,
                "variables": {
                    "input": {
                        "name": "doomed",
                        "conversationIds": [str(i) for i in ids_of(imported[:2])],
                    }
                },
            },
        )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "STORAGE_UNAVAILABLE"
    assert error["extensions"]["retryAfter"] > 0
    assert set(error) <= {"message", "locations", "path", "extensions"}
    for leak in ("Traceback", "SELECT", "INSERT", str(storage.root), TRAINING_BUCKET, "Error("):
        assert leak not in response.text
    async with db.session() as conn:
        assert await conn.fetchval("SELECT count(*) FROM training_files") == 0
        assert await conn.fetchval("SELECT count(*) FROM training_file_conversations") == 0
