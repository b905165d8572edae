"""Write-path benchmark: creates and adds through the GraphQL API, on local storage and on S3.

Run with `make bench` (or `.venv/bin/python -m bench.aggregation`); `--huge` also builds and
extends a 100,000-conversation file on local storage (much longer: about 100,000 imports and
1,250 adds). `--backends local` or `--backends s3` runs one backend; `--sizes 80,1000` and
`--creates`/`--rounds` shrink a run for a quick look. Nothing is asserted: each figure is
printed beside its target with "met" or "NOT MET", and the exit status is 0. Everything runs
on 127.0.0.1 in temporary directories; every process and directory is removed at exit, Ctrl-C
and SIGTERM included.

Set-up, in one run:

1. One throwaway embedded PostgreSQL; a database of its own per backend on it (migrated, as
   `serve` would, with the request path's unprivileged login role).
2. Demo conversations (`write_demo_set`, seed 4242): as many as the largest file holds plus
   the adds measured on it, since a file never holds a conversation twice. They are imported
   with `ConversationImporter` as the owner, 8 at a time, in a worker process (the imports
   are CPU-bound in Python), into one backend right before it is measured (another
   backend's import left the disk writing back for minutes): each import stores the
   enriched file and its pre-rendered `<id>/<sha>.pieces` object beside it. Then
   VACUUM (ANALYZE), a CHECKPOINT and `sync`, so neither autovacuum nor the imports' dirty
   pages write during the measurements.
3. Per backend, `training-files serve --no-demo` with the shipped defaults on that database
   and storage (local: a directory; S3: `moto_server` on 127.0.0.1 with STORAGE_URL=s3://,
   S3_ENDPOINT_URL, credentials and S3_CREATE_BUCKETS=true), except CLEANUP_INTERVAL: the
   bench deletes retired versions itself, between adds and never inside a timed one.

Measurements, all in that run and against that one server process per backend:

- *Create, end to end*: wall time of a `createTrainingFile` mutation of 80 conversations over
  HTTP, median of 20 creates with distinct names and conversation sets, after six untimed
  ones (the 80-conversation file below, then 5 more) have warmed the server up: the first
  creates of a fresh server prepare their statements on each pooled connection.
- *I/O floor* (local storage): after each timed create, on the same disk, read 80
  conversations' pieces objects from the storage directory (what a build reads), then write
  as many bytes as the create stored (every file under its `training-files/<id>/` directory:
  JSON, JSONL and whatever else a version holds) to a new file with 1 MiB writes and fsync
  it. The 80 are those imported right after the create's own and not read since, so their
  pieces are in the state the create found its own in: read for the first time since the
  import, when the page cache may have dropped them (some virtual machines page out what was
  not touched for a minute; on this one, reading them took 6-7 ms against 3-4 ms cached).
  The same floor over the pieces the create had just read (so cached) follows it, printed
  as a bound below. Medians. Target: create ≤ 2× the floor. (S3's create is printed against
  the same floor for comparison; its pieces live in moto, not on a disk.)
- *Add*: files of 80, 1,000 and 10,000 conversations (and 100,000 with `--huge`) are built
  beforehand by one create of 80 and then adds of 80 (the API's cap; the 1,000 file's last
  add is 40) through GraphQL against the same server, on both backends: how a file was built
  shapes it (an add makes a composite that names the old body's segments, on local storage
  and on S3), so the bench builds files the way users do, and the measured server is the one
  that grew each file, so its memory counts. Then 3 rounds of adding 80 new conversations to each file over
  GraphQL (sizes in alternating order), the median of the 3 per size. Target: add to 10,000
  ≤ 1.5× add to 80, on local storage and on S3.
- *Where the time goes*, beside each create and add: the CPU time the server, PostgreSQL (the
  postmaster and all its children) and moto used meanwhile, from /proc/<pid>/stat; the time
  the server's threads were ready but waited for a CPU (/proc/<pid>/task/*/schedstat), which
  is what the machine's load adds. On local storage also, per add, the files in the training
  file's storage directory (its objects and their segments) and `wchar` of /proc/<pid>/io,
  the bytes the server itself passed to write calls, which shows whether it streamed the old
  body or had it linked by the file system.
- *Memory*: the server's VmHWM (peak RSS, /proc/<pid>/status), reset at the start of each
  phase (`clear_refs` 5) so each phase has its own peak: idle after start, the creates of 80,
  the build of each file, the measured adds to each file (reset before every add). Memory is
  flat when the peak while building and extending the largest file is at most 1.2× the peak
  with only 80-conversation files (the creates of 80 and the adds to the file of 80). The
  largest-file targets (100,000 conversations, `--huge`): server peak RSS ≤ 250 MB and an add
  of 80 to it in < 2 s. (moto holds objects in memory and reads a copy's whole source, so
  `--huge` runs on local storage only.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from uuid import UUID

from graphql_api.demo import write_demo_set
from graphql_api.runtime import DatabaseUrls
from graphql_api.storage.base import CONVERSATION_BUCKET

from .aggregation_probes import (
    MB,
    Api,
    BenchError,
    Cpu,
    CpuMeter,
    FileState,
    Floor,
    bytes_written,
    io_floor,
    load_average,
    peak_rss_mb,
    reset_peak_rss,
    rss_mb,
    stored_bytes,
    stored_files,
    wait_until_idle,
)
from .aggregation_report import NAMES, adds_phase, report
from .aggregation_stack import (
    JWT_SECRET,
    Backend,
    Owner,
    Processes,
    Server,
    import_in_worker,
    pieces_paths,
    postmaster_pid,
    prepare_backend_database,
    run_statement,
    scratch_dir,
    start_moto,
    start_postgres,
    start_server,
)

USER = UUID("00000000-0000-4000-8000-00000000be4c")
SEED = 4242
BATCH = 80
# Untimed creates after the first file: each statement a create sends gets prepared on the
# pooled connections that serve it, so the timed ones measure a server in its steady state.
WARMUP_CREATES = 5
SIZES = (80, 1_000, 10_000)
HUGE = 100_000


def say(message: str = "") -> None:
    print(message, flush=True)


# ------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class Phase:
    label: str
    peak_mb: float  # VmHWM over the phase
    rss_mb: float  # at its end
    load: float  # the machine's 1-minute load average at its end


@dataclass(frozen=True)
class Add:
    before: int  # conversations in the file before the add
    before_bytes: int  # JSON + JSONL before the add
    seconds: float
    cpu: Cpu  # used meanwhile by the server, PostgreSQL and moto
    server_wrote: int  # wchar delta of the server process
    stored_files: int | None  # local: files under the training file's directory before


@dataclass(frozen=True)
class Build:
    size: int
    adds: int
    seconds: float
    how: str


@dataclass
class BackendResult:
    name: str
    creates: list[FileState] = field(default_factory=list)
    create_cpu: list[Cpu] = field(default_factory=list)
    floors: list[Floor] = field(default_factory=list)
    cached_floors: list[Floor] = field(default_factory=list)  # over the create's own pieces
    builds: dict[int, Build] = field(default_factory=dict)
    adds: dict[int, list[Add]] = field(default_factory=dict)
    phases: list[Phase] = field(default_factory=list)
    peaks_reset: bool = True
    moto_peak_mb: float | None = None


@dataclass(frozen=True)
class Plan:
    backends: tuple[str, ...]
    sizes: tuple[int, ...]
    huge: bool
    creates: int
    rounds: int

    def sizes_for(self, backend: str) -> tuple[int, ...]:
        return (*self.sizes, HUGE) if self.huge and backend == "local" else self.sizes

    def conversations_for(self, backend: str) -> int:
        """The largest file plus the adds measured on it; the creates (and their floors) take
        slices below."""
        largest = max(self.sizes_for(backend))
        creates = (WARMUP_CREATES + 2 * self.creates + 1) * BATCH
        return max(largest, creates) + self.rounds * BATCH


# ------------------------------------------------------------------------------ measuring


class Measurement:
    """One backend's measurements against its running server."""

    def __init__(
        self,
        plan: Plan,
        result: BackendResult,
        api: Api,
        server: Server,
        owner: Owner,
        cpu: CpuMeter,
        storage_root: Path | None,
    ) -> None:
        self.plan = plan
        self.result = result
        self.api = api
        self.server = server
        self.owner = owner
        self.cpu = cpu
        self.storage_root = storage_root

    async def run(self, ids: Sequence[UUID], pieces: dict[UUID, Path] | None) -> None:
        sizes = self.plan.sizes_for(self.result.name)
        waited = await wait_until_idle(self.server.pid)
        say(f"  the server idle {waited:.1f} s after it answered (its start-up clean-up)")
        self.end_phase("idle, after start")
        say(f"  creating files of {BATCH}: one untimed, then {self.plan.creates} timed")
        first = await self.creates(ids, pieces)
        files = {BATCH: first} if BATCH in sizes else {}
        for size in sizes:
            if size != BATCH:
                files[size] = await self.build(ids, size)
        largest = max(sizes)
        say(f"  adding {BATCH} conversations to each file, {self.plan.rounds} rounds")
        await self.adds(files, ids[largest : largest + self.plan.rounds * BATCH])

    def start_phase(self) -> None:
        self.result.peaks_reset &= reset_peak_rss(self.server.pid)

    def end_phase(self, label: str) -> None:
        pid = self.server.pid
        self.result.phases.append(Phase(label, peak_rss_mb(pid), rss_mb(pid), load_average()))

    async def creates(self, ids: Sequence[UUID], pieces: dict[UUID, Path] | None) -> FileState:
        """The untimed 80-conversation file first (it warms the server up), then the timed
        creates, each with its own conversations and, on a disk, the floor of what it did."""
        self.start_phase()
        first = await self.api.create(f"bench file of {BATCH}", ids[:BATCH])
        for n in range(1, WARMUP_CREATES + 1):
            await self.api.create(f"bench warm-up {n}", ids[n * BATCH : (n + 1) * BATCH])
        for n in range(1, self.plan.creates + 1):
            # Its floor reads the next slice: imported right after this one and not read
            # since, so its pieces are as cached (or not) as the create's were.
            offset = WARMUP_CREATES + 2 * n - 1
            chosen = ids[offset * BATCH : (offset + 1) * BATCH]
            unread = ids[(offset + 1) * BATCH : (offset + 2) * BATCH]
            before = self.cpu.read()
            created = await self.api.create(f"bench create {n}", chosen)
            cpu = self.cpu.since(before)
            self.result.creates.append(created)
            self.result.create_cpu.append(cpu)
            line = (
                f"    create {n}: {created.seconds * 1000:.0f} ms (CPU: server "
                f"{cpu.server * 1000:.0f} ms, waited {cpu.server_waiting * 1000:.0f} ms; "
                f"PostgreSQL {cpu.postgres * 1000:.0f} ms"
                + (f", moto {cpu.store * 1000:.0f} ms" if cpu.store is not None else "")
                + f"), JSON + JSONL {created.bytes / MB:.1f} MB"
            )
            if pieces is not None and self.storage_root is not None:
                stored = stored_bytes(self.storage_root, created.id)
                floor = self.floor([pieces[i] for i in unread], stored)
                cached = self.floor([pieces[i] for i in chosen], stored)  # just read
                self.result.floors.append(floor)
                self.result.cached_floors.append(cached)
                line += (
                    f", stored {stored / MB:.1f} MB; I/O floor {floor.seconds * 1000:.0f} ms "
                    f"(over the pieces it just read: {cached.seconds * 1000:.0f} ms)"
                )
            say(line)
        self.end_phase(f"{WARMUP_CREATES + self.plan.creates + 1} creates of {BATCH}")
        return first

    def floor(self, pieces: list[Path], size: int) -> Floor:
        # In the storage directory (same file system), beside the buckets, never inside one.
        assert self.storage_root is not None
        target = self.storage_root / f"bench-floor-{time.monotonic_ns()}.tmp"
        return io_floor(pieces, size, target)

    async def build(self, ids: Sequence[UUID], size: int) -> FileState:
        """A file of `size`: a create, then adds, retired versions swept after each;
        progress about every fifth of the way."""
        how = f"create of {BATCH} + {-(-(size - BATCH) // BATCH)} GraphQL adds of ≤ {BATCH}"
        say(f"  building the file of {size:,}: {how}")
        self.start_phase()
        started = time.perf_counter()
        state = await self.api.create(f"bench file of {size}", ids[:BATCH])
        adds = 0
        step = max(size // 5, BATCH)
        while state.conversations < size:
            before = state.conversations
            batch = ids[before : min(before + BATCH, size)]
            state = await self.api.add(state.id, batch)
            await self.owner.sweep()
            adds += 1
            if state.conversations // step > before // step or state.conversations == size:
                say(
                    f"    {state.conversations:>7,}/{size:,} conversations, "
                    f"{state.bytes / MB:,.0f} MB, {time.perf_counter() - started:.0f} s, "
                    f"server RSS {rss_mb(self.server.pid):.0f} MB"
                )
        seconds = time.perf_counter() - started
        say(f"    built in {seconds:,.0f} s")
        self.result.builds[size] = Build(size, adds, seconds, how)
        self.end_phase(f"build of {size:,}")
        return state

    async def adds(self, files: dict[int, FileState], extra: Sequence[UUID]) -> None:
        """`rounds` rounds of adding 80 new conversations to every file, sizes in alternating
        order; retired versions are swept before each add, outside its time. The peak RSS is
        taken per add, so each file's adds are a phase of their own."""
        sizes = sorted(files)
        peaks = dict.fromkeys(sizes, 0.0)
        for r in range(self.plan.rounds):
            batch = extra[r * BATCH : (r + 1) * BATCH]
            for size in sizes if r % 2 == 0 else reversed(sizes):
                await self.owner.sweep()
                self.start_phase()
                files[size] = await self.timed_add(size, files[size], batch)
                peaks[size] = max(peaks[size], peak_rss_mb(self.server.pid))
            say(f"    round {r + 1}: " + ", ".join(self.last_add(s) for s in sizes))
        pid = self.server.pid
        for size in sizes:
            label = adds_phase(self.plan.rounds, size)
            self.result.phases.append(Phase(label, peaks[size], rss_mb(pid), load_average()))

    async def timed_add(self, size: int, state: FileState, batch: Sequence[UUID]) -> FileState:
        root = self.storage_root
        files = len(stored_files(root, state.id)) if root is not None else None
        pid = self.server.pid
        wrote, before = bytes_written(pid), self.cpu.read()
        after = await self.api.add(state.id, batch)
        cpu = self.cpu.since(before)
        add = Add(
            state.conversations,
            state.bytes,
            after.seconds,
            cpu,
            bytes_written(pid) - wrote,
            files,
        )
        self.result.adds.setdefault(size, []).append(add)
        return after

    def last_add(self, size: int) -> str:
        add = self.result.adds[size][-1]
        return f"{add.before:,}: {add.seconds * 1000:.0f} ms"


# ------------------------------------------------------------------------------ the run


@dataclass
class Context:
    plan: Plan
    processes: Processes
    scratch: Path
    pg_dir: Path
    maintenance_dsn: str
    demo: list[Path]


@dataclass
class Prepared:
    """A backend with its database migrated and its conversations imported."""

    backend: Backend
    urls: DatabaseUrls
    owner: Owner
    ids: list[UUID]
    pieces: dict[UUID, Path] | None  # local: each conversation's pieces file


async def prepare(ctx: Context, backend: Backend) -> Prepared:
    """Migrate the backend's database, import its conversations in a worker process, then
    open the owner's connections the bench keeps for sweeping and building."""
    urls = await prepare_backend_database(ctx.maintenance_dsn, backend.database, ctx.pg_dir)
    name = backend.name
    count = ctx.plan.conversations_for(name)
    env = backend.settings_env(urls, ctx.scratch / f"data-{name}")
    say(f"  [{name}] importing {count:,} conversations into database {backend.database}")
    started = time.perf_counter()
    ids = await import_in_worker(env, urls, ctx.demo[:count], f"  [{name}] ")
    say(f"  [{name}] imported {len(ids):,} in {time.perf_counter() - started:.0f} s")
    pieces = await local_pieces(backend, urls, ids)
    owner = await Owner.open(backend.settings(urls, ctx.scratch / f"data-{name}"), urls)
    return Prepared(backend, urls, owner, ids, pieces)


async def settle(maintenance_dsn: str, urls: DatabaseUrls) -> None:
    """The imports leave gigabytes of dirty pages, in the page cache and in PostgreSQL's shared
    buffers (which its checkpointer would write out over the next minutes), and tables that
    autovacuum would then visit, dirtying every page again: all done now, not during the
    timed creates and their I/O floors (both of which would then measure the writeback)."""
    flushing = time.perf_counter()
    await run_statement(urls.owner, "VACUUM (ANALYZE)")
    await run_statement(maintenance_dsn, "CHECKPOINT")
    await asyncio.to_thread(os.sync)
    say(f"  vacuumed and flushed the imports to disk in {time.perf_counter() - flushing:.0f} s")


async def measure_backend(ctx: Context, prepared: Prepared, step: str) -> BackendResult:
    """Its server, the measurements against it, and the server stopped; nothing else runs."""
    name = prepared.backend.name
    say(f"\n{step} {NAMES[name]}: measuring")
    server = await start_server(ctx.processes, prepared.backend, prepared.urls, ctx.scratch)
    say(f"  `training-files serve` on {server.url} (pid {server.pid})")
    result = BackendResult(name)
    store_pid = ctx.processes.pid_of("moto_server") if name == "s3" else None
    cpu = CpuMeter(server.pid, postmaster_pid(ctx.pg_dir), store_pid)
    async with Api(server.url, USER, JWT_SECRET) as api:
        measurement = Measurement(
            ctx.plan,
            result,
            api,
            server,
            prepared.owner,
            cpu,
            prepared.backend.storage_root,
        )
        await measurement.run(prepared.ids, prepared.pieces)
    ctx.processes.stop(server.pid)
    result.moto_peak_mb = peak_rss_mb(store_pid) if store_pid else None
    return result


async def open_backend(ctx: Context, name: str) -> Backend:
    if name == "local":
        return Backend.local(ctx.scratch / "storage")
    endpoint = await start_moto(ctx.processes, ctx.scratch / "moto")
    say(f"  [s3] moto_server on {endpoint}")
    return Backend.s3(endpoint)


async def local_pieces(
    backend: Backend, urls: DatabaseUrls, ids: Sequence[UUID]
) -> dict[UUID, Path] | None:
    """The files of the conversations' pieces objects in the storage directory (local)."""
    if backend.storage_root is None:
        return None
    keys = await pieces_paths(urls, ids)
    bucket = backend.storage_root / CONVERSATION_BUCKET
    return {i: bucket / key for i, key in keys.items()}


async def run(plan: Plan) -> None:
    started = time.perf_counter()
    scratch = scratch_dir("training-files-bench-")
    # Registered before the embedded server's own exit hook, so removed after it stopped.
    pg_dir = scratch_dir("training-files-bench-pg-")
    say("[1] a throwaway embedded PostgreSQL, and demo conversations")
    maintenance_dsn = await start_postgres(pg_dir)
    processes = Processes()  # its exit hook runs before PostgreSQL's: servers stop first
    try:
        count = max(plan.conversations_for(b) for b in plan.backends)
        generated = time.perf_counter()
        demo = await asyncio.to_thread(write_demo_set, scratch / "demo", count, SEED)
        megabytes = sum(p.stat().st_size for p in demo) / MB
        say(
            f"  generated {count:,} demo conversations ({megabytes:,.0f} MB) "
            f"in {time.perf_counter() - generated:.0f} s"
        )
        ctx = Context(plan, processes, scratch, pg_dir, maintenance_dsn, demo)
        results = []
        # One backend after the other, each imported right before it is measured: another
        # backend's import (moto's gigabytes among them) left the disk writing back for
        # minutes, which inflated the local creates' fsyncs and their floors alike.
        for n, name in enumerate(plan.backends):
            say(f"\n[{2 + 2 * n}] {NAMES[name]}: a database, and the conversations imported")
            prepared = await prepare(ctx, await open_backend(ctx, name))
            try:
                await settle(maintenance_dsn, prepared.urls)
                results.append(await measure_backend(ctx, prepared, f"[{3 + 2 * n}]"))
            finally:
                await prepared.owner.close()
    finally:
        processes.stop_all()
    report(results, BATCH, HUGE)
    say(f"\ndone in {time.perf_counter() - started:.0f} s")


def parse_args(argv: Sequence[str] | None = None) -> Plan:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--huge", action="store_true", help=f"also a {HUGE:,}-conversation file (local only)"
    )
    parser.add_argument("--backends", default="local,s3", help="local,s3 (default: both)")
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, SIZES)),
        help="files to add to, in conversations (default: %(default)s)",
    )
    parser.add_argument("--creates", type=int, default=20, help="timed creates (default: 20)")
    parser.add_argument("--rounds", type=int, default=3, help="adds per file (default: 3)")
    args = parser.parse_args(argv)
    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    if not backends or set(backends) - {"local", "s3"}:
        parser.error("--backends takes local, s3 or both")
    sizes = tuple(sorted({int(s) for s in args.sizes.split(",")}))
    if min(sizes) < BATCH:
        parser.error(f"--sizes must be at least {BATCH}")
    return Plan(backends, sizes, args.huge, max(args.creates, 1), max(args.rounds, 1))


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> None:
    plan = parse_args()
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        asyncio.run(run(plan))
    except KeyboardInterrupt:
        say("\ninterrupted: stopping what the bench started")
        sys.exit(130)
    except BenchError as error:
        say(f"\nbench failed: {error}")
        sys.exit(1)
    with contextlib.suppress(Exception):
        sys.stdout.flush()


if __name__ == "__main__":
    main()
