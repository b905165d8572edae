"""GraphQL object types and their conversion from service records."""

from __future__ import annotations

from typing import Any

import strawberry

from ..db.training_files import TrainingFileRecord
from ..domain import enums
from ..domain.limits import as_float, percentage

# The domain's enums, exposed as they are (GraphQL shows the member names): registering them
# with Strawberry marks the classes themselves.
strawberry.enum(
    enums.EnrichmentStatus, description="Where a conversation is in the enrichment pipeline."
)
strawberry.enum(
    enums.QualityTier, description="Quality tier from the quality score (≥4.5, ≥3.5, ≥2.5, lower)."
)
strawberry.enum(enums.TrainingFileStatus, description="Lifecycle of a training file.")
strawberry.enum(
    enums.FileFormat,
    name="TrainingFileFormat",
    description="Which of a training file's two objects.",
)
EnrichmentStatus = enums.EnrichmentStatus
QualityTier = enums.QualityTier
TrainingFileStatus = enums.TrainingFileStatus
TrainingFileFormat = enums.FileFormat


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


@strawberry.type(description="Quality over every training pair of the file.")
class QualitySummary:
    average: float | None
    minimum: float | None
    maximum: float | None
    human_reviewed_count: int
    human_reviewed_percentage: float


@strawberry.type(description="How many conversations of the file share one scaffolding key.")
class DistributionEntry:
    key: str
    name: str | None
    count: int
    percentage: float = strawberry.field(description="Share of the file's conversations, 0–100.")


@strawberry.type(description="Balance of the file across personas, emotional arcs and topics.")
class ScaffoldingDistribution:
    personas: list[DistributionEntry]
    emotional_arcs: list[DistributionEntry]
    training_topics: list[DistributionEntry]


def _percentage(part: int, whole: int) -> float:
    # Rounded as the file's own metadata is: both must show the same number.
    return float(percentage(part, whole))


def quality_summary(r: TrainingFileRecord) -> QualitySummary:
    return QualitySummary(
        average=as_float(r.avg_quality_score),
        minimum=as_float(r.min_quality_score),
        maximum=as_float(r.max_quality_score),
        human_reviewed_count=r.human_reviewed_count,
        human_reviewed_percentage=_percentage(r.human_reviewed_count, r.total_training_pairs),
    )


def scaffolding_distribution(r: TrainingFileRecord) -> ScaffoldingDistribution:
    def entries(kind: str) -> list[DistributionEntry]:
        return [
            DistributionEntry(
                key=e["key"],
                name=e.get("name"),
                count=e["count"],
                percentage=_percentage(e["count"], r.conversation_count),
            )
            for e in r.scaffolding_distribution.get(kind, [])
        ]

    return ScaffoldingDistribution(
        personas=entries("personas"),
        emotional_arcs=entries("emotional_arcs"),
        training_topics=entries("training_topics"),
    )
