"""Real backends with a fault injected: the failure happens where production's would."""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping, Sequence
from typing import Any

from graphql_api.storage.base import Part, Storage, StorageError


class FullStorage:
    """Delegates to a real backend, except that every write fails as a full disk makes it."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.url = inner.url

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def put(self, bucket: str, key: str, chunks: AsyncIterable[bytes]) -> int:
        raise StorageError("no space left on device", reason="full")

    async def compose(self, bucket: str, key: str, parts: Sequence[Part]) -> int:
        raise StorageError("no space left on device", reason="full")

    async def compose_many(
        self, bucket: str, objects: Mapping[str, Sequence[Part]]
    ) -> dict[str, int]:
        raise StorageError("no space left on device", reason="full")
