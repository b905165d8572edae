"""GraphQL object types and their conversion from service records."""

from __future__ import annotations

from typing import Any

import strawberry

from ..db.training_files import TrainingFileRecord
from ..domain.limits import as_float, percentage

# The distribution entry of conversations without a key.
UNKNOWN_KEY = "unknown"


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


@strawberry.type(
    description="How many conversations of the file share one scaffolding key, or have none "
    "(the `unknown` entry)."
)
class DistributionEntry:
    key: str = strawberry.field(
        description=f"The key, e.g. `anxious_planner`; `{UNKNOWN_KEY}` for the entry of "
        "conversations without one."
    )
    name: str | None = strawberry.field(
        description="Its display name, when the files give one (null for the unknown entry)."
    )
    count: int = strawberry.field(description="Conversations of the file with this key.")
    percentage: float = strawberry.field(
        description="Share of the file's conversations, 0–100, rounded half up to 2 places."
    )
    unknown: bool = strawberry.field(
        description="True for the entry counting the conversations without a key (a file's own "
        "key could be spelled `unknown` too: this tells them apart)."
    )


@strawberry.type(
    description="Balance of the file across personas, emotional arcs and topics. In each list "
    "the counts add up to `conversationCount` (and the percentages to 100, up to rounding): "
    "conversations without a key are the last entry, `unknown`, present only when there are "
    "any."
)
class ScaffoldingDistribution:
    personas: list[DistributionEntry] = strawberry.field(
        description="By persona key, in order of first appearance in the file, then `unknown`."
    )
    emotional_arcs: list[DistributionEntry] = strawberry.field(
        description="By emotional arc key, in order of first appearance in the file, then "
        "`unknown`."
    )
    training_topics: list[DistributionEntry] = strawberry.field(
        description="By training topic key, in order of first appearance in the file, then "
        "`unknown`."
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
    total = r.conversation_count

    def entries(kind: str) -> list[DistributionEntry]:
        known = r.scaffolding_distribution.get(kind, [])
        result = [
            DistributionEntry(
                key=e["key"],
                name=e.get("name"),
                count=e["count"],
                percentage=_percentage(e["count"], total),
                unknown=False,
            )
            for e in known
        ]
        # The stored distribution (and the file's metadata) counts keys only: the rest of the
        # file's conversations have none.
        missing = total - sum(e["count"] for e in known)
        if missing > 0:
            result.append(
                DistributionEntry(
                    key=UNKNOWN_KEY,
                    name=None,
                    count=missing,
                    percentage=_percentage(missing, total),
                    unknown=True,
                )
            )
        return result

    return ScaffoldingDistribution(
        personas=entries("personas"),
        emotional_arcs=entries("emotional_arcs"),
        training_topics=entries("training_topics"),
    )
