"""createTrainingFile, addConversations, archiveTrainingFile and restoreTrainingFile end to end:
real HTTP through the ASGI app, the embedded PostgreSQL and local storage. Expected numbers
are computed from the enriched source files by `product_rules`, never by the code under test."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.storage.local import LocalStorage

from . import product_rules as rules
from .conftest import USER
from .sources import Source, documents_of, ids_of
from .training_file_graphql import (
    ARCHIVE,
    CREATE,
    RESTORE,
    add,
    create,
    download,
    expected_distribution,
    expected_file_quality,
    expected_quality,
    gql,
    import_thirty,
    insert_pending,
    members,
    rounding_tie,
    snapshot,
    total_pairs,
    trainable_pairs,
)


@pytest.fixture
async def imported(
    db: Database, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> list[Source]:
    return await import_thirty(owner_writers, storage, tmp_path)


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


# ------------------------------------------------------------------ the seed's checklist


async def test_create_with_three(
    client: httpx.AsyncClient, db: Database, imported: list[Source]
) -> None:
    chosen = rounding_tie(imported)
    started = datetime.now(UTC)
    created = await create(
        client, "test_training_file_001", ids_of(chosen), "Test training file for validation"
    )
    finished = datetime.now(UTC)

    assert created["name"] == "test_training_file_001"
    assert created["description"] == "Test training file for validation"
    assert created["status"] == "ACTIVE" and created["version"] == 1
    assert created["createdBy"] == str(USER)
    assert created["conversationCount"] == 3
    assert started <= _moment(created["createdAt"]) <= finished

    _, json_response = await download(client, created["id"], "JSON")
    _, jsonl_response = await download(client, created["id"], "JSONL")
    assert created["jsonFileSize"] == len(json_response.content)
    assert created["jsonlFileSize"] == len(jsonl_response.content)
    full = json_response.json()
    lines = jsonl_response.text.splitlines()

    assert [c["conversation_metadata"]["conversation_id"] for c in full["conversations"]] == [
        str(s.id) for s in chosen
    ]
    # The pairs are the source files' own, untouched.
    assert [c["training_pairs"] for c in full["conversations"]] == [
        s.document["training_pairs"] for s in chosen
    ]
    assert created["pairCount"] == total_pairs(chosen)
    assert created["trainablePairCount"] == trainable_pairs(chosen) == len(lines) - 1

    # The API and the file agree with the rules, even on the halfway case the trio was
    # chosen for.
    assert created["qualitySummary"] == expected_quality(chosen)
    assert full["training_file_metadata"]["quality_summary"] == expected_file_quality(chosen)

    assert created["scaffoldingDistribution"] == expected_distribution(chosen)
    assert full["training_file_metadata"]["scaffolding_distribution"] == (
        rules.file_distribution(documents_of(chosen))
    )
    for conversation, source in zip(full["conversations"], chosen, strict=True):
        metadata = conversation["conversation_metadata"]
        assert metadata["source_file"] == f"fp_conversation_{source.id}.json"
        assert metadata["created_date"] == source.document["dataset_metadata"]["created_date"]
        assert metadata["total_turns"] == len(source.document["training_pairs"])
        assert metadata["quality_tier"] == rules.tier(rules.conversation_score(source.document))
        assert metadata["scaffolding"] == rules.scaffolding(source.document)

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
    client: httpx.AsyncClient, db: Database, imported: list[Source]
) -> None:
    created = await create(client, "five", ids_of(imported[:3]))
    payload = await add(client, created["id"], ids_of(imported[3:5]))

    assert payload["userErrors"] == []
    added = payload["trainingFile"]
    assert added["id"] == created["id"]
    assert added["conversationCount"] == 5 and added["version"] == 2
    assert _moment(added["createdAt"]) == _moment(created["createdAt"])
    assert _moment(added["lastUpdatedAt"]) > _moment(created["lastUpdatedAt"])

    _, json_response = await download(client, added["id"], "JSON")
    _, jsonl_response = await download(client, added["id"], "JSONL")
    full = json_response.json()
    assert added["jsonFileSize"] == len(json_response.content)
    assert added["jsonlFileSize"] == len(jsonl_response.content)
    five = imported[:5]
    assert [c["conversation_metadata"]["conversation_id"] for c in full["conversations"]] == [
        str(i) for i in ids_of(five)
    ]
    assert [c["training_pairs"] for c in full["conversations"]] == [
        s.document["training_pairs"] for s in five
    ]
    assert added["pairCount"] == total_pairs(five)
    assert added["trainablePairCount"] == trainable_pairs(five)
    assert added["trainablePairCount"] == len(jsonl_response.text.splitlines()) - 1
    assert added["qualitySummary"] == expected_quality(five)
    assert full["training_file_metadata"]["quality_summary"] == expected_file_quality(five)
    assert added["scaffoldingDistribution"] == expected_distribution(five)
    assert full["training_file_metadata"]["scaffolding_distribution"] == (
        rules.file_distribution(documents_of(five))
    )
    assert await members(db, added["id"]) == [(c, i, USER) for i, c in enumerate(ids_of(five))]


async def test_duplicate_add_is_a_user_error_and_changes_nothing(
    client: httpx.AsyncClient, db: Database, storage: LocalStorage, imported: list[Source]
) -> None:
    created = await create(client, "dupes", ids_of(imported[:3]))
    before = await snapshot(db, storage)
    duplicate = imported[1].id

    for request in ([duplicate], [imported[5].id, duplicate]):
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
    client: httpx.AsyncClient, db: Database, storage: LocalStorage, imported: list[Source]
) -> None:
    pending = await insert_pending(db)
    missing = uuid4()
    before = await snapshot(db, storage)

    body = await gql(
        client,
        CREATE,
        input={"name": "test_invalid", "conversationIds": [str(imported[0].id), str(pending)]},
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


# ------------------------------------------------------------------ archive and restore


async def test_archive_and_restore(
    client: httpx.AsyncClient, db: Database, storage: LocalStorage, imported: list[Source]
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
    assert [e["code"] for e in payload["userErrors"]] == ["FILE_NOT_ACTIVE"]
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
