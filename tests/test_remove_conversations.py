"""`removeConversations` over HTTP: the new version is copied from the old one's bytes around the
removed conversations, and equals a fresh build of the remaining ones byte for byte in all four
objects, with the same numbers and the same member ranges; it refuses what it should and then
changes nothing; the old objects are retired and swept as an add's; `check` stays consistent."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from graphql_api.config import Settings
from graphql_api.db import consistency
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.maintenance.verify import verify_file
from graphql_api.runtime import DatabaseUrls, Pools
from graphql_api.services import Services
from graphql_api.storage.base import CONVERSATION_BUCKET, TRAINING_BUCKET, Storage, read_all

from .conftest import OTHER_USER, USER, bearer, training_file_service
from .sources import Source, ids_of, import_demo
from .storage_wrappers import InstrumentedStorage
from .test_delete_training_file import _check, _check_env, past_the_link_lifetime, state
from .training_file_graphql import ADD, ARCHIVE, USER_ERRORS, add, create, errors_of, gql

STORAGE_BACKENDS = ("local", "s3")
API = "/api/training-files"
REMOVE = f"""
mutation($input: RemoveConversationsInput!) {{
  removeConversations(input: $input) {{
    trainingFile {{
      id version status conversationCount pairCount trainablePairCount
      qualitySummary {{ average minimum maximum humanReviewedCount humanReviewedPercentage }}
      scaffoldingDistribution {{
        personas {{ key count }} emotionalArcs {{ key count }} trainingTopics {{ key count }}
      }}
    }}
    {USER_ERRORS}
  }}
}}"""
PATH_COLUMNS = (
    "json_file_path",
    "jsonl_file_path",
    "openai_chat_file_path",
    "hf_dataset_file_path",
)
RANGE_COLUMNS = (
    "json_start",
    "json_end",
    "jsonl_start",
    "jsonl_end",
    "openai_chat_start",
    "openai_chat_end",
    "hf_dataset_start",
    "hf_dataset_end",
)
# What a build's time and a file's name change; everything else must be equal.
TIMESTAMP = re.compile(rb'"(created_date|last_updated)": "[^"]+"')
COMPARED_COLUMNS = (
    "conversation_count",
    "total_training_pairs",
    "trainable_pairs",
    "avg_quality_score",
    "min_quality_score",
    "max_quality_score",
    "human_reviewed_count",
    "scaffolding_distribution",
    "openai_chat_file_size",
    "hf_dataset_file_size",
)


@pytest.fixture
async def imported(
    db: Database, owner_writers: WriterPool, storage: Storage, tmp_path: Path
) -> list[Source]:
    return await import_demo(owner_writers, storage, tmp_path / "demo", 12, seed=31)


# -- helpers ------------------------------------------------------------------------------------


async def remove(client: httpx.AsyncClient, file_id: str, ids: Sequence[UUID]) -> dict[str, Any]:
    body = await gql(
        client,
        REMOVE,
        input={"trainingFileId": file_id, "conversationIds": [str(i) for i in ids]},
    )
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["removeConversations"]
    return payload


async def row(db: Database, file_id: str) -> dict[str, Any]:
    async with db.session() as conn:
        found = await conn.fetchrow("SELECT * FROM training_files WHERE id = $1", UUID(file_id))
    assert found is not None
    return dict(found)


async def junction(db: Database, file_id: str) -> list[tuple[Any, ...]]:
    """Each member's id, position and ranges, in file order."""
    async with db.session() as conn:
        found = await conn.fetch(
            f"SELECT conversation_id, position, {', '.join(RANGE_COLUMNS)}"
            " FROM training_file_conversations WHERE training_file_id = $1 ORDER BY position",
            UUID(file_id),
        )
    return [tuple(r) for r in found]


async def objects(db: Database, storage: Storage, file_id: str, name: str) -> list[bytes]:
    """The file's four objects, build times and name blanked."""
    current = await row(db, file_id)
    found = []
    for column in PATH_COLUMNS:
        data = await read_all(storage, TRAINING_BUCKET, current[column])
        found.append(TIMESTAMP.sub(b"T", data).replace(f'"{name}"'.encode(), b'"NAME"'))
    return found


async def assert_same_as_fresh(
    client: httpx.AsyncClient,
    db: Database,
    storage: Storage,
    file_id: str,
    name: str,
    expected: Sequence[UUID],
    fresh_name: str,
) -> None:
    """`file_id` equals a file created now of `expected`: objects, numbers, member ranges."""
    fresh = await create(client, fresh_name, expected)
    assert await objects(db, storage, file_id, name) == await objects(
        db, storage, fresh["id"], fresh_name
    )
    changed, built = await row(db, file_id), await row(db, fresh["id"])
    assert [changed[c] for c in COMPARED_COLUMNS] == [built[c] for c in COMPARED_COLUMNS]
    assert _body_lengths(changed) == _body_lengths(built)
    assert await junction(db, file_id) == await junction(db, fresh["id"])
    assert [m[0] for m in await junction(db, file_id)] == list(expected)
    await assert_ranges_hold_pieces(db, storage, file_id)
    await assert_check_finds_nothing(db, storage, file_id)


async def assert_check_finds_nothing(db: Database, storage: Storage, file_id: str) -> None:
    """What `training-files check` verifies of a file (its totals, its members' ranges, its
    objects) holds after the change."""
    async with db.session() as conn:
        record = await consistency.file(conn, UUID(file_id))
    assert record is not None
    assert await verify_file(db, storage, record) == []


def _body_lengths(current: dict[str, Any]) -> tuple[int, int]:
    return (
        current["json_body_end"] - current["json_body_start"],
        current["jsonl_body_end"] - current["jsonl_body_start"],
    )


async def assert_ranges_hold_pieces(db: Database, storage: Storage, file_id: str) -> None:
    """Every member's recorded range of every object holds that member's stored piece (the
    JSON one without its leading "," for the first member)."""
    current = await row(db, file_id)
    starts = (current["json_body_start"], current["jsonl_body_start"], 0, 0)
    stored = [await read_all(storage, TRAINING_BUCKET, current[c]) for c in PATH_COLUMNS]
    async with db.session() as conn:
        members = await conn.fetch(
            f"SELECT c.pieces_path, c.piece_sizes, {', '.join(f'j.{c}' for c in RANGE_COLUMNS)}"
            " FROM training_file_conversations j JOIN conversations c USING (conversation_id)"
            " WHERE j.training_file_id = $1 ORDER BY j.position",
            UUID(file_id),
        )
    for index, member in enumerate(members):
        data = await read_all(storage, CONVERSATION_BUCKET, member["pieces_path"])
        offset = 0
        for kind, size in enumerate(member["piece_sizes"]):
            piece = data[offset : offset + size]
            offset += size
            if kind == 0 and index == 0:
                assert piece.startswith(b",")
                piece = piece[1:]
            start, end = member[2 * kind + 2], member[2 * kind + 3]
            assert stored[kind][starts[kind] + start : starts[kind] + end] == piece


# -- the new version equals a fresh build ---------------------------------------------------------


async def test_removing_from_the_middle_equals_a_fresh_build_of_the_rest(
    client: httpx.AsyncClient, db: Database, storage: Storage, imported: list[Source]
) -> None:
    ids = ids_of(imported[:8])
    created = await create(client, "middle", ids)
    payload = await remove(client, created["id"], ids[3:5])
    assert payload["userErrors"] == []
    changed = payload["trainingFile"]
    assert changed["version"] == 2 and changed["status"] == "ACTIVE"
    assert changed["conversationCount"] == 6
    await assert_same_as_fresh(
        client, db, storage, created["id"], "middle", ids[:3] + ids[5:], "m2"
    )


async def test_first_last_and_non_adjacent_removals_each_equal_a_fresh_build(
    client: httpx.AsyncClient, db: Database, storage: Storage, imported: list[Source]
) -> None:
    ids = ids_of(imported[:10])
    created = await create(client, "shrinking", ids)
    remaining = list(ids)
    # The first (its successor loses its ","), the last, then several apart including the new
    # first and the new last.
    for step, gone in enumerate(([ids[0]], [ids[9]], [ids[1], ids[4], ids[6], ids[8]])):
        assert (await remove(client, created["id"], gone))["userErrors"] == []
        remaining = [i for i in remaining if i not in gone]
        await assert_same_as_fresh(
            client, db, storage, created["id"], "shrinking", remaining, f"fresh-{step}"
        )


async def test_removal_across_versions_then_re_adding_equals_fresh_builds(
    client: httpx.AsyncClient, db: Database, storage: Storage, imported: list[Source]
) -> None:
    ids = ids_of(imported[:9])
    created = await create(client, "grown", ids[:3])
    for chunk in (ids[3:6], ids[6:9]):
        assert (await add(client, created["id"], chunk))["userErrors"] == []
    gone = [ids[1], ids[4], ids[5], ids[8]]  # members of the create and of each add
    assert (await remove(client, created["id"], gone))["userErrors"] == []
    remaining = [i for i in ids if i not in gone]
    await assert_same_as_fresh(client, db, storage, created["id"], "grown", remaining, "g-rest")

    # The removed ones are free to come back, at the end, as any add's.
    assert (await add(client, created["id"], gone))["userErrors"] == []
    await assert_same_as_fresh(
        client, db, storage, created["id"], "grown", remaining + gone, "g-again"
    )
    assert (await row(db, created["id"]))["version"] == 5


async def test_a_removal_copies_the_old_objects_and_reads_no_conversation(
    pools: Pools, storage: Storage, imported: list[Source]
) -> None:
    instrumented = InstrumentedStorage(storage)
    service = training_file_service(pools, instrumented)
    ids = ids_of(imported[:6])
    created = await service.create_training_file(USER, "copied", None, ids)
    instrumented.reads.clear()
    instrumented.copied_from.clear()
    await service.remove_conversations(USER, created.id, [ids[0], ids[3]])
    assert not instrumented.reads
    # Only the old version's four objects are copied from, a range per gap.
    assert set(instrumented.copied_from) == {(TRAINING_BUCKET, k) for k in created.object_paths}
    assert all(n == 2 for n in instrumented.copied_from.values())


async def test_files_from_before_the_ranges_are_rebuilt_from_pieces_once(
    client: httpx.AsyncClient, db: Database, storage: Storage, imported: list[Source]
) -> None:
    """Junction rows of files built before migration 0009 have no ranges: the removal writes the
    remaining members from their pieces (or their files) instead, and records ranges where it
    can."""
    ids = ids_of(imported[:6])
    created = await create(client, "legacy", ids)
    blank = ", ".join(f"{c} = NULL" for c in RANGE_COLUMNS)
    async with db.session() as conn:
        await conn.execute(
            f"UPDATE training_file_conversations SET {blank} WHERE training_file_id = $1",
            UUID(created["id"]),
        )
    assert (await remove(client, created["id"], [ids[2]]))["userErrors"] == []
    await assert_same_as_fresh(
        client, db, storage, created["id"], "legacy", ids[:2] + ids[3:], "legacy-1"
    )

    # A member without stored pieces is rendered from its file, here as the new first member;
    # its length was not known in advance, so the version records no ranges (the next removal
    # rebuilds again).
    async with db.session() as conn:
        await conn.execute(
            f"UPDATE training_file_conversations SET {blank} WHERE training_file_id = $1",
            UUID(created["id"]),
        )
        await conn.execute(
            "UPDATE conversations SET pieces_path = NULL, piece_sizes = NULL"
            " WHERE conversation_id = $1",
            ids[1],
        )
    assert (await remove(client, created["id"], [ids[0]]))["userErrors"] == []
    fresh = await create(client, "legacy-2", ids[1:2] + ids[3:])
    assert await objects(db, storage, created["id"], "legacy") == await objects(
        db, storage, fresh["id"], "legacy-2"
    )
    assert {m[2] for m in await junction(db, created["id"])} == {None}
    await assert_check_finds_nothing(db, storage, created["id"])
    assert [m[:2] for m in await junction(db, created["id"])] == [
        (conversation, position) for position, conversation in enumerate(ids[1:2] + ids[3:])
    ]


# -- refusals change nothing -----------------------------------------------------------------------


async def test_conversations_not_in_the_file_are_named_and_nothing_changes(
    client: httpx.AsyncClient, db: Database, storage: Storage, imported: list[Source]
) -> None:
    ids = ids_of(imported[:4])
    created = await create(client, "strict", ids[:3])
    before = await state(db, storage)
    payload = await remove(client, created["id"], [ids[0], ids[3]])
    assert payload["trainingFile"] is None
    [error] = payload["userErrors"]
    assert error["code"] == "NOT_IN_FILE" and error["field"] == "conversationIds"
    assert error["conversationIds"] == [str(ids[3])] and str(ids[3]) in error["message"]

    rest = await client.post(
        f"{API}/{created['id']}/remove-conversations", json={"conversation_ids": [str(ids[3])]}
    )
    assert rest.status_code == 400
    assert [p["code"] for p in rest.json()["details"]] == ["NOT_IN_FILE"]
    assert await state(db, storage) == before


async def test_removing_every_conversation_is_refused(
    client: httpx.AsyncClient, db: Database, storage: Storage, imported: list[Source]
) -> None:
    ids = ids_of(imported[:2])
    created = await create(client, "keep-one", ids)
    before = await state(db, storage)
    payload = await remove(client, created["id"], ids)
    assert [e["code"] for e in payload["userErrors"]] == ["WOULD_BE_EMPTY"]
    assert "delete the file" in payload["userErrors"][0]["message"]
    for bad, code in (([], "NO_CONVERSATIONS"), ([ids[0], ids[0]], "DUPLICATE_IN_REQUEST")):
        assert [e["code"] for e in (await remove(client, created["id"], bad))["userErrors"]] == [
            code
        ]
    assert await state(db, storage) == before


async def test_another_users_file_is_forbidden_and_archived_files_are_not_active(
    client: httpx.AsyncClient,
    anonymous_client: httpx.AsyncClient,
    settings: Settings,
    db: Database,
    storage: Storage,
    imported: list[Source],
) -> None:
    ids = ids_of(imported[:3])
    created = await create(client, "guarded", ids)
    before = await state(db, storage)
    variables = {"input": {"trainingFileId": created["id"], "conversationIds": [str(ids[0])]}}
    other = bearer(settings, OTHER_USER)
    response = await anonymous_client.post(
        "/graphql", json={"query": REMOVE, "variables": variables}, headers=other
    )
    [(code, message)] = errors_of(response.json())
    assert code == "FORBIDDEN" and "another user" in message
    rest = await anonymous_client.post(
        f"{API}/{created['id']}/remove-conversations",
        json={"conversation_ids": [str(ids[0])]},
        headers=other,
    )
    assert rest.status_code == 403
    assert await state(db, storage) == before

    await gql(client, ARCHIVE, id=created["id"])
    payload = await remove(client, created["id"], ids[:1])
    assert [e["code"] for e in payload["userErrors"]] == ["FILE_NOT_ACTIVE"]
    assert (await row(db, created["id"]))["version"] == 1


# -- REST, retirement, check ------------------------------------------------------------------------


async def test_rest_removal_retires_the_old_objects_swept_after_the_link_lifetime(
    client: httpx.AsyncClient,
    services: Services,
    db: Database,
    database_urls: DatabaseUrls,
    storage: Storage,
    imported: list[Source],
    tmp_path: Path,
) -> None:
    ids = ids_of(imported[:5])
    created = await create(client, "swept", ids)
    old = {(await row(db, created["id"]))[c] for c in PATH_COLUMNS}
    response = await client.post(
        f"{API}/{created['id']}/remove-conversations", json={"conversation_ids": [str(ids[2])]}
    )
    assert response.status_code == 200, response.text
    record = response.json()["trainingFile"]
    assert record["version"] == 2 and record["conversation_count"] == 4
    new = {(await row(db, created["id"]))[c] for c in PATH_COLUMNS}
    assert not old & new

    env = _check_env(database_urls, storage, tmp_path / "data")
    report = await _check(env)
    assert report["consistent"] is True and report["findings"] == []

    # Retired, still there for links issued before; gone after the link lifetime.
    assert await services.training_files.sweep_retired_objects() == 0
    assert all([await storage.exists(TRAINING_BUCKET, key) for key in old])
    assert await services.training_files.sweep_retired_objects(now=past_the_link_lifetime()) == 4
    assert not any([await storage.exists(TRAINING_BUCKET, key) for key in old])
    assert set(await storage.list_keys(TRAINING_BUCKET)) == new
    report = await _check(env)
    assert report["consistent"] is True and report["findings"] == []

    # The file takes additions again as usual.
    body = await gql(
        client, ADD, input={"trainingFileId": created["id"], "conversationIds": [str(ids[2])]}
    )
    assert body["data"]["addConversations"]["userErrors"] == []
