"""Reading S3 objects: `HeadObject`, and `GetObject` streamed in `CHUNK_SIZE` pieces.

Ranged reads cope with what S3-compatible stores actually answer: rclone sends a ranged body
with 200 and a Content-Range, and a store that ignores Range sends the whole object, whose
leading bytes are then skipped here.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from botocore.exceptions import BotoCoreError

from .base import CHUNK_SIZE, ObjectNotFound, StorageError
from .s3_client import S3Stats, Send, call
from .s3_errors import RANGE_NOT_SATISFIABLE, error_code, object_name, storage_error

_CONTENT_RANGE = re.compile(r"^bytes (\d+)-\d+/(\d+)$")
# What reading a response body can raise (the store's own answers came with the headers).
_BODY_ERRORS = (BotoCoreError, aiohttp.ClientError, OSError)


class ObjectReader:
    """Reads objects by their real bucket and key, counting downloaded bytes in `stats`."""

    def __init__(self, send: Send, stats: S3Stats) -> None:
        self._send = send
        self._stats = stats

    async def head(self, bucket: str, key: str) -> dict[str, Any] | None:
        """The object's `HeadObject` answer, or None when there is no such object."""
        try:
            head: dict[str, Any] = await call(
                self._send, "HeadObject", object_name(bucket, key), Bucket=bucket, Key=key
            )
        except ObjectNotFound:
            return None
        return head

    async def stream(
        self, bucket: str, key: str, start: int, end: int | None, *, if_match: str | None = None
    ) -> AsyncIterator[bytes]:
        """Bytes `[start, end)` of the object (to its end when `end` is None), failing unless
        its ETag is `if_match` when that is given."""
        if end is not None and start == end:  # no bytes to read, but the object must exist
            await self._require_size(bucket, key, start, end)
            return
        response = await self.open(bucket, key, start, end, if_match=if_match)
        async for chunk in self.body(response, object_name(bucket, key), start, end):
            yield chunk

    async def open(
        self, bucket: str, key: str, start: int, end: int | None, *, if_match: str | None = None
    ) -> Any:
        """The `GetObject` answer for bytes `[start, end)` (`end` > `start`, or None for the
        rest), its body not read yet: `body` reads it, or close it."""
        name = object_name(bucket, key)
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if end is not None:
            params["Range"] = f"bytes={start}-{end - 1}"
        if if_match is not None:
            params["IfMatch"] = if_match
        try:
            return await call(self._send, "GetObject", name, **params)
        except StorageError as error:
            if error_code(error.__cause__) in RANGE_NOT_SATISFIABLE:
                raise ValueError(
                    f"byte range [{start}, {end}) exceeds the size of {name}"
                ) from None
            raise

    async def body(
        self, response: Any, name: str, start: int, end: int | None
    ) -> AsyncIterator[bytes]:
        """The bytes `[start, end)` that `open` asked for, in `CHUNK_SIZE` pieces."""
        body = response["Body"]
        try:
            skip, remaining = 0, None
            if end is not None:
                skip = _skipped_prefix(response, name, start, end)
                remaining = end - start
            async for chunk in self._chunks(body, name, skip, remaining):
                yield chunk
        finally:
            body.close()

    async def small_body(self, response: Any, name: str, limit: int) -> bytes:
        """The whole body of a `GetObject` answer known to be small; an error past `limit`."""
        body = response["Body"]
        try:
            data = await _read(body, limit + 1, name)
            self._stats.downloaded_bytes += len(data)
            while len(data) <= limit and (more := await _read(body, limit + 1 - len(data), name)):
                self._stats.downloaded_bytes += len(more)
                data += more
        finally:
            body.close()
        if len(data) > limit:
            raise StorageError(f"{name} is larger than {limit} bytes")
        return data

    async def _require_size(self, bucket: str, key: str, start: int, end: int) -> None:
        name = object_name(bucket, key)
        head = await self.head(bucket, key)
        if head is None:
            raise ObjectNotFound(name)
        if end > int(head["ContentLength"]):
            raise ValueError(f"byte range [{start}, {end}) exceeds the size of {name}")

    async def _chunks(
        self, body: Any, name: str, skip: int, remaining: int | None
    ) -> AsyncIterator[bytes]:
        """The body in `CHUNK_SIZE` pieces, its first `skip` bytes dropped, `remaining` bytes
        in all (None: to the end)."""
        buffer = bytearray()
        while remaining is None or remaining > 0:
            data = await _read(body, CHUNK_SIZE - len(buffer), name)
            if not data:
                break
            self._stats.downloaded_bytes += len(data)
            if skip:
                dropped = min(skip, len(data))
                data, skip = data[dropped:], skip - dropped
            if remaining is not None:
                data = data[:remaining]
                remaining -= len(data)
            buffer += data
            if len(buffer) >= CHUNK_SIZE:
                yield bytes(buffer)
                buffer.clear()
        if remaining:
            raise StorageError(f"{name} ended {remaining} bytes early")
        if buffer:
            yield bytes(buffer)


def _skipped_prefix(response: Any, name: str, start: int, end: int) -> int:
    """How many leading bytes of a ranged GET's body are not in the range asked for."""
    content_range = response.get("ContentRange")
    if content_range:  # rclone sends it with 200 rather than 206
        first, total = _parse_content_range(content_range, name)
        if first != start:
            raise StorageError(f"{name}: asked for bytes from {start}, got {first}")
        skip = 0
    else:  # a server that ignored the Range header sent the whole object
        total, skip = int(response["ContentLength"]), start
    if end > total:
        raise ValueError(f"byte range [{start}, {end}) exceeds the size of {name}")
    return skip


def _parse_content_range(header: str, name: str) -> tuple[int, int]:
    """The first byte and the object size from `bytes first-last/size`."""
    match = _CONTENT_RANGE.match(header.strip())
    if match is None:
        raise StorageError(f"{name}: unexpected Content-Range {header!r}")
    return int(match.group(1)), int(match.group(2))


async def _read(body: Any, amount: int, name: str) -> bytes:
    try:
        data: bytes = await body.read(amount)
    except _BODY_ERRORS as error:
        raise storage_error(error, "GetObject", name) from error
    return data
