"""asyncpg pools with bounded waits, and JSON codecs so json columns come back as objects."""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg

from .database import CONNECT_ERRORS, unreachable


@dataclass(frozen=True)
class PoolLimits:
    """Bounds every connection of a pool runs under (seconds)."""

    size: int = 10
    connect_timeout: float = 10.0
    statement_timeout: float = 30.0
    # Row and table locks (an import racing a commit); writer locks set their own bound.
    lock_timeout: float = 10.0
    # A transaction left open by a bug or a stalled client cannot hold locks for ever.
    idle_in_transaction_timeout: float = 60.0
    # Skip asyncpg's reset query on release (RESET ALL, UNLISTEN *, ...): for a pool whose
    # users set everything they rely on at each checkout, it is one wasted round trip each.
    keep_session: bool = False


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def _end_transaction(conn: asyncpg.Connection) -> None:
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


def _ms(seconds: float) -> str:
    return f"{max(int(seconds * 1000), 1)}ms"


async def create_pool(
    dsn: str,
    limits: PoolLimits | None = None,
    *,
    connection_class: type[asyncpg.Connection] = asyncpg.Connection,
) -> asyncpg.Pool:
    limits = limits or PoolLimits()
    try:
        pool = await _create(dsn, limits, connection_class)
    except CONNECT_ERRORS as error:
        raise unreachable() from error
    assert pool is not None
    return pool


async def _create(
    dsn: str, limits: PoolLimits, connection_class: type[asyncpg.Connection]
) -> asyncpg.Pool | None:
    return await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=limits.size,
        timeout=limits.connect_timeout,
        init=_init_connection,
        connection_class=connection_class,
        reset=_end_transaction if limits.keep_session else None,
        server_settings={
            "statement_timeout": _ms(limits.statement_timeout),
            "lock_timeout": _ms(limits.lock_timeout),
            "idle_in_transaction_session_timeout": _ms(limits.idle_in_transaction_timeout),
        },
    )
