"""Analysis of one enriched conversation file (brightrun individual v4).

Pure: the raw bytes of one file in, a frozen `ConversationAnalysis` out (validation report,
conversation id, scaffolding, scores and per-conversation statistics). No I/O. Structural
problems block an import; drift becomes warnings (see `validation`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from ..domain.enums import QualityTier
from .identity import resolve_conversation_id
from .issues import Issues, ValidationReport, a
from .parsing import parse
from .scaffolding import Scaffolding, resolve_scaffolding, title
from .schema import iso_date, json_type
from .statistics import ConversationStats, conversation_scores, conversation_stats
from .strings import check_strings
from .turns import check_turns
from .validation import validate

__all__ = ["ConversationAnalysis", "analyze"]


@dataclass(frozen=True)
class ConversationAnalysis:
    report: ValidationReport
    conversation_id: UUID | None
    dataset_name: str | None
    title: str | None
    created_date: date | None
    total_turns: int
    scaffolding: Scaffolding
    quality_score: Decimal | None
    empathy_score: Decimal | None
    clarity_score: Decimal | None
    appropriateness_score: Decimal | None
    brand_voice_alignment: Decimal | None
    tier: QualityTier
    consultant_profile: dict[str, Any] | None
    stats: ConversationStats
    sha256: str


def analyze(raw: bytes) -> ConversationAnalysis:
    """Validate and summarise one enriched conversation file."""
    issues = Issues()
    digest = hashlib.sha256(raw).hexdigest()
    parsed = parse(raw, issues)
    if parsed is None:
        return _unreadable(issues, digest)
    document = parsed.document
    if not isinstance(document, dict):
        detail = f"is {a(json_type(document))}, expected a JSON object"
        issues.block("not_object", (), detail)
        return _unreadable(issues, digest)
    pairs = document.get("training_pairs")
    pairs = pairs if isinstance(pairs, list) else []
    issues.pair_total = len(pairs)
    check_strings(parsed.text, document, issues)
    validate(document, issues)
    check_turns(document, pairs, issues)
    return _summary(document, pairs, issues, digest)


def _summary(
    document: dict[str, Any], pairs: list[Any], issues: Issues, digest: str
) -> ConversationAnalysis:
    conversation_id, dataset_name = resolve_conversation_id(document, issues)
    scaffolding = resolve_scaffolding(document, issues)
    scores = conversation_scores(pairs)
    metadata = document.get("dataset_metadata")
    profile = document.get("consultant_profile")
    return ConversationAnalysis(
        report=issues.report(),
        conversation_id=conversation_id,
        dataset_name=dataset_name,
        title=title(document, scaffolding),
        created_date=iso_date(metadata.get("created_date")) if isinstance(metadata, dict) else None,
        total_turns=len(pairs),
        scaffolding=scaffolding,
        quality_score=scores.quality_score,
        empathy_score=scores.empathy_score,
        clarity_score=scores.clarity_score,
        appropriateness_score=scores.appropriateness_score,
        brand_voice_alignment=scores.brand_voice_alignment,
        tier=QualityTier.for_score(scores.quality_score),
        consultant_profile=profile if isinstance(profile, dict) else None,
        stats=conversation_stats(pairs, scores.quality_score),
        sha256=digest,
    )


def _unreadable(issues: Issues, digest: str) -> ConversationAnalysis:
    return ConversationAnalysis(
        report=issues.report(),
        conversation_id=None,
        dataset_name=None,
        title=None,
        created_date=None,
        total_turns=0,
        scaffolding=Scaffolding(),
        quality_score=None,
        empathy_score=None,
        clarity_score=None,
        appropriateness_score=None,
        brand_voice_alignment=None,
        tier=QualityTier.for_score(None),
        consultant_profile=None,
        stats=ConversationStats(),
        sha256=digest,
    )
