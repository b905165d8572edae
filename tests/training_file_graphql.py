"""Shared by the training-file GraphQL tests: the operations, real HTTP helpers, state
snapshots, and the values a file must report, computed from its enriched source files."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx

from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.storage.base import TRAINING_BUCKET
from graphql_api.storage.local import LocalStorage

from . import product_rules as rules
from .sources import Source, documents_of, import_demo

FILE_FIELDS = """
  id name description status version conversationCount pairCount trainablePairCount
  jsonFileSize jsonlFileSize createdBy createdAt updatedAt lastUpdatedAt
  qualitySummary { average minimum maximum humanReviewedCount humanReviewedPercentage }
  scaffoldingDistribution {
    personas { key name count percentage }
    emotionalArcs { key name count percentage }
    trainingTopics { key name count percentage }
  }
"""
USER_ERRORS = "userErrors { code field message conversationIds }"
CREATE = f"""
mutation($input: CreateTrainingFileInput!) {{
  createTrainingFile(input: $input) {{ trainingFile {{ {FILE_FIELDS} }} {USER_ERRORS} }}
}}"""
ADD = f"""
mutation($input: AddConversationsInput!) {{
  addConversations(input: $input) {{ trainingFile {{ {FILE_FIELDS} }} {USER_ERRORS} }}
}}"""
ARCHIVE = f"""
mutation($id: ID!) {{
  archiveTrainingFile(input: {{id: $id}}) {{ trainingFile {{ id status }} {USER_ERRORS} }}
}}"""
RESTORE = f"""
mutation($id: ID!) {{
  restoreTrainingFile(input: {{id: $id}}) {{ trainingFile {{ id status }} {USER_ERRORS} }}
}}"""
DELETE = f"""
mutation($id: ID!) {{
  deleteTrainingFile(input: {{id: $id}}) {{ deletedTrainingFileId {USER_ERRORS} }}
}}"""
DOWNLOAD = """
mutation($id: ID!, $format: TrainingFileFormat!) {
  downloadUrl(input: {trainingFileId: $id, format: $format}) {
    url filename expiresInSeconds expiresAt userErrors { code field message }
  }
}"""
LIST_FILES = """
query($filter: TrainingFileFilterInput, $first: Int, $after: String) {
  trainingFiles(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id name status createdAt } }
  }
}"""
FILE_CONVERSATIONS = """
query($id: ID!, $first: Int, $after: String) {
  trainingFile(id: $id) {
    id
    conversations(first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { cursor node { id } }
    }
  }
}"""
GRAPHQL_KINDS = (
    ("personas", "personas"),
    ("emotionalArcs", "emotional_arcs"),
    ("trainingTopics", "training_topics"),
)


# ------------------------------------------------------------------------------ requests


async def gql(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    return response.json()


async def create(
    client: httpx.AsyncClient,
    name: str,
    ids: Sequence[UUID],
    description: str | None = None,
) -> dict[str, Any]:
    body = await gql(
        client,
        CREATE,
        input={"name": name, "description": description, "conversationIds": [str(i) for i in ids]},
    )
    assert "errors" not in body, body
    payload = body["data"]["createTrainingFile"]
    assert payload["userErrors"] == []
    return payload["trainingFile"]


async def add(client: httpx.AsyncClient, file_id: str, ids: Sequence[UUID]) -> dict[str, Any]:
    body = await gql(
        client, ADD, input={"trainingFileId": file_id, "conversationIds": [str(i) for i in ids]}
    )
    assert "errors" not in body, body
    return body["data"]["addConversations"]


async def download(
    client: httpx.AsyncClient, file_id: str, file_format: str
) -> tuple[dict[str, Any], httpx.Response]:
    """The `downloadUrl` payload, and the response of fetching its url."""
    body = await gql(client, DOWNLOAD, id=file_id, format=file_format)
    assert "errors" not in body, body
    payload = body["data"]["downloadUrl"]
    assert payload["userErrors"] == []
    return payload, await client.get(payload["url"])


def errors_of(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["extensions"]["code"], e["message"]) for e in body["errors"]]


# ------------------------------------------------------------------------------ state


async def import_thirty(
    owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> list[Source]:
    """30 generated, enriched conversations, imported; their source files in generation order."""
    return await import_demo(owner_writers, storage, tmp_path / "demo", 30, seed=11)


async def members(db: Database, file_id: str | UUID) -> list[tuple[UUID, int, UUID]]:
    async with db.session() as conn:
        found = await conn.fetch(
            "SELECT conversation_id, position, added_by FROM training_file_conversations"
            " WHERE training_file_id = $1 ORDER BY position",
            UUID(str(file_id)),
        )
    return [(r["conversation_id"], r["position"], r["added_by"]) for r in found]


async def snapshot(db: Database, storage: LocalStorage) -> tuple[Any, ...]:
    """Every training-file row, junction row and stored training object."""
    async with db.session() as conn:
        files = [dict(r) for r in await conn.fetch("SELECT * FROM training_files ORDER BY id")]
        junction = [
            dict(r)
            for r in await conn.fetch(
                "SELECT * FROM training_file_conversations ORDER BY training_file_id, position"
            )
        ]
        retired = [dict(r) for r in await conn.fetch("SELECT * FROM retired_objects")]
    root = storage.root / TRAINING_BUCKET
    objects = {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
    return files, junction, retired, objects


async def insert_pending(db: Database) -> UUID:
    """A conversation that is not enriched yet (no stored file)."""
    pending = uuid4()
    async with db.session() as conn:
        await conn.execute(
            "INSERT INTO conversations (conversation_id, enrichment_status)"
            " VALUES ($1, 'not_started')",
            pending,
        )
    return pending


# ------------------------------------------------------------------------------ expected values


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def expected_quality(sources: Sequence[Source]) -> dict[str, Any]:
    """`qualitySummary` of a file of these conversations, from their source files."""
    quality = rules.quality(documents_of(sources))
    return {
        "average": _number(quality.average),
        "minimum": _number(quality.minimum),
        "maximum": _number(quality.maximum),
        "humanReviewedCount": quality.reviewed,
        "humanReviewedPercentage": float(quality.reviewed_percentage),
    }


def expected_file_quality(sources: Sequence[Source]) -> dict[str, Any]:
    """`quality_summary` of the full JSON (JSON numbers: 3 and 3.0 compare equal)."""
    quality = rules.quality(documents_of(sources))
    return {
        "avg_quality_score": _number(quality.average),
        "min_quality_score": _number(quality.minimum),
        "max_quality_score": _number(quality.maximum),
        "human_reviewed_count": quality.reviewed,
        "human_reviewed_percentage": float(quality.reviewed_percentage),
    }


def expected_distribution(sources: Sequence[Source]) -> dict[str, list[dict[str, Any]]]:
    """`scaffoldingDistribution`: keys in order of first appearance in the file, with counts
    and their share of the file's conversations, then `unknown` for those without a key."""
    shares = rules.distribution(documents_of(sources))
    missing = rules.missing_keys(documents_of(sources))

    def entry(key: str, name: str | None, count: int) -> dict[str, Any]:
        percentage = float(rules.percent(count, len(sources)))
        return {"key": key, "name": name, "count": count, "percentage": percentage}

    return {
        graphql_kind: [entry(s.key, s.name, s.count) for s in shares[kind]]
        + ([entry("unknown", None, missing[kind])] if missing[kind] else [])
        for graphql_kind, kind in GRAPHQL_KINDS
    }


def total_pairs(sources: Sequence[Source]) -> int:
    return sum(len(rules.pairs(s.document)) for s in sources)


def trainable_pairs(sources: Sequence[Source]) -> int:
    return sum(rules.trainable(s.document) for s in sources)


def rounding_tie(sources: Sequence[Source]) -> list[Source]:
    """Three conversations whose human-reviewed percentage lies exactly halfway between two
    cents where half-up and half-even rounding disagree (e.g. 65.625): the file and the API
    must still report the half-up number."""
    for trio in itertools.combinations(sources, 3):
        reviewed = sum(rules.human_reviewed(s.document) for s in trio)
        exact = Decimal(reviewed * 100) / total_pairs(trio)
        cents = rules.CENTS
        if exact.quantize(cents, ROUND_HALF_UP) != exact.quantize(cents, ROUND_HALF_EVEN):
            return list(trio)
    raise AssertionError("the demo set (seed 11) no longer has a rounding tie")
