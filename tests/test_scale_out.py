"""More than one process: how the product scales past one machine — stateless processes over
one PostgreSQL and one S3 store — and `serve --workers N` on one port."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.runtime import DatabaseUrls
from graphql_api.storage.s3 import S3Storage

from .api_server import ApiServer, server_env
from .s3_servers import MotoServer
from .test_concurrency import ADD, CREATE, mutate, token

DASHBOARD = """{ trainingFiles(first: 50) { edges { node { id name conversationCount
  scaffoldingDistribution { personas { key count percentage } }
  conversations(first: 10) { nodes { id title personaKey qualityScore } } } } } }"""


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="training-files-scale-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _s3_env(moto: MotoServer) -> dict[str, str]:
    return {
        "STORAGE_URL": "s3://",
        "S3_ENDPOINT_URL": moto.endpoint_url,
        "AWS_ACCESS_KEY_ID": moto.access_key,
        "AWS_SECRET_ACCESS_KEY": moto.secret_key,
        "AWS_REGION": "us-east-1",
    }


async def test_two_processes_over_one_database_and_one_store_act_as_one(
    database_urls: DatabaseUrls,
    db: Database,
    owner_writers: WriterPool,
    moto: MotoServer,
    workdir: Path,
) -> None:
    s3 = await S3Storage.open(moto.config())
    try:
        importer = ConversationImporter(owner_writers, s3)
        paths = write_demo_set(workdir / "demo", 21, seed=17)
        ids = [r.conversation_id for r in [await importer.import_file(p) for p in paths]]
    finally:
        await s3.close()
    env = server_env(workdir / "data", database_urls) | _s3_env(moto)
    servers = [ApiServer(env, workdir / f"server-{n}.log") for n in range(2)]
    for server in servers:
        server.start()
    try:
        one, other = (httpx.AsyncClient(base_url=s.url, timeout=60) for s in servers)
        async with one, other:
            created = await mutate(one, "alice", CREATE, name="shared", ids=[str(ids[0])])
            # A dashboard cached by the first process...
            dashboard = {"query": DASHBOARD}
            first = await one.post("/graphql", json=dashboard, headers=token("alice"))
            again = await one.post("/graphql", json=dashboard, headers=token("alice"))
            assert again.headers["etag"] == first.headers["etag"]

            # ...while both processes add to one file at once: all land, in some order.
            adds = [
                mutate(client, "alice", ADD, file=created["id"], ids=[str(i)])
                for client, i in zip([one, other] * 10, ids[1:21], strict=True)
            ]
            results = await asyncio.gather(*adds)
            assert sorted(r["version"] for r in results) == list(range(2, 22))

            # The first process's next request reflects commits made through the other.
            after = await one.post("/graphql", json=dashboard, headers=token("alice"))
            [edge] = after.json()["data"]["trainingFiles"]["edges"]
            assert edge["node"]["conversationCount"] == 21
            assert after.headers["etag"] != first.headers["etag"]
    finally:
        for server in servers:
            server.terminate()
    async with db.session() as conn:
        members = await conn.fetch(
            "SELECT conversation_id FROM training_file_conversations WHERE training_file_id = $1",
            UUID(created["id"]),
        )
    assert sorted(m["conversation_id"] for m in members) == sorted(ids)


async def _started_workers(server: ApiServer, count: int) -> set[str]:
    """The pids of the workers that finished starting, once `count` have (or 60 s passed)."""
    for _ in range(600):
        started = set(re.findall(r"Started server process \[(\d+)\]", server.log(10_000)))
        if len(started) >= count and server.log(10_000).count("startup complete") >= count:
            return started
        await asyncio.sleep(0.1)
    raise AssertionError(server.log())


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


async def test_serve_with_workers_answers_on_one_port_and_stops_everything(workdir: Path) -> None:
    env = server_env(workdir / "data", JWT_SECRET="x" * 40)
    server = ApiServer(env, workdir / "server.log")
    server.launch("--no-demo", "--workers", "2")
    try:
        server.wait_until_healthy(120)
        assert server.process is not None
        workers = await _started_workers(server, 2)
        assert {int(w) for w in workers} <= set(_children(server.process.pid))
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            answers = await asyncio.gather(
                *(
                    client.post(
                        "/graphql", json={"query": "{ viewer { id } }"}, headers=token(f"u{n}")
                    )
                    for n in range(40)
                )
            )
        assert {a.status_code for a in answers} == {200}
        assert all("errors" not in a.json() for a in answers)
    finally:
        status = server.terminate(60)
    assert status in (0, 143), server.log()
    # The last process out stops the embedded PostgreSQL, workers and all.
    assert not (workdir / "data" / "postgres" / "postmaster.pid").exists(), server.log()
