"""The DataLoaders behind nested training-file pages: a page costs a constant number of SQL
statements whatever its size, and what they load is right."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from graphql_api.app import create_app
from graphql_api.config import Settings
from graphql_api.db.database import Database
from graphql_api.db.pool import PoolLimits, create_pool
from graphql_api.db.writers import WriterPool
from graphql_api.runtime import DatabaseUrls, Pools
from graphql_api.services import Services
from graphql_api.storage.local import LocalStorage

from . import product_rules as rules
from .conftest import USER, bearer
from .sources import Source, ids_of
from .training_file_graphql import gql, import_thirty

NESTED = """
query($first: Int!) {
  trainingFiles(first: $first) {
    totalCount
    edges { cursor node {
      id name conversationCount
      qualitySummary { average minimum maximum humanReviewedCount humanReviewedPercentage }
      scaffoldingDistribution {
        personas { key name count percentage }
        emotionalArcs { key count }
        trainingTopics { key count }
      }
      conversations(first: 10) {
        totalCount
        pageInfo { hasNextPage endCursor }
        edges { cursor node {
          id title personaKey qualityScore tier pairCount trainingFiles { id }
        } }
      }
    } }
  }
}"""
# Sent after a request: once the counter has seen it, it has seen every statement before it.
MARKER = "SELECT 'every statement before this one is counted'"


@pytest.fixture
async def imported(
    db: Database, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> list[Source]:
    return await import_thirty(owner_writers, storage, tmp_path)


class StatementCounter:
    """Counts the statements the app sends. asyncpg's own type introspection, which fills a
    per-connection cache the first time a connection meets a type, is not the app's doing."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self._marker_seen = asyncio.Event()

    def __call__(self, record: asyncpg.connection.LoggedQuery) -> None:
        query = " ".join(record.query.split())
        if query == MARKER:
            self._marker_seen.set()
            return
        if query.startswith("WITH RECURSIVE typeinfo_tree") or "set_config('jit'" in query:
            return
        self.statements.append(query)

    async def settle(self, marker: asyncpg.Connection) -> None:
        """Return once every statement already sent has been counted.

        asyncpg calls query loggers with `loop.call_soon` after each statement, and the loop
        runs those callbacks in the order they were scheduled: when the marker, sent after
        everything else on a connection of its own (no pool, so no reset after it), has been
        logged, so has everything before it."""
        self._marker_seen.clear()
        await marker.execute(MARKER)
        await asyncio.wait_for(self._marker_seen.wait(), timeout=30)


@pytest.fixture
async def counted(
    database_urls: DatabaseUrls,
    settings: Settings,
    db: Database,
    pools: Pools,
    storage: LocalStorage,
) -> AsyncIterator[tuple[httpx.AsyncClient, StatementCounter, asyncpg.Connection]]:
    """A client of an app whose request pool, made as the server makes it, counts every SQL
    statement it sends. The response cache is off: the test measures what reads cost."""
    counter = StatementCounter()

    class CountedConnection(asyncpg.Connection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.add_query_logger(counter)

    pool = await create_pool(
        database_urls.app,
        PoolLimits(size=4, keep_session=True),
        connection_class=CountedConnection,
    )
    marker = await asyncpg.connect(database_urls.app)
    marker.add_query_logger(counter)
    try:
        uncached = dataclasses.replace(settings, response_cache_bytes=0)
        services = Services(uncached, Database(pool), pools.writers, pools.maintenance, storage)
        app = create_app(uncached, services)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=bearer(settings, USER)
        ) as client:
            yield client, counter, marker
    finally:
        await marker.close()
        await pool.close()


async def test_nested_page_costs_a_constant_number_of_statements(
    counted: tuple[httpx.AsyncClient, StatementCounter, asyncpg.Connection],
    services: Services,
    imported: list[Source],
) -> None:
    client, counter, marker = counted
    ids = ids_of(imported)
    service = services.training_files

    members_of: dict[str, list[str]] = {}  # file name -> its conversations, in file order

    async def make(number: int) -> None:
        size = 1 + number % 3
        chosen = [ids[(number * 7 + k * 11) % len(ids)] for k in range(size)]
        members_of[f"bulk_{number:02d}"] = [str(i) for i in chosen]
        await service.create_training_file(USER, f"bulk_{number:02d}", None, chosen)

    for batch in range(0, 50, 10):
        await asyncio.gather(*(make(n) for n in range(batch, batch + 10)))

    sent = 0

    async def statements(first: int) -> tuple[list[str], dict[str, Any]]:
        # A document the server has not seen yet, so Strawberry's resolvers and loaders answer
        # it, not the compiled read path (tests/test_compiled_reads.py covers that one).
        nonlocal sent
        sent += 1
        await counter.settle(marker)
        counter.statements = []
        body = await gql(client, f"{NESTED}\n# request {sent}", first=first)
        assert "errors" not in body, body
        await counter.settle(marker)
        return counter.statements, body["data"]["trainingFiles"]

    await statements(50)  # warm up: connections, prepared statements
    small, _ = await statements(5)
    large, page = await statements(50)
    assert len(small) == len(large), (small, large)
    # One connection for the request: becoming the caller, then one statement per lookup:
    # the page, its total, the files' conversations, the conversations' files.
    queries = [
        q for q in large if q.startswith(("SELECT count", "SELECT k.", "SELECT j.", "SELECT id"))
    ]
    assert len(queries) == 4, large
    [setup] = [q for q in large if q not in queries]
    assert "set_config('app.user_id'" in setup, large

    # And the big page is right: each file's conversations and their files, as they were
    # made; pair counts and personas from the source files.
    assert page["totalCount"] == 50 and len(page["edges"]) == 50
    file_ids = {edge["node"]["name"]: edge["node"]["id"] for edge in page["edges"]}
    assert set(file_ids) == set(members_of)
    files_of: dict[str, set[str]] = {}
    for name, conversation_ids in members_of.items():
        for conversation_id in conversation_ids:
            files_of.setdefault(conversation_id, set()).add(file_ids[name])
    sources = {str(s.id): s for s in imported}
    for edge in page["edges"]:
        node = edge["node"]
        connection = node["conversations"]
        assert [e["node"]["id"] for e in connection["edges"]] == members_of[node["name"]]
        assert (
            connection["totalCount"] == node["conversationCount"] == len(members_of[node["name"]])
        )
        for conversation in (e["node"] for e in connection["edges"]):
            document = sources[conversation["id"]].document
            assert {f["id"] for f in conversation["trainingFiles"]} == files_of[conversation["id"]]
            assert conversation["pairCount"] == len(document["training_pairs"])
            assert conversation["personaKey"] == rules.scaffolding(document)["persona_key"]
        member_documents = [sources[i].document for i in members_of[node["name"]]]
        personas = rules.distribution(member_documents)["personas"]
        assert node["scaffoldingDistribution"]["personas"] == [
            {
                "key": s.key,
                "name": s.name,
                "count": s.count,
                "percentage": float(rules.percent(s.count, len(member_documents))),
            }
            for s in personas
        ]
