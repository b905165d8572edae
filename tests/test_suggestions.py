"""`suggestConversations` over HTTP: the suggestions, once added with addConversations, make
the file more even on each requested dimension (shares computed here from the source files);
each is eligible and not in the file; count, minQuality and determinism; bad arguments."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.storage.base import Storage

from . import product_rules as rules
from .sources import Source
from .training_file_graphql import add, create, gql
from .varied_sources import import_varied, keys_of, without_keys

SUGGEST = """
query($file: ID, $count: Int!, $minQuality: Float, $dimensions: [ScaffoldingDimension!]) {
  suggestConversations(trainingFileId: $file, count: $count, minQuality: $minQuality,
                       dimensions: $dimensions) {
    reason conversation { id personaKey emotionalArcKey trainingTopicKey qualityScore }
  }
}"""
# Dimension -> its place in `keys_of`.
PLACE = {"PERSONA": 0, "EMOTIONAL_ARC": 1, "TRAINING_TOPIC": 2}
LABEL = {"PERSONA": "persona", "EMOTIONAL_ARC": "emotional arc", "TRAINING_TOPIC": "training topic"}
KEYLESS = (0, 1)


@pytest.fixture
async def imported(
    db: Database, owner_writers: WriterPool, storage: Storage, tmp_path: Path
) -> list[Source]:
    changes = {i: [without_keys()] for i in KEYLESS}
    return await import_varied(owner_writers, storage, tmp_path / "demo", 40, 23, changes)


async def suggest(client: httpx.AsyncClient, **variables: Any) -> list[dict[str, Any]]:
    body = await gql(client, SUGGEST, **variables)
    assert "errors" not in body, body
    result: list[dict[str, Any]] = body["data"]["suggestConversations"]
    return result


def _best_first(sources: Sequence[Source]) -> list[Source]:
    """By quality score, highest first, unscored last, then by id."""

    def rank(s: Source) -> tuple[bool, Decimal, UUID]:
        score = rules.conversation_score(s.document)
        return (score is None, -(score or Decimal(0)), s.id)

    return sorted(sources, key=rank)


def _spread(documents: Sequence[dict[str, Any]], place: int, universe: set[str]) -> Fraction:
    """Largest minus smallest share of the file's conversations among the keys a file could
    have (a key no member has counts as a share of 0)."""
    counts = Counter(keys_of(d)[place] for d in documents)
    shares = [Fraction(counts[k], len(documents)) for k in universe]
    return max(shares) - min(shares)


def _universe(sources: Sequence[Source], place: int) -> set[str]:
    return {keys_of(s.document)[place] for s in sources} - {""}


async def test_from_nothing_one_per_persona_the_best_of_each(
    client: httpx.AsyncClient, imported: list[Source]
) -> None:
    # Balancing personas only: a conversation needs a persona key, nothing else.
    keyed = [s for s in imported if keys_of(s.document)[0]]
    personas = {keys_of(s.document)[0] for s in keyed}
    assert len(personas) == 3
    found = await suggest(client, count=3, dimensions=["PERSONA"])

    best = _best_first(keyed)
    best_of_each = {p: next(s for s in best if keys_of(s.document)[0] == p) for p in personas}
    assert {f["conversation"]["id"] for f in found} == {str(s.id) for s in best_of_each.values()}
    # The first has nothing to balance against: simply the best.
    first = best[0]
    assert found[0]["conversation"]["id"] == str(first.id)
    assert found[0]["reason"] == f"adds persona {keys_of(first.document)[0]}: 0 → 1 of 1"
    assert [f["reason"].endswith(f"0 → 1 of {n}") for n, f in enumerate(found, 1)] == [True] * 3


@pytest.mark.parametrize(
    "dimensions", [None, ["PERSONA"], ["EMOTIONAL_ARC", "TRAINING_TOPIC"], ["TRAINING_TOPIC"]]
)
async def test_adding_the_suggestions_lowers_the_spread_on_each_dimension(
    client: httpx.AsyncClient, imported: list[Source], dimensions: list[str] | None
) -> None:
    keyed = [s for s in imported if all(keys_of(s.document))]
    # A lopsided file: five conversations of one persona.
    persona = Counter(keys_of(s.document)[0] for s in keyed).most_common(1)[0][0]
    start = [s for s in keyed if keys_of(s.document)[0] == persona][:5]
    file = await create(client, "lopsided", [s.id for s in start])

    found = await suggest(client, file=file["id"], count=9, dimensions=dimensions)
    assert len(found) == 9
    by_id = {str(s.id): s for s in imported}
    chosen = [by_id[f["conversation"]["id"]] for f in found]
    added = await add(client, file["id"], [s.id for s in chosen])
    assert added["userErrors"] == [], added
    assert added["trainingFile"]["conversationCount"] == 14

    after = start + chosen
    for dimension in dimensions or list(PLACE):
        place = PLACE[dimension]
        universe = _universe(imported, place)
        before_spread = _spread([s.document for s in start], place, universe)
        after_spread = _spread([s.document for s in after], place, universe)
        assert after_spread < before_spread, (dimension, before_spread, after_spread)

    # Each reason counts the file as it grows, one suggestion at a time.
    counts = {d: Counter(keys_of(s.document)[PLACE[d]] for s in start) for d in PLACE}
    for n, (f, source) in enumerate(zip(found, chosen, strict=True), start=len(start) + 1):
        parts = []
        for dimension in dimensions or list(PLACE):
            key = keys_of(source.document)[PLACE[dimension]]
            parts.append(f"{LABEL[dimension]} {key}: {counts[dimension][key]} → ")
            counts[dimension][key] += 1
            parts[-1] += f"{counts[dimension][key]} of {n}"
        assert f["reason"] == "adds " + ", ".join(parts)


async def test_every_suggestion_is_eligible_not_in_the_file_and_good_enough(
    client: httpx.AsyncClient, db: Database, imported: list[Source]
) -> None:
    # Not enriched, yet with keys and a perfect score: never suggested.
    pending = uuid4()
    async with db.session() as conn:
        await conn.execute(
            "INSERT INTO conversations (conversation_id, enrichment_status, persona_key,"
            " emotional_arc_key, training_topic_key, quality_score)"
            " VALUES ($1, 'not_started', 'anxious_planner', 'fear_to_confidence',"
            " 'eldercare_costs', 5)",
            pending,
        )
    members = imported[2:8]
    file = await create(client, "some", [s.id for s in members])
    in_file = {str(s.id) for s in members}

    found = await suggest(client, file=file["id"], count=80, minQuality=3.5)
    ids = [f["conversation"]["id"] for f in found]
    expected = {
        str(s.id)
        for s in imported
        if str(s.id) not in in_file
        and all(keys_of(s.document))
        and (score := rules.conversation_score(s.document)) is not None
        and score >= Decimal("3.5")
    }
    # Fewer than asked: every candidate, each once.
    assert len(ids) == len(set(ids)) == len(expected) < 80
    assert set(ids) == expected
    assert str(pending) not in ids
    assert not {str(imported[i].id) for i in KEYLESS} & set(ids)

    few = await suggest(client, file=file["id"], count=4, minQuality=3.5)
    assert len(few) == 4
    assert few == found[:4]  # the same greedy, stopped earlier
    assert await suggest(client, file=file["id"], count=4, minQuality=3.5) == few


@pytest.mark.parametrize(
    ("variables", "code", "message"),
    [
        ({"count": 0}, "BAD_USER_INPUT", "count must be between 1 and 80, got 0"),
        ({"count": 81}, "BAD_USER_INPUT", "count must be between 1 and 80, got 81"),
        (
            {"count": 3, "minQuality": 7},
            "BAD_USER_INPUT",
            "minQuality must be between 0 and 5, got 7",
        ),
        ({"count": 3, "dimensions": []}, "BAD_USER_INPUT", "dimensions: give at least one"),
        ({"count": 3, "file": "nope"}, "BAD_USER_INPUT", "trainingFileId: 'nope' is not a UUID"),
        (
            {"count": 3, "file": "00000000-0000-4000-8000-0000000000ee"},
            "NOT_FOUND",
            "training file 00000000-0000-4000-8000-0000000000ee does not exist",
        ),
    ],
)
async def test_bad_arguments_are_refused(
    client: httpx.AsyncClient, db: Database, variables: dict[str, Any], code: str, message: str
) -> None:
    body = await gql(client, SUGGEST, **variables)
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == code
    assert message in error["message"]
