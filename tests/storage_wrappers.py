"""Real storage with instrumentation: counts reads, or fails a write part-way through."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import Any

from graphql_api.storage.base import Part, Storage, stream_parts


class InjectedFailure(Exception):
    pass


class InstrumentedStorage:
    """Delegates to a real backend; records object reads and can break the next writes."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.url = inner.url
        self.reads: Counter[tuple[str, str]] = Counter()
        self.fail_writes_after: int | None = None  # bytes written before the failure

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        self.reads[(bucket, key)] += 1
        return self.inner.get(bucket, key)

    async def put(self, bucket: str, key: str, chunks: AsyncIterable[bytes]) -> int:
        return await self.inner.put(bucket, key, self._maybe_failing(chunks))

    async def compose(self, bucket: str, key: str, parts: Sequence[Part]) -> int:
        if self.fail_writes_after is None:
            return await self.inner.compose(bucket, key, parts)
        return await self.inner.put(
            bucket, key, self._maybe_failing(stream_parts(self.inner, bucket, parts))
        )

    async def _maybe_failing(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        written = 0
        async for chunk in chunks:
            if self.fail_writes_after is not None and written + len(chunk) > self.fail_writes_after:
                yield chunk[: max(self.fail_writes_after - written, 0)]
                raise InjectedFailure("storage failed mid-write")
            written += len(chunk)
            yield chunk
