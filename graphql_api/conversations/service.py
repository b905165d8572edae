"""Reading conversations: filtered, keyset-paginated listings and look-ups."""

from __future__ import annotations

from uuid import UUID

from ..db import conversations as conversation_rows
from ..db.conversations import ConversationFilter, ConversationRecord
from ..db.database import Database
from ..errors import InvalidInput
from ..pagination import Cursor, InvalidCursor, Page, check_page_size


def _decode_after(after: str | None) -> Cursor | None:
    if not after:
        return None
    try:
        cursor = Cursor.decode(after)
    except InvalidCursor as error:
        raise InvalidInput(str(error)) from None
    if cursor.sort_at is None or cursor.id is None:
        raise InvalidInput(f"cursor {after!r} does not belong to this list")
    return cursor


async def list_conversations(
    db: Database,
    user_id: UUID | None,
    where: ConversationFilter,
    first: int | None,
    after: str | None,
) -> Page[ConversationRecord]:
    limit = check_page_size(first)
    cursor = _decode_after(after)
    async with db.session(user_id) as conn:
        rows = await conversation_rows.page(conn, where, cursor, limit + 1)

    async def count() -> int:
        async with db.session(user_id) as conn:
            return await conversation_rows.count(conn, where)

    items = rows[:limit]
    return Page(
        items=items,
        cursors=[Cursor(r.created_at, r.conversation_id).encode() for r in items],
        has_next_page=len(rows) > limit,
        has_previous_page=cursor is not None,
        count=count,
    )


async def get_conversations(
    db: Database, user_id: UUID | None, conversation_ids: list[UUID]
) -> dict[UUID, ConversationRecord]:
    async with db.session(user_id) as conn:
        return await conversation_rows.get_many(conn, conversation_ids)
