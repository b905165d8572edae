"""A training file past 20 MiB on S3: the same bytes as on local storage, an add that uploads
only its new bytes (the old body is named by the composite, not copied), and a failure mid
multipart upload that leaves no trace."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import pytest

from graphql_api.aggregation.service import TrainingFileService
from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.runtime import Pools
from graphql_api.storage.base import CONVERSATION_BUCKET, TRAINING_BUCKET, iter_bytes, read_all
from graphql_api.storage.local import LocalStorage
from graphql_api.storage.s3 import S3Storage

from .conftest import training_file_service
from .s3_servers import MotoServer
from .storage_wrappers import FaultyS3Storage, InjectedFailure, InstrumentedStorage

OWNER = UUID("00000000-0000-4000-8000-0000000000cc")
MiB = 1024 * 1024
BATCH = 80
TIMESTAMPS = re.compile(rb'"(created_date|last_updated)": "[^"]+"')


@pytest.fixture
async def s3(moto: MotoServer) -> AsyncIterator[FaultyS3Storage]:
    """The real backend; with no faults planned it only counts its requests."""
    backend = await FaultyS3Storage.open(moto.config())
    yield backend
    await backend.close()


@pytest.fixture
async def conversations(
    db: Database, owner_writers: WriterPool, s3: S3Storage, tmp_path: Path
) -> tuple[LocalStorage, list[UUID]]:
    """320 conversations imported once; their files stored in both backends under one key."""
    local = LocalStorage(tmp_path / "local")
    importer = ConversationImporter(owner_writers, local)
    ids = [
        (await importer.import_file(p)).conversation_id
        for p in write_demo_set(tmp_path / "demo", 4 * BATCH, seed=2024)
    ]
    for key in await local.list_keys(CONVERSATION_BUCKET):
        data = await read_all(local, CONVERSATION_BUCKET, key)
        await s3.put(CONVERSATION_BUCKET, key, iter_bytes(data))
    return local, [i for i in ids if i is not None]


async def _build(service: TrainingFileService, name: str, ids: list[UUID]) -> list[object]:
    versions = [await service.create_training_file(OWNER, name, None, ids[:BATCH])]
    for start in range(BATCH, len(ids), BATCH):
        versions.append(
            await service.add_conversations(OWNER, versions[0].id, ids[start : start + BATCH])
        )  # type: ignore[attr-defined]
    return versions


async def test_large_file_on_s3_equals_local_and_an_add_uploads_only_its_new_bytes(
    db: Database, pools: Pools, s3: S3Storage, conversations: tuple[LocalStorage, list[UUID]]
) -> None:
    local, ids = conversations
    on_local = await _build(training_file_service(pools, local), "large-file-L", ids[: 3 * BATCH])
    on_s3 = await _build(training_file_service(pools, s3), "large-file-S", ids[: 3 * BATCH])

    before_last = on_s3[-1]
    s3.stats.uploaded_bytes = s3.stats.copied_bytes = 0
    last_s3 = await training_file_service(pools, s3).add_conversations(
        OWNER,
        before_last.id,
        ids[3 * BATCH :],  # type: ignore[attr-defined]
    )
    last_local = await training_file_service(pools, local).add_conversations(
        OWNER,
        on_local[-1].id,
        ids[3 * BATCH :],  # type: ignore[attr-defined]
    )

    assert last_s3.json_file_size > 20 * MiB
    for key_of in (
        lambda r: r.json_file_path,
        lambda r: r.jsonl_file_path,
        lambda r: r.openai_chat_file_path,
        lambda r: r.hf_dataset_file_path,
    ):
        from_s3 = await read_all(s3, TRAINING_BUCKET, key_of(last_s3))
        from_local = await read_all(local, TRAINING_BUCKET, key_of(last_local))
        assert TIMESTAMPS.sub(b"", from_s3).replace(b"large-file-S", b"large-file-L") == (
            TIMESTAMPS.sub(b"", from_local)
        )

    json_old_body = before_last.json_body_end - before_last.json_body_start  # type: ignore[attr-defined]
    total = (
        last_s3.json_file_size
        + last_s3.jsonl_file_size
        + last_s3.openai_chat_file_size
        + last_s3.hf_dataset_file_size
    )
    old_bodies = sum(
        end - start
        for start, end in (
            (before_last.json_body_start, before_last.json_body_end),  # type: ignore[attr-defined]
            (before_last.jsonl_body_start, before_last.jsonl_body_end),  # type: ignore[attr-defined]
        )
    )
    # The old bodies were neither copied nor uploaded again: the new composites name them.
    assert json_old_body > 15 * MiB
    assert s3.stats.copied_bytes == 0
    assert s3.stats.uploaded_bytes < total - old_bodies
    assert s3.faults.calls["UploadPartCopy"] == 0


async def test_failure_mid_multipart_upload_leaves_nothing_and_changes_nothing(
    db: Database,
    pools: Pools,
    s3: FaultyS3Storage,
    conversations: tuple[LocalStorage, list[UUID]],
) -> None:
    _, ids = conversations
    service = training_file_service(pools, s3)
    created = await service.create_training_file(OWNER, "fails-midway", None, ids[:BATCH])
    created = await service.add_conversations(OWNER, created.id, ids[BATCH : 2 * BATCH])
    keys_before = await s3.list_keys(TRAINING_BUCKET)
    async with db.session() as conn:
        row_before = dict(
            await conn.fetchrow("SELECT * FROM training_files WHERE id = $1", created.id)
        )

    # 5 MiB parts, and a failure just past 5 MiB into the JSON's new bytes (its old body,
    # named by the composite, counts as written): their segment is a multipart upload by then.
    small_parts = await FaultyS3Storage.open(s3.config, part_size=5 * MiB)
    flaky = InstrumentedStorage(small_parts)
    flaky.fail_writes_after = created.json_body_end + 5 * MiB + 16_384
    try:
        with pytest.raises(InjectedFailure):
            await training_file_service(
                pools, flaky
            ).add_conversations(  # type: ignore[arg-type]
                OWNER, created.id, ids[2 * BATCH : 3 * BATCH]
            )
    finally:
        await small_parts.close()  # waits for the clean-up the failure started
    stats = small_parts.stats

    assert created.json_body_end - created.json_body_start > 10 * MiB
    assert stats.multipart_uploads >= 1 and stats.aborted_uploads >= 1
    assert await s3.list_keys(TRAINING_BUCKET) == keys_before
    for bucket in s3.config.buckets.values():
        uploads = await s3._client.list_multipart_uploads(Bucket=bucket)
        assert uploads.get("Uploads", []) == []
    async with db.session() as conn:
        row_after = dict(
            await conn.fetchrow("SELECT * FROM training_files WHERE id = $1", created.id)
        )
        members = await conn.fetchval(
            "SELECT count(*) FROM training_file_conversations WHERE training_file_id = $1",
            created.id,
        )
    assert row_after == row_before and members == 2 * BATCH
    document = json.loads(await read_all(s3, TRAINING_BUCKET, created.json_file_path))
    assert len(document["conversations"]) == 2 * BATCH
