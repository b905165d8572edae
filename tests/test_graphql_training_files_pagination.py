"""Relay pagination of the training-file lists: a file's conversations in file order, page
sizes, and cursors that are malformed, forged or belong to another list."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.pagination import Cursor
from graphql_api.storage.local import LocalStorage

from .sources import Source, ids_of
from .training_file_graphql import (
    FILE_CONVERSATIONS,
    LIST_FILES,
    add,
    create,
    errors_of,
    gql,
    import_thirty,
    members,
)


@pytest.fixture
async def imported(
    db: Database, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> list[Source]:
    return await import_thirty(owner_writers, storage, tmp_path)


async def test_file_conversations_paginate_in_file_order(
    client: httpx.AsyncClient, db: Database, imported: list[Source]
) -> None:
    # Created newest-first-unfriendly: file order is request order, across an add.
    chosen = [imported[i].id for i in (7, 2, 9, 0, 4)]
    created = await create(client, "ordered", chosen[:3])
    await add(client, created["id"], chosen[3:])
    in_file_order = [str(c) for c, _, _ in await members(db, created["id"])]
    assert in_file_order == [str(c) for c in chosen]

    seen: list[str] = []
    after = None
    while True:
        body = await gql(client, FILE_CONVERSATIONS, id=created["id"], first=2, after=after)
        assert "errors" not in body, body
        connection = body["data"]["trainingFile"]["conversations"]
        assert connection["totalCount"] == 5
        edges = connection["edges"]
        info = connection["pageInfo"]
        assert info["hasPreviousPage"] is (after is not None)
        assert info["startCursor"] == edges[0]["cursor"]
        assert info["endCursor"] == edges[-1]["cursor"]
        assert len({e["cursor"] for e in edges}) == len(edges)
        seen += [e["node"]["id"] for e in edges]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert seen == in_file_order

    # A cursor from the middle resumes right after its conversation.
    body = await gql(client, FILE_CONVERSATIONS, id=created["id"], first=1)
    middle = body["data"]["trainingFile"]["conversations"]["pageInfo"]["endCursor"]
    body = await gql(client, FILE_CONVERSATIONS, id=created["id"], first=100, after=middle)
    rest = body["data"]["trainingFile"]["conversations"]
    assert [e["node"]["id"] for e in rest["edges"]] == in_file_order[1:]
    assert rest["pageInfo"]["hasNextPage"] is False

    body = await gql(client, FILE_CONVERSATIONS, id=created["id"], first=0)
    empty = body["data"]["trainingFile"]["conversations"]
    assert empty["edges"] == [] and empty["pageInfo"]["hasNextPage"] is True


async def test_page_size_and_cursors_are_checked(
    client: httpx.AsyncClient, imported: list[Source]
) -> None:
    created = await create(client, "paged", ids_of(imported[:3]))
    for first in (101, -1):
        body = await gql(client, LIST_FILES, first=first)
        assert errors_of(body) == [
            ("BAD_USER_INPUT", f"first must be between 0 and 100, got {first}")
        ]
        body = await gql(client, FILE_CONVERSATIONS, id=created["id"], first=first)
        assert errors_of(body) == [
            ("BAD_USER_INPUT", f"first must be between 0 and 100, got {first}")
        ]
    assert "errors" not in await gql(client, LIST_FILES, first=100)

    body = await gql(client, LIST_FILES, after="garbage")
    assert errors_of(body) == [("BAD_USER_INPUT", "cursor 'garbage' is not valid")]
    body = await gql(client, FILE_CONVERSATIONS, id=created["id"], after="garbage")
    assert errors_of(body) == [("BAD_USER_INPUT", "cursor 'garbage' is not valid")]

    # A cursor of one list is refused by the other.
    listed = await gql(client, LIST_FILES, first=1)
    file_cursor = listed["data"]["trainingFiles"]["pageInfo"]["endCursor"]
    paged = await gql(client, FILE_CONVERSATIONS, id=created["id"], first=1)
    position_cursor = paged["data"]["trainingFile"]["conversations"]["pageInfo"]["endCursor"]
    body = await gql(client, FILE_CONVERSATIONS, id=created["id"], after=file_cursor)
    assert errors_of(body) == [
        ("BAD_USER_INPUT", f"cursor {file_cursor!r} does not belong to this list")
    ]
    body = await gql(client, LIST_FILES, after=position_cursor)
    assert errors_of(body) == [
        ("BAD_USER_INPUT", f"cursor {position_cursor!r} does not belong to this list")
    ]

    # Well-formed but impossible positions are refused too, not passed on to the database.
    for position in (2**40, -5):
        forged = Cursor(None, None, position).encode()
        body = await gql(client, FILE_CONVERSATIONS, id=created["id"], after=forged)
        assert errors_of(body) == [
            ("BAD_USER_INPUT", f"cursor {forged!r} does not belong to this list")
        ]


async def test_forged_list_cursor_with_out_of_range_time_is_refused(
    client: httpx.AsyncClient,
) -> None:
    forged = Cursor(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))), uuid4()).encode()
    body = await gql(client, LIST_FILES, after=forged)
    assert [code for code, _ in errors_of(body)] == ["BAD_USER_INPUT"]
