"""The server process SIGKILLed at many points of a large add, on local storage and on S3.

After each kill: the file is at its previous version or at the new one (never between), it
downloads and verifies, `check --repair` leaves a consistent store (no temp file, no
incomplete multipart upload, no orphan), and the add, retried, lands.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from graphql_api.aggregation.service import TrainingFileService
from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database
from graphql_api.db.training_files import TrainingFileRecord
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.maintenance.consistency import check_store
from graphql_api.progress.events import CHANNEL
from graphql_api.runtime import DatabaseUrls, Pools
from graphql_api.storage.base import TRAINING_BUCKET, Storage, read_all
from graphql_api.storage.local import LocalStorage
from graphql_api.storage.s3 import S3Storage

from .api_server import ApiServer, server_env
from .conftest import training_file_service
from .s3_servers import MotoServer
from .test_concurrency import ADD, token

OWNER = "crash-owner"
BASE = 200  # ~12 MB of JSON: on S3 the old body is copied inside the store
ADDED = 40
# Where in the add the process dies, as fractions of how long an add takes.
KILL_POINTS = (0.15, 0.4, 0.65, 0.9)
# And one kill that cannot miss the window timing may: while the objects are being written,
# before the commit (found with the server stopped, so that what is seen is where it is).
WHILE_WRITING = "writing"


@dataclass
class Store:
    storage: Storage
    env: dict[str, str]


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="training-files-crashes-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=["local", "s3"])
async def store(
    request: pytest.FixtureRequest, database_urls: DatabaseUrls, workdir: Path
) -> AsyncIterator[Store]:
    env = server_env(workdir / "data", database_urls, workdir / "storage")
    if request.param == "local":
        yield Store(LocalStorage(workdir / "storage"), env)
        return
    moto: MotoServer = request.getfixturevalue("moto")
    s3 = await S3Storage.open(moto.config())
    env |= {
        "STORAGE_URL": "s3://",
        "S3_ENDPOINT_URL": moto.endpoint_url,
        "AWS_ACCESS_KEY_ID": moto.access_key,
        "AWS_SECRET_ACCESS_KEY": moto.secret_key,
        "AWS_REGION": "us-east-1",
    }
    yield Store(s3, env)
    await s3.close()


async def _row(db: Database, file_id: UUID) -> TrainingFileRecord:
    async with db.session() as conn:
        row = await conn.fetchrow("SELECT * FROM training_files WHERE id = $1", file_id)
    return TrainingFileRecord.from_row(row)


async def _assert_downloads_and_verifies(storage: Storage, record: TrainingFileRecord) -> None:
    document = json.loads(await read_all(storage, TRAINING_BUCKET, record.json_file_path or ""))
    assert len(document["conversations"]) == record.conversation_count
    lines = (await read_all(storage, TRAINING_BUCKET, record.jsonl_file_path or "")).splitlines()
    assert json.loads(lines[0])["_meta"]["total_pairs"] == len(lines) - 1 == record.trainable_pairs


async def _add(client: httpx.AsyncClient, file_id: UUID, ids: list[UUID]) -> httpx.Response:
    return await client.post(
        "/graphql",
        json={"query": ADD, "variables": {"file": str(file_id), "ids": [str(i) for i in ids]}},
        headers=token(OWNER),
    )


@asynccontextmanager
async def _phase_reached(db: Database, file_id: UUID, phase: str) -> AsyncIterator[asyncio.Event]:
    """Set once a build of `file_id` publishes `phase` (its progress events, over LISTEN)."""
    reached = asyncio.Event()

    def received(conn: object, pid: int, channel: str, payload: str) -> None:
        event = json.loads(payload)
        if event["training_file_id"] == str(file_id) and event["phase"] == phase:
            reached.set()

    async with db.connection() as conn:
        await conn.add_listener(CHANNEL, received)
        try:
            yield reached
        finally:
            await conn.remove_listener(CHANNEL, received)


async def _stop_while_writing(
    server: ApiServer, storage: Storage, db: Database, file_id: UUID, version: int
) -> None:
    """Return with the server stopped (SIGSTOP) while it writes `version` of the file: an
    upload or temp file in progress, or an object (or segment) under the version's prefix,
    and the row not yet at that version. It runs on in steps of about a millisecond, and is
    looked at only while stopped, so a write and commit of a few milliseconds is not missed."""
    assert server.process is not None
    pid, prefix = server.process.pid, f"{file_id}/v{version}/"
    async with asyncio.timeout(60):
        while True:
            os.kill(pid, signal.SIGSTOP)
            written = [p async for p in storage.list_pending_writes(TRAINING_BUCKET)] or [
                o async for o in storage.list_objects(TRAINING_BUCKET) if o.key.startswith(prefix)
            ]
            if written:
                assert (await _row(db, file_id)).version < version, "the write was missed"
                return
            os.kill(pid, signal.SIGCONT)
            await asyncio.sleep(0.001)


async def test_sigkill_at_any_point_of_a_large_add_loses_and_leaks_nothing(
    store: Store,
    db: Database,
    pools: Pools,
    owner_writers: WriterPool,
    workdir: Path,
) -> None:
    from graphql_api.auth import user_id_for

    owner = user_id_for(OWNER)
    importer = ConversationImporter(owner_writers, store.storage)
    paths = write_demo_set(workdir / "demo", BASE + ADDED * (len(KILL_POINTS) + 3), seed=99)
    ids = [r.conversation_id for r in [await importer.import_file(p) for p in paths]]
    conversation_ids = [i for i in ids if i is not None]
    service: TrainingFileService = training_file_service(pools, store.storage)
    record = await service.create_training_file(owner, "crashing", None, conversation_ids[:80])
    for start in range(80, BASE, 80):
        record = await service.add_conversations(
            owner, record.id, conversation_ids[start : min(start + 80, BASE)]
        )
    fresh = iter(range(BASE, len(conversation_ids), ADDED))
    left_behind = 0

    server = ApiServer(store.env, workdir / "server.log")
    server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            started = time.monotonic()
            batch = conversation_ids[(n := next(fresh)) : n + ADDED]
            assert (await _add(client, record.id, batch)).json()["data"]["addConversations"][
                "trainingFile"
            ]
            add_seconds = time.monotonic() - started
        for point in (*KILL_POINTS, WHILE_WRITING):
            before = await _row(db, record.id)
            batch = conversation_ids[(n := next(fresh)) : n + ADDED]
            async with (
                _phase_reached(db, record.id, "committing") as committing,
                httpx.AsyncClient(base_url=server.url, timeout=60) as client,
            ):
                adding = asyncio.create_task(_add(client, record.id, batch))
                if point == WHILE_WRITING:
                    await asyncio.wait_for(committing.wait(), 60)
                    await _stop_while_writing(
                        server, store.storage, db, record.id, before.version + 1
                    )
                else:
                    await asyncio.sleep(add_seconds * point)
                server.kill()
                await asyncio.gather(adding, return_exceptions=True)

            after = await _row(db, record.id)
            assert after.version in (before.version, before.version + 1), point
            await _assert_downloads_and_verifies(store.storage, after)
            repaired = await check_store(owner_writers, store.storage, repair=True)
            left_behind += len(repaired.findings)
            remaining = await check_store(owner_writers, store.storage, repair=False)
            assert remaining.findings == [], (point, remaining.findings)

            server.start()
            if after.version == before.version:  # the add did not commit: a retry lands
                async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                    retried = (await _add(client, record.id, batch)).json()
                assert retried["data"]["addConversations"]["userErrors"] == [], retried
            current = await _row(db, record.id)
            assert current.conversation_count == after.conversation_count + (
                ADDED if after.version == before.version else 0
            )
            await _assert_downloads_and_verifies(store.storage, current)
    finally:
        server.terminate()
    # Some kills landed mid-write: there was something for the repair to remove.
    assert left_behind > 0
