"""Forward-only migrations: numbered .sql files, each applied once in its own transaction."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

# Inside the package, so an installed wheel has them (the top-level migrations/ links here).
MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")

# Any constant works; it only has to be the same in every process that migrates.
_ADVISORY_LOCK_KEY = 0x7472_6169_6E69_6E67  # "training"

_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""
_APPLIED = "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
_RECORD = "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)"


class MigrationError(Exception):
    """The migrations on disk and in the database disagree."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    migrations: dict[str, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        version = match.group(1)
        if version in migrations:
            raise MigrationError(f"{path.name}: version {version} is used twice")
        migrations[version] = Migration(version, path.name, path.read_text())
    return list(migrations.values())


@asynccontextmanager
async def schema_lock(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """Held while the schema (and the roles beside it) change: one starting process at a time."""
    await conn.execute("SELECT pg_advisory_lock($1)", _ADVISORY_LOCK_KEY)
    try:
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _ADVISORY_LOCK_KEY)


async def apply_migrations(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the pending migrations in order; return the names applied.

    Holds an advisory lock so that two processes starting at once don't race, and refuses
    to start when an applied file was changed or is missing.
    """
    async with schema_lock(conn):
        return await apply_migrations_locked(conn, directory)


async def apply_migrations_locked(
    conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR
) -> list[str]:
    """`apply_migrations` for a caller that holds `schema_lock` already."""
    migrations = load_migrations(directory)
    await conn.execute(_CREATE_TABLE)
    applied = {row["version"]: row for row in await conn.fetch(_APPLIED)}
    _check_applied(migrations, applied, directory)
    done = []
    for migration in migrations:
        if migration.version in applied:
            continue
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(_RECORD, migration.version, migration.name, migration.checksum)
        done.append(migration.name)
    return done


def _check_applied(
    migrations: list[Migration], applied: dict[str, asyncpg.Record], directory: Path
) -> None:
    on_disk = {m.version: m for m in migrations}
    for version, row in applied.items():
        migration = on_disk.get(version)
        if migration is None:
            raise MigrationError(
                f"migration {row['name']} is applied in the database but missing from {directory}"
            )
        if migration.checksum != row["checksum"]:
            raise MigrationError(
                f"migration {migration.name} was changed after it was applied "
                "(checksum differs): restore the file and put the change in a new migration"
            )
