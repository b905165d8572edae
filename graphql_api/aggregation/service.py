"""Create and extend training files: check every rule, stream the objects, commit atomically.

A change writes new, immutable objects under `<file_id>/v<version>/`, and one transaction
points the row at them (statistics, sizes, body offsets, version) and adds the junction rows.
The transaction's statements run while the objects are written (their sizes are known from
their parts), and it commits once both are done, so its round trips hide behind the disk.
Old objects are retired, not deleted: they stay until every download link to them has expired.
An add copies the old body as one byte range, so it reads and renders only what is added; a
removal copies the old body's bytes around the removed conversations, as recorded in the
junction rows (removal.py), so it reads and renders none of them.

A version has four objects: the full JSON and the JSONL (`brightrun-lora-v4`), and the trainer
exports OPENAI_CHAT and HF_DATASET (exports.py). The two exports have no header, so an add
copies the whole old object. Versions built before the exports existed have none: downloading
one of them is NOT_READY, and their next add writes the exports in full, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple
from uuid import UUID, uuid4

import asyncpg

from ..db import conversations as conversation_rows
from ..db import training_files as rows
from ..db.database import Database, Reader
from ..db.training_files import FileVersion, MemberRanges, MemberStats, TrainingFileRecord
from ..db.writers import LockedSession, LockKind, WriterPool
from ..domain.enums import EnrichmentStatus, FileFormat, TrainingFileStatus
from ..domain.limits import LINK_TTL_SECONDS, TARGET_MODEL, VERTICAL, cents, percentage
from ..domain.vocabulary import CONSULTANT_PROFILE as DEFAULT_CONSULTANT_PROFILE
from ..errors import Conflict, ErrorCode, Forbidden, NotFound, ProblemList
from ..observability.metrics import Build, measure_build
from ..pagination import Cursor, Page, keyset_page
from ..progress.reporter import BuildProgress, on_connection
from ..storage.base import (
    CONVERSATION_BUCKET,
    TRAINING_BUCKET,
    CopyRange,
    Part,
    Storage,
    StorageError,
    read_all,
)
from ..storage.tasks import gather
from . import pieces, removal
from .format import JSON_FOOTER, Distribution, FileHeader, QualitySummary, json_header, jsonl_header
from .requests import check_chosen_id, check_description, check_ids, check_name

# The trainer-ready exports; their objects are their bodies (no header, no footer).
_EXPORTS = (FileFormat.OPENAI_CHAT, FileFormat.HF_DATASET)


@dataclass(frozen=True)
class Removal:
    """How the junction rows follow a removal's version: moved up over the gaps in SQL, or
    (for a version written anew) renumbered in `kept`'s order with its ranges."""

    removed_ids: list[UUID]
    kept: list[tuple[UUID, MemberRanges | None]] | None = None


@dataclass(frozen=True)
class _Draft:
    """A version before it is written: each object's key and parts, and what its row will
    say but the sizes, which the parts tell when every one of them has a known length."""

    number: int
    keys: dict[FileFormat, str]
    parts: dict[FileFormat, list[Part]]
    heads: dict[FileFormat, bytes]
    stats: MemberStats
    distribution: list[rows.DistributionRow]
    now: datetime

    @classmethod
    def of(
        cls,
        file_id: UUID,
        number: int,
        heads: dict[FileFormat, bytes],
        parts: dict[FileFormat, list[Part]],
        stats: MemberStats,
        distribution: list[rows.DistributionRow],
        now: datetime,
    ) -> _Draft:
        """Version `number` of `parts`; the JSON's footer is added here."""
        keys = {kind: f"{file_id}/v{number}/training{kind.extension}" for kind in pieces.KINDS}
        parts[FileFormat.JSON].append(JSON_FOOTER)
        return cls(number, keys, parts, heads, stats, distribution, now)

    def sizes(self) -> dict[FileFormat, int] | None:
        """Each object's size before it is written; None when a part is a stream."""
        if not all(isinstance(p, bytes | CopyRange) for ps in self.parts.values() for p in ps):
            return None
        return {kind: _length(parts) for kind, parts in self.parts.items()}

    def version(self, size: dict[FileFormat, int]) -> FileVersion:
        """The row of this version, whose objects are `size` bytes."""
        quality = _quality(self.stats)
        stats, keys, heads = self.stats, self.keys, self.heads
        return FileVersion(
            version=self.number,
            json_file_path=keys[FileFormat.JSON],
            jsonl_file_path=keys[FileFormat.JSONL],
            json_file_size=size[FileFormat.JSON],
            jsonl_file_size=size[FileFormat.JSONL],
            json_body_start=len(heads[FileFormat.JSON]),
            json_body_end=size[FileFormat.JSON] - len(JSON_FOOTER),
            jsonl_body_start=len(heads[FileFormat.JSONL]),
            jsonl_body_end=size[FileFormat.JSONL],
            openai_chat_file_path=keys[FileFormat.OPENAI_CHAT],
            openai_chat_file_size=size[FileFormat.OPENAI_CHAT],
            hf_dataset_file_path=keys[FileFormat.HF_DATASET],
            hf_dataset_file_size=size[FileFormat.HF_DATASET],
            conversation_count=stats.conversation_count,
            total_training_pairs=stats.total_pairs,
            trainable_pairs=stats.trainable_pairs,
            avg_quality_score=quality.avg_quality_score,
            min_quality_score=quality.min_quality_score,
            max_quality_score=quality.max_quality_score,
            human_reviewed_count=stats.human_reviewed_count,
            scaffolding_distribution=_distribution_for_row(self.distribution),
            quality_sum=stats.quality_sum,
            quality_count=stats.quality_count,
            consultant_profile=stats.consultant_profile,
            updated_at=self.now,
        )


@dataclass(frozen=True)
class DownloadTarget:
    bucket: str
    key: str
    filename: str
    content_type: str


class TrainingFileService:
    def __init__(
        self,
        db: Database,
        writers: WriterPool,
        maintenance: Database,
        storage: Storage,
        *,
        link_ttl_seconds: int = LINK_TTL_SECONDS,
        fetch_concurrency: int = 8,
    ) -> None:
        self._db = db
        self._writers = writers
        self._maintenance = maintenance
        self._storage = storage
        self._link_ttl = timedelta(seconds=link_ttl_seconds)
        self._fetch_concurrency = fetch_concurrency

    # ------------------------------------------------------------------ commands

    async def create_training_file(
        self,
        user_id: UUID,
        name: object,
        description: object,
        conversation_ids: object,
        training_file_id: object = None,
    ) -> TrainingFileRecord:
        """`training_file_id`, when given, is the new file's id: a client that chose it can
        follow the create's progress from its start."""
        problems = ProblemList()
        checked_name = check_name(name, problems)
        checked_description = check_description(description, problems)
        ids = check_ids(conversation_ids, problems)
        chosen_id = check_chosen_id(training_file_id, problems)
        async with self._db.session(user_id) as conn:
            if checked_name is not None:
                taken = await rows.same_name(conn, user_id, checked_name)
                if taken is not None:
                    _name_taken(problems, taken)
            if chosen_id is not None and await rows.get(conn, chosen_id) is not None:
                _id_taken(problems, chosen_id)
            records = await _eligible(conn, ids, problems)
            additions = None if problems.problems else await _additions(conn, None, records)
        problems.raise_if_any("the training file was not created")
        assert checked_name is not None and additions is not None

        file_id = chosen_id or uuid4()
        now = _now()
        # Held while the objects are written, so `check --repair` knows they are not orphans.
        async with self._writers.exclusive(LockKind.TRAINING_FILE, file_id) as locked:
            progress = BuildProgress(on_connection(locked.connection), file_id, len(records))
            async with _reported(progress):
                await progress.building()
                with measure_build("create") as build:
                    draft, added = await self._build(
                        file_id, checked_name, None, records, additions, now, now, progress
                    )

                    async def insert(
                        conn: asyncpg.Connection, version: FileVersion
                    ) -> TrainingFileRecord:
                        record = await rows.insert(
                            conn, file_id, checked_name, checked_description, user_id, version
                        )
                        ranges = _new_ranges(version, added)
                        await rows.add_members(conn, file_id, ids, 0, user_id, ranges)
                        await _verify_unchanged(conn, records)
                        return record

                    try:
                        record = await self._write_and_commit(
                            locked, user_id, draft, progress, build, insert
                        )
                    except BaseException as error:
                        if _is_name_conflict(error):
                            _name_taken(problems, checked_name)
                        elif _is_id_conflict(error) and chosen_id is not None:
                            _id_taken(problems, chosen_id)
                        problems.raise_if_any("the training file was not created")
                        raise
                return record

    async def add_conversations(
        self, user_id: UUID, training_file_id: UUID, conversation_ids: object
    ) -> TrainingFileRecord:
        problems = ProblemList()
        ids = check_ids(conversation_ids, problems)
        problems.raise_if_any("no conversations were added")
        # Refuse what can be refused before queueing for the file's lock.
        async with self._db.session(user_id) as conn:
            await self._owned_active_file(conn, user_id, training_file_id)

        async with self._writers.exclusive(LockKind.TRAINING_FILE, training_file_id) as locked:
            progress = BuildProgress(on_connection(locked.connection), training_file_id, len(ids))
            async with _reported(progress):
                async with locked.session(user_id) as conn:
                    current = await self._owned_active_file(conn, user_id, training_file_id)
                    already = await rows.members_among(conn, training_file_id, ids)
                    if already:
                        listed = ", ".join(str(i) for i in ids if i in already)
                        problems.add(
                            ErrorCode.ALREADY_IN_FILE,
                            f"Conversations already in training file: {listed}",
                            field="conversation_ids",
                            conversation_ids=[i for i in ids if i in already],
                        )
                    records = await _eligible(conn, [i for i in ids if i not in already], problems)
                    additions = (
                        None if problems.problems else await _additions(conn, current, records)
                    )
                problems.raise_if_any("no conversations were added")
                assert additions is not None
                # Committed at once, so that every reader sees the file being changed.
                async with locked.session(user_id) as conn:
                    await rows.start_processing(conn, training_file_id)
                return await self._add(locked, user_id, current, ids, records, additions, progress)

    async def _add(
        self,
        locked: LockedSession,
        user_id: UUID,
        current: TrainingFileRecord,
        ids: list[UUID],
        records: list[rows.Candidate],
        additions: _Additions,
        progress: BuildProgress,
    ) -> TrainingFileRecord:
        """Build and commit the next version of `current`, whose lock `locked` holds; a
        failure puts the file back to ACTIVE as it was."""
        progress.expect(current.conversation_count + len(records))
        progress.advanced_to(current.conversation_count)
        await progress.building()
        now = _now()
        try:
            with measure_build("add") as build:
                draft, added = await self._build(
                    current.id,
                    current.name,
                    current,
                    records,
                    additions,
                    current.created_date,
                    now,
                    progress,
                )

                async def add_members(conn: asyncpg.Connection, version: FileVersion) -> None:
                    ranges = _new_ranges(version, added)
                    first_position = current.conversation_count
                    await rows.add_members(conn, current.id, ids, first_position, user_id, ranges)
                    await _verify_unchanged(conn, records)

                updated = await self._commit(
                    locked, user_id, current, draft, add_members, progress, build
                )
        except BaseException:
            await self._unmark_processing(locked, user_id, current.id)
            raise
        return updated

    async def remove_conversations(
        self, user_id: UUID, training_file_id: UUID, conversation_ids: object
    ) -> TrainingFileRecord:
        """Build the version without these conversations from the current one's bytes around
        them, so a removal reads and renders nothing of the conversations that stay."""
        problems = ProblemList()
        ids = check_ids(conversation_ids, problems)
        problems.raise_if_any("no conversations were removed")
        # Refuse what can be refused before queueing for the file's lock.
        async with self._db.session(user_id) as conn:
            await self._owned_active_file(conn, user_id, training_file_id)

        async with self._writers.exclusive(LockKind.TRAINING_FILE, training_file_id) as locked:
            progress = BuildProgress(on_connection(locked.connection), training_file_id, 0)
            async with _reported(progress):
                async with locked.session(user_id) as conn:
                    current = await self._owned_active_file(conn, user_id, training_file_id)
                    removed = await rows.removed_members(conn, training_file_id, ids)
                _check_removable(current, ids, removed, problems)
                problems.raise_if_any("no conversations were removed")
                # Committed at once, so that every reader sees the file being changed.
                async with locked.session(user_id) as conn:
                    await rows.start_processing(conn, training_file_id)
                return await self._remove(locked, user_id, current, removed, progress)

    async def _remove(
        self,
        locked: LockedSession,
        user_id: UUID,
        current: TrainingFileRecord,
        removed: list[rows.RemovedMember],
        progress: BuildProgress,
    ) -> TrainingFileRecord:
        """As `_add`: build and commit the next version, or put the file back as it was."""
        # The conversations that stay are copied, not rendered: all of them are ready at once.
        kept = current.conversation_count - len(removed)
        progress.expect(kept)
        progress.advanced_to(kept)
        await progress.building()
        now = _now()
        try:
            with measure_build("remove") as build:
                draft, change = await self._build_without(
                    locked, user_id, current, removed, now, progress
                )

                async def remove_members(conn: asyncpg.Connection, version: FileVersion) -> None:
                    if change.kept is None:
                        await rows.remove_members(conn, current.id, change.removed_ids)
                    else:
                        await rows.remove_members_renumbered(
                            conn,
                            current.id,
                            change.removed_ids,
                            [member for member, _ in change.kept],
                            [ranges for _, ranges in change.kept],
                        )

                updated = await self._commit(
                    locked, user_id, current, draft, remove_members, progress, build
                )
        except BaseException:
            await self._unmark_processing(locked, user_id, current.id)
            raise
        return updated

    async def _commit(
        self,
        locked: LockedSession,
        user_id: UUID,
        current: TrainingFileRecord,
        draft: _Draft,
        change_members: Callable[[asyncpg.Connection, FileVersion], Awaitable[None]],
        progress: BuildProgress,
        build: Build,
    ) -> TrainingFileRecord:
        """Make `draft` the file's current version, with its members changed."""

        async def update(conn: asyncpg.Connection, version: FileVersion) -> TrainingFileRecord:
            await change_members(conn, version)
            # The database retires the replaced objects itself (a trigger).
            updated = await rows.update_version(conn, current.id, current.version, version)
            if updated is None:
                raise Conflict("the training file changed meanwhile; try again")
            return updated

        return await self._write_and_commit(locked, user_id, draft, progress, build, update)

    async def _write_and_commit(
        self,
        locked: LockedSession,
        user_id: UUID,
        draft: _Draft,
        progress: BuildProgress,
        build: Build,
        statements: Callable[[asyncpg.Connection, FileVersion], Awaitable[TrainingFileRecord]],
    ) -> TrainingFileRecord:
        """Write `draft`'s objects while `statements` run in the commit's transaction, and
        commit once both are done. Objects whose size is known only once written (a part is
        rendered while it is written) are written first. On any failure nothing is committed
        and whatever was written is deleted."""
        try:
            known = draft.sizes()
            version = draft.version(known if known else await self._store(draft, None))
            await progress.committing(_written(version))
            at_commit: list[str] = []
            async with locked.session(user_id, at_commit=at_commit) as conn:
                writing = asyncio.ensure_future(self._store(draft, known)) if known else None
                try:
                    record = await statements(conn, version)
                    if writing is not None:
                        await writing
                except BaseException:
                    if writing is not None:
                        await _abandon(writing)  # ended before its objects are deleted
                    raise
                progress.committed_with(version.version, at_commit)
            build.wrote(json=version.json_file_size, jsonl=version.jsonl_file_size)
            return record
        except BaseException:
            await self._discard_quietly(*draft.keys.values())
            raise

    async def set_archived(
        self, user_id: UUID, training_file_id: UUID, archived: bool
    ) -> TrainingFileRecord:
        # One statement, no lock: an add commits only while the file is still active.
        async with self._db.session(user_id) as conn:
            current = await rows.get(conn, training_file_id)
            if current is None:
                raise NotFound(f"training file {training_file_id} does not exist")
            _require_owner(current, user_id)
            updated = await rows.set_status(
                conn,
                training_file_id,
                TrainingFileStatus.ARCHIVED if archived else TrainingFileStatus.ACTIVE,
            )
            assert updated is not None
            return updated

    async def delete_training_file(
        self, user_id: UUID, training_file_id: UUID
    ) -> TrainingFileRecord:
        """Delete one of the caller's files (archived ones too); return its row as it was.

        The junction rows go with it (ON DELETE CASCADE) and the database retires its objects
        (a trigger): a link issued before keeps working until it expires, then the sweeper
        deletes them. The conversations stay."""
        # Refuse what can be refused before queueing for the file's lock.
        async with self._db.session(user_id) as conn:
            current = await rows.get(conn, training_file_id)
        if current is None:
            raise NotFound(f"training file {training_file_id} does not exist")
        _require_owner(current, user_id)
        # Under the writer lock, so no build of this file can commit after the delete (one
        # running now finishes first; waiting past LOCK_TIMEOUT is BUSY).
        async with (
            self._writers.exclusive(LockKind.TRAINING_FILE, training_file_id) as locked,
            locked.session(user_id) as conn,
        ):
            current = await rows.get(conn, training_file_id)
            if current is not None:
                _require_owner(current, user_id)
            deleted = await rows.delete(conn, training_file_id)
        if deleted is None:  # deleted meanwhile
            raise NotFound(f"training file {training_file_id} does not exist")
        return deleted

    async def download_target(
        self, user_id: UUID, training_file_id: UUID, file_format: FileFormat
    ) -> DownloadTarget:
        async with self._db.session(user_id) as conn:
            current = await rows.get(conn, training_file_id)
        if current is None:
            raise NotFound(f"training file {training_file_id} does not exist")
        key, _ = current.object_of(file_format)
        if key is None:
            raise Conflict(_not_ready(current, file_format), code=ErrorCode.NOT_READY)
        return DownloadTarget(
            bucket=current.storage_bucket,
            key=key,
            filename=f"{current.name}{file_format.extension}",
            content_type=file_format.content_type,
        )

    async def sweep_retired_objects(self, now: datetime | None = None, limit: int = 1000) -> int:
        """Delete retired objects whose links have all expired; return how many."""
        cutoff = (now or _now()) - self._link_ttl
        async with self._maintenance.session() as conn:
            due = await rows.due_for_deletion(conn, cutoff, limit)
        for bucket, key in due:
            await self._storage.delete(bucket, key)
            async with self._maintenance.session() as conn:
                await rows.forget_retired(conn, bucket, key)
        return len(due)

    # ------------------------------------------------------------------ building

    async def _build(
        self,
        file_id: UUID,
        name: str,
        current: TrainingFileRecord | None,
        records: list[rows.Candidate],
        additions: _Additions,
        created_date: datetime,
        now: datetime,
        progress: BuildProgress,
    ) -> tuple[_Draft, list[dict[FileFormat, int]]]:
        """The next version, not written yet, and the lengths of each of `records`' parts of
        its objects (they end the bodies)."""
        stats, distribution, members = additions
        header = _header(name, created_date, now, stats, distribution)
        number = current.version + 1 if current else 1
        heads = _heads(header)
        new = await self._conversation_parts(records, first=current is None, progress=progress)
        parts: dict[FileFormat, list[Part]] = {
            kind: [
                *([heads[kind]] if kind in heads else []),
                *self._old_body(current, kind, members),
                *new[kind],
            ]
            for kind in pieces.KINDS
        }
        lengths = [
            {kind: _length([new[kind][i]]) for kind in pieces.KINDS} for i in range(len(records))
        ]
        return _Draft.of(file_id, number, heads, parts, stats, distribution, now), lengths

    async def _store(
        self, draft: _Draft, expected: dict[FileFormat, int] | None
    ) -> dict[FileFormat, int]:
        """Compose the draft's objects; returns each one's size."""
        keys = draft.keys
        sizes = await self._storage.compose_many(
            TRAINING_BUCKET, {keys[kind]: draft.parts[kind] for kind in pieces.KINDS}
        )
        written = {kind: sizes[keys[kind]] for kind in pieces.KINDS}
        if expected is not None and written != expected:
            # Pieces and old objects are immutable: only something outside this product
            # could have changed one meanwhile.
            raise StorageError(
                f"the objects of version {draft.number} are not the size their parts add up "
                f"to ({written}, not {expected})"
            )
        return written

    async def _build_without(
        self,
        locked: LockedSession,
        user_id: UUID,
        current: TrainingFileRecord,
        removed: list[rows.RemovedMember],
        now: datetime,
        progress: BuildProgress,
    ) -> tuple[_Draft, Removal]:
        """The version of `current` without the `removed` members, not written yet: the old
        objects' bytes around them, copied as ranges (one per gap), under a new header. A file with a
        member of unknown ranges (from before 0009) is written anew from its kept members'
        pieces instead, once."""
        removed_ids = [m.conversation_id for m in removed]
        gone = set(removed_ids)
        async with locked.session(user_id) as conn:
            stats, distribution = await rows.kept_totals(conn, current.id, removed_ids)
            copyable = _has_exports(current) and not await rows.has_unranged_member(
                conn, current.id
            )
            kept = (
                []
                if copyable
                else [
                    m
                    for m in await rows.member_pieces(conn, current.id)
                    if m.conversation_id not in gone
                ]
            )
        header = _header(current.name, current.created_date, now, stats, distribution)
        heads = _heads(header)
        if copyable:
            bodies = {kind: self._body_around(current, kind, removed) for kind in pieces.KINDS}
        else:
            bodies = {
                kind: [
                    self._member_part(member, kind, first=index == 0)
                    for index, member in enumerate(kept)
                ]
                for kind in pieces.KINDS
            }
        parts: dict[FileFormat, list[Part]] = {
            kind: [*([heads[kind]] if kind in heads else []), *bodies[kind]]
            for kind in pieces.KINDS
        }
        draft = _Draft.of(current.id, current.version + 1, heads, parts, stats, distribution, now)
        if copyable:
            return draft, Removal(removed_ids)
        return draft, Removal(removed_ids, kept=_rebuilt_ranges(kept, bodies))

    def _body_around(
        self, current: TrainingFileRecord, kind: FileFormat, removed: list[rows.RemovedMember]
    ) -> list[Part]:
        """The current body of `kind` without the `removed` members, as ranges of its object."""
        key, size = current.object_of(kind)
        assert key is not None and size is not None
        start = {
            FileFormat.JSON: current.json_body_start,
            FileFormat.JSONL: current.jsonl_body_start,
        }
        end = {FileFormat.JSON: current.json_body_end, FileFormat.JSONL: current.jsonl_body_end}
        body_start, body_end = start.get(kind, 0), end.get(kind, size)
        assert body_start is not None and body_end is not None
        spans = removal.kept_spans(
            [removal.span(m.ranges, kind) for m in removed if m.ranges is not None],
            body_end - body_start,
            separator=removal.JSON_SEPARATOR_BYTES if kind is FileFormat.JSON else 0,
        )
        return [CopyRange(key, body_start + s, body_start + e) for s, e in spans]

    async def _conversation_parts(
        self, records: list[rows.Candidate], *, first: bool, progress: BuildProgress
    ) -> dict[FileFormat, list[Part]]:
        """Each conversation's part of every object, in order: ranges of the pieces rendered
        at import, or (for rows whose pieces are missing or from an older rendering) rendered
        now from the file, at most `fetch_concurrency` files read at once."""
        limit = asyncio.Semaphore(self._fetch_concurrency)
        copies = self._storage.copies_small_ranges

        async def parts_of(
            index: int, record: rows.Candidate, ranges: dict[FileFormat, CopyRange]
        ) -> dict[FileFormat, Part]:
            leading = first and index == 0
            stored: dict[FileFormat, Part] = dict(ranges)
            if ranges and not copies:
                async with limit:
                    stored = await self._read_once(ranges)
            if len(stored) == len(pieces.KINDS):
                await progress.conversation_ready()
                return stored
            async with limit:
                document = await self._load(record)
            entry = pieces.entry_of(
                record.conversation_id, vars(record), document["training_pairs"]
            )
            await progress.conversation_ready()
            return {
                kind: stored[kind]
                if kind in stored
                else pieces.render_one(entry, kind, first=leading)
                for kind in pieces.KINDS
            }

        # The usual case (every piece stored, and copied by the storage itself) needs no I/O
        # here, so no task either: 80 of them were 0.4 ms of a create.
        each: dict[int, dict[FileFormat, Part]] = {}
        pending: list[tuple[int, rows.Candidate, dict[FileFormat, CopyRange]]] = []
        for index, record in enumerate(records):
            ranges = _stored_pieces(record, first=first and index == 0)
            if copies and len(ranges) == len(pieces.KINDS):
                each[index] = dict(ranges)
                await progress.conversation_ready()
            else:
                pending.append((index, record, ranges))
        found = await gather(*(parts_of(*p) for p in pending))
        each.update(zip((index for index, _, _ in pending), found, strict=True))
        return {kind: [each[i][kind] for i in range(len(records))] for kind in pieces.KINDS}

    async def _read_once(self, ranges: dict[FileFormat, CopyRange]) -> dict[FileFormat, Part]:
        """`ranges` (all of one pieces object) as bytes, from one read of the object."""
        [key] = {r.key for r in ranges.values()}
        start = min(r.start for r in ranges.values())
        end = max(r.end for r in ranges.values())
        data = b"".join(
            [c async for c in self._storage.get_range(CONVERSATION_BUCKET, key, start, end)]
        )
        if len(data) != end - start:
            raise StorageError(f"{CONVERSATION_BUCKET}/{key} is shorter than its record says")
        return {kind: data[r.start - start : r.end - start] for kind, r in ranges.items()}

    def _old_body(
        self,
        current: TrainingFileRecord | None,
        kind: FileFormat,
        members: list[rows.MemberPieces],
    ) -> list[Part]:
        """The current version's body of `kind`, copied as one range; an export the version
        does not have is made of its members' parts (`members`, in file order)."""
        if current is None:
            return []
        if kind is FileFormat.JSON:
            start, end = current.json_body_start, current.json_body_end
        elif kind is FileFormat.JSONL:
            start, end = current.jsonl_body_start, current.jsonl_body_end
        else:
            start, end = 0, current.object_of(kind)[1]
        key = current.object_of(kind)[0]
        if key is None:
            return [self._member_part(member, kind) for member in members]
        assert start is not None and end is not None
        return [CopyRange(key, start, end)]

    def _member_part(
        self, member: rows.MemberPieces, kind: FileFormat, *, first: bool = False
    ) -> Part:
        """A member's part of an object: its stored piece, else rendered when it is written
        (one file at a time, so memory stays flat however many members need it)."""
        stored = _stored_pieces(member, first=first)
        if kind in stored:
            return stored[kind]
        return self._rendered(member, kind, first=first)

    async def _rendered(
        self, member: rows.MemberPieces, kind: FileFormat, *, first: bool
    ) -> AsyncIterator[bytes]:
        document = await self._load(member)
        entry = pieces.entry_of(member.conversation_id, vars(member), document["training_pairs"])
        yield pieces.render_one(entry, kind, first=first)

    async def _load(self, record: rows.MemberPieces) -> dict[str, Any]:
        assert record.enriched_file_path is not None
        raw = await read_all(self._storage, CONVERSATION_BUCKET, record.enriched_file_path)
        if (
            record.enriched_file_sha256
            and hashlib.sha256(raw).hexdigest() != record.enriched_file_sha256
        ):
            raise Conflict(
                f"the stored file of conversation {record.conversation_id} does not match its "
                "record; re-import it",
                code=ErrorCode.CONVERSATION_CHANGED,
            )
        document: dict[str, Any] = json.loads(raw)
        return document

    # ------------------------------------------------------------------ helpers

    async def _owned_active_file(
        self, conn: asyncpg.Connection, user_id: UUID, training_file_id: UUID
    ) -> TrainingFileRecord:
        current = await rows.get(conn, training_file_id)
        if current is None:
            raise NotFound(f"training file {training_file_id} does not exist")
        _require_owner(current, user_id)
        # PROCESSING: another change is being built (or one crashed); this one waits its turn.
        if current.status not in (TrainingFileStatus.ACTIVE, TrainingFileStatus.PROCESSING):
            raise Conflict(
                f"training file {current.name!r} is {current.status}; restore it before changing it",
                code=ErrorCode.FILE_NOT_ACTIVE,
            )
        return current

    async def _unmark_processing(
        self, locked: LockedSession, user_id: UUID, training_file_id: UUID
    ) -> None:
        """Back to ACTIVE after a failed build (unless archived meanwhile), on the locked
        connection, else (it is what failed) on another. If both fail, the file stays
        PROCESSING until the next change to it or the clean-up's next round."""
        with contextlib.suppress(Exception):
            async with locked.session(user_id) as conn:
                await rows.end_processing(conn, training_file_id)
            return
        with contextlib.suppress(Exception):
            async with self._db.session(user_id) as conn:
                await rows.end_processing(conn, training_file_id)

    async def _discard_quietly(self, *keys: str) -> None:
        """Remove objects of a version that no commit reached."""
        for key in keys:
            # The failure being reported matters more than this clean-up.
            with contextlib.suppress(Exception):
                await self._storage.discard(TRAINING_BUCKET, key)


class _Additions(NamedTuple):
    """What a build of `current` with new conversations reads from the database, in the
    transaction that found the conversations (not one of its own)."""

    stats: MemberStats
    distribution: list[rows.DistributionRow]
    # A version from before the trainer exports: its members, to write the exports in full.
    members: list[rows.MemberPieces]


async def _additions(
    conn: asyncpg.Connection, current: TrainingFileRecord | None, records: list[rows.Candidate]
) -> _Additions:
    totals = await rows.added_totals(conn, current, [r.conversation_id for r in records])
    return _Additions(
        totals.stats,
        totals.distribution,
        await rows.member_pieces(conn, current.id)
        if current is not None and not _has_exports(current)
        else [],
    )


async def _eligible(
    conn: asyncpg.Connection, ids: list[UUID], problems: ProblemList
) -> list[rows.Candidate]:
    """The records of `ids` in request order; missing or ineligible ids become problems."""
    found = await rows.candidates(conn, ids)
    missing = [i for i in ids if i not in found]
    if missing:
        problems.add(
            ErrorCode.NOT_FOUND,
            f"conversations not found: {', '.join(map(str, missing))}",
            field="conversation_ids",
            conversation_ids=missing,
        )
    ineligible = [
        i
        for i in ids
        if i in found
        and (
            found[i].enrichment_status != EnrichmentStatus.COMPLETED
            or not found[i].enriched_file_path
        )
    ]
    if ineligible:
        problems.add(
            ErrorCode.NOT_ELIGIBLE,
            "conversations not enriched (enrichment_status must be 'completed' with a stored "
            f"file): {', '.join(map(str, ineligible))}",
            field="conversation_ids",
            conversation_ids=ineligible,
        )
    return [found[i] for i in ids if i in found and i not in ineligible]


def _check_removable(
    current: TrainingFileRecord,
    ids: list[UUID],
    removed: list[rows.RemovedMember],
    problems: ProblemList,
) -> None:
    members = {m.conversation_id for m in removed}
    absent = [i for i in ids if i not in members]
    if absent:
        problems.add(
            ErrorCode.NOT_IN_FILE,
            f"conversations not in training file {current.name!r}: {', '.join(map(str, absent))}",
            field="conversation_ids",
            conversation_ids=absent,
        )
    elif len(removed) == current.conversation_count:
        problems.add(
            ErrorCode.WOULD_BE_EMPTY,
            f"removing all {len(removed)} conversations would leave training file "
            f"{current.name!r} empty; a file keeps at least one (delete the file instead)",
            field="conversation_ids",
        )


async def _verify_unchanged(conn: asyncpg.Connection, built_from: list[rows.Candidate]) -> None:
    """Inside the commit, after the junction rows lock the conversations against re-import:
    refuse if any was replaced while its old file was being aggregated."""
    now = await conversation_rows.file_hashes(conn, [r.conversation_id for r in built_from])
    changed = [
        r.conversation_id
        for r in built_from
        if now.get(r.conversation_id) != r.enriched_file_sha256
    ]
    if changed:
        raise Conflict(
            f"conversations changed while the file was built: {', '.join(map(str, changed))}; "
            "try again",
            code=ErrorCode.CONVERSATION_CHANGED,
        )


@contextlib.asynccontextmanager
async def _reported(progress: BuildProgress) -> AsyncIterator[None]:
    """Publish FAILED for a change that fails, with the code its client gets."""
    try:
        yield
    except BaseException as error:
        await progress.failed_by(error)
        raise


def _written(version: FileVersion) -> int:
    return sum(
        size or 0
        for size in (
            version.json_file_size,
            version.jsonl_file_size,
            version.openai_chat_file_size,
            version.hf_dataset_file_size,
        )
    )


def _require_owner(current: TrainingFileRecord, user_id: UUID) -> None:
    if current.created_by != user_id:
        raise Forbidden(f"training file {current.name!r} belongs to another user")


def _name_taken(problems: ProblemList, name: str) -> None:
    problems.add(
        ErrorCode.NAME_TAKEN,
        f"you already have a training file named {name!r} (names are unique among your own "
        "files, ignoring case)",
        field="name",
    )


def _id_taken(problems: ProblemList, file_id: UUID) -> None:
    problems.add(
        ErrorCode.ID_TAKEN, f"a training file with id {file_id} already exists", field="id"
    )


def _is_id_conflict(error: BaseException) -> bool:
    """A create given the id of a file that exists (perhaps one the caller cannot see)."""
    return (
        isinstance(error, asyncpg.UniqueViolationError)
        and error.constraint_name == "training_files_pkey"
    )


def _is_name_conflict(error: BaseException) -> bool:
    """A create that lost the race for its name to a concurrent one."""
    return (
        isinstance(error, asyncpg.UniqueViolationError)
        and error.constraint_name == "training_files_owner_name_key"
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _has_exports(current: TrainingFileRecord) -> bool:
    return all(current.object_of(kind)[0] is not None for kind in _EXPORTS)


def _not_ready(current: TrainingFileRecord, kind: FileFormat) -> str:
    if kind in _EXPORTS and current.json_file_path is not None:
        return (
            f"version {current.version} of training file {current.name!r} was built before "
            f"the {kind.name} export existed; add conversations to it to write every format"
        )
    return f"training file {current.id} has no {kind.value} object"


def _stored_pieces(row: rows.MemberPieces, *, first: bool) -> dict[FileFormat, CopyRange]:
    if row.pieces_path is None or row.piece_sizes is None:
        return {}
    return pieces.ranges(row.pieces_path, row.piece_sizes, first=first)


def _new_ranges(version: FileVersion, lengths: list[dict[FileFormat, int]]) -> list[MemberRanges]:
    """Where the members of `lengths` lie in `version`: they end its bodies, so their ranges
    count back from the ends."""
    ends = rows.body_lengths(version)
    starts = {kind: ends[kind] - sum(length[kind] for length in lengths) for kind in pieces.KINDS}
    return removal.consecutive(starts, lengths)


async def _abandon(task: asyncio.Future[Any]) -> None:
    """Cancel `task` (unless it is done) and wait until it ends, however it ends: the error
    being reported is another's, or its own, raised already."""
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()  # retrieved, so not logged as never retrieved


def _length(parts: Sequence[Part]) -> int:
    """The bytes `parts` (literal bytes and ranges, no streams) add up to."""
    total = 0
    for part in parts:
        assert isinstance(part, (bytes, CopyRange))
        total += len(part) if isinstance(part, bytes) else part.end - part.start
    return total


def _header(
    name: str,
    created_date: datetime,
    now: datetime,
    stats: MemberStats,
    distribution: list[rows.DistributionRow],
) -> FileHeader:
    return FileHeader(
        file_name=name,
        created_date=created_date,
        last_updated=now,
        target_model=TARGET_MODEL,
        vertical=VERTICAL,
        total_conversations=stats.conversation_count,
        total_training_pairs=stats.total_pairs,
        trainable_pairs=stats.trainable_pairs,
        quality=_quality(stats),
        distribution=_distribution_for_header(distribution),
        consultant_profile=stats.consultant_profile or DEFAULT_CONSULTANT_PROFILE,
    )


def _heads(header: FileHeader) -> dict[FileFormat, bytes]:
    """What comes before the body in each object (the exports have nothing)."""
    return {FileFormat.JSON: json_header(header), FileFormat.JSONL: jsonl_header(header)}


def _rebuilt_ranges(
    kept: list[rows.MemberPieces], bodies: dict[FileFormat, list[Part]]
) -> list[tuple[UUID, MemberRanges | None]]:
    """The members of a version written anew, with their ranges; None for all of them when a
    part was rendered during the write (its length was not known before)."""
    if not all(isinstance(part, bytes | CopyRange) for body in bodies.values() for part in body):
        return [(m.conversation_id, None) for m in kept]
    lengths = [
        {kind: _length([bodies[kind][i]]) for kind in pieces.KINDS} for i in range(len(kept))
    ]
    ranges = removal.consecutive(dict.fromkeys(pieces.KINDS, 0), lengths)
    return [(m.conversation_id, r) for m, r in zip(kept, ranges, strict=True)]


def _cents(value: Decimal | None) -> Decimal | None:
    return None if value is None else cents(value)


def _quality(stats: MemberStats) -> QualitySummary:
    average = stats.quality_sum / stats.quality_count if stats.quality_count else None
    reviewed = percentage(stats.human_reviewed_count, stats.total_pairs)
    return QualitySummary(
        avg_quality_score=_cents(average),
        min_quality_score=_cents(stats.quality_min),
        max_quality_score=_cents(stats.quality_max),
        human_reviewed_count=stats.human_reviewed_count,
        human_reviewed_percentage=reviewed,
    )


def _distribution_for_header(distribution: list[rows.DistributionRow]) -> Distribution:
    def of(kind: str) -> tuple[tuple[str, int], ...]:
        return tuple((d.key, d.count) for d in distribution if d.kind == kind)

    return Distribution(of("personas"), of("emotional_arcs"), of("training_topics"))


def _distribution_for_row(distribution: list[rows.DistributionRow]) -> dict[str, Any]:
    result: dict[str, list[dict[str, Any]]] = {
        "personas": [],
        "emotional_arcs": [],
        "training_topics": [],
    }
    for d in distribution:
        result[d.kind].append({"key": d.key, "name": d.name, "count": d.count})
    return result


async def training_file_page(
    reader: Reader,
    where: rows.TrainingFileFilter,
    first: int | None,
    after: str | None,
) -> Page[TrainingFileRecord]:
    return await keyset_page(
        reader,
        first=first,
        after=after,
        fetch=lambda conn, cursor, limit: rows.page(conn, where, cursor, limit),
        count=lambda conn: rows.count(conn, where),
        cursor_of=lambda r: Cursor(r.created_at, r.id),
    )


async def list_training_files(
    db: Database,
    user_id: UUID,
    where: rows.TrainingFileFilter,
    first: int | None,
    after: str | None,
) -> Page[TrainingFileRecord]:
    """`training_file_page` on a connection of its own, for REST (which never asks for the
    total: it would need the connection after this returns)."""
    async with db.reader(user_id) as reader:
        return await training_file_page(reader, where, first, after)
