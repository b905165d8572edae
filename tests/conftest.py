"""Shared fixtures: one embedded PostgreSQL per test session, a clean database per test."""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import asyncpg
import httpx
import pytest

from graphql_api.aggregation.service import TrainingFileService
from graphql_api.app import create_app
from graphql_api.auth import mint_token
from graphql_api.config import Settings
from graphql_api.db.database import Database
from graphql_api.db.embedded import ensure_database, start_embedded
from graphql_api.db.writers import WriterPool
from graphql_api.runtime import (
    DatabaseUrls,
    Pools,
    open_owner_writers,
    open_pools,
    prepare_database,
)
from graphql_api.runtime import database_urls as runtime_database_urls
from graphql_api.services import Services
from graphql_api.storage.base import Storage
from graphql_api.storage.links import LinkSigner
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
# The JWT secret of every test's settings (download links are signed with a key derived from it).
JWT_SECRET = "x" * 40


# Every skip for missing reference data says this in its reason; the summary counts them.
REFERENCE_DATA = "reference data"


def require_examples() -> list[Path]:
    """The real enriched conversations from ../shared, or skip the test."""
    if not EXAMPLES_DIR.is_dir():
        pytest.skip(
            f"reference data not found at {EXAMPLES_DIR} (../shared is not beside the project)"
        )
    return sorted(EXAMPLES_DIR.glob("*.json"))


def _remove_if_empty(directory: Path) -> None:
    with contextlib.suppress(OSError):
        directory.rmdir()


@pytest.fixture(scope="session")
def pg_data_dir() -> Path:
    """The data dir of the session's embedded PostgreSQL (and of no test's storage)."""
    # Not under pytest's basetemp: pytest resets that to mode 0700 whenever another session
    # starts, and as root the server runs as a separate user that must traverse the path.
    data_dir = Path(tempfile.mkdtemp(prefix="training-files-pg-"))
    # The server deletes `postgres/` below it when the session's process exits (atexit, last
    # registered first): the emptied directory goes after it, or each worker leaves one.
    atexit.register(_remove_if_empty, data_dir)
    start_embedded(data_dir, delete_on_exit=True)
    return data_dir


@pytest.fixture(scope="session")
def maintenance_dsn(pg_data_dir: Path) -> str:
    return start_embedded(pg_data_dir)


def make_settings(pg_data_dir: Path, storage_dir: Path, **env: str) -> Settings:
    """Settings as a user gets them (shipped defaults), on the session's embedded server."""
    return Settings.from_env(
        {
            "DATA_DIR": str(pg_data_dir),
            "STORAGE_URL": storage_dir.as_uri(),
            "JWT_SECRET": JWT_SECRET,
            **env,
        }
    )


@pytest.fixture(scope="session")
async def database_urls(pg_data_dir: Path) -> DatabaseUrls:
    """The embedded server's URLs, migrated, with the request path's login role created."""
    settings = make_settings(pg_data_dir, pg_data_dir / "unused-storage")
    urls = await runtime_database_urls(settings)
    await prepare_database(settings, urls)
    return urls


@pytest.fixture(scope="session")
async def pools(pg_data_dir: Path, database_urls: DatabaseUrls) -> AsyncIterator[Pools]:
    """The pools the server opens, with the shipped sizes and timeouts."""
    opened = await open_pools(make_settings(pg_data_dir, pg_data_dir), database_urls)
    yield opened
    await opened.close()


@pytest.fixture(scope="session")
async def owner_writers(
    pg_data_dir: Path, database_urls: DatabaseUrls
) -> AsyncIterator[WriterPool]:
    """Writer connections as the owner, as the command-line import uses them."""
    writers = await open_owner_writers(make_settings(pg_data_dir, pg_data_dir), database_urls)
    yield writers
    await writers.close()


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
async def db(pools: Pools) -> AsyncIterator[Database]:
    """The owner's connections, for setting up and inspecting what a test needs."""
    yield pools.maintenance
    async with pools.maintenance.connection() as conn:
        await conn.execute(
            "TRUNCATE training_file_conversations, training_files, conversations, retired_objects"
        )


def training_file_service(pools: Pools, storage: Storage) -> TrainingFileService:
    """The service as the server builds it, over `storage`."""
    return TrainingFileService(pools.db, pools.writers, pools.maintenance, storage)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say once, at the end, that tests were skipped for want of ../shared: a green run
    without it has not checked the real files."""
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        if REFERENCE_DATA in reason:
            reason = reason.removeprefix("Skipped: ")
            reasons[reason] = reasons.get(reason, 0) + 1
    if not reasons:
        return
    count = sum(reasons.values())
    terminalreporter.write_sep("=", "reference data missing", yellow=True, bold=True)
    terminalreporter.write_line(
        f"{count} {'test was' if count == 1 else 'tests were'} skipped: they need the shared "
        f"reference data at {SHARED_DIR}, which is missing or incomplete, so the real enriched "
        "conversations, the original schemas and the example training file were not checked. "
        "Put the shared brightrun-v4 folder there (../shared beside the project) to run them.",
        yellow=True,
    )
    for reason, times in sorted(reasons.items()):
        terminalreporter.write_line(f"  {times} × {reason}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Modules that set `STORAGE_BACKENDS` run every test using `storage` on each backend."""
    backends = getattr(metafunc.module, "STORAGE_BACKENDS", None)
    if backends and "storage" in metafunc.fixturenames:
        metafunc.parametrize("storage", backends, indirect=True)


@pytest.fixture
async def storage(
    request: pytest.FixtureRequest, settings: Settings, tmp_path: Path
) -> AsyncIterator[Storage]:
    """Local storage in a temp dir (signing links as the server does), or S3 on an emptied moto
    server when parametrized."""
    if getattr(request, "param", "local") == "s3":
        backend: Storage = await S3Storage.open(request.getfixturevalue("moto").config())
    else:
        backend = LocalStorage(tmp_path / "storage", link_signer=LinkSigner(settings.jwt_secret))
    yield backend
    await backend.close()


@pytest.fixture
def settings(pg_data_dir: Path, tmp_path: Path) -> Settings:
    return make_settings(pg_data_dir, tmp_path / "storage")


@pytest.fixture
def services(settings: Settings, pools: Pools, db: Database, storage: Storage) -> Services:
    return Services.of(settings, pools, storage)


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
