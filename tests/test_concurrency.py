"""Many clients at once against a real server process with the shipped defaults: more callers
than its pools have connections (10 for requests, 4 for writers)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from graphql_api.auth import mint_token, user_id_for
from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.runtime import DatabaseUrls
from graphql_api.storage.local import LocalStorage

from .api_server import ApiServer, server_env

CALLERS = 50
SECRET = "x" * 40

CREATE = """
mutation ($name: String!, $ids: [ID!]!) {
  createTrainingFile(input: {name: $name, conversationIds: $ids}) {
    trainingFile { id version conversationCount }
    userErrors { code message }
  }
}"""
ADD = """
mutation ($file: ID!, $ids: [ID!]!) {
  addConversations(input: {trainingFileId: $file, conversationIds: $ids}) {
    trainingFile { id version conversationCount }
    userErrors { code message }
  }
}"""


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="training-files-concurrency-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def server(database_urls: DatabaseUrls, workdir: Path) -> Iterator[ApiServer]:
    env = server_env(workdir / "data", database_urls, workdir / "storage")
    api = ApiServer(env, workdir / "server.log")
    api.start()
    yield api
    api.terminate()


@pytest.fixture
async def conversation_ids(
    db: Database, owner_writers: WriterPool, workdir: Path, server: ApiServer
) -> list[UUID]:
    storage = LocalStorage(workdir / "storage")
    importer = ConversationImporter(owner_writers, storage)
    paths = write_demo_set(workdir / "demo", 2 * CALLERS + 1, seed=8)
    results = [await importer.import_file(path) for path in paths]
    return [r.conversation_id for r in results if r.conversation_id is not None]


def token(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(user_id_for(user), secret=SECRET)}"}


async def mutate(
    client: httpx.AsyncClient, user: str, query: str, **variables: Any
) -> dict[str, Any]:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=token(user)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    payload: dict[str, Any] = next(iter(body["data"].values()))
    assert payload["userErrors"] == [], payload
    return payload["trainingFile"]


class HealthWatch:
    """Polls /healthz while the load runs; records every answer and how long it took."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client
        self.answers: list[tuple[int, float]] = []

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            response = await self._client.get("/healthz", timeout=10)
            self.answers.append((response.status_code, time.monotonic() - started))
            await asyncio.sleep(0.02)


@pytest.fixture
async def client(server: ApiServer) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=CALLERS + 10)
    async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as http:
        yield http


async def under_watch(client: httpx.AsyncClient, work: Any) -> tuple[list[Any], HealthWatch]:
    watch, stop = HealthWatch(client), asyncio.Event()
    watcher = asyncio.create_task(watch.run(stop))
    try:
        results = await work
    finally:
        stop.set()
        await watcher
    return results, watch


def assert_answered_throughout(watch: HealthWatch) -> None:
    # Fifty adds of one conversation can take under a second: two answers (the first one
    # sent as the load started) show the probe was served while it ran.
    assert len(watch.answers) >= 2, "the load finished before /healthz was polled"
    assert {status for status, _ in watch.answers} == {200}
    slowest = max(seconds for _, seconds in watch.answers)
    print(f"healthz: {len(watch.answers)} answers, slowest {slowest:.3f} s")
    # The hang this guards against lasted minutes; a loaded 2-core machine stays far below.
    assert slowest < 2.0, f"/healthz took {slowest:.2f} s under load"


async def members(db: Database, file_id: str) -> list[UUID]:
    async with db.session() as conn:
        rows = await conn.fetch(
            "SELECT conversation_id FROM training_file_conversations"
            " WHERE training_file_id = $1 ORDER BY position",
            UUID(file_id),
        )
    return [row["conversation_id"] for row in rows]


async def test_fifty_simultaneous_adds_to_one_file_all_land(
    client: httpx.AsyncClient, db: Database, conversation_ids: list[UUID]
) -> None:
    first, rest = conversation_ids[0], conversation_ids[1 : CALLERS + 1]
    created = await mutate(client, "alice", CREATE, name="one file", ids=[str(first)])

    adds = asyncio.gather(
        *(mutate(client, "alice", ADD, file=created["id"], ids=[str(i)]) for i in rest)
    )
    results, watch = await under_watch(client, adds)

    assert sorted(r["version"] for r in results) == list(range(2, CALLERS + 2))
    in_file = await members(db, created["id"])
    assert in_file[0] == first
    assert sorted(in_file[1:]) == sorted(rest)
    assert len(in_file) == CALLERS + 1
    assert_answered_throughout(watch)


async def test_fifty_users_adding_to_fifty_files_all_land(
    client: httpx.AsyncClient, db: Database, conversation_ids: list[UUID]
) -> None:
    users = [f"user-{n}" for n in range(CALLERS)]
    creates = asyncio.gather(
        *(
            mutate(client, user, CREATE, name=f"file of {user}", ids=[str(conversation_ids[n])])
            for n, user in enumerate(users)
        )
    )
    files, create_watch = await under_watch(client, creates)

    extra = conversation_ids[CALLERS : 2 * CALLERS]
    adds = asyncio.gather(
        *(
            mutate(client, user, ADD, file=file["id"], ids=[str(extra[n])])
            for n, (user, file) in enumerate(zip(users, files, strict=True))
        )
    )
    added, add_watch = await under_watch(client, adds)

    assert [a["conversationCount"] for a in added] == [2] * CALLERS
    for n, file in enumerate(files):
        assert await members(db, file["id"]) == [conversation_ids[n], extra[n]]
    assert_answered_throughout(create_watch)
    assert_answered_throughout(add_watch)
