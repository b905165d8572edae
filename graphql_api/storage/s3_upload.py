"""Writing one S3 object: a single `PutObject` while it fits in one part, else a multipart
upload with at most `max_in_flight` parts being sent (or copied) at a time.

An object appears only when its `PutObject` or `CompleteMultipartUpload` succeeds; any failure
or cancellation before that aborts the multipart upload, so nothing half-written is left behind
(not even invisible parts, which AWS bills). Aborts run to their end even if the caller is
cancelled again; `BackgroundWork.drain` waits for them before the client closes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .base import StorageError
from .s3_client import S3Stats, Send, call
from .s3_errors import NO_SUCH_UPLOAD, REQUEST_ERRORS, error_code, object_name, storage_error

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
# The size of the parts `put` and `compose` upload: memory per upload is about
# (MAX_IN_FLIGHT + 1) * PART_SIZE.
PART_SIZE = 8 * MiB
# S3 rejects a multipart upload whose parts, all but the last, are not at least this big.
MIN_PART_SIZE = 5 * MiB
# The largest part S3 accepts, for uploads and for `UploadPartCopy` alike.
MAX_PART_SIZE = 5 * 1024 * MiB
MAX_PARTS = 10_000
# Parts of one upload sent (or copied) concurrently.
MAX_IN_FLIGHT = 4


class BackgroundWork:
    """Tasks that must run to their end even when whoever started them is cancelled."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Future[Any]] = set()

    def track(self, task: asyncio.Future[Any]) -> asyncio.Future[Any]:
        """Keep `task` referenced until it ends; `drain` waits for it."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def shielded(self, work: Awaitable[None]) -> None:
        """Await `work`, which goes on to the end even if the caller is cancelled."""
        await asyncio.shield(self.track(asyncio.ensure_future(work)))

    async def drain(self) -> None:
        """Wait until every tracked task has ended, including tasks they add meanwhile."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await asyncio.sleep(0)  # let their done callbacks run (and maybe add an abort)


@dataclass(frozen=True)
class Uploads:
    """What every upload to one store shares: how requests are sent, where bytes are counted,
    what outlives a cancellation, and the part sizes."""

    send: Send
    stats: S3Stats
    part_size: int = PART_SIZE
    max_in_flight: int = MAX_IN_FLIGHT
    background: BackgroundWork = field(default_factory=BackgroundWork)

    def __post_init__(self) -> None:
        if not MIN_PART_SIZE <= self.part_size <= MAX_PART_SIZE:
            raise ValueError(f"part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE}")
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")

    def start(self, bucket: str, key: str) -> Upload:
        """An upload to the real `bucket` and `key`; nothing is sent before it has data."""
        return Upload(self, bucket, key)

    async def abort(self, bucket: str, key: str, upload_id: str, *, count: bool = True) -> None:
        """Abort a multipart upload; one that is gone already is fine, and a failure is only
        logged (the clean-up finds the upload later). `count` it in `stats.aborted_uploads`."""
        name = object_name(bucket, key)
        try:
            await self.send(
                "AbortMultipartUpload", {"Bucket": bucket, "Key": key, "UploadId": upload_id}
            )
        except REQUEST_ERRORS as error:
            if error_code(error) == NO_SUCH_UPLOAD:
                return
            logger.warning(
                "could not abort multipart upload of %s: %s",
                name,
                storage_error(error, "AbortMultipartUpload", name),
            )
        else:
            if count:
                self.stats.aborted_uploads += 1


class Upload:
    """One object being written. `write` and `copy` append; `finish` makes the object appear;
    `abort` (after any failure) discards everything sent so far."""

    def __init__(self, uploads: Uploads, bucket: str, key: str) -> None:
        self._uploads = uploads
        self.bucket = bucket
        self.key = key
        self.name = object_name(bucket, key)
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._next_part = 1
        self._etags: dict[int, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.size = 0

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    async def write(self, data: bytes) -> None:
        if not data:
            return
        self._buffer += data
        self.size += len(data)
        part_size = self._uploads.part_size
        while len(self._buffer) >= part_size:
            body = bytes(self._buffer[:part_size])
            del self._buffer[:part_size]
            await self._send_part(body)

    async def copy(
        self, source_bucket: str, source_key: str, start: int, end: int, etag: str | None
    ) -> None:
        """Append bytes `[start, end)` of the real `source_bucket`/`source_key` (at least
        MIN_PART_SIZE) by copy parts."""
        if self._buffer:
            body = bytes(self._buffer)
            self._buffer.clear()
            await self._send_part(body)
        length = end - start
        pieces = -(-length // MAX_PART_SIZE)
        piece_size = -(-length // pieces)
        for offset in range(start, end, piece_size):
            stop = min(offset + piece_size, end)
            number = await self._take_part_number()
            await self._spawn(
                functools.partial(
                    self._copy_part, number, source_bucket, source_key, offset, stop, etag
                )
            )
        self.size += length

    async def finish(self) -> int:
        if self._upload_id is None:
            return await self._put_whole()
        if self._buffer:
            body = bytes(self._buffer)
            self._buffer.clear()
            await self._send_part(body)
        while self._tasks:
            await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
            self._reap()
        parts = [{"PartNumber": n, "ETag": etag} for n, etag in sorted(self._etags.items())]
        await self._call(
            "CompleteMultipartUpload",
            self.name,
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": parts},
        )
        self._upload_id = None
        return self.size

    async def abort(self) -> None:
        """Stop the parts still being sent and abort the upload, if one was started.

        Runs to the end even if the caller is cancelled again meanwhile."""
        tasks = list(self._tasks)
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        upload_id, self._upload_id = self._upload_id, None
        if tasks or upload_id is not None:
            await self._uploads.background.shielded(self._abort_after(tasks, upload_id))

    async def _put_whole(self) -> int:
        body = bytes(self._buffer)
        await self._call("PutObject", self.name, Bucket=self.bucket, Key=self.key, Body=body)
        self._uploads.stats.uploaded_bytes += len(body)
        return self.size

    async def _call(self, operation: str, name: str, **params: Any) -> Any:
        return await call(self._uploads.send, operation, name, **params)

    async def _abort_after(self, tasks: list[asyncio.Task[None]], upload_id: str | None) -> None:
        await asyncio.gather(*tasks, return_exceptions=True)
        if upload_id is not None:
            await self._uploads.abort(self.bucket, self.key, upload_id)

    async def _take_part_number(self) -> int:
        if self._upload_id is None:
            await self._create()
        number = self._next_part
        if number > MAX_PARTS:
            raise StorageError(f"{self.name} is too large: more than {MAX_PARTS} parts")
        self._next_part += 1
        return number

    async def _create(self) -> None:
        task = asyncio.ensure_future(
            self._call("CreateMultipartUpload", self.name, Bucket=self.bucket, Key=self.key)
        )
        try:
            created = await asyncio.shield(task)
        except asyncio.CancelledError:
            # The store may create the upload all the same: abort it once its id is known.
            self._uploads.background.track(task)
            task.add_done_callback(self._abort_orphan)
            raise
        self._upload_id = created["UploadId"]
        self._uploads.stats.multipart_uploads += 1

    def _abort_orphan(self, task: asyncio.Future[Any]) -> None:
        if not task.cancelled() and task.exception() is None:
            upload_id = task.result()["UploadId"]
            abort = self._uploads.abort(self.bucket, self.key, upload_id)
            self._uploads.background.track(asyncio.ensure_future(abort))

    async def _send_part(self, body: bytes) -> None:
        number = await self._take_part_number()
        await self._spawn(functools.partial(self._upload_part, number, body))

    async def _spawn(self, start: Callable[[], Awaitable[None]]) -> None:
        """Run `start()` as a task once fewer than `max_in_flight` parts are being sent;
        raise the failure of any part that already failed."""
        self._reap()
        while len(self._tasks) >= self._uploads.max_in_flight:
            await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
            self._reap()
        task: asyncio.Task[None] = asyncio.ensure_future(start())
        self._tasks.add(task)

    def _reap(self) -> None:
        for task in [t for t in self._tasks if t.done()]:
            self._tasks.discard(task)
            task.result()

    async def _upload_part(self, number: int, body: bytes) -> None:
        response = await self._call(
            "UploadPart",
            f"{self.name} part {number}",
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
        )
        self._uploads.stats.uploaded_bytes += len(body)
        self._etags[number] = response["ETag"]

    async def _copy_part(
        self,
        number: int,
        source_bucket: str,
        source_key: str,
        start: int,
        end: int,
        etag: str | None,
    ) -> None:
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.key,
            "UploadId": self._upload_id,
            "PartNumber": number,
            "CopySource": {"Bucket": source_bucket, "Key": source_key},
            "CopySourceRange": f"bytes={start}-{end - 1}",
        }
        if etag:
            params["CopySourceIfMatch"] = etag
        response = await self._call("UploadPartCopy", f"{self.name} part {number}", **params)
        part_etag = response.get("CopyPartResult", {}).get("ETag")
        if not part_etag:
            raise StorageError(f"the S3 store did not copy part {number} of {self.name}")
        self._uploads.stats.copied_bytes += end - start
        self._etags[number] = part_etag
