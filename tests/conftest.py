"""Shared fixtures: one embedded PostgreSQL per test session, a clean database per test."""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import asyncpg
import httpx
import pytest

from graphql_api.app import create_app
from graphql_api.auth import mint_token
from graphql_api.config import Settings
from graphql_api.db.database import Database
from graphql_api.db.embedded import ensure_database, start_embedded
from graphql_api.db.migrate import apply_migrations
from graphql_api.db.pool import create_pool
from graphql_api.services import Services
from graphql_api.storage.base import Storage
from graphql_api.storage.local import LocalStorage
from graphql_api.storage.s3 import S3Storage

# The S3 servers (moto, rclone) and their fixtures.
pytest_plugins = ["tests.s3_servers"]

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "brightrun-v4"
EXAMPLES_DIR = SHARED_DIR / "enriched-examples"
# Our own JSON Schema of a full training file (with the JSONL lines under $defs).
TRAINING_FILE_SCHEMA = json.loads(
    (
        Path(__file__).resolve().parents[1] / "graphql_api/aggregation/training_file.schema.json"
    ).read_text()
)

_database_names = itertools.count()


def require_examples() -> list[Path]:
    """The real enriched conversations from ../shared, or skip the test."""
    if not EXAMPLES_DIR.is_dir():
        pytest.skip(
            f"reference data not found at {EXAMPLES_DIR} (../shared is not beside the project)"
        )
    return sorted(EXAMPLES_DIR.glob("*.json"))


@pytest.fixture(scope="session")
def maintenance_dsn() -> str:
    # Not under pytest's basetemp: pytest resets that to mode 0700 whenever another session
    # starts, and as root the server runs as a separate user that must traverse the path.
    return start_embedded(Path(tempfile.mkdtemp(prefix="training-files-pg-")), delete_on_exit=True)


@pytest.fixture(scope="session")
async def pool(maintenance_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    dsn = await ensure_database(maintenance_dsn, "training_files_test")
    pool = await create_pool(dsn, max_size=20)
    async with pool.acquire() as conn:
        await apply_migrations(conn)
    yield pool
    await pool.close()


@pytest.fixture
async def empty_database_dsn(maintenance_dsn: str) -> AsyncIterator[str]:
    """A brand-new database with no migrations applied, dropped afterwards."""
    name = f"scratch_{next(_database_names)}"
    dsn = await ensure_database(maintenance_dsn, name)
    yield dsn
    conn = await asyncpg.connect(maintenance_dsn)
    try:
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def db(pool: asyncpg.Pool) -> AsyncIterator[Database]:
    yield Database(pool)
    await pool.execute(
        "TRUNCATE training_file_conversations, training_files, conversations, retired_objects"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Modules that set `STORAGE_BACKENDS` run every test using `storage` on each backend."""
    backends = getattr(metafunc.module, "STORAGE_BACKENDS", None)
    if backends and "storage" in metafunc.fixturenames:
        metafunc.parametrize("storage", backends, indirect=True)


@pytest.fixture
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """Local storage in a temp dir, or S3 on an emptied moto server when parametrized."""
    if getattr(request, "param", "local") == "s3":
        backend: Storage = await S3Storage.open(request.getfixturevalue("moto").config())
    else:
        backend = LocalStorage(tmp_path / "storage")
    yield backend
    await backend.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"DATA_DIR": str(tmp_path / "data"), "JWT_SECRET": "x" * 40})


@pytest.fixture
def services(settings: Settings, db: Database, storage: Storage) -> Services:
    return Services(settings, db, storage)


USER = UUID("00000000-0000-4000-8000-00000000000a")
OTHER_USER = UUID("00000000-0000-4000-8000-00000000000b")


def bearer(settings: Settings, user_id: UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(user_id, secret=settings.jwt_secret)}"}


@pytest.fixture
async def anonymous_client(
    settings: Settings, services: Services
) -> AsyncIterator[httpx.AsyncClient]:
    """Real HTTP through the ASGI app, without credentials."""
    transport = httpx.ASGITransport(app=create_app(settings, services))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def client(settings: Settings, anonymous_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """The same, authenticated as `USER`."""
    anonymous_client.headers.update(bearer(settings, USER))
    return anonymous_client
