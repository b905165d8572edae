"""/metrics end to end: real requests, builds, cache hits and pool use move the numbers
(asserted as deltas between two scrapes); `serve --workers 2` adds up both workers."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest

from graphql_api.app import create_app
from graphql_api.config import Settings
from graphql_api.db.database import Database, give_back
from graphql_api.db.writers import LockKind, WriterPool
from graphql_api.errors import Busy
from graphql_api.observability.storage import CountedStorage
from graphql_api.runtime import Pools
from graphql_api.services import Services
from graphql_api.storage.base import TRAINING_BUCKET
from graphql_api.storage.local import LocalStorage

from .api_server import ApiServer, server_env
from .conftest import USER, bearer
from .observed import ADD, CREATE, Samples, import_conversations, parse_metrics, scrape, value

READ = "query Files($first: Int) { trainingFiles(first: $first) { totalCount } }"


@pytest.fixture
async def conversation_ids(
    db: Database, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> list[UUID]:
    return await import_conversations(owner_writers, storage, tmp_path / "demo", 4)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_requests_are_counted_by_route_operation_and_outcome(
    client: httpx.AsyncClient,
) -> None:
    before = await scrape(client)
    await client.post("/graphql", json={"query": READ, "variables": {"first": 1}})
    await client.post("/graphql", json={"query": "{ nope }"})
    await client.get("/api/training-files/not-a-uuid/download?format=json")
    after = await scrape(client)

    requests = "training_files_http_requests_total"
    assert delta(before, after, requests, route="/graphql", operation="Files", outcome="ok") == 1
    assert (
        delta(
            before,
            after,
            requests,
            route="/graphql",
            outcome="error",
            error_code="INVALID_OPERATION",
        )
        == 1
    )
    rest = "/api/training-files/{id}/download"
    assert delta(before, after, requests, route=rest, status="400", outcome="error") == 1
    duration = "training_files_http_request_duration_seconds_count"
    assert delta(before, after, duration, route="/graphql", operation="Files") == 1
    assert delta(before, after, duration, route=rest) == 1
    # The scrape before this one was counted too.
    assert delta(before, after, requests, route="/metrics", status="200") == 1


async def test_cache_hits_misses_and_compiled_reads_are_counted(
    client: httpx.AsyncClient,
) -> None:
    before = await scrape(client)
    for first in (1, 1, 2):  # a miss (trusted from now on), a hit, a compiled read
        response = await client.post(
            "/graphql", json={"query": READ, "variables": {"first": first}}
        )
        assert "errors" not in response.json()
    after = await scrape(client)

    assert delta(before, after, "training_files_response_cache_misses_total") == 2
    assert delta(before, after, "training_files_response_cache_hits_total") == 1
    compiled = "training_files_compiled_reads_total"
    assert delta(before, after, compiled, result="answered") == 1
    assert delta(before, after, compiled, result="failed") == 0
    # The hit's access metrics name the operation the view answered.
    requests = "training_files_http_requests_total"
    assert delta(before, after, requests, route="/graphql", operation="Files") == 3


async def test_builds_are_timed_and_their_bytes_counted(
    client: httpx.AsyncClient, db: Database, conversation_ids: list[UUID]
) -> None:
    before = await scrape(client)
    ids = [str(i) for i in conversation_ids]
    created = await client.post(
        "/graphql",
        json={"query": CREATE, "variables": {"input": {"name": "m", "conversationIds": ids[:2]}}},
    )
    file_id = created.json()["data"]["createTrainingFile"]["trainingFile"]["id"]
    after_create = await scrape(client)
    await client.post(
        "/graphql",
        json={
            "query": ADD,
            "variables": {"input": {"trainingFileId": file_id, "conversationIds": ids[2:]}},
        },
    )
    after_add = await scrape(client)

    async with db.session() as conn:
        sizes = await conn.fetchrow(
            "SELECT json_file_size, jsonl_file_size FROM training_files WHERE id = $1",
            UUID(file_id),
        )
    duration = "training_files_aggregation_duration_seconds_count"
    written = "training_files_aggregation_bytes_written_total"
    assert delta(before, after_create, duration, kind="create", outcome="ok") == 1
    assert delta(after_create, after_add, duration, kind="add", outcome="ok") == 1
    assert delta(after_create, after_add, written, kind="add", format="json") == sizes[0]
    assert delta(after_create, after_add, written, kind="add", format="jsonl") == sizes[1]
    assert delta(before, after_create, written, kind="create", format="json") > 0
    waits = "training_files_writer_lock_wait_seconds_count"
    assert delta(before, after_add, waits, kind="training_file", outcome="acquired") == 2
    assert delta(before, after_add, "training_files_writer_lock_wait_seconds_sum") >= 0


async def test_a_writer_lock_not_acquired_in_time_is_counted(
    client: httpx.AsyncClient, pools: Pools
) -> None:
    impatient = WriterPool(pools.writers.pool, timeout_seconds=0.2)
    object_id = uuid4()
    before = await scrape(client)
    async with pools.writers.exclusive(LockKind.TRAINING_FILE, object_id):
        with pytest.raises(Busy):
            async with impatient.exclusive(LockKind.TRAINING_FILE, object_id):
                pass
    after = await scrape(client)

    waits = "training_files_writer_lock_wait_seconds_count"
    assert delta(before, after, waits, kind="training_file", outcome="not_acquired") == 1
    assert delta(before, after, waits, kind="training_file", outcome="acquired") == 1


async def test_pool_connections_in_use_and_waiting(
    client: httpx.AsyncClient, pools: Pools, settings: Settings
) -> None:
    in_use, waiting = (
        "training_files_db_pool_connections_in_use",
        "training_files_db_pool_waiting",
    )
    before = await scrape(client)
    size = settings.database_pool_size
    held = [await pools.db.acquire() for _ in range(size)]
    waiter = asyncio.create_task(pools.db.acquire())
    try:
        async with pools.writers.exclusive(LockKind.CONVERSATION, uuid4()):
            for _ in range(100):  # until the waiter is queued (scheduling, not time)
                during = await scrape(client)
                if value(during, waiting, pool="requests") == 1:
                    break
        assert value(during, in_use, pool="requests") == size
        assert value(during, waiting, pool="requests") == 1
        assert delta(before, during, in_use, pool="writers") == 1
    finally:
        for conn in held:
            await give_back(pools.db.pool, conn)
        await give_back(pools.db.pool, await waiter)
    after = await scrape(client)
    assert value(after, waiting, pool="requests") == 0
    assert value(after, in_use, pool="requests") == value(before, in_use, pool="requests")
    assert value(after, in_use, pool="writers") == value(before, in_use, pool="writers")


async def test_storage_errors_are_counted_by_reason(
    settings: Settings,
    pools: Pools,
    storage: LocalStorage,
    conversation_ids: list[UUID],
) -> None:
    services = Services.of(settings, pools, CountedStorage(storage))
    transport = httpx.ASGITransport(app=create_app(settings, services))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=bearer(settings, USER)
    ) as client:
        before = await scrape(client)
        # The bucket's directory is replaced by a file: every write into it fails for real.
        shutil.rmtree(storage.root / TRAINING_BUCKET)
        (storage.root / TRAINING_BUCKET).write_bytes(b"")
        variables = {"input": {"name": "doomed", "conversationIds": [str(conversation_ids[0])]}}
        response = await client.post("/graphql", json={"query": CREATE, "variables": variables})
        assert response.json()["errors"][0]["extensions"]["code"] == "STORAGE_UNAVAILABLE"
        await client.get("/readyz")
        after = await scrape(client)

    errors = "training_files_storage_errors_total"
    assert delta(before, after, errors, operation="compose") >= 1
    assert delta(before, after, errors, operation="check", reason="unwritable") == 1
    failed = "training_files_aggregation_duration_seconds_count"
    assert delta(before, after, failed, kind="create", outcome="error") == 1


async def test_build_info_names_the_version(client: httpx.AsyncClient) -> None:
    from importlib.metadata import version

    samples = await scrape(client)
    assert value(samples, "training_files_build_info", version=version("graphql-api")) == 1


async def test_serve_with_two_workers_counts_the_requests_of_both(tmp_path: Path) -> None:
    env = server_env(tmp_path / "data", JWT_SECRET="x" * 40, LOG_FORMAT="json")
    server = ApiServer(env, tmp_path / "server.log")
    server.launch("--no-demo", "--workers", "2")
    sent = 0
    try:
        server.wait_until_healthy(120)
        # A connection per request: a kept-alive one stays with the worker that accepted it.
        fresh = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=fresh) as client:
            before = parse_metrics((await client.get("/metrics")).text)
            # Until both workers have answered some (which one accepts is the kernel's choice).
            for _ in range(50):
                answers = await asyncio.gather(
                    *(
                        client.post("/graphql", json={"query": "{ serverInfo { version } }"})
                        for _ in range(20)
                    )
                )
                assert {a.status_code for a in answers} == {200}
                sent += len(answers)
                if len(_answering_pids(server)) >= 2:
                    break
            after = parse_metrics((await client.get("/metrics")).text)
    finally:
        assert server.terminate(60) in (0, 143), server.log()
    assert len(_answering_pids(server)) == 2, server.log()
    requests = "training_files_http_requests_total"
    assert delta(before, after, requests, route="/graphql", outcome="ok") == sent
    # The workers wrote to a directory of their own under the data dir, removed at the end.
    assert list((tmp_path / "data" / "metrics").iterdir()) == []


def _answering_pids(server: ApiServer) -> set[int]:
    import json

    return {
        line["pid"]
        for line in map(json.loads, _json_lines(server.log_path))
        if line["logger"] == "graphql_api.access" and line["path"] == "/graphql"
    }


def _json_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.startswith("{")]
