"""Conversations rendered once, at import: a build concatenates their stored pieces, reads no
enriched file, and writes exactly the bytes it wrote when it rendered every file itself."""

from __future__ import annotations

import json
import re
from pathlib import Path
from uuid import UUID

import pytest

from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database
from graphql_api.db.training_files import TrainingFileRecord
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.runtime import Pools
from graphql_api.storage.base import CONVERSATION_BUCKET, TRAINING_BUCKET, Storage, read_all

from .conftest import training_file_service
from .s3_servers import MotoServer
from .storage_wrappers import InstrumentedStorage, RecordingS3Storage

STORAGE_BACKENDS = ("local", "s3")
OWNER = UUID("00000000-0000-4000-8000-0000000000b7")
TIMESTAMPS = re.compile(rb'"(created_date|last_updated)": "[^"]+"')


@pytest.fixture
async def conversation_ids(
    db: Database, owner_writers: WriterPool, storage: Storage, tmp_path: Path
) -> list[UUID]:
    importer = ConversationImporter(owner_writers, storage)
    paths = write_demo_set(tmp_path / "demo", 9, seed=12)
    return [r.conversation_id for r in [await importer.import_file(p) for p in paths]]  # type: ignore[misc]


async def _objects(storage: Storage, record: TrainingFileRecord) -> list[bytes]:
    """The version's four objects (JSON, JSONL, OPENAI_CHAT, HF_DATASET), timestamps aside."""
    keys = (
        record.json_file_path,
        record.jsonl_file_path,
        record.openai_chat_file_path,
        record.hf_dataset_file_path,
    )
    found = [await read_all(storage, TRAINING_BUCKET, key or "") for key in keys]
    return [TIMESTAMPS.sub(b"", found[0]), *found[1:]]


async def test_import_stores_each_conversations_pieces_beside_its_file(
    db: Database, storage: Storage, conversation_ids: list[UUID]
) -> None:
    async with db.session() as conn:
        rows = await conn.fetch(
            "SELECT conversation_id, enriched_file_path, pieces_path, piece_sizes"
            " FROM conversations ORDER BY conversation_id"
        )
    assert len(rows) == 9
    for row in rows:
        assert row["pieces_path"] == row["enriched_file_path"].removesuffix(".json") + ".pieces"
        stored = await read_all(storage, CONVERSATION_BUCKET, row["pieces_path"])
        json_size, jsonl_size, openai_size, hf_size = row["piece_sizes"]
        assert len(stored) == json_size + jsonl_size + openai_size + hf_size
        # The JSON piece is one conversation object after its "," separator...
        piece = json.loads(stored[1:json_size])
        assert piece["conversation_metadata"]["conversation_id"] == str(row["conversation_id"])
        # ...then its trainable pairs, a line each, in the JSONL and in both trainer exports.
        document = json.loads(
            await read_all(storage, CONVERSATION_BUCKET, row["enriched_file_path"])
        )
        trainable = [p for p in document["training_pairs"] if p.get("target_response") is not None]
        start = json_size
        jsonl = stored[start : start + jsonl_size].decode().split("\n")[:-1]
        start += jsonl_size
        openai = stored[start : start + openai_size].decode().split("\n")[:-1]
        start += openai_size
        hf = stored[start:].decode().split("\n")[:-1]
        assert [json.loads(line)["turn_number"] for line in jsonl] == [
            p["turn_number"] for p in trainable
        ]
        assert [json.loads(line)["messages"][-1]["content"] for line in openai] == [
            p["target_response"] for p in trainable
        ]
        assert [json.loads(line)["turn_number"] for line in hf] == [
            p["turn_number"] for p in trainable
        ]


async def test_a_build_from_pieces_reads_no_file_and_equals_one_rendered_from_the_files(
    db: Database, pools: Pools, storage: Storage, conversation_ids: list[UUID]
) -> None:
    counted = InstrumentedStorage(storage)
    service = training_file_service(pools, counted)
    from_pieces = await service.create_training_file(
        OWNER, "from pieces", None, conversation_ids[:5]
    )
    from_pieces = await service.add_conversations(OWNER, from_pieces.id, conversation_ids[5:])
    assert [key for bucket, key in counted.reads if bucket == CONVERSATION_BUCKET] == []

    # The same file for rows imported before the trainer exports (two piece sizes: only the
    # JSON piece is still copied, the rest is rendered from their files)...
    async with db.session() as conn:
        await conn.execute("UPDATE conversations SET piece_sizes = piece_sizes[1:2]")
    legacy = await service.create_training_file(OWNER, "legacy", None, conversation_ids[:5])
    legacy = await service.add_conversations(OWNER, legacy.id, conversation_ids[5:])
    assert len([k for b, k in counted.reads if b == CONVERSATION_BUCKET]) == len(conversation_ids)
    counted.reads.clear()

    # ...and for rows imported before pieces existed: everything rendered from their files.
    async with db.session() as conn:
        await conn.execute("UPDATE conversations SET pieces_path = NULL, piece_sizes = NULL")
    rendered = await service.create_training_file(OWNER, "rendered", None, conversation_ids[:5])
    rendered = await service.add_conversations(OWNER, rendered.id, conversation_ids[5:])
    assert len([k for b, k in counted.reads if b == CONVERSATION_BUCKET]) == len(conversation_ids)

    def named(data: bytes, name: str) -> bytes:
        return data.replace(name.encode(), b"NAME")

    built = [named(b, "from pieces") for b in await _objects(storage, from_pieces)]
    assert [named(b, "legacy") for b in await _objects(storage, legacy)] == built
    assert [named(b, "rendered") for b in await _objects(storage, rendered)] == built

    def bodies(r: TrainingFileRecord) -> tuple[int | None, ...]:
        # The headers differ by the names' lengths; the bodies must not.
        assert r.json_body_end and r.json_body_start and r.jsonl_body_end and r.jsonl_body_start
        return (
            r.json_body_end - r.json_body_start,
            r.jsonl_body_end - r.jsonl_body_start,
            r.openai_chat_file_size,
            r.hf_dataset_file_size,
        )

    assert bodies(from_pieces) == bodies(legacy) == bodies(rendered)


async def test_an_s3_build_reads_each_conversations_pieces_with_one_request(
    db: Database, pools: Pools, owner_writers: WriterPool, moto: MotoServer, tmp_path: Path
) -> None:
    """S3 cannot copy ranges smaller than a part inside the store, so a build reads them: once
    per conversation, all four of its pieces in one ranged GET, not a GET per piece."""
    s3 = await RecordingS3Storage.open(moto.config())
    try:
        importer = ConversationImporter(owner_writers, s3)
        paths = write_demo_set(tmp_path / "demo", 6, seed=13)
        ids = [r.conversation_id for r in [await importer.import_file(p) for p in paths]]  # type: ignore[misc]
        async with db.session() as conn:
            rows = await conn.fetch("SELECT pieces_path FROM conversations")
        pieces = [row["pieces_path"] for row in rows]
        s3.sent.clear()
        service = training_file_service(pools, s3)
        created = await service.create_training_file(OWNER, "read once", None, ids[:4])
        await service.add_conversations(OWNER, created.id, ids[4:])

        conversations = s3.config.buckets[CONVERSATION_BUCKET]
        gets = {
            key: times
            for (operation, bucket, key), times in s3.sent.items()
            if operation == "GetObject" and bucket == conversations
        }
        assert gets == {key: 1 for key in pieces}
    finally:
        await s3.close()
