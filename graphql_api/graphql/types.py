"""GraphQL object types and their conversion from service records."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import strawberry

from ..db.conversations import ConversationRecord
from .scalars import BigInt


@strawberry.enum(description="Where a conversation is in the enrichment pipeline.")
class EnrichmentStatus(enum.Enum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"


@strawberry.enum(description="Quality tier from the quality score (≥4.5, ≥3.5, ≥2.5, lower).")
class QualityTier(enum.Enum):
    SEED_DATASET = "seed_dataset"
    PRODUCTION = "production"
    EXPERIMENTAL = "experimental"
    REJECTED = "rejected"


@strawberry.type(description="One finding of the import validation.")
class ValidationIssue:
    code: str
    path: str
    message: str


@strawberry.type(description="What import validation found in the conversation's file.")
class ValidationReport:
    valid: bool
    blockers: list[ValidationIssue]
    warnings: list[ValidationIssue]

    @classmethod
    def from_json(cls, report: dict[str, Any]) -> ValidationReport:
        def issues(key: str) -> list[ValidationIssue]:
            return [
                ValidationIssue(code=i["code"], path=i["path"], message=i["message"])
                for i in report.get(key, [])
            ]

        return cls(
            valid=bool(report.get("valid", True)),
            blockers=issues("blockers"),
            warnings=issues("warnings"),
        )


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


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
            quality_score=_float(r.quality_score),
            empathy_score=_float(r.empathy_score),
            clarity_score=_float(r.clarity_score),
            appropriateness_score=_float(r.appropriateness_score),
            brand_voice_alignment=_float(r.brand_voice_alignment),
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
