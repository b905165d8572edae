"""Composite objects of local storage, on real directories: an add links the old body's files
instead of copying them, and every operation sees a composite as the object it stands for.

The contract (test_storage.py) runs over composites too; these tests look at the file system:
inodes and link counts, bytes on disk, descriptors, what a crash or a concurrent delete leaves.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from graphql_api.storage.base import (
    CHUNK_SIZE,
    CONVERSATION_BUCKET,
    TRAINING_BUCKET,
    CopyRange,
    ObjectNotFound,
    PendingWrite,
    StorageError,
    iter_bytes,
    read_all,
)
from graphql_api.storage.local import LocalStorage
from graphql_api.storage.local_manifest import MAGIC

from .abandoned_composes import WRITTEN, abandon_compose
from .disks import tmpfs
from .test_storage import Boom, collect, failing_after, payload

BUCKET = TRAINING_BUCKET
MiB = 1024 * 1024


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[LocalStorage]:
    backend = LocalStorage(tmp_path / "storage")
    yield backend
    await backend.close()


@pytest.fixture
async def tiny(tmp_path: Path) -> AsyncIterator[LocalStorage]:
    """Links every range, however small: composites of tiny segments."""
    backend = LocalStorage(tmp_path / "storage", link_min_bytes=1)
    yield backend
    await backend.close()


# -- looking at the file system ---------------------------------------------------------------


def path_of(storage: LocalStorage, key: str, bucket: str = BUCKET) -> Path:
    return storage.root / bucket / key


def manifest_of(storage: LocalStorage, key: str) -> dict[str, object] | None:
    """The manifest stored at `key`, or None when the object is a plain file."""
    raw = path_of(storage, key).read_bytes()
    if not raw.startswith(MAGIC):
        return None
    manifest: dict[str, object] = json.loads(raw[len(MAGIC) :])
    return manifest


def segment_files(storage: LocalStorage, key: str) -> list[Path]:
    manifest = manifest_of(storage, key)
    assert manifest is not None, f"{key} is not a composite"
    directory = path_of(storage, key).parent / str(manifest["directory"])
    segments = manifest["segments"]
    assert isinstance(segments, list)
    return [directory / name for name, _, _ in segments]


def segment_directories(storage: LocalStorage) -> list[Path]:
    return sorted(storage.root.rglob("*~seg"))


def disk_usage(root: Path) -> int:
    """Bytes allocated to the files below `root`, each inode once (hard links share theirs)."""
    seen: set[int] = set()
    used = 0
    for path in root.rglob("*"):
        st = path.lstat()
        if path.is_file() and st.st_ino not in seen:
            seen.add(st.st_ino)
            used += st.st_blocks * 512
    return used


def files_in(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if not p.is_dir())


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def pending(storage: LocalStorage) -> list[PendingWrite]:
    return [found async for found in storage.list_pending_writes(BUCKET)]


async def add(storage: LocalStorage, version: int, new: bytes, previous: bytes) -> bytes:
    """What an add does: a new header, the previous version's body as one range, new bytes and
    the footer, as `f/v<version>/training.json`. Returns the new version's bytes."""
    header = f"<v{version}>".encode()
    old_header = len(f"<v{version - 1}>")
    await storage.compose(
        BUCKET,
        f"f/v{version}/training.json",
        [
            header,
            CopyRange(f"f/v{version - 1}/training.json", old_header, len(previous) - 1),
            iter_bytes(new),
            b"]",
        ],
    )
    return header + previous[old_header:-1] + new + b"]"


async def first_version(storage: LocalStorage, body: bytes) -> bytes:
    data = b"<v1>" + body + b"]"
    await storage.put(BUCKET, "f/v1/training.json", iter_bytes(data))
    return data


# -- an add links the old body ----------------------------------------------------------------


async def test_an_add_links_the_old_body_and_writes_only_the_new_bytes(
    local: LocalStorage,
) -> None:
    v1 = await first_version(local, payload(20 * MiB, seed=1))
    v2 = await add(local, 2, payload(2 * MiB, seed=2), v1)
    before = disk_usage(local.root)

    v3 = await add(local, 3, payload(MiB, seed=3), v2)

    grown = disk_usage(local.root) - before
    assert MiB <= grown < MiB + 64 * 1024  # the new bytes, a header, a footer, a manifest
    assert await read_all(local, BUCKET, "f/v3/training.json") == v3
    assert await local.size(BUCKET, "f/v3/training.json") == len(v3)
    # v3: its header, v1's file (linked), v2's new bytes (linked), its own new bytes.
    v1_file = path_of(local, "f/v1/training.json").stat()
    header, old, previous_new, new = [p.stat() for p in segment_files(local, "f/v3/training.json")]
    assert old.st_ino == v1_file.st_ino and v1_file.st_nlink == 3  # v1, v2's and v3's links
    v2_new = segment_files(local, "f/v2/training.json")[-1].stat()
    assert previous_new.st_ino == v2_new.st_ino and v2_new.st_nlink == 2
    assert header.st_nlink == new.st_nlink == 1
    assert new.st_size == MiB + 1  # the new bytes and the footer


async def test_each_add_costs_one_link_per_earlier_add(local: LocalStorage) -> None:
    data = await first_version(local, payload(2 * MiB, seed=4))
    for version in range(2, 8):
        data = await add(local, version, payload(MiB + version, seed=version), data)

    # A header segment, v1's body, then one segment per add.
    assert len(segment_files(local, "f/v7/training.json")) == 1 + 1 + 6
    assert await read_all(local, BUCKET, "f/v7/training.json") == data


async def test_small_ranges_are_copied_so_small_files_stay_plain(local: LocalStorage) -> None:
    v1 = await first_version(local, payload(300_000, seed=5))

    v2 = await add(local, 2, payload(200_000, seed=6), v1)

    assert manifest_of(local, "f/v2/training.json") is None
    assert path_of(local, "f/v2/training.json").read_bytes() == v2
    assert segment_directories(local) == []


async def test_a_create_from_many_small_pieces_is_one_plain_file(local: LocalStorage) -> None:
    pieces = [payload(100_000, seed=n) for n in range(80)]
    for n, piece in enumerate(pieces):
        await local.put(CONVERSATION_BUCKET, f"c{n}/p.pieces", iter_bytes(piece))
    parts: list[bytes | CopyRange] = [b"["]
    parts += [
        CopyRange(f"c{n}/p.pieces", 0, len(piece), bucket=CONVERSATION_BUCKET)
        for n, piece in enumerate(pieces)
    ]

    size = await local.compose(BUCKET, "f/v1/training.json", [*parts, b"]"])

    assert size == 2 + 80 * 100_000
    assert path_of(local, "f/v1/training.json").read_bytes() == b"[" + b"".join(pieces) + b"]"
    assert segment_directories(local) == []


# -- deleting ---------------------------------------------------------------------------------


async def test_deleting_earlier_versions_keeps_later_ones_and_deleting_all_frees_the_disk(
    local: LocalStorage,
) -> None:
    empty = disk_usage(local.root)
    data = await first_version(local, payload(3 * MiB, seed=7))
    versions = {1: data}
    for version in range(2, 6):
        data = versions[version] = await add(local, version, payload(MiB, seed=version), data)

    for version in (3, 1, 4, 2):
        await local.delete(BUCKET, f"f/v{version}/training.json")
        assert await read_all(local, BUCKET, "f/v5/training.json") == versions[5]

    assert await local.list_keys(BUCKET) == ["f/v5/training.json"]
    assert len(segment_directories(local)) == 1
    await local.delete(BUCKET, "f/v5/training.json")
    assert files_in(local.root / BUCKET) == []
    assert disk_usage(local.root) == empty
    assert await pending(local) == []


async def test_overwriting_a_composite_removes_its_segments(local: LocalStorage) -> None:
    await local.put(BUCKET, "src", iter_bytes(payload(2 * MiB)))
    await local.compose(BUCKET, "obj", [b"1", CopyRange("src", 0, 2 * MiB)])
    first = segment_directories(local)

    await local.compose(BUCKET, "obj", [b"2", CopyRange("src", 0, 2 * MiB)])
    second = segment_directories(local)
    await local.put(BUCKET, "obj", iter_bytes(b"plain"))

    assert len(first) == len(second) == 1 and first != second
    assert segment_directories(local) == []
    assert await read_all(local, BUCKET, "obj") == b"plain"


# -- reading ----------------------------------------------------------------------------------


async def tiny_composite(storage: LocalStorage) -> bytes:
    """`obj`: linked segments of 1 to 5 bytes with literal bytes between some of them."""
    sources = [payload(size + 1, seed=size) for size in range(1, 6)]
    parts: list[bytes | CopyRange] = []
    expected = b""
    for n, source in enumerate(sources):
        await storage.put(BUCKET, f"src{n}", iter_bytes(source))
        parts.append(CopyRange(f"src{n}", 1, len(source)))
        expected += source[1:]
        if n % 2:
            parts.append(b"-" * n)
            expected += b"-" * n
    await storage.compose(BUCKET, "obj", parts)
    return expected


async def assert_every_range_reads_back(storage: LocalStorage, key: str, expected: bytes) -> None:
    for start in range(len(expected) + 1):
        for end in range(start, len(expected) + 1):
            chunks = await collect(storage.get_range(BUCKET, key, start, end))
            assert b"".join(chunks) == expected[start:end], (start, end)


async def test_every_range_of_a_composite_reads_back(tiny: LocalStorage) -> None:
    expected = await tiny_composite(tiny)

    assert len(segment_files(tiny, "obj")) == 7  # 5 links, 2 literal runs
    assert await tiny.size(BUCKET, "obj") == len(expected)
    await assert_every_range_reads_back(tiny, "obj", expected)


async def test_every_range_of_a_composite_of_parts_of_a_composite_reads_back(
    tiny: LocalStorage,
) -> None:
    inner = await tiny_composite(tiny)
    size = len(inner)

    await tiny.compose(
        BUCKET, "outer", [CopyRange("obj", 3, size - 2), b"!", CopyRange("obj", 0, 5)]
    )

    expected = inner[3 : size - 2] + b"!" + inner[:5]
    await tiny.delete(BUCKET, "obj")
    await assert_every_range_reads_back(tiny, "outer", expected)


async def test_a_thousand_segments_stream_with_a_bounded_number_of_descriptors(
    tiny: LocalStorage,
) -> None:
    directory = path_of(tiny, "many", CONVERSATION_BUCKET)
    directory.mkdir()
    sources = [payload(2000 + n, seed=n) for n in range(1000)]
    for n, source in enumerate(sources):
        (directory / f"{n}.pieces").write_bytes(source)  # plain objects, as a put leaves them
    parts = [
        CopyRange(f"many/{n}.pieces", 0, len(source), bucket=CONVERSATION_BUCKET)
        for n, source in enumerate(sources)
    ]
    await tiny.compose(BUCKET, "obj", parts)
    expected = b"".join(sources)
    assert len(segment_files(tiny, "obj")) == 1000

    before = open_descriptors()
    stream = tiny.get(BUCKET, "obj")
    chunks = [await anext(stream)]
    assert open_descriptors() - before <= 2  # the segment directory and one segment
    chunks += await collect(stream)

    assert b"".join(chunks) == expected
    assert all(0 < len(chunk) <= CHUNK_SIZE for chunk in chunks)
    middle = b"".join(await collect(tiny.get_range(BUCKET, "obj", 999_000, 1_500_000)))
    assert middle == expected[999_000:1_500_000]
    assert open_descriptors() == before


async def test_listing_shows_composites_with_their_size_and_never_their_segments(
    tiny: LocalStorage,
) -> None:
    expected = await tiny_composite(tiny)

    listed = {o.key: o.size async for o in tiny.list_objects(BUCKET)}

    assert listed == {**{f"src{n}": n + 2 for n in range(5)}, "obj": len(expected)}
    assert await pending(tiny) == []


# -- the manifest's magic ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [MAGIC, MAGIC + b"more", MAGIC + payload(2 * CHUNK_SIZE), MAGIC[:-1], MAGIC[:-1] + b"?"],
    ids=["magic", "magic-and-more", "magic-and-chunks", "magic-but-one", "almost-magic"],
)
async def test_data_that_looks_like_a_manifest_round_trips(
    local: LocalStorage, data: bytes
) -> None:
    await local.put(BUCKET, "put", iter_bytes(data))
    await local.compose(BUCKET, "composed", [data[:3], iter_bytes(data[3:])])
    await local.compose(BUCKET, "copied", [CopyRange("put", 0, len(data))])

    for key in ("put", "composed", "copied"):
        assert await read_all(local, BUCKET, key) == data
        assert await local.size(BUCKET, key) == len(data)
        tail = b"".join(await collect(local.get_range(BUCKET, key, 2, len(data))))
        assert tail == data[2:]
        # Only data that starts with the whole magic needs a manifest in front of it.
        assert (manifest_of(local, key) is not None) == data.startswith(MAGIC)
    assert {o.key: o.size async for o in local.list_objects(BUCKET)} == dict.fromkeys(
        ("put", "composed", "copied"), len(data)
    )
    for key in ("put", "composed", "copied"):
        await local.delete(BUCKET, key)
    assert files_in(local.root / BUCKET) == []


# -- crashes and failures ---------------------------------------------------------------------


async def test_a_killed_compose_leaves_a_pending_write_that_abort_removes(
    local: LocalStorage,
) -> None:
    source = payload(2 * MiB, seed=8)
    await local.put(BUCKET, "f/v1/training.json", iter_bytes(source))

    await abandon_compose(local, "f/v1/training.json", "f/v2/training.json")

    [left] = await pending(local)
    assert left.key == "f/v2/training.json"
    assert left.upload_id.startswith("f/v2/.training.json.") and left.upload_id.endswith("~seg")
    assert left.size is not None and left.size >= len(source) + WRITTEN
    assert left.started_at > datetime.now(UTC).replace(year=2000)
    assert await local.list_keys(BUCKET) == ["f/v1/training.json"]
    assert not await local.exists(BUCKET, "f/v2/training.json")

    await local.abort_pending_write(left)
    await local.abort_pending_write(left)  # gone already: not an error

    assert await pending(local) == []
    assert files_in(local.root / BUCKET) == [Path("f/v1/training.json")]
    assert await read_all(local, BUCKET, "f/v1/training.json") == source


async def test_segments_without_their_manifest_are_pending_beside_the_manifest_temp_file(
    local: LocalStorage,
) -> None:
    # What a crash between syncing the segments and renaming the manifest leaves.
    await local.put(BUCKET, "f/v1/training.json", iter_bytes(b"committed"))
    version = path_of(local, "f/v2/x").parent
    version.mkdir()
    segments = version / ".training.json.0123456789abcdef~seg"
    segments.mkdir()
    (segments / "s000000").write_bytes(b"header")
    os.link(path_of(local, "f/v1/training.json"), segments / "s000001")
    (version / ".training.json.fedcba9876543210~tmp").write_bytes(MAGIC + b"{}\n")

    found = sorted(await pending(local), key=lambda p: p.upload_id)

    assert [(p.key, p.upload_id, p.size) for p in found] == [
        ("f/v2/training.json", "f/v2/.training.json.0123456789abcdef~seg", 6 + 9),
        ("f/v2/training.json", "f/v2/.training.json.fedcba9876543210~tmp", len(MAGIC) + 3),
    ]
    assert await local.list_keys(BUCKET) == ["f/v1/training.json"]
    for write in found:
        await local.abort_pending_write(write)
    assert files_in(version) == []
    assert await read_all(local, BUCKET, "f/v1/training.json") == b"committed"


async def test_abort_leaves_the_segments_of_a_committed_object_alone(
    local: LocalStorage,
) -> None:
    await local.put(BUCKET, "src", iter_bytes(payload(2 * MiB)))
    await local.compose(BUCKET, "obj", [b"x", CopyRange("src", 0, 2 * MiB)])
    [directory] = segment_directories(local)
    stale = PendingWrite(BUCKET, "obj", directory.name, datetime.now(UTC))

    await local.abort_pending_write(stale)  # listed before the writer renamed its manifest

    assert await read_all(local, BUCKET, "obj") == b"x" + payload(2 * MiB)


async def test_a_failed_or_cancelled_compose_leaves_nothing(local: LocalStorage) -> None:
    await local.put(BUCKET, "src", iter_bytes(payload(3 * MiB)))
    before = files_in(local.root)

    with pytest.raises(Boom):
        await local.compose(BUCKET, "dst", [CopyRange("src", 0, 3 * MiB), failing_after(b"x" * 9)])
    started = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield payload(CHUNK_SIZE)
            started.set()

    task = asyncio.create_task(
        local.compose(BUCKET, "dst", [b"h", CopyRange("src", 0, 3 * MiB), endless()])
    )
    await started.wait()
    assert len(segment_directories(local)) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert files_in(local.root) == before
    assert await pending(local) == []


async def test_a_live_composite_writer_is_pending_but_not_aborted(local: LocalStorage) -> None:
    await local.put(BUCKET, "src", iter_bytes(payload(2 * MiB)))
    release, asked = asyncio.Event(), asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield b"new"
        asked.set()
        await release.wait()

    task = asyncio.create_task(
        local.compose(BUCKET, "f/v2/training.json", [CopyRange("src", 0, 2 * MiB), stalled()])
    )
    await asked.wait()
    [writing] = await pending(local)
    # Its writer holds it: only a writer that is gone (in any process) leaves it abortable.
    with pytest.raises(StorageError, match="being read or written"):
        await local.abort_pending_write(writing)
    release.set()

    assert await task == 2 * MiB + 3
    assert await pending(local) == []
    assert await read_all(local, BUCKET, "f/v2/training.json") == payload(2 * MiB) + b"new"


async def test_a_full_disk_fails_a_composite_write_as_full_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    with tmpfs(tmp_path / "disk", 8 * MiB) as disk:
        local = LocalStorage(disk)
        source = payload(3 * MiB, seed=10)
        await local.put(BUCKET, "src", iter_bytes(source))
        before = files_in(disk)

        with pytest.raises(StorageError) as caught:
            await local.compose(
                BUCKET, "dst", [b"h", CopyRange("src", 0, 3 * MiB), iter_bytes(payload(9 * MiB))]
            )

        assert caught.value.reason == "full"
        assert files_in(disk) == before
        assert await read_all(local, BUCKET, "src") == source


# -- concurrent readers -----------------------------------------------------------------------


async def composite_of_chunks(storage: LocalStorage, key: str, count: int) -> bytes:
    """A composite of `count` segments of a chunk each, so readers take several reads."""
    parts: list[bytes | CopyRange] = []
    for n in range(count):
        await storage.put(BUCKET, f"{key}-src{n}", iter_bytes(payload(CHUNK_SIZE, seed=n)))
        parts.append(CopyRange(f"{key}-src{n}", 0, CHUNK_SIZE))
    await storage.compose(BUCKET, key, [b"<", *parts, b">"])
    for n in range(count):
        await storage.delete(BUCKET, f"{key}-src{n}")
    return b"<" + b"".join(payload(CHUNK_SIZE, seed=n) for n in range(count)) + b">"


async def test_readers_that_opened_a_composite_read_it_whole_though_it_is_deleted(
    local: LocalStorage,
) -> None:
    expected = await composite_of_chunks(local, "obj", 4)
    streams = [local.get(BUCKET, "obj") for _ in range(3)]
    firsts = [await anext(stream) for stream in streams]

    await local.delete(BUCKET, "obj")

    assert not await local.exists(BUCKET, "obj")
    with pytest.raises(ObjectNotFound):
        await collect(local.get(BUCKET, "obj"))
    [left] = await pending(local)  # the readers still hold the segments
    with pytest.raises(StorageError, match="being read"):
        await local.abort_pending_write(left)
    for first, stream in zip(firsts, streams, strict=True):
        assert first + b"".join(await collect(stream)) == expected
    await local.abort_pending_write(left)
    assert files_in(local.root / BUCKET) == []


async def test_a_reader_keeps_seeing_the_composite_it_opened_when_it_is_replaced(
    local: LocalStorage,
) -> None:
    expected = await composite_of_chunks(local, "obj", 3)
    stream = local.get(BUCKET, "obj")
    first = await anext(stream)

    await local.put(BUCKET, "obj", iter_bytes(b"replaced"))

    assert first + b"".join(await collect(stream)) == expected
    assert await read_all(local, BUCKET, "obj") == b"replaced"


async def read_or_none(storage: LocalStorage, key: str) -> bytes | None:
    try:
        return await read_all(storage, BUCKET, key)
    except ObjectNotFound:
        return None


async def test_readers_racing_deletes_get_the_whole_object_or_none(local: LocalStorage) -> None:
    for round in range(15):
        key = f"obj{round}"
        expected = await composite_of_chunks(local, key, 3)

        readers = [asyncio.create_task(read_or_none(local, key)) for _ in range(4)]
        await asyncio.sleep(0.001 * (round % 5))
        await local.delete(BUCKET, key)
        for result in await asyncio.gather(*readers):
            assert result in (expected, None)
    for left in await pending(local):
        await local.abort_pending_write(left)
    assert files_in(local.root / BUCKET) == []


# -- what is not followed or not linked -------------------------------------------------------


async def test_a_symlinked_segment_directory_is_not_followed(
    local: LocalStorage, tmp_path: Path
) -> None:
    await local.put(BUCKET, "src", iter_bytes(payload(2 * MiB)))
    await local.compose(BUCKET, "obj", [b"x", CopyRange("src", 0, 2 * MiB)])
    [directory] = segment_directories(local)
    outside = tmp_path / "outside"
    directory.rename(outside)
    directory.symlink_to(outside)

    with pytest.raises(StorageError):
        await collect(local.get(BUCKET, "obj"))
    with pytest.raises(StorageError):
        await local.compose(BUCKET, "copy", [CopyRange("obj", 0, 10)])
    await local.delete(BUCKET, "obj")
    assert directory.is_symlink() and len(list(outside.iterdir())) == 2


async def test_a_symlink_planted_as_a_segment_is_not_followed(
    local: LocalStorage, tmp_path: Path
) -> None:
    await local.put(BUCKET, "src", iter_bytes(payload(2 * MiB)))
    await local.compose(BUCKET, "obj", [b"x", CopyRange("src", 0, 2 * MiB)])
    secret = tmp_path / "secret"
    secret.write_bytes(b"s" * (2 * MiB))
    linked = segment_files(local, "obj")[1]
    linked.unlink()
    linked.symlink_to(secret)

    with pytest.raises(StorageError):
        await collect(local.get(BUCKET, "obj"))
    with pytest.raises(StorageError):
        await local.compose(BUCKET, "copy", [CopyRange("obj", 0, 2 * MiB)])
    assert not await local.exists(BUCKET, "copy")


async def test_ranges_across_file_systems_are_copied(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "other-disk", 64 * MiB) as disk:
        root = tmp_path / "storage"
        root.mkdir()
        (disk / CONVERSATION_BUCKET).mkdir()
        (root / CONVERSATION_BUCKET).symlink_to(disk / CONVERSATION_BUCKET)
        local = LocalStorage(root)
        source = payload(3 * MiB, seed=9)
        await local.put(CONVERSATION_BUCKET, "big", iter_bytes(source))
        await local.put(BUCKET, "src", iter_bytes(source))
        await local.compose(BUCKET, "obj", [b"x", CopyRange("src", 0, 3 * MiB)])

        await local.compose(
            BUCKET, "copied", [CopyRange("big", 0, 3 * MiB, bucket=CONVERSATION_BUCKET), b"!"]
        )
        await local.compose(
            CONVERSATION_BUCKET, "back", [CopyRange("obj", 0, 3 * MiB + 1, bucket=BUCKET)]
        )

        assert await read_all(local, BUCKET, "copied") == source + b"!"
        assert await read_all(local, CONVERSATION_BUCKET, "back") == b"x" + source
        assert manifest_of(local, "copied") is None  # no link could be made: plain
        assert (disk / CONVERSATION_BUCKET / "back").read_bytes() == b"x" + source
