"""`trainingFileProgress` over graphql-transport-ws, against real server processes: a client
subscribed on one process sees, in order, the progress of a change made through another, ending
in the committed version."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import websockets

from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.runtime import DatabaseUrls
from graphql_api.storage.local import LocalStorage

from .api_server import ApiServer, server_env
from .test_concurrency import ADD, CREATE, mutate, token

PROGRESS = """subscription ($id: ID!) { trainingFileProgress(id: $id) {
  trainingFileId sequence phase conversationsDone conversationsTotal bytesWritten version
  errorCode errorMessage trainingFile { id version conversationCount } } }"""
CREATE_WITH_ID = """
mutation ($id: ID!, $name: String!, $ids: [ID!]!) {
  createTrainingFile(input: {id: $id, name: $name, conversationIds: $ids}) {
    trainingFile { id version conversationCount }
    userErrors { code message }
  }
}"""
# Bounds these tests' waits; nothing asserts how fast anything is.
WAIT = 60.0
_SEEDS = itertools.count(2300)


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="training-files-subscriptions-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def servers(
    database_urls: DatabaseUrls, owner_writers: WriterPool, workdir: Path, db: Database
) -> AsyncIterator[tuple[list[ApiServer], list[UUID]]]:
    """Two servers on one database, over conversations of their own (`db` empties the
    database after the test)."""
    storage_dir = workdir / "storage"
    importer = ConversationImporter(owner_writers, LocalStorage(storage_dir))
    # Conversations of their own: the database outlives this test's storage, and a re-import of
    # a file already imported is a no-op that would leave this storage without its objects.
    paths = write_demo_set(workdir / "demo", 30, seed=next(_SEEDS))
    ids = [(await importer.import_file(p)).conversation_id for p in paths]
    env = server_env(workdir / "data", database_urls, storage_dir)
    started = [ApiServer(env, workdir / f"server-{n}.log") for n in range(2)]
    for server in started:
        server.start()
    try:
        yield started, ids
    finally:
        for server in started:
            server.terminate()


class Subscriber:
    """A graphql-transport-ws client, authenticated as `user` in `connection_init`."""

    def __init__(self, server: ApiServer, user: str | None) -> None:
        self._url = server.url.replace("http://", "ws://") + "/graphql"
        self._user = user

    async def __aenter__(self) -> Subscriber:
        self._socket = await websockets.connect(self._url, subprotocols=["graphql-transport-ws"])
        init: dict[str, Any] = {"type": "connection_init"}
        if self._user is not None:
            init["payload"] = {"Authorization": token(self._user)["Authorization"]}
        await self._socket.send(json.dumps(init))
        assert json.loads(await self._socket.recv())["type"] == "connection_ack"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._socket.close()

    async def subscribe(self, file_id: str) -> None:
        message = {"query": PROGRESS, "variables": {"id": file_id}}
        await self._socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": message}))

    async def until_complete(self) -> list[dict[str, Any]]:
        """Every `next` payload, then the `complete` (or the `error`) that ends them."""
        received = []
        async with asyncio.timeout(WAIT):
            while True:
                message = json.loads(await self._socket.recv())
                if message["type"] == "ping":
                    await self._socket.send(json.dumps({"type": "pong"}))
                    continue
                received.append(message)
                if message["type"] in ("complete", "error"):
                    return received


async def _listeners(db: Database) -> int:
    async with db.connection() as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %'"
        )
    return count


async def _subscribed(subscriber: Subscriber, file_id: str, db: Database) -> None:
    """Subscribe, and return once the server listens: what is published from then on reaches
    the subscriber (the server registers it before it runs anything else)."""
    before = await _listeners(db)
    await subscriber.subscribe(file_id)
    async with asyncio.timeout(WAIT):
        while await _listeners(db) <= before:
            await asyncio.sleep(0.05)


async def test_progress_of_an_add_made_through_another_process_ends_in_its_version(
    servers: tuple[list[ApiServer], list[UUID]], db: Database
) -> None:
    (watching, changing), ids = servers
    async with httpx.AsyncClient(base_url=changing.url, timeout=WAIT) as client:
        created = await mutate(client, "alice", CREATE, name="followed", ids=[str(ids[0])])
        async with Subscriber(watching, "bob") as subscriber:
            await _subscribed(subscriber, created["id"], db)
            added = await mutate(
                client, "alice", ADD, file=created["id"], ids=[str(i) for i in ids[1:30]]
            )
            messages = await subscriber.until_complete()
    assert [m["type"] for m in messages][-1] == "complete", messages
    events = [m["payload"]["data"]["trainingFileProgress"] for m in messages[:-1]]
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    phases = [e["phase"] for e in events]
    assert phases[0] == "BUILDING" and phases[-2:] == ["COMMITTING", "COMMITTED"]
    assert set(phases[:-2]) == {"BUILDING"}
    done = [e["conversationsDone"] for e in events]
    assert done == sorted(done) and done[-1] == 30
    assert {e["conversationsTotal"] for e in events} == {30}
    written = [int(e["bytesWritten"]) for e in events]
    assert written == sorted(written) and written[-1] > 0
    last = events[-1]
    assert last["version"] == added["version"] == 2
    assert last["trainingFile"] == {"id": created["id"], "version": 2, "conversationCount": 30}
    assert all(e["trainingFileId"] == created["id"] for e in events)


async def test_a_create_can_be_followed_from_the_start_with_a_client_chosen_id(
    servers: tuple[list[ApiServer], list[UUID]], db: Database
) -> None:
    (watching, changing), ids = servers
    chosen = str(uuid4())
    async with Subscriber(watching, "alice") as subscriber:
        await _subscribed(subscriber, chosen, db)
        async with httpx.AsyncClient(base_url=changing.url, timeout=WAIT) as client:
            created = await mutate(
                client,
                "alice",
                CREATE_WITH_ID,
                id=chosen,
                name="from the start",
                ids=[str(i) for i in ids[:5]],
            )
        messages = await subscriber.until_complete()
    assert created["id"] == chosen
    events = [m["payload"]["data"]["trainingFileProgress"] for m in messages[:-1]]
    assert events[-1]["phase"] == "COMMITTED" and events[-1]["version"] == 1


async def test_a_refused_change_ends_the_subscription_with_failed(
    servers: tuple[list[ApiServer], list[UUID]], db: Database
) -> None:
    (watching, changing), ids = servers
    async with httpx.AsyncClient(base_url=changing.url, timeout=WAIT) as client:
        created = await mutate(client, "alice", CREATE, name="refusing", ids=[str(ids[0])])
        async with Subscriber(watching, "alice") as subscriber:
            await _subscribed(subscriber, created["id"], db)
            response = await client.post(
                "/graphql",
                json={"query": ADD, "variables": {"file": created["id"], "ids": [str(ids[0])]}},
                headers=token("alice"),
            )
            assert response.json()["data"]["addConversations"]["userErrors"][0]["code"] == (
                "ALREADY_IN_FILE"
            )
            messages = await subscriber.until_complete()
    events = [m["payload"]["data"]["trainingFileProgress"] for m in messages[:-1]]
    assert [(e["phase"], e["errorCode"]) for e in events] == [("FAILED", "ALREADY_IN_FILE")]


async def test_a_subscription_needs_a_token(servers: tuple[list[ApiServer], list[UUID]]) -> None:
    (watching, _), _ = servers
    async with Subscriber(watching, None) as subscriber:
        await subscriber.subscribe(str(uuid4()))
        messages = await subscriber.until_complete()
    first = messages[0]
    errors = first["payload"]["errors"] if first["type"] == "next" else first["payload"]
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED", messages


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("training-files")), *args]
    # Everything but a token goes to stderr, as the other commands' reports do.
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=WAIT)


async def test_the_command_line_creates_adds_and_removes_through_a_server_it_is_pointed_at(
    servers: tuple[list[ApiServer], list[UUID]],
    workdir: Path,
    database_urls: DatabaseUrls,
    db: Database,
) -> None:
    _, changing = servers[0]
    ids = servers[1]
    env = server_env(workdir / "data", database_urls, workdir / "storage")
    created = await asyncio.to_thread(
        _cli,
        env,
        "create",
        "--user",
        "alice",
        "--url",
        changing.url,
        "--name",
        "from the shell",
        *[str(i) for i in ids[:3]],
    )
    assert created.returncode == 0, created.stderr
    file_id = created.stderr.split(": ")[1].split()[0]
    assert created.stderr.strip().endswith(f"{file_id} version 1, 3 conversations")

    added = await asyncio.to_thread(
        _cli,
        env,
        "add",
        "--user",
        "alice",
        "--url",
        changing.url,
        "--file",
        file_id,
        *[str(i) for i in ids[3:5]],
    )
    assert added.returncode == 0, added.stderr
    assert added.stderr.strip().endswith(f"{file_id} version 2, 5 conversations")

    refused = await asyncio.to_thread(
        _cli, env, "add", "--user", "alice", "--url", changing.url, "--file", file_id, str(ids[0])
    )
    assert refused.returncode == 1 and "ALREADY_IN_FILE" in refused.stderr, refused

    removed = await asyncio.to_thread(
        _cli,
        env,
        "remove",
        "--user",
        "alice",
        "--url",
        changing.url,
        "--file",
        file_id,
        str(ids[1]),
        str(ids[3]),
    )
    assert removed.returncode == 0, removed.stderr
    assert removed.stderr.strip().endswith(f"{file_id} version 3, 3 conversations")
    async with db.session() as conn:
        members = await conn.fetch(
            "SELECT conversation_id FROM training_file_conversations"
            " WHERE training_file_id = $1 ORDER BY position",
            UUID(file_id),
        )
    assert [m["conversation_id"] for m in members] == [ids[0], ids[2], ids[4]]

    nobody = await asyncio.to_thread(
        _cli,
        env,
        "add",
        "--user",
        "alice",
        "--url",
        "http://127.0.0.1:9",
        "--file",
        file_id,
        str(ids[6]),
    )
    assert nobody.returncode == 2 and "no websocket at ws://127.0.0.1:9/graphql" in nobody.stderr
