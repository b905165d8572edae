"""The checker's streaming parsers against what format.py really writes, cut into chunks of
every awkward size, with strings that look like the structure they are scanned by."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from graphql_api.aggregation.format import (
    JSON_FOOTER,
    ConversationEntry,
    Distribution,
    FileHeader,
    QualitySummary,
    ScaffoldingEntry,
    json_conversation,
    json_header,
    jsonl_header,
    jsonl_lines,
)
from graphql_api.maintenance.scan import (
    LayoutError,
    json_conversations,
    lines,
    parse_json_header,
    parse_jsonl_header,
)

# Strings json.dumps keeps on one line (it escapes the newline), which would end a conversation
# early if a scan mistook them for structure.
TRICKY = ["line\n    }", "    },\n    {", "}\n]\n}", "\\n    }", "é → ✓"]
IDS = [UUID(f"00000000-0000-4000-8000-{n:012d}") for n in (1, 2, 3)]


def _entry(conversation_id: UUID, text: str) -> ConversationEntry:
    pairs: list[dict[str, Any]] = [
        {"turn_number": 1, "target_response": None, "current_user_input": text},
        {"turn_number": 2, "target_response": text, "nested": {"a": [text, {"b": text}]}},
    ]
    return ConversationEntry(
        conversation_id=conversation_id,
        created_date=date(2025, 1, 2),
        total_turns=2,
        quality_tier="production",
        scaffolding=ScaffoldingEntry("p", "P", "a", "A", "t", "T"),
        training_pairs=pairs,
    )


ENTRIES = [_entry(i, text) for i, text in zip(IDS, TRICKY, strict=False)]
HEADER = FileHeader(
    file_name="scan",
    created_date=datetime(2025, 1, 1, tzinfo=UTC),
    last_updated=datetime(2025, 1, 1, tzinfo=UTC),
    target_model=None,
    vertical="v",
    total_conversations=3,
    total_training_pairs=6,
    trainable_pairs=3,
    quality=QualitySummary(None, None, None, 0, Decimal(0)),
    distribution=Distribution((("p", 3),), (("a", 3),), (("t", 3),)),
    consultant_profile={"name": "x\n    }"},
)
BODY = b"".join(json_conversation(e, first=i == 0) for i, e in enumerate(ENTRIES))
JSONL_BODY = b"".join(jsonl_lines(e) for e in ENTRIES)


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_the_whole_file_is_header_body_footer_as_scanned() -> None:
    document = json.loads(json_header(HEADER) + BODY + JSON_FOOTER)
    assert [c["conversation_metadata"]["conversation_id"] for c in document["conversations"]] == [
        str(i) for i in IDS
    ]
    assert parse_json_header(json_header(HEADER))["training_file_metadata"]["file_name"] == "scan"
    assert parse_jsonl_header(jsonl_header(HEADER))["total_pairs"] == 3


@pytest.mark.parametrize("size", [1, 2, 5, 6, 7, 64, 1000, len(BODY)])
async def test_conversations_are_found_whatever_the_chunking(size: int) -> None:
    found = [c async for c in json_conversations(chunked(BODY, size))]

    expected = json.loads(b"[" + BODY + b"\n]")
    assert found == expected
    assert [c["training_pairs"][1]["target_response"] for c in found] == TRICKY[:3]


@pytest.mark.parametrize("size", [1, 3, 100, len(JSONL_BODY)])
async def test_lines_are_found_whatever_the_chunking(size: int) -> None:
    found = [json.loads(line) async for line in lines(chunked(JSONL_BODY, size))]

    assert [line["conversation_id"] for line in found] == [str(i) for i in IDS]
    assert [line["target_response"] for line in found] == TRICKY[:3]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        BODY[:-1],  # the last conversation is cut short
        BODY + b",",  # a separator with nothing after it
        BODY.replace(b",\n    {", b"\n    {", 1),  # a missing comma
        b",\n" + BODY[1:],  # a leading comma
        BODY + b"\n    {}",  # trailing junk
    ],
    ids=["empty", "cut", "dangling-comma", "missing-comma", "leading-comma", "trailing"],
)
async def test_bodies_not_laid_out_as_written_are_refused(body: bytes) -> None:
    with pytest.raises(LayoutError):
        [c async for c in json_conversations(chunked(body, 7))]


async def test_a_last_line_without_its_newline_is_refused() -> None:
    with pytest.raises(LayoutError):
        [line async for line in lines(chunked(JSONL_BODY[:-1], 10))]
