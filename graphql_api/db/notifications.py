"""PostgreSQL's NOTIFY / LISTEN: the SQL, and one listening connection per channel."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

log = logging.getLogger(__name__)

_NOTIFY = "SELECT pg_notify($1, $2)"

Connect = Callable[[], Awaitable[asyncpg.Connection]]


def notify_statement(channel: str, payload: str) -> str:
    """NOTIFY as SQL without parameters, to share a round trip with other statements: the
    payload dollar-quoted, with a tag it does not contain (nothing in it is interpreted)."""
    if not channel.isidentifier():
        raise ValueError(f"not a plain channel name: {channel!r}")
    if "\0" in payload:
        raise ValueError("a NOTIFY payload cannot hold a NUL character")
    tag = "notify"
    while f"${tag}$" in payload:
        tag += "_"
    return f"SELECT pg_notify('{channel}', ${tag}${payload}${tag}$)"


async def notify(conn: asyncpg.Connection, channel: str, payload: str) -> None:
    """Outside a transaction it is sent at once; inside one, when it commits."""
    await conn.execute(_NOTIFY, channel, payload)


class Listening:
    """A connection of its own that LISTENs on `channel`, calling `deliver` with each payload and
    `lost` once if the connection ends before `close`."""

    def __init__(
        self,
        connect: Connect,
        channel: str,
        deliver: Callable[[str], None],
        lost: Callable[[], None],
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._deliver = deliver
        self._lost = lost
        self._conn: asyncpg.Connection | None = None

    @property
    def open(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def start(self) -> None:
        conn = await self._connect()
        try:
            await conn.add_listener(self._channel, self._received)
        except BaseException:
            await conn.close()
            raise
        conn.add_termination_listener(self._terminated)
        self._conn = conn

    async def close(self, timeout: float = 2.0) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        conn.remove_termination_listener(self._terminated)
        try:
            await asyncio.wait_for(conn.close(), timeout)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            conn.terminate()

    def _received(
        self,
        conn: asyncpg.Connection | PoolConnectionProxy[Any],
        pid: int,
        channel: str,
        payload: object,
    ) -> None:
        self._deliver(str(payload))

    def _terminated(self, conn: object) -> None:
        if self._conn is not None:
            self._conn = None
            log.warning("the connection listening for %s ended", self._channel)
            self._lost()
