"""Turn settings into live resources: PostgreSQL (embedded or external), its pools, storage.

Two database roles do the work. The *owner* applies migrations and runs maintenance (the
sweeper, orphan clean-up, `check`). The *request path* logs in as a role that is not a
superuser, owns nothing and bypasses no policy: whatever SQL runs on its connections, the
row-level policies and grants decide what it may change. Embedded, the server creates that
login role (`training_files_app`) itself; with `DATABASE_URL` the operator does (README).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from .config import Settings
from .conversations.uploads import IMPORTS_AT_ONCE
from .db.database import CONNECT_ERRORS, Database, unreachable
from .db.embedded import ensure_database, start_embedded, with_user
from .db.migrate import apply_migrations_locked, schema_lock
from .db.pool import PoolLimits, create_pool
from .db.writers import WriterPool
from .observability.metrics import watch_pool
from .storage.base import Storage
from .storage.links import LinkSigner
from .storage.local import LocalStorage
from .storage.s3 import S3Storage

log = logging.getLogger(__name__)

APP_LOGIN_ROLE = "training_files_app"
_SCHEMA_LOCK_SECONDS = 120.0

_ENSURE_APP_LOGIN = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_LOGIN_ROLE}') THEN
        CREATE ROLE {APP_LOGIN_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
            NOREPLICATION NOBYPASSRLS;
    END IF;
END
$$;
GRANT training_files_user TO {APP_LOGIN_ROLE};
"""

# What makes a login role unfit for the request path: it could undo the row-level policies.
_PRIVILEGES = """
SELECT r.rolsuper OR r.rolbypassrls AS bypasses,
       EXISTS (SELECT 1 FROM pg_tables t
               WHERE t.schemaname = 'public' AND t.tablename = 'training_files'
                 AND pg_has_role(current_user, t.tableowner, 'USAGE')) AS owns
FROM pg_roles r WHERE r.rolname = current_user
"""


@dataclass(frozen=True)
class DatabaseUrls:
    app: str  # the request path
    owner: str  # migrations and maintenance


@dataclass(frozen=True)
class Pools:
    """The server's connections: requests, writers (each holding its lock), maintenance."""

    db: Database
    writers: WriterPool
    maintenance: Database
    # The owner's writer connections for imports through the API (conversations/uploads.py).
    importers: WriterPool

    async def close(self, timeout: float = 10.0) -> None:
        """Close every pool, waiting at most `timeout` for connections still in use."""
        pools = (self.db.pool, self.writers.pool, self.maintenance.pool, self.importers.pool)
        for pool in pools:
            await close_pool(pool, timeout)


async def close_pool(pool: asyncpg.Pool, timeout: float) -> None:
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except TimeoutError:
        log.warning("database connections still busy after %g s: closing them", timeout)
        pool.terminate()


async def database_urls(settings: Settings) -> DatabaseUrls:
    """`DATABASE_URL` (and `DATABASE_OWNER_URL`) when set, else the embedded server."""
    if settings.database_url:
        return DatabaseUrls(
            settings.database_url, settings.database_owner_url or settings.database_url
        )
    owner = await ensure_database(start_embedded(settings.data_dir))
    return DatabaseUrls(app=with_user(owner, APP_LOGIN_ROLE), owner=owner)


async def prepare_database(settings: Settings, urls: DatabaseUrls) -> list[str]:
    """Apply pending migrations (one process at a time) and, embedded, create the login role
    of the request path. Returns the migrations applied."""
    async with schema_session(settings, urls) as conn:
        applied = await apply_migrations_locked(conn)
        if not settings.database_url:
            await conn.execute(_ENSURE_APP_LOGIN)
    return applied


@asynccontextmanager
async def schema_session(
    settings: Settings, urls: DatabaseUrls
) -> AsyncIterator[asyncpg.Connection]:
    """An owner connection holding the schema lock: one starting process at a time."""
    try:
        conn = await asyncpg.connect(
            urls.owner,
            timeout=settings.database_pool_timeout,
            # Bounds the wait for the schema lock and for table locks a migration needs.
            server_settings={"lock_timeout": f"{int(_SCHEMA_LOCK_SECONDS * 1000)}ms"},
        )
    except CONNECT_ERRORS as error:
        raise unreachable() from error
    try:
        async with schema_lock(conn):
            yield conn
    finally:
        await conn.close()


async def open_owner_writers(settings: Settings, urls: DatabaseUrls) -> WriterPool:
    """Writer connections as the owner, for command-line imports and `check --repair`."""
    limits = PoolLimits(size=2, connect_timeout=settings.database_pool_timeout)
    return WriterPool(await create_pool(urls.owner, limits), timeout_seconds=settings.lock_timeout)


async def open_pools(settings: Settings, urls: DatabaseUrls) -> Pools:
    timeout = settings.database_pool_timeout
    opened: list[asyncpg.Pool] = []

    async def pool(dsn: str, size: int, *, keep_session: bool = False) -> asyncpg.Pool:
        limits = PoolLimits(
            size=size,
            connect_timeout=timeout,
            statement_timeout=settings.database_statement_timeout,
            keep_session=keep_session,
        )
        opened.append(await create_pool(dsn, limits))
        return opened[-1]

    try:
        # Requests set the caller at every checkout (`Reader`, `Database.session`).
        requests = await pool(urls.app, settings.database_pool_size, keep_session=True)
        db = Database(requests, acquire_timeout_seconds=timeout, dsn=urls.app)
        writers = WriterPool(
            await pool(urls.app, settings.writer_connections), timeout_seconds=settings.lock_timeout
        )
        maintenance = Database(await pool(urls.owner, 2), acquire_timeout_seconds=timeout)
        importers = WriterPool(
            await pool(urls.owner, IMPORTS_AT_ONCE), timeout_seconds=settings.lock_timeout
        )
        watch_pool(requests, "requests")
        watch_pool(writers.pool, "writers")
        watch_pool(importers.pool, "importers")
        await _warn_if_privileged(db)
    except BaseException:
        for opened_pool in opened:
            opened_pool.terminate()
        raise
    return Pools(db, writers, maintenance, importers)


async def _warn_if_privileged(db: Database) -> None:
    async with db.connection() as conn:
        row = await conn.fetchrow(_PRIVILEGES)
    if row is not None and (row["bypasses"] or row["owns"]):
        log.warning(
            "the request path's database role is a superuser, bypasses row-level security or "
            "owns the tables: access is enforced only by the role switch in each transaction. "
            "Point DATABASE_URL at a login role that is a member of training_files_user and "
            "DATABASE_OWNER_URL at the owner (see the README)."
        )


async def open_storage(settings: Settings) -> Storage:
    """The configured backend; S3 opens one client here, closed by `Storage.close`. The app
    serves local objects and S3 composites itself, through download links signed with a key
    derived from the JWT secret (the route verifies them with the same key)."""
    signer = LinkSigner(settings.jwt_secret)
    if settings.s3 is None:
        return LocalStorage(settings.storage_path, link_signer=signer)
    storage = await S3Storage.open(settings.s3, link_signer=signer)
    try:
        await storage.check()  # fail at start, naming any bucket that is missing
    except BaseException:
        await storage.close()
        raise
    return storage
