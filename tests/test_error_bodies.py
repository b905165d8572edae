"""One error body for every error the app answers outside GraphQL (REST's), through the real
app: the request size limit's 413 on any path but /graphql (which answers in GraphQL's shape,
as its clients parse), and the download route's 403, 404 and 416."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx

from graphql_api.config import Settings
from graphql_api.db.database import Database
from graphql_api.services import Services
from graphql_api.storage.base import TRAINING_BUCKET, iter_bytes
from graphql_api.storage.links import LinkSigner

REST = "/api/training-files"
KEY = "user-1/v1.jsonl"
DATA = b'{"a": 1}\n'


def rest_error(response: httpx.Response, status: int, code: str) -> str:
    """The message of a one-problem REST error body, after checking its shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body == {
        "error": body["error"],
        "details": [
            {"code": code, "message": body["error"], "field": None, "conversation_ids": []}
        ],
    }
    return str(body["error"])


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    """`data` as a streamed body: no Content-Length, so the limit counts while it is read."""
    for start in range(0, len(data), 64 * 1024):
        yield data[start : start + 64 * 1024]


def too_large(settings: Settings) -> bytes:
    return b'{"name": "big", "description": "' + b"x" * settings.max_request_bytes + b'"}'


# -- 413: the app-wide MAX_REQUEST_BYTES limit --------------------------------------------------


async def test_rest_bodies_past_the_limit_are_413_in_the_rest_shape(
    client: httpx.AsyncClient, settings: Settings, db: Database
) -> None:
    body = too_large(settings)
    declared = await client.post(REST, content=body, headers={"content-type": "application/json"})
    streamed = await client.post(
        REST, content=chunks(body), headers={"content-type": "application/json"}
    )

    for response in (declared, streamed):
        message = rest_error(response, 413, "BODY_TOO_LARGE")
        assert message == f"request body larger than {settings.max_request_bytes} bytes"
    async with db.session() as conn:
        assert await conn.fetchval("SELECT count(*) FROM training_files") == 0


async def test_rest_has_no_cap_of_its_own(client: httpx.AsyncClient, settings: Settings) -> None:
    # Past the 256 KiB REST used to refuse, within the app-wide limit: the service judges it.
    description = "x" * 300_000
    assert len(description) < settings.max_request_bytes
    given = {"name": "long", "description": description, "conversation_ids": [str(uuid4())]}

    response = await client.post(REST, json=given)

    assert response.status_code == 400, response.text
    assert "INVALID_DESCRIPTION" in [p["code"] for p in response.json()["details"]]


async def test_any_other_path_answers_413_in_the_rest_shape(
    anonymous_client: httpx.AsyncClient, settings: Settings
) -> None:
    response = await anonymous_client.post(
        f"/downloads/{TRAINING_BUCKET}/{KEY}", content=b"x" * (settings.max_request_bytes + 1)
    )
    rest_error(response, 413, "BODY_TOO_LARGE")


async def test_graphql_answers_413_in_the_graphql_shape(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    body = b'{"query": "{ viewer { id } }' + b" " * settings.max_request_bytes + b'"}'
    headers = {"content-type": "application/json"}
    declared = await client.post("/graphql", content=body, headers=headers)
    streamed = await client.post("/graphql", content=chunks(body), headers=headers)

    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json() == {
            "errors": [
                {
                    "message": f"request body larger than {settings.max_request_bytes} bytes",
                    "extensions": {"code": "BODY_TOO_LARGE"},
                }
            ]
        }


# -- the download route ------------------------------------------------------------------------


def link(settings: Settings, key: str = KEY, **changes: Any) -> str:
    arguments: dict[str, Any] = {
        "filename": "v1.jsonl",
        "content_type": "application/x-ndjson",
        "ttl_seconds": 60,
        "base_url": "http://testserver",
        **changes,
    }
    return LinkSigner(settings.jwt_secret).sign(TRAINING_BUCKET, key, **arguments).url


async def test_a_refused_download_link_is_403_forbidden(
    anonymous_client: httpx.AsyncClient, services: Services, settings: Settings
) -> None:
    await services.storage.put(TRAINING_BUCKET, KEY, iter_bytes(DATA))
    expired = link(settings, now=datetime.now(UTC) - timedelta(hours=1))
    forged = (link(settings)).replace("filename=v1.jsonl", "filename=v2.jsonl")

    assert "expired" in rest_error(await anonymous_client.get(expired), 403, "FORBIDDEN")
    assert "signature" in rest_error(await anonymous_client.get(forged), 403, "FORBIDDEN")


async def test_a_missing_download_is_404_not_found(
    anonymous_client: httpx.AsyncClient, settings: Settings
) -> None:
    response = await anonymous_client.get(link(settings, "user-1/missing.jsonl"))
    assert rest_error(response, 404, "NOT_FOUND") == "the file does not exist"


async def test_an_unsatisfiable_range_is_416(
    anonymous_client: httpx.AsyncClient, services: Services, settings: Settings
) -> None:
    await services.storage.put(TRAINING_BUCKET, KEY, iter_bytes(DATA))
    response = await anonymous_client.get(link(settings), headers={"Range": f"bytes={len(DATA)}-"})
    rest_error(response, 416, "BAD_REQUEST")
    assert response.headers["content-range"] == f"bytes */{len(DATA)}"
    assert response.headers["cache-control"] == "private, no-store"
