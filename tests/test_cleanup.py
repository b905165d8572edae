"""The server removes what crashed writers left, on its own: at start and every
CLEANUP_INTERVAL, through the app's real lifespan, on local storage and on S3."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from graphql_api.app import create_app
from graphql_api.config import Settings
from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database
from graphql_api.db.writers import LockKind, WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.maintenance.cleanup import clean_up
from graphql_api.maintenance.report import State
from graphql_api.runtime import Pools
from graphql_api.storage.base import (
    CONVERSATION_BUCKET,
    TRAINING_BUCKET,
    Storage,
    StorageError,
    iter_bytes,
    read_all,
)
from graphql_api.storage.local import LocalStorage
from graphql_api.storage.s3 import S3Storage

from .abandoned_writes import abandon_write
from .conftest import make_settings, training_file_service
from .storage_wrappers import FaultyStorage

STORAGE_BACKENDS = ["local", "s3"]

OWNER = UUID("00000000-0000-4000-8000-0000000000c3")
_WAIT_SECONDS = 30


def _server_settings(pg_data_dir: Path, storage: Storage, **env: str) -> Settings:
    """The server's settings, over the same store as the test's `storage`."""
    if isinstance(storage, S3Storage):
        config = storage.config
        env |= {
            "STORAGE_URL": "s3://",
            "S3_ENDPOINT_URL": config.endpoint_url or "",
            "AWS_ACCESS_KEY_ID": config.access_key_id or "",
            "AWS_SECRET_ACCESS_KEY": config.secret_access_key or "",
            "AWS_REGION": config.region,
        }
        return make_settings(pg_data_dir, pg_data_dir, **env)
    assert hasattr(storage, "root")
    return make_settings(pg_data_dir, storage.root, **env)


async def _gone(storage: Storage, bucket: str, keys: list[str]) -> None:
    async with asyncio.timeout(_WAIT_SECONDS):
        while any([await storage.exists(bucket, key) for key in keys]):
            await asyncio.sleep(0.05)


async def test_the_server_cleans_up_at_start_and_every_interval(
    db: Database,
    pools: Pools,
    owner_writers: WriterPool,
    storage: Storage,
    pg_data_dir: Path,
    tmp_path: Path,
) -> None:
    importer = ConversationImporter(owner_writers, storage)
    ids = [
        (await importer.import_file(p)).conversation_id
        for p in write_demo_set(tmp_path / "demo", 2, seed=3)
    ]
    record = await training_file_service(pools, storage).create_training_file(
        OWNER, "cleaned around", None, ids
    )
    left_at_start = [f"{record.id}/v2/training.json", f"{uuid4()}/v1/training.jsonl"]
    for key in left_at_start:
        await storage.put(TRAINING_BUCKET, key, iter_bytes(b"left by a crash"))
    killed = await abandon_write(storage, TRAINING_BUCKET, f"{record.id}/v3/training.json")
    live = f"{uuid4()}/{secrets.token_hex(8)}.json"
    foreign = "notes/keep-me.txt"
    await storage.put(TRAINING_BUCKET, foreign, iter_bytes(b"not ours"))
    settings = _server_settings(pg_data_dir, storage, CLEANUP_INTERVAL="0.2")
    app = create_app(settings)

    async with pools.writers.exclusive(LockKind.CONVERSATION, UUID(live[:36])):
        await storage.put(CONVERSATION_BUCKET, live, iter_bytes(b"{}"))  # an import under way
        async with app.router.lifespan_context(app):
            await _gone(storage, TRAINING_BUCKET, left_at_start)
            async with asyncio.timeout(_WAIT_SECONDS):
                while [p async for p in storage.list_pending_writes(TRAINING_BUCKET)]:
                    await asyncio.sleep(0.05)

            # A later crash is cleaned up by a later round.
            later = f"{record.id}/v4/training.jsonl"
            await storage.put(TRAINING_BUCKET, later, iter_bytes(b"left later"))
            await _gone(storage, TRAINING_BUCKET, [later])

            assert await storage.exists(CONVERSATION_BUCKET, live)
    assert killed.key == f"{record.id}/v3/training.json"
    assert await read_all(storage, TRAINING_BUCKET, foreign) == b"not ours"
    assert sorted(await storage.list_keys(TRAINING_BUCKET)) == sorted(
        [
            record.json_file_path,
            record.jsonl_file_path,
            record.openai_chat_file_path,
            record.hf_dataset_file_path,
            foreign,
        ]
    )
    assert await storage.exists(CONVERSATION_BUCKET, live)  # its writer was alive throughout


async def test_a_clean_up_round_that_cannot_remove_retries_next_round(
    db: Database, owner_writers: WriterPool, storage: Storage
) -> None:
    key = f"{uuid4()}/v1/training.json"
    await storage.put(TRAINING_BUCKET, key, iter_bytes(b"orphan"))
    faulty = FaultyStorage(storage)
    faulty.faults.fail("delete", error=StorageError("injected", reason="unreachable"))

    first = await clean_up(owner_writers, faulty)  # type: ignore[arg-type]
    assert (first[State.FAILED], first[State.REMOVED]) == (1, 0)
    assert await storage.exists(TRAINING_BUCKET, key)

    second = await clean_up(owner_writers, faulty)  # type: ignore[arg-type]
    assert (second[State.FAILED], second[State.REMOVED]) == (0, 1)
    assert not await storage.exists(TRAINING_BUCKET, key)


async def test_a_failing_round_is_logged_and_a_later_one_cleans_up(
    db: Database, pg_data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = LocalStorage(tmp_path / "storage")
    conversation_bucket = storage.root / CONVERSATION_BUCKET
    app = create_app(_server_settings(pg_data_dir, storage, CLEANUP_INTERVAL="0.1"))
    failure = "cleaning up after crashed writers failed"

    async def failed_rounds(more_than: int) -> int:
        async with asyncio.timeout(_WAIT_SECONDS):
            while caplog.text.count(failure) <= more_than:
                await asyncio.sleep(0.05)
        return caplog.text.count(failure)

    async with app.router.lifespan_context(app):
        conversation_bucket.rmdir()  # listing it fails from now on: whole rounds fail
        failed = await failed_rounds(0)
        orphan = f"{uuid4()}/v1/training.json"
        await storage.put(TRAINING_BUCKET, orphan, iter_bytes(b"x"))
        await failed_rounds(failed)
        assert await storage.exists(TRAINING_BUCKET, orphan)

        conversation_bucket.mkdir()
        await _gone(storage, TRAINING_BUCKET, [orphan])
