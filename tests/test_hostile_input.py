"""Hostile or careless input: clear refusals, nothing changed, nothing leaked."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import httpx
import jwt
import pytest

from graphql_api.app import create_app
from graphql_api.config import Settings
from graphql_api.services import Services

from .conftest import USER, bearer


async def _post(client: httpx.AsyncClient, query: str, **variables: Any) -> httpx.Response:
    return await client.post("/graphql", json={"query": query, "variables": variables})


def _codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code", "") for e in body.get("errors", [])]


async def test_query_depth_is_limited(client: httpx.AsyncClient, settings: Settings) -> None:
    nested = "id"
    for _ in range(settings.graphql_max_depth):
        nested = f"trainingFiles {{ edges {{ node {{ conversations {{ edges {{ node {{ {nested} }} }} }} }} }} }}"
    response = await _post(client, f"{{ conversations {{ edges {{ node {{ {nested} }} }} }} }}")
    body = response.json()
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]


async def test_aliases_are_limited(client: httpx.AsyncClient, settings: Settings) -> None:
    aliases = " ".join(f"a{i}: viewer {{ id }}" for i in range(settings.graphql_max_aliases + 1))
    body = (await _post(client, f"{{ {aliases} }}")).json()
    assert "aliases found" in body["errors"][0]["message"].lower()


async def test_tokens_are_limited(client: httpx.AsyncClient, settings: Settings) -> None:
    fields = " ".join(["__typename"] * settings.graphql_max_tokens)
    body = (await _post(client, f"{{ {fields} }}")).json()
    assert f"more than {settings.graphql_max_tokens} tokens" in body["errors"][0]["message"]


async def test_oversized_bodies_are_refused_before_parsing(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    query = "{ viewer { id } }" + " " * settings.max_request_bytes
    response = await client.post("/graphql", json={"query": query})
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 4096):
        yield data[start : start + 4096]


async def test_oversized_chunked_bodies_are_refused(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    payload = json.dumps({"query": "{ viewer { id } }" + " " * settings.max_request_bytes}).encode()
    response = await client.post(
        "/graphql", content=_chunks(payload), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_first_is_capped_on_every_connection(client: httpx.AsyncClient) -> None:
    for query in (
        "{ conversations(first: 101) { totalCount } }",
        "{ trainingFiles(first: 101) { totalCount } }",
        "{ trainingFiles { edges { node { conversations(first: 101) { totalCount } } } } }",
    ):
        body = (await _post(client, query)).json()
        assert body.get("errors") or body["data"]["trainingFiles"]["edges"] == []
        if body.get("errors"):
            assert "first must be between 0 and 100" in body["errors"][0]["message"]


async def test_negative_first_is_refused(client: httpx.AsyncClient) -> None:
    body = (await _post(client, "{ conversations(first: -1) { totalCount } }")).json()
    assert _codes(body) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    "argument", ['"not-a-uuid"', '"1; DROP TABLE conversations"', '"../../etc/passwd"', '""']
)
async def test_ids_must_be_uuids(client: httpx.AsyncClient, argument: str) -> None:
    for query in (
        f"{{ conversation(id: {argument}) {{ id }} }}",
        f"{{ trainingFile(id: {argument}) {{ id }} }}",
    ):
        body = (await _post(client, query)).json()
        assert _codes(body) == ["BAD_USER_INPUT"]
        assert "is not a UUID" in body["errors"][0]["message"]


def _token(settings: Settings, **claims: Any) -> str:
    payload = {"sub": str(USER), "exp": int(time.time()) + 600, **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, settings.jwt_secret)


def _unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize(
    "make_header",
    [
        lambda s: None,
        lambda s: "Basic dXNlcjpwYXNz",
        lambda s: "Bearer ",
        lambda s: "Bearer not.a.token",
        lambda s: "Bearer " + _unsigned({"sub": str(USER), "exp": int(time.time()) + 600}),
        lambda s: (
            "Bearer "
            + jwt.encode({"sub": str(USER), "exp": int(time.time()) + 600}, s.jwt_secret, "HS512")
        ),
        lambda s: (
            "Bearer "
            + jwt.encode({"sub": str(USER), "exp": int(time.time()) + 600}, "another-secret" * 4)
        ),
        lambda s: "Bearer " + _token(s, sub=None),
        lambda s: "Bearer " + _token(s, sub="alice"),
        lambda s: "Bearer " + _token(s, exp=int(time.time()) - 10),
        lambda s: "Bearer " + _token(s, exp=None),
        lambda s: "Bearer " + _token(s, nbf=int(time.time()) + 600),
    ],
    ids=[
        "missing",
        "basic",
        "empty",
        "malformed",
        "alg-none",
        "hs512",
        "other-secret",
        "no-sub",
        "sub-not-uuid",
        "expired",
        "no-exp",
        "not-yet-valid",
    ],
)
async def test_bad_tokens_are_unauthenticated(
    anonymous_client: httpx.AsyncClient, settings: Settings, make_header: Any
) -> None:
    header = make_header(settings)
    headers = {"Authorization": header} if header is not None else {}
    for query in (
        "{ viewer { id } }",
        "{ conversations { totalCount } }",
        f'mutation {{ archiveTrainingFile(input: {{id: "{uuid4()}"}}) {{ userErrors {{ code }} }} }}',
    ):
        response = await anonymous_client.post("/graphql", json={"query": query}, headers=headers)
        assert response.status_code == 200
        assert _codes(response.json()) == ["UNAUTHENTICATED"]


async def test_introspection_can_be_switched_off(settings: Settings, services: Services) -> None:
    closed = Settings(**{**settings.__dict__, "graphql_introspection": False})
    transport = httpx.ASGITransport(app=create_app(closed, services))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        body = (
            await client.post(
                "/graphql",
                json={"query": "{ __schema { queryType { name } } }"},
                headers=bearer(settings, USER),
            )
        ).json()
    assert "introspection" in body["errors"][0]["message"].lower()


async def test_no_cors_by_default(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/graphql",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in response.headers


async def test_cors_allows_only_configured_origins(settings: Settings, services: Services) -> None:
    configured = Settings(**{**settings.__dict__, "cors_origins": ("https://app.example",)})
    transport = httpx.ASGITransport(app=create_app(configured, services))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        allowed = await client.options(
            "/graphql",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
        )
        refused = await client.options(
            "/graphql",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in refused.headers


async def test_sql_metacharacters_in_filters_are_just_text(client: httpx.AsyncClient) -> None:
    for value in ("' OR 1=1 --", "%", "_", "\\", "a'; DROP TABLE training_files; --"):
        body = (
            await _post(
                client,
                "query($v: String) { conversations(filter: {personaKey: $v}) { totalCount }"
                " trainingFiles(filter: {nameContains: $v}) { totalCount } }",
                v=value,
            )
        ).json()
        assert body["data"] == {
            "conversations": {"totalCount": 0},
            "trainingFiles": {"totalCount": 0},
        }
