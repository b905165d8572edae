"""graphql_api.conversations.validation: which schema departures block and which warn."""

from __future__ import annotations

from typing import Any

import pytest

from .conversation_documents import (
    PAIRS_CM,
    analyzed,
    blocked_doc,
    document,
    keys,
    only_issue,
    pair,
    set_path,
)

PHASE_DRIFT = ("enum_drift", f"{PAIRS_CM}.conversation_phase")

# --------------------------------------------------------------------------- blockers


def test_missing_and_empty_training_pairs() -> None:
    doc = document()
    del doc["training_pairs"]
    blocked_doc(doc, "missing_training_pairs", "training_pairs")
    doc["training_pairs"] = []
    message = blocked_doc(doc, "empty_training_pairs", "training_pairs").message
    assert message == "training_pairs is empty, a conversation needs at least one pair."
    doc["training_pairs"] = {"0": pair(1)}
    blocked_doc(doc, "wrong_type", "training_pairs")


def test_pair_not_an_object() -> None:
    doc = document()
    doc["training_pairs"][1] = "turn 2"
    message = blocked_doc(doc, "wrong_type", "training_pairs[1]").message
    assert message == "training_pairs[1] is a string, expected an object."


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("turn_number", "an integer >= 1"),
        ("system_prompt", "a string"),
        ("current_user_input", "a string"),
    ],
)
def test_pair_without_a_structural_field(name: str, expected: str) -> None:
    doc = document()
    del doc["training_pairs"][2][name]
    message = blocked_doc(doc, "missing_field", f"training_pairs[2].{name}").message
    assert message == f"training_pairs[2].{name} is missing; every training pair needs {expected}."


@pytest.mark.parametrize(
    ("turn_number", "code"),
    [(True, "wrong_type"), ("1", "wrong_type"), (1.0, "wrong_type"), (0, "out_of_range")],
)
def test_turn_number_must_be_a_positive_integer(turn_number: Any, code: str) -> None:
    doc = document(1)
    doc["training_pairs"][0]["turn_number"] = turn_number
    blocked_doc(doc, code, "training_pairs[0].turn_number")


@pytest.mark.parametrize(
    ("path", "value", "found"),
    [
        ("training_pairs[1].target_response", 5, "an integer, expected a string or null"),
        ("training_pairs[1].conversation_history", {}, "an object, expected an array"),
        ("training_pairs[1].system_prompt", None, "null, expected a string"),
        (
            "training_pairs[1].training_metadata.quality_score",
            "high",
            "a string, expected a number",
        ),
        ("training_pairs[1].training_metadata.human_reviewed", "yes", "expected a boolean"),
        ("training_pairs[1].conversation_history[0].role", 1, "expected a string"),
        ("dataset_metadata", [], "an array, expected an object"),
        ("dataset_metadata.dataset_name", 7, "an integer, expected a string"),
        ("consultant_profile.years_experience", "15", "expected an integer >= 0"),
        ("dataset_metadata.total_conversations", "1", "a string, expected an integer"),
    ],
)
def test_wrong_types_block(path: str, value: Any, found: str) -> None:
    doc = document()
    set_path(doc, path, value)
    assert found in blocked_doc(doc, "wrong_type", path).message


def test_a_wrong_type_is_the_only_finding_at_its_path() -> None:
    # An integer role is also outside the role enum, and a string total_conversations is not
    # the const 1: neither is reported on top of the type.
    doc = document()
    set_path(doc, "training_pairs[1].conversation_history[0].role", 1)
    set_path(doc, "dataset_metadata.total_conversations", "1")
    report = analyzed(doc).report
    assert keys(report.blockers) == {
        ("wrong_type", "training_pairs[1].conversation_history[0].role"),
        ("wrong_type", "dataset_metadata.total_conversations"),
    }
    assert report.warnings == ()


def test_quality_scores_outside_1_to_5_block() -> None:
    doc = document()
    doc["training_pairs"][0]["training_metadata"]["quality_score"] = 7
    doc["training_pairs"][1]["training_metadata"]["quality_criteria"]["empathy_score"] = 0
    message = blocked_doc(
        doc, "out_of_range", "training_pairs[0].training_metadata.quality_score"
    ).message
    assert "outside the schema range 1–5 (quality scores are averaged" in message
    path = "training_pairs[1].training_metadata.quality_criteria.empathy_score"
    blocked_doc(doc, "out_of_range", path)


def test_every_blocker_is_reported() -> None:
    doc = document(4)
    doc["dataset_metadata"]["dataset_name"] = "fp_conversation_../../etc"
    del doc["training_pairs"][0]["system_prompt"]
    doc["training_pairs"][1]["current_user_input"] = ["not", "text"]
    doc["training_pairs"][2]["turn_number"] = 2
    doc["training_pairs"][3]["target_response"] = {"text": "x"}
    analysis = analyzed(doc)
    assert keys(analysis.report.blockers) == {
        ("missing_field", "training_pairs[0].system_prompt"),
        ("wrong_type", "training_pairs[1].current_user_input"),
        ("duplicate_turn_number", "training_pairs[2].turn_number"),
        ("wrong_type", "training_pairs[3].target_response"),
        ("bad_dataset_name", "dataset_metadata.dataset_name"),
    }
    assert analysis.stats.pair_count == 4


# --------------------------------------------------------------------------- warnings


def test_repeated_drift_is_folded_single_drift_keeps_its_path() -> None:
    doc = document()
    for item in doc["training_pairs"]:
        item["conversation_metadata"]["conversation_phase"] = "couple_conflict_resolution"
    doc["training_pairs"][1]["conversation_metadata"]["persona_archetype"] = "skeptic"
    doc["training_pairs"][2]["emotional_context"]["detected_emotions"]["valence"] = "neutral"
    warnings = analyzed(doc).report.warnings
    assert keys(warnings) == {
        PHASE_DRIFT,
        ("enum_drift", "training_pairs[1].conversation_metadata.persona_archetype"),
        ("enum_drift", "training_pairs[2].emotional_context.detected_emotions.valence"),
    }
    assert only_issue(warnings, *PHASE_DRIFT).message == (
        f'{PAIRS_CM}.conversation_phase is "couple_conflict_resolution", not one of the schema '
        "values (initial_opportunity_exploration, initial_shame_revelation, "
        "initial_crisis_disclosure, exploring_deeper_concern, practical_implementation, "
        "commitment_and_closure) (in 3 of 3 training pairs)."
    )


def test_different_drift_values_are_separate_warnings() -> None:
    doc = document()
    for index, item in enumerate(doc["training_pairs"]):
        item["conversation_metadata"]["emotional_arc_key"] = f"arc_{index % 2}"
    folded, single = analyzed(doc).report.warnings
    assert folded.path == f"{PAIRS_CM}.emotional_arc_key"
    assert '"arc_0"' in folded.message and "in 2 of 3 training pairs" in folded.message
    assert single.path == "training_pairs[1].conversation_metadata.emotional_arc_key"
    assert '"arc_1"' in single.message and "training pairs" not in single.message


def test_missing_v4_keys_are_named_as_such() -> None:
    doc = document()
    for item in doc["training_pairs"]:
        del item["conversation_metadata"]["training_topic_key"]
        del item["conversation_metadata"]["session_context"]
    warnings = analyzed(doc).report.warnings
    v4 = only_issue(warnings, "missing_optional_v4_key", f"{PAIRS_CM}.training_topic_key")
    assert "a v4 addition that older files lack" in v4.message
    other = only_issue(warnings, "missing_field", f"{PAIRS_CM}.session_context")
    assert "required by the v4 schema" in other.message


def test_missing_non_structural_fields_warn() -> None:
    doc = document()
    del doc["consultant_profile"]
    del doc["training_pairs"][0]["training_metadata"]
    del doc["training_pairs"][0]["emotional_context"]
    doc["training_pairs"][1]["system_prompt"] = "Be nice."
    doc["extra"] = 1
    analysis = analyzed(doc)
    assert analysis.report.ok
    assert keys(analysis.report.warnings) == {
        ("missing_field", "consultant_profile"),
        ("missing_field", "training_pairs[0].training_metadata"),
        ("missing_field", "training_pairs[0].emotional_context"),
        ("too_short", "training_pairs[1].system_prompt"),
        ("unknown_key", "extra"),
    }
    assert analysis.consultant_profile is None


def test_unknown_keys_warn_at_any_depth() -> None:
    doc = document()
    doc["dataset_metadata"]["generator_revision"] = "r1"
    for item in doc["training_pairs"]:
        item["training_metadata"]["review_batch"] = "b1"
    warnings = analyzed(doc).report.warnings
    assert keys(warnings) == {
        ("unknown_key", "dataset_metadata.generator_revision"),
        ("unknown_key", "training_pairs[*].training_metadata.review_batch"),
    }


def test_input_parameters_is_an_expected_unknown_key() -> None:
    doc = document()
    doc["input_parameters"] = {"persona_key": "anxious_planner"}
    [warning] = analyzed(doc).report.warnings
    assert warning.code == "unknown_key"
    assert "its keys are used for scaffolding" in warning.message
    doc["input_parameters"] = "anxious_planner"
    [warning] = analyzed(doc).report.warnings
    assert (warning.code, warning.path) == ("wrong_type", "input_parameters")
    assert "it is ignored for scaffolding" in warning.message


def test_lengths_constants_formats_and_ranges_warn() -> None:
    doc = document()
    doc["training_pairs"][0]["emotional_context"]["detected_emotions"]["intensity"] = 1.5
    doc["consultant_profile"]["communication_style"]["avoid"] = []
    doc["dataset_metadata"]["created_date"] = "04/12/2025"
    doc["dataset_metadata"]["version"] = "1.0"
    doc["dataset_metadata"]["vertical"] = "tax"
    analysis = analyzed(doc)
    assert analysis.report.ok
    assert {w.message for w in analysis.report.warnings} == {
        "training_pairs[0].emotional_context.detected_emotions.intensity is 1.5, "
        "outside the schema range 0–1.",
        "consultant_profile.communication_style.avoid has 0 items, the schema expects at least 1.",
        'dataset_metadata.created_date is "04/12/2025", expected an ISO date (YYYY-MM-DD).',
        'dataset_metadata.version is "1.0", not of the form ^\\d+\\.\\d+\\.\\d+$.',
        'dataset_metadata.vertical is "tax", expected "financial_planning_consultant".',
    }
    assert analysis.created_date is None


def test_an_upper_case_dataset_name_is_left_to_identity() -> None:
    # The schema's pattern fails for an upper-case uuid; identity accepts it with its own warning.
    doc = document()
    metadata = doc["dataset_metadata"]
    metadata["dataset_name"] = "fp_conversation_" + metadata["dataset_name"][16:].upper()
    assert keys(analyzed(doc).report.warnings) == {
        ("non_canonical_dataset_name", "dataset_metadata.dataset_name")
    }
