"""The probes (`/livez`, `/readyz`), the root redirect and the version the server reports,
through the app over real PostgreSQL and real storage."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from importlib.metadata import version
from urllib.parse import unquote

import httpx
import pytest

from graphql_api.app import create_app
from graphql_api.config import Settings
from graphql_api.db.database import Database
from graphql_api.db.migrate import load_migrations
from graphql_api.db.pool import create_pool
from graphql_api.runtime import Pools
from graphql_api.services import Services
from graphql_api.storage.local import LocalStorage

VERSION = version("graphql-api")


async def test_livez_answers_without_touching_anything(
    anonymous_client: httpx.AsyncClient,
) -> None:
    response = await anonymous_client.get("/livez")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_is_ok_with_the_version(anonymous_client: httpx.AsyncClient) -> None:
    response = await anonymous_client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "version": VERSION,
        "database": "ok",
        "storage": "ok",
        "migrations": "ok",
    }


@pytest.fixture
async def unmigrated(empty_database_dsn: str) -> AsyncIterator[Database]:
    """The owner's connections to a brand-new database no migration ran on."""
    pool = await create_pool(empty_database_dsn)
    yield Database(pool)
    await pool.close()


async def test_readyz_is_503_naming_the_pending_migrations(
    settings: Settings, pools: Pools, storage: LocalStorage, unmigrated: Database
) -> None:
    services = Services(settings, pools.db, pools.writers, unmigrated, storage)
    transport = httpx.ASGITransport(app=create_app(settings, services))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"], body["storage"]) == ("unavailable", "ok", "ok")
    assert body["migrations"] == "pending"
    assert body["pending_migrations"] == [m.name for m in load_migrations()]


async def test_readyz_is_503_when_a_migration_is_missing(
    settings: Settings, pools: Pools, storage: LocalStorage, unmigrated: Database
) -> None:
    first, *rest = load_migrations()
    async with unmigrated.connection() as conn:
        await conn.execute(
            "CREATE TABLE schema_migrations (version text PRIMARY KEY, name text, checksum text)"
        )
        await conn.execute(
            "INSERT INTO schema_migrations VALUES ($1, $2, $3)",
            first.version,
            first.name,
            first.checksum,
        )
    services = Services(settings, pools.db, pools.writers, unmigrated, storage)
    transport = httpx.ASGITransport(app=create_app(settings, services))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        body = (await client.get("/readyz")).json()

    assert (body["migrations"], body["pending_migrations"]) == ("pending", [m.name for m in rest])


async def test_readyz_is_503_when_a_migration_differs_from_this_server(
    settings: Settings, pools: Pools, storage: LocalStorage, unmigrated: Database
) -> None:
    async with unmigrated.connection() as conn:
        await conn.execute(
            "CREATE TABLE schema_migrations (version text PRIMARY KEY, name text, checksum text)"
        )
        # A version this server does not have: a newer server migrated the database.
        await conn.execute("INSERT INTO schema_migrations VALUES ('9999', '9999_next.sql', 'x')")
    services = Services(settings, pools.db, pools.writers, unmigrated, storage)
    transport = httpx.ASGITransport(app=create_app(settings, services))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/readyz")

    assert (response.status_code, response.json()["migrations"]) == (503, "mismatch")


async def test_readyz_is_503_when_storage_is_unreachable(
    anonymous_client: httpx.AsyncClient, storage: LocalStorage
) -> None:
    shutil.rmtree(storage.root)

    response = await anonymous_client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert (body["storage"], body["database"], body["migrations"]) == ("unreachable", "ok", "ok")


async def test_the_root_redirects_to_graphql(anonymous_client: httpx.AsyncClient) -> None:
    plain = await anonymous_client.get("/")
    with_query = await anonymous_client.get("/?query={viewer{id}}")

    assert plain.status_code == 307 and plain.headers["location"] == "/graphql"
    # The playground's shared links keep their query.
    sent = with_query.request.url.query.decode()
    assert unquote(with_query.headers["location"]) == f"/graphql?{sent}"


async def test_server_info_reports_the_installed_version_without_a_token(
    anonymous_client: httpx.AsyncClient,
) -> None:
    response = await anonymous_client.post("/graphql", json={"query": "{ serverInfo { version } }"})
    assert response.json() == {"data": {"serverInfo": {"version": VERSION}}}
