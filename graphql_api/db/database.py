"""Units of work on the pool, run as the requesting user so the database enforces access."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import asyncpg

APP_ROLE = "training_files_user"

# set_config(..., true) is SET LOCAL: both settings end with the transaction, so a pooled
# connection never carries one request's identity into the next.
_BECOME_USER = "SELECT set_config('app.user_id', $1, true), set_config('role', $2, true)"


class Database:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def session(self, user_id: UUID | None = None) -> AsyncIterator[asyncpg.Connection]:
        """A transaction; with `user_id`, run as the app role under the row-level policies."""
        async with self.pool.acquire() as conn, conn.transaction():
            if user_id is not None:
                await conn.execute(_BECOME_USER, str(user_id), APP_ROLE)
            yield conn
