"""Turn settings into live resources: the database (embedded or external) and storage."""

from __future__ import annotations

import asyncpg

from .config import Settings
from .db.embedded import ensure_database, start_embedded
from .db.migrate import apply_migrations
from .db.pool import create_pool
from .storage.base import Storage
from .storage.local import LocalStorage


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


def open_storage(settings: Settings) -> Storage:
    return LocalStorage(settings.storage_path)
