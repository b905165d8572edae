"""The consistency checker on real stores: what crashes leave is found and, once its writer is
provably gone, removed; live writes are left alone; corrupted files are reported, not touched."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from graphql_api.aggregation.service import TrainingFileService
from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database
from graphql_api.db.training_files import TrainingFileRecord
from graphql_api.db.writers import LockKind, WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.maintenance import orphans
from graphql_api.maintenance.consistency import check_store
from graphql_api.maintenance.report import Finding, Kind, Report, State
from graphql_api.runtime import Pools
from graphql_api.storage.base import (
    BUCKETS,
    CONVERSATION_BUCKET,
    PROBE_PREFIX,
    TRAINING_BUCKET,
    Storage,
    iter_bytes,
    read_all,
)

from .abandoned_writes import abandon_write
from .conftest import training_file_service

STORAGE_BACKENDS = ["local", "s3"]

OWNER = UUID("00000000-0000-4000-8000-0000000000c1")


@pytest.fixture
async def conversation_ids(
    db: Database, owner_writers: WriterPool, storage: Storage, tmp_path: Path
) -> list[UUID]:
    importer = ConversationImporter(owner_writers, storage)
    paths = write_demo_set(tmp_path / "demo", 8, seed=31)
    return [(await importer.import_file(p)).conversation_id for p in paths]  # type: ignore[misc]


@pytest.fixture
def service(pools: Pools, storage: Storage) -> TrainingFileService:
    return training_file_service(pools, storage)


@pytest.fixture
async def record(service: TrainingFileService, conversation_ids: list[UUID]) -> TrainingFileRecord:
    """A file at version 2: its v1 objects are retired (still referenced), v2's are current."""
    created = await service.create_training_file(OWNER, "checked", None, conversation_ids[:3])
    return await service.add_conversations(OWNER, created.id, conversation_ids[3:5])


async def check(
    writers: WriterPool, storage: Storage, *, repair: bool = False, now: datetime | None = None
) -> Report:
    return await check_store(writers, storage, repair=repair, now=now)


def found(report: Report) -> set[tuple[Kind, State, str, str]]:
    return {(f.kind, f.state, f.bucket, f.key) for f in report.findings}


async def all_keys(storage: Storage) -> dict[str, list[str]]:
    return {bucket: await storage.list_keys(bucket) for bucket in BUCKETS}


async def assert_file_is_intact(storage: Storage, record: TrainingFileRecord) -> None:
    document = json.loads(await read_all(storage, TRAINING_BUCKET, record.json_file_path or ""))
    assert len(document["conversations"]) == record.conversation_count
    jsonl = (await read_all(storage, TRAINING_BUCKET, record.jsonl_file_path or "")).splitlines()
    assert (
        len(jsonl) == json.loads(jsonl[0])["_meta"]["total_pairs"] + 1 == record.trainable_pairs + 1
    )


# -- a consistent store ----------------------------------------------------------------------


async def test_a_store_built_by_the_service_is_consistent(
    owner_writers: WriterPool, storage: Storage, record: TrainingFileRecord
) -> None:
    keys = await all_keys(storage)
    sizes = [await storage.size(bucket, key) for bucket, listed in keys.items() for key in listed]

    report = await check(owner_writers, storage)

    assert report.findings == []
    assert report.consistent
    assert report.training_files == 1
    # 8 conversation files and their rendered pieces, v1 (retired, links may still point at
    # it) and v2 of the file, four objects each (JSON, JSONL, OPENAI_CHAT, HF_DATASET).
    assert report.objects == len(sizes) == 8 * 2 + 2 * 4
    assert report.object_bytes == sum(sizes)
    assert report.pending_writes == 0


# -- crash leftovers -------------------------------------------------------------------------


async def test_crash_leftovers_are_found_and_repair_removes_them(
    owner_writers: WriterPool,
    storage: Storage,
    service: TrainingFileService,
    record: TrainingFileRecord,
    conversation_ids: list[UUID],
) -> None:
    kept = await all_keys(storage)
    current = await read_all(storage, TRAINING_BUCKET, record.json_file_path or "")
    # A build that wrote v3 and died before its commit: complete objects no row points at.
    uncommitted = [f"{record.id}/v3/training.json", f"{record.id}/v3/training.jsonl"]
    for key in uncommitted:
        await storage.put(TRAINING_BUCKET, key, iter_bytes(current))
    # A create that died before its commit: a file id no row has.
    rowless = f"{uuid4()}/v1/training.json"
    await storage.put(TRAINING_BUCKET, rowless, iter_bytes(b"{}"))
    # An import that died before its commit, of a known and of an unknown conversation.
    stale_import = f"{conversation_ids[0]}/{secrets.token_hex(8)}.json"
    unknown_import = f"{uuid4()}/{secrets.token_hex(8)}.json"
    for key in (stale_import, unknown_import):
        await storage.put(CONVERSATION_BUCKET, key, iter_bytes(b'{"x": 1}'))
    # A build killed mid-write: a temp file, or an incomplete multipart upload.
    pending = await abandon_write(storage, TRAINING_BUCKET, f"{record.id}/v4/training.json")

    report = await check(owner_writers, storage)

    assert found(report) == {
        (Kind.UNCOMMITTED_VERSION, State.FOUND, TRAINING_BUCKET, uncommitted[0]),
        (Kind.UNCOMMITTED_VERSION, State.FOUND, TRAINING_BUCKET, uncommitted[1]),
        (Kind.FILE_WITHOUT_ROW, State.FOUND, TRAINING_BUCKET, rowless),
        (Kind.UNREFERENCED_CONVERSATION_FILE, State.FOUND, CONVERSATION_BUCKET, stale_import),
        (Kind.UNREFERENCED_CONVERSATION_FILE, State.FOUND, CONVERSATION_BUCKET, unknown_import),
        (Kind.PENDING_WRITE, State.FOUND, TRAINING_BUCKET, pending.key),
    }
    assert not report.consistent
    assert report.pending_writes == 1
    sizes = {f.key: f.size for f in report.findings}
    assert sizes[uncommitted[0]] == len(current) and sizes[rowless] == 2

    repaired = await check(owner_writers, storage, repair=True)

    assert {(kind, key) for kind, _, _, key in found(repaired)} == {
        (kind, key) for kind, _, _, key in found(report)
    }
    assert {f.state for f in repaired.findings} == {State.REMOVED}
    assert repaired.consistent
    after = await check(owner_writers, storage)
    assert after.findings == [] and after.consistent and after.pending_writes == 0
    assert await all_keys(storage) == kept
    await assert_file_is_intact(storage, record)
    # The file still takes additions: its next version is written afresh.
    added = await service.add_conversations(OWNER, record.id, conversation_ids[5:6])
    assert added.version == 3
    await assert_file_is_intact(storage, added)
    assert (await check(owner_writers, storage)).findings == []


async def test_objects_of_a_live_writer_are_in_use_and_kept(
    owner_writers: WriterPool, pools: Pools, storage: Storage, record: TrainingFileRecord
) -> None:
    building = [f"{record.id}/v3/training.json", f"{record.id}/v3/training.jsonl"]
    importing = f"{uuid4()}/{secrets.token_hex(8)}.json"
    writers = pools.writers
    async with (
        writers.exclusive(LockKind.TRAINING_FILE, record.id),
        writers.exclusive(LockKind.CONVERSATION, UUID(importing[:36])),
    ):
        for key in building:
            await storage.put(TRAINING_BUCKET, key, iter_bytes(b"being written"))
        await storage.put(CONVERSATION_BUCKET, importing, iter_bytes(b"{}"))

        report = await check(owner_writers, storage, repair=True)

        assert found(report) == {
            (Kind.UNCOMMITTED_VERSION, State.IN_USE, TRAINING_BUCKET, building[0]),
            (Kind.UNCOMMITTED_VERSION, State.IN_USE, TRAINING_BUCKET, building[1]),
            (Kind.UNREFERENCED_CONVERSATION_FILE, State.IN_USE, CONVERSATION_BUCKET, importing),
        }
        assert report.consistent  # a write in progress is not a problem
        for key in building:
            assert await read_all(storage, TRAINING_BUCKET, key) == b"being written"
        assert await storage.exists(CONVERSATION_BUCKET, importing)

    # The writers are gone (they never committed): now their objects go.
    after = await check(owner_writers, storage, repair=True)
    assert {(f.key, f.state) for f in after.findings} == {
        (building[0], State.REMOVED),
        (building[1], State.REMOVED),
        (importing, State.REMOVED),
    }
    await assert_file_is_intact(storage, record)


async def test_an_object_referenced_by_the_time_its_lock_is_taken_is_kept(
    owner_writers: WriterPool, storage: Storage, record: TrainingFileRecord, db: Database
) -> None:
    # The listing saw these unreferenced; a writer committed them before the clean-up got the
    # lock. Under the lock the database says they are referenced: nothing is removed.
    async with db.session() as conn:
        conversation_key = await conn.fetchval(
            "SELECT enriched_file_path FROM conversations ORDER BY conversation_id LIMIT 1"
        )
        conversation_id = await conn.fetchval(
            "SELECT conversation_id FROM conversations WHERE enriched_file_path = $1",
            conversation_key,
        )
    raced = [
        orphans.Orphan(
            Finding(
                Kind.UNCOMMITTED_VERSION, State.FOUND, TRAINING_BUCKET, record.json_file_path or ""
            ),
            (LockKind.TRAINING_FILE, record.id),
        ),
        orphans.Orphan(
            Finding(
                Kind.UNREFERENCED_CONVERSATION_FILE,
                State.FOUND,
                CONVERSATION_BUCKET,
                conversation_key,
            ),
            (LockKind.CONVERSATION, conversation_id),
        ),
    ]

    for orphan in raced:
        assert await orphans.settle(orphan, owner_writers, storage, repair=True) is None

    assert await storage.exists(TRAINING_BUCKET, record.json_file_path or "")
    assert await storage.exists(CONVERSATION_BUCKET, conversation_key)


async def test_an_old_version_nothing_references_any_more_is_removed(
    owner_writers: WriterPool, storage: Storage, record: TrainingFileRecord, db: Database
) -> None:
    v1 = [
        f"{record.id}/v1/training{suffix}"
        for suffix in (".json", ".jsonl", ".openai.jsonl", ".hf.jsonl")
    ]
    async with db.session() as conn:  # forgotten by a sweeper whose delete then failed
        await conn.execute("DELETE FROM retired_objects")

    report = await check(owner_writers, storage, repair=True)

    assert found(report) == {
        (Kind.UNREFERENCED_VERSION, State.REMOVED, TRAINING_BUCKET, key) for key in v1
    }
    for key in v1:
        assert not await storage.exists(TRAINING_BUCKET, key)
    await assert_file_is_intact(storage, record)


async def test_keys_outside_the_layout_are_reported_and_never_removed(
    owner_writers: WriterPool, storage: Storage, record: TrainingFileRecord
) -> None:
    foreign = [
        (TRAINING_BUCKET, "notes/readme.txt"),
        (TRAINING_BUCKET, f"{str(record.id).upper()}/v1/training.json"),
        (CONVERSATION_BUCKET, f"{uuid4()}/v1/training.json"),  # a training key, wrong bucket
    ]
    for bucket, key in foreign:
        await storage.put(bucket, key, iter_bytes(b"not ours"))

    report = await check(owner_writers, storage, repair=True)

    assert found(report) == {
        (Kind.FOREIGN_OBJECT, State.REPORTED, bucket, key) for bucket, key in foreign
    }
    assert not report.consistent
    for bucket, key in foreign:
        assert await read_all(storage, bucket, key) == b"not ours"


async def test_an_abandoned_health_probe_object_goes_once_it_is_old(
    owner_writers: WriterPool, storage: Storage, record: TrainingFileRecord
) -> None:
    key = f"{PROBE_PREFIX}{secrets.token_hex(8)}"
    await storage.put(TRAINING_BUCKET, key, iter_bytes(b"probe"))

    assert (await check(owner_writers, storage, repair=True)).findings == []  # maybe running

    later = datetime.now(UTC) + orphans.PROBE_GRACE + timedelta(minutes=1)
    report = await check(owner_writers, storage, repair=True, now=later)
    assert found(report) == {(Kind.STALE_PROBE, State.REMOVED, TRAINING_BUCKET, key)}
    assert not await storage.exists(TRAINING_BUCKET, key)


# -- corrupted files -------------------------------------------------------------------------

Corruption = Callable[[Storage, Database, TrainingFileRecord], Awaitable[None]]


async def _rewrite(storage: Storage, key: str, change: Callable[[bytes], bytes]) -> None:
    data = await read_all(storage, TRAINING_BUCKET, key)
    await storage.put(TRAINING_BUCKET, key, iter_bytes(change(data)))


async def truncate_json(storage: Storage, db: Database, record: TrainingFileRecord) -> None:
    await _rewrite(storage, record.json_file_path or "", lambda data: data[:-100])


async def lose_jsonl(storage: Storage, db: Database, record: TrainingFileRecord) -> None:
    await storage.delete(TRAINING_BUCKET, record.jsonl_file_path or "")


async def record_wrong_size(storage: Storage, db: Database, record: TrainingFileRecord) -> None:
    async with db.session() as conn:
        await conn.execute(
            "UPDATE training_files SET jsonl_file_size = jsonl_file_size + 1 WHERE id = $1",
            record.id,
        )


async def reorder_members(storage: Storage, db: Database, record: TrainingFileRecord) -> None:
    # Swap the first two members, through positions nothing uses (positions are unique).
    async with db.session() as conn:
        await conn.execute(
            "UPDATE training_file_conversations SET position = position + 1000 "
            "WHERE training_file_id = $1 AND position IN (0, 1)",
            record.id,
        )
        await conn.execute(
            "UPDATE training_file_conversations SET position = 1001 - position "
            "WHERE training_file_id = $1 AND position IN (1000, 1001)",
            record.id,
        )


async def swap_two_conversation_ids(
    storage: Storage, db: Database, record: TrainingFileRecord
) -> None:
    # Same size, valid JSON, right header: only the conversation ids tell.
    async with db.session() as conn:
        first, second = [
            str(row["conversation_id"]).encode()
            for row in await conn.fetch(
                "SELECT conversation_id FROM training_file_conversations "
                "WHERE training_file_id = $1 ORDER BY position LIMIT 2",
                record.id,
            )
        ]

    def swap(data: bytes) -> bytes:
        hold = b"\0held\0"
        return data.replace(first, hold).replace(second, first).replace(hold, second)

    await _rewrite(storage, record.json_file_path or "", swap)


async def break_the_footer(storage: Storage, db: Database, record: TrainingFileRecord) -> None:
    await _rewrite(storage, record.json_file_path or "", lambda data: data[:-2] + b"]\n")


async def miscount_pairs(storage: Storage, db: Database, record: TrainingFileRecord) -> None:
    async with db.session() as conn:
        await conn.execute(
            "UPDATE training_files SET trainable_pairs = trainable_pairs - 1 WHERE id = $1",
            record.id,
        )


async def drift_the_quality_totals(
    storage: Storage, db: Database, record: TrainingFileRecord
) -> None:
    # What an add extends: the header shows the average, which is left as it was, so only the
    # members tell that the carried sum and count are wrong.
    async with db.session() as conn:
        await conn.execute(
            "UPDATE training_files SET quality_sum = quality_sum + 1,"
            " quality_count = quality_count + 1 WHERE id = $1",
            record.id,
        )


async def shift_a_members_range(storage: Storage, db: Database, record: TrainingFileRecord) -> None:
    # The second member's JSONL range one byte later: a removal would copy a wrong span.
    async with db.session() as conn:
        await conn.execute(
            "UPDATE training_file_conversations SET jsonl_start = jsonl_start + 1"
            " WHERE training_file_id = $1 AND position = 1",
            record.id,
        )


CORRUPTIONS: dict[str, tuple[Corruption, set[tuple[Kind, str]]]] = {
    "truncated-json": (truncate_json, {(Kind.WRONG_SIZE, "json")}),
    "lost-jsonl": (lose_jsonl, {(Kind.MISSING_OBJECT, "jsonl")}),
    "row-size-wrong": (record_wrong_size, {(Kind.WRONG_SIZE, "jsonl")}),
    "junction-reordered": (
        reorder_members,
        {
            (Kind.MEMBERS_MISMATCH, "json"),
            (Kind.MEMBERS_MISMATCH, "jsonl"),
            (Kind.MEMBERS_MISMATCH, "hf_dataset"),
            # Their ranges moved with them, so they no longer follow each other in file order.
            (Kind.RANGES_MISMATCH, "json"),
            (Kind.RANGES_MISMATCH, "jsonl"),
            (Kind.RANGES_MISMATCH, "openai_chat"),
            (Kind.RANGES_MISMATCH, "hf_dataset"),
        },
    ),
    "ids-swapped-in-json": (swap_two_conversation_ids, {(Kind.MEMBERS_MISMATCH, "json")}),
    "footer-broken": (break_the_footer, {(Kind.BAD_LAYOUT, "json")}),
    "pairs-miscounted": (
        miscount_pairs,
        {
            (Kind.STATISTICS_MISMATCH, "row"),
            (Kind.CONTENT_MISMATCH, "json"),
            (Kind.HEADER_MISMATCH, "jsonl"),
            (Kind.CONTENT_MISMATCH, "jsonl"),
        },
    ),
    "quality-totals-drifted": (drift_the_quality_totals, {(Kind.STATISTICS_MISMATCH, "row")}),
    "member-range-shifted": (shift_a_members_range, {(Kind.RANGES_MISMATCH, "jsonl")}),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=list(CORRUPTIONS))
async def test_corrupted_files_are_reported_and_left_alone(
    owner_writers: WriterPool,
    storage: Storage,
    db: Database,
    record: TrainingFileRecord,
    corruption: str,
) -> None:
    corrupt, expected = CORRUPTIONS[corruption]
    await corrupt(storage, db, record)
    before = await all_keys(storage)
    objects = {
        "row": "",  # a finding about the row names no object
        "json": record.json_file_path,
        "jsonl": record.jsonl_file_path,
        "openai_chat": record.openai_chat_file_path,
        "hf_dataset": record.hf_dataset_file_path,
    }

    report = await check(owner_writers, storage, repair=True)

    assert {(f.kind, f.key) for f in report.findings} == {
        (kind, objects[which]) for kind, which in expected
    }
    assert {f.state for f in report.findings} == {State.REPORTED}
    assert {f.training_file_id for f in report.findings} == {record.id}
    assert not report.consistent
    assert await all_keys(storage) == before
