"""Failures of PostgreSQL and storage, as the errors a client can act on (retry, tell an
operator), instead of a masked internal error."""

from __future__ import annotations

import asyncpg

from .errors import Busy, DatabaseUnavailable, StorageUnavailable, Unavailable
from .storage.base import InvalidKey, ObjectNotFound, StorageError

# Bounds we set ourselves (statement_timeout, lock_timeout) and contention PostgreSQL resolves
# by aborting one side: the request did nothing and may be retried.
_BUSY = (
    asyncpg.QueryCanceledError,
    asyncpg.LockNotAvailableError,
    asyncpg.TooManyConnectionsError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)
# The server went away, restarts, or dropped this connection (pg_terminate_backend).
_DATABASE_DOWN = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.DiskFullError,
    ConnectionError,
)

_STORAGE_MESSAGES = {
    "full": "storage is full",
    "unwritable": "storage is not writable",
    "unreachable": "storage is unreachable",
    None: "storage failed",
}


def as_unavailable(error: BaseException) -> Unavailable | None:
    """The client-facing error for an infrastructure failure, or None when `error` is a bug."""
    if isinstance(error, Unavailable):
        return error
    if isinstance(error, _BUSY):
        return Busy("the server is busy (a database bound was reached); nothing changed, retry")
    if isinstance(error, _DATABASE_DOWN) or _is_closed_connection(error):
        return DatabaseUnavailable("the database is unavailable; nothing changed, retry later")
    if isinstance(error, StorageError) and not isinstance(error, ObjectNotFound | InvalidKey):
        reason = _STORAGE_MESSAGES[error.reason]
        return StorageUnavailable(f"{reason}; nothing changed, retry later", retry_after_seconds=30)
    return None


def _is_closed_connection(error: BaseException) -> bool:
    # asyncpg raises InterfaceError("connection is closed") for a connection lost meanwhile.
    return isinstance(error, asyncpg.InterfaceError) and "closed" in str(error)
