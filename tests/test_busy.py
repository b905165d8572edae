"""Past a bound the server answers BUSY, clearly and quickly, and changes nothing.

The bounds are what these tests are about, so they are shortened here (1 s for the writer
lock, 0.5 s for a request connection) instead of the shipped 30 s and 10 s.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from graphql_api.app import create_app
from graphql_api.config import Settings
from graphql_api.conversations.importer import ConversationImporter
from graphql_api.conversations.uploads import IMPORTS_AT_ONCE
from graphql_api.db.database import Database
from graphql_api.db.pool import create_pool
from graphql_api.db.writers import LockKind, WriterPool, lock_key
from graphql_api.demo import write_demo_set
from graphql_api.runtime import DatabaseUrls, Pools
from graphql_api.services import Services
from graphql_api.storage.base import CONVERSATION_BUCKET
from graphql_api.storage.local import LocalStorage

from .conftest import USER, bearer

ADD = """
mutation ($file: ID!, $ids: [ID!]!) {
  addConversations(input: {trainingFileId: $file, conversationIds: $ids}) {
    trainingFile { version } userErrors { code message }
  }
}"""


@pytest.fixture
async def impatient(
    settings: Settings, pools: Pools, db: Database, storage: LocalStorage
) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    services = Services(
        settings,
        Database(pools.db.pool, acquire_timeout_seconds=0.5),
        WriterPool(pools.writers.pool, timeout_seconds=1),
        pools.maintenance,
        storage,
    )
    transport = httpx.ASGITransport(app=create_app(settings, services))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=bearer(settings, USER)
    ) as client:
        yield client, services


@pytest.fixture
async def file_and_ids(
    impatient: tuple[httpx.AsyncClient, Services],
    owner_writers: WriterPool,
    storage: LocalStorage,
    tmp_path: Path,
) -> tuple[UUID, list[UUID]]:
    importer = ConversationImporter(owner_writers, storage)
    paths = write_demo_set(tmp_path / "demo", 3, seed=12)
    ids = [r.conversation_id for r in [await importer.import_file(p) for p in paths]]
    _, services = impatient
    created = await services.training_files.create_training_file(USER, "held", None, ids[:1])
    return created.id, [i for i in ids if i is not None]


async def _version(db: Database, file_id: UUID) -> int:
    async with db.session() as conn:
        return int(await conn.fetchval("SELECT version FROM training_files WHERE id = $1", file_id))


async def test_an_add_waiting_too_long_for_the_file_lock_is_busy(
    impatient: tuple[httpx.AsyncClient, Services],
    file_and_ids: tuple[UUID, list[UUID]],
    owner_writers: WriterPool,
    db: Database,
) -> None:
    client, _ = impatient
    file_id, ids = file_and_ids
    # Another writer (here: another process's connection) holds the file's lock.
    async with owner_writers.exclusive(LockKind.TRAINING_FILE, file_id):
        graphql = await client.post(
            "/graphql",
            json={"query": ADD, "variables": {"file": str(file_id), "ids": [str(ids[1])]}},
        )
        rest = await client.post(
            f"/api/training-files/{file_id}/add-conversations",
            json={"conversation_ids": [str(ids[2])]},
        )

    [error] = graphql.json()["errors"]
    assert error["extensions"]["code"] == "BUSY"
    assert error["extensions"]["retryAfter"] >= 1
    assert str(file_id) in error["message"]
    assert int(graphql.headers["retry-after"]) >= 1
    assert rest.status_code == 503
    assert rest.json()["details"][0]["code"] == "BUSY"
    assert int(rest.headers["retry-after"]) >= 1
    assert await _version(db, file_id) == 1

    # Once the lock is free, the same add lands.
    again = await client.post(
        "/graphql", json={"query": ADD, "variables": {"file": str(file_id), "ids": [str(ids[1])]}}
    )
    assert again.json()["data"]["addConversations"]["trainingFile"] == {"version": 2}


async def test_a_request_finding_no_free_connection_is_busy(
    impatient: tuple[httpx.AsyncClient, Services], pools: Pools
) -> None:
    client, _ = impatient
    held = [await pools.db.pool.acquire() for _ in range(pools.db.pool.get_max_size())]
    try:
        response = await client.post("/graphql", json={"query": "{ trainingFiles { totalCount } }"})
        # /healthz does not depend on the request pool.
        health = await client.get("/healthz")
    finally:
        for conn in held:
            await pools.db.pool.release(conn)
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BUSY"
    assert "retry-after" in response.headers
    assert health.status_code == 200


async def test_a_writer_lock_is_free_for_another_process_once_its_holder_is_done(
    pools: Pools, db: Database, database_urls: DatabaseUrls
) -> None:
    """The lock goes with the writer connection's return to the pool (its reset unlocks):
    a pool of its own, as another server process has, takes it at once, and no session is
    left holding an advisory lock."""
    file_id = UUID("00000000-0000-4000-8000-00000000b0b0")
    ours = WriterPool(pools.writers.pool, timeout_seconds=1)
    other = WriterPool(await create_pool(database_urls.app), timeout_seconds=1)
    try:
        for kind in LockKind:
            async with ours.exclusive(kind, file_id):
                async with other.try_exclusive(kind, file_id) as taken:
                    assert taken is None  # held: the lock is real across pools
                assert await _advisory_locks_held(db, kind, file_id) == 1
            async with other.try_exclusive(kind, file_id) as taken:
                assert taken is not None
            async with other.exclusive(kind, file_id):
                pass
            assert await _advisory_locks_held(db, kind, file_id) == 0
    finally:
        await other.close()


async def _advisory_locks_held(db: Database, kind: LockKind, object_id: UUID) -> int:
    """Sessions holding this object's writer lock (two-int advisory keys: objsubid 2)."""
    first, second = lock_key(kind, object_id)
    async with db.connection() as conn:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND objsubid = 2 AND classid::bigint = $1"
                " AND objid::bigint = ($2::bigint & 4294967295)",
                first,
                second,
            )
        )


# -- imports: every slot of the process taken -------------------------------------------------

IMPORT = """
mutation Import($files: [Upload!]!) {
  importConversations(files: $files) { results { filename outcome } userErrors { code } }
}"""


class HeldStorage:
    """The real storage, each of whose writes waits until the test lets them all go: imports
    provably inside their slots, holding them."""

    def __init__(self, inner: LocalStorage) -> None:
        self._inner = inner
        self.waiting = 0
        self.release = asyncio.Event()

    async def put(self, bucket: str, key: str, chunks: AsyncIterable[bytes]) -> int:
        self.waiting += 1
        async with asyncio.timeout(30):
            await self.release.wait()
        return await self._inner.put(bucket, key, chunks)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def _upload(client: httpx.AsyncClient, path: Path) -> httpx.Response:
    operations = {"query": IMPORT, "variables": {"files": [None]}}
    return await client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.files.0"]}),
        },
        files={"0": (path.name, path.read_bytes(), "application/json")},
    )


async def test_an_import_finding_every_import_slot_taken_is_busy(
    settings: Settings, pools: Pools, db: Database, storage: LocalStorage, tmp_path: Path
) -> None:
    held = HeldStorage(storage)
    impatient = dataclasses.replace(settings, lock_timeout=1.0)  # the slot wait's bound
    services = Services(
        impatient, pools.db, pools.writers, pools.maintenance, held, pools.importers
    )  # type: ignore[arg-type]
    paths = write_demo_set(tmp_path / "demo", IMPORTS_AT_ONCE + 1, seed=13)
    transport = httpx.ASGITransport(app=create_app(impatient, services))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=bearer(settings, USER)
    ) as client:
        running = [asyncio.create_task(_upload(client, p)) for p in paths[:IMPORTS_AT_ONCE]]
        async with asyncio.timeout(30):
            while held.waiting < IMPORTS_AT_ONCE:  # each inside its slot, at its first write
                await asyncio.sleep(0.01)

        refused = await _upload(client, paths[-1])
        waiting_when_refused = held.waiting
        held.release.set()
        landed = [await task for task in running]

    [error] = refused.json()["errors"]
    assert error["extensions"]["code"] == "BUSY"
    assert error["extensions"]["retryAfter"] >= 1
    assert f"{IMPORTS_AT_ONCE} imports are running" in error["message"]
    assert int(refused.headers["retry-after"]) >= 1
    assert waiting_when_refused == IMPORTS_AT_ONCE  # the refused one never reached the storage
    for response in landed:
        [result] = response.json()["data"]["importConversations"]["results"]
        assert result["outcome"] == "IMPORTED"
    async with db.connection() as conn:
        stored = await conn.fetchval("SELECT count(*) FROM conversations")
    assert stored == IMPORTS_AT_ONCE
    assert len(await storage.list_keys(CONVERSATION_BUCKET)) == 2 * IMPORTS_AT_ONCE  # file + pieces
