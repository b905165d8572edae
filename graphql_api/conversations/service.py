"""Reading conversations: filtered, keyset-paginated listings."""

from __future__ import annotations

from uuid import UUID

from ..db import conversations as conversation_rows
from ..db.conversations import ConversationFilter, ConversationRecord
from ..db.database import Database
from ..pagination import Cursor, Page, keyset_page


async def list_conversations(
    db: Database,
    user_id: UUID | None,
    where: ConversationFilter,
    first: int | None,
    after: str | None,
) -> Page[ConversationRecord]:
    return await keyset_page(
        db,
        user_id,
        first=first,
        after=after,
        fetch=lambda conn, cursor, limit: conversation_rows.page(conn, where, cursor, limit),
        count=lambda conn: conversation_rows.count(conn, where),
        cursor_of=lambda r: Cursor(r.created_at, r.conversation_id),
    )
