"""Rendering of training files (brightrun-lora-v4, version 4.0.0) as byte pieces.

Pure: no I/O, no database. The service streams a file as pieces and, to add conversations,
copies the old body bytes instead of re-rendering them:

- full JSON  = ``json_header(h) + json_conversation(c1, first=True)
  + json_conversation(c2, first=False) + ... + JSON_FOOTER``, byte for byte what
  ``json.dumps(document, indent=2, ensure_ascii=False) + "\\n"`` gives for the equivalent
  document (for one conversation or more; a file always has at least one);
- JSONL      = ``jsonl_header(h) + jsonl_lines(c1) + jsonl_lines(c2) + ...``.

Every JSONL line (here and in exports.py) escapes U+2028 and U+2029 as ``\\u2028`` and
``\\u2029``: valid JSON either way, but ``str.splitlines()`` and JavaScript before ES2019 take
them for line breaks. The full JSON keeps them as json.dumps writes them (it is read as one
document, never split into lines).

Because a conversation's piece depends only on the conversation (and on whether it is the
first one), the body of A+B is the body of A followed by the non-first pieces of B: an add
writes the new header, the copied old body, the new pieces and the footer.

Decisions:
- A conversation whose created date is unknown has ``"created_date": null`` (the key is always
  present, so every conversation object has the same shape).
- A file with no quality score at all has null avg/min/max quality (the shared schema wants
  numbers 1–5; our schema allows null for that case only).
- Numbers from Decimals are rounded half up to 2 places and written as JSON numbers; integral
  values are written as integers (``3``, not ``3.0`` or ``3.00``), others in their shortest
  form (``3.25``, ``3.1``).
- A JSONL line's id is ``<pair id>_<first 8 chars of the conversation uuid>``; a pair without
  a string id uses ``turn<turn_number>`` as its base, so the suffix keeps ids unique anyway.
  Pair keys missing from the enriched file are null in the line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

from ..domain.enums import QualityTier
from ..domain.limits import DATASET_NAME_PREFIX, cents

__all__ = [
    "FORMAT_SPEC",
    "JSON_FOOTER",
    "VERSION",
    "ConversationEntry",
    "Distribution",
    "FileHeader",
    "QualitySummary",
    "ScaffoldingEntry",
    "dumps_line",
    "format_timestamp",
    "json_conversation",
    "json_header",
    "jsonl_header",
    "jsonl_lines",
    "line_id",
    "quality_tier",
    "source_file",
]

VERSION: Final = "4.0.0"
FORMAT_SPEC: Final = "brightrun-lora-v4"

# The conversation objects sit at depth 2: {"conversations": [ <here> ]}.
_ITEM_INDENT: Final = "\n    "
_CONVERSATIONS_OPEN: Final = ',\n  "conversations": ['
JSON_FOOTER: Final = b"\n  ]\n}\n"

_PAIR_LINE_KEYS: Final = (
    "conversation_metadata",
    "system_prompt",
    "conversation_history",
    "current_user_input",
    "emotional_context",
    "target_response",
    "training_metadata",
)


# --------------------------------------------------------------------------- public types


@dataclass(frozen=True)
class ScaffoldingEntry:
    """One conversation's scaffolding; "" for a key or name found nowhere."""

    persona_key: str
    persona_name: str
    emotional_arc_key: str
    emotional_arc: str
    training_topic_key: str
    training_topic: str


@dataclass(frozen=True)
class QualitySummary:
    """Over all pairs of the file; avg/min/max are None when no pair has a quality score."""

    avg_quality_score: Decimal | None
    min_quality_score: Decimal | None
    max_quality_score: Decimal | None
    human_reviewed_count: int
    human_reviewed_percentage: Decimal


@dataclass(frozen=True)
class Distribution:
    """(key, count) pairs, keys unique, in the order the caller chose (first appearance)."""

    personas: tuple[tuple[str, int], ...]
    emotional_arcs: tuple[tuple[str, int], ...]
    training_topics: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class FileHeader:
    file_name: str
    created_date: datetime  # tz-aware
    last_updated: datetime  # tz-aware
    target_model: str | None  # the key is omitted from the JSON when None
    vertical: str
    total_conversations: int
    total_training_pairs: int  # all pairs, user turns included
    trainable_pairs: int  # pairs with a non-null target_response = JSONL pair lines
    quality: QualitySummary
    distribution: Distribution
    consultant_profile: dict[str, Any]


@dataclass(frozen=True)
class ConversationEntry:
    conversation_id: UUID
    created_date: date | None
    total_turns: int
    quality_tier: str
    scaffolding: ScaffoldingEntry
    training_pairs: list[dict[str, Any]]  # untouched, from the enriched file
    quality_score: Decimal | None = None  # the conversation's, for pairs without their own


# --------------------------------------------------------------------------- small helpers


def quality_tier(score: Decimal | None) -> str:
    """≥4.5 seed_dataset, ≥3.5 production, ≥2.5 experimental, else rejected; None experimental."""
    return QualityTier.for_score(score).value


def format_timestamp(moment: datetime) -> str:
    """UTC with milliseconds (truncated) and a Z, as JavaScript's toISOString writes it."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("format_timestamp needs a timezone-aware datetime")
    utc = moment.astimezone(UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond // 1000:03d}Z"
    )


def source_file(conversation_id: UUID) -> str:
    return f"{DATASET_NAME_PREFIX}{conversation_id}.json"


def _json_number(value: Decimal) -> int | float:
    """Rounded half up to 2 places; an integer when integral, else the shortest float."""
    if not value.is_finite():
        raise ValueError(f"cannot write the non-finite number {value} as JSON")
    rounded = cents(value)
    if rounded == rounded.to_integral_value():
        return int(rounded)
    # A value with 2 decimals has a float whose shortest repr is those digits.
    return float(rounded)


def _optional_number(value: Decimal | None) -> int | float | None:
    return None if value is None else _json_number(value)


def _counts(name: str, pairs: tuple[tuple[str, int], ...]) -> dict[str, int]:
    counts = dict(pairs)
    if len(counts) != len(pairs):
        raise ValueError(f"scaffolding distribution {name} has a key more than once")
    return counts


def _dumps_indented(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False)


def dumps_line(value: Any) -> str:
    """One compact JSONL line (without its newline); U+2028/U+2029 escaped.

    json.dumps writes those two only inside string literals, and never right after an
    unpaired backslash, so replacing them with their escapes keeps the same JSON value."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


# --------------------------------------------------------------------------- full JSON


def _metadata(header: FileHeader) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "file_name": header.file_name,
        "version": VERSION,
        "created_date": format_timestamp(header.created_date),
        "last_updated": format_timestamp(header.last_updated),
        "format_spec": FORMAT_SPEC,
    }
    if header.target_model is not None:
        metadata["target_model"] = header.target_model
    quality = header.quality
    distribution = header.distribution
    metadata |= {
        "vertical": header.vertical,
        "total_conversations": header.total_conversations,
        "total_training_pairs": header.total_training_pairs,
        "quality_summary": {
            "avg_quality_score": _optional_number(quality.avg_quality_score),
            "min_quality_score": _optional_number(quality.min_quality_score),
            "max_quality_score": _optional_number(quality.max_quality_score),
            "human_reviewed_count": quality.human_reviewed_count,
            "human_reviewed_percentage": _json_number(quality.human_reviewed_percentage),
        },
        "scaffolding_distribution": {
            "personas": _counts("personas", distribution.personas),
            "emotional_arcs": _counts("emotional_arcs", distribution.emotional_arcs),
            "training_topics": _counts("training_topics", distribution.training_topics),
        },
    }
    return metadata


def json_header(header: FileHeader) -> bytes:
    """Everything up to and including ``"conversations": [``."""
    head = _dumps_indented(
        {
            "training_file_metadata": _metadata(header),
            "consultant_profile": header.consultant_profile,
        }
    )
    # head ends with the "\n}" that closes the top-level object; reopen it.
    assert head.endswith("\n}")
    return (head[:-2] + _CONVERSATIONS_OPEN).encode("utf-8")


def _conversation_object(entry: ConversationEntry) -> dict[str, Any]:
    scaffolding = entry.scaffolding
    return {
        "conversation_metadata": {
            "conversation_id": str(entry.conversation_id),
            "source_file": source_file(entry.conversation_id),
            "created_date": entry.created_date.isoformat() if entry.created_date else None,
            "total_turns": entry.total_turns,
            "quality_tier": entry.quality_tier,
            "scaffolding": {
                "persona_key": scaffolding.persona_key,
                "persona_name": scaffolding.persona_name,
                "emotional_arc_key": scaffolding.emotional_arc_key,
                "emotional_arc": scaffolding.emotional_arc,
                "training_topic_key": scaffolding.training_topic_key,
                "training_topic": scaffolding.training_topic,
            },
        },
        "training_pairs": entry.training_pairs,
    }


def json_conversation(entry: ConversationEntry, *, first: bool) -> bytes:
    """One element of "conversations", preceded by its separator (a comma unless first)."""
    # json.dumps escapes newlines inside strings, so every "\n" here is structural.
    text = _dumps_indented(_conversation_object(entry)).replace("\n", _ITEM_INDENT)
    return (("" if first else ",") + _ITEM_INDENT + text).encode("utf-8")


# --------------------------------------------------------------------------- JSONL


def jsonl_header(header: FileHeader) -> bytes:
    """The ``_meta`` line, newline included."""
    meta = {
        "_meta": {
            "file_name": header.file_name,
            "total_pairs": header.trainable_pairs,
            "version": VERSION,
            "format_spec": FORMAT_SPEC,
        }
    }
    return (dumps_line(meta) + "\n").encode("utf-8")


def line_id(pair: dict[str, Any], conversation_id: UUID) -> str:
    base = pair.get("id")
    if not isinstance(base, str):
        base = f"turn{pair.get('turn_number')}"
    return f"{base}_{str(conversation_id)[:8]}"


def jsonl_lines(entry: ConversationEntry) -> bytes:
    """One line per pair whose target_response is not null (missing counts as null)."""
    conversation_id = str(entry.conversation_id)
    lines: list[str] = []
    for pair in entry.training_pairs:
        if pair.get("target_response") is None:
            continue
        line: dict[str, Any] = {
            "id": line_id(pair, entry.conversation_id),
            "conversation_id": conversation_id,
            "turn_number": pair.get("turn_number"),
        }
        for key in _PAIR_LINE_KEYS:
            line[key] = pair.get(key)
        lines.append(dumps_line(line) + "\n")
    return "".join(lines).encode("utf-8")
