"""A conversation's part of each training-file object, rendered once (at import) and kept as
one stored object; a build copies byte ranges of it instead of re-rendering the conversation.

The pieces depend only on the conversation: its JSON object (with the `,` that separates it
from the one before; the first of a file starts one byte later) and its JSONL lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from ..storage.base import CONVERSATION_BUCKET, CopyRange
from .format import ConversationEntry, ScaffoldingEntry, json_conversation, jsonl_lines

# The order of the pieces in the stored object and in `piece_sizes`.
JSON, JSONL = 0, 1
PIECE_COUNT = 2


def entry_of(
    conversation_id: UUID, row: Mapping[str, Any], training_pairs: list[dict[str, Any]]
) -> ConversationEntry:
    """The format's view of a conversation, from its row's columns (stored or about to be)."""
    return ConversationEntry(
        conversation_id=conversation_id,
        created_date=row["source_created_date"],
        total_turns=row["total_turns"],
        quality_tier=row["tier"],
        scaffolding=ScaffoldingEntry(
            persona_key=row["persona_key"] or "",
            persona_name=row["persona_name"] or "",
            emotional_arc_key=row["emotional_arc_key"] or "",
            emotional_arc=row["emotional_arc_name"] or "",
            training_topic_key=row["training_topic_key"] or "",
            training_topic=row["training_topic_name"] or "",
        ),
        training_pairs=training_pairs,
    )


def render(entry: ConversationEntry) -> tuple[bytes, bytes]:
    """(the JSON piece with its leading separator, the JSONL lines)."""
    return json_conversation(entry, first=False), jsonl_lines(entry)


def pieces_key(conversation_id: UUID, sha256: str) -> str:
    """Beside the enriched file, named by the same content hash."""
    return f"{conversation_id}/{sha256[:16]}.pieces"


def ranges(path: str, sizes: Sequence[int], *, first: bool) -> tuple[CopyRange, CopyRange]:
    """Where the stored pieces are: (the JSON piece, the JSONL lines) as copyable ranges."""
    json_end = sizes[JSON]
    separator = 1 if first else 0  # the first conversation of a file has no leading ","
    return (
        CopyRange(path, separator, json_end, bucket=CONVERSATION_BUCKET),
        CopyRange(path, json_end, json_end + sizes[JSONL], bucket=CONVERSATION_BUCKET),
    )
