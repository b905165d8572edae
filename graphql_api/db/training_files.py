"""SQL for `training_files`, its junction with conversations, and retired objects."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol
from uuid import UUID

import asyncpg

from ..domain.enums import FileFormat, TrainingFileStatus
from ..pagination import Cursor
from .conversations import ConversationRecord
from .where import Where


@dataclass(frozen=True)
class TrainingFileRecord:
    id: UUID
    name: str
    description: str | None
    status: str
    version: int
    storage_bucket: str
    json_file_path: str | None
    jsonl_file_path: str | None
    json_file_size: int | None
    jsonl_file_size: int | None
    json_body_start: int | None
    json_body_end: int | None
    jsonl_body_start: int | None
    jsonl_body_end: int | None
    # The trainer exports (0007): null for versions built before them.
    openai_chat_file_path: str | None
    openai_chat_file_size: int | None
    hf_dataset_file_path: str | None
    hf_dataset_file_size: int | None
    conversation_count: int
    total_training_pairs: int
    trainable_pairs: int
    avg_quality_score: Decimal | None
    min_quality_score: Decimal | None
    max_quality_score: Decimal | None
    human_reviewed_count: int
    scaffolding_distribution: dict[str, Any]
    # What an add combines with its new members' (0010): avg_quality_score is rounded.
    quality_sum: Decimal
    quality_count: int
    consultant_profile: dict[str, Any] | None
    created_by: UUID
    created_date: datetime
    last_updated_at: datetime
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> TrainingFileRecord:
        return cls(**{name: row[name] for name in _COLUMN_NAMES})

    @property
    def object_paths(self) -> tuple[str, ...]:
        """Every object the row points at."""
        return object_paths(self)

    def object_of(self, kind: FileFormat) -> tuple[str | None, int | None]:
        """The key and size of the version's object of format `kind` (None: it has none)."""
        if kind is FileFormat.JSON:
            return self.json_file_path, self.json_file_size
        if kind is FileFormat.JSONL:
            return self.jsonl_file_path, self.jsonl_file_size
        if kind is FileFormat.OPENAI_CHAT:
            return self.openai_chat_file_path, self.openai_chat_file_size
        return self.hf_dataset_file_path, self.hf_dataset_file_size


_COLUMN_NAMES = tuple(f.name for f in fields(TrainingFileRecord))
_COLUMNS = ", ".join(_COLUMN_NAMES)


@dataclass(frozen=True)
class MemberStats:
    """Aggregates over the conversations of a training file (existing plus new)."""

    conversation_count: int
    total_pairs: int
    trainable_pairs: int
    quality_sum: Decimal
    quality_count: int
    quality_min: Decimal | None
    quality_max: Decimal | None
    human_reviewed_count: int
    consultant_profile: dict[str, Any] | None


@dataclass(frozen=True)
class MemberPieces:
    """What a build needs of a member to write its part of an object: where its pieces are,
    and (for rows whose pieces must be rendered) its file and the columns the format shows."""

    conversation_id: UUID
    pieces_path: str | None
    piece_sizes: list[int] | None
    enriched_file_path: str | None
    enriched_file_sha256: str | None
    source_created_date: date | None
    total_turns: int
    tier: str
    persona_key: str | None
    persona_name: str | None
    emotional_arc_key: str | None
    emotional_arc_name: str | None
    training_topic_key: str | None
    training_topic_name: str | None
    quality_score: Decimal | None


_MEMBER_PIECES = f"""
SELECT {", ".join(f"c.{f.name}" for f in fields(MemberPieces))}
FROM training_file_conversations j JOIN conversations c USING (conversation_id)
WHERE j.training_file_id = $1
ORDER BY j.position
"""


@dataclass(frozen=True)
class Candidate(MemberPieces):
    """A conversation asked to go into a file: what a build needs of it, and whether it may
    (not the rest of its row: a build of 80 decoded 80 validation reports for nothing)."""

    enrichment_status: str


_CANDIDATES = f"""
SELECT {", ".join(f.name for f in fields(Candidate))}
FROM conversations
WHERE conversation_id = ANY($1::uuid[])
"""


@dataclass(frozen=True)
class MemberRanges:
    """A member's bytes [start, end) in each object of its file's current version, relative to
    the object's body start (0 for the trainer exports, which have no header); its JSON range
    includes the "," before it, unless it is the first member (0009)."""

    json_start: int
    json_end: int
    jsonl_start: int
    jsonl_end: int
    openai_chat_start: int
    openai_chat_end: int
    hf_dataset_start: int
    hf_dataset_end: int


RANGE_COLUMNS = tuple(f.name for f in fields(MemberRanges))


def ranges_of(row: asyncpg.Record) -> MemberRanges | None:
    """A junction row's ranges; None for a row from before they were recorded (0009)."""
    if row["json_start"] is None:
        return None
    return MemberRanges(**{c: row[c] for c in RANGE_COLUMNS})


@dataclass(frozen=True)
class RemovedMember:
    conversation_id: UUID
    position: int
    ranges: MemberRanges | None  # None: a row from before 0009


@dataclass(frozen=True)
class DistributionRow:
    kind: str  # personas | emotional_arcs | training_topics
    key: str
    name: str | None
    count: int


@dataclass(frozen=True)
class FileVersion:
    """What a commit writes into the row: the new objects and the new statistics."""

    version: int
    json_file_path: str
    jsonl_file_path: str
    json_file_size: int
    jsonl_file_size: int
    json_body_start: int
    json_body_end: int
    jsonl_body_start: int
    jsonl_body_end: int
    openai_chat_file_path: str
    openai_chat_file_size: int
    hf_dataset_file_path: str
    hf_dataset_file_size: int
    conversation_count: int
    total_training_pairs: int
    trainable_pairs: int
    avg_quality_score: Decimal | None
    min_quality_score: Decimal | None
    max_quality_score: Decimal | None
    human_reviewed_count: int
    scaffolding_distribution: dict[str, Any]
    quality_sum: Decimal
    quality_count: int
    consultant_profile: dict[str, Any] | None
    updated_at: datetime


_VERSION_COLUMNS = tuple(f.name for f in fields(FileVersion) if f.name != "updated_at")


class _HasPaths(Protocol):
    @property
    def json_file_path(self) -> str | None: ...
    @property
    def jsonl_file_path(self) -> str | None: ...
    @property
    def openai_chat_file_path(self) -> str | None: ...
    @property
    def hf_dataset_file_path(self) -> str | None: ...


def object_paths(row: _HasPaths) -> tuple[str, ...]:
    """The objects a training file's row (or a version about to be committed) points at."""
    paths = (
        row.json_file_path,
        row.jsonl_file_path,
        row.openai_chat_file_path,
        row.hf_dataset_file_path,
    )
    return tuple(p for p in paths if p is not None)


class _HasBodies(Protocol):
    @property
    def json_body_start(self) -> int | None: ...
    @property
    def json_body_end(self) -> int | None: ...
    @property
    def jsonl_body_start(self) -> int | None: ...
    @property
    def jsonl_body_end(self) -> int | None: ...
    @property
    def openai_chat_file_size(self) -> int | None: ...
    @property
    def hf_dataset_file_size(self) -> int | None: ...


def body_lengths(row: _HasBodies) -> dict[FileFormat, int]:
    """The length of the body of each object a row (or a version) records; the trainer
    exports are all body. Formats whose object it does not record are left out."""
    lengths = {
        FileFormat.JSON: _difference(row.json_body_end, row.json_body_start),
        FileFormat.JSONL: _difference(row.jsonl_body_end, row.jsonl_body_start),
        FileFormat.OPENAI_CHAT: row.openai_chat_file_size,
        FileFormat.HF_DATASET: row.hf_dataset_file_size,
    }
    return {kind: length for kind, length in lengths.items() if length is not None}


def _difference(end: int | None, start: int | None) -> int | None:
    return None if end is None or start is None else end - start


# Member statistics and distributions are aggregated over `members` (conversation_id,
# position): an add's new conversations alone (their totals are then combined with the row's),
# or the members a removal keeps.
_NEW_MEMBERS = """
WITH members AS (
    SELECT id AS conversation_id, $2::int + (ord - 1)::int AS position
    FROM unnest($1::uuid[]) WITH ORDINALITY AS n(id, ord)
),
"""

_KEPT_MEMBERS = """
WITH members AS (
    SELECT conversation_id, position FROM training_file_conversations
    WHERE training_file_id = $1 AND conversation_id <> ALL($2::uuid[])
),
"""

_MEMBER_ROWS = """
member_rows AS (
    SELECT m.position, c.pair_count, c.trainable_pair_count, c.quality_sum, c.quality_count,
           c.quality_min, c.quality_max, c.human_reviewed_count, c.consultant_profile,
           c.persona_key, c.persona_name, c.emotional_arc_key, c.emotional_arc_name,
           c.training_topic_key, c.training_topic_name
    FROM members m JOIN conversations c USING (conversation_id)
)
"""

# One row per member and kind of key.
_MEMBER_KEYS = """
    SELECT 'personas' AS kind, persona_key AS key, persona_name AS name, 1 AS count, position
    FROM member_rows
    UNION ALL
    SELECT 'emotional_arcs', emotional_arc_key, emotional_arc_name, 1, position FROM member_rows
    UNION ALL
    SELECT 'training_topics', training_topic_key, training_topic_name, 1, position
    FROM member_rows
"""

# The row's distribution ($3: per kind, entries in order of first appearance) merged with the
# new members', which come after every stored entry: their positions start at the file's
# conversation count ($2), which no kind's number of keys exceeds. PostgreSQL's max() picks
# the name, as when the members are aggregated from scratch.
_STORED_AND_NEW_KEYS = (
    """, keyed AS (
    SELECT k.kind, e.entry ->> 'key' AS key, e.entry ->> 'name' AS name,
           (e.entry ->> 'count')::int AS count, (e.ord - 1)::int AS position
    FROM jsonb_each($3::jsonb) AS k(kind, entries),
         jsonb_array_elements(k.entries) WITH ORDINALITY AS e(entry, ord)
    UNION ALL"""
    + _MEMBER_KEYS
    + ")"
)

_KEPT_KEYS = ", keyed AS (" + _MEMBER_KEYS + ")"

# The statistics, and the distribution as [kind, key, name, count] entries: keys in order of
# first appearance, so a file built in one go and one built by adds agree. One statement, so
# the member rows are read once and the whole costs one round trip.
_TOTALS = """, grouped AS (
    SELECT kind, key, max(name) AS name, sum(count)::bigint AS count, min(position) AS first
    FROM keyed
    WHERE coalesce(key, '') <> ''
    GROUP BY kind, key
)
SELECT count(*) AS conversation_count,
       coalesce(sum(pair_count), 0) AS total_pairs,
       coalesce(sum(trainable_pair_count), 0) AS trainable_pairs,
       coalesce(sum(quality_sum), 0) AS quality_sum,
       coalesce(sum(quality_count), 0) AS quality_count,
       min(quality_min) AS quality_min,
       max(quality_max) AS quality_max,
       coalesce(sum(human_reviewed_count), 0) AS human_reviewed_count,
       (SELECT consultant_profile FROM member_rows WHERE consultant_profile IS NOT NULL
        ORDER BY position LIMIT 1) AS consultant_profile,
       (SELECT coalesce(jsonb_agg(jsonb_build_array(kind, key, name, count)
                                  ORDER BY kind, first), '[]')
        FROM grouped) AS distribution
FROM member_rows
"""

_ADDED_TOTALS = _NEW_MEMBERS + _MEMBER_ROWS + _STORED_AND_NEW_KEYS + _TOTALS
_KEPT_TOTALS = _KEPT_MEMBERS + _MEMBER_ROWS + _KEPT_KEYS + _TOTALS

_GET = f"SELECT {_COLUMNS} FROM training_files WHERE id = $1"
_GET_MANY = f"SELECT {_COLUMNS} FROM training_files WHERE id = ANY($1::uuid[])"
# Matches the unique index `training_files_owner_name_key`.
_SAME_NAME = "SELECT name FROM training_files WHERE created_by = $1 AND lower(name) = lower($2)"

_INSERT = f"""
INSERT INTO training_files (id, name, description, status, created_by, created_date,
    last_updated_at, created_at, {", ".join(_VERSION_COLUMNS)})
VALUES ($1, $2, $3, 'active', $4, $5, $5, $5,
    {", ".join(f"${i}" for i in range(6, 6 + len(_VERSION_COLUMNS)))})
RETURNING {_COLUMNS}
"""

# The version check makes a commit that lost a race fail loudly instead of overwriting; the
# status check keeps an archive that landed meanwhile from taking an addition.
_UPDATE_VERSION = f"""
UPDATE training_files SET
    {", ".join(f"{c} = ${i}" for i, c in enumerate(_VERSION_COLUMNS, start=3))},
    last_updated_at = ${3 + len(_VERSION_COLUMNS)}, updated_at = ${3 + len(_VERSION_COLUMNS)},
    status = 'active'
WHERE id = $1 AND version = $2 AND status IN ('active', 'processing')
RETURNING {_COLUMNS}
"""

_SET_STATUS = f"""
UPDATE training_files SET status = $2, updated_at = now() WHERE id = $1
RETURNING {_COLUMNS}
"""

# Neither touches updated_at: a build that fails leaves the row as it was.
_START_PROCESSING = "UPDATE training_files SET status = 'processing' WHERE id = $1"

_END_PROCESSING = (
    "UPDATE training_files SET status = 'active' WHERE id = $1 AND status = 'processing'"
)

_PROCESSING = "SELECT id FROM training_files WHERE status = 'processing' ORDER BY id LIMIT $1"

_RANGES = ", ".join(RANGE_COLUMNS)


def _range_arrays(first: int) -> str:
    """Parameters $first... as one bigint[] per range column, for unnest."""
    return ", ".join(f"${i}::bigint[]" for i in range(first, first + len(RANGE_COLUMNS)))


_INSERT_MEMBERS = f"""
INSERT INTO training_file_conversations (training_file_id, conversation_id, position, added_by,
    {_RANGES})
SELECT $1, id, $3::int + (ord - 1)::int, $4, {_RANGES}
FROM unnest($2::uuid[], {_range_arrays(5)}) WITH ORDINALITY AS n(id, {_RANGES}, ord)
"""

_REMOVED_MEMBERS = f"""
SELECT conversation_id, position, {_RANGES} FROM training_file_conversations
WHERE training_file_id = $1 AND conversation_id = ANY($2::uuid[])
ORDER BY position
"""

_UNRANGED_MEMBER = """
SELECT EXISTS (SELECT 1 FROM training_file_conversations
               WHERE training_file_id = $1 AND json_start IS NULL)
"""


# One statement: delete the removed members ($2) and move every member after the first of them
# up by what was removed before it, in positions and in bytes. When the file's first member
# goes, its successor (first now) loses the "," its JSON range began with, and every member
# after that one moves one byte more. Positions are unique at the statement's end (0009).
_REMOVE_MEMBERS = f"""
WITH removed AS (
    DELETE FROM training_file_conversations
    WHERE training_file_id = $1 AND conversation_id = ANY($2::uuid[])
    RETURNING position, {_RANGES}
), comma AS (
    SELECT CASE WHEN min(position) = 0 THEN 1 ELSE 0 END AS bytes FROM removed
), moved AS (
    SELECT k.id,
           k.position - b.members AS position,
           k.json_start - b.json
               - CASE WHEN k.position - b.members > 0 THEN c.bytes ELSE 0 END AS json_start,
           k.json_end - b.json - c.bytes AS json_end,
           k.jsonl_start - b.jsonl AS jsonl_start, k.jsonl_end - b.jsonl AS jsonl_end,
           k.openai_chat_start - b.openai_chat AS openai_chat_start,
           k.openai_chat_end - b.openai_chat AS openai_chat_end,
           k.hf_dataset_start - b.hf_dataset AS hf_dataset_start,
           k.hf_dataset_end - b.hf_dataset AS hf_dataset_end
    FROM training_file_conversations k
    CROSS JOIN comma c
    CROSS JOIN LATERAL (
        SELECT count(*)::int AS members,
               coalesce(sum(r.json_end - r.json_start), 0) AS json,
               coalesce(sum(r.jsonl_end - r.jsonl_start), 0) AS jsonl,
               coalesce(sum(r.openai_chat_end - r.openai_chat_start), 0) AS openai_chat,
               coalesce(sum(r.hf_dataset_end - r.hf_dataset_start), 0) AS hf_dataset
        FROM removed r WHERE r.position < k.position
    ) b
    WHERE k.training_file_id = $1 AND k.conversation_id <> ALL($2::uuid[])
      AND k.position > (SELECT min(position) FROM removed)
)
UPDATE training_file_conversations j SET
    position = m.position, {", ".join(f"{c} = m.{c}" for c in RANGE_COLUMNS)}
FROM moved m WHERE j.id = m.id
"""

# A removal that rebuilt the file: delete the removed members ($2) and give the others ($3, in
# file order) their new positions and ranges (NULL when some were not known).
_REMOVE_MEMBERS_RENUMBERED = f"""
WITH removed AS (  -- runs though nothing reads it, before the UPDATE's uniqueness check
    DELETE FROM training_file_conversations
    WHERE training_file_id = $1 AND conversation_id = ANY($2::uuid[])
)
UPDATE training_file_conversations j SET
    position = (n.ord - 1)::int, {", ".join(f"{c} = n.{c}" for c in RANGE_COLUMNS)}
FROM unnest($3::uuid[], {_range_arrays(4)})
    WITH ORDINALITY AS n(id, {_RANGES}, ord)
WHERE j.training_file_id = $1 AND j.conversation_id = n.id
"""

_MEMBER_IDS = """
SELECT conversation_id FROM training_file_conversations
WHERE training_file_id = $1 AND conversation_id = ANY($2::uuid[])
"""

# Retired before the cutoff (now minus the link lifetime), and pointed at by no row: a key a
# row points at again is never deleted, whatever the table says.
_DUE_FOR_DELETION = """
SELECT r.bucket, r.key FROM retired_objects r
WHERE r.retired_at <= $1
  AND NOT EXISTS (SELECT 1 FROM training_files f
                  WHERE f.storage_bucket = r.bucket
                    AND r.key IN (f.json_file_path, f.jsonl_file_path,
                                  f.openai_chat_file_path, f.hf_dataset_file_path))
ORDER BY r.retired_at
LIMIT $2
"""
_FORGET_RETIRED = "DELETE FROM retired_objects WHERE bucket = $1 AND key = $2"

# As the caller, under row-level security: another user's row matches nothing. The junction
# rows go by ON DELETE CASCADE; the row's objects are retired by a trigger (0002, 0007).
_DELETE = f"DELETE FROM training_files WHERE id = $1 RETURNING {_COLUMNS}"

_NEWEST_FIRST = "ORDER BY created_at DESC, id DESC"

# One statement for the conversations of many files: one LATERAL page per (file, after, limit).
_CONVERSATION_PAGES = """
SELECT k.request, p.*
FROM unnest($1::uuid[], $2::int[], $3::int[]) WITH ORDINALITY
     AS k(file_id, after_position, page_limit, request)
CROSS JOIN LATERAL (
    SELECT j.position, c.* FROM training_file_conversations j
    JOIN conversations c USING (conversation_id)
    WHERE j.training_file_id = k.file_id AND j.position > k.after_position
    ORDER BY j.position
    LIMIT k.page_limit
) p
ORDER BY k.request, p.position
"""

_FILES_OF_CONVERSATIONS = f"""
SELECT j.conversation_id AS member_id, {", ".join(f"f.{c}" for c in _COLUMN_NAMES)}
FROM training_file_conversations j JOIN training_files f ON f.id = j.training_file_id
WHERE j.conversation_id = ANY($1::uuid[])
ORDER BY f.created_at DESC, f.id DESC
"""


@dataclass(frozen=True)
class TrainingFileFilter:
    """Every given field must match (None: any); ranges are inclusive."""

    status: str | None = TrainingFileStatus.ACTIVE
    created_by: UUID | None = None
    name_contains: str | None = None
    min_average_quality: Decimal | None = None
    max_average_quality: Decimal | None = None
    min_conversation_count: int | None = None
    max_conversation_count: int | None = None

    def clause(self) -> Where:
        where = Where()
        if self.status is not None:
            where.add("status = $1::text", self.status)
        if self.created_by is not None:
            where.add("created_by = $1::uuid", self.created_by)
        if self.name_contains is not None:
            where.add("strpos(lower(name), lower($1::text)) > 0", self.name_contains)
        if self.min_average_quality is not None:
            where.add("avg_quality_score >= $1::numeric", self.min_average_quality)
        if self.max_average_quality is not None:
            where.add("avg_quality_score <= $1::numeric", self.max_average_quality)
        if self.min_conversation_count is not None:
            where.add("conversation_count >= $1::int", self.min_conversation_count)
        if self.max_conversation_count is not None:
            where.add("conversation_count <= $1::int", self.max_conversation_count)
        return where


async def get(conn: asyncpg.Connection, file_id: UUID) -> TrainingFileRecord | None:
    row = await conn.fetchrow(_GET, file_id)
    return TrainingFileRecord.from_row(row) if row else None


async def get_many(
    conn: asyncpg.Connection, file_ids: Sequence[UUID]
) -> dict[UUID, TrainingFileRecord]:
    rows = await conn.fetch(_GET_MANY, list(file_ids))
    return {row["id"]: TrainingFileRecord.from_row(row) for row in rows}


async def same_name(conn: asyncpg.Connection, owner: UUID, name: str) -> str | None:
    """The name of the owner's file that `name` would clash with (it may differ in case)."""
    taken: str | None = await conn.fetchval(_SAME_NAME, owner, name)
    return taken


class Totals(NamedTuple):
    """What a version's header and row say about its members."""

    stats: MemberStats
    distribution: list[DistributionRow]


async def added_totals(
    conn: asyncpg.Connection, current: TrainingFileRecord | None, new_ids: Sequence[UUID]
) -> Totals:
    """The totals of `current` (None: a new file) with `new_ids` added: the row's plus the
    new conversations', so the cost does not depend on the file's size."""
    stored = current.scaffolding_distribution if current else {}
    first_position = current.conversation_count if current else 0
    row = await conn.fetchrow(_ADDED_TOTALS, list(new_ids), first_position, stored)
    assert row is not None
    added = _stats(row)
    distribution = _distribution(row)
    if current is None:
        return Totals(added, distribution)
    stats = MemberStats(
        conversation_count=current.conversation_count + added.conversation_count,
        total_pairs=current.total_training_pairs + added.total_pairs,
        trainable_pairs=current.trainable_pairs + added.trainable_pairs,
        quality_sum=current.quality_sum + added.quality_sum,
        quality_count=current.quality_count + added.quality_count,
        # The row's are rounded to cents, and rounding the smaller of a rounded and an exact
        # value gives what rounding the smaller of the exact ones would.
        quality_min=_either(current.min_quality_score, added.quality_min, min),
        quality_max=_either(current.max_quality_score, added.quality_max, max),
        human_reviewed_count=current.human_reviewed_count + added.human_reviewed_count,
        consultant_profile=current.consultant_profile or added.consultant_profile,
    )
    return Totals(stats, distribution)


def _either(
    a: Decimal | None, b: Decimal | None, pick: Callable[[Decimal, Decimal], Decimal]
) -> Decimal | None:
    return b if a is None else a if b is None else pick(a, b)


async def kept_totals(
    conn: asyncpg.Connection, file_id: UUID, removed_ids: Sequence[UUID]
) -> Totals:
    """The totals of the file's members but `removed_ids`, aggregated from them."""
    row = await conn.fetchrow(_KEPT_TOTALS, file_id, list(removed_ids))
    assert row is not None
    return Totals(_stats(row), _distribution(row))


_STATS_COLUMNS = tuple(f.name for f in fields(MemberStats))


def _stats(row: asyncpg.Record) -> MemberStats:
    return MemberStats(*(row[name] for name in _STATS_COLUMNS))


def _distribution(row: asyncpg.Record) -> list[DistributionRow]:
    return [DistributionRow(*entry) for entry in row["distribution"]]


async def member_pieces(conn: asyncpg.Connection, file_id: UUID) -> list[MemberPieces]:
    """Every member of the file, in file order."""
    rows = await conn.fetch(_MEMBER_PIECES, file_id)
    return [MemberPieces(*row) for row in rows]  # selected in the order of its fields


async def candidates(
    conn: asyncpg.Connection, conversation_ids: Sequence[UUID]
) -> dict[UUID, Candidate]:
    rows = await conn.fetch(_CANDIDATES, list(conversation_ids))
    return {row[0]: Candidate(*row) for row in rows}  # selected in the order of its fields


async def members_among(
    conn: asyncpg.Connection, file_id: UUID, conversation_ids: Sequence[UUID]
) -> set[UUID]:
    rows = await conn.fetch(_MEMBER_IDS, file_id, list(conversation_ids))
    return {row["conversation_id"] for row in rows}


def _version_values(version: FileVersion) -> list[Any]:
    return [getattr(version, name) for name in _VERSION_COLUMNS]


async def insert(
    conn: asyncpg.Connection,
    file_id: UUID,
    name: str,
    description: str | None,
    created_by: UUID,
    version: FileVersion,
) -> TrainingFileRecord:
    row = await conn.fetchrow(
        _INSERT,
        file_id,
        name,
        description,
        created_by,
        version.updated_at,
        *_version_values(version),
    )
    assert row is not None
    return TrainingFileRecord.from_row(row)


async def update_version(
    conn: asyncpg.Connection, file_id: UUID, expected_version: int, version: FileVersion
) -> TrainingFileRecord | None:
    """None when the row is no longer at `expected_version` (or not ours to change)."""
    row = await conn.fetchrow(
        _UPDATE_VERSION, file_id, expected_version, *_version_values(version), version.updated_at
    )
    return TrainingFileRecord.from_row(row) if row else None


async def set_status(
    conn: asyncpg.Connection, file_id: UUID, status: str
) -> TrainingFileRecord | None:
    row = await conn.fetchrow(_SET_STATUS, file_id, status)
    return TrainingFileRecord.from_row(row) if row else None


async def start_processing(conn: asyncpg.Connection, file_id: UUID) -> None:
    await conn.execute(_START_PROCESSING, file_id)


async def end_processing(conn: asyncpg.Connection, file_id: UUID) -> None:
    """PROCESSING back to ACTIVE (a file archived meanwhile stays archived)."""
    await conn.execute(_END_PROCESSING, file_id)


async def processing(conn: asyncpg.Connection, limit: int) -> list[UUID]:
    """Files marked PROCESSING: a build runs, or one crashed before putting them back."""
    return [row["id"] for row in await conn.fetch(_PROCESSING, limit)]


async def add_members(
    conn: asyncpg.Connection,
    file_id: UUID,
    conversation_ids: Sequence[UUID],
    first_position: int,
    added_by: UUID,
    ranges: Sequence[MemberRanges | None],
) -> None:
    """`ranges[i]`: where `conversation_ids[i]` lies in the version being committed."""
    await conn.execute(
        _INSERT_MEMBERS,
        file_id,
        list(conversation_ids),
        first_position,
        added_by,
        *_range_columns(ranges),
    )


async def removed_members(
    conn: asyncpg.Connection, file_id: UUID, conversation_ids: Sequence[UUID]
) -> list[RemovedMember]:
    """The members among `conversation_ids`, in file order."""
    found = await conn.fetch(_REMOVED_MEMBERS, file_id, list(conversation_ids))
    return [RemovedMember(row["conversation_id"], row["position"], ranges_of(row)) for row in found]


async def has_unranged_member(conn: asyncpg.Connection, file_id: UUID) -> bool:
    """Whether a member's ranges are unknown (a row from before 0009)."""
    return bool(await conn.fetchval(_UNRANGED_MEMBER, file_id))


async def remove_members(
    conn: asyncpg.Connection, file_id: UUID, conversation_ids: Sequence[UUID]
) -> None:
    """Delete these members and move the others' positions and ranges up over the gaps."""
    await conn.execute(_REMOVE_MEMBERS, file_id, list(conversation_ids))


async def remove_members_renumbered(
    conn: asyncpg.Connection,
    file_id: UUID,
    conversation_ids: Sequence[UUID],
    kept_ids: Sequence[UUID],
    kept_ranges: Sequence[MemberRanges | None],
) -> None:
    """Delete these members; give the others (`kept_ids`, every one, in file order) positions
    from 0 and the ranges `kept_ranges` of a version built anew."""
    await conn.execute(
        _REMOVE_MEMBERS_RENUMBERED,
        file_id,
        list(conversation_ids),
        list(kept_ids),
        *_range_columns(kept_ranges),
    )


def _range_columns(ranges: Sequence[MemberRanges | None]) -> list[list[int | None]]:
    """One list per range column, for unnest (None where a member's ranges are unknown)."""
    return [[None if r is None else getattr(r, column) for r in ranges] for column in RANGE_COLUMNS]


async def due_for_deletion(
    conn: asyncpg.Connection, retired_before: datetime, limit: int
) -> list[tuple[str, str]]:
    rows = await conn.fetch(_DUE_FOR_DELETION, retired_before, limit)
    return [(r["bucket"], r["key"]) for r in rows]


async def forget_retired(conn: asyncpg.Connection, bucket: str, key: str) -> None:
    await conn.execute(_FORGET_RETIRED, bucket, key)


async def delete(conn: asyncpg.Connection, file_id: UUID) -> TrainingFileRecord | None:
    """Delete the row; return it as it was, or None when there was none (or not the caller's)."""
    row = await conn.fetchrow(_DELETE, file_id)
    return TrainingFileRecord.from_row(row) if row else None


async def count(conn: asyncpg.Connection, where: TrainingFileFilter) -> int:
    clause = where.clause()
    return int(
        await conn.fetchval(f"SELECT count(*) FROM training_files {clause.sql}", *clause.params)
    )


async def page(
    conn: asyncpg.Connection, where: TrainingFileFilter, after: Cursor | None, limit: int
) -> list[TrainingFileRecord]:
    clause = where.clause()
    if after is not None:
        clause.add("(created_at, id) < ($1::timestamptz, $2::uuid)", after.sort_at, after.id)
    limit_param = clause.param(limit, "int")
    sql = f"SELECT {_COLUMNS} FROM training_files {clause.sql} {_NEWEST_FIRST} LIMIT {limit_param}"
    rows = await conn.fetch(sql, *clause.params)
    return [TrainingFileRecord.from_row(row) for row in rows]


async def conversation_pages(
    conn: asyncpg.Connection, requests: Sequence[tuple[UUID, int, int]]
) -> dict[tuple[UUID, int, int], list[tuple[int, ConversationRecord]]]:
    """For each (file, after position, limit): that page of the file's conversations, with
    their positions."""
    rows = await conn.fetch(
        _CONVERSATION_PAGES,
        [r[0] for r in requests],
        [r[1] for r in requests],
        [r[2] for r in requests],
    )
    pages: list[list[tuple[int, ConversationRecord]]] = [[] for _ in requests]
    for row in rows:
        pages[row["request"] - 1].append((row["position"], ConversationRecord.from_row(row)))
    return dict(zip(requests, pages, strict=True))


async def files_of_conversations(
    conn: asyncpg.Connection, conversation_ids: Sequence[UUID]
) -> dict[UUID, list[TrainingFileRecord]]:
    rows = await conn.fetch(_FILES_OF_CONVERSATIONS, list(conversation_ids))
    result: dict[UUID, list[TrainingFileRecord]] = {}
    for row in rows:
        result.setdefault(row["member_id"], []).append(TrainingFileRecord.from_row(row))
    return result
