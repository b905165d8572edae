"""Storage that counts its failures by reason (`training_files_storage_errors_total`): every
backend, every caller (requests, health probes, clean-up), one place."""

from __future__ import annotations

from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import contextmanager
from typing import TypeVar

from ..storage.base import (
    DownloadLink,
    InvalidKey,
    ObjectNotFound,
    Part,
    PendingWrite,
    Storage,
    StorageError,
    StoredObject,
)
from .metrics import STORAGE_ERRORS

T = TypeVar("T")


def reason_of(error: StorageError) -> str:
    if isinstance(error, ObjectNotFound):
        return "not_found"
    if isinstance(error, InvalidKey):
        return "invalid_key"
    return error.reason or "other"


@contextmanager
def _counted(operation: str) -> Iterator[None]:
    try:
        yield
    except StorageError as error:
        STORAGE_ERRORS.labels(operation, reason_of(error)).inc()
        raise


async def _counted_stream(operation: str, stream: AsyncIterator[T]) -> AsyncIterator[T]:
    try:
        with _counted(operation):
            async for item in stream:
                yield item
    finally:
        # A reader that stops early (a download cut off) closes this stream; close the
        # backend's now too, rather than whenever it is garbage collected.
        if isinstance(stream, AsyncGenerator):
            await stream.aclose()


class CountedStorage:
    """`inner`, unchanged, with its `StorageError`s counted."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.url = inner.url
        self.copies_small_ranges = inner.copies_small_ranges

    async def put(self, bucket: str, key: str, chunks: AsyncIterable[bytes]) -> int:
        with _counted("put"):
            return await self.inner.put(bucket, key, chunks)

    def get(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        return _counted_stream("get", self.inner.get(bucket, key))

    def get_range(self, bucket: str, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        return _counted_stream("get_range", self.inner.get_range(bucket, key, start, end))

    async def compose(self, bucket: str, key: str, parts: Sequence[Part]) -> int:
        with _counted("compose"):
            return await self.inner.compose(bucket, key, parts)

    async def compose_many(
        self, bucket: str, objects: Mapping[str, Sequence[Part]]
    ) -> dict[str, int]:
        with _counted("compose"):
            return await self.inner.compose_many(bucket, objects)

    async def delete(self, bucket: str, key: str) -> None:
        with _counted("delete"):
            await self.inner.delete(bucket, key)

    async def exists(self, bucket: str, key: str) -> bool:
        with _counted("exists"):
            return await self.inner.exists(bucket, key)

    async def list_keys(self, bucket: str) -> list[str]:
        with _counted("list_keys"):
            return await self.inner.list_keys(bucket)

    async def size(self, bucket: str, key: str) -> int:
        with _counted("size"):
            return await self.inner.size(bucket, key)

    async def discard(self, bucket: str, key: str) -> None:
        with _counted("discard"):
            await self.inner.discard(bucket, key)

    async def segments_of(self, bucket: str, key: str) -> frozenset[str]:
        with _counted("segments_of"):
            return await self.inner.segments_of(bucket, key)

    def list_objects(self, bucket: str) -> AsyncIterator[StoredObject]:
        return _counted_stream("list_objects", self.inner.list_objects(bucket))

    def list_pending_writes(self, bucket: str) -> AsyncIterator[PendingWrite]:
        return _counted_stream("list_pending_writes", self.inner.list_pending_writes(bucket))

    async def abort_pending_write(self, pending: PendingWrite) -> None:
        with _counted("abort_pending_write"):
            await self.inner.abort_pending_write(pending)

    async def check(self) -> None:
        with _counted("check"):
            await self.inner.check()

    async def probe(self, min_free_bytes: int) -> None:
        with _counted("probe"):
            await self.inner.probe(min_free_bytes)

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
        with _counted("download_link"):
            return await self.inner.download_link(
                bucket,
                key,
                filename=filename,
                content_type=content_type,
                ttl_seconds=ttl_seconds,
                base_url=base_url,
            )

    async def close(self) -> None:
        await self.inner.close()
