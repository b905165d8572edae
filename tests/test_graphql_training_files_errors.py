"""How the training-file API refuses what it cannot do: ids that are not UUIDs, unknown
files, and storage that has gone away."""

from __future__ import annotations

import shutil
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.storage.base import TRAINING_BUCKET
from graphql_api.storage.local import LocalStorage

from .sources import Source, ids_of
from .training_file_graphql import (
    ADD,
    ARCHIVE,
    CREATE,
    DOWNLOAD,
    LIST_FILES,
    errors_of,
    gql,
    import_thirty,
)


@pytest.fixture
async def imported(
    db: Database, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> list[Source]:
    return await import_thirty(owner_writers, storage, tmp_path)


async def test_bad_ids_are_named_in_clear_errors(
    client: httpx.AsyncClient, imported: list[Source]
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

    some_id = str(imported[0].id)
    body = await gql(client, ADD, input={"trainingFileId": "nope", "conversationIds": [some_id]})
    assert body["data"]["addConversations"]["userErrors"] == [
        {
            "code": "INVALID_ID",
            "field": "trainingFileId",
            "message": "trainingFileId: 'nope' is not a UUID",
            "conversationIds": [],
        }
    ]
    body = await gql(client, DOWNLOAD, id="nope", format="JSONL")
    assert [(e["code"], e["message"]) for e in body["data"]["downloadUrl"]["userErrors"]] == [
        ("INVALID_ID", "trainingFileId: 'nope' is not a UUID")
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


async def test_a_vanished_bucket_is_storage_unavailable_and_leaks_nothing(
    client: httpx.AsyncClient,
    db: Database,
    storage: LocalStorage,
    imported: list[Source],
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
