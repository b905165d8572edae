"""SQL for the `conversations` table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from ..pagination import Cursor
from .where import LIKE_ESCAPE, Where, contains_pattern


@dataclass(frozen=True)
class ConversationRecord:
    conversation_id: UUID
    title: str | None
    persona_key: str | None
    persona_name: str | None
    emotional_arc_key: str | None
    emotional_arc_name: str | None
    training_topic_key: str | None
    training_topic_name: str | None
    quality_score: Decimal | None
    empathy_score: Decimal | None
    clarity_score: Decimal | None
    appropriateness_score: Decimal | None
    brand_voice_alignment: Decimal | None
    tier: str
    scaffolding_snapshot: dict[str, Any] | None
    consultant_profile: dict[str, Any] | None
    enrichment_status: str
    enriched_file_path: str | None
    enriched_file_size: int | None
    enriched_file_sha256: str | None
    source_created_date: date | None
    total_turns: int
    validation_report: dict[str, Any]
    pair_count: int
    trainable_pair_count: int
    quality_sum: Decimal
    quality_count: int
    quality_min: Decimal | None
    quality_max: Decimal | None
    human_reviewed_count: int
    # The conversation's part of each training-file object, rendered at import (None before).
    pieces_path: str | None
    piece_sizes: list[int] | None
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> ConversationRecord:
        return cls(**{name: row[name] for name in _COLUMN_NAMES})


_COLUMN_NAMES = tuple(f.name for f in fields(ConversationRecord))
_COLUMNS = ", ".join(_COLUMN_NAMES)

# Columns written by an import; the rest are defaults or bookkeeping.
IMPORT_COLUMNS = tuple(
    name
    for name in _COLUMN_NAMES
    if name not in ("conversation_id", "created_by", "created_at", "updated_at")
)


# Conversations that can go into a training file.
ELIGIBLE = "enrichment_status = 'completed' AND enriched_file_path IS NOT NULL"
# A key found nowhere is NULL or empty: such a conversation is `unknown` in a distribution.
_ALL_KEYS = " AND ".join(
    f"coalesce({column}, '') <> ''"
    for column in ("persona_key", "emotional_arc_key", "training_topic_key")
)
_NOT_IN_FILE = """NOT EXISTS (
    SELECT 1 FROM training_file_conversations j
    WHERE j.training_file_id = $1 AND j.conversation_id = conversations.conversation_id)"""


_EXACT = ("enrichment_status", "persona_key", "emotional_arc_key", "training_topic_key")


@dataclass(frozen=True)
class ConversationFilter:
    """Every given field must match (None: any). Ranges are inclusive, except
    `created_before`, which is exclusive so that adjacent ranges do not overlap."""

    enrichment_status: str | None = None
    persona_key: str | None = None
    emotional_arc_key: str | None = None
    training_topic_key: str | None = None
    min_quality: Decimal | None = None
    max_quality: Decimal | None = None
    tiers: tuple[str, ...] | None = None
    human_reviewed: bool | None = None
    has_scaffolding: bool | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    source_created_from: date | None = None
    source_created_to: date | None = None
    title_contains: str | None = None
    not_in_training_file: UUID | None = None
    eligible_only: bool = False

    def clause(self) -> Where:
        where = Where()
        for column in _EXACT:
            if (value := getattr(self, column)) is not None:
                where.add(f"{column} = $1::text", value)
        if self.min_quality is not None:
            where.add("quality_score >= $1::numeric", self.min_quality)
        if self.max_quality is not None:
            where.add("quality_score <= $1::numeric", self.max_quality)
        if self.tiers is not None:
            where.add("tier = ANY($1::text[])", list(self.tiers))
        if self.human_reviewed is not None:
            where.add("(human_reviewed_count > 0) = $1::boolean", self.human_reviewed)
        if self.has_scaffolding is not None:
            where.add(f"({_ALL_KEYS}) = $1::boolean", self.has_scaffolding)
        if self.created_after is not None:
            where.add("created_at >= $1::timestamptz", self.created_after)
        if self.created_before is not None:
            where.add("created_at < $1::timestamptz", self.created_before)
        if self.source_created_from is not None:
            where.add("source_created_date >= $1::date", self.source_created_from)
        if self.source_created_to is not None:
            where.add("source_created_date <= $1::date", self.source_created_to)
        if self.title_contains is not None:
            pattern = contains_pattern(self.title_contains)
            where.add(f"title ILIKE $1::text ESCAPE '{LIKE_ESCAPE}'", pattern)
        if self.not_in_training_file is not None:
            where.add(_NOT_IN_FILE, self.not_in_training_file)
        if self.eligible_only:
            where.add(ELIGIBLE)
        return where


_NEWEST_FIRST = "ORDER BY created_at DESC, conversation_id DESC"

_BY_IDS = f"SELECT {_COLUMNS} FROM conversations WHERE conversation_id = ANY($1::uuid[])"

_FILE_HASHES = """
SELECT conversation_id, enriched_file_sha256 FROM conversations
WHERE conversation_id = ANY($1::uuid[])
"""

_LOCK_ONE = f"SELECT {_COLUMNS} FROM conversations WHERE conversation_id = $1 FOR UPDATE"

_IN_ANY_TRAINING_FILE = """
SELECT f.name FROM training_file_conversations j
JOIN training_files f ON f.id = j.training_file_id
WHERE j.conversation_id = $1
ORDER BY f.name
"""

_UPSERT = f"""
INSERT INTO conversations (conversation_id, created_by, {", ".join(IMPORT_COLUMNS)})
VALUES ($1, $2, {", ".join(f"${i}" for i in range(3, 3 + len(IMPORT_COLUMNS)))})
ON CONFLICT (conversation_id) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in IMPORT_COLUMNS)},
    updated_at = now()
"""


async def count(conn: asyncpg.Connection, where: ConversationFilter) -> int:
    clause = where.clause()
    return int(
        await conn.fetchval(f"SELECT count(*) FROM conversations {clause.sql}", *clause.params)
    )


async def page(
    conn: asyncpg.Connection, where: ConversationFilter, after: Cursor | None, limit: int
) -> list[ConversationRecord]:
    clause = where.clause()
    if after is not None:
        clause.add(
            "(created_at, conversation_id) < ($1::timestamptz, $2::uuid)", after.sort_at, after.id
        )
    limit_param = clause.param(limit, "int")
    sql = f"SELECT {_COLUMNS} FROM conversations {clause.sql} {_NEWEST_FIRST} LIMIT {limit_param}"
    rows = await conn.fetch(sql, *clause.params)
    return [ConversationRecord.from_row(row) for row in rows]


async def get_many(
    conn: asyncpg.Connection, conversation_ids: Sequence[UUID]
) -> dict[UUID, ConversationRecord]:
    rows = await conn.fetch(_BY_IDS, list(conversation_ids))
    return {row["conversation_id"]: ConversationRecord.from_row(row) for row in rows}


async def file_hashes(
    conn: asyncpg.Connection, conversation_ids: Sequence[UUID]
) -> dict[UUID, str | None]:
    """The sha256 of each conversation's stored file, as the database has it now."""
    rows = await conn.fetch(_FILE_HASHES, list(conversation_ids))
    return {row["conversation_id"]: row["enriched_file_sha256"] for row in rows}


async def lock(conn: asyncpg.Connection, conversation_id: UUID) -> ConversationRecord | None:
    row = await conn.fetchrow(_LOCK_ONE, conversation_id)
    return ConversationRecord.from_row(row) if row else None


async def training_file_names(conn: asyncpg.Connection, conversation_id: UUID) -> list[str]:
    return [row["name"] for row in await conn.fetch(_IN_ANY_TRAINING_FILE, conversation_id)]


async def upsert(
    conn: asyncpg.Connection,
    conversation_id: UUID,
    created_by: UUID | None,
    values: dict[str, Any],
) -> None:
    await conn.execute(
        _UPSERT, conversation_id, created_by, *(values[name] for name in IMPORT_COLUMNS)
    )
