"""Import through the API: `importConversations` (GraphQL multipart requests) and
`POST /api/conversations`, over real HTTP through the ASGI app, on local storage and S3 (moto),
with the shipped limits. Expected values come from the files themselves."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from graphql_api.db.database import Database, become_user
from graphql_api.demo import write_demo_set
from graphql_api.runtime import DatabaseUrls, Pools
from graphql_api.storage.base import CONVERSATION_BUCKET, Storage, read_all

from .conftest import OTHER_USER, USER, bearer, require_examples, training_file_service
from .sources import read_source

STORAGE_BACKENDS = ["local", "s3"]

MiB = 1024 * 1024
MAX_FILE = 25 * MiB  # MAX_IMPORT_FILE_BYTES's default

IMPORT = """
mutation Import($files: [Upload!]!) {
  importConversations(files: $files) {
    results {
      filename outcome
      conversation { id title pairCount }
      blockers { code path message }
      warnings { code path }
      userErrors { code field message }
    }
    userErrors { code field message }
  }
}
"""


def _form(files: list[tuple[str, bytes]]) -> tuple[dict[str, str], dict[str, Any]]:
    """The multipart request spec's fields and files for `IMPORT`."""
    operations = {"query": IMPORT, "variables": {"files": [None] * len(files)}}
    file_map = {str(i): [f"variables.files.{i}"] for i in range(len(files))}
    data = {"operations": json.dumps(operations), "map": json.dumps(file_map)}
    parts = {str(i): (name, content, "application/json") for i, (name, content) in enumerate(files)}
    return data, parts


async def _upload(client: httpx.AsyncClient, files: list[tuple[str, bytes]]) -> dict[str, Any]:
    data, parts = _form(files)
    response = await client.post("/graphql", data=data, files=parts)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["importConversations"]
    return payload


async def _stored(storage: Storage) -> list[str]:
    return await storage.list_keys(CONVERSATION_BUCKET)


async def _rows(db: Database) -> list[dict[str, Any]]:
    async with db.session() as conn:
        rows = await conn.fetch("SELECT * FROM conversations ORDER BY conversation_id")
    return [dict(r) for r in rows]


async def _nothing_stored(db: Database, storage: Storage) -> None:
    assert await _stored(storage) == []
    assert await _rows(db) == []


@pytest.fixture
def demo(tmp_path: Path) -> list[Path]:
    return write_demo_set(tmp_path / "demo", 3, seed=11)


# -- files that import ----------------------------------------------------------------------


async def test_real_files_import_in_one_request_with_their_warnings(
    client: httpx.AsyncClient, db: Database, storage: Storage
) -> None:
    paths = require_examples()
    payload = await _upload(client, [(p.name, p.read_bytes()) for p in paths])

    assert payload["userErrors"] == []
    results = payload["results"]
    assert [r["filename"] for r in results] == [p.name for p in paths]
    assert {r["outcome"] for r in results} == {"IMPORTED"}
    by_name = {r["filename"]: r for r in results}
    assert "unknown_key" in {w["code"] for w in by_name["enriched-1.json"]["warnings"]}
    assert "enum_drift" in {w["code"] for w in by_name["enriched-2.json"]["warnings"]}
    for path in paths:
        source = read_source(path)
        result = by_name[path.name]
        assert (result["blockers"], result["userErrors"]) == ([], [])
        assert result["conversation"]["id"] == str(source.id)
        assert result["conversation"]["pairCount"] == len(source.document["training_pairs"])
    rows = {r["conversation_id"]: r for r in await _rows(db)}
    assert len(rows) == len(paths)
    for path in paths:
        row = rows[read_source(path).id]
        assert row["created_by"] == USER
        assert row["enriched_file_size"] == path.stat().st_size
        assert await read_all(storage, CONVERSATION_BUCKET, row["enriched_file_path"]) == (
            path.read_bytes()
        )


async def test_generated_files_import_and_a_second_upload_changes_nothing(
    client: httpx.AsyncClient, db: Database, storage: Storage, demo: list[Path]
) -> None:
    files = [(p.name, p.read_bytes()) for p in demo]
    first = await _upload(client, files)
    assert [r["outcome"] for r in first["results"]] == ["IMPORTED"] * len(demo)
    ids = [str(read_source(p).id) for p in demo]
    assert [r["conversation"]["id"] for r in first["results"]] == ids
    rows, keys = await _rows(db), await _stored(storage)

    again = await _upload(client, files)
    assert [r["outcome"] for r in again["results"]] == ["UNCHANGED"] * len(demo)
    assert [r["conversation"]["id"] for r in again["results"]] == [
        r["conversation"]["id"] for r in first["results"]
    ]
    assert await _rows(db) == rows
    assert await _stored(storage) == keys
    # Each conversation is its file and its rendered pieces, nothing else.
    assert sorted(keys) == sorted(
        k for r in rows for k in (r["enriched_file_path"], r["pieces_path"])
    )


async def test_a_changed_file_replaces_the_conversation_and_its_old_objects(
    client: httpx.AsyncClient, db: Database, storage: Storage, demo: list[Path]
) -> None:
    source = read_source(demo[0])
    await _upload(client, [("a.json", demo[0].read_bytes())])
    changed = dict(source.document, consultant_profile={"name": "Someone else"})
    payload = await _upload(client, [("a.json", json.dumps(changed).encode())])

    assert payload["results"][0]["outcome"] == "UPDATED"
    [row] = await _rows(db)
    assert await read_all(storage, CONVERSATION_BUCKET, row["enriched_file_path"]) == (
        json.dumps(changed).encode()
    )
    assert await _stored(storage) == sorted([row["enriched_file_path"], row["pieces_path"]])


async def test_a_conversation_in_a_training_file_is_not_replaced(
    client: httpx.AsyncClient, db: Database, pools: Pools, storage: Storage, demo: list[Path]
) -> None:
    source = read_source(demo[0])
    await _upload(client, [("a.json", demo[0].read_bytes())])
    await training_file_service(pools, storage).create_training_file(
        USER, "uses it", None, [str(source.id)]
    )
    rows, keys = await _rows(db), await _stored(storage)
    changed = dict(source.document, consultant_profile={"name": "Someone else"})

    payload = await _upload(client, [("a.json", json.dumps(changed).encode())])
    [result] = payload["results"]
    assert result["outcome"] == "REFUSED"
    assert result["conversation"] is None
    [error] = result["userErrors"]
    assert error["code"] == "IN_TRAINING_FILE"
    assert "'uses it'" in error["message"]
    assert await _rows(db) == rows
    assert await _stored(storage) == keys


async def test_another_user_reimports_without_taking_the_conversation_over(
    client: httpx.AsyncClient, settings: Any, db: Database, demo: list[Path]
) -> None:
    await _upload(client, [("a.json", demo[0].read_bytes())])
    client.headers.update(bearer(settings, OTHER_USER))
    payload = await _upload(client, [("a.json", demo[0].read_bytes())])
    assert payload["results"][0]["outcome"] == "UNCHANGED"
    [row] = await _rows(db)
    assert row["created_by"] == USER


# -- files that do not ------------------------------------------------------------------------


def _with_text(path: Path, escaped: str) -> bytes:
    """The file with its title set to a JSON string literal written as given."""
    document = json.loads(path.read_bytes())
    document["dataset_metadata"]["title"] = "PLACEHOLDER"
    return json.dumps(document).replace('"PLACEHOLDER"', escaped).encode()


@pytest.mark.parametrize(
    ("content", "code", "blocker"),
    [
        (b"{not json", "INVALID_JSON", "not_json"),
        (b"\xff\xfe{}", "INVALID_JSON", "not_utf8"),
        (b"[1, 2]", "INVALID_JSON", "not_object"),
        (b'{"training_pairs": []}', "BLOCKED", "empty_training_pairs"),
        ("nul", "BLOCKED", "invalid_unicode"),
        ("surrogate", "BLOCKED", "invalid_unicode"),
    ],
)
async def test_each_kind_of_bad_file_is_reported_and_nothing_is_stored(
    client: httpx.AsyncClient,
    db: Database,
    storage: Storage,
    demo: list[Path],
    content: bytes | str,
    code: str,
    blocker: str,
) -> None:
    if content == "nul":
        content = _with_text(demo[0], '"a \\u0000 b"')
    elif content == "surrogate":
        content = _with_text(demo[0], '"a \\ud800 b"')
    assert isinstance(content, bytes)
    payload = await _upload(client, [("bad.json", content), ("good.json", demo[1].read_bytes())])

    bad, good = payload["results"]
    assert (bad["filename"], bad["outcome"], bad["conversation"]) == ("bad.json", "BLOCKED", None)
    assert [b["code"] for b in bad["blockers"]] == [blocker]
    assert [e["code"] for e in bad["userErrors"]] == [code]
    assert bad["userErrors"][0]["message"] == bad["blockers"][0]["message"]
    assert good["outcome"] == "IMPORTED"  # one bad file does not stop the others
    [row] = await _rows(db)
    assert row["conversation_id"] == read_source(demo[1]).id


async def test_an_oversized_file_is_refused_while_read_and_nothing_of_it_is_stored(
    client: httpx.AsyncClient, db: Database, storage: Storage, demo: list[Path]
) -> None:
    oversized = b" " * MAX_FILE + b"{}"
    payload = await _upload(client, [("huge.json", oversized), ("good.json", demo[0].read_bytes())])

    huge, good = payload["results"]
    assert (huge["outcome"], huge["blockers"]) == ("BLOCKED", [])
    [error] = huge["userErrors"]
    assert error["code"] == "FILE_TOO_LARGE"
    assert str(MAX_FILE) in error["message"]
    assert good["outcome"] == "IMPORTED"
    [row] = await _rows(db)
    assert await _stored(storage) == sorted([row["enriched_file_path"], row["pieces_path"]])


async def test_a_file_of_exactly_the_cap_is_read(
    client: httpx.AsyncClient, db: Database, storage: Storage
) -> None:
    at_cap = b"[" + b" " * (MAX_FILE - 2) + b"]"
    [result] = (await _upload(client, [("cap.json", at_cap)]))["results"]
    assert [e["code"] for e in result["userErrors"]] == ["INVALID_JSON"]  # read, then judged
    await _nothing_stored(db, storage)


async def test_more_files_than_an_import_takes_import_none(
    client: httpx.AsyncClient, db: Database, storage: Storage, tmp_path: Path
) -> None:
    paths = write_demo_set(tmp_path / "many", 21, seed=5)
    payload = await _upload(client, [(p.name, p.read_bytes()) for p in paths])
    assert payload["results"] == []
    [error] = payload["userErrors"]
    assert (error["code"], error["field"]) == ("TOO_MANY_FILES", "files")
    assert "21 files" in error["message"] and "at most 20" in error["message"]
    await _nothing_stored(db, storage)


async def test_no_files_and_values_that_are_not_uploads_are_refused(
    client: httpx.AsyncClient, db: Database, storage: Storage
) -> None:
    for files, code in (([], "NO_FILES"), (["not a file"], "BAD_USER_INPUT")):
        response = await client.post(
            "/graphql", json={"query": IMPORT, "variables": {"files": files}}
        )
        payload = response.json()["data"]["importConversations"]
        assert payload["results"] == []
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, "files")]
    await _nothing_stored(db, storage)


async def test_malformed_multipart_requests_are_bad_requests(
    client: httpx.AsyncClient, db: Database, storage: Storage, demo: list[Path]
) -> None:
    data, parts = _form([("a.json", demo[0].read_bytes())])
    cases: list[tuple[dict[str, str], str]] = [
        ({**data, "map": json.dumps({"7": ["variables.files.0"]})}, "names no file part"),
        ({**data, "map": json.dumps({"0": ["variables.nothing.9"]})}, "not in the operations"),
        ({**data, "map": "[]"}, "object of lists"),
        ({**data, "operations": "{"}, "not valid JSON"),
    ]
    for fields, said in cases:
        response = await client.post("/graphql", data=fields, files=parts)
        assert response.status_code == 400, response.text
        [error] = response.json()["errors"]
        assert error["extensions"]["code"] == "BAD_REQUEST"
        assert said in error["message"]
    cut = await client.post(
        "/graphql",
        content=b'--xyz\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{',
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert cut.status_code == 400
    assert "closing boundary" in cut.json()["errors"][0]["message"]
    await _nothing_stored(db, storage)


async def test_uploads_need_a_bearer_token_before_their_body_is_read(
    anonymous_client: httpx.AsyncClient, db: Database, storage: Storage, demo: list[Path]
) -> None:
    data, parts = _form([("a.json", demo[0].read_bytes())])
    response = await anonymous_client.post("/graphql", data=data, files=parts)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["UNAUTHENTICATED"]

    bad_token = {"Authorization": "Bearer not.a.token"}
    response = await anonymous_client.post("/graphql", data=data, files=parts, headers=bad_token)
    assert response.status_code == 401
    assert "not a JWT" in response.json()["errors"][0]["message"]

    rest = await anonymous_client.post(
        "/api/conversations",
        content=demo[0].read_bytes(),
        headers={"Content-Type": "application/json"},
    )
    assert rest.status_code == 401
    assert rest.json()["details"][0]["code"] == "UNAUTHENTICATED"
    await _nothing_stored(db, storage)


async def test_the_body_limit_lets_uploads_through_and_still_refuses_other_large_bodies(
    client: httpx.AsyncClient, db: Database, demo: list[Path]
) -> None:
    document = json.loads(demo[0].read_bytes())
    document["padding"] = "x" * (2 * MiB)  # an unknown key: a warning, not a blocker
    payload = await _upload(client, [("padded.json", json.dumps(document).encode())])
    assert payload["results"][0]["outcome"] == "IMPORTED"

    query = json.dumps({"query": "{ viewer { id } }", "padding": "x" * (2 * MiB)})
    plain = await client.post(
        "/graphql", content=query, headers={"Content-Type": "application/json"}
    )
    assert plain.status_code == 413
    assert plain.json()["errors"][0]["extensions"]["code"] == "BODY_TOO_LARGE"


# -- concurrency ------------------------------------------------------------------------------


async def test_ten_simultaneous_uploads_of_one_file_leave_one_row_and_one_copy(
    client: httpx.AsyncClient, db: Database, storage: Storage, demo: list[Path]
) -> None:
    content = demo[0].read_bytes()

    async def graphql() -> str:
        return str((await _upload(client, [("a.json", content)]))["results"][0]["outcome"])

    async def rest() -> str:
        response = await client.post(
            "/api/conversations", content=content, headers={"Content-Type": "application/json"}
        )
        assert response.status_code in (200, 201), response.text
        return str(response.json()["outcome"]).upper()

    # More than the import slots (2) and the writer connections (4) at once.
    outcomes = await asyncio.gather(*(graphql() if i % 2 else rest() for i in range(10)))
    assert sorted(outcomes) == ["IMPORTED"] + ["UNCHANGED"] * 9
    [row] = await _rows(db)
    assert await _stored(storage) == sorted([row["enriched_file_path"], row["pieces_path"]])


# -- REST ---------------------------------------------------------------------------------------


async def test_rest_imports_one_file_per_request(
    client: httpx.AsyncClient, db: Database, storage: Storage, demo: list[Path]
) -> None:
    source = read_source(demo[0])
    headers = {"Content-Type": "application/json; charset=utf-8"}
    created = await client.post("/api/conversations", content=demo[0].read_bytes(), headers=headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["outcome"] == "imported"
    conversation = body["conversation"]
    assert conversation["conversation_id"] == str(source.id)
    assert conversation["pair_count"] == len(source.document["training_pairs"])
    assert conversation["enriched_file_size"] == demo[0].stat().st_size
    assert conversation["created_by"] == str(USER)
    assert isinstance(body["warnings"], list)

    again = await client.post("/api/conversations", content=demo[0].read_bytes(), headers=headers)
    assert (again.status_code, again.json()["outcome"]) == (200, "unchanged")
    changed = dict(source.document, consultant_profile={"name": "Someone else"})
    updated = await client.post("/api/conversations", json=changed)
    assert (updated.status_code, updated.json()["outcome"]) == (200, "updated")
    assert len(await _rows(db)) == 1


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"{not json", "INVALID_JSON"),
        (b"[1, 2]", "INVALID_JSON"),
        (b'{"training_pairs": []}', "BLOCKED"),
    ],
)
async def test_rest_answers_bad_files_with_400(
    client: httpx.AsyncClient, db: Database, storage: Storage, content: bytes, code: str
) -> None:
    response = await client.post(
        "/api/conversations", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert [d["code"] for d in body["details"]] == [code]
    assert body["error"] == body["details"][0]["message"]
    await _nothing_stored(db, storage)


async def test_rest_refuses_other_content_types(
    client: httpx.AsyncClient, db: Database, storage: Storage, demo: list[Path]
) -> None:
    for content_type in ("text/plain", "multipart/form-data; boundary=x", None):
        headers = {"Content-Type": content_type} if content_type else {}
        response = await client.post(
            "/api/conversations", content=demo[0].read_bytes(), headers=headers
        )
        assert response.status_code == 415, content_type
        assert response.json()["details"][0]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    await _nothing_stored(db, storage)


async def test_rest_refuses_an_oversized_file_with_413_whether_or_not_it_says_its_size(
    client: httpx.AsyncClient, db: Database, storage: Storage
) -> None:
    oversized = b" " * MAX_FILE + b"{}"
    headers = {"Content-Type": "application/json"}
    declared = await client.post("/api/conversations", content=oversized, headers=headers)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for start in range(0, len(oversized), MiB):
            yield oversized[start : start + MiB]

    streamed = await client.post("/api/conversations", content=chunks(), headers=headers)
    for response in (declared, streamed):
        assert response.status_code == 413
        [detail] = response.json()["details"]
        assert detail["code"] == "FILE_TOO_LARGE"
        assert str(MAX_FILE) in detail["message"]
    await _nothing_stored(db, storage)


# -- privileges ---------------------------------------------------------------------------------


async def test_the_request_role_still_cannot_write_conversations(
    database_urls: DatabaseUrls, db: Database
) -> None:
    """Uploads import on the owner's connections: the request path gained no privilege."""
    conn = await asyncpg.connect(database_urls.app)
    try:
        async with conn.transaction():
            await become_user(conn, USER)
            for sql in (
                "INSERT INTO conversations (conversation_id) VALUES (gen_random_uuid())",
                "UPDATE conversations SET title = 'x'",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    async with conn.transaction():
                        await conn.execute(sql)
    finally:
        await conn.close()
