"""`Database.data_version`: one query at a time however many ask, and never an answer older than
the question."""

from __future__ import annotations

import asyncio

import pytest

from graphql_api.db.data_version import SharedReads
from graphql_api.db.database import Database


class Reads:
    """A read that answers 1, 2, 3... and can be held open until released."""

    def __init__(self) -> None:
        self.started = 0
        self.release = asyncio.Event()
        self.release.set()
        self.running = asyncio.Event()

    async def __call__(self) -> int:
        self.started += 1
        number = self.started
        self.running.set()
        await self.release.wait()
        return number


async def test_many_concurrent_callers_share_one_read() -> None:
    reads = Reads()
    shared = SharedReads(reads)
    answers = await asyncio.gather(*(shared.current() for _ in range(50)))
    assert answers == [1] * 50 and reads.started == 1


async def test_a_caller_arriving_during_a_read_waits_for_the_next_one() -> None:
    reads = Reads()
    reads.release.clear()
    shared = SharedReads(reads)
    early = asyncio.create_task(shared.current())
    await reads.running.wait()  # read 1 is in flight
    late = [asyncio.create_task(shared.current()) for _ in range(10)]
    await asyncio.sleep(0)
    reads.release.set()
    assert await early == 1
    # Read 1 may have begun before what the late callers saw: they get read 2, all of them.
    assert await asyncio.gather(*late) == [2] * 10 and reads.started == 2


async def test_a_failed_read_fails_its_callers_and_the_next_call_reads_again() -> None:
    attempts = 0

    async def failing_once() -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("down")
        return 7

    shared = SharedReads(failing_once)
    results = await asyncio.gather(shared.current(), shared.current(), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]
    assert await shared.current() == 7


async def test_a_caller_that_gives_up_does_not_cancel_the_others() -> None:
    reads = Reads()
    reads.release.clear()
    shared = SharedReads(reads)
    impatient = asyncio.create_task(shared.current())
    patient = asyncio.create_task(shared.current())
    await reads.running.wait()
    impatient.cancel()
    reads.release.set()
    assert await patient == 1
    with pytest.raises(asyncio.CancelledError):
        await impatient


async def test_the_database_version_follows_commits(db: Database) -> None:
    before = await db.data_version()
    async with db.session() as conn:
        await conn.execute(
            "INSERT INTO training_files (name, created_by) VALUES ('versioned', gen_random_uuid())"
        )
    assert await db.data_version() > before
