"""graphql_api.conversations.importer: real files, the real PostgreSQL, real storage."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from graphql_api.conversations.importer import (
    ConversationImporter,
    Outcome,
    find_conversation_files,
)
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.runtime import Pools
from graphql_api.storage.base import CONVERSATION_BUCKET, TRAINING_BUCKET, read_all
from graphql_api.storage.local import LocalStorage

from .conftest import USER, require_examples, training_file_service
from .conversation_documents import with_scores

OLD_STYLE_PERSONAS = {
    "david-chen-scenario-enriched.json": "pragmatic_optimist",
    "jennifer-complex-scenario-enriched.json": "anxious_planner",
    "marcus-complex-scenario-enriched.json": "overwhelmed_avoider",
}


async def _row(db: Database, conversation_id: UUID) -> dict:
    async with db.session() as conn:
        row = await conn.fetchrow(
            "SELECT * FROM conversations WHERE conversation_id = $1", conversation_id
        )
    assert row is not None
    return dict(row)


async def _stored_keys(storage: LocalStorage) -> list[str]:
    root = Path(storage.url.removeprefix("file://")) / CONVERSATION_BUCKET
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def test_real_examples_import_with_the_warnings_they_really_have(
    db: Database, owner_writers: WriterPool, storage: LocalStorage
) -> None:
    paths = require_examples()
    importer = ConversationImporter(owner_writers, storage)
    results = [await importer.import_file(p) for p in paths]

    assert [r.outcome for r in results] == [Outcome.IMPORTED] * len(paths)
    by_name = {Path(r.source).name: r for r in results}
    codes = {name: {w.code for w in r.warnings} for name, r in by_name.items()}
    assert "unknown_key" in codes["enriched-1.json"]  # input_parameters
    assert "enum_drift" in codes["enriched-2.json"]  # couple_conflict_to_alignment
    assert "missing_optional_v4_key" in codes["david-chen-scenario-enriched.json"]
    for name in OLD_STYLE_PERSONAS:
        assert {"derived_persona_key", "serialization_artifact"} <= codes[name]

    for path in paths:
        document = json.loads(path.read_bytes())
        uuid = UUID(document["dataset_metadata"]["dataset_name"].removeprefix("fp_conversation_"))
        row = await _row(db, uuid)
        pairs = document["training_pairs"]
        assert row["enrichment_status"] == "completed"
        assert row["pair_count"] == len(pairs)
        assert row["trainable_pair_count"] == sum(p["target_response"] is not None for p in pairs)
        scores = [p["training_metadata"]["quality_score"] for p in pairs]
        assert float(row["quality_sum"]) == pytest.approx(sum(scores))
        assert float(row["quality_min"]) == min(scores)
        assert float(row["quality_max"]) == max(scores)
        assert row["enriched_file_size"] == path.stat().st_size
        stored = await read_all(storage, CONVERSATION_BUCKET, row["enriched_file_path"])
        assert stored == path.read_bytes()
        report = row["validation_report"]
        assert report["valid"] is True and report["warnings"]
        # jsonb would have stored years_experience before core_philosophy (shorter keys first).
        assert list(row["consultant_profile"]) == list(document["consultant_profile"])
        assert row["consultant_profile"] == document["consultant_profile"]
        if path.name in OLD_STYLE_PERSONAS:
            assert row["persona_key"] == OLD_STYLE_PERSONAS[path.name]

    enriched_1 = await _row(db, UUID("2e6e3685-eb74-46c9-b11d-13a3e162a4b5"))
    assert enriched_1["persona_key"] == "anxious_planner"
    assert enriched_1["training_topic_key"] == "eldercare_costs"
    async with db.session() as conn:
        personas = await conn.fetchval(
            "SELECT count(*) FROM conversations WHERE coalesce(persona_key, '') <> ''"
        )
    assert personas == len(paths)  # every real conversation counts in a persona distribution


def _constructed(path: Path, conversation_id: str, *scores: float | None) -> dict[str, Any]:
    document = with_scores(*scores)
    document["dataset_metadata"]["dataset_name"] = f"fp_conversation_{conversation_id}"
    # Keys in an order jsonb would not keep: longest first, nested too.
    document["consultant_profile"] = {
        "communication_style": {"tone": "warm", "avoid": ["jargon"], "techniques": ["ask"]},
        "years_experience": 15,
        "expertise": "fee-only planning",
        "name": "Elena Morales, CFP",
        "business": "Pathways Financial Planning",
        "core_philosophy": {f"principle_{i}": f"principle {i}" for i in range(5, 0, -1)},
    }
    path.write_text(json.dumps(document))
    return document


async def test_unscored_pairs_are_stored_at_the_conversation_score(
    db: Database, pools: Pools, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> None:
    first_id, second_id = (
        "0d9f6ad4-4cc5-4e0e-9d53-3f2c3b0b9a01",
        "0d9f6ad4-4cc5-4e0e-9d53-3f2c3b0b9a02",
    )
    profile = _constructed(tmp_path / "a.json", first_id, 2, None, None, None)["consultant_profile"]
    _constructed(tmp_path / "b.json", second_id, 5, 5)
    importer = ConversationImporter(owner_writers, storage)
    for name in ("a.json", "b.json"):
        assert (await importer.import_file(tmp_path / name)).outcome is Outcome.IMPORTED

    first = await _row(db, UUID(first_id))
    assert first["quality_score"] == Decimal("2.00")
    assert (first["quality_sum"], first["quality_count"]) == (Decimal(8), 4)
    assert (first["quality_min"], first["quality_max"]) == (Decimal(2), Decimal(2))
    assert list(first["consultant_profile"]) == list(profile)
    assert list(first["consultant_profile"]["core_philosophy"]) == list(profile["core_philosophy"])

    # Six pairs 2, 2, 2, 2, 5, 5: the training file says 3.00 (dropping unscored pairs: 4.00).
    service = training_file_service(pools, storage)
    record = await service.create_training_file(USER, "fallback", None, [first_id, second_id])
    assert record.json_file_path is not None
    full = json.loads(await read_all(storage, TRAINING_BUCKET, record.json_file_path))
    quality = full["training_file_metadata"]["quality_summary"]
    assert (quality["avg_quality_score"], quality["min_quality_score"]) == (3, 2)
    assert quality["max_quality_score"] == 5
    assert list(full["consultant_profile"]) == list(profile)


async def test_generated_conversations_import_and_reimport_changes_nothing(
    db: Database, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> None:
    paths = write_demo_set(tmp_path / "demo", 12, seed=7)
    importer = ConversationImporter(owner_writers, storage)
    first = [await importer.import_file(p) for p in find_conversation_files([tmp_path / "demo"])]
    assert [r.outcome for r in first] == [Outcome.IMPORTED] * len(paths)

    async with db.session() as conn:
        before = await conn.fetch("SELECT * FROM conversations ORDER BY conversation_id")
    keys_before = await _stored_keys(storage)

    again = [await importer.import_file(p) for p in paths]
    assert [r.outcome for r in again] == [Outcome.UNCHANGED] * len(paths)
    async with db.session() as conn:
        after = await conn.fetch("SELECT * FROM conversations ORDER BY conversation_id")
    assert [dict(r) for r in after] == [dict(r) for r in before]
    assert await _stored_keys(storage) == keys_before


async def test_a_changed_file_replaces_the_old_one_when_not_in_a_training_file(
    db: Database, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> None:
    [path] = write_demo_set(tmp_path, 1, seed=3)
    importer = ConversationImporter(owner_writers, storage)
    first = await importer.import_file(path)
    old_key = (await _row(db, first.conversation_id))["enriched_file_path"]

    document = json.loads(path.read_bytes())
    document["training_pairs"][0]["training_metadata"]["quality_score"] = 1
    path.write_text(json.dumps(document))
    second = await importer.import_file(path)

    assert second.outcome is Outcome.UPDATED
    row = await _row(db, first.conversation_id)
    assert row["enriched_file_path"] != old_key
    # The old file and its rendered pieces are gone; the new ones are stored.
    assert await _stored_keys(storage) == sorted([row["enriched_file_path"], row["pieces_path"]])
    assert float(row["quality_min"]) == 1


async def test_a_changed_file_is_refused_once_the_conversation_is_in_a_training_file(
    db: Database, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> None:
    [path] = write_demo_set(tmp_path, 1, seed=5)
    importer = ConversationImporter(owner_writers, storage)
    result = await importer.import_file(path)
    async with db.session() as conn:
        file_id = await conn.fetchval(
            "INSERT INTO training_files (name, created_by) VALUES ('in use', gen_random_uuid())"
            " RETURNING id"
        )
        await conn.execute(
            "INSERT INTO training_file_conversations"
            " (training_file_id, conversation_id, position, added_by)"
            " VALUES ($1, $2, 0, gen_random_uuid())",
            file_id,
            result.conversation_id,
        )
    before = await _row(db, result.conversation_id)
    keys_before = await _stored_keys(storage)

    document = json.loads(path.read_bytes())
    document["training_pairs"][0]["current_user_input"] = "Something else entirely."
    path.write_text(json.dumps(document))
    refused = await importer.import_file(path)

    assert refused.outcome is Outcome.REFUSED
    assert "'in use'" in refused.problems[0]
    assert await _row(db, result.conversation_id) == before
    assert await _stored_keys(storage) == keys_before


BAD_FILES = {
    "not_json.json": b"{ this is not json",
    "not_utf8.json": b'{"training_pairs": "\xff\xfe"}',
    "no_pairs.json": b'{"dataset_metadata": {}}',
    "pair_without_turn.json": json.dumps(
        {"training_pairs": [{"system_prompt": "x", "current_user_input": "hi"}]}
    ).encode(),
    "escaping_id.json": json.dumps(
        {
            "dataset_metadata": {"dataset_name": "fp_conversation_../../x"},
            "training_pairs": [
                {"turn_number": 1, "system_prompt": "x", "current_user_input": "hi"}
            ],
        }
    ).encode(),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
async def test_blocked_files_are_reported_and_leave_nothing_behind(
    db: Database, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    path.write_bytes(BAD_FILES[name])
    result = await ConversationImporter(owner_writers, storage).import_file(path)

    assert result.outcome is Outcome.BLOCKED
    assert result.source == str(path)
    assert result.problems and all(p.strip() for p in result.problems)
    async with db.session() as conn:
        assert await conn.fetchval("SELECT count(*) FROM conversations") == 0
    assert await _stored_keys(storage) == []


async def test_every_reason_of_a_blocked_file_is_reported(
    db: Database, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> None:
    path = tmp_path / "many.json"
    path.write_text(
        json.dumps(
            {
                "training_pairs": [
                    {"turn_number": "one", "current_user_input": "hi"},
                    {"turn_number": 2, "system_prompt": 5},
                ]
            }
        )
    )
    result = await ConversationImporter(owner_writers, storage).import_file(path)
    assert result.outcome is Outcome.BLOCKED
    text = "\n".join(result.problems)
    assert "training_pairs[0].turn_number" in text
    assert "training_pairs[0].system_prompt" in text
    assert "training_pairs[1].system_prompt" in text
    assert "training_pairs[1].current_user_input" in text
