"""`deleteTrainingFile` and `DELETE /api/training-files/{id}` over HTTP: the row and its junction
rows go at once, the conversations stay, the objects of every version stay downloadable through
links issued before until the sweeper runs past the link lifetime, then they are gone; only the
owner may delete; a delete waits for a build of the file; `check` stays consistent."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from graphql_api.app import create_app
from graphql_api.config import Settings
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.domain.limits import LINK_TTL_SECONDS
from graphql_api.runtime import DatabaseUrls, Pools
from graphql_api.services import Services
from graphql_api.storage.base import TRAINING_BUCKET, Part, Storage
from graphql_api.storage.s3 import S3Storage

from .conftest import OTHER_USER, USER, bearer
from .sources import Source, ids_of, import_demo
from .training_file_graphql import ARCHIVE, DELETE, LIST_FILES, add, create, errors_of, gql

STORAGE_BACKENDS = ("local", "s3")
API = "/api/training-files"
FORMATS = ("JSON", "JSONL", "OPENAI_CHAT", "HF_DATASET")
PATH_COLUMNS = (
    "json_file_path",
    "jsonl_file_path",
    "openai_chat_file_path",
    "hf_dataset_file_path",
)
FILE = "query($id: ID!) { trainingFile(id: $id) { id } node(id: $id) { id } }"
LINK = """
mutation($id: ID!, $format: TrainingFileFormat!) {
  downloadUrl(input: {trainingFileId: $id, format: $format}) { url userErrors { code } }
}"""
CLI = str(Path(sys.executable).with_name("training-files"))
_WAIT_SECONDS = 30


# -- helpers ------------------------------------------------------------------------------------


@pytest.fixture
async def imported(
    db: Database, owner_writers: WriterPool, storage: Storage, tmp_path: Path
) -> list[Source]:
    return await import_demo(owner_writers, storage, tmp_path / "demo", 8, seed=23)


async def delete(client: httpx.AsyncClient, file_id: str) -> dict[str, Any]:
    body = await gql(client, DELETE, id=file_id)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["deleteTrainingFile"]
    return payload


async def links(client: httpx.AsyncClient, file_id: str) -> dict[str, str]:
    """A download link to each of the file's four objects."""
    issued = {}
    for file_format in FORMATS:
        payload = (await gql(client, LINK, id=file_id, format=file_format))["data"]["downloadUrl"]
        assert payload["userErrors"] == [], payload
        issued[file_format] = payload["url"]
    return issued


async def follow(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """A download link: the app's own route (local storage) or the store's (S3 presigned)."""
    if url.startswith("http://127.0.0.1"):
        async with httpx.AsyncClient() as browser:  # no credentials: the signature is the grant
            return await browser.get(url)
    return await client.get(url, headers={"Authorization": ""})


async def object_keys(db: Database, file_id: str) -> set[str]:
    """The keys the file's row points at now."""
    async with db.session() as conn:
        row = await conn.fetchrow(
            f"SELECT {', '.join(PATH_COLUMNS)} FROM training_files WHERE id = $1", UUID(file_id)
        )
    assert row is not None
    keys = {row[c] for c in PATH_COLUMNS}
    assert None not in keys and len(keys) == 4
    return keys


async def state(db: Database, storage: Storage) -> tuple[Any, ...]:
    """Every training-file, junction, retired and conversation row, and every stored key."""
    async with db.session() as conn:
        tables = [
            [dict(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY {order}")]
            for table, order in (
                ("training_files", "id"),
                ("training_file_conversations", "training_file_id, position"),
                ("retired_objects", "bucket, key"),
                ("conversations", "conversation_id"),
            )
        ]
    return (*tables, await storage.list_keys(TRAINING_BUCKET))


async def members(db: Database, file_id: str) -> int:
    async with db.session() as conn:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM training_file_conversations WHERE training_file_id = $1",
                UUID(file_id),
            )
        )


async def retired(db: Database) -> set[str]:
    async with db.session() as conn:
        return {r["key"] for r in await conn.fetch("SELECT key FROM retired_objects")}


def past_the_link_lifetime() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=LINK_TTL_SECONDS + 1)


# -- the owner deletes ------------------------------------------------------------------------


async def test_the_owner_deletes_and_every_versions_objects_follow_once_links_expire(
    client: httpx.AsyncClient,
    services: Services,
    db: Database,
    storage: Storage,
    imported: list[Source],
) -> None:
    doomed = await create(client, "doomed", ids_of(imported[:3]))
    v1_keys = await object_keys(db, doomed["id"])
    v1_links = await links(client, doomed["id"])
    v1_bodies = {f: (await follow(client, url)).content for f, url in v1_links.items()}
    added = await add(client, doomed["id"], ids_of(imported[3:5]))
    assert added["userErrors"] == [] and added["trainingFile"]["version"] == 2
    v2_keys = await object_keys(db, doomed["id"])
    assert await retired(db) == v1_keys  # the add retired v1 already
    v2_links = await links(client, doomed["id"])
    v2_bodies = {f: (await follow(client, url)).content for f, url in v2_links.items()}
    kept = await create(client, "kept", ids_of(imported[5:6]))
    kept_keys = await object_keys(db, kept["id"])
    async with db.session() as conn:
        conversations = [dict(r) for r in await conn.fetch("SELECT * FROM conversations")]
    assert await members(db, doomed["id"]) == 5

    payload = await delete(client, doomed["id"])
    assert payload == {"deletedTrainingFileId": doomed["id"], "userErrors": []}

    body = await gql(client, FILE, id=doomed["id"])
    assert body == {"data": {"trainingFile": None, "node": None}}
    assert await members(db, doomed["id"]) == 0
    assert await members(db, kept["id"]) == 1
    # Both versions' objects wait for the sweeper, and links issued before still serve them.
    assert await retired(db) == v1_keys | v2_keys
    for issued, bodies in ((v1_links, v1_bodies), (v2_links, v2_bodies)):
        for file_format, url in issued.items():
            response = await follow(client, url)
            assert (response.status_code, response.content) == (200, bodies[file_format])
    assert await services.training_files.sweep_retired_objects() == 0
    assert set(await storage.list_keys(TRAINING_BUCKET)) == v1_keys | v2_keys | kept_keys

    # Past the link lifetime the sweeper takes all eight; the other file keeps its four.
    swept = await services.training_files.sweep_retired_objects(now=past_the_link_lifetime())
    assert swept == 8
    assert set(await storage.list_keys(TRAINING_BUCKET)) == kept_keys
    assert await retired(db) == set()
    # (S3 answers a presigned GET of a missing key 403 or 404, depending on the store.)
    for url in [*v1_links.values(), *v2_links.values()]:
        assert (await follow(client, url)).status_code in (403, 404)

    # The conversations are untouched and can go into another file.
    async with db.session() as conn:
        assert [dict(r) for r in await conn.fetch("SELECT * FROM conversations")] == conversations
    again = await create(client, "doomed", ids_of(imported[:5]))  # the name is free again
    assert again["conversationCount"] == 5


async def test_an_archived_file_is_deleted_over_rest_and_a_second_delete_is_404(
    client: httpx.AsyncClient, db: Database, storage: Storage, imported: list[Source]
) -> None:
    archived = await create(client, "archived", ids_of(imported[:2]))
    keys = await object_keys(db, archived["id"])
    body = await gql(client, ARCHIVE, id=archived["id"])
    assert body["data"]["archiveTrainingFile"]["trainingFile"]["status"] == "ARCHIVED"

    response = await client.delete(f"{API}/{archived['id']}")
    assert (response.status_code, response.content) == (204, b"")
    assert await members(db, archived["id"]) == 0
    assert await retired(db) == keys

    again = await client.delete(f"{API}/{archived['id']}")
    assert again.status_code == 404
    [problem] = again.json()["details"]
    assert problem["code"] == "NOT_FOUND" and archived["id"] in problem["message"]
    listed = await gql(client, LIST_FILES, filter={"status": None})
    assert listed["data"]["trainingFiles"]["totalCount"] == 0


async def test_a_cached_listing_forgets_the_deleted_file(
    client: httpx.AsyncClient, imported: list[Source]
) -> None:
    created = await create(client, "listed", ids_of(imported[:1]))
    request = {"query": LIST_FILES, "variables": {"first": 10}}
    before = await client.post("/graphql", json=request)
    cached = await client.post(
        "/graphql", json=request, headers={"If-None-Match": before.headers["etag"]}
    )
    assert cached.status_code == 304  # the listing is cached, so the delete must invalidate it
    assert [e["node"]["id"] for e in before.json()["data"]["trainingFiles"]["edges"]] == [
        created["id"]
    ]

    assert (await delete(client, created["id"]))["userErrors"] == []

    after = await client.post(
        "/graphql", json=request, headers={"If-None-Match": before.headers["etag"]}
    )
    assert after.status_code == 200
    assert after.json()["data"]["trainingFiles"] == {
        "totalCount": 0,
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        },
        "edges": [],
    }
    rest = await client.get(API)
    assert rest.json() == {"files": []}


# -- refusals ---------------------------------------------------------------------------------


async def test_another_user_is_forbidden_and_nothing_changes(
    client: httpx.AsyncClient,
    anonymous_client: httpx.AsyncClient,
    settings: Settings,
    db: Database,
    storage: Storage,
    imported: list[Source],
) -> None:
    mine = await create(client, "mine", ids_of(imported[:2]))
    before = await state(db, storage)
    other = bearer(settings, OTHER_USER)

    response = await anonymous_client.post(
        "/graphql", json={"query": DELETE, "variables": {"id": mine["id"]}}, headers=other
    )
    body = response.json()
    assert body["data"] is None
    [(code, message)] = errors_of(body)
    assert code == "FORBIDDEN" and "another user" in message

    rest = await anonymous_client.delete(f"{API}/{mine['id']}", headers=other)
    assert rest.status_code == 403
    [problem] = rest.json()["details"]
    assert problem["code"] == "FORBIDDEN"

    assert await state(db, storage) == before


async def test_unknown_and_malformed_ids_are_refused_and_nothing_changes(
    client: httpx.AsyncClient, db: Database, storage: Storage, imported: list[Source]
) -> None:
    await create(client, "untouched", ids_of(imported[:1]))
    before = await state(db, storage)
    unknown = str(uuid4())

    payload = await delete(client, unknown)
    assert payload["deletedTrainingFileId"] is None
    [error] = payload["userErrors"]
    assert (error["code"], error["conversationIds"]) == ("NOT_FOUND", [])
    assert unknown in error["message"]
    assert (await client.delete(f"{API}/{unknown}")).status_code == 404

    payload = await delete(client, "not-a-uuid")
    assert payload["deletedTrainingFileId"] is None
    [error] = payload["userErrors"]
    assert (error["code"], error["field"]) == ("INVALID_ID", "id")
    assert "not-a-uuid" in error["message"]
    rest = await client.delete(f"{API}/not-a-uuid")
    assert rest.status_code == 400 and rest.json()["details"][0]["code"] == "INVALID_ID"

    assert await state(db, storage) == before


# -- a delete during an add -------------------------------------------------------------------


class GatedStorage:
    """The real storage, whose first write waits until the test opens the gate: a build that
    is provably under way, holding its file's lock."""

    def __init__(self, inner: Storage) -> None:
        self._inner = inner
        self.reached = asyncio.Event()
        self.opened = asyncio.Event()

    async def _gate(self) -> None:
        if not self.reached.is_set():
            self.reached.set()
            async with asyncio.timeout(_WAIT_SECONDS):
                await self.opened.wait()

    async def put(self, bucket: str, key: str, chunks: AsyncIterable[bytes]) -> int:
        await self._gate()
        return await self._inner.put(bucket, key, chunks)

    async def compose(self, bucket: str, key: str, parts: Sequence[Part]) -> int:
        await self._gate()
        return await self._inner.compose(bucket, key, parts)

    async def compose_many(
        self, bucket: str, objects: Mapping[str, Sequence[Part]]
    ) -> dict[str, int]:
        await self._gate()
        return await self._inner.compose_many(bucket, objects)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
async def gated_server(
    settings: Settings, pools: Pools, storage: Storage
) -> AsyncIterator[tuple[httpx.AsyncClient, GatedStorage]]:
    """A second server process on the same database and store (its own writer lock turns,
    so the two meet only in PostgreSQL's advisory locks), whose builds stop at the gate."""
    gated = GatedStorage(storage)
    services = Services(
        settings,
        pools.db,
        WriterPool(pools.writers.pool, timeout_seconds=settings.lock_timeout),
        pools.maintenance,
        gated,  # type: ignore[arg-type]
        pools.importers,
    )
    transport = httpx.ASGITransport(app=create_app(settings, services))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=bearer(settings, USER)
    ) as server:
        yield server, gated


async def _waiting_for_an_advisory_lock(db: Database) -> None:
    async with asyncio.timeout(_WAIT_SECONDS):
        while True:
            async with db.session() as conn:
                waiting = await conn.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                )
            if waiting:
                return
            await asyncio.sleep(0.05)


async def test_a_delete_during_an_add_waits_for_it_and_retires_both_versions(
    client: httpx.AsyncClient,
    gated_server: tuple[httpx.AsyncClient, GatedStorage],
    services: Services,
    db: Database,
    storage: Storage,
    imported: list[Source],
) -> None:
    server, gate = gated_server
    created = await create(client, "busy", ids_of(imported[:2]))
    v1_keys = await object_keys(db, created["id"])

    adding = asyncio.create_task(add(server, created["id"], ids_of(imported[2:4])))
    async with asyncio.timeout(_WAIT_SECONDS):
        await gate.reached.wait()  # the add holds the file's lock and is writing v2
    deleting = asyncio.create_task(delete(client, created["id"]))
    await _waiting_for_an_advisory_lock(db)  # the delete queues for that lock
    assert not deleting.done()
    gate.opened.set()

    added = await adding
    assert added["userErrors"] == [] and added["trainingFile"]["version"] == 2
    assert await deleting == {"deletedTrainingFileId": created["id"], "userErrors": []}

    # v2 was committed before the delete, so the delete retired it; the add retired v1.
    keys = set(await storage.list_keys(TRAINING_BUCKET))
    assert len(keys) == 8 and v1_keys < keys
    assert await retired(db) == keys
    assert await members(db, created["id"]) == 0
    swept = await services.training_files.sweep_retired_objects(now=past_the_link_lifetime())
    assert swept == 8
    assert await storage.list_keys(TRAINING_BUCKET) == []


# -- training-files check ---------------------------------------------------------------------


def _check_env(database_urls: DatabaseUrls, storage: Storage, data_dir: Path) -> dict[str, str]:
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "S3_", "AWS_", "JWT_")) and k != "STORAGE_URL"
    }
    env = inherited | {
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": database_urls.app,
        "DATABASE_OWNER_URL": database_urls.owner,
        "JWT_SECRET": "x" * 40,
    }
    if isinstance(storage, S3Storage):
        config = storage.config
        return env | {
            "STORAGE_URL": "s3://",
            "S3_ENDPOINT_URL": config.endpoint_url or "",
            "AWS_ACCESS_KEY_ID": config.access_key_id or "",
            "AWS_SECRET_ACCESS_KEY": config.secret_access_key or "",
            "AWS_REGION": config.region,
        }
    assert hasattr(storage, "root")
    return env | {"STORAGE_URL": storage.root.as_uri()}


async def _check(env: dict[str, str]) -> dict[str, Any]:
    done = await asyncio.to_thread(
        subprocess.run,
        [CLI, "check", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    report: dict[str, Any] = json.loads(done.stdout)
    return report


async def test_check_is_consistent_after_deletes_and_after_the_sweep(
    client: httpx.AsyncClient,
    services: Services,
    database_urls: DatabaseUrls,
    storage: Storage,
    imported: list[Source],
    tmp_path: Path,
) -> None:
    env = _check_env(database_urls, storage, tmp_path / "data")
    grown = await create(client, "grown", ids_of(imported[:2]))
    assert (await add(client, grown["id"], ids_of(imported[2:3])))["userErrors"] == []
    archived = await create(client, "archived", ids_of(imported[3:4]))
    await gql(client, ARCHIVE, id=archived["id"])
    kept = await create(client, "kept", ids_of(imported[4:5]))

    assert (await delete(client, grown["id"]))["userErrors"] == []
    assert (await client.delete(f"{API}/{archived['id']}")).status_code == 204

    report = await _check(env)
    assert report["consistent"] is True and report["findings"] == []
    assert report["checked"]["training_files"] == 1

    swept = await services.training_files.sweep_retired_objects(now=past_the_link_lifetime())
    assert swept == 3 * 4  # grown's v1 and v2, archived's v1
    report = await _check(env)
    assert report["consistent"] is True and report["findings"] == []
    assert len(await storage.list_keys(TRAINING_BUCKET)) == 4  # kept's v1
    assert (await gql(client, FILE, id=kept["id"]))["data"]["trainingFile"] == {"id": kept["id"]}
