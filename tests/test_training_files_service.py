"""The aggregation service against the real database and real storage."""

from __future__ import annotations

import asyncio
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import jsonschema
import pytest

from graphql_api.aggregation.service import FileFormat, TrainingFileService
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.errors import Conflict, Forbidden, InvalidInput, NotFound
from graphql_api.runtime import Pools
from graphql_api.storage.base import CONVERSATION_BUCKET, TRAINING_BUCKET, Storage, read_all

from . import product_rules as rules
from .conftest import TRAINING_FILE_SCHEMA, training_file_service
from .conversation_documents import with_scores
from .sources import Source, documents_of, ids_of, import_demo, import_sources
from .storage_wrappers import InjectedFailure, InstrumentedStorage

SCHEMA = TRAINING_FILE_SCHEMA
# Every test taking `storage` runs on local storage and on S3 (moto).
STORAGE_BACKENDS = ("local", "s3")

OWNER = UUID("00000000-0000-4000-8000-000000000001")
OTHER = UUID("00000000-0000-4000-8000-000000000002")
TIMESTAMP = re.compile(rb'"(created_date|last_updated)": "[^"]+"')


@pytest.fixture
def instrumented(storage: Storage) -> InstrumentedStorage:
    return InstrumentedStorage(storage)


@pytest.fixture
def service(db: Database, pools: Pools, instrumented: InstrumentedStorage) -> TrainingFileService:
    return training_file_service(pools, instrumented)


@pytest.fixture
async def sources(
    db: Database, owner_writers: WriterPool, storage: Storage, tmp_path: Path
) -> list[Source]:
    """24 generated conversations, imported; their source files in generation order."""
    return await import_demo(owner_writers, storage, tmp_path / "demo", 24, seed=21)


@pytest.fixture
def conversation_ids(sources: list[Source]) -> list[UUID]:
    return ids_of(sources)


async def _objects(storage: Storage) -> dict[str, bytes]:
    return {
        key: await read_all(storage, TRAINING_BUCKET, key)
        for key in await storage.list_keys(TRAINING_BUCKET)
    }


async def _snapshot(db: Database, storage: Storage) -> tuple[Any, ...]:
    async with db.session() as conn:
        files = [dict(r) for r in await conn.fetch("SELECT * FROM training_files ORDER BY id")]
        members = [
            dict(r)
            for r in await conn.fetch(
                "SELECT training_file_id, conversation_id, position FROM training_file_conversations"
                " ORDER BY training_file_id, position"
            )
        ]
    return files, members, await _objects(storage)


async def _download(storage: Storage, key: str) -> bytes:
    return await read_all(storage, TRAINING_BUCKET, key)


# -------------------------------------------------------------------- the seed's checklist


async def test_create_with_three(
    service: TrainingFileService, db: Database, storage: Storage, sources: list[Source]
) -> None:
    chosen = ids_of(sources[:3])
    docs = documents_of(sources[:3])
    record = await service.create_training_file(OWNER, "test_training_file_001", "Test", chosen)

    assert record.conversation_count == 3 and record.version == 1 and record.status == "active"
    assert record.json_file_path == f"{record.id}/v1/training.json"
    assert record.jsonl_file_path == f"{record.id}/v1/training.jsonl"
    full = json.loads(await _download(storage, record.json_file_path))
    lines = (await _download(storage, record.jsonl_file_path)).decode().splitlines()
    assert record.json_file_size == len(await _download(storage, record.json_file_path))

    # Expected values from the source files, by the product's rules (rounding half up).
    quality = rules.quality(docs)
    assert record.total_training_pairs == sum(len(rules.pairs(d)) for d in docs)
    assert record.trainable_pairs == sum(rules.trainable(d) for d in docs) == len(lines) - 1
    assert record.avg_quality_score == quality.average
    assert (record.min_quality_score, record.max_quality_score) == (
        quality.minimum,
        quality.maximum,
    )
    assert record.human_reviewed_count == quality.reviewed
    meta = full["training_file_metadata"]
    assert meta["total_conversations"] == 3
    assert meta["quality_summary"]["human_reviewed_count"] == quality.reviewed
    assert meta["quality_summary"]["human_reviewed_percentage"] == float(
        quality.reviewed_percentage
    )
    assert [c["conversation_metadata"]["conversation_id"] for c in full["conversations"]] == [
        str(i) for i in chosen
    ]
    assert [c["training_pairs"] for c in full["conversations"]] == [
        d["training_pairs"] for d in docs
    ]

    async with db.session() as conn:
        members = await conn.fetch(
            "SELECT conversation_id, position, added_by FROM training_file_conversations"
            " WHERE training_file_id = $1 ORDER BY position",
            record.id,
        )
    distribution = rules.file_distribution(docs)
    assert {
        kind: {entry["key"]: entry["count"] for entry in entries}
        for kind, entries in record.scaffolding_distribution.items()
    } == distribution
    assert meta["scaffolding_distribution"] == distribution
    assert [(m["conversation_id"], m["position"], m["added_by"]) for m in members] == [
        (c, i, OWNER) for i, c in enumerate(chosen)
    ]


async def _import_scored(
    owner_writers: WriterPool, storage: Storage, directory: Path, scores: list[list[Any]]
) -> list[Source]:
    """One small conversation per list of pair quality scores (None: the pair has none)."""
    directory.mkdir()
    paths = []
    for index, pair_scores in enumerate(scores):
        document = with_scores(*pair_scores)
        conversation_id = UUID(int=index + 1, version=4)
        document["dataset_metadata"]["dataset_name"] = f"fp_conversation_{conversation_id}"
        path = directory / f"fp_conversation_{conversation_id}.json"
        path.write_text(json.dumps(document))
        paths.append(path)
    return await import_sources(owner_writers, storage, paths)


@pytest.mark.parametrize(
    ("scores", "average", "minimum", "maximum"),
    [
        # Exactly 3.125: half up gives 3.13, half-even (Python's default) 3.12.
        ([[3, 3.25]], "3.13", "3", "3.25"),
        # Unscored pairs count with their conversation's score (3): 22 / 6, not 13 / 3.
        ([[3, None, None, None], [5, 5]], "3.67", "3", "5"),
        # The fallback is the conversation's score as stored, rounded: 3.13, not 3.125.
        # (3 + 3.25 + 3.13 + 3.13 + 3 + 3.12) / 6 = 3.105 -> 3.11; with 3.125 it would be
        # 3.1033... -> 3.10.
        ([[3, 3.25, None, None], [3, 3.12]], "3.11", "3", "3.25"),
    ],
    ids=["half-up", "fallback", "rounded-fallback"],
)
async def test_quality_is_per_pair_with_fallback_rounded_half_up(
    service: TrainingFileService,
    db: Database,
    owner_writers: WriterPool,
    storage: Storage,
    tmp_path: Path,
    scores: list[list[Any]],
    average: str,
    minimum: str,
    maximum: str,
) -> None:
    scored = await _import_scored(owner_writers, storage, tmp_path / "scored", scores)
    record = await service.create_training_file(OWNER, "scored", None, ids_of(scored))

    expected = (Decimal(average), Decimal(minimum), Decimal(maximum))
    assert (record.avg_quality_score, record.min_quality_score, record.max_quality_score) == (
        expected
    )
    quality = rules.quality(documents_of(scored))
    assert (quality.average, quality.minimum, quality.maximum) == expected
    summary = json.loads(await _download(storage, record.json_file_path))["training_file_metadata"][
        "quality_summary"
    ]
    assert [
        summary["avg_quality_score"],
        summary["min_quality_score"],
        summary["max_quality_score"],
    ] == [float(value) for value in expected]


async def test_add_two_then_file_has_five(
    service: TrainingFileService, storage: Storage, sources: list[Source]
) -> None:
    conversation_ids = ids_of(sources)
    created = await service.create_training_file(OWNER, "five", None, conversation_ids[:3])
    added = await service.add_conversations(OWNER, created.id, conversation_ids[3:5])

    assert added.version == 2 and added.conversation_count == 5
    full = json.loads(await _download(storage, added.json_file_path))
    assert len(full["conversations"]) == 5
    jsonl = (await _download(storage, added.jsonl_file_path)).decode()
    docs = documents_of(sources[:5])
    trainable = sum(rules.trainable(d) for d in docs)
    assert jsonl.count("\n") == trainable + 1 == added.trainable_pairs + 1
    assert added.total_training_pairs == sum(len(rules.pairs(d)) for d in docs)
    quality = rules.quality(docs)
    assert (added.avg_quality_score, added.min_quality_score, added.max_quality_score) == (
        quality.average,
        quality.minimum,
        quality.maximum,
    )
    assert added.human_reviewed_count == quality.reviewed
    # The old version stays readable for links already handed out.
    assert json.loads(await _download(storage, created.json_file_path))["conversations"]


async def test_duplicate_add_names_the_id_and_changes_nothing(
    service: TrainingFileService, db: Database, storage: Storage, conversation_ids: list[UUID]
) -> None:
    created = await service.create_training_file(OWNER, "dupes", None, conversation_ids[:3])
    before = await _snapshot(db, storage)

    with pytest.raises(InvalidInput) as caught:
        await service.add_conversations(OWNER, created.id, [conversation_ids[0]])
    [problem] = caught.value.problems
    assert problem.code == "ALREADY_IN_FILE"
    assert problem.message == f"Conversations already in training file: {conversation_ids[0]}"
    assert problem.conversation_ids == (conversation_ids[0],)
    assert await _snapshot(db, storage) == before


async def test_not_enriched_conversation_blocks_creation(
    service: TrainingFileService, db: Database, storage: Storage, conversation_ids: list[UUID]
) -> None:
    pending = uuid4()
    async with db.session() as conn:
        await conn.execute(
            "INSERT INTO conversations (conversation_id, enrichment_status) VALUES ($1, 'not_started')",
            pending,
        )
    before = await _snapshot(db, storage)
    with pytest.raises(InvalidInput) as caught:
        await service.create_training_file(
            OWNER, "test_invalid", None, [conversation_ids[0], pending]
        )
    [problem] = caught.value.problems
    assert problem.code == "NOT_ELIGIBLE" and problem.conversation_ids == (pending,)
    assert await _snapshot(db, storage) == before


async def test_downloads_are_valid_json_and_jsonl(
    service: TrainingFileService, storage: Storage, conversation_ids: list[UUID]
) -> None:
    record = await service.create_training_file(OWNER, "downloadable", None, conversation_ids[:6])

    target = await service.download_target(OWNER, record.id, FileFormat.JSON)
    assert (target.filename, target.content_type) == ("downloadable.json", "application/json")
    full = json.loads(await _download(storage, target.key))
    jsonschema.Draft202012Validator(SCHEMA).validate(full)

    target = await service.download_target(OWNER, record.id, FileFormat.JSONL)
    assert (target.filename, target.content_type) == ("downloadable.jsonl", "application/x-ndjson")
    raw = await _download(storage, target.key)
    assert raw.endswith(b"\n")
    lines = [json.loads(line) for line in raw.decode().splitlines()]
    assert len(lines) == lines[0]["_meta"]["total_pairs"] + 1
    line_schema = {"$ref": "#/$defs/jsonl_pair_line", "$defs": SCHEMA["$defs"]}
    for line in lines[1:]:
        jsonschema.Draft202012Validator(line_schema).validate(line)
        assert line["target_response"] is not None


# -------------------------------------------------------------------- beyond the seed


@pytest.mark.parametrize("steps", [(7, 8), (3, 1, 5, 2, 4)], ids=["one-add", "four-adds"])
async def test_create_then_add_equals_create_all(
    service: TrainingFileService,
    storage: Storage,
    conversation_ids: list[UUID],
    steps: tuple[int, ...],
) -> None:
    """Adds carry the statistics forward from the row (0010), so several in a row must keep
    agreeing with a file built at once: counts, quality, distribution order and bytes."""
    chunks, start = [], 0
    for size in steps:
        chunks.append(conversation_ids[start : start + size])
        start += size
    stepwise = await service.create_training_file(OWNER, "same", None, chunks[0])
    for chunk in chunks[1:]:
        stepwise = await service.add_conversations(OWNER, stepwise.id, chunk)
    at_once = await service.create_training_file(
        OWNER, "same-at-once", None, [i for chunk in chunks for i in chunk]
    )

    def comparable(record: Any) -> tuple[Any, ...]:
        return (
            record.conversation_count,
            record.total_training_pairs,
            record.trainable_pairs,
            record.avg_quality_score,
            record.min_quality_score,
            record.max_quality_score,
            record.human_reviewed_count,
            record.scaffolding_distribution,
            record.json_file_size - len(record.name),
            record.jsonl_file_size - len(record.name),
            record.openai_chat_file_size,
            record.hf_dataset_file_size,
        )

    assert comparable(stepwise) == comparable(at_once)
    # All four objects: JSON, JSONL, OPENAI_CHAT, HF_DATASET.
    assert len(stepwise.object_paths) == len(at_once.object_paths) == 4
    for one_key, two_key in zip(stepwise.object_paths, at_once.object_paths, strict=True):
        one = await _download(storage, one_key)
        two = await _download(storage, two_key)
        one = TIMESTAMP.sub(b"T", one).replace(b'"same"', b'"NAME"')
        two = TIMESTAMP.sub(b"T", two).replace(b'"same-at-once"', b'"NAME"')
        assert one == two


async def test_add_reads_only_the_added_conversations(
    service: TrainingFileService, instrumented: InstrumentedStorage, conversation_ids: list[UUID]
) -> None:
    created = await service.create_training_file(OWNER, "proportional", None, conversation_ids[:20])
    instrumented.reads.clear()
    instrumented.ranged_reads.clear()
    instrumented.copied_from.clear()
    await service.add_conversations(OWNER, created.id, conversation_ids[20:22])
    # Read, or copied from (or, on S3, read in one range of) their pre-rendered pieces: either
    # way, only the added ones.
    touched = {
        key.split("/")[0]
        for bucket, key in instrumented.reads | instrumented.ranged_reads | instrumented.copied_from
        if bucket == CONVERSATION_BUCKET
    }
    assert touched == {str(i) for i in conversation_ids[20:22]}


async def test_add_does_not_aggregate_the_existing_members_again(
    service: TrainingFileService, db: Database, sources: list[Source]
) -> None:
    """An add combines the row's statistics with its new conversations' only, so its database
    work does not grow with the file. Shown by changing a member's row behind the service's
    back: a re-aggregation over all members would pick the change up; the add must not."""
    ids = ids_of(sources)
    created = await service.create_training_file(OWNER, "carried", None, ids[:5])
    async with db.session() as conn:
        await conn.execute(
            "UPDATE conversations SET pair_count = pair_count + 1000, quality_sum = 0,"
            " quality_min = 0, persona_key = 'changed' WHERE conversation_id = $1",
            ids[0],
        )
    added = await service.add_conversations(OWNER, created.id, ids[5:7])

    new = [documents_of(sources)[i] for i in (5, 6)]
    new_pairs = sum(len(rules.pairs(d)) for d in new)
    assert added.total_training_pairs == created.total_training_pairs + new_pairs
    new_minimum = rules.quality(new).minimum
    assert created.min_quality_score is not None and new_minimum is not None
    assert added.min_quality_score == min(created.min_quality_score, new_minimum)
    personas = [e["key"] for e in added.scaffolding_distribution["personas"]]
    assert "changed" not in personas
    assert personas[: len(created.scaffolding_distribution["personas"])] == [
        e["key"] for e in created.scaffolding_distribution["personas"]
    ]


async def test_every_problem_is_reported_together(
    service: TrainingFileService, db: Database, storage: Storage, conversation_ids: list[UUID]
) -> None:
    missing = uuid4()
    before = await _snapshot(db, storage)
    with pytest.raises(InvalidInput) as caught:
        await service.create_training_file(
            OWNER, "", None, [conversation_ids[0], conversation_ids[0], "nope", str(missing)]
        )
    codes = {p.code: p for p in caught.value.problems}
    assert set(codes) == {"INVALID_NAME", "DUPLICATE_IN_REQUEST", "INVALID_ID", "NOT_FOUND"}
    assert codes["NOT_FOUND"].conversation_ids == (missing,)
    assert codes["DUPLICATE_IN_REQUEST"].conversation_ids == (conversation_ids[0],)
    assert "'nope'" in codes["INVALID_ID"].message
    assert await _snapshot(db, storage) == before


async def test_eighty_one_ids_are_refused_and_eighty_accepted(
    service: TrainingFileService, conversation_ids: list[UUID]
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await service.create_training_file(OWNER, "too many", None, [uuid4() for _ in range(81)])
    assert "TOO_MANY_CONVERSATIONS" in {p.code for p in caught.value.problems}
    with pytest.raises(InvalidInput) as caught:
        await service.create_training_file(OWNER, "eighty", None, [uuid4() for _ in range(80)])
    assert {p.code for p in caught.value.problems} == {"NOT_FOUND"}


async def test_names_are_unique_per_owner_ignoring_case_and_checked(
    service: TrainingFileService, conversation_ids: list[UUID]
) -> None:
    await service.create_training_file(OWNER, "Taken", None, conversation_ids[:1])
    for name, code in [
        ("Taken", "NAME_TAKEN"),
        ("tAKEN", "NAME_TAKEN"),
        ("x" * 256, "INVALID_NAME"),
        ("a\x00b", "INVALID_NAME"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            await service.create_training_file(OWNER, name, None, conversation_ids[1:2])
        assert [p.code for p in caught.value.problems] == [code]
        if code == "NAME_TAKEN":
            # The error names the caller's own file, as it is spelled.
            assert caught.value.problems[0].message.startswith(
                "you already have a training file named 'Taken'"
            )
    # Another user's names are theirs: the same name is free for them.
    other = await service.create_training_file(OTHER, "taken", None, conversation_ids[1:2])
    assert other.name == "taken" and other.created_by == OTHER


async def test_only_the_owner_adds_and_the_database_itself_refuses_others(
    service: TrainingFileService, db: Database, storage: Storage, conversation_ids: list[UUID]
) -> None:
    created = await service.create_training_file(OWNER, "mine", None, conversation_ids[:2])
    before = await _snapshot(db, storage)
    with pytest.raises(Forbidden):
        await service.add_conversations(OTHER, created.id, conversation_ids[2:3])
    with pytest.raises(Forbidden):
        await service.set_archived(OTHER, created.id, True)
    assert await _snapshot(db, storage) == before

    # Below the service: as the other user, PostgreSQL's policies refuse the change.
    async with db.session(OTHER) as conn:
        result = await conn.execute(
            "UPDATE training_files SET name = 'stolen' WHERE id = $1", created.id
        )
        assert result == "UPDATE 0"
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.session(OTHER) as conn:
            await conn.execute(
                "INSERT INTO training_file_conversations"
                " (training_file_id, conversation_id, position, added_by) VALUES ($1, $2, 99, $3)",
                created.id,
                conversation_ids[5],
                OTHER,
            )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.session(OTHER) as conn:
            await conn.execute(
                "INSERT INTO training_files (name, created_by) VALUES ('x', $1)", OWNER
            )
    assert await _snapshot(db, storage) == before


async def test_unknown_file(service: TrainingFileService, conversation_ids: list[UUID]) -> None:
    with pytest.raises(NotFound):
        await service.add_conversations(OWNER, uuid4(), conversation_ids[:1])
    with pytest.raises(NotFound):
        await service.download_target(OWNER, uuid4(), FileFormat.JSON)


async def test_archived_files_take_no_additions_until_restored(
    service: TrainingFileService, conversation_ids: list[UUID]
) -> None:
    created = await service.create_training_file(OWNER, "archivable", None, conversation_ids[:2])
    archived = await service.set_archived(OWNER, created.id, True)
    assert archived.status == "archived"
    with pytest.raises(Conflict):
        await service.add_conversations(OWNER, created.id, conversation_ids[2:3])
    restored = await service.set_archived(OWNER, created.id, False)
    assert restored.status == "active"
    assert (
        await service.add_conversations(OWNER, created.id, conversation_ids[2:3])
    ).conversation_count == 3


async def test_concurrent_adds_lose_nothing(
    service: TrainingFileService, storage: Storage, conversation_ids: list[UUID]
) -> None:
    created = await service.create_training_file(OWNER, "busy", None, conversation_ids[:2])
    disjoint = [conversation_ids[2 + 2 * i : 4 + 2 * i] for i in range(6)]  # 12 ids in 6 tasks
    overlapping = [conversation_ids[14:17], conversation_ids[15:18]]  # 15, 16 in both
    results = await asyncio.gather(
        *(service.add_conversations(OWNER, created.id, ids) for ids in disjoint + overlapping),
        return_exceptions=True,
    )
    assert all(not isinstance(r, BaseException) for r in results[:6])
    overlap_results = results[6:]
    failures = [r for r in overlap_results if isinstance(r, InvalidInput)]
    assert len(failures) == 1 and len(overlap_results) - len(failures) == 1
    assert failures[0].problems[0].code == "ALREADY_IN_FILE"
    assert set(failures[0].problems[0].conversation_ids) == {
        conversation_ids[15],
        conversation_ids[16],
    }

    final = await service.download_target(OWNER, created.id, FileFormat.JSON)
    full = json.loads(await _download(storage, final.key))
    ids_in_file = [c["conversation_metadata"]["conversation_id"] for c in full["conversations"]]
    expected = 2 + 12 + 3
    assert len(ids_in_file) == len(set(ids_in_file)) == expected
    assert full["training_file_metadata"]["total_conversations"] == expected


async def test_storage_failure_mid_write_leaves_the_previous_version_intact(
    service: TrainingFileService,
    instrumented: InstrumentedStorage,
    db: Database,
    storage: Storage,
    conversation_ids: list[UUID],
) -> None:
    created = await service.create_training_file(OWNER, "fragile", None, conversation_ids[:4])
    before = await _snapshot(db, storage)
    instrumented.fail_writes_after = 50_000
    with pytest.raises(InjectedFailure):
        await service.add_conversations(OWNER, created.id, conversation_ids[4:8])
    assert await _snapshot(db, storage) == before
    json.loads(await _download(storage, created.json_file_path))

    instrumented.fail_writes_after = None
    assert (await service.add_conversations(OWNER, created.id, conversation_ids[4:8])).version == 2


async def test_old_versions_are_swept_only_after_links_expire(
    service: TrainingFileService, storage: Storage, conversation_ids: list[UUID]
) -> None:
    from datetime import UTC, datetime, timedelta

    created = await service.create_training_file(OWNER, "sweepable", None, conversation_ids[:2])
    await service.add_conversations(OWNER, created.id, conversation_ids[2:3])
    assert await service.sweep_retired_objects() == 0
    assert await storage.exists(TRAINING_BUCKET, created.json_file_path)

    later = datetime.now(UTC) + timedelta(seconds=3601)
    assert await service.sweep_retired_objects(now=later) == 4
    for key in created.object_paths:
        assert not await storage.exists(TRAINING_BUCKET, key)
