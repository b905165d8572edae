"""Storage in an S3-compatible object store: AWS S3, MinIO, Cloudflare R2, Supabase, Ceph...

One aiobotocore client is opened by `S3Storage.open` and shared by every request until
`close`; every request leaves through `S3Storage._send`. The work is split by job:

    s3_client.py   the clients, the `Send` shape of a request, the byte and request tally
    s3_errors.py   failed requests as `StorageError` with an operator's reason
    s3_upload.py   writing one object (PutObject or a multipart upload) atomically
    s3_compose.py  compose: a plain object, or a composite that names the segments it keeps
    s3_manifest.py a composite's manifest and the keys of its segments
    s3_copy.py     compose's copied ranges: UploadPartCopy inside the store, or streamed
    s3_read.py     HeadObject and ranged GetObject streams

Reads resolve composites: `get`, `get_range` and `size` give the composite's bytes, and its
download link points at the app's own route (which reads it here) instead of being presigned.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

from aiobotocore.session import AioSession
from botocore.exceptions import BotoCoreError, ClientError

from .base import (
    BUCKETS,
    PROBE_PREFIX,
    CopyRange,
    DownloadLink,
    InvalidKey,
    ObjectNotFound,
    Part,
    PendingWrite,
    StorageError,
    StoredObject,
    validate_bucket,
    validate_key,
)
from .links import LinkSigner, content_disposition
from .s3_client import S3Stats, call, method_name, open_clients
from .s3_compose import MAX_SEGMENTS, Composer
from .s3_config import S3Config
from .s3_copy import RangeCopier
from .s3_errors import (
    BUCKET_NOT_FOUND,
    NO_SUCH_UPLOAD,
    REQUEST_ERRORS,
    error_code,
    object_name,
    storage_error,
)
from .s3_manifest import (
    MAX_MANIFEST_BYTES,
    Manifest,
    born_for,
    composite_size,
    decode,
    is_composite,
)
from .s3_read import ObjectReader
from .s3_upload import MAX_IN_FLIGHT, PART_SIZE, Uploads
from .tasks import gather

logger = logging.getLogger(__name__)

MAX_KEY_BYTES = 1024
# SigV4 presigned URLs are valid for at most 7 days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600

_NO_REGION_CONSTRAINT = frozenset({"", "us-east-1", "auto"})


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
        max_segments: int = MAX_SEGMENTS,
        link_signer: LinkSigner | None = None,
    ) -> None:
        self.stats = S3Stats()
        # Every part sends through `_send`, bound here: a subclass's override (the tests' fault
        # injection) takes effect everywhere.
        self._uploads = Uploads(self._send, self.stats, part_size, max_in_flight)
        self.config = config
        names = ",".join(config.buckets[b] for b in BUCKETS)
        self.url = f"s3://{names}/{config.key_prefix}" if config.key_prefix else f"s3://{names}"
        self.copies_small_ranges = False
        # Keys or uploads per listing request (S3's maximum; smaller in tests of paging).
        self.list_page_size = 1000
        self._client = client
        self._signer = signer if signer is not None else client
        self._stack = exit_stack
        self._reader = ObjectReader(self._send, self.stats)
        self._copier = RangeCopier(
            self._send,
            self._reader,
            self._uploads,
            enabled=config.server_side_copy,
            where=self._where(),
        )
        self._composer = Composer(
            send=self._send,
            stats=self.stats,
            uploads=self._uploads,
            copier=self._copier,
            locate=self._locate,
            manifest_of=self._manifest_of,
            delete=self.delete,
            composites=config.composite_objects,
            max_segments=max_segments,
        )
        # Signs the links to composites, which the app's download route serves; a storage
        # opened without one (maintenance, tests) hands out none for composites.
        self.link_signer = link_signer
        self._closed = False

    @classmethod
    async def open(
        cls,
        config: S3Config,
        *,
        part_size: int = PART_SIZE,
        max_in_flight: int = MAX_IN_FLIGHT,
        max_segments: int = MAX_SEGMENTS,
        link_signer: LinkSigner | None = None,
        session: AioSession | None = None,
    ) -> S3Storage:
        """Open the client (and create missing buckets when `config.create_buckets`)."""
        stack = AsyncExitStack()
        try:
            client, signer = await open_clients(config, stack, session)
            storage = cls(
                client,
                config,
                signer=signer,
                exit_stack=stack,
                part_size=part_size,
                max_in_flight=max_in_flight,
                max_segments=max_segments,
                link_signer=link_signer,
            )
            if config.create_buckets:
                await storage.create_missing_buckets()
        except BaseException:
            await stack.aclose()
            raise
        return storage

    @property
    def server_side_copy_supported(self) -> bool | None:
        """Whether the store copies ranges with UploadPartCopy; None until a copy asked."""
        return self._copier.supported

    # -- the Storage protocol -------------------------------------------------------------------

    async def put(self, bucket: str, key: str, chunks: AsyncIterable[bytes]) -> int:
        self._locate(bucket, key)
        return await self._composer.compose(bucket, key, [chunks])  # one stream: plain

    async def compose(self, bucket: str, key: str, parts: Sequence[Part]) -> int:
        return (await self.compose_many(bucket, {key: parts}))[key]

    async def compose_many(
        self, bucket: str, objects: Mapping[str, Sequence[Part]]
    ) -> dict[str, int]:
        """Concurrent composes: each copies its ranges inside the store, so they share
        nothing (a build hands S3 its pieces as bytes, read once: `copies_small_ranges`)."""
        for key, parts in objects.items():  # every part checked before anything is written
            self._locate(bucket, key)
            for part in parts:
                if isinstance(part, CopyRange):
                    self._locate(_source_bucket(bucket, part), part.key)
                    _check_range(part.start, part.end)
                elif not isinstance(part, (bytes, bytearray, memoryview, AsyncIterable)):
                    raise TypeError(
                        f"compose parts must be bytes, CopyRange or streams, not {part!r}"
                    )
        composed = [self._composer.compose(bucket, key, parts) for key, parts in objects.items()]
        return dict(zip(objects, await gather(*composed), strict=True))

    def get(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        self._locate(bucket, key)
        return self._read(bucket, key, 0, None)

    def get_range(self, bucket: str, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        self._locate(bucket, key)
        _check_range(start, end)
        return self._read(bucket, key, start, end)

    async def delete(self, bucket: str, key: str) -> None:
        real_bucket, real_key = self._locate(bucket, key)
        name = object_name(real_bucket, real_key)
        try:
            await self._call("DeleteObject", name, Bucket=real_bucket, Key=real_key)
        except ObjectNotFound:
            pass
        except StorageError:
            # Stores that keep objects as files (rclone) fail to delete a key that is only a
            # prefix of others; there was no object to remove, which is all delete promises.
            if await self._reader.head(real_bucket, real_key) is not None:
                raise

    async def discard(self, bucket: str, key: str) -> None:
        """Delete the object and, for a composite, the segments written for it: nothing
        references an object being discarded, so no other manifest names them yet."""
        try:
            manifest = await self._manifest_of(bucket, key)
        except ObjectNotFound:
            return
        await self.delete(bucket, key)
        for segment in sorted({s.key for s in manifest.segments} if manifest else ()):
            if born_for(segment, key):
                await self.delete(bucket, segment)

    async def exists(self, bucket: str, key: str) -> bool:
        return await self._reader.head(*self._locate(bucket, key)) is not None

    async def size(self, bucket: str, key: str) -> int:
        head = await self._reader.head(*self._locate(bucket, key))
        if head is None:
            raise ObjectNotFound(f"{bucket}/{key}")
        if is_composite(head):
            return composite_size(head, f"{bucket}/{key}")
        return int(head["ContentLength"])

    async def segments_of(self, bucket: str, key: str) -> frozenset[str]:
        """The segments a composite names; none for a plain object or a missing one."""
        try:
            manifest = await self._manifest_of(bucket, key)
        except ObjectNotFound:
            return frozenset()
        return frozenset() if manifest is None else frozenset(s.key for s in manifest.segments)

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
            page = await self._call("ListObjectsV2", object_name(real_bucket, prefix), **params)
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
                    "ListMultipartUploads", object_name(real_bucket, prefix), **params
                )
            except StorageError as error:
                # rclone answers NoSuchUpload for a bucket without uploads.
                if error_code(error.__cause__) == NO_SUCH_UPLOAD:
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
        name = object_name(real_bucket, real_key)
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
            if error_code(error.__cause__) != NO_SUCH_UPLOAD:
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
            name = object_name(real_bucket, real_key)
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
        """A presigned GET URL that downloads the object as `filename` for `ttl_seconds`: the
        client talks to the store. A composite is served by the app's own route under
        `base_url` instead (the store would send its manifest), so a HeadObject tells which.
        The URL works without credentials.
        """
        real_bucket, real_key = self._locate(bucket, key)
        _check_link_request(filename, content_type, ttl_seconds)
        head = await self._reader.head(real_bucket, real_key)
        if head is None or not is_composite(head):
            return await self.presign(
                bucket, key, filename=filename, content_type=content_type, ttl_seconds=ttl_seconds
            )
        if self.link_signer is None:
            raise RuntimeError("this S3 storage was opened without a link signer")
        return self.link_signer.sign(
            bucket,
            key,
            filename=filename,
            content_type=content_type,
            ttl_seconds=ttl_seconds,
            base_url=base_url,
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._uploads.background.drain()  # aborts still running after a cancellation
        if self._stack is not None:
            await self._stack.aclose()

    # -- beyond the protocol -------------------------------------------------------------------

    async def presign(
        self, bucket: str, key: str, *, filename: str, content_type: str, ttl_seconds: int
    ) -> DownloadLink:
        """The store's own presigned GET URL for the object, whatever it is (no request is
        sent: signing is local)."""
        real_bucket, real_key = self._locate(bucket, key)
        _check_link_request(filename, content_type, ttl_seconds)
        now = datetime.now(UTC).replace(microsecond=0)
        params = {
            "Bucket": real_bucket,
            "Key": real_key,
            "ResponseContentDisposition": content_disposition(filename),
            "ResponseContentType": content_type,
        }
        try:
            url = await self._signer.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=ttl_seconds, HttpMethod="GET"
            )
        except (BotoCoreError, ClientError) as error:
            name = object_name(real_bucket, real_key)
            raise storage_error(error, "presign GetObject", name) from error
        return DownloadLink(
            url=url,
            filename=filename,
            expires_in_seconds=ttl_seconds,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )

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

    async def _send(self, operation: str, params: dict[str, Any]) -> Any:
        """The one place a request leaves for the store (tests inject faults here)."""
        return await getattr(self._client, method_name(operation))(**params)

    async def _call(self, operation: str, name: str, **params: Any) -> Any:
        return await call(self._send, operation, name, **params)

    def _locate(self, bucket: str, key: str) -> tuple[str, str]:
        """The real bucket and key, after the key rules; raises `InvalidKey` before any I/O."""
        real_bucket = self.config.buckets[validate_bucket(bucket)]
        full_key = self.config.key_prefix + validate_key(key)
        if len(full_key.encode()) > MAX_KEY_BYTES:
            raise InvalidKey(f"storage key {key!r} is too long with the prefix for S3")
        return real_bucket, full_key

    def _where(self) -> str:
        return self.config.endpoint_url or f"AWS S3 ({self.config.region})"

    async def _read(
        self, bucket: str, key: str, start: int, end: int | None
    ) -> AsyncIterator[bytes]:
        """Bytes `[start, end)` of the logical object (to its end when `end` is None): a plain
        object's in one GetObject, a composite's from its segments. The GetObject's metadata
        tells which, so a plain object costs no extra request."""
        real_bucket, real_key = self._locate(bucket, key)
        name = object_name(real_bucket, real_key)
        if end is not None and start == end:  # no bytes to read, but the object must exist
            if end > await self.size(bucket, key):
                raise ValueError(f"byte range [{start}, {end}) exceeds the size of {name}")
            return
        try:
            response = await self._reader.open(real_bucket, real_key, start, end)
        except ValueError:  # past the end of what is stored: maybe only of a small manifest
            manifest = await self._manifest_of(bucket, key)
            if manifest is None:
                raise
        else:
            if not is_composite(response):
                async for chunk in self._reader.body(response, name, start, end):
                    yield chunk
                return
            if start != 0 or end is not None:  # the answer holds only part of the manifest
                response["Body"].close()
                response = None
            manifest = await self._load_manifest(real_bucket, real_key, response)
        if end is None:
            end = manifest.size
        elif end > manifest.size:
            raise ValueError(f"byte range [{start}, {end}) exceeds the size of {name}")
        for piece in manifest.covering(start, end):
            segment_bucket, segment_key = self._locate(bucket, piece.key)
            async for chunk in self._reader.stream(
                segment_bucket, segment_key, piece.start, piece.end
            ):
                yield chunk

    async def _manifest_of(self, bucket: str, key: str) -> Manifest | None:
        """The logical object's manifest; None when it is a plain object. Raises
        `ObjectNotFound` when there is no object."""
        real_bucket, real_key = self._locate(bucket, key)
        head = await self._reader.head(real_bucket, real_key)
        if head is None:
            raise ObjectNotFound(f"{bucket}/{key}")
        if not is_composite(head):
            return None
        return await self._load_manifest(real_bucket, real_key)

    async def _load_manifest(
        self, real_bucket: str, real_key: str, response: Any = None
    ) -> Manifest:
        """The manifest at the real key, read from `response` (its whole GetObject answer)
        when there is one."""
        name = object_name(real_bucket, real_key)
        if response is None:
            response = await self._reader.open(real_bucket, real_key, 0, None)
        return decode(await self._reader.small_body(response, name, MAX_MANIFEST_BYTES), name)

    async def _missing_buckets(self) -> list[tuple[str, str]]:
        missing = []
        for logical, real in self.config.buckets.items():
            try:
                await self._send("HeadBucket", {"Bucket": real})
            except ClientError as error:
                if error_code(error) not in BUCKET_NOT_FOUND:
                    raise storage_error(error, "HeadBucket", f"s3://{real}") from error
                missing.append((logical, real))
            except REQUEST_ERRORS as error:
                raise storage_error(error, "HeadBucket", f"s3://{real}") from error
        return missing


def _source_bucket(bucket: str, part: CopyRange) -> str:
    """The logical bucket a range is copied from: its own, else the one written to."""
    return bucket if part.bucket is None else part.bucket


def _check_range(start: int, end: int) -> None:
    if not (isinstance(start, int) and isinstance(end, int)):
        raise TypeError("byte range bounds must be integers")
    if not 0 <= start <= end:
        raise ValueError(f"invalid byte range [{start}, {end})")


def _check_link_request(filename: str, content_type: str, ttl_seconds: int) -> None:
    if not filename:
        raise ValueError("a download needs a file name")
    if not content_type or not content_type.isprintable() or not content_type.isascii():
        raise ValueError(f"invalid content type {content_type!r}")
    if not 0 < ttl_seconds <= MAX_PRESIGN_SECONDS:
        raise ValueError(f"ttl_seconds must be between 1 and {MAX_PRESIGN_SECONDS}")
