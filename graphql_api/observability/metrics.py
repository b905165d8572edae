"""Every metric the server exposes (Prometheus, `/metrics`), and the small helpers that the
code being measured calls.

Gauges say how they add up over the workers of `serve --workers N` (prometheus-client's
multiprocess mode): `livesum` sums the processes that are alive.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    import asyncpg

    from .context import Operation

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

HTTP_REQUESTS = Counter(
    "training_files_http_requests_total",
    "HTTP requests answered, by route, GraphQL operation and outcome.",
    ["route", "method", "status", "operation_type", "operation", "outcome", "error_code"],
)
HTTP_DURATION = Histogram(
    "training_files_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response.",
    ["route", "operation_type", "operation"],
    buckets=_SECONDS,
)
AGGREGATION_DURATION = Histogram(
    "training_files_aggregation_duration_seconds",
    "Time to write a training file's new version (both objects), once its lock is held.",
    ["kind", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
AGGREGATION_BYTES = Counter(
    "training_files_aggregation_bytes_written_total",
    "Bytes of training file objects written by creates and adds.",
    ["kind", "format"],
)
POOL_IN_USE = Gauge(
    "training_files_db_pool_connections_in_use",
    "Database connections lent out, by pool (requests, writers).",
    ["pool"],
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "training_files_db_pool_waiting",
    "Callers waiting for a connection of the pool.",
    ["pool"],
    multiprocess_mode="livesum",
)
LOCK_WAIT = Histogram(
    "training_files_writer_lock_wait_seconds",
    "Waits for a writer lock (the object's turn, a writer connection, the advisory lock).",
    ["kind", "outcome"],
    buckets=_SECONDS,
)
STORAGE_ERRORS = Counter(
    "training_files_storage_errors_total",
    "Storage operations that failed, by operation and reason.",
    ["operation", "reason"],
)
CACHE_HITS = Counter(
    "training_files_response_cache_hits_total", "GraphQL reads answered from the response cache."
)
CACHE_MISSES = Counter(
    "training_files_response_cache_misses_total",
    "GraphQL reads the view answered and the response cache kept (no current entry).",
)
COMPILED_READS = Counter(
    "training_files_compiled_reads_total",
    "Trusted reads by how they were answered: answered by their one SQL statement, or by the "
    "resolvers after the statement failed or the compiler declined.",
    ["result"],
)
BUILD_INFO = Gauge(
    "training_files_build_info",
    "Always 1; the label is the installed package's version.",
    ["version"],
    multiprocess_mode="max",
)

# Operation names are chosen by clients: past this many distinct ones (per process) a name is
# counted as "other", so a client inventing names cannot grow the metrics without bound.
MAX_OPERATION_NAMES = 100
_MAX_NAME_LENGTH = 64
_operation_names: set[str] = set()


def operation_label(name: str | None) -> str:
    if not name:
        return ""
    if name not in _operation_names:
        if len(_operation_names) >= MAX_OPERATION_NAMES or len(name) > _MAX_NAME_LENGTH:
            return "other"
        _operation_names.add(name)
    return name


def observe_request(
    route: str, method: str, status: int, operation: Operation | None, seconds: float
) -> None:
    outcome = operation.outcome if operation else ("ok" if status < 400 else "error")
    kind = (operation.type or "") if operation else ""
    name = operation_label(operation.name) if operation else ""
    code = operation.error_codes[0] if operation and operation.error_codes else ""
    HTTP_REQUESTS.labels(route, method, str(status), kind, name, outcome, code).inc()
    HTTP_DURATION.labels(route, kind, name).observe(seconds)


class Build:
    """One build being measured: `wrote` adds the bytes of its objects."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def wrote(self, *, json: int, jsonl: int) -> None:
        AGGREGATION_BYTES.labels(self.kind, "json").inc(json)
        AGGREGATION_BYTES.labels(self.kind, "jsonl").inc(jsonl)


@contextmanager
def measure_build(kind: str) -> Iterator[Build]:
    """Time a build ("create", "add" or "remove"); it failed unless the block ends normally."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield Build(kind)
        outcome = "ok"
    finally:
        AGGREGATION_DURATION.labels(kind, outcome).observe(time.perf_counter() - started)


class LockWait:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.over = False
        self._started = time.perf_counter()

    def acquired(self) -> None:
        self._record("acquired")

    def _record(self, outcome: str) -> None:
        if not self.over:
            self.over = True
            LOCK_WAIT.labels(self.kind, outcome).observe(time.perf_counter() - self._started)


@contextmanager
def lock_wait(kind: str) -> Iterator[LockWait]:
    """A wait for a writer lock: `acquired()` ends it; leaving the block first means it failed
    (the deadline passed, or the database failed)."""
    wait = LockWait(kind)
    try:
        yield wait
    finally:
        wait._record("not_acquired")


# The pools whose connections are measured, by id (asyncpg pools take no weak references);
# the pool itself is kept to tell a new pool from a closed one that had the same id.
_pools: dict[int, tuple[asyncpg.Pool, str]] = {}


def watch_pool(pool: asyncpg.Pool, name: str) -> None:
    _pools[id(pool)] = (pool, name)
    released(pool)


def _name_of(pool: asyncpg.Pool) -> str | None:
    watched = _pools.get(id(pool))
    return watched[1] if watched is not None and watched[0] is pool else None


@contextmanager
def acquiring(pool: asyncpg.Pool) -> Iterator[None]:
    """Around a wait for one of the pool's connections."""
    name = _name_of(pool)
    if name is None:
        yield
        return
    POOL_WAITING.labels(name).inc()
    try:
        yield
    finally:
        POOL_WAITING.labels(name).dec()
        POOL_IN_USE.labels(name).set(_in_use(pool))


def released(pool: asyncpg.Pool) -> None:
    """After a connection went back to the pool."""
    name = _name_of(pool)
    if name is not None:
        POOL_IN_USE.labels(name).set(_in_use(pool))


def _in_use(pool: asyncpg.Pool) -> int:
    return pool.get_size() - pool.get_idle_size()
