"""Root query fields: thin resolvers over the services."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Annotated

import strawberry

from ..aggregation.service import training_file_page
from ..conversations.service import list_conversations
from ..db.conversations import ConversationFilter
from ..db.training_files import TrainingFileFilter
from ..domain.limits import MAX_PAGE_SIZE
from ..errors import InvalidInput
from ..inputs import parse_uuid, storable
from ..ranges import RangeChecks
from ..version import package_version
from .context import Context
from .enums import EnrichmentStatus, QualityTier, TrainingFileStatus
from .nodes import Conversation, Node, TrainingFile
from .pagination import After, Connection, First, to_connection
from .suggestions import (
    COUNT_ARGUMENT,
    DIMENSIONS_ARGUMENT,
    FILE_ARGUMENT,
    MIN_QUALITY_ARGUMENT,
    ConversationSuggestion,
    ScaffoldingDimension,
    resolve_suggestions,
)

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
        default=None, description="Conversations whose quality score is at least this (0–5)."
    )
    max_quality: float | None = strawberry.field(
        default=None, description="Conversations whose quality score is at most this (0–5)."
    )
    tiers: list[QualityTier] | None = strawberry.field(
        default=None, description="Conversations in any of these tiers; an empty list matches none."
    )
    human_reviewed: bool | None = strawberry.field(
        default=None,
        description="True: conversations with at least one human-reviewed pair; false: those "
        "with none.",
    )
    has_scaffolding: bool | None = strawberry.field(
        default=None,
        description="True: conversations with all three scaffolding keys (persona, emotional "
        "arc, training topic); false: those missing one or more (counted as `unknown` in a "
        "distribution).",
    )
    created_after: datetime | None = strawberry.field(
        default=None, description="Conversations imported at or after this instant (`createdAt`)."
    )
    created_before: datetime | None = strawberry.field(
        default=None,
        description="Conversations imported before this instant (exclusive, so adjacent ranges "
        "do not overlap).",
    )
    source_created_from: date | None = strawberry.field(
        default=None,
        description="Conversations whose file was created on or after this day "
        "(`sourceCreatedDate`); those without a date never match.",
    )
    source_created_to: date | None = strawberry.field(
        default=None,
        description="Conversations whose file was created on or before this day "
        "(`sourceCreatedDate`); those without a date never match.",
    )
    title_contains: str | None = strawberry.field(
        default=None,
        description="Case-insensitive substring of the title, taken literally (`%` and `_` are "
        "no wildcards); an empty string matches every conversation, a missing title none.",
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
        checks = RangeChecks()
        low = checks.quality(self.min_quality, "filter.minQuality")
        high = checks.quality(self.max_quality, "filter.maxQuality")
        checks.ordered(low, high, "filter.minQuality", "filter.maxQuality")
        checks.ordered(
            self.created_after, self.created_before, "filter.createdAfter", "filter.createdBefore"
        )
        checks.ordered(
            self.source_created_from,
            self.source_created_to,
            "filter.sourceCreatedFrom",
            "filter.sourceCreatedTo",
        )
        checks.check()
        return ConversationFilter(
            enrichment_status=self.enrichment_status.value if self.enrichment_status else None,
            persona_key=storable(self.persona_key, "filter.personaKey"),
            emotional_arc_key=storable(self.emotional_arc_key, "filter.emotionalArcKey"),
            training_topic_key=storable(self.training_topic_key, "filter.trainingTopicKey"),
            min_quality=low,
            max_quality=high,
            tiers=tuple(t.value for t in self.tiers) if self.tiers is not None else None,
            human_reviewed=self.human_reviewed,
            has_scaffolding=self.has_scaffolding,
            created_after=self.created_after,
            created_before=self.created_before,
            source_created_from=self.source_created_from,
            source_created_to=self.source_created_to,
            title_contains=storable(self.title_contains, "filter.titleContains") or None,
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
    min_average_quality: float | None = strawberry.field(
        default=None,
        description="Files whose average quality (`qualitySummary.average`) is at least this "
        "(0–5); files without one never match.",
    )
    max_average_quality: float | None = strawberry.field(
        default=None,
        description="Files whose average quality is at most this (0–5); files without one "
        "never match.",
    )
    min_conversation_count: int | None = strawberry.field(
        default=None, description="Files with at least this many conversations."
    )
    max_conversation_count: int | None = strawberry.field(
        default=None, description="Files with at most this many conversations."
    )

    def to_filter(self) -> TrainingFileFilter:
        checks = RangeChecks()
        low = checks.quality(self.min_average_quality, "filter.minAverageQuality")
        high = checks.quality(self.max_average_quality, "filter.maxAverageQuality")
        checks.ordered(low, high, "filter.minAverageQuality", "filter.maxAverageQuality")
        fewest = checks.count(self.min_conversation_count, "filter.minConversationCount")
        most = checks.count(self.max_conversation_count, "filter.maxConversationCount")
        checks.ordered(fewest, most, "filter.minConversationCount", "filter.maxConversationCount")
        checks.check()
        return TrainingFileFilter(
            status=self.status.value if self.status else None,
            created_by=parse_uuid(self.created_by, "createdBy") if self.created_by else None,
            name_contains=storable(self.name_contains, "filter.nameContains"),
            min_average_quality=low,
            max_average_quality=high,
            min_conversation_count=fewest,
            max_conversation_count=most,
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

    @strawberry.field(
        description="Eligible conversations not yet in the file that would make its persona, "
        "emotional arc and topic distribution most even (greedy on the largest deficit, ties "
        "by quality), each with the reason; add them with addConversations."
    )
    async def suggest_conversations(
        self,
        info: Info,
        count: Annotated[int, COUNT_ARGUMENT],
        training_file_id: Annotated[strawberry.ID | None, FILE_ARGUMENT] = None,
        min_quality: Annotated[float | None, MIN_QUALITY_ARGUMENT] = None,
        dimensions: Annotated[list[ScaffoldingDimension] | None, DIMENSIONS_ARGUMENT] = None,
    ) -> list[ConversationSuggestion]:
        return await resolve_suggestions(info, training_file_id, count, min_quality, dimensions)

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
