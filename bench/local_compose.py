"""Local storage benchmark: an add against the size of the file it adds to, and a create
against the I/O floor, through `LocalStorage.compose` alone (no database, no server).

Run with `.venv/bin/python -m bench.local_compose` (`--adds 125 --trials 5` by default;
`--no-copy` skips the comparison with links switched off). Figures are printed; nothing is
asserted. Everything happens in one temporary directory (under `--dir`, default the system's
temp dir, so on its file system), removed at the end.

What is measured, in one run:

- *Conversations* are 80 plain objects of 100 KB in the conversation bucket, standing for
  the pieces a build copies; an add of 80 is what the service composes:
  `[header, CopyRange(previous version's body), 80 × CopyRange(piece, bucket=conversation),
  footer]`, written to a new version's key.
- *Add at 80 and at 10,000*: a file is created from the 80 pieces (80 conversations, 8 MB),
  then grown by `--adds` adds of 80 (125: 10,080 conversations, about 1 GB); a second file
  of 80 stays as it is. Then `--trials` adds of 80 to each, the two files taken in turn (same
  disk and cache conditions), each to a key that is deleted after it (so the file measured
  does not grow); the median is printed, with the bytes the add made the disk allocate
  (growth of the blocks of every distinct inode below the storage directory) and the number
  of files the source is stored in. Target: the large add ≤ 1.5× the small.
- *Without links* (`link_min_bytes` above any range: every byte copied, by copy_file_range),
  one add at each size, for comparison with what an add cost before composites.
- *Create of 80*: composing `[header, 80 × CopyRange(piece), footer]` into one new object,
  against the I/O floor measured alternately in the same run: read the 80 piece files, write
  the same bytes to a new file and fsync it. Median of `--trials` each.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path

from graphql_api.storage.base import (
    CONVERSATION_BUCKET,
    TRAINING_BUCKET,
    CopyRange,
    Part,
    iter_bytes,
)
from graphql_api.storage.local import LocalStorage

PIECE_BYTES = 100_000
BATCH = 80
HEADER_BYTES = 2048  # every version's header has this length, so its body starts there
FOOTER = b"\n  ]\n}\n"
MB = 1_000_000


def header(version: int) -> bytes:
    text = f'{{\n  "version": {version},\n  "conversations": ['.encode()
    return text.ljust(HEADER_BYTES, b" ")


def piece_ranges() -> list[CopyRange]:
    return [
        CopyRange(f"pieces/{n}.pieces", 0, PIECE_BYTES, bucket=CONVERSATION_BUCKET)
        for n in range(BATCH)
    ]


async def make_pieces(storage: LocalStorage) -> None:
    for n in range(BATCH):
        data = os.urandom(PIECE_BYTES)
        await storage.put(CONVERSATION_BUCKET, f"pieces/{n}.pieces", iter_bytes(data))


async def create(storage: LocalStorage, key: str) -> int:
    return await storage.compose(TRAINING_BUCKET, key, [header(1), *piece_ranges(), FOOTER])


async def add(storage: LocalStorage, previous: str, key: str, version: int) -> int:
    size = await storage.size(TRAINING_BUCKET, previous)
    body = CopyRange(previous, HEADER_BYTES, size - len(FOOTER))
    parts: list[Part] = [header(version), body, *piece_ranges(), FOOTER]
    return await storage.compose(TRAINING_BUCKET, key, parts)


def disk_usage(root: Path) -> int:
    """Bytes allocated to the files below `root`, each inode once (hard links share theirs)."""
    seen: set[tuple[int, int]] = set()
    used = 0
    for directory, _, names in os.walk(root):
        for name in names:
            st = os.lstat(os.path.join(directory, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                used += st.st_blocks * 512
    return used


def segments_of(storage: LocalStorage, key: str) -> int:
    """How many files the object is stored in (1 for a plain file)."""
    path = storage.root / TRAINING_BUCKET / key
    directories = [p for p in path.parent.iterdir() if p.name.endswith("~seg")]
    owned = [p for p in directories if p.name.startswith(f".{path.name}.")]
    return len(list(owned[0].iterdir())) if owned else 1


async def timed(work: Awaitable[object]) -> float:
    """Seconds until `work` (a coroutine not started yet) is done."""
    started = time.perf_counter()
    await work
    return time.perf_counter() - started


async def trial_add(storage: LocalStorage, previous: str, version: int) -> tuple[float, int]:
    """Seconds of one add of 80 to `previous` (to a key deleted after it), and the bytes of
    disk it took."""
    key = "trial/training.json"
    before = disk_usage(storage.root)
    seconds = await timed(add(storage, previous, key, version))
    grown = disk_usage(storage.root) - before
    await storage.delete(TRAINING_BUCKET, key)
    return seconds, grown


async def alternating_adds(
    storage: LocalStorage, files: list[tuple[str, int]], trials: int
) -> list[tuple[float, int]]:
    """Per file (key, next version): the median seconds and disk of `trials` adds, the files
    taken in turn so that both sizes see the same disk and cache conditions."""
    results: list[list[tuple[float, int]]] = [[] for _ in files]
    for _ in range(trials):
        for measured, (key, version) in zip(results, files, strict=True):
            measured.append(await trial_add(storage, key, version))
    return [
        (statistics.median(s for s, _ in measured), int(statistics.median(g for _, g in measured)))
        for measured in results
    ]


async def build(storage: LocalStorage, adds: int) -> str:
    """Create the file and grow it by `adds` adds of 80; the key of its last version."""
    key = "file/v1/training.json"
    await create(storage, key)
    for version in range(2, adds + 2):
        previous, key = key, f"file/v{version}/training.json"
        await add(storage, previous, key, version)
        await storage.delete(TRAINING_BUCKET, previous)  # as the sweeper does, later
    return key


def io_floor(storage: LocalStorage, target: Path) -> None:
    """Read the 80 piece files and write their bytes to a new file, synced."""
    pieces = storage.root / CONVERSATION_BUCKET / "pieces"
    data = [(pieces / f"{n}.pieces").read_bytes() for n in range(BATCH)]
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in data:
            os.write(fd, chunk)
        os.fsync(fd)
    finally:
        os.close(fd)
    target.unlink()


async def creates_against_floor(storage: LocalStorage, trials: int) -> tuple[float, float]:
    creates, floors = [], []
    floor_file = storage.root / "floor.bin"
    for trial in range(trials):
        key = f"created/{trial}/training.json"
        creates.append(await timed(create(storage, key)))
        await storage.delete(TRAINING_BUCKET, key)
        started = time.perf_counter()
        await asyncio.to_thread(io_floor, storage, floor_file)
        floors.append(time.perf_counter() - started)
    return statistics.median(creates), statistics.median(floors)


def file_system(path: Path) -> str:
    """The type of the file system `path` is on, from /proc/mounts (Linux)."""
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    resolved = str(path.resolve())
    for line in mounts:
        fields = line.split()
        if len(fields) > 2 and resolved.startswith(fields[1]) and len(fields[1]) > len(best):
            best, kind = fields[1], fields[2]
    return kind


async def run(arguments: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="local-compose-bench-", dir=arguments.dir))
    try:
        await measure(workdir, arguments)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def measure(workdir: Path, arguments: argparse.Namespace) -> None:
    storage = LocalStorage(workdir / "storage")
    copying = LocalStorage(workdir / "storage", link_min_bytes=2**62)
    trials, adds = arguments.trials, arguments.adds
    print(f"local storage in {workdir} ({file_system(workdir)}), conversations of 100 KB")
    await make_pieces(storage)

    small_key = "small/v1/training.json"
    await create(storage, small_key)
    small_size = await storage.size(TRAINING_BUCKET, small_key)
    started = time.perf_counter()
    large_key = await build(storage, adds)
    built = time.perf_counter() - started
    large_size = await storage.size(TRAINING_BUCKET, large_key)
    conversations = BATCH * (adds + 1)
    print(f"built a {conversations}-conversation file by {adds} adds in {built:.1f} s")
    (small, small_written), (large, large_written) = await alternating_adds(
        storage, [(small_key, 2), (large_key, adds + 2)], trials
    )

    print(f"\nadd of {BATCH} (median of {trials})   file size  segments   add      disk per add")
    for count, size, key, seconds, written in (
        (BATCH, small_size, small_key, small, small_written),
        (conversations, large_size, large_key, large, large_written),
    ):
        print(
            f"  to {count:>6} conversations   {size / MB:>8.1f} MB {segments_of(storage, key):>6}"
            f"   {seconds * 1000:>6.1f} ms {written / MB:>8.2f} MB"
        )
    ratio = large / small
    print(
        f"  ratio large/small: {ratio:.2f} (target <= 1.5; the file is "
        f"{large_size / small_size:.0f}x larger)"
    )

    if arguments.copy:
        print("\nthe same adds with links switched off (every byte copied, copy_file_range):")
        for label, key in (("small", small_key), ("large", large_key)):
            seconds, written = await trial_add(copying, key, 99)
            print(f"  to the {label} file: {seconds * 1000:.1f} ms, {written / MB:.1f} MB")

    create_seconds, floor_seconds = await creates_against_floor(storage, trials)
    print(
        f"\ncreate of {BATCH} from {BATCH} plain 100 KB files (median of {trials}): "
        f"{create_seconds * 1000:.1f} ms"
    )
    print(
        f"  I/O floor (read them, write {BATCH * PIECE_BYTES / MB:.0f} MB, fsync): "
        f"{floor_seconds * 1000:.1f} ms; ratio {create_seconds / floor_seconds:.2f}"
    )


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--adds", type=int, default=125, help="adds of 80 to build the file")
    parser.add_argument("--trials", type=int, default=5, help="timed adds and creates per size")
    parser.add_argument("--dir", type=Path, default=None, help="where the temp dir goes")
    parser.add_argument(
        "--no-copy", dest="copy", action="store_false", help="skip the adds without links"
    )
    return parser.parse_args()


def main() -> None:
    asyncio.run(run(arguments()))


if __name__ == "__main__":
    main()
