"""What the write benchmark measures with: the GraphQL API over HTTP, a server's memory and
I/O counters from /proc, and the I/O floor of a create on the storage disk."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from uuid import UUID

import httpx

from graphql_api.auth import mint_token
from graphql_api.storage.base import TRAINING_BUCKET

MB = 1024 * 1024
KB = 1024

_FILE_FIELDS = "id conversationCount jsonFileSize jsonlFileSize"
CREATE = f"""
mutation ($name: String!, $ids: [ID!]!) {{
  createTrainingFile(input: {{name: $name, conversationIds: $ids}}) {{
    trainingFile {{ {_FILE_FIELDS} }} userErrors {{ code message }} }} }}
"""
ADD = f"""
mutation ($file: ID!, $ids: [ID!]!) {{
  addConversations(input: {{trainingFileId: $file, conversationIds: $ids}}) {{
    trainingFile {{ {_FILE_FIELDS} }} userErrors {{ code message }} }} }}
"""


class BenchError(Exception):
    """Something the bench needs did not work; the message says what."""


# ------------------------------------------------------------------------------ GraphQL


@dataclass(frozen=True)
class FileState:
    """A training file as a mutation answered it, and the mutation's wall time."""

    id: str
    conversations: int
    json_bytes: int
    jsonl_bytes: int
    seconds: float

    @property
    def bytes(self) -> int:
        return self.json_bytes + self.jsonl_bytes


class Api:
    """`createTrainingFile` and `addConversations` over HTTP, as one user."""

    def __init__(self, url: str, user: UUID, secret: str) -> None:
        token = mint_token(user, secret=secret)
        self._http = httpx.AsyncClient(
            base_url=url,
            timeout=httpx.Timeout(600.0),
            headers={"Authorization": f"Bearer {token}"},
            trust_env=False,  # 127.0.0.1 only: no proxy from the environment
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    async def create(self, name: str, ids: Sequence[UUID]) -> FileState:
        variables = {"name": name, "ids": [str(i) for i in ids]}
        return await self._mutate(CREATE, "createTrainingFile", variables)

    async def add(self, file_id: str, ids: Sequence[UUID]) -> FileState:
        variables = {"file": file_id, "ids": [str(i) for i in ids]}
        return await self._mutate(ADD, "addConversations", variables)

    async def _mutate(self, query: str, field: str, variables: dict[str, Any]) -> FileState:
        started = time.perf_counter()
        response = await self._http.post("/graphql", json={"query": query, "variables": variables})
        seconds = time.perf_counter() - started
        body = response.json() if response.status_code == 200 else {}
        payload = (body.get("data") or {}).get(field) or {}
        node = payload.get("trainingFile")
        if not node:
            problem = payload.get("userErrors") or body.get("errors") or response.text[:500]
            raise BenchError(f"{field} failed (HTTP {response.status_code}): {problem}")
        return FileState(
            node["id"],
            node["conversationCount"],
            int(node["jsonFileSize"]),
            int(node["jsonlFileSize"]),
            seconds,
        )


# ------------------------------------------------------------------------------ /proc


def load_average() -> float:
    """The machine's 1-minute load average: on 2 cores, above ~2 means the processes measured
    shared the CPU with others."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no {field}")


def rss_mb(pid: int) -> float:
    """Resident set size now."""
    return _status_kb(pid, "VmRSS") / KB


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the peak resident set size since the start or since `reset_peak_rss`."""
    return _status_kb(pid, "VmHWM") / KB


def reset_peak_rss(pid: int) -> bool:
    """Start a new VmHWM peak from the current RSS (Linux `clear_refs` 5); False if refused,
    and then the peak goes on counting from the process's start."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


async def wait_until_idle(pid: int, *, quiet: float = 0.02, timeout: float = 300.0) -> float:
    """Wait until the process used under `quiet` s of CPU in each of two half-seconds (a
    server's start-up clean-up lists every object, which would land in the first timings);
    return how long that took. Bounded by `timeout`."""
    started = time.monotonic()
    calm, before = 0, cpu_seconds(pid)
    while calm < 2 and time.monotonic() - started < timeout:
        await asyncio.sleep(0.5)
        now = cpu_seconds(pid)
        calm = calm + 1 if now - before < quiet else 0
        before = now
    return time.monotonic() - started


def postgres_cpu_seconds(postmaster: int) -> float:
    """CPU time of a PostgreSQL server: the postmaster's own and its reaped children's, plus
    that of every live child (backends, checkpointer, autovacuum...)."""
    fields = Path(f"/proc/{postmaster}/stat").read_text().rpartition(")")[2].split()
    ticks = sum(int(f) for f in fields[11:15])
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):  # a process that ended meanwhile
            child = stat.read_text().rpartition(")")[2].split()
            if int(child[1]) == postmaster:
                ticks += int(child[11]) + int(child[12])
    return ticks / _TICKS


def runqueue_wait_seconds(pid: int) -> float:
    """Time the process's threads were ready to run but waited for a CPU (the second field of
    each /proc/<pid>/task/<tid>/schedstat): what a loaded machine adds to a request."""
    waited = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError, IndexError, ValueError):  # a thread that ended
            waited += int(stat.read_text().split()[1])
    return waited / 1e9


@dataclass(frozen=True)
class Cpu:
    """CPU seconds (a reading, or used over a measured call): the server, the time its threads
    waited for a CPU, PostgreSQL, and moto (S3)."""

    server: float
    server_waiting: float
    postgres: float
    store: float | None

    def __sub__(self, before: Cpu) -> Cpu:
        store = (
            self.store - before.store
            if self.store is not None and before.store is not None
            else None
        )
        return Cpu(
            self.server - before.server,
            self.server_waiting - before.server_waiting,
            self.postgres - before.postgres,
            store,
        )


class CpuMeter:
    """Reads the CPU counters of the processes a request keeps busy, before and after it."""

    def __init__(self, server: int, postmaster: int, store: int | None) -> None:
        self.pids = (server, postmaster, store)

    def read(self) -> Cpu:
        server, postmaster, store = self.pids
        return Cpu(
            cpu_seconds(server),
            runqueue_wait_seconds(server),
            postgres_cpu_seconds(postmaster),
            cpu_seconds(store) if store else None,
        )

    def since(self, before: Cpu) -> Cpu:
        return self.read() - before


def bytes_written(pid: int) -> int:
    """`wchar` of /proc/<pid>/io: bytes the process passed to write-like system calls (files and
    sockets alike), so what the server pushed itself, not what it had copied for it."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/io has no wchar")


# ------------------------------------------------------------------------------ I/O floor


@dataclass(frozen=True)
class Floor:
    """Reading a create's stored pieces and writing its bytes with fsync, on the same disk."""

    read_seconds: float
    write_seconds: float
    read_bytes: int
    written_bytes: int

    @property
    def seconds(self) -> float:
        return self.read_seconds + self.write_seconds


def stored_files(storage_root: Path, file_id: str) -> list[Path]:
    """Every file under a training file's directory in local storage: all its versions'
    objects, and the segments a composite object is made of."""
    return [p for p in (storage_root / TRAINING_BUCKET / file_id).rglob("*") if p.is_file()]


def stored_bytes(storage_root: Path, file_id: str) -> int:
    """Bytes under a training file's directory (right after a create: what it stored)."""
    return sum(p.stat().st_size for p in stored_files(storage_root, file_id))


def io_floor(pieces: Sequence[Path], size: int, target: Path) -> Floor:
    """Read every file of `pieces` whole, then write `size` bytes to the new file `target`
    in 1 MiB writes, fsync it, and remove it."""
    started = time.perf_counter()
    read = 0
    sample = b""
    for path in pieces:
        data = path.read_bytes()
        read += len(data)
        if len(sample) < MB:
            sample += data
    read_seconds = time.perf_counter() - started
    chunk = memoryview((sample or b"\0") * (MB // max(len(sample), 1) + 1))[:MB]

    started = time.perf_counter()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        left = size
        while left:
            left -= os.write(fd, chunk[: min(left, MB)])
        os.fsync(fd)
    finally:
        os.close(fd)
    write_seconds = time.perf_counter() - started
    target.unlink()
    return Floor(read_seconds, write_seconds, read, size)
