"""The object types that link to each other: conversations and training files."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from uuid import UUID

import strawberry

from ..db.conversations import ConversationRecord
from ..db.training_files import TrainingFileRecord
from ..domain.limits import as_float
from ..pagination import Cursor, Page, check_page_size, decode_position
from .context import Context
from .pagination import Connection, to_connection
from .scalars import BigInt
from .types import (
    EnrichmentStatus,
    QualitySummary,
    QualityTier,
    ScaffoldingDistribution,
    TrainingFileStatus,
    ValidationReport,
    quality_summary,
    scaffolding_distribution,
)

Info = strawberry.Info[Context, None]


@strawberry.type(description="An enriched conversation that training files are built from.")
class Conversation:
    id: strawberry.ID = strawberry.field(
        description="The conversation's uuid (from `fp_conversation_<uuid>`)."
    )
    title: str | None
    persona_key: str | None
    persona_name: str | None
    emotional_arc_key: str | None
    emotional_arc_name: str | None
    training_topic_key: str | None
    training_topic_name: str | None
    quality_score: float | None
    empathy_score: float | None
    clarity_score: float | None
    appropriateness_score: float | None
    brand_voice_alignment: float | None
    tier: QualityTier
    enrichment_status: EnrichmentStatus
    enriched_file_size: BigInt | None
    source_created_date: date | None
    total_turns: int
    pair_count: int = strawberry.field(description="Training pairs (turns) in the conversation.")
    trainable_pair_count: int = strawberry.field(
        description="Pairs with a target response: the lines this conversation adds to a JSONL."
    )
    human_reviewed_count: int
    validation: ValidationReport
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="The training files this conversation is part of.")
    async def training_files(self, info: Info) -> list[TrainingFile]:
        records = await info.context.loaders.files_of_conversation.load(UUID(self.id))
        return [TrainingFile.from_record(r) for r in records]

    @classmethod
    def from_record(cls, r: ConversationRecord) -> Conversation:
        return cls(
            id=strawberry.ID(str(r.conversation_id)),
            title=r.title,
            persona_key=r.persona_key,
            persona_name=r.persona_name,
            emotional_arc_key=r.emotional_arc_key,
            emotional_arc_name=r.emotional_arc_name,
            training_topic_key=r.training_topic_key,
            training_topic_name=r.training_topic_name,
            quality_score=as_float(r.quality_score),
            empathy_score=as_float(r.empathy_score),
            clarity_score=as_float(r.clarity_score),
            appropriateness_score=as_float(r.appropriateness_score),
            brand_voice_alignment=as_float(r.brand_voice_alignment),
            tier=QualityTier(r.tier),
            enrichment_status=EnrichmentStatus(r.enrichment_status),
            enriched_file_size=BigInt(r.enriched_file_size)
            if r.enriched_file_size is not None
            else None,
            source_created_date=r.source_created_date,
            total_turns=r.total_turns,
            pair_count=r.pair_count,
            trainable_pair_count=r.trainable_pair_count,
            human_reviewed_count=r.human_reviewed_count,
            validation=ValidationReport.from_json(r.validation_report),
            created_at=r.created_at,
            updated_at=r.updated_at,
        )


@strawberry.type(description="An aggregated LoRA training file: a full JSON and a JSONL.")
class TrainingFile:
    id: strawberry.ID
    name: str
    description: str | None
    status: TrainingFileStatus
    version: int = strawberry.field(description="Bumped by every change to the file's contents.")
    conversation_count: int
    total_training_pairs: int = strawberry.field(description="All pairs, user turns included.")
    trainable_pairs: int = strawberry.field(
        description="Pairs with a target response: JSONL lines."
    )
    json_file_size: BigInt | None
    jsonl_file_size: BigInt | None
    quality_summary: QualitySummary
    scaffolding_distribution: ScaffoldingDistribution
    created_by: strawberry.ID
    created_at: datetime
    updated_at: datetime
    last_updated_at: datetime = strawberry.field(description="When the contents last changed.")
    _record: strawberry.Private[TrainingFileRecord]

    @strawberry.field(description="The file's conversations, in file order.")
    async def conversations(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Conversation]:
        limit = check_page_size(first)
        after_position = decode_position(after)
        key = (self._record.id, after_position, limit + 1)
        items = await info.context.loaders.file_conversations.load(key)
        page: Page[ConversationRecord] = Page(
            items=[record for _, record in items[:limit]],
            cursors=[Cursor(None, None, position).encode() for position, _ in items[:limit]],
            has_next_page=len(items) > limit,
            has_previous_page=after_position >= 0,
            count=_constant(self._record.conversation_count),
        )
        return to_connection(page, Conversation.from_record)

    @classmethod
    def from_record(cls, r: TrainingFileRecord) -> TrainingFile:
        return cls(
            id=strawberry.ID(str(r.id)),
            name=r.name,
            description=r.description,
            status=TrainingFileStatus(r.status),
            version=r.version,
            conversation_count=r.conversation_count,
            total_training_pairs=r.total_training_pairs,
            trainable_pairs=r.trainable_pairs,
            json_file_size=BigInt(r.json_file_size) if r.json_file_size is not None else None,
            jsonl_file_size=BigInt(r.jsonl_file_size) if r.jsonl_file_size is not None else None,
            quality_summary=quality_summary(r),
            scaffolding_distribution=scaffolding_distribution(r),
            created_by=strawberry.ID(str(r.created_by)),
            created_at=r.created_at,
            updated_at=r.updated_at,
            last_updated_at=r.last_updated_at,
            _record=r,
        )


def _constant(value: int) -> Callable[[], Awaitable[int]]:
    async def count() -> int:
        return value

    return count
