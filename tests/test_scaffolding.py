"""graphql_api.conversations.scaffolding: persona, arc and topic keys and names; the title."""

from __future__ import annotations

import pytest

from .conversation_documents import analyzed, document, keys

CLIENT_PERSONA = "training_pairs[0].conversation_metadata.client_persona"


def _old_style(client_persona: str) -> dict[str, object]:
    """A document whose pairs have none of the v4 keys, like the older real files."""
    doc = document()
    for pair in doc["training_pairs"]:
        metadata = pair["conversation_metadata"]
        for key in (
            "persona_archetype",
            "emotional_arc",
            "emotional_arc_key",
            "training_topic",
            "training_topic_key",
        ):
            del metadata[key]
        metadata["client_persona"] = client_persona
    return doc


def test_scaffolding_comes_from_the_first_pair() -> None:
    scaffolding = analyzed(document()).scaffolding
    assert scaffolding.persona_key == "pragmatic_optimist"
    assert scaffolding.persona_name == "David Chen"
    assert scaffolding.emotional_arc_key == "confusion_to_clarity"
    assert scaffolding.emotional_arc_name == "Confusion → Clarity"
    assert scaffolding.training_topic_key == "mortgage_payoff_strategy"
    assert scaffolding.training_topic_name == "Accelerated Mortgage Payoff"


def test_scaffolding_prefers_input_parameters_field_by_field() -> None:
    doc = document()
    doc["input_parameters"] = {
        "persona_key": "anxious_planner",
        "persona_name": "",
        "emotional_arc_key": "couple_conflict_to_alignment",
        "training_topic_name": "Eldercare",
    }
    analysis = analyzed(doc)
    scaffolding = analysis.scaffolding
    assert scaffolding.persona_key == "anxious_planner"
    assert scaffolding.persona_name == "David Chen"
    assert scaffolding.emotional_arc_key == "couple_conflict_to_alignment"
    assert scaffolding.emotional_arc_name == "Confusion → Clarity"
    assert scaffolding.training_topic_key == "mortgage_payoff_strategy"
    assert scaffolding.training_topic_name == "Eldercare"
    assert keys(analysis.report.warnings) == {("unknown_key", "input_parameters")}


def test_input_parameters_of_the_wrong_type_are_ignored() -> None:
    doc = document()
    doc["input_parameters"] = "anxious_planner"
    assert analyzed(doc).scaffolding.persona_key == "pragmatic_optimist"


@pytest.mark.parametrize(
    ("client_persona", "key", "name"),
    [
        ("David Chen - The Pragmatic Optimist", "pragmatic_optimist", "David Chen"),
        ("Jennifer Martinez - The Anxious Planner", "anxious_planner", "Jennifer Martinez"),
        ("Marcus Chen - the  overwhelmed   AVOIDER", "overwhelmed_avoider", "Marcus Chen"),
        ("The Anxious Planner", "anxious_planner", "Jennifer Martinez"),
    ],
)
def test_old_files_get_the_persona_their_archetype_names(
    client_persona: str, key: str, name: str
) -> None:
    analysis = analyzed(_old_style(client_persona))
    assert (analysis.scaffolding.persona_key, analysis.scaffolding.persona_name) == (key, name)
    [derived] = [w for w in analysis.report.warnings if w.code == "derived_persona_key"]
    assert derived.path == CLIENT_PERSONA
    assert f'the persona key "{key}" was derived from it' in derived.message


@pytest.mark.parametrize("client_persona", ["Sam Lee - The Skeptic", "Sam Lee", ""])
def test_an_archetype_outside_the_v4_enum_gives_no_key(client_persona: str) -> None:
    analysis = analyzed(_old_style(client_persona))
    assert analysis.scaffolding.persona_key is None
    assert analysis.scaffolding.persona_name == (client_persona.split(" - ")[0] or None)
    assert "derived_persona_key" not in {w.code for w in analysis.report.warnings}


def test_a_v4_key_is_never_overridden_by_the_archetype() -> None:
    doc = document()
    doc["training_pairs"][0]["conversation_metadata"]["client_persona"] = "X - The Anxious Planner"
    analysis = analyzed(doc)
    assert analysis.scaffolding.persona_key == "pragmatic_optimist"
    assert analysis.report.warnings == ()


def test_empty_strings_are_absent_and_title_falls_back() -> None:
    doc = document()
    del doc["dataset_metadata"]["notes"]
    for pair in doc["training_pairs"]:
        pair["conversation_metadata"]["training_topic"] = ""
    analysis = analyzed(doc)
    assert analysis.scaffolding.training_topic_name is None
    assert analysis.title == "David Chen"
    doc["training_pairs"][0]["conversation_metadata"]["training_topic"] = "Mortgage Payoff"
    assert analyzed(doc).title == "David Chen - Mortgage Payoff"


def test_title_is_the_template_name() -> None:
    doc = document()
    doc["dataset_metadata"]["notes"] = "Generated via template:  Template - Fear → Confidence "
    assert analyzed(doc).title == "Template - Fear → Confidence"
