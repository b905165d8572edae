"""What the write benchmark runs against, all on 127.0.0.1 and in temporary directories.

- `Processes`: every subprocess the bench starts (moto, servers), each in a session of its
  own so Ctrl-C reaches only the bench, stopped in reverse order at the end or at exit.
- `start_postgres`: one throwaway embedded PostgreSQL, deleted when the bench exits.
- `Backend`: local storage or S3 (moto), with a database of its own on that one PostgreSQL;
  the environment of its `training-files serve` and the same settings in-process.
- `import_conversations`: enriched files imported with `ConversationImporter`, a few at a
  time; `import_in_worker` does it in a process of its own per backend, so that two
  backends' imports (CPU-bound in Python) use both cores.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import asyncpg
import httpx

from graphql_api.aggregation.service import TrainingFileService
from graphql_api.config import Settings
from graphql_api.conversations.importer import ConversationImporter, Outcome
from graphql_api.db.database import Database
from graphql_api.db.embedded import ensure_database, start_embedded, with_user
from graphql_api.db.pool import PoolLimits, create_pool
from graphql_api.db.writers import WriterPool
from graphql_api.domain.limits import LINK_TTL_SECONDS
from graphql_api.runtime import (
    APP_LOGIN_ROLE,
    DatabaseUrls,
    open_storage,
    prepare_database,
)
from graphql_api.storage.base import Storage

from .aggregation_probes import BenchError

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CLI = str(BIN / "training-files")
HOST = "127.0.0.1"
JWT_SECRET = "bench-aggregation-" + "w" * 40
S3_ACCESS_KEY = "bench-access-key"
S3_SECRET_KEY = "bench-secret-key"
START_TIMEOUT = 300.0
# The bench sweeps retired versions itself, between adds; the server's own rounds (which also
# list the whole store for orphans) would only land at random inside a measured add.
CLEANUP_INTERVAL = "86400"
# Imports at once: each waits on storage and PostgreSQL about as long as it computes.
IMPORTERS = 8

Say = Callable[[str], None]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def base_env(**extra: str) -> dict[str, str]:
    """A minimal environment: no setting of the developer's shell changes the defaults.
    PYTHONPATH stays, so a server runs the same code as the bench process (a checkout of
    another commit, say)."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH")
    return {name: os.environ[name] for name in keep if name in os.environ} | extra


def log_tail(log: Path, lines: int = 30) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


# ------------------------------------------------------------------------------ processes


@dataclass
class Processes:
    """Subprocesses started by the bench, stopped in reverse order (also at exit)."""

    running: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        atexit.register(self.stop_all)

    def start(self, name: str, command: list[str], env: dict[str, str], log: Path) -> int:
        out = log.open("wb")
        process = subprocess.Popen(
            command,
            env=env,
            cwd=PROJECT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running.append((name, process, out))
        return process.pid

    def pid_of(self, name: str) -> int | None:
        return next((p.pid for n, p, _ in self.running if n == name), None)

    def exited(self, pid: int) -> bool:
        return any(p.pid == pid and p.poll() is not None for _, p, _ in self.running)

    def stop(self, pid: int) -> None:
        for entry in list(self.running):
            if entry[1].pid == pid:
                self.running.remove(entry)
                _stop(*entry)

    def stop_all(self) -> None:
        while self.running:
            _stop(*self.running.pop())


def _stop(name: str, process: subprocess.Popen[bytes], out: IO[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            print(f"  {name} did not stop within 60 s: killing it", flush=True)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    out.close()


async def wait_until_answering(
    url: str, path: str, processes: Processes, pid: int, log: Path, what: str
) -> None:
    """Until `url + path` answers 200; stop if the process exits or START_TIMEOUT passes."""
    deadline = time.monotonic() + START_TIMEOUT
    async with httpx.AsyncClient(base_url=url, timeout=5, trust_env=False) as http:
        while time.monotonic() < deadline:
            if processes.exited(pid):
                raise BenchError(f"{what} exited while starting:\n{log_tail(log)}")
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(path)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise BenchError(f"{what} did not answer within {START_TIMEOUT:.0f} s:\n{log_tail(log)}")


# ------------------------------------------------------------------------------ directories


def scratch_dir(prefix: str) -> Path:
    """A temporary directory removed at exit, after every later-registered exit hook (such as
    the embedded PostgreSQL's own, which stops the server and deletes its data first)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, True)
    return path


# ------------------------------------------------------------------------------ PostgreSQL


async def start_postgres(pg_dir: Path) -> str:
    """A throwaway embedded PostgreSQL owned by this process; returns its maintenance DSN."""
    return await asyncio.to_thread(start_embedded, pg_dir, delete_on_exit=True)


async def run_statement(dsn: str, statement: str) -> None:
    """One statement on a connection of its own (VACUUM and CHECKPOINT cannot run in a
    transaction block)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def postmaster_pid(pg_dir: Path) -> int:
    """The embedded PostgreSQL's postmaster (first line of its postmaster.pid)."""
    pid_file = pg_dir / "postgres" / "postmaster.pid"
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError) as error:
        raise BenchError(f"no PostgreSQL pid in {pid_file}: {error}") from None


async def prepare_backend_database(
    maintenance_dsn: str, database: str, pg_dir: Path
) -> DatabaseUrls:
    """A database of its own on the one server: migrated, and the request path's login role
    (shared by the whole server) created as `serve` does it on an embedded server."""
    owner = await ensure_database(maintenance_dsn, database)
    urls = DatabaseUrls(app=with_user(owner, APP_LOGIN_ROLE), owner=owner)
    embedded = Settings.from_env({"DATA_DIR": str(pg_dir), "JWT_SECRET": JWT_SECRET})
    await prepare_database(embedded, urls)
    return urls


async def pieces_paths(urls: DatabaseUrls, ids: Sequence[UUID]) -> dict[UUID, str]:
    """Where each conversation's pre-rendered pieces object is (a key in its bucket)."""
    conn = await asyncpg.connect(urls.owner)
    try:
        rows = await conn.fetch(
            "SELECT conversation_id, pieces_path FROM conversations "
            "WHERE conversation_id = ANY($1::uuid[])",
            list(ids),
        )
    finally:
        await conn.close()
    return {row["conversation_id"]: row["pieces_path"] for row in rows}


# ------------------------------------------------------------------------------ S3


async def start_moto(processes: Processes, workdir: Path) -> str:
    """moto_server on 127.0.0.1 (as tests/s3_servers.py starts it); returns its endpoint.
    Its spooled object files go to `workdir`, so they are removed with it."""
    port = free_port()
    (workdir / "tmp").mkdir(parents=True, exist_ok=True)
    log = workdir / "moto.log"
    command = [str(BIN / "moto_server"), "-H", HOST, "-p", str(port)]
    env = base_env(TMPDIR=str(workdir / "tmp"))
    pid = processes.start("moto_server", command, env, log)
    url = f"http://{HOST}:{port}"
    await wait_until_answering(url, "/moto-api/", processes, pid, log, "moto_server")
    return url


# ------------------------------------------------------------------------------ backends


@dataclass(frozen=True)
class Backend:
    name: str  # "local" or "s3"
    database: str
    storage_env: dict[str, str]  # STORAGE_URL and, for S3, the endpoint and credentials
    storage_root: Path | None  # local storage's directory

    @classmethod
    def local(cls, root: Path) -> Backend:
        return cls("local", "bench_local", {"STORAGE_URL": root.as_uri()}, root)

    @classmethod
    def s3(cls, endpoint: str) -> Backend:
        env = {
            "STORAGE_URL": "s3://",
            "S3_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "S3_CREATE_BUCKETS": "true",
        }
        return cls("s3", "bench_s3", env, None)

    def server_env(self, urls: DatabaseUrls, data_dir: Path, port: int) -> dict[str, str]:
        """The shipped defaults, but on this backend's database and storage."""
        return base_env(
            DATA_DIR=str(data_dir),
            DATABASE_URL=urls.app,
            DATABASE_OWNER_URL=urls.owner,
            JWT_SECRET=JWT_SECRET,
            HOST=HOST,
            PORT=str(port),
            DEMO_CONVERSATIONS="0",
            CLEANUP_INTERVAL=CLEANUP_INTERVAL,
            **self.storage_env,
        )

    def settings_env(self, urls: DatabaseUrls, data_dir: Path) -> dict[str, str]:
        """The server's environment, for the same settings in a bench process."""
        return self.server_env(urls, data_dir, 8000)

    def settings(self, urls: DatabaseUrls, data_dir: Path) -> Settings:
        return Settings.from_env(self.settings_env(urls, data_dir))


@dataclass(frozen=True)
class Server:
    url: str
    pid: int
    log: Path


async def start_server(
    processes: Processes, backend: Backend, urls: DatabaseUrls, workdir: Path
) -> Server:
    """`training-files serve --no-demo` for `backend`, answering `/healthz` with 200."""
    port = free_port()
    log = workdir / f"server-{backend.name}.log"
    env = backend.server_env(urls, workdir / f"data-{backend.name}", port)
    pid = processes.start(f"{backend.name} server", [CLI, "serve", "--no-demo"], env, log)
    url = f"http://{HOST}:{port}"
    await wait_until_answering(url, "/healthz", processes, pid, log, f"the {backend.name} server")
    return Server(url, pid, log)


# ------------------------------------------------------------------------------ importing


@dataclass
class Owner:
    """The owner's connections and the backend's storage, in the bench process: for imports,
    and for sweeping the versions each add retires."""

    writers: WriterPool
    maintenance: Database
    storage: Storage

    @classmethod
    async def open(cls, settings: Settings, urls: DatabaseUrls) -> Owner:
        # As `open_owner_writers`, with a connection for each concurrent import.
        limits = PoolLimits(size=IMPORTERS, connect_timeout=settings.database_pool_timeout)
        writers = WriterPool(
            await create_pool(urls.owner, limits), timeout_seconds=settings.lock_timeout
        )
        try:
            pool = await create_pool(urls.owner, PoolLimits(size=2))
            maintenance = Database(pool, acquire_timeout_seconds=settings.database_pool_timeout)
            try:
                return cls(writers, maintenance, await open_storage(settings))
            except BaseException:
                await pool.close()
                raise
        except BaseException:
            await writers.close()
            raise

    async def close(self) -> None:
        await self.storage.close()
        await self.maintenance.pool.close()
        await self.writers.close()

    def service(self) -> TrainingFileService:
        """The service on the owner's connections (which may act as any user)."""
        return TrainingFileService(self.maintenance, self.writers, self.maintenance, self.storage)

    async def sweep(self) -> int:
        """Delete every retired object now, as the server's sweeper would once the download
        links to them have expired, so the store holds one version of each file."""
        later = datetime.now(UTC) + timedelta(seconds=LINK_TTL_SECONDS + 60)
        return await self.service().sweep_retired_objects(now=later, limit=100_000)


async def import_conversations(
    owner: Owner, paths: Sequence[Path], say: Say, *, every: int = 1000
) -> list[UUID]:
    """Import `paths` as the owner, IMPORTERS at a time; their ids, in the paths' order."""
    importer = ConversationImporter(owner.writers, owner.storage)
    ids: list[UUID | None] = [None] * len(paths)
    pending = iter(range(len(paths)))
    started = time.perf_counter()
    done = 0

    async def worker() -> None:
        nonlocal done
        for index in pending:
            result = await importer.import_file(paths[index])
            if result.outcome is not Outcome.IMPORTED or result.conversation_id is None:
                raise BenchError(f"import of {paths[index].name} failed: {result}")
            ids[index] = result.conversation_id
            done += 1
            if done % every == 0:
                rate = done / (time.perf_counter() - started)
                say(f"    imported {done:,}/{len(paths):,} ({rate:.0f}/s)")

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(IMPORTERS):
                group.create_task(worker())
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [i for i in ids if i is not None]


# A worker's result: ("ids", [uuid, ...]) or ("error", message).
_Result = tuple[str, list[str] | str]
WORKER_STOP_TIMEOUT = 30.0


def _import_worker(
    env: dict[str, str], urls: DatabaseUrls, paths: list[str], prefix: str, result: Any
) -> None:
    """A worker process's body: import `paths` as the owner and send back their ids."""

    async def run() -> list[str]:
        owner = await Owner.open(Settings.from_env(env), urls)
        try:
            ids = await import_conversations(
                owner, [Path(p) for p in paths], lambda line: print(prefix + line, flush=True)
            )
        finally:
            await owner.close()
        return [str(i) for i in ids]

    try:
        outcome: _Result = ("ids", asyncio.run(run()))
    except Exception as error:  # the parent reports it; a worker has no one else to tell
        outcome = ("error", f"{type(error).__name__}: {error}")
    result.send(outcome)
    result.close()


async def import_in_worker(
    env: dict[str, str], urls: DatabaseUrls, paths: Sequence[Path], prefix: str
) -> list[UUID]:
    """`import_conversations` in a fresh (spawned) process; terminated if the bench stops
    waiting for it, by an error or Ctrl-C."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    worker = context.Process(
        target=_import_worker,
        args=(env, urls, [str(p) for p in paths], prefix, send),
        daemon=True,
    )
    worker.start()
    send.close()
    try:
        while not receive.poll():
            if not worker.is_alive() and not receive.poll():
                raise BenchError(f"{prefix}the import process exited ({worker.exitcode})")
            await asyncio.sleep(0.5)
        kind, value = receive.recv()
    finally:
        receive.close()
        if worker.is_alive():
            worker.join(timeout=5)
        if worker.is_alive():
            worker.terminate()
            worker.join(timeout=WORKER_STOP_TIMEOUT)
    if kind != "ids" or not isinstance(value, list):
        raise BenchError(f"{prefix}import failed: {value}")
    return [UUID(i) for i in value]
