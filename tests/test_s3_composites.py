"""S3 composites on moto: an add names the old body's segments instead of copying it, reads
resolve composites, big chains are written plain again, a failed compose leaves nothing, and
the clean-up removes the segments no referenced object names, and only those.

The raw store is looked at with boto3 directly (its own client), so what the tests expect of
the bytes and the manifests is not read back through the code under test.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from graphql_api.aggregation.service import TrainingFileService
from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.maintenance.cleanup import clean_up
from graphql_api.maintenance.consistency import check_store
from graphql_api.maintenance.report import State
from graphql_api.runtime import Pools
from graphql_api.storage.base import (
    TRAINING_BUCKET,
    CopyRange,
    StorageError,
    iter_bytes,
    read_all,
)
from graphql_api.storage.links import LinkSigner
from graphql_api.storage.s3 import S3Storage

from .conftest import training_file_service
from .s3_servers import MotoServer
from .storage_wrappers import FaultyS3Storage

MiB = 1024 * 1024
OWNER = UUID("00000000-0000-4000-8000-0000000000c5")
FILE = "0b6f7a52-3c1d-4e8f-9a0b-1c2d3e4f5a6b"


def _random(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture
def raw(moto: MotoServer) -> Iterator[Any]:
    """A boto3 client of the test's own on the same moto."""
    client = moto.raw_client()
    yield client
    client.close()


@pytest.fixture
async def s3(moto: MotoServer) -> AsyncIterator[FaultyS3Storage]:
    storage = await FaultyS3Storage.open(moto.config(), link_signer=LinkSigner("secret"))
    yield storage
    await storage.close()


def _manifest(raw: Any, key: str) -> dict[str, Any] | None:
    """The manifest stored at `key` as JSON, or None for a plain object."""
    answer = raw.get_object(Bucket=TRAINING_BUCKET, Key=key)
    body = answer["Body"].read()
    if answer["Metadata"].get("tf-composite") != "v1":
        return None
    assert body.startswith(b"\0tf-s3-composite v1\n")
    manifest: dict[str, Any] = json.loads(body.split(b"\n", 1)[1])
    assert answer["Metadata"]["tf-size"] == str(manifest["size"])
    return manifest


def _keys(raw: Any) -> set[str]:
    listed = raw.list_objects_v2(Bucket=TRAINING_BUCKET).get("Contents", [])
    return {item["Key"] for item in listed}


async def _chain(s3: S3Storage, old: bytes) -> tuple[bytes, bytes]:
    """v1 plain (`old`), v2 = header + v1[4:-4] + tail, v3 = header + v2[7:-4] + tail: what
    two adds do. Returns v2's and v3's expected bytes."""
    await s3.put(TRAINING_BUCKET, f"{FILE}/v1/file.json", iter_bytes(old))
    v2 = b"HEADER2" + old[4:-4] + b"TAIL" + _random(100_000, 2) + b"FOOT"
    await s3.compose(
        TRAINING_BUCKET,
        f"{FILE}/v2/file.json",
        [
            b"HEADER2",
            CopyRange(f"{FILE}/v1/file.json", 4, len(old) - 4),
            b"TAIL",
            _random(100_000, 2),
            b"FOOT",
        ],
    )
    new = _random(300_000, 3)
    v3 = b"HEADER3" + v2[7:-4] + new + b"FOOT"
    await s3.compose(
        TRAINING_BUCKET,
        f"{FILE}/v3/file.json",
        [b"HEADER3", CopyRange(f"{FILE}/v2/file.json", 7, len(v2) - 4), new, b"FOOT"],
    )
    return v2, v3


async def test_an_add_to_a_composite_names_its_segments_and_uploads_only_the_new_bytes(
    s3: FaultyS3Storage, raw: Any
) -> None:
    old = _random(12 * MiB, 1)
    await s3.put(TRAINING_BUCKET, f"{FILE}/v1/file.json", iter_bytes(old))
    v2 = b"HEADER2" + old[4:-4] + b"FOOT"
    await s3.compose(
        TRAINING_BUCKET,
        f"{FILE}/v2/file.json",
        [b"HEADER2", CopyRange(f"{FILE}/v1/file.json", 4, len(old) - 4), b"FOOT"],
    )
    # The first add to a plain file copies its old body into a segment, inside the store.
    first = _manifest(raw, f"{FILE}/v2/file.json")
    assert first is not None and len(first["segments"]) == 1
    assert s3.stats.copied_bytes > 6 * MiB

    s3.stats.uploaded_bytes = s3.stats.copied_bytes = s3.stats.downloaded_bytes = 0
    s3.faults.calls.clear()
    new = _random(200_000, 3)
    await s3.compose(
        TRAINING_BUCKET,
        f"{FILE}/v3/file.json",
        [b"HEADER3", CopyRange(f"{FILE}/v2/file.json", 7, len(v2) - 4), new, b"FOOT"],
    )
    v3 = b"HEADER3" + v2[7:-4] + new + b"FOOT"

    second = _manifest(raw, f"{FILE}/v3/file.json")
    assert second is not None
    kept = first["segments"][0][0]
    assert [s[0] for s in second["segments"]].count(kept) == 1
    assert second["size"] == len(v3)
    # Nothing of the 12 MiB body was copied, uploaded or read: only its manifest was.
    assert s3.stats.copied_bytes == 0
    assert s3.stats.uploaded_bytes < len(new) + 4096
    assert s3.stats.downloaded_bytes < 4096
    assert "UploadPartCopy" not in s3.faults.calls

    assert await s3.size(TRAINING_BUCKET, f"{FILE}/v3/file.json") == len(v3)
    assert await read_all(s3, TRAINING_BUCKET, f"{FILE}/v3/file.json") == v3
    assert await read_all(s3, TRAINING_BUCKET, f"{FILE}/v2/file.json") == v2
    assert await s3.segments_of(TRAINING_BUCKET, f"{FILE}/v3/file.json") == {
        s[0] for s in second["segments"]
    }
    assert await s3.segments_of(TRAINING_BUCKET, f"{FILE}/v1/file.json") == frozenset()


async def test_ranges_of_a_composite_cross_its_segments(s3: FaultyS3Storage) -> None:
    v2, v3 = await _chain(s3, _random(3 * MiB, 4))
    key = f"{FILE}/v3/file.json"
    boundary = 7  # where the header segment ends and the old body's begins
    for start, end in [
        (0, len(v3)),
        (0, 1),
        (boundary - 3, boundary + 3),
        (len(v3) - 300_010, len(v3) - 5),  # across the old body and the new bytes
        (len(v3) - 4, len(v3)),
        (len(v3), len(v3)),
        (123_456, 123_456),
    ]:
        got = b"".join([c async for c in s3.get_range(TRAINING_BUCKET, key, start, end)])
        assert got == v3[start:end], (start, end)
    with pytest.raises(ValueError, match="exceeds the size"):
        _ = [c async for c in s3.get_range(TRAINING_BUCKET, key, 0, len(v3) + 1)]
    with pytest.raises(ValueError, match="exceeds the size"):
        _ = [c async for c in s3.get_range(TRAINING_BUCKET, key, len(v3) + 1, len(v3) + 1)]
    assert await read_all(s3, TRAINING_BUCKET, f"{FILE}/v2/file.json") == v2


async def test_a_composite_past_its_segment_limit_is_compacted_into_one_segment(
    moto: MotoServer, raw: Any
) -> None:
    s3 = await S3Storage.open(moto.config(), max_segments=2)
    try:
        v2, v3 = await _chain(s3, _random(3 * MiB, 5))
        # v2 is one run (the old plain body copied with its neighbours); v3 would be header +
        # v2's segment + new bytes: three pieces, over the limit of two.
        second = _manifest(raw, f"{FILE}/v2/file.json")
        third = _manifest(raw, f"{FILE}/v3/file.json")
        assert second is not None and len(second["segments"]) == 1
        assert third is not None and len(third["segments"]) == 1
        assert third["segments"][0][0] != second["segments"][0][0]
        assert await read_all(s3, TRAINING_BUCKET, f"{FILE}/v3/file.json") == v3
        assert await read_all(s3, TRAINING_BUCKET, f"{FILE}/v2/file.json") == v2
        assert await s3.size(TRAINING_BUCKET, f"{FILE}/v3/file.json") == len(v3)
    finally:
        await s3.close()


async def test_with_composites_off_every_object_is_plain(moto: MotoServer, raw: Any) -> None:
    s3 = await S3Storage.open(moto.config(composite_objects=False))
    try:
        _, v3 = await _chain(s3, _random(6 * MiB, 6))
        assert not any(".segments/" in key for key in _keys(raw))
        assert _manifest(raw, f"{FILE}/v3/file.json") is None
        assert await read_all(s3, TRAINING_BUCKET, f"{FILE}/v3/file.json") == v3
    finally:
        await s3.close()


@pytest.mark.parametrize("nth", [1, 2, 3])
async def test_a_composite_that_fails_leaves_no_segment_behind(
    s3: FaultyS3Storage, raw: Any, nth: int
) -> None:
    v2, _ = await _chain(s3, _random(3 * MiB, 7))
    before = _keys(raw)
    # The add's PutObjects: its header run, its new bytes' run, then the manifest.
    s3.faults.fail("PutObject", nth)
    with pytest.raises(StorageError, match="injected: PutObject"):
        await s3.compose(
            TRAINING_BUCKET,
            f"{FILE}/v4/file.json",
            [b"HEADER4", CopyRange(f"{FILE}/v3/file.json", 7, 2 * MiB), b"NEW", b"FOOT"],
        )
    await s3._uploads.background.drain()  # the deletes of its segments run in the background
    assert _keys(raw) == before
    assert await read_all(s3, TRAINING_BUCKET, f"{FILE}/v2/file.json") == v2


async def test_a_manifest_stored_whose_answer_was_lost_keeps_its_segments(
    s3: FaultyS3Storage, raw: Any
) -> None:
    _, v3 = await _chain(s3, _random(3 * MiB, 9))
    before = _keys(raw)
    s3.faults.fail("PutObject", 3, after=True)  # the manifest is stored, the answer lost
    with pytest.raises(StorageError):
        await s3.compose(
            TRAINING_BUCKET,
            f"{FILE}/v4/file.json",
            [b"HEADER4", CopyRange(f"{FILE}/v3/file.json", 7, 2 * MiB), b"NEW", b"FOOT"],
        )
    await s3._uploads.background.drain()
    # What was stored is whole: its segments were not deleted under it.
    v4 = b"HEADER4" + v3[7 : 2 * MiB] + b"NEW" + b"FOOT"
    assert await read_all(s3, TRAINING_BUCKET, f"{FILE}/v4/file.json") == v4
    # A writer that never commits it discards it, and what was written for it.
    await s3.discard(TRAINING_BUCKET, f"{FILE}/v4/file.json")
    assert _keys(raw) == before


async def test_a_composite_downloads_through_the_apps_route(s3: FaultyS3Storage) -> None:
    await _chain(s3, _random(2 * MiB, 8))  # the app's route serving it: test_s3_app.py

    async def link_to(key: str) -> str:
        link = await s3.download_link(
            TRAINING_BUCKET,
            key,
            filename="file.json",
            content_type="application/json",
            ttl_seconds=60,
            base_url="http://127.0.0.1:8000",
        )
        return link.url

    composite = await link_to(f"{FILE}/v3/file.json")
    assert composite.startswith(f"http://127.0.0.1:8000/downloads/{TRAINING_BUCKET}/{FILE}/v3/")
    assert "X-Amz-Signature" not in composite
    plain = await link_to(f"{FILE}/v1/file.json")
    assert "X-Amz-Signature" in plain  # a plain object is still served by the store
    async with httpx.AsyncClient() as client:
        assert (await client.get(plain)).content == _random(2 * MiB, 8)


# -- the clean-up, with a real training file -------------------------------------------------


@pytest.fixture
async def ids(db: Database, owner_writers: WriterPool, s3: S3Storage, tmp_path: Path) -> list[UUID]:
    importer = ConversationImporter(owner_writers, s3)
    records = [await importer.import_file(p) for p in write_demo_set(tmp_path, 90, seed=515)]
    return [r.conversation_id for r in records if r.conversation_id is not None]


async def test_the_clean_up_removes_segments_no_referenced_object_names_and_keeps_the_rest(
    db: Database,
    pools: Pools,
    owner_writers: WriterPool,
    s3: FaultyS3Storage,
    raw: Any,
    ids: list[UUID],
) -> None:
    service: TrainingFileService = training_file_service(pools, s3)
    created = await service.create_training_file(OWNER, "segmented", None, ids[:30])
    file_id = created.id
    for start in (30, 45, 60, 75):
        await service.add_conversations(OWNER, file_id, ids[start : start + 15])
    async with db.session() as conn:
        row = await conn.fetchrow("SELECT * FROM training_files WHERE id = $1", file_id)
    current = [row[f"{kind}_file_path"] for kind in ("json", "jsonl", "openai_chat", "hf_dataset")]
    named_now = {
        segment[0]
        for key in current
        if (manifest := _manifest(raw, key)) is not None
        for segment in manifest["segments"]
    }
    assert named_now, "the adds made the file a composite"
    bodies_before = [await read_all(s3, TRAINING_BUCKET, key) for key in current]

    # A crashed compose's segment, which nothing names.
    leaked = f"{file_id}/v9/.segments/file.json.0123456789abcdef"
    raw.put_object(Bucket=TRAINING_BUCKET, Key=leaked, Body=b"left behind")
    segments_before = {k for k in _keys(raw) if "/.segments/" in k}
    assert named_now < segments_before

    # While the retired versions' links last, their manifests keep their segments.
    outcome = await clean_up(owner_writers, s3)
    assert {k for k in _keys(raw) if "/.segments/" in k} == segments_before - {leaked}
    assert outcome[State.REMOVED] == 1

    # Then the links expire: the retired manifests go, and the segments only they named.
    assert await service.sweep_retired_objects(now=datetime.now(UTC) + timedelta(days=30)) > 0
    outcome = await clean_up(owner_writers, s3)
    assert {k for k in _keys(raw) if "/.segments/" in k} == named_now
    assert outcome[State.REMOVED] == len(segments_before - named_now) - 1
    assert [await read_all(s3, TRAINING_BUCKET, key) for key in current] == bodies_before
    report = await check_store(owner_writers, s3, repair=False)
    assert report.consistent, report
