"""A conversation's part of each training-file object, rendered once (at import) and kept as
one stored object; a build copies byte ranges of it instead of re-rendering the conversation.

The pieces depend only on the conversation, one per format in `KINDS` order: its JSON object
(with the `,` that separates it from the one before; the first of a file starts one byte
later), its JSONL lines, its OPENAI_CHAT lines and its HF_DATASET lines. `piece_sizes` in the
row lists their lengths, so it also says which rendering the stored pieces are:

- 4 sizes: the current one; every piece is copied.
- 2 sizes (imported before the trainer exports): only the JSON piece is still what a render
  gives today (their JSONL lines have U+2028/U+2029 unescaped); the other formats are rendered
  from the enriched file during the build, as for rows without pieces. Re-importing the file
  does not re-render them (an unchanged file is left alone).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final
from uuid import UUID

from ..domain.enums import FileFormat
from ..storage.base import CONVERSATION_BUCKET, CopyRange
from .exports import hf_lines, openai_lines
from .format import ConversationEntry, ScaffoldingEntry, json_conversation, jsonl_lines

# The order of the pieces in the stored object and in `piece_sizes`.
KINDS: Final = (FileFormat.JSON, FileFormat.JSONL, FileFormat.OPENAI_CHAT, FileFormat.HF_DATASET)
_STILL_CURRENT: Final = {
    len(KINDS): KINDS,
    2: (FileFormat.JSON,),
}


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
        quality_score=row["quality_score"],
    )


def render_one(entry: ConversationEntry, kind: FileFormat, *, first: bool = False) -> bytes:
    """The conversation's part of the object of format `kind`."""
    if kind is FileFormat.JSON:
        return json_conversation(entry, first=first)
    if kind is FileFormat.JSONL:
        return jsonl_lines(entry)
    if kind is FileFormat.OPENAI_CHAT:
        return openai_lines(entry)
    return hf_lines(entry)


def render(entry: ConversationEntry) -> tuple[bytes, ...]:
    """Every piece, in `KINDS` order (the JSON piece with its leading separator)."""
    return tuple(render_one(entry, kind) for kind in KINDS)


def pieces_key(conversation_id: UUID, sha256: str) -> str:
    """Beside the enriched file, named by the same content hash."""
    return f"{conversation_id}/{sha256[:16]}.pieces"


def ranges(path: str, sizes: Sequence[int], *, first: bool) -> dict[FileFormat, CopyRange]:
    """The stored pieces still usable as they are, as copyable ranges (see above); formats
    missing from the result must be rendered."""
    usable = _STILL_CURRENT.get(len(sizes), ())
    found: dict[FileFormat, CopyRange] = {}
    start = 0
    for kind, size in zip(KINDS, sizes, strict=False):
        if kind in usable:
            # The first conversation of a file has no leading ",".
            skip = 1 if first and kind is FileFormat.JSON else 0
            found[kind] = CopyRange(path, start + skip, start + size, bucket=CONVERSATION_BUCKET)
        start += size
    return found
