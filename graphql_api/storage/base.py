"""The storage interface every backend implements, and the key rules they share."""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

CONVERSATION_BUCKET = "conversation-files"
TRAINING_BUCKET = "training-files"
BUCKETS = (CONVERSATION_BUCKET, TRAINING_BUCKET)

CHUNK_SIZE = 1024 * 1024

_SEGMENT = re.compile(r"^[A-Za-z0-9._=+@-]+$")

# Health probes write and remove tiny objects under this first segment of every bucket; no key
# the product stores starts with a dot, so a probe never touches data and the consistency
# checker knows what a leftover probe object is.
PROBE_PREFIX = ".healthz/"


# Why storage failed, when it is something an operator can act on.
StorageFailure = Literal["full", "unwritable", "unreachable"]


class StorageError(Exception):
    """A storage operation failed; `reason` says why when that is known."""

    def __init__(self, message: str, *, reason: StorageFailure | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class InvalidKey(StorageError, ValueError):
    """A key or bucket name that could escape its bucket, or is otherwise not allowed."""


class ObjectNotFound(StorageError, LookupError):
    """No object is stored under that key."""


def validate_bucket(bucket: str) -> str:
    if bucket not in BUCKETS:
        raise InvalidKey(f"unknown bucket {bucket!r}")
    return bucket


def validate_key(key: str) -> str:
    """Return `key` when every `/`-separated segment is a plain name, else raise `InvalidKey`.

    Rejects empty keys and segments, absolute paths, `.` and `..`, backslashes, NUL and other
    control characters: a key can never name something outside its bucket on any backend.
    """
    if not isinstance(key, str) or not key or len(key) > 1024:
        raise InvalidKey("storage key must be a non-empty string of at most 1024 characters")
    for segment in key.split("/"):
        if segment in ("", ".", "..") or not _SEGMENT.match(segment):
            raise InvalidKey(f"storage key {key!r} is not allowed")
    return key


@dataclass(frozen=True)
class CopyRange:
    """Bytes `[start, end)` of an existing object: in `bucket`, else in the bucket being
    written to."""

    key: str
    start: int
    end: int
    bucket: str | None = None


@dataclass(frozen=True)
class StoredObject:
    """One object as a bucket listing sees it.

    `key` is as stored: something other than this product may have put an object there whose
    key breaks `validate_key`.
    """

    bucket: str
    key: str
    size: int
    modified_at: datetime


@dataclass(frozen=True)
class PendingWrite:
    """A write that started and neither finished nor was cleaned up: a local temp file, an S3
    multipart upload. A crashed writer leaves one behind until it is aborted (on S3 its parts
    are billed meanwhile)."""

    bucket: str
    key: str  # the key the write would have created
    upload_id: str  # the backend's handle: the temp file's path in the bucket, or the UploadId
    started_at: datetime  # local: when it was last written to
    size: int | None = None  # bytes stored so far, when the backend knows without asking more


@dataclass(frozen=True)
class DownloadLink:
    """A URL that downloads one object as `filename` until `expires_at`, without credentials."""

    url: str
    filename: str
    expires_in_seconds: int
    expires_at: datetime


# What `compose` concatenates: literal bytes, a range of an existing object, or a stream.
Part = bytes | CopyRange | AsyncIterable[bytes]


class Storage(Protocol):
    """Object storage with two buckets. Keys are validated by `validate_key`.

    Ranges are half-open byte ranges: `start` inclusive, `end` exclusive.
    """

    url: str
    # Whether `compose` copies a small `CopyRange` without its bytes passing through this
    # process (local storage: copy_file_range). Where it does not (S3: ranges under a part's
    # minimum are read and uploaded again), a build reads each conversation's pieces object
    # once and composes bytes, rather than one ranged read per object it writes.
    copies_small_ranges: bool

    async def put(self, bucket: str, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Store the streamed bytes atomically under `key`; return the size written."""
        ...

    def get(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        """Stream the object's bytes. Raises `ObjectNotFound` on first iteration."""
        ...

    def get_range(self, bucket: str, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Stream bytes `[start, end)` of the object."""
        ...

    async def compose(self, bucket: str, key: str, parts: Sequence[Part]) -> int:
        """Store the concatenation of `parts` atomically under `key`; return its size.

        A backend may copy `CopyRange` parts without downloading them (S3 `UploadPartCopy`).
        """
        ...

    async def compose_many(
        self, bucket: str, objects: Mapping[str, Sequence[Part]]
    ) -> dict[str, int]:
        """`compose` each object (key: parts); return their sizes by key.

        A backend may do them in one pass: copy a source that several of them take ranges of
        (a conversation's pieces, one range per format) from one opening of it, and make them
        durable together. When it raises, any of them may be stored: the caller discards all.
        """
        ...

    async def delete(self, bucket: str, key: str) -> None:
        """Remove the object; removing a missing object is not an error."""
        ...

    async def discard(self, bucket: str, key: str) -> None:
        """Remove an object that nothing references or ever did (a write whose commit failed)
        together with what was stored only for it (an S3 composite's new segments); removing
        a missing object is not an error."""
        ...

    async def exists(self, bucket: str, key: str) -> bool: ...

    async def list_keys(self, bucket: str) -> list[str]:
        """Every key in the bucket, sorted (for operators and tests; not on any hot path)."""
        ...

    async def size(self, bucket: str, key: str) -> int:
        """The object's size in bytes. Raises `ObjectNotFound`."""
        ...

    async def segments_of(self, bucket: str, key: str) -> frozenset[str]:
        """The keys of the listed objects that hold this object's bytes and that other objects
        may share (S3 composites' segments); empty for a plain or missing object, and on a
        backend whose segments are not objects (local storage's live and die with theirs).

        Deleting an object never deletes these: the clean-up removes the ones that no object
        the database references still names (maintenance/orphans.py)."""
        ...

    def list_objects(self, bucket: str) -> AsyncIterator[StoredObject]:
        """Every object in the bucket with its size, in no promised order; pending writes are
        not objects. Streams: a bucket of millions of objects is never held in memory."""
        ...

    def list_pending_writes(self, bucket: str) -> AsyncIterator[PendingWrite]:
        """Every write in the bucket that started and has not finished or been aborted."""
        ...

    async def abort_pending_write(self, pending: PendingWrite) -> None:
        """Discard what `pending` stored so far; one that is gone already is not an error."""
        ...

    async def check(self) -> None:
        """Raise `StorageError` unless every bucket is reachable (at start-up)."""
        ...

    async def probe(self, min_free_bytes: int) -> None:
        """Raise `StorageError` with its `reason` unless every bucket is reachable, really
        takes a write (written, synced, removed) and, where the backend can tell, has at
        least `min_free_bytes` free. Used by /healthz, so it must stay cheap."""
        ...

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
        """A URL that downloads the object as `filename` with `content_type` for
        `ttl_seconds`, without credentials: presigned by the store, or signed for this app's
        own download route under `base_url` (the app's address as the client reaches it) when
        the app serves the backend's objects itself. No request is sent; the object is not
        checked to exist."""
        ...

    async def close(self) -> None: ...


async def stream_parts(
    storage: Storage, bucket: str, parts: Sequence[Part]
) -> AsyncIterator[bytes]:
    """The bytes of `parts` in order, copied ranges read back through `storage`."""
    for part in parts:
        if isinstance(part, bytes):
            if part:
                yield part
        elif isinstance(part, CopyRange):
            source = part.bucket or bucket
            async for chunk in storage.get_range(source, part.key, part.start, part.end):
                yield chunk
        else:
            async for chunk in part:
                yield chunk


async def read_all(storage: Storage, bucket: str, key: str) -> bytes:
    """The whole object in memory: only for objects known to be small (one conversation)."""
    return b"".join([chunk async for chunk in storage.get(bucket, key)])


async def iter_bytes(data: bytes) -> AsyncIterator[bytes]:
    """An async iterator over `data`, for `put` callers that already hold the bytes."""
    for start in range(0, len(data), CHUNK_SIZE):
        yield data[start : start + CHUNK_SIZE]
