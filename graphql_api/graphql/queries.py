"""Root query fields: thin resolvers over the services."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from ..conversations.service import list_conversations
from ..db.conversations import ConversationFilter
from ..inputs import parse_uuid
from .context import Context
from .pagination import Connection, to_connection
from .types import Conversation, EnrichmentStatus

Info = strawberry.Info[Context, None]


@strawberry.input(description="Every given field must match; omitted fields match anything.")
class ConversationFilterInput:
    enrichment_status: EnrichmentStatus | None = None
    persona_key: str | None = None
    emotional_arc_key: str | None = None
    training_topic_key: str | None = None
    min_quality: float | None = strawberry.field(
        default=None, description="Conversations whose quality score is at least this."
    )

    def to_filter(self) -> ConversationFilter:
        return ConversationFilter(
            enrichment_status=self.enrichment_status.value if self.enrichment_status else None,
            persona_key=self.persona_key,
            emotional_arc_key=self.emotional_arc_key,
            training_topic_key=self.training_topic_key,
            min_quality=Decimal(str(self.min_quality)) if self.min_quality is not None else None,
        )


@strawberry.type
class Query:
    @strawberry.field(description="Conversations, newest first.")
    async def conversations(
        self,
        info: Info,
        filter: ConversationFilterInput | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Conversation]:
        where = filter.to_filter() if filter else ConversationFilter()
        ctx = info.context
        page = await list_conversations(ctx.services.db, ctx.user_id, where, first, after)
        return to_connection(page, Conversation.from_record)

    @strawberry.field(description="One conversation by its uuid, or null.")
    async def conversation(self, info: Info, id: strawberry.ID) -> Conversation | None:
        record = await info.context.loaders.conversation.load(parse_uuid(id, "id"))
        return Conversation.from_record(record) if record else None
