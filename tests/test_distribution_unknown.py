"""The `unknown` entry of a file's scaffolding distribution: conversations without a key are
counted, so each list adds up to the file (100 %), on the resolvers' path and the compiled one;
the stored file's own metadata counts keys only, as before."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphql_api.app import create_app
from graphql_api.config import Settings
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.graphql.view import GraphQLView
from graphql_api.services import Services
from graphql_api.storage.base import Storage

from . import product_rules as rules
from .conftest import USER, bearer
from .sources import Source, documents_of
from .training_file_graphql import GRAPHQL_KINDS, create, download, expected_distribution
from .varied_sources import import_varied, keys_of, without_keys

DISTRIBUTION = """query ($id: ID!) { trainingFile(id: $id) { conversationCount
  scaffoldingDistribution {
    personas { key name count percentage unknown }
    emotionalArcs { key name count percentage unknown }
    trainingTopics { key name count percentage unknown }
  } } }"""


@pytest.fixture
async def uncached(
    settings: Settings, services: Services
) -> AsyncIterator[tuple[httpx.AsyncClient, GraphQLView]]:
    """A client of an app without a response cache, so a repeated read is compiled."""
    app = create_app(replace(settings, response_cache_bytes=0), services)
    view = next(r.app for r in app.routes if getattr(r, "path", "") == "/graphql")
    assert isinstance(view, GraphQLView)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=bearer(settings, USER)
    ) as client:
        yield client, view


@pytest.fixture
async def sources(
    db: Database, owner_writers: WriterPool, storage: Storage, tmp_path: Path
) -> list[Source]:
    changes = {
        0: [without_keys()],
        1: [without_keys("persona")],
        2: [without_keys("training_topic")],
    }
    return await import_varied(owner_writers, storage, tmp_path / "demo", 8, 5, changes)


async def _both_paths(
    uncached: tuple[httpx.AsyncClient, GraphQLView], file_id: str
) -> dict[str, Any]:
    """The distribution as the resolvers answer it, checked equal to the compiled answer."""
    client, view = uncached
    body = {"query": DISTRIBUTION, "variables": {"id": file_id}}
    before = view.compiled.answered
    reference = (await client.post("/graphql", json=body)).json()
    compiled = (await client.post("/graphql", json=body)).json()
    assert view.compiled.answered == before + 1, "the second answer was not compiled"
    assert "errors" not in reference, reference
    assert compiled == reference
    result: dict[str, Any] = reference["data"]["trainingFile"]
    return result


def _with_flags(expected: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    return {
        kind: [{**e, "unknown": e["key"] == "unknown" and e["name"] is None} for e in entries]
        for kind, entries in expected.items()
    }


async def test_a_one_conversation_file_without_keys_shows_the_unknown_entry(
    uncached: tuple[httpx.AsyncClient, GraphQLView], sources: list[Source]
) -> None:
    client, _ = uncached
    keyless = sources[0]
    assert all(
        v == "" for k, v in rules.scaffolding(keyless.document).items() if k.endswith("_key")
    )
    file = await create(client, "keyless", [keyless.id])
    answer = await _both_paths(uncached, file["id"])
    only = {"key": "unknown", "name": None, "count": 1, "percentage": 100.0, "unknown": True}
    assert answer["scaffoldingDistribution"] == {
        "personas": [only],
        "emotionalArcs": [only],
        "trainingTopics": [only],
    }


async def test_each_list_adds_up_to_the_file(
    uncached: tuple[httpx.AsyncClient, GraphQLView], sources: list[Source]
) -> None:
    client, _ = uncached
    file = await create(client, "mixed", [s.id for s in sources])
    answer = await _both_paths(uncached, file["id"])
    distribution = answer["scaffoldingDistribution"]
    assert distribution == _with_flags(expected_distribution(sources))
    missing = rules.missing_keys(documents_of(sources))
    # The changed files at least (older demo files name no arc or topic key either).
    assert missing["personas"] == 2 and missing["emotional_arcs"] >= 1
    assert missing["training_topics"] >= 2
    for graphql_kind, kind in GRAPHQL_KINDS:
        entries = distribution[graphql_kind]
        assert entries[-1] == {
            "key": "unknown",
            "name": None,
            "count": missing[kind],
            "percentage": float(rules.percent(missing[kind], len(sources))),
            "unknown": True,
        }
        assert sum(e["count"] for e in entries) == answer["conversationCount"] == len(sources)
        # Each share is rounded to cents, so the sum is 100 within half a cent per entry.
        total = sum(Decimal(str(e["percentage"])) for e in entries)
        assert abs(total - 100) <= Decimal("0.005") * len(entries)


async def test_a_file_with_every_key_has_no_unknown_entry(
    uncached: tuple[httpx.AsyncClient, GraphQLView], sources: list[Source]
) -> None:
    client, _ = uncached
    keyed = [s for s in sources if all(keys_of(s.document))]
    assert len(keyed) >= 2
    file = await create(client, "keyed", [s.id for s in keyed])
    distribution = (await _both_paths(uncached, file["id"]))["scaffoldingDistribution"]
    assert distribution == _with_flags(expected_distribution(keyed))
    assert not any(e["unknown"] for entries in distribution.values() for e in entries)


async def test_the_stored_file_counts_keys_only(
    uncached: tuple[httpx.AsyncClient, GraphQLView], sources: list[Source]
) -> None:
    client, _ = uncached
    file = await create(client, "stored", [s.id for s in sources])
    _, response = await download(client, file["id"], "JSON")
    metadata = json.loads(response.content)["training_file_metadata"]
    assert metadata["scaffolding_distribution"] == rules.file_distribution(documents_of(sources))
    assert "unknown" not in json.dumps(metadata["scaffolding_distribution"])
