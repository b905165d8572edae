"""Writing one S3 object from `compose`'s parts: plain, or composite when that saves a copy.

Every copied range is first *resolved* to ranges of plain objects: a range of a composite
(s3_manifest.py) becomes the pieces of the segments that hold it. Then:

- with composites switched off, or without a resolved range of at least `SHARE_MIN` bytes (a
  create sends all of its bytes), the object is written plain: one upload, its ranges copied
  inside the store where they are big enough (s3_copy.py);
- otherwise it is a composite: each resolved range of at least `SHARE_MIN` bytes that lies in
  a segment is named by the new manifest, neither copied nor read, and each run of the other
  parts is uploaded as a new segment. An add to a large file so uploads its new bytes, a
  header segment and a manifest, however large the file is already (the first add to a plain
  file copies its old body into a segment inside the store, once);
- a composite that would have more than `max_segments` pieces is compacted instead: written
  as one new segment, its ranges copied inside the store. The occasional add pays that copy,
  the next ones name the new segment, and a download stays a bounded number of ranged reads.

The object appears when its manifest's PutObject succeeds. Segments uploaded by a compose that
fails before that are deleted (to the end even if the caller is cancelled, like an aborted
upload's parts); a process that dies leaves them to the clean-up, which removes segments no
referenced manifest names.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass

from .base import CopyRange, ObjectNotFound, Part, StorageError
from .s3_client import S3Stats, Send, as_bytes, call
from .s3_copy import RangeCopier
from .s3_errors import object_name
from .s3_manifest import Manifest, Segment, encode, metadata, segment_key
from .s3_upload import Upload, Uploads

# A range shorter than this is copied rather than named: below it a piece saves less than it
# costs (a manifest entry, one more ranged GET for every download).
SHARE_MIN = 1024 * 1024
# The most pieces a composite has before it is compacted into one.
MAX_SEGMENTS = 256

# The real bucket and key of a logical one, after the key rules.
Locate = Callable[[str, str], tuple[str, str]]
# A logical object's manifest, None for a plain object; `ObjectNotFound` when there is none.
ManifestOf = Callable[[str, str], Awaitable[Manifest | None]]
# Deletes a logical object (a missing one is not an error).
Delete = Callable[[str, str], Awaitable[None]]


@dataclass(frozen=True)
class Extent:
    """Bytes `[start, end)` of the plain object `key` in the logical `bucket`; `shared` when it
    is a segment, which any number of manifests may name."""

    bucket: str
    key: str
    start: int
    end: int
    shared: bool

    @property
    def length(self) -> int:
        return self.end - self.start


Resolved = bytes | AsyncIterable[bytes] | Extent


class Composer:
    """Writes composed objects to one store; see the module docstring."""

    def __init__(
        self,
        *,
        send: Send,
        stats: S3Stats,
        uploads: Uploads,
        copier: RangeCopier,
        locate: Locate,
        manifest_of: ManifestOf,
        delete: Delete,
        composites: bool,
        max_segments: int = MAX_SEGMENTS,
    ) -> None:
        self._send = send
        self._stats = stats
        self._uploads = uploads
        self._copier = copier
        self._locate = locate
        self._manifest_of = manifest_of
        self._delete = delete
        self._composites = composites
        self._max_segments = max_segments

    async def compose(self, bucket: str, key: str, parts: Sequence[Part]) -> int:
        """Store the concatenation of the (already checked) `parts` under `key`."""
        plan = await self._resolve(bucket, parts)
        worth_a_composite = any(
            isinstance(item, Extent) and item.length >= SHARE_MIN for item in plan
        )
        if not (self._composites and worth_a_composite):
            return await self._plain(bucket, key, plan)
        return await self._composite(bucket, key, plan, share=_pieces(plan) <= self._max_segments)

    async def _resolve(self, bucket: str, parts: Sequence[Part]) -> list[Resolved]:
        manifests: dict[tuple[str, str], Manifest | None] = {}
        plan: list[Resolved] = []
        for part in parts:
            if isinstance(part, (bytes, bytearray, memoryview)):
                if part:
                    plan.append(as_bytes(part))
                continue
            if not isinstance(part, CopyRange):
                plan.append(part)
                continue
            source = bucket if part.bucket is None else part.bucket
            if (source, part.key) not in manifests:
                manifests[source, part.key] = await self._manifest_of(source, part.key)
            manifest = manifests[source, part.key]
            if manifest is None:
                plan.append(Extent(source, part.key, part.start, part.end, shared=False))
                continue
            if part.end > manifest.size:
                raise ValueError(
                    f"byte range [{part.start}, {part.end}) exceeds the size of {source}/{part.key}"
                )
            plan.extend(
                Extent(source, piece.key, piece.start, piece.end, shared=True)
                for piece in manifest.covering(part.start, part.end)
            )
        return plan

    async def _plain(self, bucket: str, key: str, plan: Sequence[Resolved]) -> int:
        upload = self._uploads.start(*self._locate(bucket, key))
        try:
            for item in plan:
                await self._append(upload, item)
            return await upload.finish()
        except BaseException:
            await upload.abort()
            raise

    async def _composite(
        self, bucket: str, key: str, plan: Sequence[Resolved], *, share: bool
    ) -> int:
        """Named ranges (with `share`) and runs of the rest, uploaded as segments; without
        `share` one run, so one segment: the compaction."""
        pieces: list[Segment] = []
        uploaded: list[str] = []  # the segments this compose writes, deleted if it fails
        run: Upload | None = None
        sending_manifest = False
        try:
            for item in plan:
                if share and _named(item):
                    assert isinstance(item, Extent)
                    if run is not None:
                        pieces.append(await _finished(run, uploaded[-1]))
                        run = None
                    pieces.append(Segment(item.key, item.start, item.end))
                    continue
                if run is None:
                    uploaded.append(segment_key(key))
                    run = self._uploads.start(*self._locate(bucket, uploaded[-1]))
                await self._append(run, item)
            if run is not None:
                pieces.append(await _finished(run, uploaded[-1]))
                run = None
            manifest = Manifest(_merged(pieces))
            sending_manifest = True
            await self._put_manifest(bucket, key, manifest)
        except BaseException:
            if run is not None:
                await run.abort()
            abandon = self._abandon(bucket, key, uploaded, sending_manifest)
            await self._uploads.background.shielded(abandon)
            raise
        # A run that turned out empty (an empty stream) is an object no manifest names.
        await self._delete_all(bucket, [p.key for p in pieces if not p.length])
        return manifest.size

    async def _append(self, upload: Upload, item: Resolved) -> None:
        if isinstance(item, Extent):
            real_bucket, real_key = self._locate(item.bucket, item.key)
            name = f"{item.bucket}/{item.key}"
            await self._copier.append(
                upload, real_bucket, real_key, item.start, item.end, name=name
            )
        elif isinstance(item, bytes):
            await upload.write(item)
        else:
            async for chunk in item:
                await upload.write(as_bytes(chunk))

    async def _put_manifest(self, bucket: str, key: str, manifest: Manifest) -> None:
        real_bucket, real_key = self._locate(bucket, key)
        body = encode(manifest)
        await call(
            self._send,
            "PutObject",
            object_name(real_bucket, real_key),
            Bucket=real_bucket,
            Key=real_key,
            Body=body,
            Metadata=metadata(manifest),
        )
        self._stats.uploaded_bytes += len(body)

    async def _abandon(
        self, bucket: str, key: str, uploaded: Sequence[str], sent_manifest: bool
    ) -> None:
        """Delete the segments of a compose that failed, unless its manifest, whose answer
        was lost, was stored all the same (then they stay for whoever discards it)."""
        if sent_manifest:
            try:
                stored = await self._manifest_of(bucket, key)
            except ObjectNotFound:
                stored = None
            except StorageError:  # cannot tell: the clean-up decides once nothing references it
                return
            if stored is not None and {s.key for s in stored.segments} & set(uploaded):
                return
        await self._delete_all(bucket, uploaded)

    async def _delete_all(self, bucket: str, keys: Sequence[str]) -> None:
        for key in keys:
            with contextlib.suppress(StorageError):  # the clean-up removes what is left
                await self._delete(bucket, key)


def _named(item: Resolved) -> bool:
    """Whether the manifest names `item` instead of copying it."""
    return isinstance(item, Extent) and item.shared and item.length >= SHARE_MIN


def _pieces(plan: Sequence[Resolved]) -> int:
    """How many pieces a composite of `plan` has: named ranges and runs of the rest."""
    count, in_run = 0, False
    for item in plan:
        named = _named(item)
        count += named or not in_run
        in_run = not named
    return count


async def _finished(run: Upload, key: str) -> Segment:
    size = await run.finish()
    return Segment(key, 0, size)


def _merged(pieces: Sequence[Segment]) -> tuple[Segment, ...]:
    """`pieces` without empty ones, and with ranges that continue each other joined."""
    merged: list[Segment] = []
    for piece in pieces:
        if not piece.length:
            continue
        last = merged[-1] if merged else None
        if last is not None and last.key == piece.key and last.end == piece.start:
            merged[-1] = Segment(last.key, last.start, piece.end)
        else:
            merged.append(piece)
    return tuple(merged)
