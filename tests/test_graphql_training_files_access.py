"""Who may do what with training files over GraphQL: no token, another user's token."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from graphql_api.config import Settings
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.storage.local import LocalStorage

from .conftest import OTHER_USER, USER, bearer
from .sources import Source, ids_of
from .training_file_graphql import (
    ADD,
    ARCHIVE,
    CREATE,
    DELETE,
    DOWNLOAD,
    RESTORE,
    create,
    gql,
    import_thirty,
    snapshot,
)


@pytest.fixture
async def imported(
    db: Database, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> list[Source]:
    return await import_thirty(owner_writers, storage, tmp_path)


async def test_no_token_is_unauthenticated_but_introspection_works(
    anonymous_client: httpx.AsyncClient,
    settings: Settings,
    db: Database,
    storage: LocalStorage,
    imported: list[Source],
) -> None:
    # A real file, so that a delete that got through would show in the snapshot.
    created = await anonymous_client.post(
        "/graphql",
        json={
            "query": CREATE,
            "variables": {"input": {"name": "a file", "conversationIds": [str(imported[0].id)]}},
        },
        headers=bearer(settings, USER),
    )
    some_file = created.json()["data"]["createTrainingFile"]["trainingFile"]["id"]
    before = await snapshot(db, storage)
    some_id = str(imported[0].id)
    requests: list[tuple[str, dict[str, Any]]] = [
        ("{ viewer { id } }", {}),
        ("{ trainingFiles { totalCount } }", {}),
        ("query($id: ID!) { trainingFile(id: $id) { id } }", {"id": str(uuid4())}),
        ("{ conversations { totalCount } }", {}),
        ("query($id: ID!) { conversation(id: $id) { id } }", {"id": some_id}),
        (CREATE, {"input": {"name": "anonymous", "conversationIds": [some_id]}}),
        (ADD, {"input": {"trainingFileId": str(uuid4()), "conversationIds": [some_id]}}),
        (DOWNLOAD, {"id": str(uuid4()), "format": "JSON"}),
        (ARCHIVE, {"id": str(uuid4())}),
        (RESTORE, {"id": str(uuid4())}),
        (DELETE, {"id": some_file}),
    ]
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        for query, variables in requests:
            response = await anonymous_client.post(
                "/graphql", json={"query": query, "variables": variables}, headers=headers
            )
            body = response.json()
            assert not any((body["data"] or {}).values()), query
            assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"], query
    assert await snapshot(db, storage) == before

    body = await gql(anonymous_client, "{ __schema { queryType { name } } }")
    assert body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


async def test_another_user_cannot_change_my_file(
    client: httpx.AsyncClient,
    anonymous_client: httpx.AsyncClient,
    settings: Settings,
    db: Database,
    storage: LocalStorage,
    imported: list[Source],
) -> None:
    created = await create(client, "mine", ids_of(imported[:3]))
    before = await snapshot(db, storage)
    other = bearer(settings, OTHER_USER)
    for query, variables in (
        (ADD, {"input": {"trainingFileId": created["id"], "conversationIds": [str(uuid4())]}}),
        (
            ADD,
            {
                "input": {
                    "trainingFileId": created["id"],
                    "conversationIds": [str(imported[5].id)],
                }
            },
        ),
        (ARCHIVE, {"id": created["id"]}),
        (DELETE, {"id": created["id"]}),
    ):
        response = await anonymous_client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=other
        )
        body = response.json()
        assert body["data"] is None
        [error] = body["errors"]
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert "another user" in error["message"]
    assert await snapshot(db, storage) == before
