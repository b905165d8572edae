"""GraphQL errors end to end: what the client sees, when it is told to retry, what is logged.

Failures are made to happen for real: a storage bucket that is a file, a real backend wrapped so
that its writes fail as a full disk's would, a lock held by another writer, a database socket
nobody listens on. Nothing of our own service is mocked.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from graphql_api.app import create_app
from graphql_api.config import Settings
from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database
from graphql_api.db.writers import LockKind, WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.graphql.schema import build_schema
from graphql_api.graphql.view import GraphQLView
from graphql_api.runtime import Pools
from graphql_api.services import Services
from graphql_api.storage.base import CONVERSATION_BUCKET, TRAINING_BUCKET
from graphql_api.storage.local import LocalStorage

from .conftest import OTHER_USER, USER, bearer
from .faults import FullStorage

CREATE = """
mutation($input: CreateTrainingFileInput!) {
  createTrainingFile(input: $input) { trainingFile { id } userErrors { code message } }
}"""
ADD = """
mutation($input: AddConversationsInput!) {
  addConversations(input: $input) { trainingFile { id version } userErrors { code message } }
}"""


@pytest.fixture
async def conversation_ids(
    db: Database, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> list[UUID]:
    importer = ConversationImporter(owner_writers, storage)
    ids = []
    for path in write_demo_set(tmp_path / "demo", 3, seed=3):
        result = await importer.import_file(path)
        assert result.conversation_id is not None
        ids.append(result.conversation_id)
    return ids


@asynccontextmanager
async def _client(settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(settings, services))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=bearer(settings, USER)
    ) as client:
        yield client


async def _post(client: httpx.AsyncClient, query: str, **variables: Any) -> httpx.Response:
    return await client.post("/graphql", json={"query": query, "variables": variables})


def _logged(caplog: pytest.LogCaptureFixture) -> list[tuple[str, int, str]]:
    """Our and Strawberry's log records, without tracebacks: (logger, level, message); not
    the access line every request gets (test_logs.py)."""
    return [
        (r.name, r.levelno, r.getMessage())
        for r in caplog.records
        if r.name.startswith(("graphql_api", "strawberry")) and r.name != "graphql_api.access"
    ]


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[type[BaseException]]:
    return [r.exc_info[0] for r in caplog.records if r.exc_info and r.exc_info[0]]


async def _training_state(db: Database, storage: LocalStorage) -> tuple[Any, ...]:
    async with db.session() as conn:
        files = [dict(r) for r in await conn.fetch("SELECT * FROM training_files ORDER BY id")]
        members = [
            dict(r)
            for r in await conn.fetch(
                "SELECT * FROM training_file_conversations ORDER BY training_file_id, position"
            )
        ]
    root = storage.root / TRAINING_BUCKET
    objects = (
        {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
        if root.is_dir()
        else set()
    )
    return files, members, objects


def _create_input(name: str, ids: Sequence[UUID]) -> dict[str, Any]:
    return {"name": name, "conversationIds": [str(i) for i in ids]}


# ---------------------------------------------------------------------------- logging


SCHEMA_LOG = "graphql_api.graphql.schema"


@pytest.mark.parametrize(
    ("query", "headers", "line"),
    [
        (
            "{ viewer { id } }",
            {"Authorization": "Bearer not.a.token"},
            "UNAUTHENTICATED at viewer: the bearer token is malformed: it is not a JWT",
        ),
        (
            '{ conversation(id: "nope") { id } }',
            {},
            "BAD_USER_INPUT at conversation: id: 'nope' is not a UUID",
        ),
        (
            "{ xyzzy }",
            {},
            "INVALID_OPERATION at -: Cannot query field 'xyzzy' on type 'Query'.",
        ),
        (
            '{ conversations(filter: {personaKey: "a\\u0000"}) { totalCount } }',
            {},
            "BAD_USER_INPUT at conversations: filter.personaKey must not contain NUL characters"
            " (U+0000)",
        ),
    ],
    ids=["bad-token", "bad-id", "validation", "unstorable-filter"],
)
async def test_a_client_mistake_is_one_line_at_info(
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    query: str,
    headers: dict[str, str],
    line: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await client.post("/graphql", json={"query": query}, headers=headers)
    assert response.status_code == 200 and response.json()["errors"]
    assert _logged(caplog) == [(SCHEMA_LOG, logging.INFO, line)]
    assert _tracebacks(caplog) == []


async def test_forbidden_is_one_line_at_info(
    settings: Settings,
    services: Services,
    conversation_ids: list[UUID],
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with _client(settings, services) as client:
        created = await _post(client, CREATE, input=_create_input("mine", conversation_ids[:1]))
        file_id = created.json()["data"]["createTrainingFile"]["trainingFile"]["id"]
        caplog.set_level(logging.DEBUG)
        response = await client.post(
            "/graphql",
            json={
                "query": ADD,
                "variables": {
                    "input": {
                        "trainingFileId": file_id,
                        "conversationIds": [str(conversation_ids[1])],
                    }
                },
            },
            headers=bearer(settings, OTHER_USER),
        )
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["FORBIDDEN"]
    assert _logged(caplog) == [
        (
            SCHEMA_LOG,
            logging.INFO,
            "FORBIDDEN at addConversations: training file 'mine' belongs to another user",
        )
    ]
    assert _tracebacks(caplog) == []


async def test_a_bug_is_masked_and_logged_at_error_with_its_id_and_traceback(
    client: httpx.AsyncClient,
    db: Database,
    storage: LocalStorage,
    conversation_ids: list[UUID],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A stored file no longer parses, its row has no hash to catch it and no pieces rendered
    # at import to build from instead: a real fault.
    async with db.session() as conn:
        path = await conn.fetchval(
            "UPDATE conversations SET enriched_file_sha256 = NULL, pieces_path = NULL,"
            " piece_sizes = NULL WHERE conversation_id = $1 RETURNING enriched_file_path",
            conversation_ids[0],
        )
    (storage.root / CONVERSATION_BUCKET / path).write_bytes(b"{ not json")
    caplog.set_level(logging.DEBUG)

    response = await _post(client, CREATE, input=_create_input("bug", conversation_ids))

    [error] = response.json()["errors"]
    assert error["message"] == "Internal server error"
    error_id = error["extensions"]["errorId"]
    assert re.fullmatch(r"[0-9a-f]{12}", error_id)
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "errorId": error_id}
    assert "retry-after" not in response.headers
    assert _logged(caplog) == [
        (SCHEMA_LOG, logging.ERROR, f"error {error_id} at ['createTrainingFile']")
    ]
    assert _tracebacks(caplog) == [json.JSONDecodeError]
    assert await _training_state(db, storage) == ([], [], set())


# ---------------------------------------------------------------------------- unavailable


async def test_storage_that_cannot_be_written_is_storage_unavailable(
    client: httpx.AsyncClient,
    db: Database,
    storage: LocalStorage,
    conversation_ids: list[UUID],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The bucket's directory is replaced by a file: every write into it fails for real.
    shutil.rmtree(storage.root / TRAINING_BUCKET)
    (storage.root / TRAINING_BUCKET).write_bytes(b"")
    caplog.set_level(logging.DEBUG)

    response = await _post(client, CREATE, input=_create_input("doomed", conversation_ids[:2]))

    assert response.status_code == 200
    assert response.headers["retry-after"] == "30"
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "STORAGE_UNAVAILABLE", "retryAfter": 30}
    assert error["path"] == ["createTrainingFile"]
    # The reason (full, unwritable...) is the backend's to tell; the outcome is fixed.
    assert error["message"].startswith("storage ")
    assert error["message"].endswith("; nothing changed, retry later")
    for leak in ("Traceback", str(storage.root), "Error"):
        assert leak not in response.text
    [(logger, level, line)] = _logged(caplog)
    assert (logger, level) == (SCHEMA_LOG, logging.WARNING)
    assert line.startswith("STORAGE_UNAVAILABLE at createTrainingFile: storage ")
    assert _tracebacks(caplog) == []
    async with db.session() as conn:
        assert await conn.fetchval("SELECT count(*) FROM training_files") == 0
        assert await conn.fetchval("SELECT count(*) FROM training_file_conversations") == 0


async def test_full_storage_is_storage_unavailable_and_changes_nothing(
    settings: Settings,
    pools: Pools,
    db: Database,
    storage: LocalStorage,
    conversation_ids: list[UUID],
    caplog: pytest.LogCaptureFixture,
) -> None:
    full = Services.of(settings, pools, FullStorage(storage))  # type: ignore[arg-type]
    caplog.set_level(logging.DEBUG)
    async with _client(settings, full) as client:
        response = await _post(client, CREATE, input=_create_input("full", conversation_ids))

    assert response.status_code == 200
    assert response.headers["retry-after"] == "30"
    assert response.json() == {
        "data": None,
        "errors": [
            {
                "message": "storage is full; nothing changed, retry later",
                "locations": [{"line": 3, "column": 3}],
                "path": ["createTrainingFile"],
                "extensions": {"code": "STORAGE_UNAVAILABLE", "retryAfter": 30},
            }
        ],
    }
    assert _logged(caplog) == [
        (
            SCHEMA_LOG,
            logging.WARNING,
            "STORAGE_UNAVAILABLE at createTrainingFile: storage is full; nothing changed, retry"
            " later (StorageError: no space left on device)",
        )
    ]
    assert await _training_state(db, storage) == ([], [], set())


@pytest.fixture
async def impatient(settings: Settings, pools: Pools, services: Services) -> Services:
    """The services, with writers that wait one second for a file's lock (the shipped wait
    is much longer)."""
    writers = WriterPool(pools.writers.pool, timeout_seconds=1)
    return Services(settings, pools.db, writers, pools.maintenance, services.storage)


async def test_a_file_locked_by_another_writer_is_busy_not_a_user_error(
    settings: Settings,
    impatient: Services,
    owner_writers: WriterPool,
    db: Database,
    storage: LocalStorage,
    conversation_ids: list[UUID],
) -> None:
    async with _client(settings, impatient) as client:
        created = await _post(client, CREATE, input=_create_input("held", conversation_ids[:1]))
        file_id = created.json()["data"]["createTrainingFile"]["trainingFile"]["id"]
        before = await _training_state(db, storage)
        add = {"trainingFileId": file_id, "conversationIds": [str(conversation_ids[1])]}
        # Another process (here: the command line's writers) is changing the file.
        async with owner_writers.exclusive(LockKind.TRAINING_FILE, UUID(file_id)):
            response = await _post(client, ADD, input=add)

    assert response.status_code == 200
    assert response.headers["retry-after"] == "1"
    assert response.json() == {
        "data": None,
        "errors": [
            {
                "message": f"{file_id} is being changed by other requests and did not come free"
                " within 1 s; nothing changed, retry",
                "locations": [{"line": 3, "column": 3}],
                "path": ["addConversations"],
                "extensions": {"code": "BUSY", "retryAfter": 1},
            }
        ],
    }
    assert await _training_state(db, storage) == before


async def test_retry_after_is_the_longest_any_error_asks_for(settings: Settings) -> None:
    # Execution stops at the first failed mutation and every query field shares one database,
    # so one response with different waits is built here, through the view's own method.
    view = GraphQLView(build_schema(settings), assets_url=None)
    errors = [
        {"message": "busy", "extensions": {"code": "BUSY", "retryAfter": 1}},
        {"message": "full", "extensions": {"code": "STORAGE_UNAVAILABLE", "retryAfter": 30}},
        {"message": "bad", "extensions": {"code": "BAD_USER_INPUT"}},
        {"message": "no extensions"},
    ]
    sub_response = await view.get_sub_response(None)  # type: ignore[arg-type]
    response = view.create_response({"data": None, "errors": errors}, sub_response)  # type: ignore[typeddict-item]
    assert response.headers["retry-after"] == "30"
    plain = view.create_response({"data": None, "errors": errors[2:]}, sub_response)  # type: ignore[typeddict-item]
    assert "retry-after" not in plain.headers


async def test_an_unreachable_database_is_database_unavailable(
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
        async with _client(settings, down) as client:
            response = await client.post(
                "/graphql", json={"query": "{ conversations { totalCount } }"}
            )
    finally:
        await nowhere.close()

    assert response.status_code == 200
    assert response.headers["retry-after"] == "5"
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "DATABASE_UNAVAILABLE", "retryAfter": 5}
    assert error["message"] == "the database is unreachable; retry later"
