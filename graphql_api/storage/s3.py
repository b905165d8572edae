"""Storage in an S3-compatible object store: AWS S3, MinIO, Cloudflare R2, Supabase, Ceph...

One aiobotocore client is opened by `S3Storage.open` and shared by every request until
`close`. Writes are atomic the S3 way: an object appears only when its single `PutObject` or
its `CompleteMultipartUpload` succeeds, and any failure or cancellation before that aborts the
multipart upload, so nothing half-written is left behind (not even invisible parts).

`compose` copies large `CopyRange` parts inside the store with `UploadPartCopy`, so appending
to a big training file uploads only the new bytes (plus at most one minimum-sized part read
back to pad a small header up to S3's 5 MiB part minimum). Stores that do not implement
`UploadPartCopy` (such as `rclone serve s3`) are detected once and served by streaming.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from .base import (
    BUCKETS,
    CHUNK_SIZE,
    PROBE_PREFIX,
    CopyRange,
    DownloadLink,
    InvalidKey,
    ObjectNotFound,
    Part,
    PendingWrite,
    StorageError,
    StorageFailure,
    StoredObject,
    validate_bucket,
    validate_key,
)
from .links import content_disposition
from .s3_config import S3Config

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
MAX_KEY_BYTES = 1024
# SigV4 presigned URLs are valid for at most 7 days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600


_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
_BUCKET_NOT_FOUND = frozenset({"404", "NoSuchBucket", "NotFound"})
_RANGE_NOT_SATISFIABLE = frozenset({"416", "InvalidRange"})
# What servers answer an `UploadPartCopy` they do not implement.
_COPY_UNSUPPORTED = frozenset(
    {"NotImplemented", "Unimplemented", "501", "InvalidRequest", "InvalidArgument"}
)
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-\d+/(\d+)$")
# Why a request failed, as an operator sees it (error codes of AWS, MinIO, Ceph, R2...).
_FULL = frozenset({"QuotaExceeded", "XMinioStorageFull", "StorageFull", "InsufficientStorage"})
_DENIED = frozenset({"AccessDenied", "AllAccessDisabled", "AccountProblem", "403"})
_BAD_CREDENTIALS = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}
)
_WRITES = frozenset(
    {
        "PutObject",
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPartCopy",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
        "DeleteObject",
        "CreateBucket",
    }
)
# Failures to talk to the store at all: refused, reset, timed out, no credentials to sign with.
_TRANSPORT_ERRORS = (
    BotoConnectionError,
    HTTPClientError,
    NoCredentialsError,
    aiohttp.ClientError,
    OSError,
)
_NO_REGION_CONSTRAINT = frozenset({"", "us-east-1", "auto"})


@dataclass
class S3Stats:
    """Bytes and requests by kind, so tests (and operators) can see where data went."""

    uploaded_bytes: int = 0  # request bodies of PutObject and UploadPart
    copied_bytes: int = 0  # copied inside the store by UploadPartCopy
    downloaded_bytes: int = 0  # response bodies of GetObject
    multipart_uploads: int = 0  # started (CreateMultipartUpload)
    aborted_uploads: int = 0  # AbortMultipartUpload sent after a failure or cancellation


class S3Storage:
    """Objects in two S3 buckets; see `Storage` for the contract. Create with `open`."""

    def __init__(
        self,
        client: Any,
        config: S3Config,
        *,
        signer: Any = None,
        exit_stack: AsyncExitStack | None = None,
        part_size: int = PART_SIZE,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise ValueError(f"part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE}")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.config = config
        self.part_size = part_size
        self.max_in_flight = max_in_flight
        self.stats = S3Stats()
        names = ",".join(config.buckets[b] for b in BUCKETS)
        self.url = f"s3://{names}/{config.key_prefix}" if config.key_prefix else f"s3://{names}"
        self.endpoint_url = config.endpoint_url
        # None until the first large copy finds out whether the store supports UploadPartCopy.
        self.server_side_copy_supported: bool | None = None if config.server_side_copy else False
        # Keys or uploads per listing request (S3's maximum; smaller in tests of paging).
        self.list_page_size = 1000
        self._client = client
        self._signer = signer if signer is not None else client
        self._stack = exit_stack
        self._probe_lock = asyncio.Lock()
        self._background: set[asyncio.Future[Any]] = set()
        self._closed = False

    @classmethod
    async def open(
        cls,
        config: S3Config,
        *,
        part_size: int = PART_SIZE,
        max_in_flight: int = MAX_IN_FLIGHT,
        session: AioSession | None = None,
    ) -> S3Storage:
        """Open the client (and create missing buckets when `config.create_buckets`).

        Storages opened without a `session` share one, so the S3 service model is loaded once.
        """
        session = session or _default_session()
        stack = AsyncExitStack()
        try:
            client = await stack.enter_async_context(
                session.create_client("s3", **_client_arguments(config, config.endpoint_url))
            )
            signer = client
            if config.public_endpoint_url:
                signer = await stack.enter_async_context(
                    session.create_client(
                        "s3", **_client_arguments(config, config.public_endpoint_url)
                    )
                )
            storage = cls(
                client,
                config,
                signer=signer,
                exit_stack=stack,
                part_size=part_size,
                max_in_flight=max_in_flight,
            )
            if config.create_buckets:
                await storage.create_missing_buckets()
        except BaseException:
            await stack.aclose()
            raise
        return storage

    # -- the Storage protocol -------------------------------------------------------------------

    async def put(self, bucket: str, key: str, chunks: AsyncIterable[bytes]) -> int:
        real_bucket, real_key = self._locate(bucket, key)
        upload = _Upload(self, real_bucket, real_key)
        try:
            async for chunk in chunks:
                await upload.write(_as_bytes(chunk))
            return await upload.finish()
        except BaseException:
            await upload.abort()
            raise

    async def compose(self, bucket: str, key: str, parts: Sequence[Part]) -> int:
        real_bucket, real_key = self._locate(bucket, key)
        for part in parts:  # every part checked before anything is read or written
            if isinstance(part, CopyRange):
                self._locate(bucket, part.key)
                _check_range(part.start, part.end)
            elif not isinstance(part, (bytes, bytearray, memoryview, AsyncIterable)):
                raise TypeError(f"compose parts must be bytes, CopyRange or streams, not {part!r}")
        upload = _Upload(self, real_bucket, real_key)
        try:
            for part in parts:
                if isinstance(part, CopyRange):
                    await self._compose_range(upload, bucket, part)
                elif isinstance(part, (bytes, bytearray, memoryview)):
                    await upload.write(_as_bytes(part))
                else:
                    async for chunk in part:
                        await upload.write(_as_bytes(chunk))
            return await upload.finish()
        except BaseException:
            await upload.abort()
            raise

    def get(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        real_bucket, real_key = self._locate(bucket, key)
        return self._stream(real_bucket, real_key, 0, None)

    def get_range(self, bucket: str, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        real_bucket, real_key = self._locate(bucket, key)
        _check_range(start, end)
        return self._stream(real_bucket, real_key, start, end)

    async def delete(self, bucket: str, key: str) -> None:
        real_bucket, real_key = self._locate(bucket, key)
        name = _name(real_bucket, real_key)
        try:
            await self._call("DeleteObject", name, Bucket=real_bucket, Key=real_key)
        except ObjectNotFound:
            pass
        except StorageError:
            # Stores that keep objects as files (rclone) fail to delete a key that is only a
            # prefix of others; there was no object to remove, which is all delete promises.
            if await self._head(real_bucket, real_key) is not None:
                raise

    async def exists(self, bucket: str, key: str) -> bool:
        real_bucket, real_key = self._locate(bucket, key)
        return await self._head(real_bucket, real_key) is not None

    async def size(self, bucket: str, key: str) -> int:
        real_bucket, real_key = self._locate(bucket, key)
        head = await self._head(real_bucket, real_key)
        if head is None:
            raise ObjectNotFound(f"{bucket}/{key}")
        return int(head["ContentLength"])

    async def list_keys(self, bucket: str) -> list[str]:
        return sorted([found.key async for found in self.list_objects(bucket)])

    async def list_objects(self, bucket: str) -> AsyncIterator[StoredObject]:
        real_bucket = self.config.buckets[validate_bucket(bucket)]
        prefix = self.config.key_prefix
        params: dict[str, Any] = {
            "Bucket": real_bucket,
            "Prefix": prefix,
            "MaxKeys": self.list_page_size,
        }
        while True:
            page = await self._call("ListObjectsV2", _name(real_bucket, prefix), **params)
            for item in page.get("Contents", []):
                key = item["Key"][len(prefix) :]
                yield StoredObject(bucket, key, int(item["Size"]), item["LastModified"])
            if not page.get("IsTruncated"):
                return
            params["ContinuationToken"] = page["NextContinuationToken"]

    async def list_pending_writes(self, bucket: str) -> AsyncIterator[PendingWrite]:
        real_bucket = self.config.buckets[validate_bucket(bucket)]
        prefix = self.config.key_prefix
        params: dict[str, Any] = {
            "Bucket": real_bucket,
            "Prefix": prefix,
            "MaxUploads": self.list_page_size,
        }
        while True:
            try:
                page = await self._call(
                    "ListMultipartUploads", _name(real_bucket, prefix), **params
                )
            except StorageError as error:
                # rclone answers NoSuchUpload for a bucket without uploads.
                if _code(error.__cause__) == "NoSuchUpload":
                    return
                raise
            for upload in page.get("Uploads", []):
                key = upload["Key"][len(prefix) :]
                yield PendingWrite(bucket, key, upload["UploadId"], upload["Initiated"])
            if not page.get("IsTruncated"):
                return
            params["KeyMarker"] = page.get("NextKeyMarker", "")
            params["UploadIdMarker"] = page.get("NextUploadIdMarker", "")

    async def abort_pending_write(self, pending: PendingWrite) -> None:
        real_bucket = self.config.buckets[validate_bucket(pending.bucket)]
        # Not `_locate`: an upload under a key that breaks our rules must be abortable too.
        real_key = self.config.key_prefix + pending.key
        name = _name(real_bucket, real_key)
        try:
            await self._call(
                "AbortMultipartUpload",
                name,
                Bucket=real_bucket,
                Key=real_key,
                UploadId=pending.upload_id,
            )
        except ObjectNotFound:
            pass
        except StorageError as error:
            if _code(error.__cause__) != "NoSuchUpload":
                raise

    async def check(self) -> None:
        missing = await self._missing_buckets()
        if missing:
            names = ", ".join(f"{real!r} (for {logical})" for logical, real in missing)
            raise StorageError(
                f"S3 bucket(s) {names} do not exist at {self._where()}: create them or set "
                "S3_CREATE_BUCKETS=true",
                reason="unreachable",
            )

    async def probe(self, min_free_bytes: int) -> None:
        """Every bucket exists and takes a tiny PutObject and DeleteObject under the key prefix.
        An object store has no free space to measure: `min_free_bytes` does not apply."""
        await self.check()
        for bucket in BUCKETS:
            real_bucket, real_key = self._locate(bucket, f"{PROBE_PREFIX}{secrets.token_hex(8)}")
            name = _name(real_bucket, real_key)
            await self._call("PutObject", name, Bucket=real_bucket, Key=real_key, Body=b"probe")
            await self._call("DeleteObject", name, Bucket=real_bucket, Key=real_key)

    async def download_link(
        self,
        bucket: str,
        key: str,
        *,
        filename: str,
        content_type: str,
        ttl_seconds: int,
        base_url: str,
    ) -> DownloadLink:
        """A presigned GET URL that downloads the object as `filename` for `ttl_seconds`:
        the client talks to the store, so `base_url` (this app's address) plays no part.

        Signing is local (no request is sent); the URL works without credentials.
        """
        real_bucket, real_key = self._locate(bucket, key)
        if not filename:
            raise ValueError("a download needs a file name")
        if not content_type or not content_type.isprintable() or not content_type.isascii():
            raise ValueError(f"invalid content type {content_type!r}")
        if not 0 < ttl_seconds <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"ttl_seconds must be between 1 and {MAX_PRESIGN_SECONDS}")
        now = datetime.now(UTC).replace(microsecond=0)
        try:
            url = await self._signer.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": real_bucket,
                    "Key": real_key,
                    "ResponseContentDisposition": content_disposition(filename),
                    "ResponseContentType": content_type,
                },
                ExpiresIn=ttl_seconds,
                HttpMethod="GET",
            )
        except (BotoCoreError, ClientError) as error:
            raise _storage_error(
                error, "presign GetObject", _name(real_bucket, real_key)
            ) from error
        return DownloadLink(
            url=url,
            filename=filename,
            expires_in_seconds=ttl_seconds,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        while self._background:  # aborts still running after a cancellation
            await asyncio.gather(*self._background, return_exceptions=True)
            await asyncio.sleep(0)  # let their done callbacks run (and maybe add an abort)
        if self._stack is not None:
            await self._stack.aclose()

    # -- beyond the protocol -------------------------------------------------------------------

    async def create_missing_buckets(self) -> list[str]:
        """Create the buckets that do not exist yet; return the real names created."""
        created = []
        for _, real in await self._missing_buckets():
            params: dict[str, Any] = {"Bucket": real}
            if self.config.region not in _NO_REGION_CONSTRAINT:
                params["CreateBucketConfiguration"] = {"LocationConstraint": self.config.region}
            try:
                await self._call("CreateBucket", f"s3://{real}", **params)
            except StorageError as error:
                if "BucketAlreadyOwnedByYou" not in str(error):
                    raise
            else:
                logger.info("created S3 bucket %s at %s", real, self._where())
                created.append(real)
        return created

    # -- internals ------------------------------------------------------------------------------

    def _locate(self, bucket: str, key: str) -> tuple[str, str]:
        """The real bucket and key, after the key rules; raises `InvalidKey` before any I/O."""
        real_bucket = self.config.buckets[validate_bucket(bucket)]
        full_key = self.config.key_prefix + validate_key(key)
        if len(full_key.encode()) > MAX_KEY_BYTES:
            raise InvalidKey(f"storage key {key!r} is too long with the prefix for S3")
        return real_bucket, full_key

    def _where(self) -> str:
        return self.config.endpoint_url or f"AWS S3 ({self.config.region})"

    async def _call(self, operation: str, name: str, **params: Any) -> Any:
        """Send one request; map botocore and connection failures to `StorageError`."""
        try:
            return await self._send(operation, params)
        except (BotoCoreError, ClientError, aiohttp.ClientError, OSError) as error:
            raise _storage_error(error, operation, name) from error

    async def _send(self, operation: str, params: dict[str, Any]) -> Any:
        """The one place a request leaves for the store (tests inject faults here)."""
        return await getattr(self._client, _snake_case(operation))(**params)

    async def _head(self, bucket: str, key: str) -> dict[str, Any] | None:
        try:
            return await self._call("HeadObject", _name(bucket, key), Bucket=bucket, Key=key)
        except ObjectNotFound:
            return None

    async def _missing_buckets(self) -> list[tuple[str, str]]:
        missing = []
        for logical, real in self.config.buckets.items():
            try:
                await self._send("HeadBucket", {"Bucket": real})
            except ClientError as error:
                if _code(error) not in _BUCKET_NOT_FOUND:
                    raise _storage_error(error, "HeadBucket", f"s3://{real}") from error
                missing.append((logical, real))
            except (BotoCoreError, aiohttp.ClientError, OSError) as error:
                raise _storage_error(error, "HeadBucket", f"s3://{real}") from error
        return missing

    async def _stream(
        self, bucket: str, key: str, start: int, end: int | None, *, if_match: str | None = None
    ) -> AsyncIterator[bytes]:
        name = _name(bucket, key)
        if end is not None and start == end:  # no bytes to read, but the object must exist
            head = await self._head(bucket, key)
            if head is None:
                raise ObjectNotFound(name)
            if end > int(head["ContentLength"]):
                raise ValueError(f"byte range [{start}, {end}) exceeds the size of {name}")
            return
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if end is not None:
            params["Range"] = f"bytes={start}-{end - 1}"
        if if_match is not None:
            params["IfMatch"] = if_match
        try:
            response = await self._call("GetObject", name, **params)
        except StorageError as error:
            if _code(error.__cause__) in _RANGE_NOT_SATISFIABLE:
                raise ValueError(
                    f"byte range [{start}, {end}) exceeds the size of {name}"
                ) from None
            raise
        body = response["Body"]
        try:
            skip, remaining = 0, None
            if end is not None:
                content_range = response.get("ContentRange")
                if content_range:  # rclone sends it with 200 rather than 206
                    first, total = _parse_content_range(content_range, name)
                    if first != start:
                        raise StorageError(f"{name}: asked for bytes from {start}, got {first}")
                else:  # a server that ignored the Range header sent the whole object
                    total, skip = int(response["ContentLength"]), start
                if end > total:
                    raise ValueError(f"byte range [{start}, {end}) exceeds the size of {name}")
                remaining = end - start
            buffer = bytearray()
            while remaining is None or remaining > 0:
                data = await _read(body, CHUNK_SIZE - len(buffer), name)
                if not data:
                    break
                self.stats.downloaded_bytes += len(data)
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
        finally:
            body.close()

    async def _compose_range(self, upload: _Upload, bucket: str, part: CopyRange) -> None:
        """Append `part` to `upload`: copied inside the store when it is big enough."""
        length = part.end - part.start
        if length < MIN_PART_SIZE or self.server_side_copy_supported is False:
            await self._stream_range_into(upload, bucket, part)
            return
        real_bucket, source_key = self._locate(bucket, part.key)
        head = await self._head(real_bucket, source_key)
        if head is None:
            raise ObjectNotFound(f"{bucket}/{part.key}")
        if part.end > int(head["ContentLength"]):
            raise ValueError(
                f"byte range [{part.start}, {part.end}) exceeds the size of {bucket}/{part.key}"
            )
        etag = head.get("ETag")
        start = part.start
        if 0 < upload.buffered < MIN_PART_SIZE:
            # Every part but the last must be >= 5 MiB: top the small buffered part up with the
            # first bytes of the range, read back, and copy the rest.
            needed = MIN_PART_SIZE - upload.buffered
            if length - needed < MIN_PART_SIZE:
                await self._stream_range_into(upload, bucket, part)
                return
            if not await self._can_copy(real_bucket, source_key, upload.key):
                await self._stream_range_into(upload, bucket, part)
                return
            async for chunk in self._stream(
                real_bucket, source_key, start, start + needed, if_match=etag
            ):
                await upload.write(chunk)
            start += needed
        elif not await self._can_copy(real_bucket, source_key, upload.key):
            await self._stream_range_into(upload, bucket, part)
            return
        await upload.copy(source_key, start, part.end, etag)

    async def _stream_range_into(self, upload: _Upload, bucket: str, part: CopyRange) -> None:
        async for chunk in self.get_range(bucket, part.key, part.start, part.end):
            await upload.write(chunk)

    async def _can_copy(self, bucket: str, source_key: str, target_key: str) -> bool:
        """Whether the store implements UploadPartCopy, found out once by a 1-byte probe.

        Some servers answer NotImplemented; `rclone serve s3` even accepts the request as an
        empty UploadPart, which only the missing CopyPartResult gives away. The probe's upload
        is aborted, so it never creates an object.
        """
        if self.server_side_copy_supported is not None:
            return self.server_side_copy_supported
        async with self._probe_lock:
            if self.server_side_copy_supported is None:
                supported = await self._probe_copy(bucket, source_key, target_key)
                self.server_side_copy_supported = supported
                if not supported:
                    logger.warning(
                        "the S3 store at %s does not support UploadPartCopy: ranges are "
                        "copied by streaming them through this server",
                        self._where(),
                    )
        return bool(self.server_side_copy_supported)

    async def _probe_copy(self, bucket: str, source_key: str, target_key: str) -> bool:
        name = _name(bucket, target_key)
        created = await self._call("CreateMultipartUpload", name, Bucket=bucket, Key=target_key)
        upload_id = created["UploadId"]
        try:
            response = await self._send(
                "UploadPartCopy",
                {
                    "Bucket": bucket,
                    "Key": target_key,
                    "UploadId": upload_id,
                    "PartNumber": 1,
                    "CopySource": {"Bucket": bucket, "Key": source_key},
                    "CopySourceRange": "bytes=0-0",
                },
            )
        except ClientError as error:
            if _code(error) in _COPY_UNSUPPORTED:
                return False
            raise _storage_error(error, "UploadPartCopy", name) from error
        except (BotoCoreError, aiohttp.ClientError, OSError) as error:
            raise _storage_error(error, "UploadPartCopy", name) from error
        finally:
            await self._shielded(self._abort(bucket, target_key, upload_id, count=False))
        return bool(response.get("CopyPartResult", {}).get("ETag"))

    async def _shielded(self, work: Awaitable[None]) -> None:
        """Await `work`, which goes on to the end even if the caller is cancelled (`close`
        waits for it)."""
        await asyncio.shield(self._track(asyncio.ensure_future(work)))

    def _track(self, task: asyncio.Future[Any]) -> asyncio.Future[Any]:
        """Keep `task` referenced until it ends; `close` waits for it."""
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _abort(self, bucket: str, key: str, upload_id: str, *, count: bool = True) -> None:
        try:
            await self._send(
                "AbortMultipartUpload", {"Bucket": bucket, "Key": key, "UploadId": upload_id}
            )
        except (BotoCoreError, ClientError, aiohttp.ClientError, OSError) as error:
            if isinstance(error, ClientError) and _code(error) == "NoSuchUpload":
                return
            logger.warning(
                "could not abort multipart upload of %s: %s",
                _name(bucket, key),
                _storage_error(error, "AbortMultipartUpload", _name(bucket, key)),
            )
        else:
            if count:
                self.stats.aborted_uploads += 1


class _Upload:
    """One object being written: a single PutObject while it fits in one part, else a
    multipart upload with at most `max_in_flight` parts being sent at a time."""

    def __init__(self, storage: S3Storage, bucket: str, key: str) -> None:
        self._storage = storage
        self.bucket = bucket
        self.key = key
        self.name = _name(bucket, key)
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
        part_size = self._storage.part_size
        while len(self._buffer) >= part_size:
            body = bytes(self._buffer[:part_size])
            del self._buffer[:part_size]
            await self._send_part(body)

    async def copy(self, source_key: str, start: int, end: int, etag: str | None) -> None:
        """Append bytes `[start, end)` of `source_key` (at least MIN_PART_SIZE) by copy parts."""
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
                functools.partial(self._copy_part, number, source_key, offset, stop, etag)
            )
        self.size += length

    async def finish(self) -> int:
        if self._upload_id is None:
            body = bytes(self._buffer)
            await self._storage._call(
                "PutObject", self.name, Bucket=self.bucket, Key=self.key, Body=body
            )
            self._storage.stats.uploaded_bytes += len(body)
            return self.size
        if self._buffer:
            body = bytes(self._buffer)
            self._buffer.clear()
            await self._send_part(body)
        while self._tasks:
            await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
            self._reap()
        parts = [{"PartNumber": n, "ETag": etag} for n, etag in sorted(self._etags.items())]
        await self._storage._call(
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
            await self._storage._shielded(self._abort_after(tasks, upload_id))

    async def _abort_after(self, tasks: list[asyncio.Task[None]], upload_id: str | None) -> None:
        await asyncio.gather(*tasks, return_exceptions=True)
        if upload_id is not None:
            await self._storage._abort(self.bucket, self.key, upload_id)

    async def _take_part_number(self) -> int:
        if self._upload_id is None:
            await self._create()
        number = self._next_part
        if number > MAX_PARTS:
            raise StorageError(f"{self.name} is too large: more than {MAX_PARTS} parts")
        self._next_part += 1
        return number

    async def _create(self) -> None:
        storage = self._storage
        task = asyncio.ensure_future(
            storage._call("CreateMultipartUpload", self.name, Bucket=self.bucket, Key=self.key)
        )
        try:
            created = await asyncio.shield(task)
        except asyncio.CancelledError:
            # The store may create the upload all the same: abort it once its id is known.
            storage._track(task)
            task.add_done_callback(self._abort_orphan)
            raise
        self._upload_id = created["UploadId"]
        storage.stats.multipart_uploads += 1

    def _abort_orphan(self, task: asyncio.Future[Any]) -> None:
        if not task.cancelled() and task.exception() is None:
            upload_id = task.result()["UploadId"]
            self._storage._track(
                asyncio.ensure_future(self._storage._abort(self.bucket, self.key, upload_id))
            )

    async def _send_part(self, body: bytes) -> None:
        number = await self._take_part_number()
        await self._spawn(functools.partial(self._upload_part, number, body))

    async def _spawn(self, start: Callable[[], Awaitable[None]]) -> None:
        """Run `start()` as a task once fewer than `max_in_flight` parts are being sent;
        raise the failure of any part that already failed."""
        self._reap()
        while len(self._tasks) >= self._storage.max_in_flight:
            await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
            self._reap()
        task: asyncio.Task[None] = asyncio.ensure_future(start())
        self._tasks.add(task)

    def _reap(self) -> None:
        for task in [t for t in self._tasks if t.done()]:
            self._tasks.discard(task)
            task.result()

    async def _upload_part(self, number: int, body: bytes) -> None:
        response = await self._storage._call(
            "UploadPart",
            f"{self.name} part {number}",
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
        )
        self._storage.stats.uploaded_bytes += len(body)
        self._etags[number] = response["ETag"]

    async def _copy_part(
        self, number: int, source_key: str, start: int, end: int, etag: str | None
    ) -> None:
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.key,
            "UploadId": self._upload_id,
            "PartNumber": number,
            "CopySource": {"Bucket": self.bucket, "Key": source_key},
            "CopySourceRange": f"bytes={start}-{end - 1}",
        }
        if etag:
            params["CopySourceIfMatch"] = etag
        response = await self._storage._call(
            "UploadPartCopy", f"{self.name} part {number}", **params
        )
        part_etag = response.get("CopyPartResult", {}).get("ETag")
        if not part_etag:
            raise StorageError(f"the S3 store did not copy part {number} of {self.name}")
        self._storage.stats.copied_bytes += end - start
        self._etags[number] = part_etag


# -- helpers ------------------------------------------------------------------------------------


@functools.cache
def _default_session() -> AioSession:
    return get_session()


def _client_arguments(config: S3Config, endpoint_url: str | None) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "region_name": config.region,
        "config": AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": config.addressing_style},
            retries={"mode": "standard", "total_max_attempts": config.max_attempts},
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            max_pool_connections=32,
            # No aws-chunked uploads with trailing checksums: many S3-compatible stores
            # reject them. Integrity in transit is TLS's job (and SigV4's over plain HTTP).
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    }
    if endpoint_url:
        arguments["endpoint_url"] = endpoint_url
    if config.access_key_id is not None:
        arguments["aws_access_key_id"] = config.access_key_id
        arguments["aws_secret_access_key"] = config.secret_access_key
    return arguments


def _name(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def _snake_case(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def _code(error: BaseException | None) -> str | None:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or "") or None
    return None


def _storage_error(error: BaseException, operation: str, name: str) -> StorageError:
    """A `StorageError` (or `ObjectNotFound`) saying what failed, without any credentials."""
    if isinstance(error, ClientError):
        code = _code(error)
        if code in _NOT_FOUND and operation not in ("HeadBucket", "CreateBucket"):
            return ObjectNotFound(name)
        details = error.response.get("Error", {})
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = str(details.get("Message") or "").strip()
        text = f"S3 {operation} {name} failed: {code or 'error'}"
        if status:
            text += f" (HTTP {status})"
        if code == "NoSuchBucket":
            text += ": the bucket does not exist"
        elif message:
            text += f": {message}"
        return StorageError(text, reason=_client_error_reason(code, status, operation))
    reason: StorageFailure | None = "unreachable" if isinstance(error, _TRANSPORT_ERRORS) else None
    return StorageError(
        f"S3 {operation} {name} failed: {type(error).__name__}: {error}", reason=reason
    )


def _client_error_reason(
    code: str | None, status: int | None, operation: str
) -> StorageFailure | None:
    if code in _FULL or status == 507:
        return "full"
    if code in _DENIED or status == 403:
        # A store that refuses writes but serves reads is read-only, not down.
        return "unwritable" if operation in _WRITES else "unreachable"
    if code in _BAD_CREDENTIALS or code == "NoSuchBucket":
        return "unreachable"
    if status is not None and status >= 500:
        return "unreachable"
    return None


def _check_range(start: int, end: int) -> None:
    if not (isinstance(start, int) and isinstance(end, int)):
        raise TypeError("byte range bounds must be integers")
    if not 0 <= start <= end:
        raise ValueError(f"invalid byte range [{start}, {end})")


def _as_bytes(chunk: object) -> bytes:
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(memoryview(chunk).cast("B"))
    raise TypeError(f"storage chunks must be bytes, not {type(chunk).__name__}")


def _parse_content_range(header: str, name: str) -> tuple[int, int]:
    """The first byte and the object size from `bytes first-last/size`."""
    match = _CONTENT_RANGE.match(header.strip())
    if match is None:
        raise StorageError(f"{name}: unexpected Content-Range {header!r}")
    return int(match.group(1)), int(match.group(2))


async def _read(body: Any, amount: int, name: str) -> bytes:
    try:
        return await body.read(amount)
    except (BotoCoreError, aiohttp.ClientError, OSError) as error:
        raise _storage_error(error, "GetObject", name) from error
