"""Where members lie in a version's objects, and which bytes a removal keeps. Pure.

A member's range is [start, end) relative to its object's body start, so it stays valid when
a new header of another length moves the body. Members tile the body in file order, so the
bytes a removal keeps are the spans between removed members, consecutive kept members making
one span: the cost is one range copy per gap, whatever the number of members.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from ..db.training_files import MemberRanges
from ..domain.enums import FileFormat

# The "," before every JSON conversation object but the first (format.json_conversation).
JSON_SEPARATOR_BYTES: Final = len(b",")

Span = tuple[int, int]


def span(ranges: MemberRanges, kind: FileFormat) -> Span:
    if kind is FileFormat.JSON:
        return ranges.json_start, ranges.json_end
    if kind is FileFormat.JSONL:
        return ranges.jsonl_start, ranges.jsonl_end
    if kind is FileFormat.OPENAI_CHAT:
        return ranges.openai_chat_start, ranges.openai_chat_end
    return ranges.hf_dataset_start, ranges.hf_dataset_end


def kept_spans(removed: Sequence[Span], body_length: int, *, separator: int = 0) -> list[Span]:
    """The body's spans around `removed` (in body order), empty ones left out. When the body's
    first member is removed, the new first member loses its leading `separator` bytes."""
    spans: list[Span] = []
    cursor = 0
    for start, end in removed:
        if start > cursor:
            spans.append((cursor, start))
        cursor = end
    if cursor < body_length:
        spans.append((cursor, body_length))
    if separator and removed and removed[0][0] == 0 and spans:
        start, end = spans[0]
        spans[0] = (start + separator, end)
    return spans


def consecutive(
    starts: Mapping[FileFormat, int], lengths: Sequence[Mapping[FileFormat, int]]
) -> list[MemberRanges]:
    """The ranges of members whose parts have `lengths`, laid end to end from `starts`."""
    cursor = dict(starts)
    result: list[MemberRanges] = []
    for length in lengths:
        bounds: dict[FileFormat, Span] = {}
        for kind, start in cursor.items():
            bounds[kind] = (start, start + length[kind])
            cursor[kind] = start + length[kind]
        result.append(
            MemberRanges(
                *bounds[FileFormat.JSON],
                *bounds[FileFormat.JSONL],
                *bounds[FileFormat.OPENAI_CHAT],
                *bounds[FileFormat.HF_DATASET],
            )
        )
    return result
