"""A training file is PROCESSING while a change to it is built, so that a dashboard without a
websocket sees it; a build that died leaves it PROCESSING only until the clean-up finds its
lock free. And a client may choose a new file's id (to follow its create from the start)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from graphql_api.config import Settings
from graphql_api.db.database import Database
from graphql_api.db.writers import LockKind, WriterPool
from graphql_api.maintenance.cleanup import end_abandoned_builds
from graphql_api.services import Services
from graphql_api.storage.local import LocalStorage

from .conftest import OTHER_USER, USER, bearer
from .sources import Source, ids_of
from .training_file_graphql import CREATE, add, create, gql, import_thirty

STATUS = "query ($id: ID!) { trainingFile(id: $id) { status version conversationCount } }"
# Bounds the waits of these tests; nothing asserts how fast anything is.
WAIT = 60.0


@pytest.fixture
async def ids(
    db: Database, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> list[UUID]:
    imported: list[Source] = await import_thirty(owner_writers, storage, tmp_path)
    return ids_of(imported)


async def _status(db: Database, file_id: str) -> str:
    async with db.session() as conn:
        status: str = await conn.fetchval(
            "SELECT status FROM training_files WHERE id = $1", UUID(file_id)
        )
    return status


async def test_a_file_is_processing_while_an_add_is_built_and_active_once_it_commits(
    client: httpx.AsyncClient, services: Services, db: Database, ids: list[UUID]
) -> None:
    created = await create(client, "watched", ids[:1])
    # The add's commit needs a key-share lock on each added conversation: holding one row FOR
    # UPDATE keeps the add between its build and its commit for as long as this test wants.
    async with db.connection() as blocker, blocker.transaction():
        await blocker.execute(
            "SELECT 1 FROM conversations WHERE conversation_id = $1 FOR UPDATE", ids[1]
        )
        adding = asyncio.create_task(
            services.training_files.add_conversations(USER, UUID(created["id"]), ids[1:3])
        )
        async with asyncio.timeout(WAIT):
            while await _status(db, created["id"]) != "processing":
                assert not adding.done(), adding.result()
                await asyncio.sleep(0.02)
        seen = (await gql(client, STATUS, id=created["id"]))["data"]["trainingFile"]
        assert seen == {"status": "PROCESSING", "version": 1, "conversationCount": 1}
    added = await asyncio.wait_for(adding, WAIT)
    assert added.version == 2
    seen = (await gql(client, STATUS, id=created["id"]))["data"]["trainingFile"]
    assert seen == {"status": "ACTIVE", "version": 2, "conversationCount": 3}


async def test_a_refused_add_leaves_the_file_as_it_was(
    client: httpx.AsyncClient, db: Database, ids: list[UUID]
) -> None:
    created = await create(client, "refusing", ids[:2])
    refused = await add(client, created["id"], ids[1:3])
    assert [e["code"] for e in refused["userErrors"]] == ["ALREADY_IN_FILE"]
    assert await _status(db, created["id"]) == "active"


async def test_a_build_that_died_is_ended_by_the_clean_up_once_its_lock_is_free(
    client: httpx.AsyncClient, db: Database, owner_writers: WriterPool, ids: list[UUID]
) -> None:
    created = await create(client, "crashed", ids[:1])
    file_id = UUID(created["id"])
    async with db.session() as conn:  # what a build killed between its start and its end leaves
        await conn.execute("UPDATE training_files SET status = 'processing' WHERE id = $1", file_id)

    async with owner_writers.exclusive(LockKind.TRAINING_FILE, file_id):
        # Someone holds the lock: for all the clean-up knows, a build is running.
        assert await end_abandoned_builds(owner_writers) == 0
        assert await _status(db, created["id"]) == "processing"
    assert await end_abandoned_builds(owner_writers) == 1
    assert await _status(db, created["id"]) == "active"


async def test_an_add_to_a_file_a_dead_build_left_processing_goes_ahead(
    client: httpx.AsyncClient, db: Database, ids: list[UUID]
) -> None:
    created = await create(client, "left processing", ids[:1])
    async with db.session() as conn:
        await conn.execute(
            "UPDATE training_files SET status = 'processing' WHERE id = $1", UUID(created["id"])
        )
    added = await add(client, created["id"], ids[1:2])
    assert added["userErrors"] == []
    assert (await gql(client, STATUS, id=created["id"]))["data"]["trainingFile"] == {
        "status": "ACTIVE",
        "version": 2,
        "conversationCount": 2,
    }


async def test_a_client_may_choose_the_new_files_id_once(
    client: httpx.AsyncClient, settings: Settings, db: Database, ids: list[UUID]
) -> None:
    chosen = str(uuid4())

    async def create_with(name: str, file_id: str) -> dict[str, Any]:
        body = await gql(
            client, CREATE, input={"id": file_id, "name": name, "conversationIds": [str(ids[0])]}
        )
        assert "errors" not in body, body
        payload: dict[str, Any] = body["data"]["createTrainingFile"]
        return payload

    first = await create_with("chosen", chosen)
    assert first["userErrors"] == [] and first["trainingFile"]["id"] == chosen
    again = await create_with("chosen again", chosen)
    assert again["trainingFile"] is None
    assert [(e["code"], e["field"]) for e in again["userErrors"]] == [("ID_TAKEN", "id")]
    bad = await create_with("not an id", "file-1")
    assert [(e["code"], e["field"]) for e in bad["userErrors"]] == [("INVALID_ID", "id")]

    client.headers.update(bearer(settings, OTHER_USER))  # another user: the id is taken too
    theirs = await create_with("theirs", chosen)
    assert [e["code"] for e in theirs["userErrors"]] == ["ID_TAKEN"]
    async with db.session() as conn:
        names = await conn.fetch("SELECT name FROM training_files WHERE id = $1", UUID(chosen))
    assert [r["name"] for r in names] == ["chosen"]
