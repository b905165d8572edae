"""Appending a range of an existing object to an upload, for `compose`: copied inside the store
with `UploadPartCopy` when the range is big enough and the store supports it, so adding to a
large training file uploads only the new bytes; streamed through this process otherwise.

Stores that do not implement `UploadPartCopy` (such as `rclone serve s3`) are detected once, by
a probe, and served by streaming from then on.
"""

from __future__ import annotations

import asyncio
import logging

from botocore.exceptions import ClientError

from .base import ObjectNotFound
from .s3_client import Send, call
from .s3_errors import COPY_UNSUPPORTED, REQUEST_ERRORS, error_code, object_name, storage_error
from .s3_read import ObjectReader
from .s3_upload import MIN_PART_SIZE, Upload, Uploads

logger = logging.getLogger(__name__)


class RangeCopier:
    """Appends ranges of objects to uploads in one store (reached through `send`, at `where`).

    `supported` is whether the store implements `UploadPartCopy`: None until the first large
    copy finds out, False from the start when server-side copies are switched off."""

    def __init__(
        self, send: Send, reader: ObjectReader, uploads: Uploads, *, enabled: bool, where: str
    ) -> None:
        self.supported: bool | None = None if enabled else False
        self._send = send
        self._reader = reader
        self._uploads = uploads
        self._where = where
        self._probe_lock = asyncio.Lock()

    async def append(
        self, upload: Upload, bucket: str, source_key: str, start: int, end: int, *, name: str
    ) -> None:
        """Append bytes `[start, end)` of the real `bucket`/`source_key` (called `name` in
        errors) to `upload`, which may write to another bucket of the same store."""
        length = end - start
        if length < MIN_PART_SIZE or self.supported is False:
            await self._stream_into(upload, bucket, source_key, start, end)
            return
        head = await self._reader.head(bucket, source_key)
        if head is None:
            raise ObjectNotFound(name)
        if end > int(head["ContentLength"]):
            raise ValueError(f"byte range [{start}, {end}) exceeds the size of {name}")
        etag = head.get("ETag")
        if 0 < upload.buffered < MIN_PART_SIZE:
            # Every part but the last must be >= 5 MiB: top the small buffered part up with the
            # first bytes of the range, read back, and copy the rest.
            needed = MIN_PART_SIZE - upload.buffered
            if length - needed < MIN_PART_SIZE or not await self._can_copy(
                bucket, source_key, upload
            ):
                await self._stream_into(upload, bucket, source_key, start, end)
                return
            async for chunk in self._reader.stream(
                bucket, source_key, start, start + needed, if_match=etag
            ):
                await upload.write(chunk)
            start += needed
        elif not await self._can_copy(bucket, source_key, upload):
            await self._stream_into(upload, bucket, source_key, start, end)
            return
        await upload.copy(bucket, source_key, start, end, etag)

    async def _stream_into(
        self, upload: Upload, bucket: str, source_key: str, start: int, end: int
    ) -> None:
        async for chunk in self._reader.stream(bucket, source_key, start, end):
            await upload.write(chunk)

    async def _can_copy(self, bucket: str, source_key: str, upload: Upload) -> bool:
        """Whether the store implements UploadPartCopy, found out once by a 1-byte probe of
        copying from `bucket`/`source_key` into a throwaway upload beside `upload`."""
        if self.supported is not None:
            return self.supported
        async with self._probe_lock:
            if self.supported is None:
                self.supported = await self._probe(bucket, source_key, upload.bucket, upload.key)
                if not self.supported:
                    logger.warning(
                        "the S3 store at %s does not support UploadPartCopy: ranges are "
                        "copied by streaming them through this server",
                        self._where,
                    )
        return bool(self.supported)

    async def _probe(
        self, source_bucket: str, source_key: str, bucket: str, target_key: str
    ) -> bool:
        """Copy one byte into a multipart upload that is then aborted, so it never creates an
        object. Some servers answer NotImplemented; `rclone serve s3` even accepts the request
        as an empty UploadPart, which only the missing CopyPartResult gives away."""
        name = object_name(bucket, target_key)
        created = await call(
            self._send, "CreateMultipartUpload", name, Bucket=bucket, Key=target_key
        )
        upload_id = created["UploadId"]
        try:
            response = await self._send(
                "UploadPartCopy",
                {
                    "Bucket": bucket,
                    "Key": target_key,
                    "UploadId": upload_id,
                    "PartNumber": 1,
                    "CopySource": {"Bucket": source_bucket, "Key": source_key},
                    "CopySourceRange": "bytes=0-0",
                },
            )
        except ClientError as error:
            if error_code(error) in COPY_UNSUPPORTED:
                return False
            raise storage_error(error, "UploadPartCopy", name) from error
        except REQUEST_ERRORS as error:
            raise storage_error(error, "UploadPartCopy", name) from error
        finally:
            abort = self._uploads.abort(bucket, target_key, upload_id, count=False)
            await self._uploads.background.shielded(abort)
        return bool(response.get("CopyPartResult", {}).get("ETag"))
