"""The v4 vocabulary and the consultant profile, loaded once from the JSON files in `data/`.

Personas, emotional arcs, training topics and conversation phases are described here (keys,
names, archetype labels, stages). Which of them are *v4* values is not: the conversation
schema's enums say that (`in_v4`), and every value those enums name must be described in the
vocabulary files, or loading fails.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Final

__all__ = [
    "CONSULTANT_PROFILE",
    "CONVERSATION_SCHEMA",
    "VOCABULARY",
    "ConversationPhase",
    "EmotionalArc",
    "Persona",
    "PhaseStage",
    "TrainingTopic",
    "Vocabulary",
    "load_data",
    "load_vocabulary",
]


def load_data(name: str) -> Any:
    """A JSON file of the domain's `data/` directory, parsed (key order kept)."""
    return json.loads((files(__package__) / "data" / name).read_text(encoding="utf-8"))


class PhaseStage(enum.StrEnum):
    """Where in a conversation a phase belongs."""

    OPENING = "opening"
    EXPLORING = "exploring"
    IMPLEMENTING = "implementing"
    CLOSING = "closing"


@dataclass(frozen=True)
class Persona:
    key: str
    name: str  # the client's name, as `input_parameters.persona_name` has it
    archetype: str  # the label old files put in `client_persona` ("The Pragmatic Optimist")
    in_v4: bool


@dataclass(frozen=True)
class EmotionalArc:
    key: str
    name: str
    start_emotion: str
    end_emotion: str
    opening_phase: str
    pair_id_prefix: str  # upstream's pair ids ("educational_turn1") and conversation_id
    difficulty: str
    in_v4: bool


@dataclass(frozen=True)
class TrainingTopic:
    key: str
    name: str


@dataclass(frozen=True)
class ConversationPhase:
    key: str
    stage: PhaseStage


@dataclass(frozen=True)
class Vocabulary:
    personas: tuple[Persona, ...]
    emotional_arcs: tuple[EmotionalArc, ...]
    training_topics: tuple[TrainingTopic, ...]
    conversation_phases: tuple[ConversationPhase, ...]

    def persona_for_archetype(self, label: str) -> Persona | None:
        """The v4 persona an archetype label names; case and spacing do not matter."""
        wanted = _normalized(label)
        for persona in self.personas:
            if persona.in_v4 and _normalized(persona.archetype) == wanted:
                return persona
        return None

    def phase_of_stage(self, stage: PhaseStage) -> ConversationPhase:
        """The first phase of a stage (the only one, except for openings)."""
        return next(phase for phase in self.conversation_phases if phase.stage is stage)


def _normalized(label: str) -> str:
    return " ".join(label.split()).casefold()


# --------------------------------------------------------------------------- loading


def _text(entry: Mapping[str, Any], key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"vocabulary entry {entry!r} needs a non-empty string {key!r}")
    return value


def _schema_enum(schema: Mapping[str, Any], definition: str, name: str) -> frozenset[str]:
    return frozenset(schema["$defs"][definition]["properties"][name]["enum"])


def _require_described(kind: str, described: set[str], schema_values: frozenset[str]) -> None:
    missing = sorted(schema_values - described)
    if missing:
        raise ValueError(f"the schema's {kind} {missing} are not in the vocabulary files")


def _unique(kind: str, keys: list[str]) -> set[str]:
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate {kind} keys in the vocabulary files: {keys}")
    return set(keys)


def _personas(v4: frozenset[str]) -> tuple[Persona, ...]:
    personas = tuple(
        Persona(_text(e, "key"), _text(e, "name"), _text(e, "archetype"), e["key"] in v4)
        for e in load_data("personas.json")
    )
    _require_described("personas", _unique("persona", [p.key for p in personas]), v4)
    return personas


def _arc(entry: Mapping[str, Any], v4: frozenset[str]) -> EmotionalArc:
    return EmotionalArc(
        key=_text(entry, "key"),
        name=_text(entry, "name"),
        start_emotion=_text(entry, "start_emotion"),
        end_emotion=_text(entry, "end_emotion"),
        opening_phase=_text(entry, "opening_phase"),
        pair_id_prefix=_text(entry, "pair_id_prefix"),
        difficulty=_text(entry, "difficulty"),
        in_v4=entry["key"] in v4,
    )


def _arcs(v4: frozenset[str], openings: set[str]) -> tuple[EmotionalArc, ...]:
    arcs = tuple(_arc(entry, v4) for entry in load_data("emotional_arcs.json"))
    _require_described("emotional arcs", _unique("arc", [a.key for a in arcs]), v4)
    for arc in arcs:
        if arc.in_v4 and arc.opening_phase not in openings:
            raise ValueError(f"arc {arc.key!r} opens with {arc.opening_phase!r}, no v4 opening")
    return arcs


def _phases(v4: frozenset[str]) -> tuple[ConversationPhase, ...]:
    phases = tuple(
        ConversationPhase(_text(e, "key"), PhaseStage(_text(e, "stage")))
        for e in load_data("conversation_phases.json")
    )
    keys = _unique("phase", [p.key for p in phases])
    # The phases are exactly the schema's: the stage is all this file adds.
    if keys != v4:
        raise ValueError(
            f"conversation phases {sorted(keys)} differ from the schema's {sorted(v4)}"
        )
    return phases


def _topics() -> tuple[TrainingTopic, ...]:
    topics = tuple(
        TrainingTopic(_text(e, "key"), _text(e, "name")) for e in load_data("training_topics.json")
    )
    _unique("topic", [t.key for t in topics])
    return topics


def load_vocabulary(schema: Mapping[str, Any]) -> Vocabulary:
    """The vocabulary files, checked against (and marked with) the enums of `schema`."""
    phases = _phases(_schema_enum(schema, "conversation_metadata", "conversation_phase"))
    openings = {p.key for p in phases if p.stage is PhaseStage.OPENING}
    return Vocabulary(
        personas=_personas(_schema_enum(schema, "conversation_metadata", "persona_archetype")),
        emotional_arcs=_arcs(
            _schema_enum(schema, "conversation_metadata", "emotional_arc_key"), openings
        ),
        training_topics=_topics(),
        conversation_phases=phases,
    )


# The upstream contract of one enriched conversation file, verbatim.
CONVERSATION_SCHEMA: Final[dict[str, Any]] = load_data("individual-conversation.schema.json")
VOCABULARY: Final = load_vocabulary(CONVERSATION_SCHEMA)
# The consultant the training files speak for, as the original system wrote it; used when no
# conversation of a file carries a profile, and by the demo generator. Not to be mutated.
CONSULTANT_PROFILE: Final[dict[str, Any]] = load_data("consultant_profile.json")
