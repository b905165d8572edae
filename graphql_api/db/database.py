"""Units of work on the pool, run as the requesting user so the database enforces access."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, cast
from uuid import UUID

import asyncpg

from ..errors import Busy, DatabaseUnavailable
from ..observability import metrics
from .data_version import SharedReads

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

APP_ROLE = "training_files_user"


# set_config(..., true) is SET LOCAL: both settings end with the transaction, so a pooled
# connection never carries one request's identity into the next.
def _as_user(user_id: UUID) -> str:
    """The statement that runs the rest of a transaction as `user_id`, with the id in its text
    (so it can share a round trip with BEGIN): a UUID's text needs no quoting."""
    return (
        f"SELECT set_config('app.user_id', '{UUID(str(user_id))}', true),"
        f" set_config('role', '{APP_ROLE}', true)"
    )


# For a whole connection checkout (a Reader): every checkout sets it again, so no reset of the
# connection on release is needed. The same statement reads the data version (for caches).
_READ_AS = """
SELECT (SELECT version FROM data_version),
       set_config('app.user_id', $1, false), set_config('role', $2, false)
"""
DATA_VERSION = "SELECT version FROM data_version"


async def become_user(conn: asyncpg.Connection, user_id: UUID) -> None:
    """Inside a transaction: run the rest of it as `user_id`, under the row-level policies."""
    await conn.execute(_as_user(user_id))


@asynccontextmanager
async def transaction(
    conn: asyncpg.Connection, user_id: UUID | None = None, *, at_commit: Sequence[str] = ()
) -> AsyncIterator[asyncpg.Connection]:
    """A transaction on `conn`; with `user_id`, run as the app role under the row-level
    policies, begun in one round trip: asyncpg's `transaction()` sends its BEGIN alone, and
    every write request's transactions then paid a second one for the identity.

    `at_commit` (with `user_id`): statements without parameters, as the block leaves them
    in it, sent with the COMMIT in one round trip (a NOTIFY of what the commit makes true)."""
    if user_id is None:
        assert not at_commit, "at_commit needs a transaction begun as a user"
        async with conn.transaction():
            yield conn
        return
    await conn.execute(f"BEGIN; {_as_user(user_id)}")  # one simple query, two statements
    try:
        yield conn
    except BaseException:
        # A connection that broke, or is busy with a cancelled query, is rolled back by the
        # pool's release (or by PostgreSQL as its session ends).
        if not conn.is_closed():
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await conn.execute("ROLLBACK")
        raise
    await conn.execute("; ".join([*at_commit, "COMMIT"]))


# What (re)connecting raises while PostgreSQL is down or restarting: refused, no socket, or
# "the database system is starting up".
CONNECT_ERRORS = (OSError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError)


def unreachable() -> DatabaseUnavailable:
    # The cause (host, port, socket) stays out of what clients see; it is chained for logs.
    return DatabaseUnavailable("the database is unreachable; retry later")


def lent(proxy: PoolConnectionProxy[asyncpg.Record]) -> asyncpg.Connection:
    """A pool's proxy, typed as the connection it stands for (asyncpg's stubs keep them apart)."""
    return cast("asyncpg.Connection", proxy)


async def give_back(pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
    await pool.release(cast("PoolConnectionProxy[asyncpg.Record]", conn))
    metrics.released(pool)


class Database:
    def __init__(
        self, pool: asyncpg.Pool, *, acquire_timeout_seconds: float = 10.0, dsn: str | None = None
    ) -> None:
        """`dsn` is where `pool` connects, for the few connections that must stay out of it."""
        self.pool = pool
        self._acquire_timeout = acquire_timeout_seconds
        self._dsn = dsn
        self._versions = SharedReads(self._read_version)

    async def connect_alone(self) -> asyncpg.Connection:
        """A connection of its own, outside the pool (e.g. to LISTEN for as long as needed)."""
        if self._dsn is None:
            raise DatabaseUnavailable("this server was started without a database address")
        try:
            return await asyncpg.connect(self._dsn, timeout=self._acquire_timeout)
        except CONNECT_ERRORS as error:
            raise unreachable() from error

    async def data_version(self) -> int:
        """The data version now: read after this call began, shared with concurrent callers."""
        return await self._versions.current()

    async def _read_version(self) -> int:
        async with self.connection() as conn:
            return int(await conn.fetchval(DATA_VERSION))

    @asynccontextmanager
    async def session(self, user_id: UUID | None = None) -> AsyncIterator[asyncpg.Connection]:
        """A transaction; with `user_id`, run as the app role under the row-level policies."""
        async with self.connection() as conn, transaction(conn, user_id):
            yield conn

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection, waiting for one at most the acquire timeout (then `Busy`)."""
        conn = await self.acquire()
        try:
            yield conn
        finally:
            await give_back(self.pool, conn)

    def reader(self, user_id: UUID | None) -> Reader:
        """Reads as `user_id` on one connection, until `close` (or the `async with` ends)."""
        return Reader(self, user_id)

    async def acquire(self) -> asyncpg.Connection:
        with metrics.acquiring(self.pool):
            try:
                return lent(await self.pool.acquire(timeout=self._acquire_timeout))
            except TimeoutError:
                raise Busy(
                    f"no database connection came free within {self._acquire_timeout:g} s; retry",
                    retry_after_seconds=max(1, int(self._acquire_timeout // 2)),
                ) from None
            except CONNECT_ERRORS as error:
                raise unreachable() from error


class Reader:
    """The reads of one request, as its caller, on one pooled connection taken at first use.

    No transaction: under READ COMMITTED every statement sees its own snapshot either way. The
    caller is set once for the checkout, so a request costs one statement more than its
    queries, whatever their number.
    """

    def __init__(self, db: Database, user_id: UUID | None) -> None:
        self._db = db
        self._user_id = user_id
        self._lock = asyncio.Lock()
        self._conn: asyncpg.Connection | None = None
        self._version: int | None = None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """The request's connection, for one query or a few at a time (they take turns)."""
        async with self._lock:
            if self._conn is None:
                conn = await self._db.acquire()
                user = str(self._user_id) if self._user_id else ""
                try:
                    self._version = await conn.fetchval(_READ_AS, user, APP_ROLE)
                except BaseException:
                    await give_back(self._db.pool, conn)
                    raise
                self._conn = conn
            yield self._conn

    async def data_version(self) -> int:
        """The data version as of this request's first read (see migration 0004)."""
        async with self.connection():
            pass
        assert self._version is not None
        return self._version

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await give_back(self._db.pool, conn)

    async def __aenter__(self) -> Reader:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
