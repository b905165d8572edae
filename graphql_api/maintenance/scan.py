"""Streaming parsers for the bodies format.py writes, in bounded memory.

json.dumps escapes newlines inside strings, so every newline of a training file is structural:
- the full JSON's body is `"\\n    {" ... "\\n    }"` per conversation, separated by `,`, and
  inside a conversation every line is indented deeper, so `"\\n    }"` ends one exactly;
- the JSONL body is one JSON object per line, each line ending with a newline.

Only one conversation (or one line) is held at a time, whatever the file's size.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, Final

# What json_header() ends with, and what closes the top-level object it opened.
CONVERSATIONS_OPEN: Final = b',\n  "conversations": ['
HEADER_CLOSE: Final = b"\n}"

MAX_ITEM_BYTES: Final = 64 * 1024 * 1024

_ITEM_START: Final = b"\n    {"
_ITEM_END: Final = b"\n    }"


class LayoutError(Exception):
    """The bytes are not laid out as format.py writes them."""


def parse_json_header(head: bytes) -> dict[str, Any]:
    """The header's two top-level objects (`training_file_metadata`, `consultant_profile`)."""
    if not head.endswith(CONVERSATIONS_OPEN):
        raise LayoutError('the header does not end with the opening of "conversations"')
    return _object(head[: -len(CONVERSATIONS_OPEN)] + HEADER_CLOSE, "the header")


def parse_jsonl_header(head: bytes) -> dict[str, Any]:
    """The `_meta` object of the JSONL's first line."""
    if not head.endswith(b"\n") or b"\n" in head[:-1]:
        raise LayoutError("the JSONL header is not exactly one line")
    meta = _object(head, "the _meta line").get("_meta")
    if not isinstance(meta, dict):
        raise LayoutError("the JSONL's first line has no _meta object")
    return meta


async def json_conversations(chunks: AsyncIterable[bytes]) -> AsyncIterator[dict[str, Any]]:
    """The conversation objects of a full JSON's body, parsed one at a time."""
    buffer = bytearray()
    position = 0  # where the next conversation starts in `buffer`
    searched = 0  # how far `buffer` was searched for its end, so a big one is scanned once
    count = 0
    async for chunk in chunks:
        del buffer[:position]
        searched -= position
        position = 0
        buffer += chunk
        while True:
            separator = _ITEM_START if count == 0 else b"," + _ITEM_START
            available = len(buffer) - position
            if available < len(separator):
                _expect_prefix(buffer[position:], separator, count)
                break
            _expect_prefix(buffer[position : position + len(separator)], separator, count)
            start = position + len(separator) - 1  # at the "{"
            end = buffer.find(_ITEM_END, max(start, searched))
            if end < 0:
                searched = max(len(buffer) - len(_ITEM_END), start)
                if len(buffer) - start > MAX_ITEM_BYTES:
                    raise LayoutError(f"conversation {count + 1} is larger than {MAX_ITEM_BYTES}")
                break
            stop = end + len(_ITEM_END)
            yield _object(bytes(buffer[start:stop]), f"conversation {count + 1}")
            count += 1
            position = searched = stop
    if len(buffer) > position:
        raise LayoutError(f"{len(buffer) - position} bytes after conversation {count}")
    if count == 0:
        raise LayoutError("the body has no conversation")


async def lines(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Every line without its newline; the last must end with one too."""
    buffer = bytearray()
    position = 0
    async for chunk in chunks:
        del buffer[:position]
        position = 0
        buffer += chunk
        while (end := buffer.find(b"\n", position)) >= 0:
            yield bytes(buffer[position:end])
            position = end + 1
        if len(buffer) - position > MAX_ITEM_BYTES:
            raise LayoutError(f"a line is longer than {MAX_ITEM_BYTES} bytes")
    if len(buffer) > position:
        raise LayoutError("the last line does not end with a newline")


def parse_line(line: bytes, number: int) -> dict[str, Any]:
    return _object(line, f"line {number}")


def _expect_prefix(found: bytes | bytearray, separator: bytes, count: int) -> None:
    if not separator.startswith(found):
        where = "the first conversation" if count == 0 else f"after conversation {count}"
        raise LayoutError(f"unexpected bytes where {where} should start: {bytes(found[:20])!r}")


def _object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LayoutError(f"{what} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise LayoutError(f"{what} is not a JSON object")
    return value
