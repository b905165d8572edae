"""The object types that link to each other: conversations and training files, both `Node`s."""

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
from .enums import EnrichmentStatus, QualityTier, TrainingFileStatus
from .pagination import After, Connection, First, to_connection
from .scalars import BigInt
from .types import (
    QualitySummary,
    ScaffoldingDistribution,
    ValidationReport,
    quality_summary,
    scaffolding_distribution,
)

Info = strawberry.Info[Context, None]


@strawberry.interface(
    description="An object with an id unique across every type: fetch any one with `node(id:)`, "
    "as Relay and Apollo's caches expect."
)
class Node:
    id: strawberry.ID = strawberry.field(description="The object's uuid.")


@strawberry.type(description="An enriched conversation that training files are built from.")
class Conversation(Node):
    id: strawberry.ID = strawberry.field(
        description="The conversation's uuid (from its `dataset_name`, `fp_conversation_<uuid>`)."
    )
    title: str | None = strawberry.field(description="A short human title.")
    persona_key: str | None = strawberry.field(description="Persona archetype key.")
    persona_name: str | None = strawberry.field(description="Persona display name.")
    emotional_arc_key: str | None = strawberry.field(description="Emotional arc key.")
    emotional_arc_name: str | None = strawberry.field(description="Emotional arc display name.")
    training_topic_key: str | None = strawberry.field(description="Training topic key.")
    training_topic_name: str | None = strawberry.field(description="Training topic display name.")
    quality_score: float | None = strawberry.field(
        description="Mean quality score of its scored pairs, 1–5, 2 places; null when none."
    )
    empathy_score: float | None = strawberry.field(description="Mean empathy criterion, 1–5.")
    clarity_score: float | None = strawberry.field(description="Mean clarity criterion, 1–5.")
    appropriateness_score: float | None = strawberry.field(
        description="Mean appropriateness criterion, 1–5."
    )
    brand_voice_alignment_score: float | None = strawberry.field(
        description="Mean brand-voice-alignment criterion, 1–5."
    )
    tier: QualityTier = strawberry.field(description="Quality tier from the quality score.")
    enrichment_status: EnrichmentStatus = strawberry.field(
        description="Where it is in enrichment; only COMPLETED ones go into training files."
    )
    enriched_file_size: BigInt | None = strawberry.field(
        description="Size in bytes of its stored enriched file."
    )
    source_created_date: date | None = strawberry.field(
        description="The creation date its file gives."
    )
    total_turns: int = strawberry.field(description="Turns (training pairs) in the conversation.")
    pair_count: int = strawberry.field(description="Training pairs (turns) in the conversation.")
    trainable_pair_count: int = strawberry.field(
        description="Pairs with a target response: the lines this conversation adds to a JSONL."
    )
    human_reviewed_count: int = strawberry.field(description="Pairs marked human-reviewed.")
    validation: ValidationReport = strawberry.field(
        description="What import validation found in its file."
    )
    created_at: datetime = strawberry.field(description="When it was first imported.")
    updated_at: datetime = strawberry.field(description="When its row last changed.")

    @strawberry.field(
        description="Mean brand-voice-alignment criterion, 1–5.",
        deprecation_reason="Use brandVoiceAlignmentScore.",
    )
    def brand_voice_alignment(self) -> float | None:
        return self.brand_voice_alignment_score

    @strawberry.field(description="The training files this conversation is part of, newest first.")
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
            brand_voice_alignment_score=as_float(r.brand_voice_alignment),
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


@strawberry.type(
    description="An aggregated LoRA training file: a full JSON, a JSONL and two trainer-ready "
    "exports (OPENAI_CHAT, HF_DATASET)."
)
class TrainingFile(Node):
    id: strawberry.ID = strawberry.field(description="The training file's uuid.")
    name: str = strawberry.field(
        description="1–255 characters, unique among its owner's files (case-insensitively)."
    )
    description: str | None = strawberry.field(description="Up to 5000 characters, or null.")
    status: TrainingFileStatus = strawberry.field(description="Where it is in its lifecycle.")
    version: int = strawberry.field(description="Bumped by every change to the file's contents.")
    conversation_count: int = strawberry.field(description="Conversations in the file.")
    pair_count: int = strawberry.field(description="All training pairs, user turns included.")
    trainable_pair_count: int = strawberry.field(
        description="Pairs with a target response: the JSONL's pair lines."
    )
    json_file_size: BigInt | None = strawberry.field(description="Size in bytes of the JSON.")
    jsonl_file_size: BigInt | None = strawberry.field(description="Size in bytes of the JSONL.")
    openai_chat_file_size: BigInt | None = strawberry.field(
        description="Size in bytes of the OPENAI_CHAT export; null for a version built before "
        "it existed."
    )
    hf_dataset_file_size: BigInt | None = strawberry.field(
        description="Size in bytes of the HF_DATASET export; null for a version built before "
        "it existed."
    )
    quality_summary: QualitySummary = strawberry.field(
        description="Quality over every pair of the file."
    )
    scaffolding_distribution: ScaffoldingDistribution = strawberry.field(
        description="Balance across personas, emotional arcs and topics."
    )
    created_by: strawberry.ID = strawberry.field(description="The owner's user id.")
    created_at: datetime = strawberry.field(description="When the file was created.")
    updated_at: datetime = strawberry.field(description="When its row last changed.")
    last_updated_at: datetime = strawberry.field(description="When the contents last changed.")
    _record: strawberry.Private[TrainingFileRecord]

    @strawberry.field(
        description="All training pairs, user turns included.",
        deprecation_reason="Use pairCount, named as on Conversation.",
    )
    def total_training_pairs(self) -> int:
        return self.pair_count

    @strawberry.field(
        description="Pairs with a target response.",
        deprecation_reason="Use trainablePairCount, named as on Conversation.",
    )
    def trainable_pairs(self) -> int:
        return self.trainable_pair_count

    @strawberry.field(description="The file's conversations, in file order.")
    async def conversations(
        self, info: Info, first: First = None, after: After = None
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
            pair_count=r.total_training_pairs,
            trainable_pair_count=r.trainable_pairs,
            json_file_size=BigInt(r.json_file_size) if r.json_file_size is not None else None,
            jsonl_file_size=BigInt(r.jsonl_file_size) if r.jsonl_file_size is not None else None,
            openai_chat_file_size=_big(r.openai_chat_file_size),
            hf_dataset_file_size=_big(r.hf_dataset_file_size),
            quality_summary=quality_summary(r),
            scaffolding_distribution=scaffolding_distribution(r),
            created_by=strawberry.ID(str(r.created_by)),
            created_at=r.created_at,
            updated_at=r.updated_at,
            last_updated_at=r.last_updated_at,
            _record=r,
        )


def _big(value: int | None) -> BigInt | None:
    return None if value is None else BigInt(value)


def _constant(value: int) -> Callable[[], Awaitable[int]]:
    async def count() -> int:
        return value

    return count
