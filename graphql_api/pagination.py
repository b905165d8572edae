"""Opaque keyset cursors for Relay connections: base64 of the sort key of the last row."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar
from uuid import UUID

import asyncpg

from .db.database import Reader
from .errors import InvalidInput

T = TypeVar("T")

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


class InvalidCursor(ValueError):
    """A cursor that this server did not produce."""


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Cursor:
    """Position after a row ordered by (`sort_at` DESC, `id` DESC), or by `position`.

    Encoded as unpadded URL-safe base64 of `t:<epoch microseconds>:<uuid>` or `p:<position>`:
    exact, and simple enough that the compiled read path builds the same string in SQL.
    """

    sort_at: datetime | None
    id: UUID | None
    position: int | None = None

    def encode(self) -> str:
        if self.position is not None:
            text = f"p:{self.position}"
        else:
            assert self.sort_at is not None and self.id is not None
            text = f"t:{(self.sort_at - EPOCH) // _MICROSECOND}:{self.id}"
        return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()

    @classmethod
    def decode(cls, raw: str) -> Cursor:
        try:
            text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
            kind, _, rest = text.partition(":")
            if kind == "p":
                return cls(None, None, int(rest))
            if kind == "t":
                micros, _, id_ = rest.partition(":")
                return cls(EPOCH + int(micros) * _MICROSECOND, UUID(id_))
        except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeError):
            pass
        raise InvalidCursor(f"cursor {raw!r} is not valid")


def check_page_size(first: int | None) -> int:
    """`first` of a connection: 0 to MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE when absent."""
    if first is None:
        return DEFAULT_PAGE_SIZE
    if not 0 <= first <= MAX_PAGE_SIZE:
        raise InvalidInput(f"first must be between 0 and {MAX_PAGE_SIZE}, got {first}")
    return first


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a connection. `count` runs the total only when a client asks for it."""

    items: list[T]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    count: Callable[[], Awaitable[int]]


def decode_after(after: str | None) -> Cursor | None:
    """The `after` argument of a newest-first list, checked."""
    if not after:
        return None
    cursor = _decoded(after)
    if cursor.sort_at is None or cursor.id is None or not _storable(cursor.sort_at):
        raise InvalidInput(f"cursor {after!r} does not belong to this list")
    return cursor


_MAX_POSITION = 2**31 - 1


def decode_position(after: str | None) -> int:
    """The `after` argument of a list in file order: the position it points at, -1 for none."""
    if not after:
        return -1
    cursor = _decoded(after)
    # Positions are non-negative int4s; anything else was not made here (and would fail in SQL).
    if cursor.position is None or not 0 <= cursor.position <= _MAX_POSITION:
        raise InvalidInput(f"cursor {after!r} does not belong to this list")
    return cursor.position


def _decoded(after: str) -> Cursor:
    try:
        return Cursor.decode(after)
    except InvalidCursor as error:
        raise InvalidInput(str(error)) from None


def _storable(moment: datetime) -> bool:
    """Whether PostgreSQL can compare with it: forged cursors may hold any date."""
    try:
        return moment.utcoffset() is not None and moment.astimezone(UTC).year >= 1
    except (OverflowError, ValueError):
        return False


async def keyset_page(
    reader: Reader,
    *,
    first: int | None,
    after: str | None,
    fetch: Callable[[asyncpg.Connection, Cursor | None, int], Awaitable[list[T]]],
    count: Callable[[asyncpg.Connection], Awaitable[int]],
    cursor_of: Callable[[T], Cursor],
) -> Page[T]:
    """One page of a newest-first list; the total is counted only if asked for."""
    limit = check_page_size(first)
    cursor = decode_after(after)
    async with reader.connection() as conn:
        rows = await fetch(conn, cursor, limit + 1)

    async def total() -> int:
        async with reader.connection() as conn:
            return await count(conn)

    items = rows[:limit]
    return Page(
        items=items,
        cursors=[cursor_of(item).encode() for item in items],
        has_next_page=len(rows) > limit,
        has_previous_page=cursor is not None,
        count=total,
    )
