"""The demo's sentence banks, loaded once from `data/` and joined to the domain vocabulary.

The vocabulary says what a persona, arc or topic is (key, name, archetype, phases); the banks
add what the generator needs to write about it (demographics, openers, concepts, steps...).
Every vocabulary entry must have a bank, and every bank a vocabulary entry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Final

from ..domain.vocabulary import (
    CONSULTANT_PROFILE,
    VOCABULARY,
    EmotionalArc,
    Persona,
    TrainingTopic,
)

__all__ = [
    "ANNOTATIONS",
    "ARCS",
    "CLIENT",
    "CONSULTANT",
    "PERSONAS",
    "TOPICS",
    "ArcBank",
    "PersonaBank",
    "TopicBank",
]

Emotions = tuple[str, str]  # (primary, secondary)


def _load(name: str) -> Any:
    return json.loads((files(__package__) / "data" / name).read_text(encoding="utf-8"))


def _texts(entry: Mapping[str, Any], key: str) -> tuple[str, ...]:
    values = entry[key]
    if not (isinstance(values, list) and values and all(isinstance(v, str) for v in values)):
        raise ValueError(f"demo bank {key!r} must be a non-empty list of strings")
    return tuple(values)


def _emotions(entry: Mapping[str, Any], key: str) -> tuple[Emotions, ...]:
    return tuple((str(primary), str(secondary)) for primary, secondary in entry[key])


@dataclass(frozen=True)
class PersonaBank:
    persona: Persona
    ages: tuple[int, int]
    gender: str
    settings: tuple[str, ...]
    households: tuple[str, ...]
    profile: str
    openers: tuple[str, ...]
    traits: tuple[str, ...]
    residual: tuple[str, ...]
    insight: tuple[str, ...]

    @property
    def first_name(self) -> str:
        return self.persona.name.split()[0]


@dataclass(frozen=True)
class ArcBank:
    arc: EmotionalArc
    user_emotions: tuple[Emotions, ...]
    coach_emotions: tuple[Emotions, ...]
    validation: tuple[str, ...]
    feelings_start: tuple[str, ...]
    feelings_mid: tuple[str, ...]
    feelings_end: tuple[str, ...]
    session: tuple[str, ...]
    outcome: tuple[str, ...]
    couple: bool
    # Drift as real files show it: one out-of-enum phase for every pair, or another opening.
    constant_phases: tuple[str, ...]
    drift_opening_phase: str | None


@dataclass(frozen=True)
class TopicBank:
    topic: TrainingTopic
    phrase: str
    situation: tuple[str, ...]
    worry: tuple[str, ...]
    concepts: tuple[str, ...]
    steps: tuple[tuple[str, str], ...]  # (title, body)
    followups: tuple[str, ...]
    questions: tuple[str, ...]
    commitments: tuple[str, ...]


def _joined(kind: str, keys: list[str], banks: Mapping[str, Any]) -> None:
    if set(keys) != set(banks):
        raise ValueError(f"demo {kind} banks {sorted(banks)} do not match the vocabulary {keys}")


def _persona_banks() -> tuple[PersonaBank, ...]:
    banks = _load("personas.json")
    _joined("persona", [p.key for p in VOCABULARY.personas], banks)
    return tuple(_persona_bank(p, banks[p.key]) for p in VOCABULARY.personas)


def _persona_bank(persona: Persona, bank: Mapping[str, Any]) -> PersonaBank:
    low, high = bank["ages"]
    return PersonaBank(
        persona=persona,
        ages=(int(low), int(high)),
        gender=str(bank["gender"]),
        settings=_texts(bank, "settings"),
        households=_texts(bank, "households"),
        profile=str(bank["profile"]),
        openers=_texts(bank, "openers"),
        traits=_texts(bank, "traits"),
        residual=_texts(bank, "residual"),
        insight=_texts(bank, "insight"),
    )


def _arc_banks(default_coach: tuple[Emotions, ...]) -> tuple[ArcBank, ...]:
    banks = _load("arcs.json")
    _joined("arc", [a.key for a in VOCABULARY.emotional_arcs], banks)
    return tuple(_arc_bank(a, banks[a.key], default_coach) for a in VOCABULARY.emotional_arcs)


def _arc_bank(
    arc: EmotionalArc, bank: Mapping[str, Any], default_coach: tuple[Emotions, ...]
) -> ArcBank:
    return ArcBank(
        arc=arc,
        user_emotions=_emotions(bank, "user_emotions"),
        coach_emotions=_emotions(bank, "coach_emotions")
        if "coach_emotions" in bank
        else default_coach,
        validation=_texts(bank, "validation"),
        feelings_start=_texts(bank, "feelings_start"),
        feelings_mid=_texts(bank, "feelings_mid"),
        feelings_end=_texts(bank, "feelings_end"),
        session=_texts(bank, "session"),
        outcome=_texts(bank, "outcome"),
        couple=bool(bank.get("couple", False)),
        constant_phases=tuple(bank.get("constant_phases", ())),
        drift_opening_phase=bank.get("drift_opening_phase"),
    )


def _topic_banks() -> tuple[TopicBank, ...]:
    banks = _load("topics.json")
    _joined("topic", [t.key for t in VOCABULARY.training_topics], banks)
    return tuple(_topic_bank(t, banks[t.key]) for t in VOCABULARY.training_topics)


def _topic_bank(topic: TrainingTopic, bank: Mapping[str, Any]) -> TopicBank:
    return TopicBank(
        topic=topic,
        phrase=str(bank["phrase"]),
        situation=_texts(bank, "situation"),
        worry=_texts(bank, "worry"),
        concepts=_texts(bank, "concepts"),
        steps=tuple((str(s["title"]), str(s["body"])) for s in bank["steps"]),
        followups=_texts(bank, "followups"),
        questions=_texts(bank, "questions"),
        commitments=_texts(bank, "commitments"),
    )


@dataclass(frozen=True)
class ConsultantBank:
    """What the consultant says whatever the persona, arc and topic."""

    name: str
    business: str
    system_prompts: tuple[str, ...]
    normalize: tuple[str, ...]
    reflect: tuple[str, ...]
    permission: tuple[str, ...]
    mid_acknowledgements: tuple[str, ...]
    mid_validations: tuple[str, ...]
    reframes: tuple[str, ...]
    metaphors: tuple[str, ...]
    closing_questions: tuple[str, ...]
    practice_intros: tuple[str, ...]
    progress: tuple[str, ...]
    final: tuple[str, ...]
    couple_note: str


def _consultant(bank: Mapping[str, Any]) -> ConsultantBank:
    name, business = str(CONSULTANT_PROFILE["name"]), str(CONSULTANT_PROFILE["business"])
    prompts = tuple(p.format(name=name, business=business) for p in _texts(bank, "system_prompts"))
    return ConsultantBank(
        name=name,
        business=business,
        system_prompts=prompts,
        normalize=_texts(bank, "normalize"),
        reflect=_texts(bank, "reflect"),
        permission=_texts(bank, "permission"),
        mid_acknowledgements=_texts(bank, "mid_acknowledgements"),
        mid_validations=_texts(bank, "mid_validations"),
        reframes=_texts(bank, "reframes"),
        metaphors=_texts(bank, "metaphors"),
        closing_questions=_texts(bank, "closing_questions"),
        practice_intros=_texts(bank, "practice_intros"),
        progress=_texts(bank, "progress"),
        final=_texts(bank, "final"),
        couple_note=str(bank["couple_note"]),
    )


@dataclass(frozen=True)
class ClientBank:
    """What clients say whatever their persona, and who they mention."""

    acknowledgements: tuple[str, ...]
    closings: tuple[str, ...]
    final_questions: tuple[str, ...]
    partners: tuple[str, ...]
    parents: tuple[str, ...]
    couple_note: str


@dataclass(frozen=True)
class ExtraKey:
    """An unknown key some files carry, as real data does (`{rev}` is a revision number)."""

    container: str  # dataset_metadata | conversation_metadata | training_metadata
    key: str
    value: str


@dataclass(frozen=True)
class AnnotationBank:
    reviewer_notes: tuple[str, ...]
    skills: tuple[str, ...]
    extra_keys: tuple[ExtraKey, ...]
    # conversation_source values with the weights they are drawn with.
    conversation_sources: tuple[tuple[str, int], ...]


def _client(bank: Mapping[str, Any]) -> ClientBank:
    return ClientBank(
        acknowledgements=_texts(bank, "acknowledgements"),
        closings=_texts(bank, "closings"),
        final_questions=_texts(bank, "final_questions"),
        partners=_texts(bank, "partners"),
        parents=_texts(bank, "parents"),
        couple_note=str(bank["couple_note"]),
    )


def _annotations(bank: Mapping[str, Any]) -> AnnotationBank:
    return AnnotationBank(
        reviewer_notes=_texts(bank, "reviewer_notes"),
        skills=_texts(bank, "skills"),
        extra_keys=tuple(
            ExtraKey(e["container"], e["key"], e["value"]) for e in bank["extra_keys"]
        ),
        conversation_sources=tuple(
            (str(source), int(weight)) for source, weight in bank["conversation_sources"].items()
        ),
    )


_CONSULTANT_DATA: Final = _load("consultant.json")
CONSULTANT: Final = _consultant(_CONSULTANT_DATA)
CLIENT: Final = _client(_load("client.json"))
ANNOTATIONS: Final = _annotations(_load("annotations.json"))
PERSONAS: Final = _persona_banks()
ARCS: Final = _arc_banks(_emotions(_CONSULTANT_DATA, "coach_emotions"))
TOPICS: Final = _topic_banks()
