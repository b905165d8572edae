"""GraphQL object types and their conversion from service records."""

from __future__ import annotations

from typing import Any

import strawberry

from ..db.training_files import TrainingFileRecord
from ..domain.limits import as_float, percentage


@strawberry.type(description="One finding of the import validation.")
class ValidationIssue:
    code: str = strawberry.field(description="What was found, e.g. `enum_drift`, `missing_field`.")
    path: str = strawberry.field(
        description="Where in the file, e.g. `training_pairs[*].conversation_metadata.emotional_arc_key`."
    )
    message: str = strawberry.field(description="The finding in words, for a person.")


@strawberry.type(description="What import validation found in the conversation's file.")
class ValidationReport:
    valid: bool = strawberry.field(description="True when nothing blocked the import.")
    blockers: list[ValidationIssue] = strawberry.field(
        description="Structural problems that block an import (an imported file has none)."
    )
    warnings: list[ValidationIssue] = strawberry.field(
        description="Drift the import accepted: enum values outside the schema, unknown keys, "
        "missing optional keys; a finding repeated across pairs is folded into one."
    )

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
    average: float | None = strawberry.field(
        description="Mean quality score of the pairs, 1–5, rounded half up to 2 places; null "
        "when no pair has a score."
    )
    minimum: float | None = strawberry.field(description="Lowest quality score of a pair.")
    maximum: float | None = strawberry.field(description="Highest quality score of a pair.")
    human_reviewed_count: int = strawberry.field(
        description="Pairs marked `human_reviewed` in their training metadata."
    )
    human_reviewed_percentage: float = strawberry.field(
        description="Human-reviewed pairs as a share of all pairs, 0–100, 2 places."
    )


@strawberry.type(description="How many conversations of the file share one scaffolding key.")
class DistributionEntry:
    key: str = strawberry.field(description="The key, e.g. `anxious_planner`.")
    name: str | None = strawberry.field(description="Its display name, when the files give one.")
    count: int = strawberry.field(description="Conversations of the file with this key.")
    percentage: float = strawberry.field(description="Share of the file's conversations, 0–100.")


@strawberry.type(description="Balance of the file across personas, emotional arcs and topics.")
class ScaffoldingDistribution:
    personas: list[DistributionEntry] = strawberry.field(
        description="By persona key, in order of first appearance in the file."
    )
    emotional_arcs: list[DistributionEntry] = strawberry.field(
        description="By emotional arc key, in order of first appearance in the file."
    )
    training_topics: list[DistributionEntry] = strawberry.field(
        description="By training topic key, in order of first appearance in the file."
    )


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
