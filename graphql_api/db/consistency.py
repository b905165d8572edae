"""SQL of the consistency checker and the orphan clean-up: what the rows say a store holds, and
whether one stored object is still referenced (asked again under its writer's lock)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from uuid import UUID

import asyncpg

from .training_files import RANGE_COLUMNS, MemberRanges, TrainingFileRecord, object_paths, ranges_of

_COLUMNS = ", ".join(f.name for f in fields(TrainingFileRecord))

_FILES_AFTER = f"""
SELECT {_COLUMNS} FROM training_files
WHERE ($1::uuid IS NULL OR id > $1)
ORDER BY id
LIMIT $2
"""
_FILE = f"SELECT {_COLUMNS} FROM training_files WHERE id = $1"
_COUNT_FILES = "SELECT count(*) FROM training_files"

_MEMBERS_AFTER = """
SELECT position, conversation_id FROM training_file_conversations
WHERE training_file_id = $1 AND position > $2
ORDER BY position
LIMIT $3
"""

_MEMBER_RANGES_AFTER = f"""
SELECT position, conversation_id, {", ".join(RANGE_COLUMNS)} FROM training_file_conversations
WHERE training_file_id = $1 AND position > $2
ORDER BY position
LIMIT $3
"""

_FILE_OBJECTS = """
SELECT id, version, json_file_path, jsonl_file_path, openai_chat_file_path, hf_dataset_file_path
FROM training_files
WHERE id = ANY($1::uuid[])
"""
_RETIRED_AMONG = "SELECT key FROM retired_objects WHERE bucket = $1 AND key = ANY($2::text[])"
# Retired keys lie under their file's id, as the row's paths do.
_RETIRED_OF_FILES = """
SELECT key FROM retired_objects
WHERE bucket = $1 AND split_part(key, '/', 1) = ANY($2::text[])
"""
_CONVERSATION_FILES = """
SELECT conversation_id, enriched_file_path, pieces_path FROM conversations
WHERE conversation_id = ANY($1::uuid[])
"""

# A row's object paths lie under its own id (a constraint of 0002), so looking the key up by the
# id in it is complete; retired objects are referenced too, until the sweeper takes them.
_TRAINING_OBJECT_REFERENCED = """
SELECT EXISTS (SELECT 1 FROM training_files
               WHERE id = $1 AND $2 IN (json_file_path, jsonl_file_path,
                                        openai_chat_file_path, hf_dataset_file_path))
    OR EXISTS (SELECT 1 FROM retired_objects WHERE bucket = $3 AND key = $2)
"""
# Nothing constrains where a conversation row points, so this looks at every row.
_CONVERSATION_FILE_REFERENCED = (
    "SELECT EXISTS (SELECT 1 FROM conversations WHERE $1 IN (enriched_file_path, pieces_path))"
)


@dataclass(frozen=True)
class FileObjects:
    """Where a training file's row points now."""

    id: UUID
    version: int
    json_file_path: str | None
    jsonl_file_path: str | None
    openai_chat_file_path: str | None
    hf_dataset_file_path: str | None

    @property
    def object_paths(self) -> tuple[str, ...]:
        return object_paths(self)


async def files_after(
    conn: asyncpg.Connection, after: UUID | None, limit: int
) -> list[TrainingFileRecord]:
    """A page of training files in id order, after `after`."""
    rows = await conn.fetch(_FILES_AFTER, after, limit)
    return [TrainingFileRecord.from_row(row) for row in rows]


async def file(conn: asyncpg.Connection, file_id: UUID) -> TrainingFileRecord | None:
    row = await conn.fetchrow(_FILE, file_id)
    return TrainingFileRecord.from_row(row) if row else None


async def count_files(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval(_COUNT_FILES))


async def members_after(
    conn: asyncpg.Connection, file_id: UUID, after_position: int, limit: int
) -> list[tuple[int, UUID]]:
    """A page of (position, conversation id) of a file's junction rows, in position order."""
    rows = await conn.fetch(_MEMBERS_AFTER, file_id, after_position, limit)
    return [(row["position"], row["conversation_id"]) for row in rows]


async def member_ranges_after(
    conn: asyncpg.Connection, file_id: UUID, after_position: int, limit: int
) -> list[tuple[int, UUID, MemberRanges | None]]:
    """As `members_after`, with each member's byte ranges (None where none were recorded)."""
    rows = await conn.fetch(_MEMBER_RANGES_AFTER, file_id, after_position, limit)
    return [(row["position"], row["conversation_id"], ranges_of(row)) for row in rows]


async def file_objects(
    conn: asyncpg.Connection, file_ids: Sequence[UUID]
) -> dict[UUID, FileObjects]:
    rows = await conn.fetch(_FILE_OBJECTS, list(file_ids))
    return {row["id"]: FileObjects(**dict(row)) for row in rows}


async def retired_among(conn: asyncpg.Connection, bucket: str, keys: Sequence[str]) -> set[str]:
    return {row["key"] for row in await conn.fetch(_RETIRED_AMONG, bucket, list(keys))}


async def retired_of_files(
    conn: asyncpg.Connection, bucket: str, file_ids: Sequence[UUID]
) -> dict[UUID, set[str]]:
    """The retired objects of each of the files, not swept yet."""
    found: dict[UUID, set[str]] = {}
    ids = [str(file_id) for file_id in file_ids]
    for row in await conn.fetch(_RETIRED_OF_FILES, bucket, ids):
        found.setdefault(UUID(row["key"].split("/", 1)[0]), set()).add(row["key"])
    return found


async def conversation_files(
    conn: asyncpg.Connection, conversation_ids: Sequence[UUID]
) -> dict[UUID, set[str]]:
    """The objects each conversation row points at: its file and its rendered pieces."""
    rows = await conn.fetch(_CONVERSATION_FILES, list(conversation_ids))
    return {
        row["conversation_id"]: {k for k in (row["enriched_file_path"], row["pieces_path"]) if k}
        for row in rows
    }


async def training_object_referenced(
    conn: asyncpg.Connection, bucket: str, file_id: UUID, key: str
) -> bool:
    return bool(await conn.fetchval(_TRAINING_OBJECT_REFERENCED, file_id, key, bucket))


async def conversation_file_referenced(conn: asyncpg.Connection, key: str) -> bool:
    return bool(await conn.fetchval(_CONVERSATION_FILE_REFERENCED, key))
