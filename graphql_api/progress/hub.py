"""The subscribing side: one LISTEN connection per process, open while anyone subscribes,
fanning the channel's events out to the subscribers of each file."""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

from ..db.notifications import Connect, Listening
from ..errors import Busy, Unavailable
from .events import CHANNEL, ProgressEvent

log = logging.getLogger(__name__)

# A subscriber that reads slower than events come keeps the newest ones.
_BUFFERED_EVENTS = 256


class ProgressInterrupted(Unavailable):
    """The connection the events come through ended: the subscriber should query the file."""


class Subscription:
    """The events of one file, as they arrive, until the subscription ends."""

    def __init__(self) -> None:
        self._events: collections.deque[ProgressEvent] = collections.deque(maxlen=_BUFFERED_EVENTS)
        self._arrived = asyncio.Event()
        self._interrupted = False

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> ProgressEvent:
        while not self._events:
            if self._interrupted:
                raise ProgressInterrupted(
                    "the progress stream was interrupted; query the training file for its state"
                )
            self._arrived.clear()
            await self._arrived.wait()
        return self._events.popleft()

    def _deliver(self, event: ProgressEvent) -> None:
        self._events.append(event)
        self._arrived.set()

    def _interrupt(self) -> None:
        self._interrupted = True
        self._arrived.set()


class ProgressHub:
    def __init__(self, connect: Connect, *, max_subscribers: int = 1000) -> None:
        self._listening = Listening(connect, CHANNEL, self._received, self._lost)
        self._max_subscribers = max_subscribers
        self._subscribers: dict[UUID, set[Subscription]] = {}
        self._count = 0
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def subscribe(self, training_file_id: UUID) -> AsyncIterator[Subscription]:
        """Events published from now on for the file, from any process."""
        subscription = Subscription()
        async with self._lock:
            if self._count >= self._max_subscribers:
                raise Busy(f"{self._count} progress subscriptions are open; retry later")
            if not self._listening.open:
                await self._listening.start()
            self._subscribers.setdefault(training_file_id, set()).add(subscription)
            self._count += 1
        try:
            yield subscription
        finally:
            async with self._lock:
                self._count -= 1
                watching = self._subscribers[training_file_id]
                watching.discard(subscription)
                if not watching:
                    del self._subscribers[training_file_id]
                if not self._subscribers:
                    await self._listening.close()

    async def close(self) -> None:
        async with self._lock:
            await self._listening.close()

    def _received(self, payload: str) -> None:
        try:
            event = ProgressEvent.decode(payload)
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed progress notification: %.200r", payload)
            return
        for subscription in self._subscribers.get(event.training_file_id, ()):
            subscription._deliver(event)

    def _lost(self) -> None:
        # Events may have been missed: every current subscriber learns it; the next
        # subscription opens a new connection.
        for watching in self._subscribers.values():
            for subscription in watching:
                subscription._interrupt()
