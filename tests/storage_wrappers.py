"""Real storage with instrumentation and fault injection, for failure and crash tests.

- `InstrumentedStorage` counts object reads and can break writes after N bytes.
- `FaultyStorage` wraps any backend and fails the Nth call of a storage operation
  (`put`, `compose`, `delete`, `get`, ...).
- `FaultyS3Storage` is the real S3 backend whose Nth request of an S3 operation (`UploadPart`,
  `CompleteMultipartUpload`, `UploadPartCopy`, `PutObject`, `DeleteObject`, ...) fails the way a
  dropped connection does.
- `RecordingS3Storage` is the real S3 backend counting the requests it sends, by operation and key.

A fault can fire before the call (nothing happened) or after it (the call took effect, then the
caller saw a failure: a lost response), and can be a crash: every later call fails too, as if
the process had died there, so none of the caller's clean-up reaches the store.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import EndpointConnectionError

from graphql_api.storage.base import CopyRange, Part, PendingWrite, Storage, StoredObject
from graphql_api.storage.s3 import S3Storage
from graphql_api.storage.tasks import gather

T = TypeVar("T")


class InjectedFailure(Exception):
    pass


@dataclass
class _Fault:
    operation: str
    call: int  # the value of the operation's call counter at which it fires
    error: BaseException
    after: bool
    crash: bool


class Faults:
    """Planned failures, by operation name and call number (counted from when planned)."""

    def __init__(self, default_error: Callable[[str], BaseException] | None = None) -> None:
        self.calls: Counter[str] = Counter()
        self.crashed = False
        self.fired: list[str] = []  # the operations whose planned fault fired, in order
        self._planned: list[_Fault] = []
        self._default_error = default_error or (
            lambda operation: InjectedFailure(f"injected failure of {operation}")
        )

    def fail(
        self,
        operation: str,
        nth: int = 1,
        *,
        error: BaseException | None = None,
        after: bool = False,
        crash: bool = False,
    ) -> None:
        """Fail the `nth` next call of `operation`: before it runs, or `after` it took effect;
        with `crash`, every call of every operation from then on fails too."""
        error = error if error is not None else self._default_error(operation)
        self._planned.append(_Fault(operation, self.calls[operation] + nth, error, after, crash))

    async def around(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run `call` as call number N of `operation`, failing where planned."""
        fault = self.begin(operation)
        result = await call()
        if fault is not None:
            self.fire(fault)
        return result

    def begin(self, operation: str) -> _Fault | None:
        """Count a call; raise now if a fault is due before it, return one due after it."""
        if self.crashed:
            raise self._default_error(f"{operation} (after the injected crash)")
        self.calls[operation] += 1
        fault = next(
            (
                f
                for f in self._planned
                if (f.operation, f.call) == (operation, self.calls[operation])
            ),
            None,
        )
        if fault is None:
            return None
        self._planned.remove(fault)
        if fault.after:
            return fault
        self.fire(fault)
        return None

    def fire(self, fault: _Fault) -> None:
        self.fired.append(fault.operation)
        self.crashed = self.crashed or fault.crash
        raise fault.error

    def reset(self) -> None:
        """Forget planned faults that did not fire, and come back from a crash."""
        self._planned.clear()
        self.crashed = False


class FaultyStorage:
    """Delegates to a real backend; `faults.fail("compose", 2)` breaks the second compose.

    Streams (`get`, `get_range`, listings) count and fail when their first item is read."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.url = inner.url
        self.faults = Faults()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def put(self, bucket: str, key: str, chunks: AsyncIterable[bytes]) -> int:
        return await self.faults.around("put", lambda: self.inner.put(bucket, key, chunks))

    async def compose(self, bucket: str, key: str, parts: Sequence[Part]) -> int:
        return await self.faults.around("compose", lambda: self.inner.compose(bucket, key, parts))

    async def compose_many(
        self, bucket: str, objects: Mapping[str, Sequence[Part]]
    ) -> dict[str, int]:
        """One faulty `compose` per object, so a fault can hit any one of them."""
        return await compose_each(self.compose, bucket, objects)

    async def delete(self, bucket: str, key: str) -> None:
        await self.faults.around("delete", lambda: self.inner.delete(bucket, key))

    async def discard(self, bucket: str, key: str) -> None:
        await self.faults.around("delete", lambda: self.inner.discard(bucket, key))

    async def exists(self, bucket: str, key: str) -> bool:
        return await self.faults.around("exists", lambda: self.inner.exists(bucket, key))

    async def size(self, bucket: str, key: str) -> int:
        return await self.faults.around("size", lambda: self.inner.size(bucket, key))

    async def abort_pending_write(self, pending: PendingWrite) -> None:
        await self.faults.around(
            "abort_pending_write", lambda: self.inner.abort_pending_write(pending)
        )

    async def probe(self, min_free_bytes: int) -> None:
        await self.faults.around("probe", lambda: self.inner.probe(min_free_bytes))

    def get(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        return self._stream("get", lambda: self.inner.get(bucket, key))

    def get_range(self, bucket: str, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        return self._stream("get_range", lambda: self.inner.get_range(bucket, key, start, end))

    def list_objects(self, bucket: str) -> AsyncIterator[StoredObject]:
        return self._stream("list_objects", lambda: self.inner.list_objects(bucket))

    def list_pending_writes(self, bucket: str) -> AsyncIterator[PendingWrite]:
        return self._stream("list_pending_writes", lambda: self.inner.list_pending_writes(bucket))

    async def _stream(
        self, operation: str, open_stream: Callable[[], AsyncIterator[T]]
    ) -> AsyncIterator[T]:
        fault = self.faults.begin(operation)
        async for item in open_stream():
            yield item
        if fault is not None:
            self.faults.fire(fault)


class FaultyS3Storage(S3Storage):
    """The real S3 backend; `faults.fail("UploadPart", 2)` breaks its second UploadPart request.

    Open it like the backend: `await FaultyS3Storage.open(config)`. The default error is the one
    botocore raises when the store cannot be reached."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.faults = Faults(
            lambda operation: EndpointConnectionError(endpoint_url=f"(injected: {operation})")
        )

    async def _send(self, operation: str, params: dict[str, Any]) -> Any:
        send = super()._send
        return await self.faults.around(operation, lambda: send(operation, params))


class RecordingS3Storage(S3Storage):
    """The real S3 backend; `sent[("GetObject", bucket, key)]` is how many such requests it sent
    (real bucket names and keys)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: Counter[tuple[str, str, str]] = Counter()

    async def _send(self, operation: str, params: dict[str, Any]) -> Any:
        self.sent[(operation, params.get("Bucket", ""), params.get("Key", ""))] += 1
        return await super()._send(operation, params)


class InstrumentedStorage:
    """Delegates to a real backend; records object reads (whole and ranged) and the objects
    composes copy from, and can break the next writes."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.url = inner.url
        self.reads: Counter[tuple[str, str]] = Counter()
        self.ranged_reads: Counter[tuple[str, str]] = Counter()
        self.copied_from: Counter[tuple[str, str]] = Counter()
        self.fail_writes_after: int | None = None  # bytes written before the failure

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        self.reads[(bucket, key)] += 1
        return self.inner.get(bucket, key)

    def get_range(self, bucket: str, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        self.ranged_reads[(bucket, key)] += 1
        return self.inner.get_range(bucket, key, start, end)

    async def put(self, bucket: str, key: str, chunks: AsyncIterable[bytes]) -> int:
        return await self.inner.put(bucket, key, _WriteBudget(self.fail_writes_after).wrap(chunks))

    async def compose_many(
        self, bucket: str, objects: Mapping[str, Sequence[Part]]
    ) -> dict[str, int]:
        return await compose_each(self.compose, bucket, objects)

    async def compose(self, bucket: str, key: str, parts: Sequence[Part]) -> int:
        for part in parts:
            if isinstance(part, CopyRange):
                self.copied_from[(part.bucket or bucket, part.key)] += 1
        if self.fail_writes_after is None:
            return await self.inner.compose(bucket, key, parts)
        # Through the real compose, so copied ranges are still copied (inside the store on S3):
        # only the bytes this process sends are cut off.
        budget = _WriteBudget(self.fail_writes_after)
        return await self.inner.compose(bucket, key, [budget.wrap_part(p) for p in parts])


async def compose_each(
    compose: Callable[[str, str, Sequence[Part]], Awaitable[int]],
    bucket: str,
    objects: Mapping[str, Sequence[Part]],
) -> dict[str, int]:
    """`compose_many` as one `compose` per object, concurrently, as the backends' own do
    (the first failure raised as itself)."""
    sizes = await gather(*(compose(bucket, key, parts) for key, parts in objects.items()))
    return dict(zip(objects, sizes, strict=True))


class _WriteBudget:
    """Bytes a write may produce before it fails. Compose consumes its parts in order, so the
    bytes of a copied range count once the part after it starts being read."""

    def __init__(self, limit: int | None) -> None:
        self._limit = limit
        self._written = 0
        self._copied_since_last_stream = 0

    def wrap_part(self, part: Part) -> Part:
        if isinstance(part, CopyRange):
            self._copied_since_last_stream += part.end - part.start
            return part
        copied, self._copied_since_last_stream = self._copied_since_last_stream, 0
        return self.wrap(_as_stream(part) if isinstance(part, bytes) else part, copied)

    async def wrap(
        self, chunks: AsyncIterable[bytes], copied_before: int = 0
    ) -> AsyncIterator[bytes]:
        # Parts already started (copies in flight) go on while a stream's first bytes are being
        # produced, as they do when the stream waits for the renderer.
        await asyncio.sleep(0)
        self._written += copied_before
        if self._limit is not None and self._written > self._limit:
            raise InjectedFailure("storage failed mid-write")
        async for chunk in chunks:
            if self._limit is not None and self._written + len(chunk) > self._limit:
                yield chunk[: max(self._limit - self._written, 0)]
                raise InjectedFailure("storage failed mid-write")
            self._written += len(chunk)
            yield chunk


async def _as_stream(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data
