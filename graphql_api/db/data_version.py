"""The current data version (migration 0004) for any number of concurrent callers, at the cost
of one query at a time.

A caller must get a version read that *started after it asked*: a read already in flight may
have begun before a commit the caller has seen (the client's own mutation, answered by another
process). So callers that arrive during a read wait for the next one, which starts as soon as
the current one ends: however many callers, one query runs at a time, and each waits at most
two query times. The response cache asks this for every hit, which then needs no connection of
its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class SharedReads:
    """Runs `read` for the callers that asked since the last one started, one run at a time."""

    def __init__(self, read: Callable[[], Awaitable[int]]) -> None:
        self._read = read
        self._waiting: asyncio.Future[int] | None = None  # for callers since the last start
        self._runner: asyncio.Task[None] | None = None

    async def current(self) -> int:
        if self._waiting is None:
            self._waiting = asyncio.get_running_loop().create_future()
        waiting = self._waiting
        if self._runner is None:
            self._runner = asyncio.create_task(self._run())
        # Shielded: one caller giving up must not cancel the read the others wait for.
        return await asyncio.shield(waiting)

    async def _run(self) -> None:
        try:
            while self._waiting is not None:
                waiting, self._waiting = self._waiting, None
                try:
                    waiting.set_result(await self._read())
                except asyncio.CancelledError:
                    waiting.cancel()
                    raise
                except Exception as error:
                    waiting.set_exception(error)
        finally:
            self._runner = None
            if self._waiting is not None:  # cancelled with callers queued: fail them too
                self._waiting.cancel()
                self._waiting = None
