"""graphql_api.domain.vocabulary: the vocabulary files, checked against the schema's enums,
and the consultant profile."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from graphql_api.domain.vocabulary import (
    CONSULTANT_PROFILE,
    CONVERSATION_SCHEMA,
    VOCABULARY,
    PhaseStage,
    load_vocabulary,
)

from .conversation_documents import require_shared


def test_personas() -> None:
    assert [(p.key, p.name, p.archetype, p.in_v4) for p in VOCABULARY.personas] == [
        ("pragmatic_optimist", "David Chen", "The Pragmatic Optimist", True),
        ("anxious_planner", "Jennifer Martinez", "The Anxious Planner", True),
        ("overwhelmed_avoider", "Marcus Chen", "The Overwhelmed Avoider", True),
    ]


def test_emotional_arcs_and_which_are_v4() -> None:
    arcs = {a.key: a for a in VOCABULARY.emotional_arcs}
    assert {key for key, arc in arcs.items() if arc.in_v4} == {
        "confusion_to_clarity",
        "shame_to_acceptance",
        "fear_to_confidence",
        "overwhelm_to_empowerment",
    }
    couple = arcs["couple_conflict_to_alignment"]
    assert (couple.in_v4, couple.name, couple.pair_id_prefix) == (
        False,
        "Couple Conflict → Alignment",
        "conflict_resolution",
    )
    fear = arcs["fear_to_confidence"]
    assert (fear.start_emotion, fear.end_emotion, fear.difficulty) == (
        "fear",
        "confidence",
        "advanced",
    )


def test_training_topics_include_those_of_the_real_files() -> None:
    topics = {t.key: t.name for t in VOCABULARY.training_topics}
    assert len(topics) == 12
    assert topics["eldercare_costs"] == "Planning for Eldercare Expenses"
    assert topics["refinancing_evaluation"] == "Mortgage Refinancing Decision"


def test_phases_have_stages() -> None:
    stages = {p.key: p.stage for p in VOCABULARY.conversation_phases}
    assert stages == {
        "initial_opportunity_exploration": PhaseStage.OPENING,
        "initial_shame_revelation": PhaseStage.OPENING,
        "initial_crisis_disclosure": PhaseStage.OPENING,
        "exploring_deeper_concern": PhaseStage.EXPLORING,
        "practical_implementation": PhaseStage.IMPLEMENTING,
        "commitment_and_closure": PhaseStage.CLOSING,
    }
    assert VOCABULARY.phase_of_stage(PhaseStage.CLOSING).key == "commitment_and_closure"


@pytest.mark.parametrize(
    ("label", "key"),
    [
        ("The Pragmatic Optimist", "pragmatic_optimist"),
        ("the anxious   planner", "anxious_planner"),
        ("The Skeptic", None),
        ("", None),
    ],
)
def test_persona_for_archetype(label: str, key: str | None) -> None:
    persona = VOCABULARY.persona_for_archetype(label)
    assert (persona.key if persona else None) == key


def _schema_with(definition: str, name: str, values: list[str]) -> dict[str, Any]:
    schema = copy.deepcopy(CONVERSATION_SCHEMA)
    schema["$defs"][definition]["properties"][name]["enum"] = values
    return schema


def test_a_schema_value_without_a_description_fails_to_load() -> None:
    schema = _schema_with(
        "conversation_metadata", "persona_archetype", ["pragmatic_optimist", "skeptic"]
    )
    with pytest.raises(ValueError, match="skeptic"):
        load_vocabulary(schema)


def test_phases_must_be_exactly_the_schema_phases() -> None:
    schema = _schema_with("conversation_metadata", "conversation_phase", ["commitment_and_closure"])
    with pytest.raises(ValueError, match="differ from the schema"):
        load_vocabulary(schema)


def test_fewer_schema_values_mark_fewer_entries_v4() -> None:
    schema = _schema_with("conversation_metadata", "emotional_arc_key", ["fear_to_confidence"])
    arcs = load_vocabulary(schema).emotional_arcs
    assert [a.key for a in arcs if a.in_v4] == ["fear_to_confidence"]


def test_the_consultant_profile_is_the_original_systems() -> None:
    example = json.loads((require_shared() / "training-file-example.json").read_text())
    assert example["consultant_profile"] == CONSULTANT_PROFILE
    assert list(CONSULTANT_PROFILE) == list(example["consultant_profile"])


def test_the_consultant_profile_is_complete() -> None:
    style = CONSULTANT_PROFILE["communication_style"]
    assert (CONSULTANT_PROFILE["name"], CONSULTANT_PROFILE["business"]) == (
        "Elena Morales, CFP",
        "Pathways Financial Planning",
    )
    assert len(style["techniques"]) == 5 and len(style["avoid"]) == 5
    assert list(CONSULTANT_PROFILE["core_philosophy"]) == [f"principle_{i}" for i in range(1, 6)]
    assert list(CONSULTANT_PROFILE) == [
        "name",
        "business",
        "expertise",
        "years_experience",
        "core_philosophy",
        "communication_style",
    ]
