"""Relay connection types shared by every list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

import strawberry

from ..domain.limits import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from ..pagination import Page

NodeT = TypeVar("NodeT")
ItemT = TypeVar("ItemT")


First = Annotated[
    int | None,
    strawberry.argument(
        description=f"How many to return: {DEFAULT_PAGE_SIZE} when omitted, 0 to {MAX_PAGE_SIZE}."
    ),
]
After = Annotated[
    str | None,
    strawberry.argument(
        description="Return the items after this cursor: an `endCursor` or edge `cursor` of "
        "the same list."
    ),
]


@strawberry.type(description="Where a page sits in its list (Relay's cursor connections).")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More items follow this page.")
    has_previous_page: bool = strawberry.field(description="Items come before this page.")
    start_cursor: str | None = strawberry.field(
        description="The first edge's cursor; null on an empty page."
    )
    end_cursor: str | None = strawberry.field(
        description="The last edge's cursor: pass it as `after` for the next page."
    )


@strawberry.type(description="One item of a list, with its cursor.")
class Edge(Generic[NodeT]):
    cursor: str = strawberry.field(description="Opaque; pass as `after` to list what follows.")
    node: NodeT = strawberry.field(description="The item.")


@strawberry.type(description="One page of a list, newest first unless the field says otherwise.")
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]] = strawberry.field(description="The page's items with cursors.")
    page_info: PageInfo = strawberry.field(description="Whether more pages follow, and where.")
    _page: strawberry.Private[Page[Any]]

    @strawberry.field(description="Every item that matches, across all pages.")
    async def total_count(self) -> int:
        return await self._page.count()

    @strawberry.field(description="The nodes of `edges`, for clients that need no cursors.")
    def nodes(self) -> list[NodeT]:
        return [edge.node for edge in self.edges]


def to_connection(page: Page[ItemT], node: Callable[[ItemT], NodeT]) -> Connection[NodeT]:
    """Build a connection from a service page; `node` converts one item."""
    edges = [
        Edge(cursor=cursor, node=node(item))
        for cursor, item in zip(page.cursors, page.items, strict=True)
    ]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        ),
        _page=page,
    )
