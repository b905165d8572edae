"""Probes for orchestrators: `/livez` (the process answers) and `/readyz` (it can serve:
database and storage reachable, migrations current). `/healthz` (app.py) also proves that
storage takes a write."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from functools import cache
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..db.database import Database
from ..db.migrate import load_migrations
from ..services import Services
from ..storage.base import StorageError
from ..version import package_version

log = logging.getLogger(__name__)

_CHECK_SECONDS = 2.0
_APPLIED = "SELECT version, checksum FROM schema_migrations"


async def livez(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    pending: list[str] = []
    checks = {
        "database": await _check("database", _database_reachable(services.maintenance)),
        "storage": await _check("storage", services.storage.check()),
        "migrations": await _check(
            "migrations", _migrations_current(services.maintenance, pending)
        ),
    }
    ready = all(value == "ok" for value in checks.values())
    body: dict[str, Any] = {
        "status": "ok" if ready else "unavailable",
        "version": package_version(),
        **checks,
    }
    if pending:
        body["pending_migrations"] = pending
    return JSONResponse(body, status_code=200 if ready else 503)


async def _database_reachable(db: Database) -> None:
    # The owner's small pool, as /healthz: a request pool saturated by load is still ready.
    async with db.connection() as conn:
        await conn.fetchval("SELECT 1")


class _NotCurrent(Exception):
    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


@cache
def _on_disk() -> dict[str, str]:
    """Version -> checksum of the migrations this server was built with."""
    return {m.version: m.checksum for m in load_migrations()}


async def _migrations_current(db: Database, pending: list[str]) -> None:
    """Raise unless the database has exactly this server's migrations: "pending" when some are
    not applied yet (`pending` gets their names), "mismatch" when it has others or changed
    ones (a newer server migrated it, or a file was edited)."""
    async with db.connection() as conn:
        try:
            applied = {r["version"]: r["checksum"] for r in await conn.fetch(_APPLIED)}
        except asyncpg.UndefinedTableError:
            applied = {}
    expected = _on_disk()
    if any(expected.get(version) != checksum for version, checksum in applied.items()):
        raise _NotCurrent("mismatch")
    missing = sorted(set(expected) - set(applied))
    if missing:
        names = {m.version: m.name for m in load_migrations()}
        pending.extend(names[v] for v in missing)
        raise _NotCurrent("pending")


async def _check(name: str, probe: Awaitable[None]) -> str:
    """`ok`, or why not: the migrations' state, a storage failure's reason, else `unreachable`
    (a check slower than its bound is as good as unreachable)."""
    try:
        await asyncio.wait_for(probe, _CHECK_SECONDS)
    except _NotCurrent as error:
        log.warning("readiness: migrations are %s", error.state)
        return error.state
    except Exception as error:
        reason = error.reason if isinstance(error, StorageError) else None
        log.warning("readiness: %s unavailable: %s", name, error or type(error).__name__)
        return reason or "unreachable"
    return "ok"
