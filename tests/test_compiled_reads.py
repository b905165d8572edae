"""The compiled read path answers exactly what the resolvers answer.

Each operation of the corpus is sent twice to an app with no response cache: the first request
of a document is run by Strawberry (the reference), the next by one SQL statement. The two
answers must be equal, JSON value for JSON value; the counters prove which path answered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from graphql_api.app import create_app
from graphql_api.config import Settings
from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.graphql.view import GraphQLView
from graphql_api.services import Services
from graphql_api.storage.local import LocalStorage

from .conftest import OTHER_USER, USER, bearer

FILE_FIELDS = """
  __typename id name description status version conversationCount pairCount
  trainablePairCount totalTrainingPairs trainablePairs jsonFileSize jsonlFileSize
  openaiChatFileSize hfDatasetFileSize createdBy createdAt updatedAt lastUpdatedAt
  qualitySummary { __typename average minimum maximum humanReviewedCount humanReviewedPercentage }
  scaffoldingDistribution {
    personas { key name count percentage unknown }
    emotionalArcs { __typename key name count percentage }
    trainingTopics { key count percentage }
  }
"""
CONVERSATION_FIELDS = """
  __typename id title personaKey personaName emotionalArcKey emotionalArcName trainingTopicKey
  trainingTopicName qualityScore empathyScore clarityScore appropriatenessScore
  brandVoiceAlignmentScore brandVoiceAlignment tier enrichmentStatus enrichedFileSize sourceCreatedDate totalTurns
  pairCount trainablePairCount humanReviewedCount createdAt updatedAt
  validation { valid blockers { code path message } warnings { code path message } }
"""
CORPUS: list[tuple[str, dict[str, Any]]] = [
    (
        f"""query ($first: Int) {{ trainingFiles(first: $first) {{
            __typename totalCount
            pageInfo {{ __typename hasNextPage hasPreviousPage startCursor endCursor }}
            edges {{ __typename cursor node {{ {FILE_FIELDS}
              conversations(first: 3) {{ totalCount pageInfo {{ hasNextPage endCursor }}
                edges {{ cursor node {{ {CONVERSATION_FIELDS} trainingFiles {{ id name }} }} }} }}
            }} }}
            nodes {{ id }}
        }} }}""",
        {"first": 4},
    ),
    (
        "{ trainingFiles(first: 0) { totalCount edges { cursor } pageInfo { hasNextPage startCursor endCursor } } }",
        {},
    ),
    ("{ trainingFiles { nodes { id conversations(first: 100) { nodes { id } } } } }", {}),
    (
        "query ($f: TrainingFileFilterInput) { trainingFiles(filter: $f, first: 50) "
        "{ totalCount nodes { id name status } } }",
        {"f": {"status": None}},
    ),
    (
        "query ($f: TrainingFileFilterInput) { trainingFiles(filter: $f) { totalCount nodes { id } } }",
        {"f": {"status": "ARCHIVED"}},
    ),
    (
        "query ($f: TrainingFileFilterInput) { trainingFiles(filter: $f) { totalCount nodes { name } } }",
        {"f": {"nameContains": "ILE 1", "createdBy": str(USER)}},
    ),
    (
        """query ($first: Int, $skip: Boolean!, $with: Boolean!) {
          a: trainingFiles(first: $first) { ...page }
          b: trainingFiles(first: 1) { edges { node { name @skip(if: $skip) id @include(if: $with) } } }
          viewer { __typename id }
        }
        fragment page on TrainingFileConnection { edges { cursor node { ...file ... on TrainingFile { version } } } }
        fragment file on TrainingFile { id name n: name conversationCount }""",
        {"first": 2, "skip": True, "with": True},
    ),
    (
        f"""query ($first: Int, $filter: ConversationFilterInput) {{
          conversations(first: $first, filter: $filter) {{ totalCount
            pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
            edges {{ cursor node {{ {CONVERSATION_FIELDS} trainingFiles {{ id conversationCount }} }} }} }} }}""",
        {"first": 5, "filter": None},
    ),
    (
        "query ($filter: ConversationFilterInput) { conversations(first: 100, filter: $filter) "
        "{ totalCount nodes { id personaKey qualityScore } } }",
        {"filter": {"minQuality": 3.5, "eligibleOnly": True}},
    ),
    (
        "query ($filter: ConversationFilterInput) { conversations(filter: $filter) { totalCount nodes { id } } }",
        {"filter": {"enrichmentStatus": "COMPLETED", "personaKey": "anxious_planner"}},
    ),
    (
        "query ($filter: ConversationFilterInput) { conversations(first: 100, filter: $filter) "
        "{ totalCount nodes { id title tier qualityScore humanReviewedCount } } }",
        {
            "filter": {
                "minQuality": 2.5,
                "maxQuality": 4.6,
                "tiers": ["PRODUCTION", "EXPERIMENTAL", "SEED_DATASET"],
                "humanReviewed": True,
                "hasScaffolding": True,
                "sourceCreatedFrom": "2025-02-01",
                "sourceCreatedTo": "2025-12-01",
                "createdAfter": "2000-01-01T00:00:00Z",
                "createdBefore": "2999-01-01T00:00:00Z",
            }
        },
    ),
    (
        "query ($a: ConversationFilterInput, $b: ConversationFilterInput, $c: ConversationFilterInput) {"
        " a: conversations(filter: $a) { totalCount nodes { id title } }"
        " b: conversations(filter: $b) { totalCount nodes { id } }"
        " c: conversations(filter: $c) { totalCount nodes { id } } }",
        {
            "a": {"titleContains": "planner", "humanReviewed": False},
            "b": {"titleContains": "%_\\", "tiers": []},
            "c": {"hasScaffolding": False, "tiers": ["REJECTED"]},
        },
    ),
    (
        "query ($f: TrainingFileFilterInput) { trainingFiles(filter: $f, first: 50) "
        "{ totalCount nodes { id conversationCount qualitySummary { average } } } }",
        {
            "f": {
                "status": None,
                "minAverageQuality": 3,
                "maxAverageQuality": 4.8,
                "minConversationCount": 2,
                "maxConversationCount": 4,
            }
        },
    ),
    ("{ viewer { id } }", {}),
]


@pytest.fixture
async def setup(
    settings: Settings,
    services: Services,
    db: Database,
    owner_writers: WriterPool,
    storage: LocalStorage,
    tmp_path: Path,
) -> AsyncIterator[tuple[httpx.AsyncClient, GraphQLView, list[UUID], list[UUID]]]:
    importer = ConversationImporter(owner_writers, storage)
    paths = write_demo_set(tmp_path / "demo", 14, seed=44)
    ids = [r.conversation_id for r in [await importer.import_file(p) for p in paths]]
    conversations = [i for i in ids if i is not None]
    files = []
    for n in range(6):
        owner = USER if n % 2 else OTHER_USER
        members = conversations[n : n + 2 + n % 4]
        record = await services.training_files.create_training_file(
            owner, f"file {n}", None, members
        )
        files.append(record.id)
    await services.training_files.set_archived(OTHER_USER, files[0], True)

    app = create_app(replace(settings, response_cache_bytes=0), services)
    view = next(r.app for r in app.routes if getattr(r, "path", "") == "/graphql")
    assert isinstance(view, GraphQLView)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=bearer(settings, USER)
    ) as client:
        yield client, view, conversations, files


async def _both(
    client: httpx.AsyncClient, view: GraphQLView, query: str, variables: dict[str, Any]
) -> tuple[Any, Any]:
    """(the resolvers' answer, the compiled answer) to the same request."""
    body = {"query": query, "variables": variables}
    before = view.compiled.answered
    reference = await client.post("/graphql", json=body)
    answered = await client.post("/graphql", json=body)
    assert view.compiled.failed == 0
    assert view.compiled.answered == before + 1, "the second answer was not compiled"
    return reference.json(), answered.json()


@pytest.mark.parametrize("number", range(len(CORPUS)))
async def test_each_operation_of_the_corpus_compiles_to_the_same_answer(
    setup: tuple[httpx.AsyncClient, GraphQLView, list[UUID], list[UUID]], number: int
) -> None:
    client, view, _, _ = setup
    query, variables = CORPUS[number]
    reference, compiled = await _both(client, view, query, variables)
    assert "errors" not in reference, reference
    assert compiled == reference


async def test_following_cursors_gives_the_same_pages(
    setup: tuple[httpx.AsyncClient, GraphQLView, list[UUID], list[UUID]],
) -> None:
    client, view, _, _ = setup
    query = """query ($after: String, $inner: String) { trainingFiles(first: 2, after: $after) {
        pageInfo { hasNextPage hasPreviousPage endCursor }
        edges { cursor node { id conversations(first: 1, after: $inner) {
          pageInfo { hasPreviousPage endCursor } nodes { id } } } } } }"""
    reference, compiled = await _both(client, view, query, {"after": None, "inner": None})
    assert compiled == reference
    page = reference["data"]["trainingFiles"]
    first_file = page["edges"][0]["node"]["conversations"]["pageInfo"]["endCursor"]
    after = {"after": page["pageInfo"]["endCursor"], "inner": first_file}
    reference, compiled = await _both(client, view, query.replace("query", "query second"), after)
    assert compiled == reference
    assert reference["data"]["trainingFiles"]["pageInfo"]["hasPreviousPage"] is True


async def test_lookups_by_id_and_filters_with_ids_give_the_same_answer(
    setup: tuple[httpx.AsyncClient, GraphQLView, list[UUID], list[UUID]],
) -> None:
    client, view, conversations, files = setup
    query = f"""query ($file: ID!, $missing: ID!, $conversation: ID!, $filter: ConversationFilterInput) {{
      trainingFile(id: $file) {{ {FILE_FIELDS} conversations {{ nodes {{ id }} }} }}
      none: trainingFile(id: $missing) {{ id }}
      conversation(id: $conversation) {{ {CONVERSATION_FIELDS} trainingFiles {{ id }} }}
      conversations(filter: $filter, first: 50) {{ totalCount nodes {{ id }} }}
    }}"""
    variables = {
        "file": str(files[3]),
        "missing": "00000000-0000-4000-8000-0000000000ee",
        "conversation": str(conversations[3]),
        "filter": {"notInTrainingFile": str(files[3])},
    }
    reference, compiled = await _both(client, view, query, variables)
    assert "errors" not in reference, reference
    assert reference["data"]["none"] is None
    assert compiled == reference


async def test_what_the_resolvers_refuse_is_not_compiled(
    setup: tuple[httpx.AsyncClient, GraphQLView, list[UUID], list[UUID]],
) -> None:
    client, view, _, _ = setup
    query = "query ($first: Int, $after: String) { trainingFiles(first: $first, after: $after) { totalCount } }"
    await client.post("/graphql", json={"query": query, "variables": {"first": 1}})
    declined = view.compiled.declined
    for variables in ({"first": 101}, {"first": -1}, {"after": "not a cursor"}):
        response = await client.post("/graphql", json={"query": query, "variables": variables})
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert view.compiled.declined == declined + 3
    mutation = 'mutation { archiveTrainingFile(input: {id: "x"}) { userErrors { code } } }'
    for _ in range(2):
        await client.post("/graphql", json={"query": mutation})
    assert view.compiled.declined == declined + 3  # never even considered: not a query
