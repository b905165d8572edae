"""What crashes leave behind: objects no row points at, and writes that never finished.

Something is removed only when its writer is provably gone. Every writer holds the writer lock
of the object it writes (the training file or conversation whose id starts the key) from its
first byte to its commit, so: the lock must be free, and under it the database must still not
reference the object (a writer may have committed between the listing and the lock). A
composite's segment is referenced when an object its file's row or retired versions reference
names it: under the lock no compose of that file is under way, so no manifest is about to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from ..db import consistency as sql
from ..db.database import Database
from ..db.writers import LockedSession, LockKind, WriterPool
from ..errors import Unavailable
from ..storage.base import (
    BUCKETS,
    TRAINING_BUCKET,
    PendingWrite,
    Storage,
    StorageError,
    StoredObject,
)
from .layout import (
    ConversationKey,
    Placement,
    ProbeKey,
    SegmentKey,
    TrainingKey,
    place,
    writer_lock,
)
from .report import Finding, Kind, State

# A health probe removes its object within seconds; one older than this was abandoned.
PROBE_GRACE = timedelta(minutes=5)
# Objects looked up in the database at a time.
_BATCH = 500


@dataclass(frozen=True)
class Orphan:
    finding: Finding  # as found, before anything was locked or removed
    lock: tuple[LockKind, UUID] | None  # the writer lock that guards it; None for a probe's
    pending: PendingWrite | None = None


@dataclass
class Tally:
    """What the listings saw, orphans or not."""

    objects: int = 0
    object_bytes: int = 0
    pending_writes: int = 0


async def find(
    db: Database, storage: Storage, tally: Tally, now: datetime
) -> AsyncIterator[Orphan | Finding]:
    """Every orphan in the store, and every object or write not in our layout (as findings)."""
    for bucket in BUCKETS:
        async for item in _unreferenced_objects(db, storage, bucket, tally, now):
            yield item
        async for item in _unfinished_writes(storage, bucket, tally, now):
            yield item


async def settle(
    orphan: Orphan, writers: WriterPool, storage: Storage, *, repair: bool
) -> Finding | None:
    """What becomes of `orphan`: in use, found, removed (with `repair`), or failed; None when
    it turned out to be referenced after all."""
    finding = orphan.finding
    try:
        if orphan.lock is None:
            return await _removed(orphan, storage) if repair else finding
        kind, object_id = orphan.lock
        async with writers.try_exclusive(kind, object_id) as locked:
            if locked is None:
                return finding.becomes(
                    State.IN_USE, "its writer holds the lock: a write in progress"
                )
            if orphan.pending is None and await _referenced(locked, storage, finding):
                return None
            return await _removed(orphan, storage) if repair else finding
    except (StorageError, Unavailable, asyncpg.PostgresError, OSError) as error:
        return finding.becomes(State.FAILED, f"{type(error).__name__}: {error}")


async def _removed(orphan: Orphan, storage: Storage) -> Finding:
    finding = orphan.finding
    if orphan.pending is not None:
        await storage.abort_pending_write(orphan.pending)
    else:
        await storage.delete(finding.bucket, finding.key)
    return finding.becomes(State.REMOVED)


async def _referenced(locked: LockedSession, storage: Storage, finding: Finding) -> bool:
    placement = place(finding.bucket, finding.key)
    async with locked.session() as conn:
        if isinstance(placement, SegmentKey):
            named = await _named_segments(conn, storage, finding.bucket, [placement.file_id])
            return finding.key in named.get(placement.file_id, frozenset())
        if isinstance(placement, TrainingKey):
            return await sql.training_object_referenced(
                conn, finding.bucket, placement.file_id, finding.key
            )
        return await sql.conversation_file_referenced(conn, finding.key)


# -- objects ---------------------------------------------------------------------------------


async def _unreferenced_objects(
    db: Database, storage: Storage, bucket: str, tally: Tally, now: datetime
) -> AsyncIterator[Orphan | Finding]:
    batch: list[StoredObject] = []
    async for stored in storage.list_objects(bucket):
        tally.objects += 1
        tally.object_bytes += stored.size
        batch.append(stored)
        if len(batch) >= _BATCH:
            for item in await _classify(db, storage, batch, now):
                yield item
            batch = []
    for item in await _classify(db, storage, batch, now):
        yield item


async def _classify(
    db: Database, storage: Storage, batch: Sequence[StoredObject], now: datetime
) -> list[Orphan | Finding]:
    placed = [(stored, place(stored.bucket, stored.key)) for stored in batch]
    references = await _References.of(db, storage, placed)
    found: list[Orphan | Finding] = []
    for stored, placement in placed:
        finding = _finding(stored, placement, references, now)
        if finding is None:
            continue
        lock = writer_lock(placement) if placement is not None else None
        found.append(Orphan(finding, lock) if finding.state is State.FOUND else finding)
    return found


@dataclass(frozen=True)
class _References:
    """What the rows of one batch's owners point at."""

    files: dict[UUID, sql.FileObjects]
    retired: set[str]
    conversation_files: dict[UUID, set[str]]
    segments: dict[UUID, frozenset[str]]  # the segments each file's objects name

    @classmethod
    async def of(
        cls,
        db: Database,
        storage: Storage,
        placed: Sequence[tuple[StoredObject, Placement | None]],
    ) -> _References:
        file_ids = {p.file_id for _, p in placed if isinstance(p, TrainingKey)}
        segment_owners = {p.file_id for _, p in placed if isinstance(p, SegmentKey)}
        conversation_ids = {p.conversation_id for _, p in placed if isinstance(p, ConversationKey)}
        training_keys = [s.key for s, p in placed if isinstance(p, TrainingKey)]
        if not (file_ids or segment_owners or conversation_ids):
            return cls({}, set(), {}, {})
        async with db.session() as conn:
            return cls(
                await sql.file_objects(conn, list(file_ids)),
                await sql.retired_among(conn, TRAINING_BUCKET, training_keys),
                await sql.conversation_files(conn, list(conversation_ids)),
                await _named_segments(conn, storage, TRAINING_BUCKET, list(segment_owners)),
            )


async def _named_segments(
    conn: asyncpg.Connection, storage: Storage, bucket: str, file_ids: Sequence[UUID]
) -> dict[UUID, frozenset[str]]:
    """The segments that each file's current and retired objects name (S3 composites)."""
    if not file_ids:
        return {}
    current = await sql.file_objects(conn, file_ids)
    retired = await sql.retired_of_files(conn, bucket, file_ids)
    named: dict[UUID, frozenset[str]] = {}
    for file_id in file_ids:
        row = current.get(file_id)
        keys = set(row.object_paths if row is not None else ()) | retired.get(file_id, set())
        found: set[str] = set()
        for key in sorted(keys):
            found |= await storage.segments_of(bucket, key)
        named[file_id] = frozenset(found)
    return named


def _finding(
    stored: StoredObject, placement: Placement | None, references: _References, now: datetime
) -> Finding | None:
    kind = _orphan_kind(stored, placement, references, now)
    if kind is None:
        return None
    if kind is Kind.FOREIGN_OBJECT:
        return Finding(
            kind,
            State.REPORTED,
            stored.bucket,
            stored.key,
            stored.size,
            detail="not in this product's layout: left alone",
        )
    file_id = placement.file_id if isinstance(placement, TrainingKey | SegmentKey) else None
    return Finding(kind, State.FOUND, stored.bucket, stored.key, stored.size, file_id)


def _orphan_kind(
    stored: StoredObject, placement: Placement | None, references: _References, now: datetime
) -> Kind | None:
    """Why the object is an orphan, or None when something still needs it."""
    if placement is None:
        return Kind.FOREIGN_OBJECT
    if isinstance(placement, ProbeKey):
        return Kind.STALE_PROBE if stored.modified_at < now - PROBE_GRACE else None
    if isinstance(placement, ConversationKey):
        current = references.conversation_files.get(placement.conversation_id, set())
        return None if stored.key in current else Kind.UNREFERENCED_CONVERSATION_FILE
    if isinstance(placement, SegmentKey):
        named = references.segments.get(placement.file_id, frozenset())
        return None if stored.key in named else Kind.UNREFERENCED_SEGMENT
    if stored.key in references.retired:  # an old version, kept until its links expire
        return None
    row = references.files.get(placement.file_id)
    if row is None:
        return Kind.FILE_WITHOUT_ROW
    if stored.key in row.object_paths:
        return None
    if placement.version > row.version:
        return Kind.UNCOMMITTED_VERSION
    return Kind.UNREFERENCED_VERSION


# -- writes that never finished --------------------------------------------------------------


async def _unfinished_writes(
    storage: Storage, bucket: str, tally: Tally, now: datetime
) -> AsyncIterator[Orphan | Finding]:
    async for pending in storage.list_pending_writes(bucket):
        tally.pending_writes += 1
        placement = place(bucket, pending.key)
        if placement is None:
            yield Finding(
                Kind.FOREIGN_PENDING_WRITE,
                State.REPORTED,
                bucket,
                pending.key,
                pending.size,
                detail="a write to a key outside this product's layout: left alone",
            )
        elif isinstance(placement, ProbeKey):
            if pending.started_at < now - PROBE_GRACE:
                yield Orphan(
                    Finding(Kind.STALE_PROBE, State.FOUND, bucket, pending.key, pending.size),
                    None,
                    pending,
                )
        else:
            file_id = placement.file_id if isinstance(placement, TrainingKey | SegmentKey) else None
            yield Orphan(
                Finding(
                    Kind.PENDING_WRITE, State.FOUND, bucket, pending.key, pending.size, file_id
                ),
                writer_lock(placement),
                pending,
            )
