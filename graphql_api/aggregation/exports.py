"""Trainer-ready exports of a conversation: its OPENAI_CHAT and HF_DATASET lines.

Pure, like format.py. Both have one line per pair that makes a chat example (chat.py), in pair
order, and no header line, so an object is the plain concatenation of its conversations' lines
and an add appends to a copy of the old object.

- OPENAI_CHAT: `{"messages": [...]}` and nothing else, as OpenAI chat fine-tuning defines it.
- HF_DATASET: one flat record with the same keys, in the same order, with the same types on
  every line, so `datasets` infers one schema whatever mix of v4 and older files went in (a
  nested object whose keys vary would not). Text is always a string (`""` when the source has
  none); numbers are floats or null (null only for a number the source does not give).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final

from .chat import Message, messages
from .format import ConversationEntry, dumps_line, line_id

_Record = Callable[[Mapping[str, Any], list[Message]], dict[str, Any]]


# The keys of every HF_DATASET record, in their order.
HF_COLUMNS: Final = (
    "id",
    "conversation_id",
    "pair_id",
    "turn_number",
    "persona_key",
    "persona_name",
    "emotional_arc_key",
    "emotional_arc",
    "training_topic_key",
    "training_topic",
    "quality_score",
    "quality_tier",
    "human_reviewed",
    "system_prompt",
    "current_user_input",
    "target_response",
    "primary_emotion",
    "primary_confidence",
    "secondary_emotion",
    "secondary_confidence",
    "emotional_intensity",
    "emotional_valence",
    "messages",
)


def openai_lines(entry: ConversationEntry) -> bytes:
    """`{"messages": [...]}` per chat example of the conversation."""
    return _lines(entry, lambda pair, chat: {"messages": chat})


def hf_lines(entry: ConversationEntry) -> bytes:
    """One flat record per chat example of the conversation."""
    return _lines(entry, lambda pair, chat: hf_record(entry, pair, chat))


def hf_record(
    entry: ConversationEntry, pair: Mapping[str, Any], chat: list[Message]
) -> dict[str, Any]:
    metadata = _object(pair.get("training_metadata"))
    emotions = _object(_object(pair.get("emotional_context")).get("detected_emotions"))
    scaffolding = entry.scaffolding
    own_score = _number(metadata.get("quality_score"))
    return {
        "id": line_id(dict(pair), entry.conversation_id),
        "conversation_id": str(entry.conversation_id),
        "pair_id": _text(pair.get("id")),
        "turn_number": _integer(pair.get("turn_number")),
        "persona_key": scaffolding.persona_key,
        "persona_name": scaffolding.persona_name,
        "emotional_arc_key": scaffolding.emotional_arc_key,
        "emotional_arc": scaffolding.emotional_arc,
        "training_topic_key": scaffolding.training_topic_key,
        "training_topic": scaffolding.training_topic,
        "quality_score": own_score if own_score is not None else _number(entry.quality_score),
        "quality_tier": entry.quality_tier,
        "human_reviewed": metadata.get("human_reviewed") is True,
        "system_prompt": _text(pair.get("system_prompt")),
        "current_user_input": _text(pair.get("current_user_input")),
        "target_response": _text(pair.get("target_response")),
        "primary_emotion": _text(emotions.get("primary")),
        "primary_confidence": _number(emotions.get("primary_confidence")),
        "secondary_emotion": _text(emotions.get("secondary")),
        "secondary_confidence": _number(emotions.get("secondary_confidence")),
        "emotional_intensity": _number(emotions.get("intensity")),
        "emotional_valence": _text(emotions.get("valence")),
        "messages": chat,
    }


def _lines(entry: ConversationEntry, record: _Record) -> bytes:
    out: list[str] = []
    for pair in entry.training_pairs:
        chat = messages(pair)
        if chat is not None:
            out.append(dumps_line(record(pair, chat)) + "\n")
    return "".join(out).encode("utf-8")


def _object(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: object) -> float | None:
    """A float (`3`, `3.0` and Decimal 3 alike), or None for what is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
