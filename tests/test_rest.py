"""The seed's REST routes over HTTP through the app: its own testing checklist, then the errors.

Assertions read what the server left behind (database rows, stored objects) rather than
trusting the response or the service.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest

from graphql_api.app import create_app
from graphql_api.auth import mint_token
from graphql_api.config import Settings
from graphql_api.db.database import Database
from graphql_api.db.writers import LockKind, WriterPool
from graphql_api.runtime import Pools
from graphql_api.services import Services
from graphql_api.storage.base import CONVERSATION_BUCKET
from graphql_api.storage.local import LocalStorage

from . import product_rules as rules
from .conftest import OTHER_USER, USER, bearer
from .faults import FullStorage
from .sources import Source, documents_of, ids_of, import_demo

API = "/api/training-files"
RECORD_FIELDS = {
    "id",
    "name",
    "description",
    "json_file_path",
    "jsonl_file_path",
    "storage_bucket",
    "conversation_count",
    "total_training_pairs",
    "json_file_size",
    "jsonl_file_size",
    "avg_quality_score",
    "min_quality_score",
    "max_quality_score",
    "human_reviewed_count",
    "scaffolding_distribution",
    "status",
    "last_updated_at",
    "created_by",
    "created_at",
    "updated_at",
    "version",
    "trainable_pairs",
}


@pytest.fixture
async def sources(
    db: Database, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> list[Source]:
    """Six generated conversations, imported; their source files in generation order."""
    return await import_demo(owner_writers, storage, tmp_path / "demo", 6, seed=7)


@pytest.fixture
def conversation_ids(sources: list[Source]) -> list[UUID]:
    return ids_of(sources)


@asynccontextmanager
async def _app_client(settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """A client, as `USER`, of an app over `services` (some part of them failing for real)."""
    transport = httpx.ASGITransport(app=create_app(settings, services))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=bearer(settings, USER)
    ) as client:
        yield client


# -------------------------------------------------------------------- reading the outcome


async def _file_row(db: Database, name: str) -> dict[str, Any] | None:
    async with db.session() as conn:
        row = await conn.fetchrow("SELECT * FROM training_files WHERE name = $1", name)
    return dict(row) if row else None


async def _members(db: Database, file_id: UUID) -> list[UUID]:
    async with db.session() as conn:
        rows = await conn.fetch(
            "SELECT conversation_id FROM training_file_conversations"
            " WHERE training_file_id = $1 ORDER BY position",
            file_id,
        )
    return [r["conversation_id"] for r in rows]


def _stored(storage: LocalStorage, bucket: str, key: str) -> bytes:
    return (storage.root / bucket / key).read_bytes()


def _training_objects(storage: LocalStorage) -> dict[str, bytes]:
    root = storage.root / "training-files"
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


async def _snapshot(db: Database, storage: LocalStorage) -> tuple[Any, ...]:
    async with db.session() as conn:
        files = [dict(r) for r in await conn.fetch("SELECT * FROM training_files ORDER BY id")]
        members = [
            dict(r)
            for r in await conn.fetch(
                "SELECT * FROM training_file_conversations ORDER BY training_file_id, position"
            )
        ]
    return files, members, _training_objects(storage)


def _expected_statistics(sources: list[Source]) -> dict[str, Any]:
    """Quality, pair counts and distribution computed from the source files, by the rules."""
    documents = documents_of(sources)
    quality = rules.quality(documents)
    assert quality.average is not None and quality.minimum is not None
    assert quality.maximum is not None
    return {
        "total_training_pairs": sum(len(rules.pairs(d)) for d in documents),
        "trainable_pairs": sum(rules.trainable(d) for d in documents),
        "human_reviewed_count": quality.reviewed,
        "avg_quality_score": float(quality.average),
        "min_quality_score": float(quality.minimum),
        "max_quality_score": float(quality.maximum),
        "scaffolding_distribution": rules.file_distribution(documents),
    }


async def _create(
    client: httpx.AsyncClient, name: str, ids: list[UUID], **headers: str
) -> dict[str, Any]:
    response = await client.post(
        API, json={"name": name, "conversation_ids": [str(i) for i in ids]}, headers=headers
    )
    assert response.status_code == 201, response.text
    file: dict[str, Any] = response.json()["trainingFile"]
    return file


def _assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "details"} and isinstance(body["error"], str) and body["error"]
    for problem in body["details"]:
        assert set(problem) == {"code", "message", "field", "conversation_ids"}
    return body


# -------------------------------------------------------------------- the seed's checklist


async def test_1_create_training_file(
    client: httpx.AsyncClient, db: Database, storage: LocalStorage, sources: list[Source]
) -> None:
    chosen = ids_of(sources[:3])
    response = await client.post(
        API,
        json={
            "name": "test_training_file_001",
            "description": "Test training file for validation",
            "conversation_ids": [str(i) for i in chosen],
        },
    )

    assert response.status_code == 201, response.text
    file = response.json()["trainingFile"]
    row = await _file_row(db, "test_training_file_001")
    assert row is not None and file["id"] == str(row["id"])
    assert row["conversation_count"] == 3 and row["status"] == "active"
    assert row["description"] == "Test training file for validation"
    assert row["created_by"] == USER

    # Both objects exist at the recorded paths, with the recorded sizes.
    full = json.loads(_stored(storage, row["storage_bucket"], row["json_file_path"]))
    jsonl = _stored(storage, row["storage_bucket"], row["jsonl_file_path"])
    assert (
        len(_stored(storage, row["storage_bucket"], row["json_file_path"])) == row["json_file_size"]
    )
    assert len(jsonl) == row["jsonl_file_size"]
    assert [c["conversation_metadata"]["conversation_id"] for c in full["conversations"]] == [
        str(i) for i in chosen
    ]
    assert await _members(db, row["id"]) == chosen

    expected = _expected_statistics(sources[:3])
    for field, value in expected.items():
        assert file[field] == value, field
    assert float(row["avg_quality_score"]) == expected["avg_quality_score"]
    assert (
        full["training_file_metadata"]["scaffolding_distribution"]
        == (expected["scaffolding_distribution"])
    )

    # The seed's columns and types: ids strings, numbers numbers, timestamps ISO 8601.
    assert set(file) == RECORD_FIELDS
    assert file["created_by"] == str(USER) and file["version"] == 1
    assert (file["json_file_path"], file["jsonl_file_path"]) == (
        row["json_file_path"],
        row["jsonl_file_path"],
    )
    assert isinstance(file["avg_quality_score"], float)
    assert isinstance(file["json_file_size"], int) and isinstance(file["conversation_count"], int)
    for stamp in ("created_at", "updated_at", "last_updated_at"):
        assert datetime.fromisoformat(file[stamp]) == row[stamp]


async def test_2_add_conversations(
    client: httpx.AsyncClient, db: Database, storage: LocalStorage, sources: list[Source]
) -> None:
    conversation_ids = ids_of(sources)
    created = await _create(client, "grows", conversation_ids[:3])
    response = await client.post(
        f"{API}/{created['id']}/add-conversations",
        json={"conversation_ids": [str(i) for i in conversation_ids[3:5]]},
    )

    assert response.status_code == 200, response.text
    file = response.json()["trainingFile"]
    row = await _file_row(db, "grows")
    assert row is not None and row["conversation_count"] == file["conversation_count"] == 5
    assert await _members(db, row["id"]) == conversation_ids[:5]
    full = json.loads(_stored(storage, row["storage_bucket"], row["json_file_path"]))
    assert len(full["conversations"]) == 5
    lines = _stored(storage, row["storage_bucket"], row["jsonl_file_path"]).decode().splitlines()
    expected = _expected_statistics(sources[:5])
    assert len(lines) == expected["trainable_pairs"] + 1
    for field, value in expected.items():
        assert file[field] == value, field


async def test_3_duplicate_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, db: Database, storage: LocalStorage, conversation_ids: list[UUID]
) -> None:
    created = await _create(client, "dupes", conversation_ids[:3])
    before = await _snapshot(db, storage)

    response = await client.post(
        f"{API}/{created['id']}/add-conversations",
        json={"conversation_ids": [str(conversation_ids[0])]},
    )

    body = _assert_error(response, 400)
    assert body["error"] == f"Conversations already in training file: {conversation_ids[0]}"
    [problem] = body["details"]
    assert problem["code"] == "ALREADY_IN_FILE"
    assert problem["field"] == "conversation_ids"
    assert problem["conversation_ids"] == [str(conversation_ids[0])]
    assert await _snapshot(db, storage) == before


async def test_4_not_enriched_conversation_blocks_creation(
    client: httpx.AsyncClient, db: Database, storage: LocalStorage, conversation_ids: list[UUID]
) -> None:
    pending = uuid4()
    async with db.session() as conn:
        await conn.execute(
            "INSERT INTO conversations (conversation_id, enrichment_status)"
            " VALUES ($1, 'not_started')",
            pending,
        )

    response = await client.post(
        API,
        json={"name": "test_invalid", "conversation_ids": [str(conversation_ids[0]), str(pending)]},
    )

    body = _assert_error(response, 400)
    assert str(pending) in body["error"] and "enrich" in body["error"]
    [problem] = body["details"]
    assert problem["code"] == "NOT_ELIGIBLE" and problem["conversation_ids"] == [str(pending)]
    assert await _file_row(db, "test_invalid") is None
    assert _training_objects(storage) == {}


async def test_5_download_json(
    client: httpx.AsyncClient, db: Database, storage: LocalStorage, conversation_ids: list[UUID]
) -> None:
    await _create(client, "downloadable", conversation_ids[:3])
    row = await _file_row(db, "downloadable")
    assert row is not None

    response = await client.get(f"{API}/{row['id']}/download", params={"format": "json"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["filename"] == "downloadable.json"
    assert body["expires_in_seconds"] == 3600
    assert datetime.fromisoformat(body["expires_at"]).tzinfo is not None
    downloaded = await client.get(body["download_url"], headers={"Authorization": ""})
    assert downloaded.status_code == 200
    assert downloaded.content == _stored(storage, row["storage_bucket"], row["json_file_path"])
    full = json.loads(downloaded.content)
    assert full["training_file_metadata"]["total_conversations"] == 3
    assert 'filename="downloadable.json"' in downloaded.headers["content-disposition"]


async def test_6_download_jsonl(
    client: httpx.AsyncClient, db: Database, storage: LocalStorage, conversation_ids: list[UUID]
) -> None:
    await _create(client, "lines", conversation_ids[:3])
    row = await _file_row(db, "lines")
    assert row is not None

    response = await client.get(f"{API}/{row['id']}/download", params={"format": "jsonl"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["filename"], body["expires_in_seconds"]) == ("lines.jsonl", 3600)
    downloaded = await client.get(body["download_url"])
    assert downloaded.status_code == 200
    assert downloaded.content == _stored(storage, row["storage_bucket"], row["jsonl_file_path"])
    lines = [json.loads(line) for line in downloaded.text.splitlines()]
    assert len(lines) == lines[0]["_meta"]["total_pairs"] + 1
    assert lines[0]["_meta"]["total_pairs"] == row["trainable_pairs"]
    assert all(line["target_response"] is not None for line in lines[1:])


async def test_7_list_active_files_newest_first(
    client: httpx.AsyncClient, settings: Settings, db: Database, conversation_ids: list[UUID]
) -> None:
    names = ["first", "second", "third", "theirs"]
    for index, name in enumerate(names[:3]):
        await _create(client, name, [conversation_ids[index]])
    await _create(client, "theirs", [conversation_ids[3]], **bearer(settings, OTHER_USER))
    async with db.session() as conn:
        await conn.execute("UPDATE training_files SET status = 'archived' WHERE name = 'second'")
        expected = [
            str(r["id"])
            for r in await conn.fetch(
                "SELECT id FROM training_files WHERE status = 'active'"
                " ORDER BY created_at DESC, id DESC"
            )
        ]

    response = await client.get(API)

    assert response.status_code == 200, response.text
    files = response.json()["files"]
    assert [f["name"] for f in files] == ["theirs", "third", "first"]
    assert [f["id"] for f in files] == expected
    assert all(set(f) == RECORD_FIELDS and f["status"] == "active" for f in files)


async def test_list_returns_every_active_file_across_pages(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.session() as conn:
        await conn.execute(
            "INSERT INTO training_files (name, created_by, created_at)"
            " SELECT 'bulk-' || g, $1, now() - g * interval '1 second'"
            " FROM generate_series(1, 230) AS g",
            USER,
        )

    response = await client.get(API)

    assert response.status_code == 200
    names = [f["name"] for f in response.json()["files"]]
    assert names == [f"bulk-{g}" for g in range(1, 231)]


# -------------------------------------------------------------------- errors


def _routes(file_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("GET", API, None),
        ("POST", API, {"name": "anonymous", "conversation_ids": [str(uuid4())]}),
        ("POST", f"{API}/{file_id}/add-conversations", {"conversation_ids": [str(uuid4())]}),
        ("GET", f"{API}/{file_id}/download?format=json", None),
        ("DELETE", f"{API}/{file_id}", None),
    ]


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-jwt", "Basic dXNlcjpwYXNz"])
async def test_every_route_needs_a_valid_token(
    anonymous_client: httpx.AsyncClient,
    settings: Settings,
    db: Database,
    storage: LocalStorage,
    conversation_ids: list[UUID],
    authorization: str | None,
) -> None:
    file = await _create(anonymous_client, "owned", conversation_ids[:1], **bearer(settings, USER))
    before = await _snapshot(db, storage)
    headers = {"Authorization": authorization} if authorization else {}
    for method, path, body in _routes(file["id"]):
        response = await anonymous_client.request(method, path, json=body, headers=headers)
        _assert_error(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
    assert await _snapshot(db, storage) == before


async def test_an_expired_token_is_refused(
    anonymous_client: httpx.AsyncClient, settings: Settings
) -> None:
    token = mint_token(
        USER, secret=settings.jwt_secret, ttl_seconds=60, now=datetime(2020, 1, 1, tzinfo=UTC)
    )
    response = await anonymous_client.get(API, headers={"Authorization": f"Bearer {token}"})
    assert "expired" in _assert_error(response, 401)["error"]


async def test_unknown_file_is_404(client: httpx.AsyncClient, conversation_ids: list[UUID]) -> None:
    missing = uuid4()
    add = await client.post(
        f"{API}/{missing}/add-conversations", json={"conversation_ids": [str(conversation_ids[0])]}
    )
    assert str(missing) in _assert_error(add, 404)["error"]
    download = await client.get(f"{API}/{missing}/download", params={"format": "json"})
    assert str(missing) in _assert_error(download, 404)["error"]


@pytest.mark.parametrize("path", ["add-conversations", "download?format=json"])
async def test_an_id_that_is_not_a_uuid_is_400_naming_it(
    client: httpx.AsyncClient, path: str
) -> None:
    method = "POST" if path == "add-conversations" else "GET"
    response = await client.request(
        method, f"{API}/not-a-uuid/{path}", json={"conversation_ids": [str(uuid4())]}
    )
    assert "not-a-uuid" in _assert_error(response, 400)["error"]


@pytest.mark.parametrize("query", ["", "?format=", "?format=xml", "?format=JSON", "?fmt=json"])
async def test_download_needs_format_json_or_jsonl(
    client: httpx.AsyncClient, conversation_ids: list[UUID], query: str
) -> None:
    file = await _create(client, "formats", conversation_ids[:1])
    response = await client.get(f"{API}/{file['id']}/download{query}")
    body = _assert_error(response, 400)
    assert "json" in body["error"] and "jsonl" in body["error"]
    assert [p["field"] for p in body["details"]] == ["format"]


async def test_another_users_file_is_readable_but_not_changeable(
    client: httpx.AsyncClient,
    settings: Settings,
    db: Database,
    storage: LocalStorage,
    conversation_ids: list[UUID],
) -> None:
    file = await _create(client, "mine", conversation_ids[:2])
    before = await _snapshot(db, storage)
    other = bearer(settings, OTHER_USER)

    add = await client.post(
        f"{API}/{file['id']}/add-conversations",
        json={"conversation_ids": [str(conversation_ids[2])]},
        headers=other,
    )
    assert _assert_error(add, 403)["details"][0]["code"] == "FORBIDDEN"
    assert await _snapshot(db, storage) == before

    # Everyone authenticated reads every file (the seed's policy), downloads included.
    listed = await client.get(API, headers=other)
    assert [f["id"] for f in listed.json()["files"]] == [file["id"]]
    download = await client.get(f"{API}/{file['id']}/download?format=jsonl", headers=other)
    assert download.status_code == 200


async def test_adding_to_an_archived_file_is_400(
    client: httpx.AsyncClient, db: Database, conversation_ids: list[UUID]
) -> None:
    file = await _create(client, "shelved", conversation_ids[:1])
    async with db.session() as conn:
        await conn.execute(
            "UPDATE training_files SET status = 'archived' WHERE id = $1", UUID(file["id"])
        )
    response = await client.post(
        f"{API}/{file['id']}/add-conversations",
        json={"conversation_ids": [str(conversation_ids[1])]},
    )
    body = _assert_error(response, 400)
    assert "archived" in body["error"] and body["details"][0]["code"] == "FILE_NOT_ACTIVE"
    assert await _members(db, UUID(file["id"])) == conversation_ids[:1]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "valid JSON"),
        (b"", "valid JSON"),
        (b"\xff\xfe\x00", "valid JSON"),
        (b"[" * 100_000, "valid JSON"),
        (b'["a", "b"]', "JSON object, got an array"),
        (b'"text"', "JSON object, got a string"),
        (b"null", "JSON object, got null"),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_400(
    client: httpx.AsyncClient,
    db: Database,
    conversation_ids: list[UUID],
    content: bytes,
    message: str,
) -> None:
    file = await _create(client, "target", conversation_ids[:1])
    for path in (API, f"{API}/{file['id']}/add-conversations"):
        response = await client.post(
            path, content=content, headers={"Content-Type": "application/json"}
        )
        body = _assert_error(response, 400)
        assert message in body["error"]
        assert [p["code"] for p in body["details"]] == ["INVALID_BODY"]
    assert await _members(db, UUID(file["id"])) == conversation_ids[:1]


@pytest.mark.parametrize("ids", ["abc", {"id": "x"}, None, 7])
async def test_conversation_ids_must_be_a_list(
    client: httpx.AsyncClient, db: Database, ids: object
) -> None:
    body = _assert_error(await client.post(API, json={"name": "x", "conversation_ids": ids}), 400)
    assert "list" in body["error"]
    assert body["details"][0]["field"] == "conversation_ids"
    assert await _file_row(db, "x") is None


async def test_several_problems_are_all_reported(client: httpx.AsyncClient, db: Database) -> None:
    unknown = uuid4()
    body = _assert_error(
        await client.post(API, json={"name": "", "conversation_ids": [str(unknown), "nope"]}), 400
    )
    codes = [p["code"] for p in body["details"]]
    assert set(codes) == {"INVALID_NAME", "INVALID_ID", "NOT_FOUND"}
    for problem in body["details"]:
        assert problem["message"] in body["error"]
    [not_found] = [p for p in body["details"] if p["code"] == "NOT_FOUND"]
    assert not_found["conversation_ids"] == [str(unknown)]
    async with db.session() as conn:
        assert await conn.fetchval("SELECT count(*) FROM training_files") == 0


async def test_an_oversized_body_is_413(
    client: httpx.AsyncClient, settings: Settings, db: Database
) -> None:
    huge = {
        "name": "big",
        "description": "x" * settings.max_request_bytes,
        "conversation_ids": [str(uuid4())],
    }
    response = await client.post(API, json=huge)
    assert _assert_error(response, 413)["details"][0]["code"] == "BODY_TOO_LARGE"
    assert await _file_row(db, "big") is None


async def test_an_unexpected_failure_is_a_masked_500_with_a_logged_id(
    client: httpx.AsyncClient,
    db: Database,
    storage: LocalStorage,
    conversation_ids: list[UUID],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A real fault, no fake service: a stored file no longer parses and its row has no hash
    # to catch it, so building the file fails in a way nothing anticipates.
    async with db.session() as conn:
        path = await conn.fetchval(
            "UPDATE conversations SET enriched_file_sha256 = NULL, pieces_path = NULL,"
            " piece_sizes = NULL WHERE conversation_id = $1"
            " RETURNING enriched_file_path",
            conversation_ids[0],
        )
    (storage.root / CONVERSATION_BUCKET / path).write_bytes(b'{"s3cr3t": ')
    with caplog.at_level(logging.ERROR, logger="graphql_api.rest"):
        response = await client.post(
            API, json={"name": "boom", "conversation_ids": [str(conversation_ids[0])]}
        )

    assert response.status_code == 500
    body = response.json()
    assert set(body) == {"error", "error_id"} and body["error"] == "Internal server error"
    for leak in ("s3cr3t", "Traceback", "JSONDecodeError", "Expecting", str(storage.root), path):
        assert leak not in response.text, leak
    [record] = [r for r in caplog.records if body["error_id"] in r.getMessage()]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], json.JSONDecodeError)
    assert await _snapshot(db, storage) == ([], [], {})


# -------------------------------------------------------------------- hostile values


@pytest.mark.parametrize(
    ("field", "value", "code", "message"),
    [
        (
            "name",
            "a\ud800",
            "INVALID_NAME",
            "name must not contain unpaired surrogates (U+D800 to U+DFFF)",
        ),
        (
            "description",
            "a\x00b",
            "INVALID_DESCRIPTION",
            "description must not contain NUL characters (U+0000)",
        ),
        (
            "description",
            "\udfff",
            "INVALID_DESCRIPTION",
            "description must not contain unpaired surrogates (U+D800 to U+DFFF)",
        ),
    ],
)
async def test_text_postgresql_cannot_store_is_400_naming_the_field(
    client: httpx.AsyncClient,
    db: Database,
    storage: LocalStorage,
    conversation_ids: list[UUID],
    field: str,
    value: str,
    code: str,
    message: str,
) -> None:
    given = {"name": "fine", "description": "fine", "conversation_ids": [str(conversation_ids[0])]}
    given[field] = value
    # json.dumps escapes the surrogate; httpx's own encoder would refuse it.
    response = await client.post(
        API, content=json.dumps(given), headers={"Content-Type": "application/json"}
    )
    assert _assert_error(response, 400) == {
        "error": message,
        "details": [{"code": code, "message": message, "field": field, "conversation_ids": []}],
    }
    assert await _snapshot(db, storage) == ([], [], {})


async def test_25000_ids_are_refused_by_their_count_alone(
    client: httpx.AsyncClient, db: Database, storage: LocalStorage, conversation_ids: list[UUID]
) -> None:
    file = await _create(client, "small", conversation_ids[:1])
    before = await _snapshot(db, storage)
    # 25,000 UUIDs would pass this route's own 256 KiB cap, so most of these are short
    # non-ids: past the cap of 80 none of them is looked at one by one.
    ids: list[object] = [str(i) for i in conversation_ids[1:]] + list(range(25_000 - 5))
    too_many = {
        "code": "TOO_MANY_CONVERSATIONS",
        "message": "at most 80 conversations per request, got 25000",
        "field": "conversation_ids",
        "conversation_ids": [],
    }

    created = await client.post(API, json={"name": "huge", "conversation_ids": ids})
    added = await client.post(
        f"{API}/{file['id']}/add-conversations", json={"conversation_ids": ids}
    )

    for response in (created, added):
        assert _assert_error(response, 400)["details"] == [too_many]
    assert await _snapshot(db, storage) == before


# -------------------------------------------------------------------- unavailable dependencies


def _unavailable(code: str, message: str) -> dict[str, Any]:
    return {
        "error": message,
        "details": [{"code": code, "message": message, "field": None, "conversation_ids": []}],
    }


async def test_full_storage_is_503_with_retry_after(
    settings: Settings,
    pools: Pools,
    db: Database,
    storage: LocalStorage,
    conversation_ids: list[UUID],
    caplog: pytest.LogCaptureFixture,
) -> None:
    full = Services.of(settings, pools, FullStorage(storage))  # type: ignore[arg-type]
    caplog.set_level(logging.DEBUG, logger="graphql_api.rest")
    async with _app_client(settings, full) as client:
        response = await client.post(
            API, json={"name": "full", "conversation_ids": [str(conversation_ids[0])]}
        )

    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    assert _assert_error(response, 503) == _unavailable(
        "STORAGE_UNAVAILABLE", "storage is full; nothing changed, retry later"
    )
    assert [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records] == [
        (
            "WARNING",
            "REST POST /api/training-files: STORAGE_UNAVAILABLE"
            " (StorageError: no space left on device)",
            None,
        )
    ]
    assert await _snapshot(db, storage) == ([], [], {})


async def test_a_file_locked_by_another_writer_is_503_busy(
    settings: Settings,
    pools: Pools,
    owner_writers: WriterPool,
    db: Database,
    storage: LocalStorage,
    conversation_ids: list[UUID],
) -> None:
    # Writers that wait one second for a file's lock (the shipped wait is much longer).
    writers = WriterPool(pools.writers.pool, timeout_seconds=1)
    impatient = Services(settings, pools.db, writers, pools.maintenance, storage)
    async with _app_client(settings, impatient) as client:
        file = await _create(client, "held", conversation_ids[:1])
        before = await _snapshot(db, storage)
        async with owner_writers.exclusive(LockKind.TRAINING_FILE, UUID(file["id"])):
            response = await client.post(
                f"{API}/{file['id']}/add-conversations",
                json={"conversation_ids": [str(conversation_ids[1])]},
            )

    assert response.headers["retry-after"] == "1"
    assert _assert_error(response, 503) == _unavailable(
        "BUSY",
        f"{file['id']} is being changed by other requests and did not come free within 1 s;"
        " nothing changed, retry",
    )
    assert await _snapshot(db, storage) == before


async def test_an_unreachable_database_is_503(
    settings: Settings, services: Services, tmp_path: Path
) -> None:
    # A socket directory no server listens in: every connection attempt fails for real.
    nowhere = await asyncpg.create_pool(
        host=str(tmp_path), port=5432, user="nobody", database="nothing", min_size=0, max_size=1
    )
    down = Services(
        settings, Database(nowhere), services.writers, services.maintenance, services.storage
    )
    try:
        async with _app_client(settings, down) as client:
            response = await client.get(API)
    finally:
        await nowhere.close()

    assert response.headers["retry-after"] == "5"
    assert _assert_error(response, 503) == _unavailable(
        "DATABASE_UNAVAILABLE", "the database is unreachable; retry later"
    )
