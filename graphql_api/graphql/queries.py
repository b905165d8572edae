"""Root query fields: thin resolvers over the services."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Annotated

import strawberry

from ..aggregation.service import training_file_page
from ..conversations.service import list_conversations
from ..db.conversations import ConversationFilter
from ..db.training_files import TrainingFileFilter
from ..domain.limits import MAX_PAGE_SIZE
from ..errors import InvalidInput
from ..inputs import parse_uuid, storable
from ..version import package_version
from .context import Context
from .enums import EnrichmentStatus, TrainingFileStatus
from .nodes import Conversation, Node, TrainingFile
from .pagination import After, Connection, First, to_connection

Info = strawberry.Info[Context, None]


@strawberry.input(description="Every given field must match; omitted fields match anything.")
class ConversationFilterInput:
    enrichment_status: EnrichmentStatus | None = strawberry.field(
        default=None, description="Conversations at this enrichment stage."
    )
    persona_key: str | None = strawberry.field(
        default=None, description="Conversations with this persona key, e.g. `anxious_planner`."
    )
    emotional_arc_key: str | None = strawberry.field(
        default=None, description="Conversations with this emotional arc key."
    )
    training_topic_key: str | None = strawberry.field(
        default=None, description="Conversations with this training topic key."
    )
    min_quality: float | None = strawberry.field(
        default=None, description="Conversations whose quality score is at least this."
    )
    not_in_training_file: strawberry.ID | None = strawberry.field(
        default=None,
        description="A training file's id: leave out the conversations already in that file "
        "(what `addConversations` could still add to it).",
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
    created_by: strawberry.ID | None = strawberry.field(
        default=None, description="The owner's user id (`viewer { id }` for your own files)."
    )
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
    id: strawberry.ID = strawberry.field(description="Your user id: the token's `sub` claim.")


FILTER = strawberry.argument(description="Which items to list; omitted: see the filter's defaults.")
ID_ARGUMENT = strawberry.argument(description="The object's uuid.")


@strawberry.type(
    description="Reads. Everything but introspection needs `Authorization: Bearer <token>`."
)
class Query:
    @strawberry.field(description="Conversations, newest first.")
    async def conversations(
        self,
        info: Info,
        filter: Annotated[ConversationFilterInput | None, FILTER] = None,
        first: First = None,
        after: After = None,
    ) -> Connection[Conversation]:
        where = filter.to_filter() if filter else ConversationFilter()
        ctx = info.context
        page = await list_conversations(ctx.reader, where, first, after)
        return to_connection(page, Conversation.from_record)

    @strawberry.field(description="One conversation by its uuid, or null.")
    async def conversation(
        self, info: Info, id: Annotated[strawberry.ID, ID_ARGUMENT]
    ) -> Conversation | None:
        record = await info.context.loaders.conversation.load(parse_uuid(id, "id"))
        return Conversation.from_record(record) if record else None

    @strawberry.field(description="Training files, newest first; active ones unless filtered.")
    async def training_files(
        self,
        info: Info,
        filter: Annotated[TrainingFileFilterInput | None, FILTER] = None,
        first: First = None,
        after: After = None,
    ) -> Connection[TrainingFile]:
        where = (filter or TrainingFileFilterInput()).to_filter()
        ctx = info.context
        page = await training_file_page(ctx.reader, where, first, after)
        return to_connection(page, TrainingFile.from_record)

    @strawberry.field(description="One training file by its id, or null.")
    async def training_file(
        self, info: Info, id: Annotated[strawberry.ID, ID_ARGUMENT]
    ) -> TrainingFile | None:
        record = await info.context.loaders.training_file.load(parse_uuid(id, "id"))
        return TrainingFile.from_record(record) if record else None

    @strawberry.field(
        description="Any object by its id (a conversation or a training file), or null: what "
        "Relay and Apollo use to refetch a cached object."
    )
    async def node(self, info: Info, id: Annotated[strawberry.ID, ID_ARGUMENT]) -> Node | None:
        return (await _nodes(info, [id]))[0]

    @strawberry.field(
        description=f"Several objects by id, in the order asked, null where none exists; at "
        f"most {MAX_PAGE_SIZE} ids."
    )
    async def nodes(
        self,
        info: Info,
        ids: Annotated[list[strawberry.ID], strawberry.argument(description="Object uuids.")],
    ) -> list[Node | None]:
        return await _nodes(info, ids)

    @strawberry.field(description="Who the bearer token says you are.")
    def viewer(self, info: Info) -> Viewer:
        return Viewer(id=strawberry.ID(str(info.context.user_id)))

    @strawberry.field(description="About the server itself; needs no token.")
    def server_info(self) -> ServerInfo:
        return ServerInfo(version=package_version())


async def _nodes(info: Info, raw_ids: list[strawberry.ID]) -> list[Node | None]:
    """Both loaders batch, so any number of ids costs one statement per type.

    A training file's id is a random v4 uuid, a conversation's comes from its file name; were
    both ever the same, the training file is returned.
    """
    if len(raw_ids) > MAX_PAGE_SIZE:
        raise InvalidInput(f"ids: at most {MAX_PAGE_SIZE} ids, got {len(raw_ids)}")
    ids = [parse_uuid(raw, "ids" if len(raw_ids) > 1 else "id") for raw in raw_ids]
    loaders = info.context.loaders
    files, conversations = await asyncio.gather(
        loaders.training_file.load_many(ids), loaders.conversation.load_many(ids)
    )
    return [
        TrainingFile.from_record(file)
        if file is not None
        else Conversation.from_record(conversation)
        if conversation is not None
        else None
        for file, conversation in zip(files, conversations, strict=True)
    ]
