"""The publishing side: one build's events, throttled so that reporting costs little."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from uuid import UUID

import asyncpg

from ..db.notifications import notify, notify_statement
from ..errors import ErrorCode, UserError
from ..failures import as_unavailable
from .events import CHANNEL, Phase, ProgressEvent

log = logging.getLogger(__name__)

Publish = Callable[[ProgressEvent], Awaitable[None]]

# Counts are published at most this often; phases always.
DEFAULT_INTERVAL_SECONDS = 0.2
# Progress is best effort: a slow or failing publish must not slow or fail the build.
_PUBLISH_TIMEOUT_SECONDS = 1.0


class BuildProgress:
    def __init__(
        self,
        publish: Publish,
        training_file_id: UUID,
        conversations_total: int,
        *,
        interval: float = DEFAULT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._publish = publish
        self._file_id = training_file_id
        self._total = conversations_total
        self._interval = interval
        self._clock = clock
        self._sequence = 0
        self._done = 0
        self._bytes = 0
        self._last_sent = float("-inf")

    def use(self, publish: Publish) -> None:
        """Publish through `publish` from now on (a build moves from connection to connection;
        subscribers order its events by `sequence`)."""
        self._publish = publish

    def expect(self, conversations_total: int) -> None:
        self._total = conversations_total

    def advanced_to(self, conversations_done: int) -> None:
        """Count `conversations_done` as done already (an add's old conversations)."""
        self._done = conversations_done

    async def building(self) -> None:
        await self._send(Phase.BUILDING)

    async def conversation_ready(self) -> None:
        """One more conversation's parts are ready to be written."""
        self._done = min(self._done + 1, self._total)
        await self._advanced()

    async def _advanced(self) -> None:
        if self._clock() - self._last_sent >= self._interval:
            await self._send(Phase.BUILDING)

    async def committing(self, bytes_written: int) -> None:
        self._done, self._bytes = self._total, bytes_written
        await self._send(Phase.COMMITTING)

    def committed_with(self, version: int, statements: list[str]) -> None:
        """COMMITTED, as a NOTIFY appended to `statements` for the caller to send with its
        commit: subscribers get it when (and only if) the version is committed, at no round
        trip of its own."""
        statements.append(notify_statement(CHANNEL, self._event(Phase.COMMITTED, version).encode()))

    async def failed(self, code: str, message: str) -> None:
        await self._send(Phase.FAILED, error_code=code, error_message=message)

    async def failed_by(self, error: BaseException) -> None:
        """FAILED with the code and message the change's client gets for `error`."""
        refusal = error if isinstance(error, UserError) else as_unavailable(error)
        if refusal is None:
            await self.failed(ErrorCode.INTERNAL_SERVER_ERROR, "internal server error")
        else:
            await self.failed(refusal.problems[0].code, refusal.message)

    async def _send(
        self,
        phase: Phase,
        *,
        version: int | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> None:
        event = self._event(phase, version, error_code, error_message)
        try:
            async with asyncio.timeout(_PUBLISH_TIMEOUT_SECONDS):
                await self._publish(event)
        except Exception as error:
            log.warning("progress of %s not published: %s", self._file_id, error or type(error))

    def _event(
        self,
        phase: Phase,
        version: int | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> ProgressEvent:
        """The next event of the build (its sequence number taken)."""
        self._sequence += 1
        self._last_sent = self._clock()
        return ProgressEvent(
            self._file_id,
            self._sequence,
            phase,
            self._done,
            self._total,
            self._bytes,
            version,
            error_code,
            error_message,
        )


async def _ignore(event: ProgressEvent) -> None:
    return None


def on_connection(conn: asyncpg.Connection) -> Publish:
    """Publish with NOTIFY on `conn`, one event at a time: at once outside a transaction, at its
    commit inside one. No connection of its own, so reporting never waits for the pool."""
    turn = asyncio.Lock()

    async def publish(event: ProgressEvent) -> None:
        async with turn:
            await notify(conn, CHANNEL, event.encode())

    return publish


def unreported(training_file_id: UUID, conversations_total: int) -> BuildProgress:
    """For builds nobody watches (tests of the service alone, tools)."""
    return BuildProgress(_ignore, training_file_id, conversations_total)
