"""PRODUCT.md's aggregation rules, spelled out again for the tests and applied to the enriched
source files themselves.

Deliberately independent of graphql_api: plain loops over the JSON documents and Decimal
arithmetic with ROUND_HALF_UP, nothing imported from the code under test. A test compares what
the server reports with what these functions give for the files it imported, so a wrong rule
in the implementation shows up as a difference.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENTS = Decimal("0.01")
# The enum of `persona_archetype` in the v4 conversation schema.
V4_PERSONAS = ("pragmatic_optimist", "anxious_planner", "overwhelmed_avoider")
KINDS = ("personas", "emotional_arcs", "training_topics")
# (kind, key field, name field) of a conversation's scaffolding in the full JSON.
SCAFFOLDING_FIELDS = (
    ("personas", "persona_key", "persona_name"),
    ("emotional_arcs", "emotional_arc_key", "emotional_arc"),
    ("training_topics", "training_topic_key", "training_topic"),
)


def half_up(value: Decimal) -> Decimal:
    """Rounded half up to cents: 3.125 -> 3.13 (half-even would give 3.12)."""
    return value.quantize(CENTS, rounding=ROUND_HALF_UP)


def percent(part: int, whole: int) -> Decimal:
    return half_up(Decimal(part * 100) / whole) if whole else Decimal(0)


# ----------------------------------------------------------------------------- one conversation


def pairs(document: dict[str, Any]) -> list[dict[str, Any]]:
    return list(document["training_pairs"])


def trainable(document: dict[str, Any]) -> int:
    """Pairs whose target_response is not null (a missing one is null)."""
    return sum(1 for pair in pairs(document) if pair.get("target_response") is not None)


def _string(value: Any) -> str:
    return value if isinstance(value, str) and value.strip() else ""


def _training_metadata(pair: dict[str, Any]) -> dict[str, Any]:
    metadata = pair.get("training_metadata")
    return metadata if isinstance(metadata, dict) else {}


def _own_score(pair: dict[str, Any]) -> Decimal | None:
    value = _training_metadata(pair).get("quality_score")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return Decimal(str(value))


def scaffolding(document: dict[str, Any]) -> dict[str, str]:
    """Keys and names from `input_parameters`, else the first pair's `conversation_metadata`,
    else (persona only) the archetype named in `client_persona` when it is a v4 one; "" for
    what is found nowhere."""
    params = document.get("input_parameters") or {}
    first = pairs(document)[0].get("conversation_metadata") or {}
    client, _, archetype = _string(first.get("client_persona")).partition(" - ")
    derived = archetype.strip().lower().removeprefix("the ").replace(" ", "_")
    return {
        "persona_key": _string(params.get("persona_key"))
        or _string(first.get("persona_archetype"))
        or (derived if derived in V4_PERSONAS else ""),
        "persona_name": _string(params.get("persona_name")) or client.strip(),
        "emotional_arc_key": _string(params.get("emotional_arc_key"))
        or _string(first.get("emotional_arc_key")),
        "emotional_arc": _string(params.get("emotional_arc_name"))
        or _string(first.get("emotional_arc")),
        "training_topic_key": _string(params.get("training_topic_key"))
        or _string(first.get("training_topic_key")),
        "training_topic": _string(params.get("training_topic_name"))
        or _string(first.get("training_topic")),
    }


def conversation_score(document: dict[str, Any]) -> Decimal | None:
    """The mean of the scores the pairs carry, rounded half up to cents; None if none does."""
    scores = [s for s in (_own_score(p) for p in pairs(document)) if s is not None]
    return half_up(sum(scores, Decimal(0)) / len(scores)) if scores else None


def pair_qualities(document: dict[str, Any]) -> list[Decimal]:
    """Each pair's quality: its own score, else the conversation's (pairs with neither drop)."""
    fallback = conversation_score(document)
    qualities = []
    for pair in pairs(document):
        score = _own_score(pair)
        if score is None:
            score = fallback
        if score is not None:
            qualities.append(score)
    return qualities


def tier(score: Decimal | None) -> str:
    if score is None:
        return "experimental"
    if score >= Decimal("4.5"):
        return "seed_dataset"
    if score >= Decimal("3.5"):
        return "production"
    if score >= Decimal("2.5"):
        return "experimental"
    return "rejected"


def human_reviewed(document: dict[str, Any]) -> int:
    return sum(1 for p in pairs(document) if _training_metadata(p).get("human_reviewed") is True)


# ----------------------------------------------------------------------------- a training file


@dataclass(frozen=True)
class Quality:
    average: Decimal | None
    minimum: Decimal | None
    maximum: Decimal | None
    reviewed: int
    reviewed_percentage: Decimal


def quality(documents: Iterable[dict[str, Any]]) -> Quality:
    """Over every pair of the file."""
    documents = list(documents)
    scores = [s for d in documents for s in pair_qualities(d)]
    total_pairs = sum(len(pairs(d)) for d in documents)
    reviewed = sum(human_reviewed(d) for d in documents)
    return Quality(
        average=half_up(sum(scores, Decimal(0)) / len(scores)) if scores else None,
        minimum=half_up(min(scores)) if scores else None,
        maximum=half_up(max(scores)) if scores else None,
        reviewed=reviewed,
        reviewed_percentage=percent(reviewed, total_pairs),
    )


@dataclass(frozen=True)
class Share:
    key: str
    name: str
    count: int


def distribution(documents: Sequence[dict[str, Any]]) -> dict[str, list[Share]]:
    """Per kind, the keys in order of first appearance with the first name seen and their
    counts; conversations without a key are not counted."""
    result: dict[str, list[Share]] = {}
    for kind, key_field, name_field in SCAFFOLDING_FIELDS:
        counts: dict[str, int] = {}
        names: dict[str, str] = {}
        for document in documents:
            found = scaffolding(document)
            key = found[key_field]
            if key:
                counts[key] = counts.get(key, 0) + 1
                names.setdefault(key, found[name_field])
        result[kind] = [Share(key, names[key], count) for key, count in counts.items()]
    return result


def missing_keys(documents: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Per kind, how many conversations have no key of that kind."""
    return {
        kind: sum(1 for d in documents if not scaffolding(d)[key_field])
        for kind, key_field, _ in SCAFFOLDING_FIELDS
    }


def file_distribution(documents: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """`scaffolding_distribution` as the full JSON writes it: key -> count."""
    return {
        kind: {share.key: share.count for share in shares}
        for kind, shares in distribution(documents).items()
    }
