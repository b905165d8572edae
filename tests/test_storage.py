"""Contract tests for `Storage` backends, plus tests specific to `LocalStorage`.

Tests taking the `storage` fixture must hold for every backend; add a backend by extending the
fixture's params. Tests taking `local` exercise the file system directly.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from graphql_api.storage.base import (
    BUCKETS,
    CHUNK_SIZE,
    CONVERSATION_BUCKET,
    TRAINING_BUCKET,
    CopyRange,
    InvalidKey,
    ObjectNotFound,
    Part,
    PendingWrite,
    Storage,
    StorageError,
    StoredObject,
    iter_bytes,
    read_all,
    validate_key,
)
from graphql_api.storage.local import LocalStorage
from graphql_api.storage.s3_manifest import is_segment_key
from graphql_api.storage.s3_upload import PART_SIZE

from .disks import fill, remount_read_only, tmpfs
from .storage_wrappers import FaultyStorage, InjectedFailure

BUCKET = TRAINING_BUCKET
BIG = 3 * CHUNK_SIZE + 12_345


# Every test taking `storage` (the fixture in conftest.py) runs on each backend.
STORAGE_BACKENDS = ("local", "s3")


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[LocalStorage]:
    backend = LocalStorage(tmp_path / "storage")
    yield backend
    await backend.close()


class Boom(Exception):
    pass


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


async def pieces(data: bytes, size: int = 300_007) -> AsyncIterator[bytes]:
    """Chunks deliberately not aligned with CHUNK_SIZE."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def failing_after(data: bytes) -> AsyncIterator[bytes]:
    async for chunk in pieces(data):
        yield chunk
    raise Boom("source failed midway")


async def collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


def files_under(path: Path) -> set[Path]:
    return {p.relative_to(path) for p in path.rglob("*")}


# -- round trips ----------------------------------------------------------------------------


async def test_put_get_round_trip_streams_in_bounded_chunks(storage: Storage) -> None:
    data = payload(BIG)

    written = await storage.put(BUCKET, "user-1/big.jsonl", pieces(data))

    chunks = await collect(storage.get(BUCKET, "user-1/big.jsonl"))
    assert written == len(data)
    assert len(chunks) >= 4
    assert all(0 < len(chunk) <= CHUNK_SIZE for chunk in chunks)
    assert b"".join(chunks) == data


async def test_put_empty_stream_stores_empty_object(storage: Storage) -> None:
    assert await storage.put(BUCKET, "empty", pieces(b"")) == 0

    assert await storage.exists(BUCKET, "empty")
    assert await storage.size(BUCKET, "empty") == 0
    assert await read_all(storage, BUCKET, "empty") == b""


async def test_size_and_exists_follow_put_and_delete(storage: Storage) -> None:
    assert not await storage.exists(BUCKET, "a/b.json")

    await storage.put(BUCKET, "a/b.json", iter_bytes(b"12345"))
    assert await storage.exists(BUCKET, "a/b.json")
    assert await storage.size(BUCKET, "a/b.json") == 5

    await storage.delete(BUCKET, "a/b.json")
    assert not await storage.exists(BUCKET, "a/b.json")


async def test_buckets_are_separate(storage: Storage) -> None:
    await storage.put(CONVERSATION_BUCKET, "same-key", iter_bytes(b"conversation"))
    await storage.put(TRAINING_BUCKET, "same-key", iter_bytes(b"training"))

    assert await read_all(storage, CONVERSATION_BUCKET, "same-key") == b"conversation"
    assert await read_all(storage, TRAINING_BUCKET, "same-key") == b"training"


@pytest.mark.parametrize("key", [".hidden", "...", "a.b.c", "x=y+z@w-1", "A/.b/..c/d..", "a" * 255])
async def test_unusual_but_valid_keys_round_trip(storage: Storage, key: str) -> None:
    await storage.put(BUCKET, key, iter_bytes(key.encode()))

    assert await read_all(storage, BUCKET, key) == key.encode()


async def test_longest_valid_key_round_trips(storage: Storage) -> None:
    key = "/".join(["k" * 255, "e" * 255, "y" * 255, "s" * 254, "z"])
    assert len(key) == 1024

    await storage.put(BUCKET, key, iter_bytes(b"deep"))

    assert await read_all(storage, BUCKET, key) == b"deep"


async def test_overwrite_replaces_content(storage: Storage) -> None:
    await storage.put(BUCKET, "obj", iter_bytes(payload(BIG, seed=1)))
    second = payload(1000, seed=2)

    await storage.put(BUCKET, "obj", iter_bytes(second))

    assert await read_all(storage, BUCKET, "obj") == second
    assert await storage.size(BUCKET, "obj") == len(second)


async def test_a_prefix_is_not_an_object(storage: Storage) -> None:
    await storage.put(BUCKET, "dir/file", iter_bytes(b"x"))

    assert not await storage.exists(BUCKET, "dir")
    with pytest.raises(ObjectNotFound):
        await storage.size(BUCKET, "dir")
    with pytest.raises(ObjectNotFound):
        await collect(storage.get(BUCKET, "dir"))
    await storage.delete(BUCKET, "dir")
    assert await read_all(storage, BUCKET, "dir/file") == b"x"


# -- ranges ---------------------------------------------------------------------------------

RANGE_SIZE = 2 * CHUNK_SIZE + 100


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, 0),
        (17, 17),
        (RANGE_SIZE, RANGE_SIZE),
        (0, RANGE_SIZE),
        (RANGE_SIZE - 1, RANGE_SIZE),
        (0, 1),
        (CHUNK_SIZE - 1, CHUNK_SIZE + 1),
        (10, 2 * CHUNK_SIZE + 50),
    ],
    ids=[
        "empty-at-start",
        "empty-inside",
        "empty-at-end",
        "whole",
        "last-byte",
        "first-byte",
        "across-chunk-boundary",
        "multi-chunk",
    ],
)
async def test_get_range_returns_exactly_the_requested_bytes(
    storage: Storage, start: int, end: int
) -> None:
    data = payload(RANGE_SIZE)
    await storage.put(BUCKET, "ranged", iter_bytes(data))

    chunks = await collect(storage.get_range(BUCKET, "ranged", start, end))

    assert b"".join(chunks) == data[start:end]
    assert all(0 < len(chunk) <= CHUNK_SIZE for chunk in chunks)


@pytest.mark.parametrize(
    ("start", "end"),
    [(-1, 5), (5, 4), (0, 101), (100, 101), (101, 101), (0, -1)],
    ids=["negative-start", "reversed", "past-end", "last-plus-one", "empty-past-end", "neg-end"],
)
async def test_get_range_rejects_invalid_ranges(storage: Storage, start: int, end: int) -> None:
    await storage.put(BUCKET, "hundred", iter_bytes(payload(100)))

    with pytest.raises(ValueError) as caught:
        await collect(storage.get_range(BUCKET, "hundred", start, end))
    assert not isinstance(caught.value, InvalidKey)


# -- compose --------------------------------------------------------------------------------

MiB = 1024 * 1024
# Past S3's 5 MiB part minimum, so the range is copied inside the store there (and is worth a
# link locally).
LARGE = 6 * MiB + 321


async def streamed(data: bytes) -> AsyncIterator[bytes]:
    async for chunk in pieces(data, 65_537):
        yield chunk


async def test_compose_concatenates_bytes_ranges_and_streams(storage: Storage) -> None:
    source = payload(BIG, seed=3)
    await storage.put(BUCKET, "src", iter_bytes(source))
    new = payload(CHUNK_SIZE + 7, seed=4)

    size = await storage.compose(
        BUCKET,
        "dst",
        [b"head", CopyRange("src", 10, BIG - 10), streamed(new), b"", CopyRange("src", 0, 3), b"!"],
    )

    expected = b"head" + source[10 : BIG - 10] + new + source[:3] + b"!"
    assert size == len(expected) == await storage.size(BUCKET, "dst")
    assert await read_all(storage, BUCKET, "dst") == expected


async def test_compose_of_nothing_is_an_empty_object(storage: Storage) -> None:
    assert await storage.compose(BUCKET, "empty", []) == 0

    assert await read_all(storage, BUCKET, "empty") == b""


@pytest.mark.parametrize("length", [100, LARGE], ids=["small", "large"])
async def test_compose_copies_ranges_from_the_other_bucket(storage: Storage, length: int) -> None:
    piece = payload(length + 20, seed=5)
    await storage.put(CONVERSATION_BUCKET, "c/piece.json", iter_bytes(piece))
    # The same key in the target bucket must not be what is copied.
    await storage.put(BUCKET, "c/piece.json", iter_bytes(b"x" * (length + 20)))

    await storage.compose(
        BUCKET,
        "f/v1/training.json",
        [b"[", CopyRange("c/piece.json", 10, length + 10, bucket=CONVERSATION_BUCKET), b"]"],
    )

    stored = await read_all(storage, BUCKET, "f/v1/training.json")
    assert stored == b"[" + piece[10 : length + 10] + b"]"
    assert await read_all(storage, CONVERSATION_BUCKET, "c/piece.json") == piece


async def test_repeated_adds_read_back_exactly_and_survive_deleting_earlier_versions(
    storage: Storage,
) -> None:
    """What a training file goes through: each version is a new header, the previous body as
    one copied range, new bytes and a footer; old versions are deleted later."""
    body = payload(LARGE, seed=6)
    expected = b"<1>" + body + b"</>"
    await storage.put(BUCKET, "f/v1/training.json", iter_bytes(expected))
    for version in range(2, 6):
        old_key, header = f"f/v{version - 1}/training.json", f"<{version}>".encode()
        new = payload(LARGE // 3 + version, seed=version)
        await storage.compose(
            BUCKET,
            f"f/v{version}/training.json",
            [header, CopyRange(old_key, 3, len(expected) - 3), streamed(new), b"</>"],
        )
        expected = header + expected[3:-3] + new + b"</>"
        assert await read_all(storage, BUCKET, f"f/v{version}/training.json") == expected

    for version in range(1, 5):
        await storage.delete(BUCKET, f"f/v{version}/training.json")

    assert await object_keys(storage) == ["f/v5/training.json"]
    # Deleting an object leaves the segments it shared (S3 composites) to the clean-up.
    segments = set(await storage.list_keys(BUCKET)) - {"f/v5/training.json"}
    assert segments >= await storage.segments_of(BUCKET, "f/v5/training.json")
    assert await storage.size(BUCKET, "f/v5/training.json") == len(expected)
    assert await read_all(storage, BUCKET, "f/v5/training.json") == expected
    for start, end in [(0, 1), (LARGE - 5, LARGE + 5), (len(expected) - 4, len(expected))]:
        got = b"".join(await collect(storage.get_range(BUCKET, "f/v5/training.json", start, end)))
        assert got == expected[start:end]
    assert await pending_in(storage) == []


async def test_compose_overwrite_replaces_a_composed_object(storage: Storage) -> None:
    await storage.put(BUCKET, "src", iter_bytes(payload(LARGE, seed=7)))
    await storage.compose(BUCKET, "obj", [b"a", CopyRange("src", 0, LARGE), b"z"])

    await storage.put(BUCKET, "obj", iter_bytes(b"plain now"))

    assert await read_all(storage, BUCKET, "obj") == b"plain now"
    assert await object_keys(storage) == ["obj", "src"]
    assert await storage.segments_of(BUCKET, "obj") == frozenset()
    assert await pending_in(storage) == []


async def test_compose_rejects_bad_parts_before_writing_anything(storage: Storage) -> None:
    await storage.put(BUCKET, "src", iter_bytes(payload(100)))
    source = Untouched()

    with pytest.raises(InvalidKey):
        await storage.compose(BUCKET, "dst", [source, CopyRange("../escape", 0, 1)])
    with pytest.raises(InvalidKey):
        await storage.compose(BUCKET, "dst", [source, CopyRange("src", 0, 1, bucket="other")])
    with pytest.raises(ValueError):
        await storage.compose(BUCKET, "dst", [source, CopyRange("src", 5, 4)])
    with pytest.raises(TypeError):
        await storage.compose(BUCKET, "dst", [source, "text"])  # type: ignore[list-item]

    assert not source.started
    assert await storage.list_keys(BUCKET) == ["src"]


async def test_compose_of_a_missing_source_or_a_range_past_its_end_fails_cleanly(
    storage: Storage,
) -> None:
    await storage.put(BUCKET, "src", iter_bytes(payload(LARGE)))
    await storage.put(BUCKET, "dst", iter_bytes(b"previous"))

    with pytest.raises(ObjectNotFound):
        await storage.compose(BUCKET, "dst", [b"x", CopyRange("missing", 0, 10)])
    with pytest.raises(ObjectNotFound):
        await storage.compose(BUCKET, "dst", [CopyRange("missing", 0, LARGE)])
    with pytest.raises(ValueError):
        await storage.compose(BUCKET, "dst", [b"x", CopyRange("src", 10, LARGE + 1)])
    with pytest.raises(ValueError):
        await storage.compose(BUCKET, "dst", [CopyRange("src", 0, LARGE + 1)])

    assert await read_all(storage, BUCKET, "dst") == b"previous"
    assert await storage.list_keys(BUCKET) == ["dst", "src"]
    assert await pending_in(storage) == []


async def test_failed_compose_after_a_large_range_keeps_the_previous_object(
    storage: Storage,
) -> None:
    await storage.put(BUCKET, "src", iter_bytes(payload(LARGE, seed=8)))
    await storage.compose(BUCKET, "dst", [b"v1", CopyRange("src", 0, LARGE)])
    previous = await read_all(storage, BUCKET, "dst")

    with pytest.raises(Boom):
        await storage.compose(
            BUCKET, "dst", [b"v2", CopyRange("dst", 2, LARGE + 2), failing_after(payload(100))]
        )

    assert await read_all(storage, BUCKET, "dst") == previous
    assert await object_keys(storage) == ["dst", "src"]
    assert await pending_in(storage) == []


async def test_a_composed_object_copied_from_itself_reads_back(storage: Storage) -> None:
    original = payload(LARGE, seed=9)
    await storage.compose(BUCKET, "obj", [b"<", iter_bytes(original), b">"])
    await storage.compose(BUCKET, "obj", [b"[", CopyRange("obj", 0, LARGE + 2), b"]"])

    assert await read_all(storage, BUCKET, "obj") == b"[<" + original + b">]"
    assert await pending_in(storage) == []


# -- compose_many: a version's objects at once ----------------------------------------------

# Four "formats" per source, like a conversation's pieces object: each object takes one of them
# from every source.
FORMATS = 4


async def put_sources(storage: Storage, count: int) -> list[tuple[str, bytes, list[int]]]:
    """`count` sources in the conversation bucket: (key, bytes, where each format starts)."""
    sources = []
    for n in range(count):
        data = payload(4000 + 97 * n, seed=100 + n)
        key = f"c{n}/pieces"
        await storage.put(CONVERSATION_BUCKET, key, iter_bytes(data))
        cuts = [0, 1000 + n, 2000 + 2 * n, 3000 + 3 * n, len(data)]
        sources.append((key, data, cuts))
    return sources


def format_range(source: tuple[str, bytes, list[int]], kind: int) -> CopyRange:
    key, _, cuts = source
    return CopyRange(key, cuts[kind], cuts[kind + 1], bucket=CONVERSATION_BUCKET)


def format_bytes(source: tuple[str, bytes, list[int]], kind: int) -> bytes:
    _, data, cuts = source
    return data[cuts[kind] : cuts[kind + 1]]


async def test_compose_many_writes_each_object_as_its_parts_say(storage: Storage) -> None:
    sources = await put_sources(storage, 12)
    streamed_tail = payload(CHUNK_SIZE + 3, seed=5)
    objects: dict[str, list[Part]] = {
        "f/v1/training.json": [b"{head}", *(format_range(s, 0) for s in sources), b"{foot}"],
        "f/v1/training.jsonl": [b"jsonl-head\n", *(format_range(s, 1) for s in sources)],
        # Its sources in the opposite order: the objects' items do not line up.
        "f/v1/openai.jsonl": [format_range(s, 2) for s in reversed(sources)],
        "f/v1/hf.jsonl": [*(format_range(s, 3) for s in sources), streamed(streamed_tail)],
        "f/v1/empty": [],
    }

    sizes = await storage.compose_many(BUCKET, objects)

    expected = {
        "f/v1/training.json": b"{head}" + b"".join(format_bytes(s, 0) for s in sources) + b"{foot}",
        "f/v1/training.jsonl": b"jsonl-head\n" + b"".join(format_bytes(s, 1) for s in sources),
        "f/v1/openai.jsonl": b"".join(format_bytes(s, 2) for s in reversed(sources)),
        "f/v1/hf.jsonl": b"".join(format_bytes(s, 3) for s in sources) + streamed_tail,
        "f/v1/empty": b"",
    }
    assert sizes == {key: len(data) for key, data in expected.items()}
    for key, data in expected.items():
        assert await read_all(storage, BUCKET, key) == data, key
    assert await pending_in(storage) == []


def version_of(sources: list[tuple[str, bytes, list[int]]]) -> dict[str, list[Part]]:
    """A version's four objects, of bytes and ranges only (written in one thread call)."""
    return {
        f"f/v1/format{kind}": [b"head", *(format_range(s, kind) for s in sources)]
        for kind in range(FORMATS)
    }


def version_bytes(sources: list[tuple[str, bytes, list[int]]]) -> dict[str, bytes]:
    return {
        f"f/v1/format{kind}": b"head" + b"".join(format_bytes(s, kind) for s in sources)
        for kind in range(FORMATS)
    }


async def test_compose_many_of_bytes_and_ranges_only(storage: Storage) -> None:
    sources = await put_sources(storage, 9)

    sizes = await storage.compose_many(BUCKET, version_of(sources))

    expected = version_bytes(sources)
    assert sizes == {key: len(data) for key, data in expected.items()}
    for key, data in expected.items():
        assert await read_all(storage, BUCKET, key) == data, key
    assert await pending_in(storage) == []


def _compose_a_version(root: Path) -> None:
    """In a forked child: what the parent did, again (its sync threads are not in the child)."""

    async def compose() -> None:
        storage = LocalStorage(root)
        sources = await put_sources(storage, 3)
        await storage.compose_many(BUCKET, version_of(sources))
        for key, data in version_bytes(sources).items():
            assert await read_all(storage, BUCKET, key) == data, key

    asyncio.run(compose())


async def test_local_compose_many_in_a_process_forked_after_one(tmp_path: Path) -> None:
    """The threads that sync a version's files belong to the process that started them: a
    child forked after a compose (a worker of a pre-forking server) starts its own."""
    parent = LocalStorage(tmp_path / "parent")
    await parent.compose_many(BUCKET, version_of(await put_sources(parent, 3)))

    child = multiprocessing.get_context("fork").Process(
        target=_compose_a_version, args=(tmp_path / "child",)
    )
    child.start()
    await asyncio.to_thread(child.join, 30)
    if child.exitcode is None:
        child.kill()
    assert child.exitcode == 0


async def test_compose_many_with_more_sources_than_are_kept_open(storage: Storage) -> None:
    """Local storage keeps a bounded number of sources open in its one pass; objects that
    take them in different orders make it close and open some again."""
    sources = await put_sources(storage, 40)
    shuffled = random.Random(7).sample(sources, len(sources))
    objects: dict[str, list[Part]] = {
        "a": [format_range(s, 0) for s in sources],
        "b": [format_range(s, 1) for s in reversed(sources)],
        "c": [format_range(s, 2) for s in shuffled],
    }

    await storage.compose_many(BUCKET, objects)

    assert await read_all(storage, BUCKET, "a") == b"".join(format_bytes(s, 0) for s in sources)
    assert await read_all(storage, BUCKET, "b") == b"".join(
        format_bytes(s, 1) for s in reversed(sources)
    )
    assert await read_all(storage, BUCKET, "c") == b"".join(format_bytes(s, 2) for s in shuffled)


async def test_compose_many_rejects_a_bad_part_in_any_object_before_writing_anything(
    storage: Storage,
) -> None:
    sources = await put_sources(storage, 3)
    first = Untouched()

    with pytest.raises(InvalidKey):
        await storage.compose_many(
            BUCKET,
            {
                "f/v1/one": [first, *(format_range(s, 0) for s in sources)],
                "f/v1/two": [format_range(sources[0], 1), CopyRange("../escape", 0, 1)],
            },
        )
    with pytest.raises(InvalidKey):
        await storage.compose_many(BUCKET, {"f/v1/one": [b"x"], "../out": [b"y"]})

    assert not first.started
    assert await storage.list_keys(BUCKET) == []
    assert await pending_in(storage) == []


async def test_compose_many_failing_in_one_object_leaves_nothing_once_discarded(
    storage: Storage,
) -> None:
    """A source missing from the third object: whatever the backend stored of the others, the
    caller's discard of every key leaves the bucket as it was."""
    sources = await put_sources(storage, 5)
    await storage.put(BUCKET, "kept", iter_bytes(b"unrelated"))
    objects: dict[str, list[Part]] = {
        f"f/v1/{kind}": [b"head", *(format_range(s, kind) for s in sources)]
        for kind in range(FORMATS)
    }
    objects["f/v1/2"] = [
        *objects["f/v1/2"],
        CopyRange("c99/missing", 0, 10, bucket=CONVERSATION_BUCKET),
    ]

    with pytest.raises(ObjectNotFound):
        await storage.compose_many(BUCKET, objects)
    for key in objects:
        await storage.discard(BUCKET, key)

    assert await object_keys(storage) == ["kept"]
    assert await pending_in(storage) == []


async def test_local_compose_many_failing_in_one_object_stores_none(local: LocalStorage) -> None:
    """Local storage commits only once every object is written: a failure in any leaves none."""
    sources = await put_sources(local, 5)
    objects: dict[str, list[Part]] = {
        f"f/v1/{kind}": [b"head", *(format_range(s, kind) for s in sources)]
        for kind in range(FORMATS)
    }
    objects["f/v1/3"] = [
        *objects["f/v1/3"],
        CopyRange("c0/pieces", 0, 10**6, bucket=CONVERSATION_BUCKET),
    ]

    with pytest.raises(ValueError, match="exceeds the size"):
        await local.compose_many(BUCKET, objects)

    assert await local.list_keys(BUCKET) == []
    assert await pending_in(local) == []


# -- failures -------------------------------------------------------------------------------


async def test_failed_overwrite_keeps_previous_object(storage: Storage) -> None:
    previous = payload(BIG, seed=1)
    await storage.put(BUCKET, "obj", iter_bytes(previous))

    with pytest.raises(Boom):
        await storage.put(BUCKET, "obj", failing_after(payload(2 * CHUNK_SIZE, seed=2)))

    assert await storage.size(BUCKET, "obj") == len(previous)
    assert await read_all(storage, BUCKET, "obj") == previous


async def test_failed_first_put_leaves_no_object(storage: Storage) -> None:
    with pytest.raises(Boom):
        await storage.put(BUCKET, "never", failing_after(payload(CHUNK_SIZE + 1)))

    assert not await storage.exists(BUCKET, "never")
    with pytest.raises(ObjectNotFound):
        await collect(storage.get(BUCKET, "never"))


async def test_put_rejects_non_bytes_chunks(storage: Storage) -> None:
    async def text() -> AsyncIterator[bytes]:
        yield "not bytes"  # type: ignore[misc]

    with pytest.raises(TypeError):
        await storage.put(BUCKET, "typed", text())
    assert not await storage.exists(BUCKET, "typed")


async def test_delete_is_idempotent(storage: Storage) -> None:
    await storage.put(BUCKET, "gone", iter_bytes(b"x"))

    await storage.delete(BUCKET, "gone")
    await storage.delete(BUCKET, "gone")
    await storage.delete(BUCKET, "never-existed/at-all")

    assert not await storage.exists(BUCKET, "gone")


async def test_missing_object_errors(storage: Storage) -> None:
    assert not await storage.exists(BUCKET, "missing")
    with pytest.raises(ObjectNotFound):
        await storage.size(BUCKET, "missing")
    with pytest.raises(ObjectNotFound):
        await collect(storage.get(BUCKET, "missing"))
    with pytest.raises(ObjectNotFound):
        await collect(storage.get_range(BUCKET, "missing", 0, 0))
    with pytest.raises(ObjectNotFound):
        await collect(storage.get(BUCKET, "missing-dir/missing"))


async def test_check_passes_on_fresh_storage(storage: Storage) -> None:
    await storage.check()


# -- listing, pending writes, health probe --------------------------------------------------

# Past one S3 part, so the write is a multipart upload (locally, any size makes a temp file).
IN_PROGRESS_SIZE = PART_SIZE + 1


async def object_keys(storage: Storage, bucket: str = BUCKET) -> list[str]:
    """The listed keys but the segments that objects may share (S3 composites' segments,
    which the clean-up removes once no referenced object names them)."""
    return [key for key in await storage.list_keys(bucket) if not is_segment_key(key)]


async def objects_in(storage: Storage, bucket: str = BUCKET) -> list[StoredObject]:
    return [found async for found in storage.list_objects(bucket)]


async def pending_in(storage: Storage, bucket: str = BUCKET) -> list[PendingWrite]:
    return [pending async for pending in storage.list_pending_writes(bucket)]


async def start_write(storage: Storage, key: str) -> tuple[asyncio.Task[int], asyncio.Event]:
    """A put that has stored its first part and waits for `release` to finish."""
    release = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield payload(IN_PROGRESS_SIZE)
        await release.wait()

    return asyncio.create_task(storage.put(BUCKET, key, stalled())), release


async def wait_for_pending(storage: Storage) -> list[PendingWrite]:
    async with asyncio.timeout(30):
        while not (found := await pending_in(storage)):
            await asyncio.sleep(0.02)
    return found


async def test_list_objects_gives_every_object_with_its_size(storage: Storage) -> None:
    await storage.put(BUCKET, "f/v1/one", iter_bytes(b"1"))
    await storage.put(BUCKET, "f/v1/two", iter_bytes(payload(CHUNK_SIZE + 3)))
    await storage.put(CONVERSATION_BUCKET, "elsewhere", iter_bytes(b"xy"))

    listed = await objects_in(storage)

    assert sorted((o.bucket, o.key, o.size) for o in listed) == [
        (BUCKET, "f/v1/one", 1),
        (BUCKET, "f/v1/two", CHUNK_SIZE + 3),
    ]
    assert all(o.modified_at.tzinfo is not None for o in listed)
    assert [(o.key, o.size) for o in await objects_in(storage, CONVERSATION_BUCKET)] == [
        ("elsewhere", 2)
    ]
    assert await storage.list_keys(BUCKET) == ["f/v1/one", "f/v1/two"]


async def test_a_write_in_progress_is_pending_and_not_an_object(storage: Storage) -> None:
    await storage.put(BUCKET, "f/v1/old", iter_bytes(b"old"))
    task, release = await start_write(storage, "f/v2/training.json")
    try:
        [pending] = await wait_for_pending(storage)

        assert (pending.bucket, pending.key) == (BUCKET, "f/v2/training.json")
        assert pending.started_at.tzinfo is not None
        assert [o.key for o in await objects_in(storage)] == ["f/v1/old"]
        assert await pending_in(storage, CONVERSATION_BUCKET) == []
    finally:
        release.set()
    assert await task == IN_PROGRESS_SIZE

    assert await pending_in(storage) == []
    assert sorted(o.key for o in await objects_in(storage)) == ["f/v1/old", "f/v2/training.json"]


async def test_aborting_a_pending_write_discards_it_and_fails_its_writer(storage: Storage) -> None:
    task, release = await start_write(storage, "f/v1/training.jsonl")
    [pending] = await wait_for_pending(storage)

    await storage.abort_pending_write(pending)
    await storage.abort_pending_write(pending)  # gone already: not an error

    assert await pending_in(storage) == []
    release.set()
    with pytest.raises(StorageError):
        await task
    assert not await storage.exists(BUCKET, "f/v1/training.jsonl")
    assert await objects_in(storage) == []
    assert await pending_in(storage) == []


async def test_probe_passes_and_leaves_nothing_behind(storage: Storage) -> None:
    await storage.probe(0)
    await storage.probe(0)

    for bucket in BUCKETS:
        assert await objects_in(storage, bucket) == []
        assert await pending_in(storage, bucket) == []


# -- the fault injector around a real backend (for crash tests) -----------------------------


async def test_injected_fault_fails_the_nth_call_only(storage: Storage) -> None:
    faulty = FaultyStorage(storage)
    faulty.faults.fail("compose", 2)

    assert await faulty.compose(BUCKET, "first", [b"1"]) == 1
    with pytest.raises(InjectedFailure):
        await faulty.compose(BUCKET, "second", [b"2"])
    assert await faulty.compose(BUCKET, "third", [b"3"]) == 1

    assert await storage.list_keys(BUCKET) == ["first", "third"]


async def test_injected_crash_after_a_call_fails_everything_after_it(storage: Storage) -> None:
    faulty = FaultyStorage(storage)
    faulty.faults.fail("put", after=True, crash=True)

    with pytest.raises(InjectedFailure):
        await faulty.put(BUCKET, "landed", iter_bytes(b"x"))
    with pytest.raises(InjectedFailure):
        await faulty.delete(BUCKET, "landed")  # the caller's clean-up never reaches the store
    with pytest.raises(InjectedFailure):
        await collect(faulty.get(BUCKET, "landed"))

    assert await read_all(storage, BUCKET, "landed") == b"x"


# -- keys that must never reach the file system ---------------------------------------------

BAD_KEYS = [
    "..",
    ".",
    "../x",
    "a/../../x",
    "a/./b",
    "/etc/passwd",
    "a\x00b",
    "a\\..\\b",
    "..\\x",
    "",
    "a//b",
    "./a",
    "a/",
    "/",
    "a\nb",
    "~",
    "a b",
    "x" * 1025,
    "a/" * 512 + "a",
    "é",
]

BAD_BUCKETS = [
    "../training-files",
    "training-files/..",
    "training-files/x",
    "/training-files",
    "Training-Files",
    "",
    "..",
    ".",
]


def short_id(value: str) -> str:
    return repr(value) if len(value) < 30 else f"{value[:10]!r}...({len(value)} chars)"


class Untouched:
    """A put source that records whether anyone started reading it."""

    def __init__(self) -> None:
        self.started = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        self.started = True
        return iter_bytes(b"escaped")


async def assert_every_operation_rejects(storage: Storage, bucket: str, key: str) -> None:
    source = Untouched()
    with pytest.raises(InvalidKey):
        await storage.put(bucket, key, source)
    assert not source.started
    with pytest.raises(InvalidKey):
        await collect(storage.get(bucket, key))
    with pytest.raises(InvalidKey):
        await collect(storage.get_range(bucket, key, 0, 0))
    with pytest.raises(InvalidKey):
        await storage.delete(bucket, key)
    with pytest.raises(InvalidKey):
        await storage.exists(bucket, key)
    with pytest.raises(InvalidKey):
        await storage.size(bucket, key)


@pytest.mark.parametrize("key", BAD_KEYS, ids=short_id)
async def test_escaping_keys_are_rejected(storage: Storage, tmp_path: Path, key: str) -> None:
    await storage.put(BUCKET, "x", iter_bytes(b"inside"))
    before = files_under(tmp_path.parent)

    await assert_every_operation_rejects(storage, BUCKET, key)

    assert files_under(tmp_path.parent) == before
    assert await read_all(storage, BUCKET, "x") == b"inside"


@pytest.mark.parametrize("bucket", BAD_BUCKETS, ids=short_id)
async def test_unknown_buckets_are_rejected(storage: Storage, tmp_path: Path, bucket: str) -> None:
    before = files_under(tmp_path.parent)

    await assert_every_operation_rejects(storage, bucket, "x")

    assert files_under(tmp_path.parent) == before


# -- LocalStorage ---------------------------------------------------------------------------


async def test_local_creates_buckets_and_reports_url(tmp_path: Path) -> None:
    root = tmp_path / "nested" / "root"

    backend = LocalStorage(root)

    assert backend.url == f"file://{root.resolve()}"
    assert {p.name for p in root.iterdir()} == set(BUCKETS)
    assert all((root / bucket).is_dir() for bucket in BUCKETS)


async def test_local_stores_keys_as_paths_below_the_bucket(local: LocalStorage) -> None:
    await local.put(BUCKET, "user-1/conv.json", iter_bytes(b"{}"))

    assert (local.root / BUCKET / "user-1" / "conv.json").read_bytes() == b"{}"


async def test_local_failed_puts_leave_no_temp_files(local: LocalStorage) -> None:
    await local.put(BUCKET, "dir/obj", iter_bytes(b"previous"))
    before = files_under(local.root)

    with pytest.raises(Boom):
        await local.put(BUCKET, "dir/obj", failing_after(payload(2 * CHUNK_SIZE)))
    with pytest.raises(Boom):
        await local.put(BUCKET, "dir/new", failing_after(payload(10)))

    assert files_under(local.root) == before
    assert (local.root / BUCKET / "dir" / "obj").read_bytes() == b"previous"


async def test_local_put_in_progress_is_invisible(local: LocalStorage) -> None:
    await local.put(BUCKET, "obj", iter_bytes(b"old"))
    first_sent, release = asyncio.Event(), asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"new-"
        first_sent.set()
        await release.wait()
        yield b"content"

    task = asyncio.create_task(local.put(BUCKET, "obj", slow()))
    await first_sent.wait()

    temps = [p.name for p in (local.root / BUCKET).iterdir() if p.name != "obj"]
    assert len(temps) == 1
    with pytest.raises(InvalidKey):
        validate_key(temps[0])
    assert await read_all(local, BUCKET, "obj") == b"old"

    release.set()
    assert await task == len(b"new-content")
    assert [p.name for p in (local.root / BUCKET).iterdir()] == ["obj"]
    assert await read_all(local, BUCKET, "obj") == b"new-content"


async def test_local_cancelled_put_leaves_previous_object_and_no_temp_files(
    local: LocalStorage,
) -> None:
    await local.put(BUCKET, "obj", iter_bytes(b"previous"))
    started = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield payload(CHUNK_SIZE)
            started.set()

    task = asyncio.create_task(local.put(BUCKET, "obj", endless()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert [p.name for p in (local.root / BUCKET).iterdir()] == ["obj"]
    assert await read_all(local, BUCKET, "obj") == b"previous"


async def test_local_reader_keeps_seeing_the_object_it_opened(local: LocalStorage) -> None:
    old = payload(BIG, seed=1)
    await local.put(BUCKET, "obj", iter_bytes(old))

    stream = local.get(BUCKET, "obj")
    first = await anext(stream)
    await local.put(BUCKET, "obj", iter_bytes(payload(BIG, seed=2)))
    rest = await collect(stream)

    assert first + b"".join(rest) == old


async def test_local_rejects_segments_longer_than_a_file_name(local: LocalStorage) -> None:
    with pytest.raises(InvalidKey):
        await local.put(BUCKET, "a" * 256, iter_bytes(b"x"))
    with pytest.raises(InvalidKey):
        await local.exists(BUCKET, "ok/" + "b" * 256)


async def test_local_put_under_an_existing_object_fails_cleanly(local: LocalStorage) -> None:
    await local.put(BUCKET, "a", iter_bytes(b"file"))

    with pytest.raises(StorageError):
        await local.put(BUCKET, "a/b", iter_bytes(b"x"))

    assert await read_all(local, BUCKET, "a") == b"file"
    assert not await local.exists(BUCKET, "a/b")


async def test_local_check_fails_when_a_bucket_is_missing(local: LocalStorage) -> None:
    (local.root / CONVERSATION_BUCKET).rmdir()

    with pytest.raises(StorageError, match="unreachable"):
        await local.check()


async def test_local_check_fails_when_a_bucket_is_a_file(local: LocalStorage) -> None:
    (local.root / TRAINING_BUCKET).rmdir()
    (local.root / TRAINING_BUCKET).write_bytes(b"")

    with pytest.raises(StorageError, match="not a directory"):
        await local.check()


async def test_local_probe_reports_too_little_free_space_as_full(local: LocalStorage) -> None:
    free = shutil.disk_usage(local.root).free

    with pytest.raises(StorageError) as caught:
        await local.probe(free + 1024**4)  # a TiB more than there is

    assert caught.value.reason == "full"
    assert "bytes free" in str(caught.value)
    await local.probe(0)


async def test_local_probe_reports_a_bucket_replaced_by_a_file_as_unwritable(
    local: LocalStorage,
) -> None:
    shutil.rmtree(local.root / TRAINING_BUCKET)
    (local.root / TRAINING_BUCKET).write_bytes(b"")

    with pytest.raises(StorageError, match="not a directory") as caught:
        await local.probe(0)
    assert caught.value.reason == "unwritable"
    for key in ("flat", "f/v1/training.json"):
        with pytest.raises(StorageError) as caught:
            await local.put(TRAINING_BUCKET, key, iter_bytes(b"x"))
        assert caught.value.reason == "unwritable"


async def test_local_probe_reports_a_missing_bucket_as_unreachable(local: LocalStorage) -> None:
    (local.root / CONVERSATION_BUCKET).rmdir()

    with pytest.raises(StorageError) as caught:
        await local.probe(0)
    assert caught.value.reason == "unreachable"


async def test_local_pending_writes_are_the_temp_files_left_beside_their_targets(
    local: LocalStorage,
) -> None:
    # What a writer killed mid-put leaves: its temp file (named as _AtomicWriter names them).
    directory = local.root / BUCKET / "f" / "v3"
    directory.mkdir(parents=True)
    (directory / ".training.json.0123456789abcdef~tmp").write_bytes(b"partial")
    (local.root / BUCKET / "f" / "v3" / "training.jsonl").write_bytes(b"done")

    [pending] = await pending_in(local)

    assert (pending.key, pending.upload_id, pending.size) == (
        "f/v3/training.json",
        "f/v3/.training.json.0123456789abcdef~tmp",
        len(b"partial"),
    )
    assert [o.key for o in await objects_in(local)] == ["f/v3/training.jsonl"]
    await local.abort_pending_write(pending)
    assert sorted(p.name for p in directory.iterdir()) == ["training.jsonl"]


@pytest.mark.parametrize(
    "upload_id", ["f/v3/training.json", "../outside~tmp", "f/../../x~tmp", "/etc/x~tmp", ""]
)
async def test_local_abort_refuses_anything_but_a_temp_file_in_the_bucket(
    local: LocalStorage, tmp_path: Path, upload_id: str
) -> None:
    await local.put(BUCKET, "f/v3/training.json", iter_bytes(b"committed"))
    (tmp_path / "outside~tmp").write_bytes(b"not ours")

    with pytest.raises(InvalidKey):
        await local.abort_pending_write(PendingWrite(BUCKET, "x", upload_id, datetime.now(UTC)))

    assert await read_all(local, BUCKET, "f/v3/training.json") == b"committed"
    assert (tmp_path / "outside~tmp").read_bytes() == b"not ours"


async def test_local_abort_does_not_follow_a_symlinked_directory(
    local: LocalStorage, outside: Path
) -> None:
    (outside / "victim~tmp").write_bytes(b"outside")
    (local.root / BUCKET / "link").symlink_to(outside)

    with pytest.raises(InvalidKey):
        await local.abort_pending_write(
            PendingWrite(BUCKET, "link/victim", "link/victim~tmp", datetime.now(UTC))
        )
    assert (outside / "victim~tmp").read_bytes() == b"outside"
    assert await pending_in(local) == []  # listing does not follow it either


async def test_local_full_disk_fails_writes_as_full_and_leaves_nothing(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", 1024 * 1024) as disk:
        local = LocalStorage(disk)

        with pytest.raises(StorageError) as caught:
            await local.put(BUCKET, "f/v1/training.json", iter_bytes(payload(2 * 1024 * 1024)))
        assert caught.value.reason == "full"
        assert await pending_in(local) == []
        assert await objects_in(local) == []

        fill(disk)
        with pytest.raises(StorageError) as caught:
            await local.probe(0)  # statvfs may round; the write itself fails for real
        assert caught.value.reason == "full"


async def test_local_read_only_file_system_is_unwritable(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", 1024 * 1024) as disk:
        local = LocalStorage(disk)
        await local.put(BUCKET, "kept", iter_bytes(b"kept"))
        remount_read_only(disk)

        with pytest.raises(StorageError) as caught:
            await local.put(BUCKET, "new", iter_bytes(b"x"))
        assert caught.value.reason == "unwritable"
        with pytest.raises(StorageError) as caught:
            await local.probe(0)
        assert caught.value.reason == "unwritable"
        assert await read_all(local, BUCKET, "kept") == b"kept"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only directories")
async def test_local_check_fails_when_a_bucket_is_read_only(local: LocalStorage) -> None:
    bucket_dir = local.root / TRAINING_BUCKET
    bucket_dir.chmod(0o555)
    try:
        with pytest.raises(StorageError, match="not writable"):
            await local.check()
    finally:
        bucket_dir.chmod(0o755)


# -- LocalStorage and symlinks planted in a bucket ------------------------------------------

REJECTED = (InvalidKey, StorageError)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "secret").write_bytes(b"secret")
    return directory


async def test_local_file_symlink_to_outside_is_not_followed(
    local: LocalStorage, outside: Path
) -> None:
    (local.root / BUCKET / "link").symlink_to(outside / "secret")

    with pytest.raises(REJECTED):
        await collect(local.get(BUCKET, "link"))
    with pytest.raises(REJECTED):
        await collect(local.get_range(BUCKET, "link", 0, 1))
    with pytest.raises(REJECTED):
        await local.size(BUCKET, "link")
    with pytest.raises(REJECTED):
        await local.exists(BUCKET, "link")
    with pytest.raises(REJECTED):
        await local.put(BUCKET, "link", iter_bytes(b"overwritten"))
    with pytest.raises(REJECTED):
        await local.delete(BUCKET, "link")

    assert (outside / "secret").read_bytes() == b"secret"
    assert files_under(outside) == {Path("secret")}


async def test_local_directory_symlink_to_outside_is_not_followed(
    local: LocalStorage, outside: Path
) -> None:
    (local.root / BUCKET / "dir").symlink_to(outside)

    with pytest.raises(REJECTED):
        await collect(local.get(BUCKET, "dir/secret"))
    with pytest.raises(REJECTED):
        await local.put(BUCKET, "dir/new", iter_bytes(b"planted"))
    with pytest.raises(REJECTED):
        await local.put(BUCKET, "dir/sub/new", iter_bytes(b"planted"))
    with pytest.raises(REJECTED):
        await local.delete(BUCKET, "dir/secret")

    assert files_under(outside) == {Path("secret")}


async def test_local_bucket_replaced_by_a_symlink_is_not_followed(
    local: LocalStorage, outside: Path
) -> None:
    """The bucket directory itself swapped for a symlink after start-up: still refused."""
    bucket = local.root / BUCKET
    bucket.rename(local.root / "moved")
    bucket.symlink_to(outside)

    with pytest.raises(REJECTED):
        await collect(local.get(BUCKET, "secret"))
    with pytest.raises(REJECTED):
        await local.put(BUCKET, "new", iter_bytes(b"planted"))

    assert files_under(outside) == {Path("secret")}


async def test_local_compose_does_not_copy_from_a_symlinked_source(
    local: LocalStorage, outside: Path
) -> None:
    """Sources are checked once per directory in a compose's pass; a symlink at the object,
    on a directory, or in place of the bucket is still refused, and nothing is written."""
    await local.put(CONVERSATION_BUCKET, "c1/pieces", iter_bytes(b"genuine"))
    (local.root / CONVERSATION_BUCKET / "c1" / "link").symlink_to(outside / "secret")
    (local.root / CONVERSATION_BUCKET / "dir").symlink_to(outside)

    for key in ("c1/link", "dir/secret"):
        with pytest.raises(REJECTED):
            await local.compose_many(
                BUCKET,
                {
                    "f/v1/a": [CopyRange("c1/pieces", 0, 7, bucket=CONVERSATION_BUCKET)],
                    "f/v1/b": [CopyRange(key, 0, 6, bucket=CONVERSATION_BUCKET)],
                },
            )
    bucket = local.root / CONVERSATION_BUCKET
    bucket.rename(local.root / "moved")
    bucket.symlink_to(outside)
    with pytest.raises(REJECTED):
        await local.compose(
            BUCKET, "f/v1/a", [CopyRange("secret", 0, 6, bucket=CONVERSATION_BUCKET)]
        )

    assert await local.list_keys(BUCKET) == []
    assert await pending_in(local) == []
    assert files_under(outside) == {Path("secret")}


async def test_local_dangling_symlink_is_not_written_through(
    local: LocalStorage, outside: Path
) -> None:
    (local.root / BUCKET / "dangling").symlink_to(outside / "created")

    with pytest.raises(REJECTED):
        await local.put(BUCKET, "dangling", iter_bytes(b"planted"))

    assert not (outside / "created").exists()
    assert (local.root / BUCKET / "dangling").is_symlink()


async def test_local_symlink_loop_is_rejected(local: LocalStorage) -> None:
    (local.root / BUCKET / "loop").symlink_to("loop")

    with pytest.raises(REJECTED):
        await collect(local.get(BUCKET, "loop"))
    with pytest.raises(REJECTED):
        await local.put(BUCKET, "loop/x", iter_bytes(b"x"))
    with pytest.raises(REJECTED):
        await local.exists(BUCKET, "loop/x")


async def test_local_fifo_in_a_bucket_is_not_an_object(local: LocalStorage) -> None:
    os.mkfifo(local.root / BUCKET / "fifo")

    assert not await local.exists(BUCKET, "fifo")
    with pytest.raises(ObjectNotFound):
        await asyncio.wait_for(collect(local.get(BUCKET, "fifo")), timeout=5)
