"""PostgreSQL dropping the connection in the middle of a change, and at its commit.

The fault is real: a trigger installed for the test terminates the backend that runs the
statement (`pg_terminate_backend`), once, at the chosen step. Afterwards the previous state must
be fully readable, nothing may be left in storage, and a retry must succeed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import pytest

from graphql_api.aggregation.service import TrainingFileService
from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.errors import DatabaseUnavailable
from graphql_api.failures import as_unavailable
from graphql_api.runtime import Pools
from graphql_api.storage.base import TRAINING_BUCKET, Storage, read_all

from .conftest import training_file_service

STORAGE_BACKENDS = ("local", "s3")
OWNER = UUID("00000000-0000-4000-8000-0000000000f1")

# `arm(step)` makes the next statement reaching `step` lose its connection, once: the sequence
# is not transactional, so the rolled-back transaction cannot re-arm it.
_INSTALL = """
CREATE TABLE test_fault (step text NOT NULL);
CREATE SEQUENCE test_fault_fired;
CREATE FUNCTION test_fault() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM test_fault WHERE step = TG_ARGV[0])
       AND nextval('test_fault_fired') = 1 THEN
        PERFORM pg_terminate_backend(pg_backend_pid());
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER test_fault_members AFTER INSERT ON training_file_conversations
    FOR EACH STATEMENT EXECUTE FUNCTION test_fault('members');
CREATE TRIGGER test_fault_row AFTER INSERT OR UPDATE ON training_files
    FOR EACH ROW EXECUTE FUNCTION test_fault('row');
CREATE CONSTRAINT TRIGGER test_fault_commit AFTER INSERT OR UPDATE ON training_files
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_fault('commit');
"""
_UNINSTALL = """
DROP TRIGGER test_fault_members ON training_file_conversations;
DROP TRIGGER test_fault_row ON training_files;
DROP TRIGGER test_fault_commit ON training_files;
DROP FUNCTION test_fault();
DROP SEQUENCE test_fault_fired;
DROP TABLE test_fault;
"""


class Faults:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def arm(self, step: str) -> None:
        async with self._db.session() as conn:
            await conn.execute("TRUNCATE test_fault")
            await conn.execute("INSERT INTO test_fault VALUES ($1)", step)
            await conn.execute("SELECT setval('test_fault_fired', 1, false)")

    async def fired(self) -> bool:
        async with self._db.session() as conn:
            return bool(
                await conn.fetchval("SELECT last_value > 1 OR is_called FROM test_fault_fired")
            )


@pytest.fixture
async def faults(db: Database) -> AsyncIterator[Faults]:
    async with db.session() as conn:
        await conn.execute(_INSTALL)
    try:
        yield Faults(db)
    finally:
        async with db.session() as conn:
            await conn.execute(_UNINSTALL)


@pytest.fixture
def service(pools: Pools, storage: Storage) -> TrainingFileService:
    return training_file_service(pools, storage)


@pytest.fixture
async def conversation_ids(
    db: Database, owner_writers: WriterPool, storage: Storage, tmp_path: Path
) -> list[UUID]:
    importer = ConversationImporter(owner_writers, storage)
    paths = write_demo_set(tmp_path / "demo", 6, seed=31)
    return [
        r.conversation_id
        for r in [await importer.import_file(p) for p in paths]
        if r.conversation_id
    ]


async def _state(db: Database, storage: Storage) -> tuple[object, ...]:
    """Rows, junction rows and every training object's bytes."""
    async with db.session() as conn:
        files = [dict(r) for r in await conn.fetch("SELECT * FROM training_files ORDER BY id")]
        members = [
            tuple(r)
            for r in await conn.fetch(
                "SELECT training_file_id, conversation_id, position"
                " FROM training_file_conversations ORDER BY 1, 3"
            )
        ]
        retired = await conn.fetchval("SELECT count(*) FROM retired_objects")
    objects = {
        key: await read_all(storage, TRAINING_BUCKET, key)
        for key in await storage.list_keys(TRAINING_BUCKET)
    }
    return files, members, retired, objects


async def _lost_connection(work: object) -> DatabaseUnavailable | None:
    try:
        await work  # type: ignore[misc]
    except Exception as error:  # what the adapters would show the client
        mapped = as_unavailable(error)
        assert isinstance(mapped, DatabaseUnavailable), repr(error)
        return mapped
    return None


@pytest.mark.parametrize("step", ["members", "row", "commit"])
async def test_create_losing_its_connection_leaves_nothing(
    service: TrainingFileService,
    faults: Faults,
    db: Database,
    storage: Storage,
    conversation_ids: list[UUID],
    step: str,
) -> None:
    before = await _state(db, storage)
    await faults.arm(step)
    failure = await _lost_connection(
        service.create_training_file(OWNER, "doomed", None, conversation_ids[:3])
    )
    assert failure is not None and await faults.fired()
    assert await _state(db, storage) == before

    retried = await service.create_training_file(OWNER, "doomed", None, conversation_ids[:3])
    assert retried.conversation_count == 3


@pytest.mark.parametrize("step", ["members", "row", "commit"])
async def test_add_losing_its_connection_keeps_the_previous_version(
    service: TrainingFileService,
    faults: Faults,
    db: Database,
    storage: Storage,
    conversation_ids: list[UUID],
    step: str,
) -> None:
    created = await service.create_training_file(OWNER, "steady", None, conversation_ids[:3])
    before = await _state(db, storage)
    await faults.arm(step)
    failure = await _lost_connection(
        service.add_conversations(OWNER, created.id, conversation_ids[3:5])
    )
    assert failure is not None and await faults.fired()
    assert await _state(db, storage) == before

    retried = await service.add_conversations(OWNER, created.id, conversation_ids[3:5])
    assert (retried.version, retried.conversation_count) == (2, 5)


@pytest.mark.parametrize("step", ["row", "commit"])
async def test_archive_losing_its_connection_changes_nothing(
    service: TrainingFileService,
    faults: Faults,
    db: Database,
    storage: Storage,
    conversation_ids: list[UUID],
    step: str,
) -> None:
    created = await service.create_training_file(OWNER, "kept", None, conversation_ids[:2])
    before = await _state(db, storage)
    await faults.arm(step)
    assert await _lost_connection(service.set_archived(OWNER, created.id, True)) is not None
    assert await _state(db, storage) == before
    assert (await service.set_archived(OWNER, created.id, True)).status == "archived"
