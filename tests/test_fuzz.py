"""Property-based fuzzing of the whole GraphQL schema through the ASGI app.

Valid and invalid operations generated from the schema itself: no response may be a 500 or
an unmasked error, and only an accepted mutation may change the database or storage; a
query, or a mutation refused in any way it can show (errors, userErrors, an empty payload),
must leave them unchanged.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from graphql import (
    GraphQLError,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    StringValueNode,
    parse,
)
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema

from graphql_api.app import create_app
from graphql_api.config import Settings
from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.graphql.schema import schema_sdl
from graphql_api.runtime import Pools
from graphql_api.services import Services
from graphql_api.storage.local import LocalStorage

from .conftest import USER, bearer

KNOWN_CODES = {"BAD_USER_INPUT", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "CONFLICT", None}
SCALARS = {
    "BigInt": st.integers(min_value=0, max_value=2**53).map(lambda v: IntValueNode(value=str(v))),
    "DateTime": st.datetimes().map(lambda v: StringValueNode(value=v.isoformat())),
    "Date": st.dates().map(lambda v: StringValueNode(value=v.isoformat())),
    # A literal is never a file (only multipart parts are): importConversations refuses it.
    "Upload": st.text(max_size=20).map(lambda v: StringValueNode(value=v)),
}
OPERATIONS = st.one_of(
    from_schema(schema_sdl(), custom_scalars=SCALARS),
    from_schema(schema_sdl(), custom_scalars=SCALARS, mode=Mode.NEGATIVE),
)


async def _snapshot(db: Database, storage: LocalStorage) -> tuple[Any, ...]:
    async with db.session() as conn:
        files = await conn.fetch("SELECT id, version, status, name FROM training_files ORDER BY id")
        members = await conn.fetchval("SELECT count(*) FROM training_file_conversations")
        conversations = await conn.fetchval("SELECT count(*) FROM conversations")
    objects = sorted(str(p) for p in storage.root.rglob("*") if p.is_file())
    return [tuple(r) for r in files], members, conversations, objects


def _check(response: httpx.Response) -> dict[str, Any]:
    """Assert the response is well-formed; return its body."""
    assert response.status_code in (200, 400), response.text
    body: dict[str, Any] = response.json()
    text = response.text
    assert "Traceback" not in text and "asyncpg" not in text and "SELECT " not in text
    errors = body.get("errors") or []
    for error in errors:
        code = error.get("extensions", {}).get("code")
        assert code in KNOWN_CODES, error
    return body


def _is_mutation(query: str) -> bool:
    try:
        document = parse(query)
    except GraphQLError:
        return False
    return any(
        isinstance(d, OperationDefinitionNode) and d.operation is OperationType.MUTATION
        for d in document.definitions
    )


def _empty_payload(value: Any) -> bool:
    """A payload whose result fields (url, trainingFile...) are all null: a refusal, whether
    or not the operation selected userErrors."""
    if not isinstance(value, dict):
        return False
    results = [v for k, v in value.items() if k not in ("userErrors", "__typename")]
    return bool(results) and all(v is None for v in results)


def _outcome(query: str, body: dict[str, Any]) -> str:
    if not _is_mutation(query):
        return "query"
    data = body.get("data")
    if body.get("errors") or _user_errors(data):
        return "refused mutation"
    if isinstance(data, dict) and any(_empty_payload(v) for v in data.values()):
        return "refused mutation"
    return "accepted mutation"


def _user_errors(data: Any) -> list[Any]:
    found: list[Any] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "userErrors" and value:
                found.extend(value)
            else:
                found.extend(_user_errors(value))
    elif isinstance(data, list):
        for item in data:
            found.extend(_user_errors(item))
    return found


async def test_fuzz_the_schema(
    db: Database,
    owner_writers: WriterPool,
    pools: Pools,
    storage: LocalStorage,
    settings: Settings,
    tmp_path: Path,
) -> None:
    importer = ConversationImporter(owner_writers, storage)
    for path in write_demo_set(tmp_path / "demo", 5, seed=3):
        await importer.import_file(path)
    services = Services.of(settings, pools, storage)
    app = create_app(settings, services)
    headers = bearer(settings, USER)
    loop = asyncio.get_running_loop()

    outcomes: Counter[str] = Counter()

    async def exercise(query: str) -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            before = await _snapshot(db, storage)
            response = await client.post("/graphql", json={"query": query}, headers=headers)
            outcome = _outcome(query, _check(response))
            outcomes[outcome] += 1
            if outcome != "accepted mutation":
                assert await _snapshot(db, storage) == before, query

    # Hypothesis drives a synchronous test; it runs in a thread and hands each request to
    # this event loop, where the pool and the app live.
    @hypothesis_settings(
        max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(query=OPERATIONS)
    def run(query: str) -> None:
        asyncio.run_coroutine_threadsafe(exercise(query), loop).result(timeout=60)

    await asyncio.to_thread(run)
    # The invariant was really put to the test: queries and refused mutations both ran.
    assert outcomes["query"] > 0 and outcomes["refused mutation"] > 0, outcomes
