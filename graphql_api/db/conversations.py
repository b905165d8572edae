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


@dataclass(frozen=True)
class ConversationFilter:
    enrichment_status: str | None = None
    persona_key: str | None = None
    emotional_arc_key: str | None = None
    training_topic_key: str | None = None
    min_quality: Decimal | None = None
    not_in_training_file: UUID | None = None
    eligible_only: bool = False

    def params(self) -> tuple[Any, ...]:
        return (
            self.enrichment_status,
            self.persona_key,
            self.emotional_arc_key,
            self.training_topic_key,
            self.min_quality,
            self.not_in_training_file,
            self.eligible_only,
        )


# One static statement for every combination of filters: an unset filter is NULL.
LIST_WHERE = """
WHERE ($1::text IS NULL OR enrichment_status = $1)
  AND ($2::text IS NULL OR persona_key = $2)
  AND ($3::text IS NULL OR emotional_arc_key = $3)
  AND ($4::text IS NULL OR training_topic_key = $4)
  AND ($5::numeric IS NULL OR quality_score >= $5)
  AND ($6::uuid IS NULL OR NOT EXISTS (
        SELECT 1 FROM training_file_conversations j
        WHERE j.training_file_id = $6 AND j.conversation_id = conversations.conversation_id))
  AND (NOT $7::boolean OR (enrichment_status = 'completed' AND enriched_file_path IS NOT NULL))
"""

_COUNT = f"SELECT count(*) FROM conversations {LIST_WHERE}"

_PAGE = f"""
SELECT {_COLUMNS} FROM conversations {LIST_WHERE}
  AND ($8::timestamptz IS NULL OR (created_at, conversation_id) < ($8, $9::uuid))
ORDER BY created_at DESC, conversation_id DESC
LIMIT $10
"""

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
    return int(await conn.fetchval(_COUNT, *where.params()))


async def page(
    conn: asyncpg.Connection, where: ConversationFilter, after: Cursor | None, limit: int
) -> list[ConversationRecord]:
    rows = await conn.fetch(
        _PAGE,
        *where.params(),
        after.sort_at if after else None,
        after.id if after else None,
        limit,
    )
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
