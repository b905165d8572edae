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
from .storage_wrappers import InstrumentedStorage

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


async def _objects(storage: Storage, json_key: str, jsonl_key: str) -> tuple[bytes, bytes]:
    json_bytes = await read_all(storage, TRAINING_BUCKET, json_key)
    jsonl_bytes = await read_all(storage, TRAINING_BUCKET, jsonl_key)
    return TIMESTAMPS.sub(b"", json_bytes), jsonl_bytes


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
        json_size, jsonl_size = row["piece_sizes"]
        assert len(stored) == json_size + jsonl_size
        # The JSON piece is one conversation object after its "," separator...
        piece = json.loads(stored[1:json_size])
        assert piece["conversation_metadata"]["conversation_id"] == str(row["conversation_id"])
        # ...and the JSONL part is its trainable pairs, a line each.
        document = json.loads(
            await read_all(storage, CONVERSATION_BUCKET, row["enriched_file_path"])
        )
        trainable = [p for p in document["training_pairs"] if p.get("target_response") is not None]
        lines = stored[json_size:].decode().splitlines()
        assert [json.loads(line)["turn_number"] for line in lines] == [
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

    # The same file for rows imported before pieces existed: rendered from their files.
    async with db.session() as conn:
        await conn.execute("UPDATE conversations SET pieces_path = NULL, piece_sizes = NULL")
    rendered = await service.create_training_file(OWNER, "rendered", None, conversation_ids[:5])
    rendered = await service.add_conversations(OWNER, rendered.id, conversation_ids[5:])
    assert len([k for b, k in counted.reads if b == CONVERSATION_BUCKET]) == len(conversation_ids)

    def named(data: bytes, name: str) -> bytes:
        return data.replace(name.encode(), b"NAME")

    built = await _objects(
        storage, from_pieces.json_file_path or "", from_pieces.jsonl_file_path or ""
    )
    again = await _objects(storage, rendered.json_file_path or "", rendered.jsonl_file_path or "")
    assert [named(b, "from pieces") for b in built] == [named(b, "rendered") for b in again]

    def bodies(r: TrainingFileRecord) -> tuple[int, int]:
        # The headers differ by the names' lengths; the bodies must not.
        assert r.json_body_end and r.json_body_start and r.jsonl_body_end and r.jsonl_body_start
        return (r.json_body_end - r.json_body_start, r.jsonl_body_end - r.jsonl_body_start)

    assert bodies(from_pieces) == bodies(rendered)
