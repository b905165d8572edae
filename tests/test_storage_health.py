"""/healthz when storage is full, read-only, replaced or gone, made so for real where possible;
and what a client gets when it writes to a disk that is really full."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from uuid import UUID

import httpx
from botocore.exceptions import ClientError

from graphql_api.app import create_app
from graphql_api.config import Settings
from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.maintenance.consistency import check_store
from graphql_api.runtime import Pools
from graphql_api.services import Services
from graphql_api.storage.base import CONVERSATION_BUCKET, TRAINING_BUCKET, Storage
from graphql_api.storage.local import LocalStorage
from graphql_api.storage.s3 import S3Storage
from graphql_api.storage.s3_config import S3Config

from .conftest import USER, bearer, make_settings
from .disks import fill, remount_read_only, tmpfs
from .s3_servers import MotoServer, free_port
from .storage_wrappers import FaultyS3Storage

CREATE = """
mutation($ids: [ID!]!) {
  createTrainingFile(input: {name: "on a full disk", conversationIds: $ids}) {
    trainingFile { id }
    userErrors { code message }
  }
}
"""


@asynccontextmanager
async def _client(
    settings: Settings, pools: Pools, storage: Storage
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, Services.of(settings, pools, storage))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        client.headers.update(bearer(settings, USER))
        yield client


async def _health(settings: Settings, pools: Pools, storage: Storage) -> tuple[int, object]:
    async with _client(settings, pools, storage) as client:
        response = await client.get("/healthz")
    return response.status_code, response.json()


def _unhealthy(storage_state: str) -> tuple[int, object]:
    return 503, {"status": "unavailable", "database": "ok", "storage": storage_state}


def _tiny_disk_settings(pg_data_dir: Path, disk: Path) -> Settings:
    return make_settings(pg_data_dir, disk, HEALTH_MIN_FREE_BYTES="0")


# -- local storage ---------------------------------------------------------------------------


async def test_healthy_local_storage(settings: Settings, pools: Pools, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "storage")

    assert await _health(settings, pools, storage) == (
        200,
        {"status": "ok", "database": "ok", "storage": "ok"},
    )


async def test_less_free_space_than_required_is_full(
    pg_data_dir: Path, pools: Pools, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "storage")
    free = shutil.disk_usage(storage.root).free
    settings = make_settings(pg_data_dir, storage.root, HEALTH_MIN_FREE_BYTES=str(free + 1024**4))

    assert await _health(settings, pools, storage) == _unhealthy("full")


async def test_a_bucket_replaced_by_a_file_is_unwritable(
    settings: Settings, pools: Pools, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "storage")
    shutil.rmtree(storage.root / TRAINING_BUCKET)
    (storage.root / TRAINING_BUCKET).write_bytes(b"")

    assert await _health(settings, pools, storage) == _unhealthy("unwritable")


async def test_a_missing_bucket_is_unreachable(
    settings: Settings, pools: Pools, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "storage")
    (storage.root / CONVERSATION_BUCKET).rmdir()

    assert await _health(settings, pools, storage) == _unhealthy("unreachable")


async def test_a_read_only_file_system_is_unwritable(
    pg_data_dir: Path, pools: Pools, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "disk", 1024 * 1024) as disk:
        storage = LocalStorage(disk)
        settings = _tiny_disk_settings(pg_data_dir, disk)
        assert (await _health(settings, pools, storage))[0] == 200
        remount_read_only(disk)

        assert await _health(settings, pools, storage) == _unhealthy("unwritable")


async def test_a_full_disk_is_reported_by_health_and_to_clients_and_leaks_nothing(
    pg_data_dir: Path,
    db: Database,
    pools: Pools,
    owner_writers: WriterPool,
    tmp_path: Path,
) -> None:
    with tmpfs(tmp_path / "disk", 4 * 1024 * 1024) as disk:
        storage = LocalStorage(disk)
        # No free-space margin: what fails here is the probe's write itself.
        settings = _tiny_disk_settings(pg_data_dir, disk)
        importer = ConversationImporter(owner_writers, storage)
        paths = write_demo_set(tmp_path / "demo", 3, seed=11)
        ids = [str((await importer.import_file(p)).conversation_id) for p in paths]
        fill(disk)

        assert await _health(settings, pools, storage) == _unhealthy("full")
        async with _client(settings, pools, storage) as client:
            response = await client.post(
                "/graphql", json={"query": CREATE, "variables": {"ids": ids}}
            )
        [error] = response.json()["errors"]
        assert error["extensions"] == {"code": "STORAGE_UNAVAILABLE", "retryAfter": 30}
        assert error["message"] == "storage is full; nothing changed, retry later"
        # The failed build took its temp files with it: nothing to clean up.
        report = await check_store(owner_writers, storage, repair=False)
        assert report.findings == [] and report.pending_writes == 0

        (disk / "filler").unlink()
        assert (await _health(settings, pools, storage))[0] == 200
        async with _client(settings, pools, storage) as client:
            response = await client.post(
                "/graphql", json={"query": CREATE, "variables": {"ids": ids}}
            )
        created = response.json()["data"]["createTrainingFile"]
        assert created["userErrors"] == [] and UUID(created["trainingFile"]["id"])


# -- S3 --------------------------------------------------------------------------------------


async def test_an_unreachable_store_is_unreachable(settings: Settings, pools: Pools) -> None:
    config = S3Config(
        endpoint_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        access_key_id="id",
        secret_access_key="secret",
        max_attempts=1,
        connect_timeout=1,
    )
    storage = await S3Storage.open(config)
    try:
        assert await _health(settings, pools, storage) == _unhealthy("unreachable")
    finally:
        await storage.close()


async def test_a_store_that_refuses_writes_is_unwritable(
    settings: Settings, pools: Pools, moto: MotoServer
) -> None:
    storage = await FaultyS3Storage.open(moto.config())
    denied = ClientError(
        {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
        "PutObject",
    )
    try:
        assert (await _health(settings, pools, storage))[0] == 200
        storage.faults.fail("PutObject", error=denied)

        assert await _health(settings, pools, storage) == _unhealthy("unwritable")
    finally:
        await storage.close()
