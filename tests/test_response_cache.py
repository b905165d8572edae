"""The read-response cache: repeated reads cost one statement, ETags give 304s, a commit from
anywhere makes entries stale, and nothing is shared between users or kept from an error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from graphql_api.app import create_app
from graphql_api.config import Settings
from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database
from graphql_api.db.pool import PoolLimits, create_pool
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.graphql.response_cache import Entry, ResponseCache
from graphql_api.runtime import DatabaseUrls, Pools
from graphql_api.services import Services
from graphql_api.storage.local import LocalStorage

from .conftest import OTHER_USER, USER, bearer

DASHBOARD = """
query ($first: Int!) { trainingFiles(first: $first) { totalCount edges { node {
  id name conversationCount
  qualitySummary { average minimum maximum }
  scaffoldingDistribution { personas { key name count percentage } }
  conversations(first: 10) { nodes { id title personaKey qualityScore } } } } } }
"""
ADD = """
mutation ($file: ID!, $ids: [ID!]!) {
  addConversations(input: {trainingFileId: $file, conversationIds: $ids}) {
    trainingFile { conversationCount } userErrors { code } } }
"""
MARKER = "SELECT 'counted up to here'"


class Statements:
    """Every statement the app's request pool sends, counted exactly (see `settle`)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self._marker = asyncio.Event()

    def __call__(self, record: asyncpg.connection.LoggedQuery) -> None:
        query = " ".join(record.query.split())
        if query == MARKER:
            self._marker.set()
        elif not query.startswith("WITH RECURSIVE typeinfo_tree") and "'jit'" not in query:
            self.sent.append(query)  # (asyncpg's own: the type cache it fills once)

    async def settle(self, marker: asyncpg.Connection) -> None:
        """Loggers run in statement order on the loop: once the marker is seen, all are."""
        self._marker.clear()
        await marker.execute(MARKER)
        await asyncio.wait_for(self._marker.wait(), timeout=30)


@pytest.fixture
async def counted(
    database_urls: DatabaseUrls,
    settings: Settings,
    db: Database,
    pools: Pools,
    storage: LocalStorage,
) -> AsyncIterator[tuple[httpx.AsyncClient, Statements, asyncpg.Connection]]:
    """The app over a request pool built exactly as the server builds it, plus a logger."""
    statements = Statements()

    class Logged(asyncpg.Connection):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.add_query_logger(statements)

    pool = await create_pool(
        database_urls.app, PoolLimits(keep_session=True), connection_class=Logged
    )
    marker = await asyncpg.connect(database_urls.app)
    marker.add_query_logger(statements)
    services = Services(settings, Database(pool), pools.writers, pools.maintenance, storage)
    transport = httpx.ASGITransport(app=create_app(settings, services))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, statements, marker
    finally:
        await marker.close()
        await pool.close()


@pytest.fixture
async def file_id(
    services: Services, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> tuple[UUID, list[UUID]]:
    importer = ConversationImporter(owner_writers, storage)
    paths = write_demo_set(tmp_path / "demo", 6, seed=3)
    ids = [r.conversation_id for r in [await importer.import_file(p) for p in paths]]
    present = [i for i in ids if i is not None]
    created = await services.training_files.create_training_file(USER, "cached", None, present[:3])
    return created.id, present


async def _ask(
    client: httpx.AsyncClient, statements: Statements, marker: asyncpg.Connection, **kwargs: Any
) -> tuple[httpx.Response, list[str]]:
    await statements.settle(marker)
    statements.sent = []
    response = await client.post("/graphql", **kwargs)
    await statements.settle(marker)
    return response, statements.sent


async def test_a_repeated_read_costs_one_statement_and_an_etag_gives_304(
    counted: tuple[httpx.AsyncClient, Statements, asyncpg.Connection],
    settings: Settings,
    file_id: tuple[UUID, list[UUID]],
) -> None:
    client, statements, marker = counted
    request = {"json": {"query": DASHBOARD, "variables": {"first": 20}}}
    headers = bearer(settings, USER)
    # The first request of a document is validated and answered by the resolvers; later ones
    # (other variables too) are compiled into one statement.
    await client.post(
        "/graphql", headers=headers, json={"query": DASHBOARD, "variables": {"first": 1}}
    )
    first, computed = await _ask(client, statements, marker, headers=headers, **request)
    again, cached = await _ask(client, statements, marker, headers=headers, **request)

    assert first.status_code == again.status_code == 200
    assert first.json()["data"]["trainingFiles"]["totalCount"] == 1
    assert again.content == first.content
    assert again.headers["etag"] == first.headers["etag"]
    assert len(computed) == 2, computed  # who the caller is and the version, then the data
    assert cached == ["SELECT version FROM data_version"]

    revalidated = await client.post(
        "/graphql", headers={**headers, "If-None-Match": first.headers["etag"]}, **request
    )
    assert revalidated.status_code == 304 and revalidated.content == b""


async def test_statements_do_not_grow_with_the_page(
    counted: tuple[httpx.AsyncClient, Statements, asyncpg.Connection],
    settings: Settings,
    services: Services,
    file_id: tuple[UUID, list[UUID]],
) -> None:
    client, statements, marker = counted
    _, ids = file_id
    for n in range(12):
        await services.training_files.create_training_file(
            USER, f"more {n}", None, ids[n % 6 :][:2]
        )
    headers = bearer(settings, USER)
    sizes = {}
    for first in (2, 1, 13):
        _, sent = await _ask(
            client,
            statements,
            marker,
            headers=headers,
            json={"query": DASHBOARD, "variables": {"first": first}},
        )
        sizes[first] = len(sent)
    assert sizes[1] == sizes[13] == 2, sizes


async def test_a_commit_makes_cached_reads_stale(
    counted: tuple[httpx.AsyncClient, Statements, asyncpg.Connection],
    settings: Settings,
    file_id: tuple[UUID, list[UUID]],
) -> None:
    client, _, _ = counted
    file, ids = file_id
    headers = bearer(settings, USER)
    request = {"query": DASHBOARD, "variables": {"first": 5}}

    def count(response: httpx.Response) -> int:
        return int(
            response.json()["data"]["trainingFiles"]["edges"][0]["node"]["conversationCount"]
        )

    before = await client.post("/graphql", headers=headers, json=request)
    added = await client.post(
        "/graphql",
        headers=headers,
        json={"query": ADD, "variables": {"file": str(file), "ids": [str(ids[3])]}},
    )
    assert added.json()["data"]["addConversations"]["userErrors"] == []
    after = await client.post(
        "/graphql", headers={**headers, "If-None-Match": before.headers["etag"]}, json=request
    )
    assert (count(before), after.status_code, count(after)) == (3, 200, 4)
    assert after.headers["etag"] != before.headers["etag"]


async def test_users_never_get_each_others_entries_and_errors_are_not_kept(
    counted: tuple[httpx.AsyncClient, Statements, asyncpg.Connection],
    settings: Settings,
    file_id: tuple[UUID, list[UUID]],
) -> None:
    client, statements, marker = counted
    viewer = {"json": {"query": "{ viewer { id } }"}}
    mine = await client.post("/graphql", headers=bearer(settings, USER), **viewer)
    theirs = await client.post("/graphql", headers=bearer(settings, OTHER_USER), **viewer)
    assert mine.json()["data"]["viewer"]["id"] == str(USER)
    assert theirs.json()["data"]["viewer"]["id"] == str(OTHER_USER)
    anonymous = await client.post("/graphql", **viewer)
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    bad = {
        "json": {
            "query": DASHBOARD.replace("first: $first", 'first: $first, after: "x"'),
            "variables": {"first": 1},
        }
    }
    for _ in range(2):
        response, sent = await _ask(
            client, statements, marker, headers=bearer(settings, USER), **bad
        )
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "etag" not in response.headers
        assert sent != ["SELECT version FROM data_version"]


async def test_mutations_are_never_answered_from_the_cache(
    counted: tuple[httpx.AsyncClient, Statements, asyncpg.Connection],
    settings: Settings,
    file_id: tuple[UUID, list[UUID]],
) -> None:
    client, _, _ = counted
    file, ids = file_id
    request = {"query": ADD, "variables": {"file": str(file), "ids": [str(ids[4])]}}
    first = await client.post("/graphql", headers=bearer(settings, USER), json=request)
    second = await client.post("/graphql", headers=bearer(settings, USER), json=request)
    assert first.json()["data"]["addConversations"]["trainingFile"]["conversationCount"] == 4
    assert [e["code"] for e in second.json()["data"]["addConversations"]["userErrors"]] == [
        "ALREADY_IN_FILE"
    ]
    assert "etag" not in first.headers


def test_the_cache_keeps_at_most_its_size_evicting_the_least_recently_used() -> None:
    cache = ResponseCache(max_bytes=10)
    cache.put(b"a", Entry(1, b'"a"', b"aaaa"))
    cache.put(b"b", Entry(1, b'"b"', b"bbbb"))
    assert cache.get(b"a") is not None  # a is now the most recently used
    cache.put(b"c", Entry(1, b'"c"', b"cccc"))
    assert (cache.get(b"a"), cache.get(b"b")) != (None, None)
    assert cache.get(b"b") is None and cache.get(b"c") is not None
    cache.put(b"huge", Entry(1, b'"h"', b"x" * 11))
    assert cache.get(b"huge") is None
