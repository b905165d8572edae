"""The closed sets of values the product works with, one definition each."""

from __future__ import annotations

import enum
from decimal import Decimal


class TrainingFileStatus(enum.StrEnum):
    """Lifecycle of a training file (stored as these strings)."""

    ACTIVE = "active"
    ARCHIVED = "archived"
    PROCESSING = "processing"
    FAILED = "failed"


class EnrichmentStatus(enum.StrEnum):
    """Where a conversation is in the upstream enrichment pipeline."""

    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"


class QualityTier(enum.StrEnum):
    """Quality tier from a quality score: ≥4.5, ≥3.5, ≥2.5, lower; no score is experimental."""

    SEED_DATASET = "seed_dataset"
    PRODUCTION = "production"
    EXPERIMENTAL = "experimental"
    REJECTED = "rejected"

    @classmethod
    def for_score(cls, score: Decimal | None) -> QualityTier:
        if score is None:
            return cls.EXPERIMENTAL
        for floor, tier in _TIER_FLOORS:
            if score >= floor:
                return tier
        return cls.REJECTED


_TIER_FLOORS = (
    (Decimal("4.5"), QualityTier.SEED_DATASET),
    (Decimal("3.5"), QualityTier.PRODUCTION),
    (Decimal("2.5"), QualityTier.EXPERIMENTAL),
)


class FileFormat(enum.StrEnum):
    """The objects a training file version consists of (the values are REST's `format`)."""

    JSON = "json"
    JSONL = "jsonl"
    OPENAI_CHAT = "openai_chat"
    HF_DATASET = "hf_dataset"

    @property
    def content_type(self) -> str:
        return "application/json" if self is FileFormat.JSON else "application/x-ndjson"

    @property
    def extension(self) -> str:
        """What the object's key and the downloaded file's name end with."""
        return _EXTENSIONS[self]


_EXTENSIONS = {
    FileFormat.JSON: ".json",
    FileFormat.JSONL: ".jsonl",
    FileFormat.OPENAI_CHAT: ".openai.jsonl",
    FileFormat.HF_DATASET: ".hf.jsonl",
}
