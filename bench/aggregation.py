"""Benchmark of training-file aggregation: the two targets of README → Design → Aggregation.

Run with `make bench` (or `.venv/bin/python -m bench.aggregation`). It starts a throwaway
embedded PostgreSQL and a temporary storage directory (both removed at exit), generates 450
demo conversations and imports them, then measures, in one run:

1. *An add is proportional to what is added.* Two files are created from scratch, one of 50
   and one of 400 conversations; then 10 conversations are added to each, five times (median
   reported). Storage is wrapped so every read of an enriched conversation file and every byte
   written is counted. Read the table as: an add to the 400-conversation file reads the same
   10 conversations as an add to the 50-conversation file and should take about as long
   (ratio near 1), while building the file from scratch grows like N (ratio near 8). What an
   add still does in proportion to the file is byte work: the old bodies ("old body") are
   copied as ranges, never re-read as conversations (streamed through the process on local
   storage, server-side `UploadPartCopy` on S3), and the new objects ("written") hold the
   whole file. So the add ratio sits between 1 and the bytes-written ratio on local disk.
2. *Memory stays flat.* Fresh files of 50 and of 400 conversations are created while
   `tracemalloc` records the peak of Python allocations above the level before the call, and
   again each in a subprocess that reports its peak RSS (`getrusage`, after a small warm-up
   build). Compare the peaks with the output size (ratio ~8): the bodies are streamed, so
   memory must not follow it. The bench also prints what the file's conversation rows (the
   metadata loaded from PostgreSQL, no bodies) hold alone, and the peak per extra conversation
   next to the output per conversation, so a residual slope can be attributed.

Timings are not asserted: the script only prints figures and exits 0. The API caps a request
at 80 conversations; the bench lifts that cap in its own process so that the 400-conversation
file can be built in one request, which is what "from scratch" means here.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import gc
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from graphql_api.aggregation import requests as request_checks
from graphql_api.aggregation.service import TrainingFileService
from graphql_api.config import Settings
from graphql_api.conversations.importer import ConversationImporter, Outcome
from graphql_api.db import conversations as conversation_rows
from graphql_api.db.database import Database
from graphql_api.db.embedded import start_embedded
from graphql_api.db.training_files import TrainingFileRecord
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.runtime import database_urls, open_owner_writers, open_pools, prepare_database
from graphql_api.storage.base import (
    CONVERSATION_BUCKET,
    Part,
    Storage,
)
from graphql_api.storage.local import LocalStorage

USER = UUID("00000000-0000-4000-8000-00000000be4c")
SEED = 4242
SMALL, LARGE = 50, 400
ADD = 10
ROUNDS = 5
DEMO_COUNT = LARGE + ADD * ROUNDS
RSS_WARMUP = 5
MB = 1024 * 1024


def say(message: str) -> None:
    print(message, flush=True)


def say_ratio(label: str, value: float) -> None:
    say(f"{label + ':':<44}{value:6.2f}")


def lift_request_cap() -> None:
    """Let one request carry the whole 400-conversation file (bench process only)."""
    request_checks.MAX_CONVERSATIONS_PER_REQUEST = max(
        request_checks.MAX_CONVERSATIONS_PER_REQUEST, LARGE
    )


class CountingStorage:
    """Delegates to a real backend; counts whole-object reads, ranged reads and bytes written."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.url = inner.url
        self.reads: Counter[tuple[str, str]] = Counter()
        self.range_bytes = 0
        self.written = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def reset(self) -> None:
        self.reads.clear()
        self.range_bytes = 0
        self.written = 0

    def conversations_read(self) -> int:
        return sum(n for (bucket, _), n in self.reads.items() if bucket == CONVERSATION_BUCKET)

    def get(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        self.reads[(bucket, key)] += 1
        return self.inner.get(bucket, key)

    def get_range(self, bucket: str, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        self.range_bytes += end - start
        return self.inner.get_range(bucket, key, start, end)

    async def put(self, bucket: str, key: str, chunks: AsyncIterable[bytes]) -> int:
        size = await self.inner.put(bucket, key, chunks)
        self.written += size
        return size

    async def compose(self, bucket: str, key: str, parts: Sequence[Part]) -> int:
        size = await self.inner.compose(bucket, key, parts)
        self.written += size
        return size


@dataclass
class Step:
    conversations: int  # in the file before the step
    size: int  # bytes of JSON + JSONL before the step
    old_body: int  # bytes of the previous bodies copied as ranges
    seconds: float
    read: int
    written: int


def object_bytes(record: TrainingFileRecord) -> int:
    return (record.json_file_size or 0) + (record.jsonl_file_size or 0)


def body_bytes(record: TrainingFileRecord) -> int:
    return ((record.json_body_end or 0) - (record.json_body_start or 0)) + (
        (record.jsonl_body_end or 0) - (record.jsonl_body_start or 0)
    )


async def timed_create(
    service: TrainingFileService, storage: CountingStorage, name: str, ids: list[UUID]
) -> tuple[TrainingFileRecord, Step]:
    storage.reset()
    started = time.perf_counter()
    record = await service.create_training_file(USER, name, None, ids)
    seconds = time.perf_counter() - started
    return record, Step(0, 0, 0, seconds, storage.conversations_read(), storage.written)


async def timed_add(
    service: TrainingFileService,
    storage: CountingStorage,
    record: TrainingFileRecord,
    ids: list[UUID],
) -> tuple[TrainingFileRecord, Step]:
    storage.reset()
    started = time.perf_counter()
    updated = await service.add_conversations(USER, record.id, ids)
    seconds = time.perf_counter() - started
    step = Step(
        record.conversation_count,
        object_bytes(record),
        body_bytes(record),
        seconds,
        storage.conversations_read(),
        storage.written,
    )
    return updated, step


# ------------------------------------------------------------------------------ parts of the run


async def import_demo(writers: WriterPool, storage: Storage, demo_dir: Path) -> list[UUID]:
    started = time.perf_counter()
    paths = write_demo_set(demo_dir, DEMO_COUNT, seed=SEED)
    total = sum(p.stat().st_size for p in paths)
    say(
        f"  generated {len(paths)} demo conversations ({total / MB:.1f} MB) "
        f"in {time.perf_counter() - started:.1f} s"
    )
    started = time.perf_counter()
    importer = ConversationImporter(writers, storage, created_by=USER)
    ids: list[UUID] = []
    for i, path in enumerate(paths, 1):
        result = await importer.import_file(path)
        if result.outcome is not Outcome.IMPORTED or result.conversation_id is None:
            raise SystemExit(f"import of {path.name} failed: {result}")
        ids.append(result.conversation_id)
        if i % 100 == 0:
            say(f"  imported {i}/{len(paths)}")
    say(f"  imported {len(ids)} conversations in {time.perf_counter() - started:.1f} s")
    return ids


async def measure_adds(
    service: TrainingFileService, storage: CountingStorage, ids: list[UUID]
) -> None:
    say(f"\n[2/4] creating files of {SMALL} and {LARGE} conversations from scratch")
    files: dict[int, TrainingFileRecord] = {}
    creates: dict[int, Step] = {}
    for n in (SMALL, LARGE):
        files[n], creates[n] = await timed_create(service, storage, f"bench-add-{n}", ids[:n])
        say(
            f"  created {n}: {creates[n].seconds:.2f} s, {creates[n].read} conversations read, "
            f"{object_bytes(files[n]) / MB:.1f} MB written"
        )

    say(f"\n[3/4] adding {ADD} conversations to each, {ROUNDS} rounds")
    adds: dict[int, list[Step]] = {SMALL: [], LARGE: []}
    for r in range(ROUNDS):
        batch = ids[LARGE + r * ADD : LARGE + (r + 1) * ADD]
        # Alternate the order so neither size always runs on a warmer cache.
        for n in (SMALL, LARGE) if r % 2 == 0 else (LARGE, SMALL):
            files[n], step = await timed_add(service, storage, files[n], batch)
            adds[n].append(step)
            say(
                f"  round {r + 1}, file of {step.conversations}: {step.seconds * 1000:.0f} ms, "
                f"{step.read} conversations read"
            )

    say("\n=== 1. An add is proportional to what is added ===")
    header = (
        f"{'file':>5} {'size MB':>8} | {'create s':>8} {'read':>4} | {'add ms':>6} "
        f"{'read':>4} {'old body MB':>11} {'written MB':>10}"
    )
    say(header)
    say("-" * len(header))
    medians: dict[int, float] = {}
    written: dict[int, float] = {}
    for n in (SMALL, LARGE):
        steps = adds[n]
        medians[n] = statistics.median(s.seconds for s in steps)
        written[n] = statistics.median(s.written for s in steps)
        reads = sorted({s.read for s in steps})
        say(
            f"{n:>5} {steps[0].size / MB:>8.2f} | {creates[n].seconds:>8.2f} "
            f"{creates[n].read:>4} | {medians[n] * 1000:>6.0f} "
            f"{'/'.join(map(str, reads)):>4} {steps[0].old_body / MB:>11.2f} "
            f"{written[n] / MB:>10.2f}"
        )
    say(
        "(file: conversations before the adds; size, old body: JSON + JSONL objects and their\n"
        " bodies before the first add; create: from scratch, conversations read; add: median of "
        f"{ROUNDS} adds of {ADD},\n conversations read per add; old body: copied as byte ranges, "
        "not re-read as conversations;\n written: new JSON + JSONL objects per add)"
    )
    say(
        "add times of the rounds: "
        + "; ".join(
            f"{n}: " + ", ".join(f"{s.seconds * 1000:.0f}" for s in adds[n]) + " ms"
            for n in (SMALL, LARGE)
        )
    )
    read_ratio = statistics.mean(s.read for s in adds[LARGE]) / statistics.mean(
        s.read for s in adds[SMALL]
    )
    say_ratio(f"conversations in file, {LARGE}/{SMALL}", LARGE / SMALL)
    say_ratio(
        f"create from scratch time, {LARGE}/{SMALL}",
        creates[LARGE].seconds / creates[SMALL].seconds,
    )
    say_ratio(f"conversations read per add, {LARGE}/{SMALL}", read_ratio)
    say_ratio(f"add {ADD} time, {LARGE}/{SMALL} (median)", medians[LARGE] / medians[SMALL])
    say_ratio(f"bytes written per add, {LARGE}/{SMALL}", written[LARGE] / written[SMALL])


async def traced_peak(
    service: TrainingFileService, name: str, ids: list[UUID]
) -> tuple[int, TrainingFileRecord]:
    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        record = await service.create_training_file(USER, name, None, ids)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base, record


async def traced_rows(db: Database, ids: list[UUID]) -> int:
    """Python memory held by the conversation rows of `ids` as the service loads them."""
    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        async with db.session(USER) as conn:
            records = await conversation_rows.get_many(conn, ids)
        held, _ = tracemalloc.get_traced_memory()
        del records
    finally:
        tracemalloc.stop()
    return held - base


def rss_peak(
    dsn: str, storage_root: Path, ids: list[UUID], n: int, scratch: Path
) -> dict[str, float]:
    ids_file = scratch / f"rss-ids-{n}.json"
    ids_file.write_text(json.dumps([str(i) for i in ids]))
    command = [sys.executable, "-m", "bench.aggregation", "--rss-child"]
    command += [dsn, str(storage_root), str(ids_file), str(n)]
    project = Path(__file__).resolve().parents[1]
    done = subprocess.run(command, cwd=project, capture_output=True, text=True, check=True)
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


async def measure_memory(
    service: TrainingFileService,
    db: Database,
    dsn: str,
    storage_root: Path,
    ids: list[UUID],
    scratch: Path,
) -> None:
    say(f"\n[4/4] peak memory while creating files of {SMALL} and {LARGE} conversations")
    traced: dict[int, int] = {}
    output: dict[int, int] = {}
    held_rows: dict[int, int] = {}
    rss: dict[int, dict[str, float]] = {}
    for n in (SMALL, LARGE):
        traced[n], record = await traced_peak(service, f"bench-mem-{n}", ids[:n])
        output[n] = object_bytes(record)
        held_rows[n] = await traced_rows(db, ids[:n])
        say(
            f"  tracemalloc, {n}: peak {traced[n] / MB:.2f} MB above the start "
            f"(its {n} conversation rows alone hold {held_rows[n] / MB:.2f} MB)"
        )
    for n in (SMALL, LARGE):
        rss[n] = await asyncio.to_thread(rss_peak, dsn, storage_root, ids[:n], n, scratch)
        say(
            f"  subprocess, {n}: peak RSS {rss[n]['peak_kb'] / 1024:.1f} MB "
            f"({rss[n]['seconds']:.2f} s)"
        )

    say("\n=== 2. Memory stays flat ===")
    header = (
        f"{'file':>5} {'output MB':>9} | {'tracemalloc peak MB':>19} {'rows MB':>7} | "
        f"{'peak RSS MB':>11} {'RSS growth MB':>13}"
    )
    say(header)
    say("-" * len(header))
    for n in (SMALL, LARGE):
        growth = (rss[n]["peak_kb"] - rss[n]["before_kb"]) / 1024
        say(
            f"{n:>5} {output[n] / MB:>9.2f} | {traced[n] / MB:>19.2f} {held_rows[n] / MB:>7.2f} | "
            f"{rss[n]['peak_kb'] / 1024:>11.1f} {growth:>13.1f}"
        )
    say(
        "(output: JSON + JSONL written; tracemalloc peak: Python allocations during\n"
        " create_training_file above the level before it; rows: held by the file's conversation\n"
        " rows as loaded from PostgreSQL (metadata, no bodies); peak RSS: whole subprocess, after\n"
        f" imports, pool and a {RSS_WARMUP}-conversation warm-up build; RSS growth: peak RSS "
        "after the build minus before it)"
    )
    slope = (traced[LARGE] - traced[SMALL]) / (LARGE - SMALL)
    output_slope = (output[LARGE] - output[SMALL]) / (LARGE - SMALL)
    say_ratio(f"conversations in file, {LARGE}/{SMALL}", LARGE / SMALL)
    say_ratio(f"output bytes, {LARGE}/{SMALL}", output[LARGE] / output[SMALL])
    say_ratio(f"tracemalloc peak, {LARGE}/{SMALL}", traced[LARGE] / traced[SMALL])
    say_ratio(f"peak RSS, {LARGE}/{SMALL}", rss[LARGE]["peak_kb"] / rss[SMALL]["peak_kb"])
    say(
        f"tracemalloc peak per extra conversation: {slope / 1024:.1f} KB "
        f"(output per conversation: {output_slope / 1024:.1f} KB)"
    )


# ------------------------------------------------------------------------------ entry points


def _remove_empty_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.rmdir(path)


def bench_settings(pg_dir: Path, storage_root: Path) -> Settings:
    """The shipped defaults, on the bench's own embedded PostgreSQL and storage."""
    return Settings.from_env(
        {"DATA_DIR": str(pg_dir), "STORAGE_URL": storage_root.as_uri(), "JWT_SECRET": "b" * 40}
    )


async def run() -> None:
    lift_request_cap()
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="training-files-bench-"))
    try:
        say("[1/4] starting a throwaway embedded PostgreSQL and importing demo conversations")
        pg_dir = Path(tempfile.mkdtemp(prefix="training-files-bench-pg-"))
        # Registered before the server's own exit hook, so it runs after it (LIFO) and only
        # removes the directory once the server has deleted its data; rmdir never deletes data.
        atexit.register(_remove_empty_dir, pg_dir)
        await asyncio.to_thread(start_embedded, pg_dir, delete_on_exit=True)
        storage_root = scratch / "storage"
        settings = bench_settings(pg_dir, storage_root)
        urls = await database_urls(settings)
        await prepare_database(settings, urls)
        pools = await open_pools(settings, urls)
        writers = await open_owner_writers(settings, urls)
        try:
            local = LocalStorage(storage_root)
            ids = await import_demo(writers, local, scratch / "demo")
            counting = CountingStorage(local)
            service = TrainingFileService(pools.db, pools.writers, pools.maintenance, counting)
            await measure_adds(service, counting, ids)
            await measure_memory(service, pools.db, str(pg_dir), storage_root, ids, scratch)
        finally:
            await writers.close()
            await pools.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    say(f"\ndone in {time.perf_counter() - started:.0f} s")


async def rss_child(pg_dir: str, storage_root: Path, ids_file: Path, n: int) -> None:
    """In a fresh process: warm up, then create one file of `n`; print peak RSS as JSON."""
    lift_request_cap()
    ids = [UUID(i) for i in json.loads(ids_file.read_text())]
    settings = bench_settings(Path(pg_dir), storage_root)
    pools = await open_pools(settings, await database_urls(settings))
    try:
        service = TrainingFileService(
            pools.db, pools.writers, pools.maintenance, LocalStorage(storage_root)
        )
        await service.create_training_file(USER, f"bench-rss-warmup-{n}", None, ids[:RSS_WARMUP])
        gc.collect()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        await service.create_training_file(USER, f"bench-rss-{n}", None, ids[:n])
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    finally:
        await pools.close()
    print(json.dumps({"before_kb": before, "peak_kb": peak, "seconds": seconds}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rss-child", nargs=4, metavar=("PG_DIR", "STORAGE", "IDS", "N"))
    args = parser.parse_args()
    if args.rss_child:
        pg_dir, storage_root, ids_file, n = args.rss_child
        asyncio.run(rss_child(pg_dir, Path(storage_root), Path(ids_file), int(n)))
    else:
        asyncio.run(run())


if __name__ == "__main__":
    main()
