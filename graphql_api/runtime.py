"""Turn settings into live resources: the database (embedded or external) and storage."""

from __future__ import annotations

import asyncpg

from .config import Settings
from .db.embedded import ensure_database, start_embedded
from .db.migrate import apply_migrations
from .db.pool import create_pool
from .storage.base import Storage
from .storage.local import LocalStorage
from .storage.s3 import S3Storage


async def database_dsn(settings: Settings) -> str:
    """`DATABASE_URL` when set, else the embedded server (started or joined here)."""
    if settings.database_url:
        return settings.database_url
    return await ensure_database(start_embedded(settings.data_dir))


async def open_database(settings: Settings, *, migrate: bool = True) -> asyncpg.Pool:
    pool = await create_pool(await database_dsn(settings))
    if migrate:
        async with pool.acquire() as conn:
            await apply_migrations(conn)
    return pool


async def open_storage(settings: Settings) -> Storage:
    """The configured backend; S3 opens one client here, closed by `Storage.close`."""
    if settings.s3 is None:
        return LocalStorage(settings.storage_path)
    storage = await S3Storage.open(settings.s3)
    try:
        await storage.check()  # fail at start, naming any bucket that is missing
    except BaseException:
        await storage.close()
        raise
    return storage
