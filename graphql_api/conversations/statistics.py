"""A conversation's scores and the per-pair statistics computed once at import.

A training file's header adds these up (sums, counts, min, max), so they carry the quality
rule of PRODUCT.md: a pair's quality is its `training_metadata.quality_score`, falling back to
the conversation's `quality_score`. A file carries no conversation-level score, so the
conversation's score is the one the import gives it: the mean of the scores its pairs carry,
rounded half up to cents (the stored `quality_score`). Unscored pairs count with that value;
a conversation where no pair is scored has no score, and none of its pairs counts in quality.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from fractions import Fraction
from typing import Any, Final

from .schema import json_type

__all__ = [
    "ConversationScores",
    "ConversationStats",
    "conversation_scores",
    "conversation_stats",
    "mean_score",
]

# Sums must be exact whatever the magnitudes: a training file adds them up again.
_EXACT: Final = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


@dataclass(frozen=True)
class ConversationStats:
    pair_count: int = 0
    trainable_pair_count: int = 0
    quality_sum: Decimal = Decimal(0)
    quality_min: Decimal | None = None
    quality_max: Decimal | None = None
    quality_count: int = 0
    human_reviewed_count: int = 0


@dataclass(frozen=True)
class ConversationScores:
    """Means over the pairs that carry each score, rounded half up to cents."""

    quality_score: Decimal | None = None
    empathy_score: Decimal | None = None
    clarity_score: Decimal | None = None
    appropriateness_score: Decimal | None = None
    brand_voice_alignment: Decimal | None = None


def mean_score(values: Sequence[Decimal]) -> Decimal | None:
    """Exact mean rounded half up to cents (as `limits.cents`, without intermediate rounding)."""
    if not values:
        return None
    exact = sum((Fraction(v) for v in values), Fraction(0)) / len(values)
    hundredths = math.floor(abs(exact) * 100 + Fraction(1, 2))
    sign = "-" if exact < 0 else ""
    return Decimal(f"{sign}{hundredths // 100}.{hundredths % 100:02d}")


def _metadata(pair: Any) -> dict[str, Any]:
    metadata = pair.get("training_metadata") if isinstance(pair, dict) else None
    return metadata if isinstance(metadata, dict) else {}


def _number(value: Any) -> Decimal | None:
    return Decimal(str(value)) if json_type(value) in ("integer", "number") else None


def _pair_scores(pairs: Iterable[Any]) -> list[Decimal | None]:
    return [_number(_metadata(pair).get("quality_score")) for pair in pairs]


def _criterion(pairs: Iterable[Any], name: str) -> Decimal | None:
    criteria = (_metadata(pair).get("quality_criteria") for pair in pairs)
    values = (_number(c.get(name)) if isinstance(c, dict) else None for c in criteria)
    return mean_score([v for v in values if v is not None])


def conversation_scores(pairs: list[Any]) -> ConversationScores:
    return ConversationScores(
        quality_score=mean_score([s for s in _pair_scores(pairs) if s is not None]),
        empathy_score=_criterion(pairs, "empathy_score"),
        clarity_score=_criterion(pairs, "clarity_score"),
        appropriateness_score=_criterion(pairs, "appropriateness_score"),
        brand_voice_alignment=_criterion(pairs, "brand_voice_alignment"),
    )


def conversation_stats(pairs: list[Any], quality_score: Decimal | None) -> ConversationStats:
    """`quality_score` is the conversation's: what an unscored pair counts as."""
    scores = [quality_score if s is None else s for s in _pair_scores(pairs)]
    counted = [s for s in scores if s is not None]
    total = Decimal(0)
    for score in counted:
        total = _EXACT.add(total, score)
    return ConversationStats(
        pair_count=len(pairs),
        trainable_pair_count=sum(
            1 for p in pairs if isinstance(p, dict) and p.get("target_response") is not None
        ),
        quality_sum=total,
        quality_min=min(counted, default=None),
        quality_max=max(counted, default=None),
        quality_count=len(counted),
        human_reviewed_count=sum(_metadata(p).get("human_reviewed") is True for p in pairs),
    )
