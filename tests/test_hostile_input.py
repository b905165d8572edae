"""Hostile or careless input: clear refusals, nothing changed, nothing leaked."""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import jwt
import pytest

from graphql_api.app import create_app
from graphql_api.config import Settings
from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.runtime import Pools
from graphql_api.services import Services
from graphql_api.storage.base import TRAINING_BUCKET
from graphql_api.storage.local import LocalStorage

from .conftest import USER, bearer
from .storage_wrappers import InstrumentedStorage


async def _post(client: httpx.AsyncClient, query: str, **variables: Any) -> httpx.Response:
    # json.dumps escapes lone surrogates ("\ud800"); httpx's own encoder would refuse them.
    return await client.post(
        "/graphql",
        content=json.dumps({"query": query, "variables": variables}),
        headers={"Content-Type": "application/json"},
    )


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
    assert response.json() == {
        "errors": [
            {
                "message": f"request body larger than {settings.max_request_bytes} bytes",
                "extensions": {"code": "BODY_TOO_LARGE"},
            }
        ]
    }


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


async def test_first_is_capped_on_every_connection(
    client: httpx.AsyncClient, services: Services, conversation_ids: list[UUID]
) -> None:
    # A file with conversations, so that the nested connection really runs.
    await services.training_files.create_training_file(USER, "nested", None, conversation_ids)
    nested = "{ trainingFiles { edges { node { conversations(first: %d) { totalCount } } } } }"
    body = (await _post(client, nested % 100)).json()
    assert body == {
        "data": {"trainingFiles": {"edges": [{"node": {"conversations": {"totalCount": 3}}}]}}
    }

    for query, path in (
        ("{ conversations(first: 101) { totalCount } }", ["conversations"]),
        ("{ trainingFiles(first: 101) { totalCount } }", ["trainingFiles"]),
        (nested % 101, ["trainingFiles", "edges", 0, "node", "conversations"]),
    ):
        body = (await _post(client, query)).json()
        assert [(e["message"], e["extensions"]["code"], e["path"]) for e in body["errors"]] == [
            ("first must be between 0 and 100, got 101", "BAD_USER_INPUT", path)
        ], query


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


async def _tables(db: Database) -> list[list[dict[str, Any]]]:
    tables = []
    async with db.session() as conn:
        for table in ("conversations", "training_files", "training_file_conversations"):
            tables.append(
                [dict(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY 1, 2")]
            )
    return tables


async def test_sql_metacharacters_in_filters_are_just_text(
    client: httpx.AsyncClient, services: Services, db: Database, conversation_ids: list[UUID]
) -> None:
    # Rows an injection or an unescaped LIKE pattern would count: three conversations with
    # persona keys, and files whose names hold none of the values below but "%" or "_".
    names = ["plain file", "50% off", "snake_case"]
    for name, conversation_id in zip(names, conversation_ids, strict=True):
        await services.training_files.create_training_file(USER, name, None, [conversation_id])
    before = await _tables(db)
    assert len(before[0]) == 3 and all(row["persona_key"] for row in before[0])

    for value in ("' OR 1=1 --", "%", "_", "\\", "a'; DROP TABLE training_files; --"):
        body = (
            await _post(
                client,
                "query($v: String) { conversations(filter: {personaKey: $v}) { totalCount }"
                " trainingFiles(filter: {nameContains: $v}) { totalCount } }",
                v=value,
            )
        ).json()
        assert body == {
            "data": {
                "conversations": {"totalCount": 0},
                "trainingFiles": {"totalCount": sum(value in name for name in names)},
            }
        }, value
        assert await _tables(db) == before


# -------------------------------------------------------------------- malformed requests

DEEP = "[" * 5000 + "]" * 5000


def _request_error(message: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]}


@pytest.mark.parametrize(
    ("content", "content_type", "message"),
    [
        (
            b'{"query": "{ viewer { id } }\xff"}',
            "application/json",
            "the request body is not UTF-8: invalid start byte at byte 28",
        ),
        (
            '{"query": "{ viewer { id } }"}'.encode("utf-16"),
            "application/json",
            "the request body is not UTF-8: invalid start byte at byte 0",
        ),
        (b"null", "application/json", "the request body must be a JSON object, got null"),
        (b"5", "application/json", "the request body must be a JSON object, got a number"),
        (b'"x"', "application/json", "the request body must be a JSON object, got a string"),
        (b"true", "application/json", "the request body must be a JSON object, got a boolean"),
        (
            b'[{"query": "{ viewer { id } }"}]',
            "application/json",
            "the request body must be a JSON object, got an array",
        ),
        (
            b'{"query": "{ viewer { id } }"',
            "application/json",
            "the request body is not valid JSON: Expecting ',' delimiter: line 1 column 30"
            " (char 29)",
        ),
        (
            ('{"query": "{ viewer { id } }", "variables": {"v": ' + DEEP + "}}").encode(),
            "application/json",
            "the request body is nested too deeply",
        ),
        (b'{"query": "{ viewer { id } }"}', "text/plain", "Unsupported content type"),
        (b"{}", "application/json", "No GraphQL query found in the request"),
        (
            b'{"query": 5}',
            "application/json",
            "The GraphQL operation's `query` must be a string or null, if provided.",
        ),
        (
            b'{"query": "{ viewer { id } }", "variables": [1]}',
            "application/json",
            "The GraphQL operation's `variables` must be an object or null, if provided.",
        ),
    ],
    ids=[
        "not-utf8",
        "utf16",
        "null",
        "number",
        "string",
        "boolean",
        "batch",
        "truncated",
        "deep-variables",
        "content-type",
        "no-query",
        "query-not-string",
        "variables-not-object",
    ],
)
async def test_malformed_posts_are_400_in_graphql_shape(
    client: httpx.AsyncClient, content: bytes, content_type: str, message: str
) -> None:
    response = await client.post(
        "/graphql", content=content, headers={"content-type": content_type}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json() == _request_error(message)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            "{bad",
            "the variables query parameter is not valid JSON: Expecting property name enclosed"
            " in double quotes: line 1 column 2 (char 1)",
        ),
        ("5", "The GraphQL operation's `variables` must be an object or null, if provided."),
        (DEEP, "the variables query parameter is nested too deeply"),
    ],
    ids=["invalid", "number", "deep"],
)
async def test_get_with_bad_variables_is_400_in_graphql_shape(
    client: httpx.AsyncClient, variables: str, message: str
) -> None:
    response = await client.get(
        "/graphql", params={"query": "{ viewer { id } }", "variables": variables}
    )
    assert response.status_code == 400
    assert response.json() == _request_error(message)


async def test_a_get_mutation_is_400_in_graphql_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", params={"query": "mutation { __typename }"})
    assert response.status_code == 400
    assert response.json() == _request_error("mutations are not allowed when using GET")


# -------------------------------------------------------------------- conversations to refuse


@pytest.fixture
async def conversation_ids(
    db: Database, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> list[UUID]:
    importer = ConversationImporter(owner_writers, storage)
    ids = []
    for path in write_demo_set(tmp_path / "demo", 3, seed=5):
        result = await importer.import_file(path)
        assert result.conversation_id is not None
        ids.append(result.conversation_id)
    return ids


async def _training_state(db: Database, storage: LocalStorage) -> tuple[Any, ...]:
    """Every training-file row, member row and stored training object."""
    async with db.session() as conn:
        files = [dict(r) for r in await conn.fetch("SELECT * FROM training_files ORDER BY id")]
        members = [
            dict(r)
            for r in await conn.fetch(
                "SELECT * FROM training_file_conversations ORDER BY training_file_id, position"
            )
        ]
    root = storage.root / TRAINING_BUCKET
    objects = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    return files, members, objects


CREATE = """
mutation($input: CreateTrainingFileInput!) {
  createTrainingFile(input: $input) {
    trainingFile { id }
    userErrors { code field message conversationIds }
  }
}"""
ADD = """
mutation($input: AddConversationsInput!) {
  addConversations(input: $input) {
    trainingFile { id version }
    userErrors { code field message conversationIds }
  }
}"""


async def test_a_batch_body_runs_none_of_its_mutations(
    client: httpx.AsyncClient, db: Database, storage: LocalStorage, conversation_ids: list[UUID]
) -> None:
    operation = {
        "query": CREATE,
        "variables": {"input": {"name": "batched", "conversationIds": [str(conversation_ids[0])]}},
    }
    response = await client.post("/graphql", json=[operation, operation])
    assert response.status_code == 400
    assert response.json() == _request_error("the request body must be a JSON object, got an array")
    assert await _training_state(db, storage) == ([], [], set())


# -------------------------------------------------------------------- text PostgreSQL can't store

UNSTORABLE = [
    ("key\x00", "must not contain NUL characters (U+0000)"),
    ("\ud800", "must not contain unpaired surrogates (U+D800 to U+DFFF)"),
]


@pytest.mark.parametrize(("value", "reason"), UNSTORABLE, ids=["nul", "surrogate"])
@pytest.mark.parametrize(
    ("root", "argument"),
    [
        ("conversations", "personaKey"),
        ("conversations", "emotionalArcKey"),
        ("conversations", "trainingTopicKey"),
        ("trainingFiles", "nameContains"),
    ],
)
async def test_filters_refuse_text_postgresql_cannot_store(
    client: httpx.AsyncClient, root: str, argument: str, value: str, reason: str
) -> None:
    query = f"query($v: String) {{ {root}(filter: {{{argument}: $v}}) {{ totalCount }} }}"
    body = (await _post(client, query, v=value)).json()
    assert body["data"] is None
    assert [(e["message"], e["extensions"], e["path"]) for e in body["errors"]] == [
        (f"filter.{argument} {reason}", {"code": "BAD_USER_INPUT"}, [root])
    ]


@pytest.fixture
async def counted(
    settings: Settings, pools: Pools, storage: LocalStorage
) -> AsyncIterator[tuple[httpx.AsyncClient, InstrumentedStorage]]:
    """A client of an app whose storage counts every enriched file a build reads."""
    instrumented = InstrumentedStorage(storage)
    app = create_app(settings, Services.of(settings, pools, instrumented))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=bearer(settings, USER)
    ) as client:
        yield client, instrumented


@pytest.mark.parametrize(
    ("field", "value", "code", "message"),
    [
        # Names had a rule against control characters already; it covers NUL.
        ("name", "key\x00", "INVALID_NAME", "name must not contain control characters"),
        (
            "name",
            "\ud800",
            "INVALID_NAME",
            "name must not contain unpaired surrogates (U+D800 to U+DFFF)",
        ),
        (
            "description",
            "key\x00",
            "INVALID_DESCRIPTION",
            "description must not contain NUL characters (U+0000)",
        ),
        (
            "description",
            "\ud800",
            "INVALID_DESCRIPTION",
            "description must not contain unpaired surrogates (U+D800 to U+DFFF)",
        ),
    ],
)
async def test_names_and_descriptions_postgresql_cannot_store_are_refused_before_building(
    counted: tuple[httpx.AsyncClient, InstrumentedStorage],
    db: Database,
    storage: LocalStorage,
    conversation_ids: list[UUID],
    field: str,
    value: str,
    code: str,
    message: str,
) -> None:
    client, instrumented = counted
    given = {"name": "fine", "description": "fine", "conversationIds": [str(conversation_ids[0])]}
    given[field] = f"first {value} batch"
    body = (await _post(client, CREATE, input=given)).json()
    assert body == {
        "data": {
            "createTrainingFile": {
                "trainingFile": None,
                "userErrors": [
                    {
                        "code": code,
                        "field": field,
                        "message": message,
                        "conversationIds": [],
                    }
                ],
            }
        }
    }
    assert instrumented.reads == Counter()  # no build ran
    assert await _training_state(db, storage) == ([], [], set())


# -------------------------------------------------------------------- too many ids


def _many_ids(real: list[UUID]) -> list[str]:
    """25,000 ids, the real conversations and a malformed one among them: about 1 MB, under
    the body cap. Past the cap, no id is checked one by one (no INVALID_ID, no NOT_FOUND)."""
    given = [str(i) for i in real] + ["not-a-uuid"]
    return given + [str(uuid4()) for _ in range(25_000 - len(given))]


TOO_MANY = {
    "code": "TOO_MANY_CONVERSATIONS",
    "field": "conversationIds",
    "message": "at most 80 conversations per request, got 25000",
    "conversationIds": [],
}


async def test_25000_ids_are_refused_and_create_nothing(
    client: httpx.AsyncClient,
    settings: Settings,
    db: Database,
    storage: LocalStorage,
    conversation_ids: list[UUID],
) -> None:
    variables = {"input": {"name": "huge", "conversationIds": _many_ids(conversation_ids)}}
    content = json.dumps({"query": CREATE, "variables": variables})
    assert len(content) < settings.max_request_bytes

    response = await client.post(
        "/graphql", content=content, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 200
    assert response.json() == {
        "data": {"createTrainingFile": {"trainingFile": None, "userErrors": [TOO_MANY]}}
    }
    assert await _training_state(db, storage) == ([], [], set())


async def test_25000_ids_are_refused_and_add_nothing(
    client: httpx.AsyncClient, db: Database, storage: LocalStorage, conversation_ids: list[UUID]
) -> None:
    created = (
        await _post(
            client,
            CREATE,
            input={"name": "small", "conversationIds": [str(conversation_ids[0])]},
        )
    ).json()["data"]["createTrainingFile"]["trainingFile"]
    before = await _training_state(db, storage)
    ids = _many_ids(conversation_ids[1:])

    response = await _post(
        client, ADD, input={"trainingFileId": created["id"], "conversationIds": ids}
    )

    assert response.json() == {
        "data": {"addConversations": {"trainingFile": None, "userErrors": [TOO_MANY]}}
    }
    assert await _training_state(db, storage) == before
