"""Root query fields: thin resolvers over the services."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from ..aggregation.service import training_file_page
from ..conversations.service import list_conversations
from ..db.conversations import ConversationFilter
from ..db.training_files import TrainingFileFilter
from ..inputs import parse_uuid, storable
from ..version import package_version
from .context import Context
from .nodes import Conversation, TrainingFile
from .pagination import Connection, to_connection
from .types import EnrichmentStatus, TrainingFileStatus

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
    not_in_training_file: strawberry.ID | None = strawberry.field(
        default=None, description="Leave out the conversations already in this training file."
    )
    eligible_only: bool = strawberry.field(
        default=False,
        description="Only conversations that can go into a training file (enriched, stored).",
    )

    def to_filter(self) -> ConversationFilter:
        not_in = self.not_in_training_file
        return ConversationFilter(
            enrichment_status=self.enrichment_status.value if self.enrichment_status else None,
            persona_key=storable(self.persona_key, "filter.personaKey"),
            emotional_arc_key=storable(self.emotional_arc_key, "filter.emotionalArcKey"),
            training_topic_key=storable(self.training_topic_key, "filter.trainingTopicKey"),
            min_quality=Decimal(str(self.min_quality)) if self.min_quality is not None else None,
            not_in_training_file=parse_uuid(not_in, "notInTrainingFile") if not_in else None,
            eligible_only=self.eligible_only,
        )


@strawberry.input(description="Every given field must match.")
class TrainingFileFilterInput:
    status: TrainingFileStatus | None = strawberry.field(
        default=TrainingFileStatus.ACTIVE, description="Null lists files of every status."
    )
    created_by: strawberry.ID | None = None
    name_contains: str | None = strawberry.field(
        default=None, description="Case-insensitive substring of the name."
    )

    def to_filter(self) -> TrainingFileFilter:
        return TrainingFileFilter(
            status=self.status.value if self.status else None,
            created_by=parse_uuid(self.created_by, "createdBy") if self.created_by else None,
            name_contains=storable(self.name_contains, "filter.nameContains"),
        )


@strawberry.type(description="The server answering, for clients and operators.")
class ServerInfo:
    version: str = strawberry.field(
        description="The installed version of the server's package (`graphql-api`), as "
        "`/readyz` reports it."
    )


@strawberry.type(description="The authenticated caller.")
class Viewer:
    id: strawberry.ID


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
        page = await list_conversations(ctx.reader, where, first, after)
        return to_connection(page, Conversation.from_record)

    @strawberry.field(description="One conversation by its uuid, or null.")
    async def conversation(self, info: Info, id: strawberry.ID) -> Conversation | None:
        record = await info.context.loaders.conversation.load(parse_uuid(id, "id"))
        return Conversation.from_record(record) if record else None

    @strawberry.field(description="Training files, newest first; active ones unless filtered.")
    async def training_files(
        self,
        info: Info,
        filter: TrainingFileFilterInput | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[TrainingFile]:
        where = (filter or TrainingFileFilterInput()).to_filter()
        ctx = info.context
        page = await training_file_page(ctx.reader, where, first, after)
        return to_connection(page, TrainingFile.from_record)

    @strawberry.field(description="One training file by its id, or null.")
    async def training_file(self, info: Info, id: strawberry.ID) -> TrainingFile | None:
        record = await info.context.loaders.training_file.load(parse_uuid(id, "id"))
        return TrainingFile.from_record(record) if record else None

    @strawberry.field(description="Who the bearer token says you are.")
    def viewer(self, info: Info) -> Viewer:
        return Viewer(id=strawberry.ID(str(info.context.user_id)))

    @strawberry.field(description="About the server itself; needs no token.")
    def server_info(self) -> ServerInfo:
        return ServerInfo(version=package_version())
