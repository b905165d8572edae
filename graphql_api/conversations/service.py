"""Reading conversations: filtered, keyset-paginated listings."""

from __future__ import annotations

from ..db import conversations as conversation_rows
from ..db.conversations import ConversationFilter, ConversationRecord
from ..db.database import Reader
from ..pagination import Cursor, Page, keyset_page


async def list_conversations(
    reader: Reader,
    where: ConversationFilter,
    first: int | None,
    after: str | None,
) -> Page[ConversationRecord]:
    return await keyset_page(
        reader,
        first=first,
        after=after,
        fetch=lambda conn, cursor, limit: conversation_rows.page(conn, where, cursor, limit),
        count=lambda conn: conversation_rows.count(conn, where),
        cursor_of=lambda r: Cursor(r.created_at, r.conversation_id),
    )
