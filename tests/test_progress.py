"""Progress events through PostgreSQL: published on one connection, received by every process's
hub that has a subscriber for the file, in order; a lost connection ends its subscriptions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from uuid import UUID, uuid4

import asyncpg
import pytest

from graphql_api.db.database import Database
from graphql_api.db.notifications import notify, notify_statement
from graphql_api.errors import Busy
from graphql_api.progress.events import CHANNEL, Phase, ProgressEvent
from graphql_api.progress.hub import ProgressHub, ProgressInterrupted
from graphql_api.progress.reporter import BuildProgress
from graphql_api.runtime import DatabaseUrls

# Bounds the waits of these tests only; nothing here depends on how fast events travel.
WAIT = 10.0


@pytest.fixture
def connect(database_urls: DatabaseUrls) -> Callable[[], Awaitable[asyncpg.Connection]]:
    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(database_urls.app, timeout=WAIT)

    return connect


@pytest.fixture
async def hub(connect: Callable[[], Awaitable[asyncpg.Connection]]) -> AsyncIterator[ProgressHub]:
    opened = ProgressHub(connect)
    yield opened
    await opened.close()


def _publisher(db: Database) -> Callable[[ProgressEvent], Awaitable[None]]:
    async def publish(event: ProgressEvent) -> None:
        async with db.connection() as conn:
            await notify(conn, CHANNEL, event.encode())

    return publish


async def _take(events: AsyncIterator[ProgressEvent], count: int) -> list[ProgressEvent]:
    async with asyncio.timeout(WAIT):
        return [await anext(events) for _ in range(count)]


async def _listeners(db: Database) -> int:
    async with db.connection() as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %'"
        )
    return count


async def test_a_build_is_seen_in_order_by_every_process_subscribed_to_its_file(
    db: Database, connect: Callable[[], Awaitable[asyncpg.Connection]], hub: ProgressHub
) -> None:
    file_id, other_file = uuid4(), uuid4()
    second_process = ProgressHub(connect)
    try:
        async with (
            hub.subscribe(file_id) as here,
            second_process.subscribe(file_id) as there,
            hub.subscribe(other_file) as unrelated,
        ):
            progress = BuildProgress(_publisher(db), file_id, 3, interval=0)
            progress.advanced_to(1)
            await progress.building()
            await progress.conversation_ready()
            await progress.committing(1500)
            at_commit: list[str] = []
            progress.committed_with(4, at_commit)
            async with db.connection() as conn:  # as a commit sends it
                await conn.execute("; ".join(at_commit))

            for events in (here, there):
                got = await _take(events, 4)
                assert [(e.sequence, e.phase) for e in got] == [
                    (1, Phase.BUILDING),
                    (2, Phase.BUILDING),
                    (3, Phase.COMMITTING),
                    (4, Phase.COMMITTED),
                ]
                assert [(e.conversations_done, e.bytes_written) for e in got] == [
                    (1, 0),
                    (2, 0),
                    (3, 1500),
                    (3, 1500),
                ]
                assert got[-1].version == 4 and got[-1].conversations_total == 3
            # Nothing of another file's build reaches a subscriber of this one.
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await anext(unrelated)
    finally:
        await second_process.close()


async def test_the_listening_connection_is_open_only_while_someone_subscribes(
    db: Database, hub: ProgressHub
) -> None:
    before = await _listeners(db)
    async with hub.subscribe(uuid4()), hub.subscribe(uuid4()):
        assert await _listeners(db) == before + 1
    assert await _listeners(db) == before


async def test_a_lost_connection_ends_its_subscriptions_and_the_next_one_reconnects(
    db: Database, hub: ProgressHub
) -> None:
    file_id = uuid4()
    async with hub.subscribe(file_id) as events:
        async with db.connection() as conn:
            terminated = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE query LIKE 'LISTEN %'"
            )
        assert terminated >= 1
        with pytest.raises(ProgressInterrupted):
            async with asyncio.timeout(WAIT):
                await anext(events)
    async with hub.subscribe(file_id) as events:
        await BuildProgress(_publisher(db), file_id, 1).failed("NOT_FOUND", "gone")
        [event] = await _take(events, 1)
        assert (event.phase, event.error_code, event.error_message) == (
            Phase.FAILED,
            "NOT_FOUND",
            "gone",
        )


async def test_subscriptions_are_bounded(
    connect: Callable[[], Awaitable[asyncpg.Connection]],
) -> None:
    hub = ProgressHub(connect, max_subscribers=2)
    try:
        async with hub.subscribe(uuid4()), hub.subscribe(uuid4()):
            with pytest.raises(Busy):
                async with hub.subscribe(uuid4()):
                    pass
        async with hub.subscribe(uuid4()):  # freed again
            pass
    finally:
        await hub.close()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_counts_are_throttled_phases_are_not_and_a_failing_publish_is_harmless() -> None:
    sent: list[ProgressEvent] = []

    async def publish(event: ProgressEvent) -> None:
        if event.sequence == 1:
            raise ConnectionError("down")
        sent.append(event)

    clock = Clock()
    file_id = UUID(int=1)
    progress = BuildProgress(publish, file_id, 10, interval=1.0, clock=clock)
    await progress.building()  # fails: logged, the build goes on
    await progress.building()
    for _ in range(9):
        clock.now += 0.25
        await progress.conversation_ready()
    await progress.committing(1000)
    assert [(e.phase, e.conversations_done) for e in sent] == [
        (Phase.BUILDING, 0),
        (Phase.BUILDING, 4),  # a second after the last event
        (Phase.BUILDING, 8),
        (Phase.COMMITTING, 10),
    ]
    # The failed publish still took its sequence number: subscribers can tell one is missing.
    assert [e.sequence for e in sent] == [2, 3, 4, 5]


def test_an_event_survives_its_wire_form_and_long_messages_are_cut() -> None:
    event = ProgressEvent(uuid4(), 3, Phase.FAILED, 1, 2, 30, None, "BUSY", "x" * 10_000)
    decoded = ProgressEvent.decode(event.encode())
    assert decoded.error_message == "x" * 1000
    assert decoded == ProgressEvent(
        event.training_file_id, 3, Phase.FAILED, 1, 2, 30, None, "BUSY", "x" * 1000
    )
    assert len(event.encode()) < 8000


@pytest.mark.parametrize(
    "payload", ['{"a":"it\'s"}', "$notify$ and $notify_$ inside", "", "ünïcode \\ '' $$"]
)
async def test_a_notify_statement_delivers_its_payload_as_it_is(db: Database, payload: str) -> None:
    got: asyncio.Queue[str] = asyncio.Queue()

    def received(conn: object, pid: int, channel: str, sent: str) -> None:
        got.put_nowait(sent)

    async with db.connection() as listener:
        await listener.add_listener(CHANNEL, received)
        try:
            async with db.connection() as conn:
                await conn.execute(f"{notify_statement(CHANNEL, payload)}; SELECT 1")
            async with asyncio.timeout(WAIT):
                assert await got.get() == payload
        finally:
            await listener.remove_listener(CHANNEL, received)
