"""Structured logs end to end: real requests through the app, read back as the JSON lines the
server writes; the format a start-up chooses; and a real `serve` writing JSON."""

from __future__ import annotations

import io
import json
import logging
import os
import re
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.observability.logs import TextFormatter, chosen_format
from graphql_api.storage.base import CONVERSATION_BUCKET
from graphql_api.storage.local import LocalStorage

from .api_server import ApiServer, server_env
from .conftest import USER
from .observed import CREATE, JsonLog, import_conversations, json_log

__all__ = ["json_log"]

DASHBOARD = "query Dashboard { viewer { id } }"


@pytest.fixture
async def conversation_ids(
    db: Database, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> list[UUID]:
    return await import_conversations(owner_writers, storage, tmp_path / "demo")


async def test_a_request_is_one_access_line_carrying_the_given_request_id(
    client: httpx.AsyncClient, json_log: JsonLog
) -> None:
    response = await client.post(
        "/graphql", json={"query": DASHBOARD}, headers={"X-Request-Id": "req-42.a:b"}
    )

    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-42.a:b"
    [line] = json_log.access()
    assert line["request_id"] == "req-42.a:b"
    assert line["message"].startswith("POST /graphql 200 ")
    assert {k: line[k] for k in ("method", "path", "route", "status", "outcome")} == {
        "method": "POST",
        "path": "/graphql",
        "route": "/graphql",
        "status": 200,
        "outcome": "ok",
    }
    assert (line["operation_name"], line["operation_type"]) == ("Dashboard", "query")
    assert line["user_id"] == str(USER)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["level"] == "INFO" and line["pid"] == os.getpid()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert "error_codes" not in line and "exc_info" not in line


async def test_a_request_without_an_id_gets_one_and_is_told_it(
    client: httpx.AsyncClient, json_log: JsonLog
) -> None:
    first = await client.get("/livez")
    second = await client.post("/graphql", json={"query": DASHBOARD})

    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert ids[0] != ids[1]
    # /livez's line is at DEBUG: the probe is polled all day.
    assert [line["request_id"] for line in json_log.access()] == ids[1:]


@pytest.mark.parametrize(
    "sent",
    ["has spaces", "x" * 129, "new\nline", 'quote"d', "ünïcode"],
    ids=["spaces", "too-long", "newline", "quote", "non-ascii"],
)
async def test_an_unreasonable_request_id_is_replaced(
    client: httpx.AsyncClient, json_log: JsonLog, sent: str
) -> None:
    response = await client.post(
        "/graphql", json={"query": DASHBOARD}, headers={"X-Request-Id": sent.encode()}
    )

    replaced = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", replaced)
    [line] = json_log.access()
    assert line["request_id"] == replaced


async def test_an_anonymous_request_has_no_user_id(
    anonymous_client: httpx.AsyncClient, json_log: JsonLog
) -> None:
    await anonymous_client.get("/api/training-files")

    [line] = json_log.access()
    assert (line["route"], line["status"], line["outcome"]) == ("/api/training-files", 401, "error")
    assert "user_id" not in line and "operation_name" not in line


async def test_a_client_mistake_is_one_info_line_without_traceback(
    client: httpx.AsyncClient, json_log: JsonLog
) -> None:
    response = await client.post(
        "/graphql",
        json={"query": DASHBOARD},
        headers={"Authorization": "Bearer not.a.token", "X-Request-Id": "bad-token"},
    )

    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    [line] = json_log.others()
    assert (line["level"], line["logger"]) == ("INFO", "graphql_api.graphql.schema")
    assert line["message"].startswith("UNAUTHENTICATED at viewer: ")
    assert line["request_id"] == "bad-token"
    assert "exc_info" not in line
    [access] = json_log.access()
    assert (access["outcome"], access["error_codes"]) == ("error", ["UNAUTHENTICATED"])


async def test_a_refused_mutation_is_logged_as_user_errors(
    client: httpx.AsyncClient, json_log: JsonLog
) -> None:
    response = await client.post(
        "/graphql",
        json={"query": CREATE, "variables": {"input": {"name": "x", "conversationIds": []}}},
    )

    assert response.json()["data"]["createTrainingFile"]["userErrors"]
    [access] = json_log.access()
    assert (access["operation_name"], access["operation_type"]) == ("Create", "mutation")
    assert access["outcome"] == "user_errors"
    assert json_log.others() == []


async def test_a_masked_bug_is_one_error_line_with_its_id_and_traceback(
    client: httpx.AsyncClient,
    db: Database,
    storage: LocalStorage,
    conversation_ids: list[UUID],
    json_log: JsonLog,
) -> None:
    # A stored file no longer parses, and nothing recorded at import can stand in for it.
    async with db.session() as conn:
        path = await conn.fetchval(
            "UPDATE conversations SET enriched_file_sha256 = NULL, pieces_path = NULL,"
            " piece_sizes = NULL WHERE conversation_id = $1 RETURNING enriched_file_path",
            conversation_ids[0],
        )
    (storage.root / CONVERSATION_BUCKET / path).write_bytes(b"{ not json")
    variables = {"input": {"name": "bug", "conversationIds": [str(i) for i in conversation_ids]}}

    response = await client.post(
        "/graphql", json={"query": CREATE, "variables": variables}, headers={"X-Request-Id": "b1"}
    )

    [error] = response.json()["errors"]
    error_id = error["extensions"]["errorId"]
    [line] = json_log.others()
    assert (line["level"], line["error_id"], line["request_id"]) == ("ERROR", error_id, "b1")
    assert line["exc_info"].startswith("Traceback (most recent call last):")
    assert "JSONDecodeError" in line["exc_info"]
    [access] = json_log.access()
    assert access["error_codes"] == ["INTERNAL_SERVER_ERROR"]
    assert access["request_id"] == "b1"


async def test_a_rest_bug_is_logged_with_its_error_id(
    client: httpx.AsyncClient,
    db: Database,
    storage: LocalStorage,
    conversation_ids: list[UUID],
    json_log: JsonLog,
) -> None:
    async with db.session() as conn:
        path = await conn.fetchval(
            "UPDATE conversations SET enriched_file_sha256 = NULL, pieces_path = NULL,"
            " piece_sizes = NULL WHERE conversation_id = $1 RETURNING enriched_file_path",
            conversation_ids[0],
        )
    (storage.root / CONVERSATION_BUCKET / path).write_bytes(b"{ not json")
    body = {"name": "bug", "conversation_ids": [str(i) for i in conversation_ids]}

    response = await client.post("/api/training-files", json=body)

    assert response.status_code == 500
    [line] = json_log.others()
    assert (line["level"], line["error_id"]) == ("ERROR", response.json()["error_id"])
    assert "JSONDecodeError" in line["exc_info"]
    [access] = json_log.access()
    assert (access["route"], access["status"]) == ("/api/training-files", 500)


def test_text_lines_carry_the_same_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "graphql_api.access", "levelno": 20, "levelname": "INFO", "msg": "GET / 307"}
    )
    record.request_id = "r1"
    record.status = 307

    line = TextFormatter().format(record)

    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO    graphql_api\.access: GET / 307  "
        r"request_id=r1 status=307",
        line,
    )


def test_the_format_is_text_at_a_terminal_and_json_otherwise() -> None:
    primary, secondary = os.openpty()
    with os.fdopen(primary, "w") as terminal, os.fdopen(secondary, "w") as _:
        assert chosen_format(None, terminal) == "text"
        assert chosen_format("json", terminal) == "json"
    assert chosen_format(None, io.StringIO()) == "json"
    assert chosen_format("text", io.StringIO()) == "text"


def test_serve_writes_json_lines_for_uvicorn_strawberry_and_us(tmp_path: Path) -> None:
    env = server_env(tmp_path / "data", JWT_SECRET="x" * 40, LOG_FORMAT="json")
    server = ApiServer(env, tmp_path / "server.log")
    server.start()
    try:
        response = httpx.post(
            f"{server.url}/graphql",
            json={"query": "query Version { serverInfo { version } }"},
            headers={"X-Request-Id": "from-the-test"},
            timeout=30,
        )
        assert response.headers["x-request-id"] == "from-the-test"
    finally:
        assert server.terminate() in (0, 143)
    text = server.log_path.read_text()
    # The banner and the demo import's table are for people; every log line is JSON.
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    loggers = {line["logger"] for line in lines}
    assert {"uvicorn.error", "graphql_api.access"} <= loggers, text
    assert any(line["message"].startswith("Started server process") for line in lines)
    [access] = [line for line in lines if line["logger"] == "graphql_api.access"]
    assert access["request_id"] == "from-the-test"
    assert (access["operation_name"], access["outcome"]) == ("Version", "ok")
    assert not any(line.startswith(("INFO:", "WARNING:")) for line in text.splitlines())
