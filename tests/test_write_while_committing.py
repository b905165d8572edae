"""A change's transaction runs while its objects are written, and commits only after both.

The storage here is the real one behind a hold on `compose_many`, so a test can look at the
database while a version's objects are being written, then let the write end or fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.runtime import Pools
from graphql_api.storage.base import TRAINING_BUCKET, Part, Storage, StorageError

from .conftest import USER, training_file_service

_WAIT_SECONDS = 10


class HeldWrites:
    """The real storage, whose `compose_many` waits for `release` and then ends with
    `outcome` (None: it writes as asked; an exception: it fails without writing)."""

    def __init__(self, inner: Storage) -> None:
        self._inner = inner
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.outcome: BaseException | None = None

    async def compose_many(
        self, bucket: str, objects: Mapping[str, Sequence[Part]]
    ) -> dict[str, int]:
        self.entered.set()
        async with asyncio.timeout(_WAIT_SECONDS):
            await self.release.wait()
        if self.outcome is not None:
            raise self.outcome
        return await self._inner.compose_many(bucket, objects)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
async def conversation_ids(
    owner_writers: WriterPool, storage: Storage, tmp_path: Path
) -> list[UUID]:
    importer = ConversationImporter(owner_writers, storage)
    paths = write_demo_set(tmp_path / "demo", 3, seed=31)
    ids = [r.conversation_id for r in [await importer.import_file(p) for p in paths]]
    return [i for i in ids if i is not None]


async def _members_being_added(db: Database) -> None:
    """Returns once another session holds junction rows it has inserted and not committed."""
    async with asyncio.timeout(_WAIT_SECONDS):
        while True:
            async with db.session() as conn:
                holders = await conn.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE granted AND mode = 'RowExclusiveLock'"
                    " AND relation = 'training_file_conversations'::regclass"
                    " AND pid <> pg_backend_pid()"
                )
            if holders:
                return
            await asyncio.sleep(0.02)


async def _file_rows(db: Database, file_id: UUID) -> tuple[int, int]:
    async with db.session() as conn:
        files = await conn.fetchval("SELECT count(*) FROM training_files WHERE id = $1", file_id)
        members = await conn.fetchval(
            "SELECT count(*) FROM training_file_conversations WHERE training_file_id = $1",
            file_id,
        )
    return int(files), int(members)


async def _objects_of(storage: Storage, file_id: UUID) -> list[str]:
    return [o.key async for o in storage.list_objects(TRAINING_BUCKET) if str(file_id) in o.key]


async def _create_held_at_its_write(
    pools: Pools, held: HeldWrites, db: Database, name: str, ids: list[UUID]
) -> tuple[UUID, asyncio.Task[Any]]:
    """A create under way, its write held and its junction rows inserted meanwhile."""
    service = training_file_service(pools, held)  # type: ignore[arg-type]
    file_id = uuid4()
    creating = asyncio.create_task(service.create_training_file(USER, name, None, ids, file_id))
    async with asyncio.timeout(_WAIT_SECONDS):
        await held.entered.wait()
    await _members_being_added(db)
    return file_id, creating


async def test_the_commit_statements_run_while_the_objects_are_written(
    pools: Pools, storage: Storage, db: Database, conversation_ids: list[UUID]
) -> None:
    held = HeldWrites(storage)
    file_id, creating = await _create_held_at_its_write(
        pools, held, db, "overlapped", conversation_ids
    )
    # Inserted, not committed: nobody else sees the file yet.
    assert await _file_rows(db, file_id) == (0, 0)

    held.release.set()
    record = await creating

    assert record.id == file_id and record.conversation_count == 3
    assert await _file_rows(db, file_id) == (1, 3)
    assert len(await _objects_of(storage, file_id)) == 4


async def test_a_write_failing_after_the_statements_commits_nothing_and_stores_nothing(
    pools: Pools, storage: Storage, db: Database, conversation_ids: list[UUID]
) -> None:
    held = HeldWrites(storage)
    held.outcome = StorageError("the disk went away")
    file_id, creating = await _create_held_at_its_write(pools, held, db, "never", conversation_ids)
    held.release.set()

    with pytest.raises(StorageError, match="the disk went away"):
        await creating
    assert await _file_rows(db, file_id) == (0, 0)
    assert await _objects_of(storage, file_id) == []
    # The name is free again: the failed create's row was rolled back, not left behind.
    again = await training_file_service(pools, storage).create_training_file(
        USER, "never", None, conversation_ids
    )
    assert again.conversation_count == 3
