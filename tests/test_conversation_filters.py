"""A curator's filters over HTTP: conversations by tier, quality range, human review,
scaffolding keys, import time, source date and title; training files by average quality and
conversation count. What each must match is worked out from the source files
(tests/product_rules.py, tests/varied_sources.py), not read back from the rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.services import Services
from graphql_api.storage.base import Storage

from . import product_rules as rules
from .conftest import USER
from .sources import Source, import_sources
from .varied_sources import keys_of, title, titled, unreviewed, without_keys, write_varied

LIST = """
query($filter: ConversationFilterInput) {
  conversations(filter: $filter, first: 100) { totalCount nodes { id title } }
}
"""
FILES = """
query($filter: TrainingFileFilterInput) {
  trainingFiles(filter: $filter, first: 100) { totalCount nodes { id } }
}
"""
CHANGES = {
    0: [without_keys()],
    1: [without_keys()],
    2: [without_keys("persona")],
    3: [unreviewed],
    4: [unreviewed],
    5: [unreviewed],
    6: [titled("Fee 100%_off plan")],
    7: [titled("Fee 1000 off plan")],
    8: [titled("Back\\slash plan")],
    9: [titled("FEE 100%_OFF PLAN")],
}
FIRST_BATCH = 20


@dataclass(frozen=True)
class Imported:
    sources: list[Source]
    # A moment after the first FIRST_BATCH imports committed and before the others began.
    between: dt.datetime


async def gql(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def imported(
    db: Database, owner_writers: WriterPool, storage: Storage, tmp_path: Path
) -> Imported:
    paths = write_varied(tmp_path / "demo", 30, 11, CHANGES)
    first = await import_sources(owner_writers, storage, paths[:FIRST_BATCH])
    async with db.session() as conn:
        between = await conn.fetchval("SELECT clock_timestamp()")
    rest = await import_sources(owner_writers, storage, paths[FIRST_BATCH:])
    sources = first + rest
    # The changes did what they say, by the rules the tests expect with.
    assert all(k == "" for k in keys_of(sources[0].document))
    assert keys_of(sources[2].document)[0] == "" and keys_of(sources[2].document)[1] != ""
    assert rules.human_reviewed(sources[3].document) == 0
    return Imported(sources, between)


def _score(document: dict[str, Any]) -> Decimal | None:
    return rules.conversation_score(document)


def _within(low: str | None, high: str | None) -> Callable[[dict[str, Any]], bool]:
    def matches(document: dict[str, Any]) -> bool:
        score = _score(document)
        if score is None:
            return False
        return (low is None or score >= Decimal(low)) and (high is None or score <= Decimal(high))

    return matches


def _source_date(document: dict[str, Any]) -> dt.date:
    return dt.date.fromisoformat(document["dataset_metadata"]["created_date"])


def _has_all_keys(document: dict[str, Any]) -> bool:
    return all(keys_of(document))


def _title_has(text: str) -> Callable[[dict[str, Any]], bool]:
    def matches(document: dict[str, Any]) -> bool:
        found = title(document)
        return found is not None and text.lower() in found.lower()

    return matches


FILTERS: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
    ({"maxQuality": 4}, _within(None, "4")),
    ({"minQuality": 3.2, "maxQuality": 4.4}, _within("3.2", "4.4")),
    # Both bounds inclusive: five conversations score exactly 3.00.
    ({"minQuality": 3, "maxQuality": 3}, _within("3", "3")),
    ({"tiers": ["SEED_DATASET"]}, lambda d: rules.tier(_score(d)) == "seed_dataset"),
    (
        {"tiers": ["PRODUCTION", "EXPERIMENTAL"]},
        lambda d: rules.tier(_score(d)) in ("production", "experimental"),
    ),
    ({"tiers": []}, lambda d: False),
    ({"humanReviewed": True}, lambda d: rules.human_reviewed(d) > 0),
    ({"humanReviewed": False}, lambda d: rules.human_reviewed(d) == 0),
    ({"hasScaffolding": True}, _has_all_keys),
    ({"hasScaffolding": False}, lambda d: not _has_all_keys(d)),
    ({"sourceCreatedFrom": "2025-04-01"}, lambda d: _source_date(d) >= dt.date(2025, 4, 1)),
    (
        {"sourceCreatedFrom": "2025-03-01", "sourceCreatedTo": "2025-08-31"},
        lambda d: dt.date(2025, 3, 1) <= _source_date(d) <= dt.date(2025, 8, 31),
    ),
    ({"titleContains": "fee 100%_off"}, _title_has("fee 100%_off")),
    # Wildcards are literal: "0%_o" would match "1000 off" as a pattern.
    ({"titleContains": "0%_o"}, _title_has("0%_o")),
    ({"titleContains": "_"}, _title_has("_")),
    ({"titleContains": "%"}, _title_has("%")),
    ({"titleContains": "\\"}, _title_has("\\")),
    ({"titleContains": "k\\s"}, _title_has("k\\s")),
    ({"titleContains": ""}, lambda d: True),
    (
        {"hasScaffolding": True, "humanReviewed": True, "tiers": ["SEED_DATASET", "PRODUCTION"]},
        lambda d: (
            _has_all_keys(d)
            and rules.human_reviewed(d) > 0
            and rules.tier(_score(d)) in ("seed_dataset", "production")
        ),
    ),
]


@pytest.mark.parametrize(("graphql_filter", "matches"), FILTERS)
async def test_each_filter_matches_what_the_files_say(
    client: httpx.AsyncClient,
    imported: Imported,
    graphql_filter: dict[str, Any],
    matches: Callable[[dict[str, Any]], bool],
) -> None:
    body = await gql(client, LIST, filter=graphql_filter)
    assert "errors" not in body, body
    connection = body["data"]["conversations"]
    expected = {str(s.id) for s in imported.sources if matches(s.document)}
    assert {n["id"] for n in connection["nodes"]} == expected
    assert connection["totalCount"] == len(expected)


async def test_every_filter_selects_some_but_not_all(imported: Imported) -> None:
    """The corpus is varied enough for each filter above to tell conversations apart."""
    documents = [s.document for s in imported.sources]
    for graphql_filter, matches in FILTERS:
        if graphql_filter in ({"tiers": []}, {"titleContains": ""}):
            continue
        chosen = sum(1 for d in documents if matches(d))
        assert 0 < chosen < len(documents), graphql_filter


async def test_created_range_splits_the_imports(
    client: httpx.AsyncClient, imported: Imported
) -> None:
    between = imported.between.isoformat()
    first = {str(s.id) for s in imported.sources[:FIRST_BATCH]}
    rest = {str(s.id) for s in imported.sources[FIRST_BATCH:]}

    after = await gql(client, LIST, filter={"createdAfter": between})
    assert {n["id"] for n in after["data"]["conversations"]["nodes"]} == rest
    before = await gql(client, LIST, filter={"createdBefore": between})
    assert {n["id"] for n in before["data"]["conversations"]["nodes"]} == first
    both = await gql(
        client, LIST, filter={"createdAfter": between, "createdBefore": "2999-01-01T00:00:00Z"}
    )
    assert {n["id"] for n in both["data"]["conversations"]["nodes"]} == rest


async def test_titles_are_shown_as_the_files_give_them(
    client: httpx.AsyncClient, imported: Imported
) -> None:
    body = await gql(client, LIST, filter=None)
    shown = {n["id"]: n["title"] for n in body["data"]["conversations"]["nodes"]}
    assert shown == {str(s.id): title(s.document) for s in imported.sources}


@pytest.mark.parametrize(
    ("graphql_filter", "message"),
    [
        (
            {"minQuality": 4, "maxQuality": 3},
            "filter.minQuality (4) is above filter.maxQuality (3)",
        ),
        ({"minQuality": -1}, "filter.minQuality must be between 0 and 5, got -1"),
        ({"maxQuality": 5.5}, "filter.maxQuality must be between 0 and 5, got 5.5"),
        (
            {"createdAfter": "2025-02-01T00:00:00Z", "createdBefore": "2025-01-01T00:00:00Z"},
            "filter.createdAfter (2025-02-01 00:00:00+00:00) is above filter.createdBefore",
        ),
        (
            {"sourceCreatedFrom": "2025-02-01", "sourceCreatedTo": "2025-01-01"},
            "filter.sourceCreatedFrom (2025-02-01) is above filter.sourceCreatedTo (2025-01-01)",
        ),
    ],
)
async def test_bad_conversation_ranges_are_refused(
    client: httpx.AsyncClient, db: Database, graphql_filter: dict[str, Any], message: str
) -> None:
    body = await gql(client, LIST, filter=graphql_filter)
    assert body["data"] is None
    (error,) = body["errors"]
    assert message in error["message"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_both_bad_bounds_are_reported_at_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    body = await gql(client, LIST, filter={"minQuality": 9, "maxQuality": -2})
    message = body["errors"][0]["message"]
    assert "filter.minQuality must be between 0 and 5, got 9" in message
    assert "filter.maxQuality must be between 0 and 5, got -2" in message


# -- training files --------------------------------------------------------------------------


@pytest.fixture
async def files(services: Services, imported: Imported) -> list[tuple[UUID, list[dict[str, Any]]]]:
    """Training files of USER with 1 to 6 members; each with its members' documents."""
    made = []
    sources = imported.sources
    for n in range(6):
        members = sources[n * 4 : n * 4 + 1 + n]
        record = await services.training_files.create_training_file(
            USER, f"file {n}", None, [s.id for s in members]
        )
        made.append((record.id, [s.document for s in members]))
    return made


def _average(documents: list[dict[str, Any]]) -> Decimal | None:
    return rules.quality(documents).average


@pytest.mark.parametrize(
    ("graphql_filter", "matches"),
    [
        ({"minConversationCount": 3}, lambda docs: len(docs) >= 3),
        ({"minConversationCount": 2, "maxConversationCount": 4}, lambda docs: 2 <= len(docs) <= 4),
        ({"maxConversationCount": 0}, lambda docs: False),
        (
            {"minAverageQuality": 3.9},
            lambda docs: (a := _average(docs)) is not None and a >= Decimal("3.9"),
        ),
        (
            {"minAverageQuality": 3.5, "maxAverageQuality": 4.2},
            lambda docs: (
                (a := _average(docs)) is not None and Decimal("3.5") <= a <= Decimal("4.2")
            ),
        ),
        (
            {"maxAverageQuality": 4, "minConversationCount": 2},
            lambda docs: (a := _average(docs)) is not None and a <= 4 and len(docs) >= 2,
        ),
    ],
)
async def test_training_file_filters(
    client: httpx.AsyncClient,
    files: list[tuple[UUID, list[dict[str, Any]]]],
    graphql_filter: dict[str, Any],
    matches: Callable[[list[dict[str, Any]]], bool],
) -> None:
    body = await gql(client, FILES, filter=graphql_filter)
    assert "errors" not in body, body
    expected = {str(file_id) for file_id, docs in files if matches(docs)}
    connection = body["data"]["trainingFiles"]
    assert {n["id"] for n in connection["nodes"]} == expected
    assert connection["totalCount"] == len(expected)


async def test_the_average_quality_filters_tell_the_files_apart(
    files: list[tuple[UUID, list[dict[str, Any]]]],
) -> None:
    averages = [_average(docs) for _, docs in files]
    assert any(a is not None and a >= Decimal("3.9") for a in averages)
    assert any(a is not None and a < Decimal("3.9") for a in averages)


@pytest.mark.parametrize(
    ("graphql_filter", "message"),
    [
        (
            {"minAverageQuality": 4.5, "maxAverageQuality": 4},
            "filter.minAverageQuality (4.5) is above filter.maxAverageQuality (4)",
        ),
        ({"minAverageQuality": 6}, "filter.minAverageQuality must be between 0 and 5, got 6"),
        (
            {"minConversationCount": 5, "maxConversationCount": 2},
            "filter.minConversationCount (5) is above filter.maxConversationCount (2)",
        ),
        ({"maxConversationCount": -1}, "filter.maxConversationCount must be 0 or more, got -1"),
    ],
)
async def test_bad_training_file_ranges_are_refused(
    client: httpx.AsyncClient, db: Database, graphql_filter: dict[str, Any], message: str
) -> None:
    body = await gql(client, FILES, filter=graphql_filter)
    assert body["data"] is None
    (error,) = body["errors"]
    assert message in error["message"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    ("literal", "message"),
    [
        ('createdAfter: "2000-01-01T00:00:00"', "has no time zone"),
        ('createdBefore: "yesterday"', "is not an RFC 3339 date-time"),
        ('sourceCreatedFrom: "2025-13-01"', "is not an RFC 3339 full-date"),
    ],
)
async def test_bad_instants_and_days_are_the_callers_mistake(
    client: httpx.AsyncClient, db: Database, literal: str, message: str
) -> None:
    """In the document or in variables: a request error saying what is wrong (with no code,
    as every validation error), never taken for a bug (INTERNAL_SERVER_ERROR)."""
    name, _, value = literal.partition(": ")
    in_document = await gql(client, "{ conversations(filter: {" + literal + "}) { totalCount } }")
    in_variables = await gql(client, LIST, filter={name: value.strip('"')})
    for body in (in_document, in_variables):
        assert body.get("data") is None
        (error,) = body["errors"]
        assert "extensions" not in error, error
        assert message in error["message"]
