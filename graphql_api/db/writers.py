"""Connections for writers, each holding its writer's lock in PostgreSQL.

A writer (a build of a training file, an import of a conversation) takes a connection of this
small pool, takes a session-level advisory lock on the object it writes, and runs its queries
and its commit on that same connection. So:

- the lock holds across processes, and PostgreSQL releases it if the process dies;
- a commit can only succeed while the lock is held (the lock lives as long as its session),
  which is what lets `check --repair` delete objects of writers that are provably gone;
- waiters hold no connection: they wait for their turn on the object in this process (at most
  one connection per object and process), then for a writer connection, then in PostgreSQL
  for a writer of another process. Every wait shares one deadline; past it, `Busy`.

The request pool is never touched by a writer waiting for anything, so reads and health
checks keep being answered while adds queue.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg

from ..errors import Busy
from ..observability import metrics
from .database import CONNECT_ERRORS, give_back, lent, transaction, unreachable


class LockKind(enum.IntEnum):
    """The first half of an advisory lock key: what kind of object is being written."""

    TRAINING_FILE = 1
    CONVERSATION = 2


def lock_key(kind: LockKind, object_id: UUID) -> tuple[int, int]:
    """The two-int advisory lock key; a rare collision only serializes two writers more."""
    return int(kind), int.from_bytes(object_id.bytes[:4], "big", signed=True)


_LOCK = """
SELECT pg_advisory_lock($2, $3)
FROM (SELECT set_config('lock_timeout', $1, false)) AS bounded
"""
_TRY_LOCK = "SELECT pg_try_advisory_lock($1, $2)"


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class LockedSession:
    """The connection of one writer while it holds its lock: run transactions on it."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    @property
    def connection(self) -> asyncpg.Connection:
        """The locked connection itself, for statements outside a transaction (NOTIFY)."""
        return self._conn

    @asynccontextmanager
    async def session(
        self, user_id: UUID | None = None, *, at_commit: Sequence[str] = ()
    ) -> AsyncIterator[asyncpg.Connection]:
        """A transaction on the locked connection, as `user_id` under row-level security
        (`at_commit`: as `transaction`'s)."""
        async with transaction(self._conn, user_id, at_commit=at_commit):
            yield self._conn


class WriterPool:
    """Writer locks on the connections of `pool`, which must reset connections as they go
    back (asyncpg's default reset, as `create_pool` leaves it unless `keep_session`): the reset
    is what releases a writer's lock."""

    def __init__(self, pool: asyncpg.Pool, *, timeout_seconds: float) -> None:
        self._pool = pool
        self._timeout = timeout_seconds
        self._turns: dict[tuple[int, int], _Turn] = {}

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    @asynccontextmanager
    async def exclusive(self, kind: LockKind, object_id: UUID) -> AsyncIterator[LockedSession]:
        """Hold the writer lock of one object, waiting at most the configured timeout."""
        key = lock_key(kind, object_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        with metrics.lock_wait(kind.name.lower()) as waiting:
            async with self._turn(key, deadline, object_id):
                conn = await self._acquire(deadline)
                try:
                    await self._lock(conn, key, deadline, object_id)
                    waiting.acquired()
                    yield LockedSession(conn)
                finally:
                    # The pool's reset (pg_advisory_unlock_all, RESET ALL) releases the lock
                    # as the connection goes back: an unlock of its own was a round trip more
                    # on every build's way to its answer. A connection that broke took the
                    # lock with its session.
                    await give_back(self._pool, conn)

    @asynccontextmanager
    async def try_exclusive(
        self, kind: LockKind, object_id: UUID
    ) -> AsyncIterator[LockedSession | None]:
        """The writer lock if nobody holds it right now, else None (no waiting for it)."""
        key = lock_key(kind, object_id)
        turn = self._turns.get(key)
        if turn is not None and turn.lock.locked():
            yield None
            return
        async with self._acquired(self._timeout) as conn:  # released by the pool's reset
            if not await conn.fetchval(_TRY_LOCK, *key):
                yield None
                return
            yield LockedSession(conn)

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def _turn(
        self, key: tuple[int, int], deadline: float, object_id: UUID
    ) -> AsyncIterator[None]:
        """This process's turn on the object: one writer connection per object at most."""
        turn = self._turns.setdefault(key, _Turn())
        turn.users += 1
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    await turn.lock.acquire()
            except TimeoutError:
                raise _busy(object_id, self._timeout) from None
            try:
                yield
            finally:
                turn.lock.release()
        finally:
            turn.users -= 1
            if turn.users == 0:
                del self._turns[key]

    async def _acquire(self, deadline: float) -> asyncpg.Connection:
        remaining = deadline - asyncio.get_running_loop().time()
        with metrics.acquiring(self._pool):
            try:
                return lent(await self._pool.acquire(timeout=max(remaining, 0.001)))
            except TimeoutError:
                raise Busy(
                    "every writer connection is in use by other builds and imports; retry",
                    retry_after_seconds=_retry_after(self._timeout),
                ) from None
            except CONNECT_ERRORS as error:
                raise unreachable() from error

    @asynccontextmanager
    async def _acquired(self, timeout: float) -> AsyncIterator[asyncpg.Connection]:
        deadline = asyncio.get_running_loop().time() + timeout
        conn = await self._acquire(deadline)
        try:
            yield conn
        finally:
            await give_back(self._pool, conn)

    async def _lock(
        self, conn: asyncpg.Connection, key: tuple[int, int], deadline: float, object_id: UUID
    ) -> None:
        remaining_ms = max(int((deadline - asyncio.get_running_loop().time()) * 1000), 1)
        try:
            await conn.fetchval(_LOCK, f"{remaining_ms}ms", *key)
        except asyncpg.LockNotAvailableError:
            raise _busy(object_id, self._timeout) from None


def _busy(object_id: UUID, timeout: float) -> Busy:
    return Busy(
        f"{object_id} is being changed by other requests and did not come free within "
        f"{timeout:g} s; nothing changed, retry",
        retry_after_seconds=_retry_after(timeout),
    )


def _retry_after(timeout: float) -> int:
    return max(1, min(int(timeout // 6), 30))
