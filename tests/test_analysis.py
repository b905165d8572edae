"""graphql_api.conversations.analysis: the seven real files, then constructed bad documents."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from graphql_api.conversations.analysis import (
    MAX_ISSUES,
    ConversationAnalysis,
    Issue,
    analyze,
    conversation_id_from,
    derive_conversation_id,
    tier_for,
)

from .conftest import EXAMPLES_DIR, SHARED_DIR

PAIRS_CM = "training_pairs[*].conversation_metadata"
V4_KEYS = ("persona_archetype", "emotional_arc", "emotional_arc_key", "training_topic")
OLD_FILE = {
    ("missing_optional_v4_key", f"{PAIRS_CM}.{k}") for k in (*V4_KEYS, "training_topic_key")
}
INPUT_PARAMETERS = ("unknown_key", "input_parameters")
PHASE_DRIFT = ("enum_drift", f"{PAIRS_CM}.conversation_phase")
ARC_DRIFT = ("enum_drift", f"{PAIRS_CM}.emotional_arc_key")

EXPECTED_WARNINGS = {
    "david-chen-scenario-enriched.json": {*OLD_FILE, PHASE_DRIFT},
    "jennifer-complex-scenario-enriched.json": {*OLD_FILE, PHASE_DRIFT},
    "marcus-complex-scenario-enriched.json": OLD_FILE,
    "enriched-1.json": {INPUT_PARAMETERS},
    "enriched-2.json": {INPUT_PARAMETERS, ARC_DRIFT, PHASE_DRIFT},
    "enriched-3.json": {INPUT_PARAMETERS},
    "enriched-4.json": {INPUT_PARAMETERS, ARC_DRIFT, PHASE_DRIFT},
}


def _require_shared() -> None:
    if not SHARED_DIR.is_dir():
        pytest.skip(f"reference data not found: {SHARED_DIR} (the shared brightrun-v4 folder)")


def _schema() -> dict[str, Any]:
    _require_shared()
    return json.loads((SHARED_DIR / "individual-conversation.schema.json").read_text())


def _example(name: str) -> tuple[bytes, dict[str, Any]]:
    _require_shared()
    raw = (EXAMPLES_DIR / name).read_bytes()
    return raw, json.loads(raw)


def _keys(issues: tuple[Issue, ...]) -> set[tuple[str, str]]:
    return {(issue.code, issue.path) for issue in issues}


def _issue(issues: tuple[Issue, ...], code: str, path: str) -> Issue:
    found = [issue for issue in issues if (issue.code, issue.path) == (code, path)]
    assert len(found) == 1, (code, path, issues)
    return found[0]


# --------------------------------------------------------------------------- real files


@pytest.mark.parametrize("name", sorted(EXPECTED_WARNINGS))
def test_real_file_is_accepted_with_its_known_warnings(name: str) -> None:
    raw, _ = _example(name)
    report = analyze(raw).report
    assert report.ok, report.blockers
    assert _keys(report.warnings) == EXPECTED_WARNINGS[name]
    assert json.loads(json.dumps(report.to_json()))["valid"] is True


@pytest.mark.parametrize("name", sorted(EXPECTED_WARNINGS))
def test_real_file_warnings_cover_every_jsonschema_error(name: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    raw, document = _example(name)
    validator = jsonschema.Draft202012Validator(_schema())
    expected = {_schema_error_path(error) for error in validator.iter_errors(document)}
    assert expected == {issue.path for issue in analyze(raw).report.warnings}


def _schema_error_path(error: Any) -> str:
    path = "".join("[*]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    named = re.search(r"'(\w+)' (?:is a required property|was unexpected)", error.message)
    if named:
        path += f".{named.group(1)}"
    return path.lstrip(".")


@pytest.mark.parametrize("name", sorted(EXPECTED_WARNINGS))
def test_real_file_identity_and_stats(name: str) -> None:
    raw, document = _example(name)
    analysis = analyze(raw)
    dataset_name = document["dataset_metadata"]["dataset_name"]
    pairs = document["training_pairs"]
    scores = [Decimal(str(p["training_metadata"]["quality_score"])) for p in pairs]

    assert analysis.conversation_id == UUID(dataset_name.removeprefix("fp_conversation_"))
    assert analysis.dataset_name == dataset_name
    assert analysis.sha256 == hashlib.sha256(raw).hexdigest()
    assert analysis.created_date == date.fromisoformat(document["dataset_metadata"]["created_date"])
    assert analysis.total_turns == len(pairs)
    assert analysis.consultant_profile == document["consultant_profile"]
    assert analysis.stats.pair_count == len(pairs)
    assert analysis.stats.trainable_pair_count == sum(
        p["target_response"] is not None for p in pairs
    )
    assert analysis.stats.quality_sum == sum(scores)
    assert analysis.stats.quality_min == min(scores)
    assert analysis.stats.quality_max == max(scores)
    assert analysis.stats.quality_count == len(pairs)
    assert analysis.stats.human_reviewed_count == sum(
        p["training_metadata"]["human_reviewed"] is True for p in pairs
    )
    assert analysis.quality_score == Decimal("3.00")
    assert analysis.tier == "experimental"


def test_real_file_scaffolding_comes_from_input_parameters() -> None:
    raw, document = _example("enriched-1.json")
    analysis = analyze(raw)
    params = document["input_parameters"]
    scaffolding = analysis.scaffolding
    assert scaffolding.persona_key == params["persona_key"] == "anxious_planner"
    assert scaffolding.persona_name == params["persona_name"] == "Jennifer Martinez"
    assert scaffolding.emotional_arc_key == "fear_to_confidence"
    assert scaffolding.emotional_arc_name == "Fear → Confidence"
    assert scaffolding.training_topic_key == "eldercare_costs"
    assert scaffolding.training_topic_name == "Planning for Eldercare Expenses"
    assert analysis.title == "Template - Anxiety → Confidence - Investment Anxiety"


def test_real_drift_is_one_warning_naming_the_value_and_the_pairs() -> None:
    raw, _ = _example("enriched-2.json")
    warning = _issue(analyze(raw).report.warnings, *ARC_DRIFT)
    assert '"couple_conflict_to_alignment"' in warning.message
    assert "6 of 6 training pairs" in warning.message


def test_old_real_file_falls_back_to_pair_metadata() -> None:
    raw, _ = _example("david-chen-scenario-enriched.json")
    analysis = analyze(raw)
    assert analysis.scaffolding.persona_name == "David Chen"
    assert analysis.scaffolding.persona_key is None
    assert analysis.scaffolding.training_topic_key is None
    phase = _issue(analysis.report.warnings, *PHASE_DRIFT)
    assert '"couple_conflict_resolution"' in phase.message


# --------------------------------------------------------------------------- a valid document

CONVERSATION_ID = "3d4a31a7-9220-487a-9a27-50615968c3da"


def _pair(turn: int) -> dict[str, Any]:
    return {
        "id": f"educational_turn{turn}",
        "conversation_id": "educational",
        "turn_number": turn,
        "conversation_metadata": {
            "client_persona": "David Chen - The Pragmatic Optimist",
            "persona_archetype": "pragmatic_optimist",
            "client_background": "Age 35, married",
            "emotional_arc": "Confusion → Clarity",
            "emotional_arc_key": "confusion_to_clarity",
            "training_topic": "Accelerated Mortgage Payoff",
            "training_topic_key": "mortgage_payoff_strategy",
            "session_context": "Evaluating mortgage payoff",
            "conversation_phase": "initial_opportunity_exploration",
            "expected_outcome": "Clarity",
        },
        "system_prompt": "You are an emotionally intelligent financial planning assistant. " * 3,
        "conversation_history": [
            {
                "turn": t,
                "role": "user" if t % 2 else "assistant",
                "content": f"message {t}",
                "emotional_state": {"primary": "confusion", "intensity": 0.5},
            }
            for t in range(1, turn)
        ],
        "current_user_input": f"question {turn}",
        "emotional_context": {
            "detected_emotions": {
                "primary": "confusion",
                "primary_confidence": 0.8,
                "intensity": 0.7,
                "valence": "negative",
            }
        },
        "target_response": None if turn == 1 else f"answer {turn}",
        "training_metadata": {
            "difficulty_level": f"intermediate_conversation_turn_{turn}",
            "key_learning_objective": "mortgage_payoff",
            "demonstrates_skills": ["validation"],
            "conversation_turn": turn,
            "emotional_progression_target": "confusion(0.8) → clarity(0.8)",
            "quality_score": 4,
            "quality_criteria": {
                "empathy_score": 4,
                "clarity_score": 4.5,
                "appropriateness_score": 3,
                "brand_voice_alignment": 5,
            },
            "human_reviewed": turn == 2,
            "reviewer_notes": None,
            "use_as_seed_example": False,
            "generate_variations_count": 0,
        },
    }


def _document(pair_count: int = 3) -> dict[str, Any]:
    return {
        "dataset_metadata": {
            "dataset_name": f"fp_conversation_{CONVERSATION_ID}",
            "version": "1.0.0",
            "created_date": "2025-12-04",
            "vertical": "financial_planning_consultant",
            "consultant_persona": "Elena Morales, CFP - Pathways Financial Planning",
            "target_use": "LoRA fine-tuning for emotionally intelligent chatbot",
            "conversation_source": "synthetic_platform_generated",
            "quality_tier": "experimental",
            "total_conversations": 1,
            "total_turns": pair_count,
            "notes": "Generated via template: Mortgage Clarity",
        },
        "consultant_profile": {
            "name": "Elena Morales, CFP",
            "business": "Pathways Financial Planning",
            "expertise": "fee-only planning",
            "years_experience": 15,
            "core_philosophy": {f"principle_{i}": f"principle {i}" for i in range(1, 6)},
            "communication_style": {"tone": "warm", "techniques": ["ask"], "avoid": ["jargon"]},
        },
        "training_pairs": [_pair(turn) for turn in range(1, pair_count + 1)],
    }


def _analyze(document: Any) -> ConversationAnalysis:
    return analyze(json.dumps(document, ensure_ascii=False).encode())


def test_valid_document_has_no_issues() -> None:
    assert _analyze(_document()).report.to_json() == {
        "valid": True,
        "blockers": [],
        "warnings": [],
        "schema": "brightrun-individual-v4",
    }


def test_valid_document_is_valid_for_jsonschema_too() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(_document(), _schema())


def test_valid_document_summary() -> None:
    analysis = _analyze(_document())
    assert analysis.conversation_id == UUID(CONVERSATION_ID)
    assert analysis.title == "Mortgage Clarity"
    assert analysis.created_date == date(2025, 12, 4)
    assert analysis.total_turns == 3
    assert analysis.stats.pair_count == 3
    assert analysis.stats.trainable_pair_count == 2
    assert analysis.stats.human_reviewed_count == 1
    assert analysis.stats.quality_sum == Decimal(12)
    assert (analysis.quality_score, analysis.tier) == (Decimal("4.00"), "production")
    assert analysis.clarity_score == Decimal("4.50")
    assert analysis.brand_voice_alignment == Decimal("5.00")
    assert analysis.scaffolding.persona_key == "pragmatic_optimist"
    assert analysis.scaffolding.persona_name == "David Chen"
    assert analysis.scaffolding.emotional_arc_name == "Confusion → Clarity"
    assert analysis.scaffolding.training_topic_key == "mortgage_payoff_strategy"


# --------------------------------------------------------------------------- blockers


def _blocked(raw: bytes, code: str, path: str = "$") -> ConversationAnalysis:
    analysis = analyze(raw)
    assert not analysis.report.ok
    assert (code, path) in _keys(analysis.report.blockers), analysis.report.blockers
    assert analysis.report.to_json()["valid"] is False
    return analysis


def _blocked_doc(document: Any, code: str, path: str) -> Issue:
    analysis = _blocked(json.dumps(document).encode(), code, path)
    return _issue(analysis.report.blockers, code, path)


def test_not_json() -> None:
    analysis = _blocked(b'{"training_pairs": [', "not_json")
    assert analysis.conversation_id is None
    assert analysis.sha256 == hashlib.sha256(b'{"training_pairs": [').hexdigest()
    assert "line 1" in analysis.report.blockers[0].message
    _blocked(b"", "not_json")


def test_invalid_utf8() -> None:
    _blocked(b'{"training_pairs": "\xff\xfe"}', "not_utf8")


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"42", b"null"])
def test_top_level_must_be_an_object(raw: bytes) -> None:
    assert _blocked(raw, "not_object").conversation_id is None


@pytest.mark.parametrize("raw", [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1e999}'])
def test_non_finite_numbers(raw: bytes) -> None:
    _blocked(raw, "unsupported_number")


def test_missing_and_empty_training_pairs() -> None:
    document = _document()
    del document["training_pairs"]
    _blocked_doc(document, "missing_training_pairs", "training_pairs")
    document["training_pairs"] = []
    _blocked_doc(document, "empty_training_pairs", "training_pairs")
    document["training_pairs"] = {"0": _pair(1)}
    _blocked_doc(document, "wrong_type", "training_pairs")


def test_pair_not_an_object() -> None:
    document = _document()
    document["training_pairs"][1] = "turn 2"
    message = _blocked_doc(document, "wrong_type", "training_pairs[1]").message
    assert "is a string, expected an object" in message


@pytest.mark.parametrize("name", ["turn_number", "system_prompt", "current_user_input"])
def test_pair_without_a_structural_field(name: str) -> None:
    document = _document()
    del document["training_pairs"][2][name]
    message = _blocked_doc(document, "missing_field", f"training_pairs[2].{name}").message
    assert name in message and "missing" in message


@pytest.mark.parametrize(
    ("turn_number", "code"),
    [(True, "wrong_type"), ("1", "wrong_type"), (1.0, "wrong_type"), (0, "out_of_range")],
)
def test_turn_number_must_be_a_positive_integer(turn_number: Any, code: str) -> None:
    document = _document(1)
    document["training_pairs"][0]["turn_number"] = turn_number
    _blocked_doc(document, code, "training_pairs[0].turn_number")


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
        ("consultant_profile.years_experience", "15", "expected an integer"),
    ],
)
def test_wrong_types_block(path: str, value: Any, found: str) -> None:
    document = _document()
    _set(document, path, value)
    assert found in _blocked_doc(document, "wrong_type", path).message


def _set(document: Any, path: str, value: Any) -> None:
    steps: list[str | int] = [
        int(token) if token.isdigit() else token for token in re.findall(r"\w+", path)
    ]
    target = document
    for step in steps[:-1]:
        target = target[step]
    target[steps[-1]] = value


@pytest.mark.parametrize(
    "name", ["fp_conversation_../../x", "fp_conversation_", "fp_conversation_3d4a31a7"]
)
def test_bad_dataset_name_blocks(name: str) -> None:
    document = _document()
    document["dataset_metadata"]["dataset_name"] = name
    path = "dataset_metadata.dataset_name"
    analysis = _blocked(json.dumps(document).encode(), "bad_dataset_name", path)
    assert json.dumps(name) in analysis.report.blockers[0].message
    assert "not a uuid" in analysis.report.blockers[0].message
    assert analysis.conversation_id is None
    assert analysis.dataset_name is None
    with pytest.raises(ValueError):
        conversation_id_from(document)


def test_duplicate_turn_numbers() -> None:
    document = _document()
    document["training_pairs"][2]["turn_number"] = 1
    message = _blocked_doc(document, "duplicate_turn_number", "training_pairs[2].turn_number")
    assert "training_pairs[0]" in message.message


def test_quality_scores_outside_1_to_5_block() -> None:
    document = _document()
    document["training_pairs"][0]["training_metadata"]["quality_score"] = 7
    document["training_pairs"][1]["training_metadata"]["quality_criteria"]["empathy_score"] = 0
    _blocked_doc(document, "out_of_range", "training_pairs[0].training_metadata.quality_score")
    path = "training_pairs[1].training_metadata.quality_criteria.empathy_score"
    _blocked_doc(document, "out_of_range", path)


@pytest.mark.parametrize("escape", ["\\u0000", "\\ud800"])
def test_unstorable_strings_block(escape: str) -> None:
    raw = json.dumps(_document()).replace("question 2", f"question{escape}").encode()
    _blocked(raw, "invalid_unicode", "training_pairs[1].current_user_input")


def test_every_blocker_is_reported() -> None:
    document = _document(4)
    document["dataset_metadata"]["dataset_name"] = "fp_conversation_../../etc"
    del document["training_pairs"][0]["system_prompt"]
    document["training_pairs"][1]["current_user_input"] = ["not", "text"]
    document["training_pairs"][2]["turn_number"] = 2
    document["training_pairs"][3]["target_response"] = {"text": "x"}
    analysis = _analyze(document)
    assert _keys(analysis.report.blockers) == {
        ("missing_field", "training_pairs[0].system_prompt"),
        ("wrong_type", "training_pairs[1].current_user_input"),
        ("duplicate_turn_number", "training_pairs[2].turn_number"),
        ("wrong_type", "training_pairs[3].target_response"),
        ("bad_dataset_name", "dataset_metadata.dataset_name"),
    }
    assert analysis.stats.pair_count == 4


def test_blockers_are_capped() -> None:
    document = _document(1)
    document["training_pairs"] = [
        {"turn_number": i, "current_user_input": "hi"} for i in range(1, 151)
    ]
    blockers = _analyze(document).report.blockers
    assert len(blockers) == MAX_ISSUES + 1
    assert blockers[-1].code == "too_many_issues"
    assert "50 more blockers" in blockers[-1].message


# --------------------------------------------------------------------------- warnings


def test_repeated_drift_is_folded_single_drift_keeps_its_path() -> None:
    document = _document()
    for pair in document["training_pairs"]:
        pair["conversation_metadata"]["conversation_phase"] = "couple_conflict_resolution"
    document["training_pairs"][1]["conversation_metadata"]["persona_archetype"] = "skeptic"
    document["training_pairs"][2]["emotional_context"]["detected_emotions"]["valence"] = "neutral"
    warnings = _analyze(document).report.warnings
    assert _keys(warnings) == {
        PHASE_DRIFT,
        ("enum_drift", "training_pairs[1].conversation_metadata.persona_archetype"),
        ("enum_drift", "training_pairs[2].emotional_context.detected_emotions.valence"),
    }
    assert "in 3 of 3 training pairs" in _issue(warnings, *PHASE_DRIFT).message


def test_different_drift_values_are_separate_warnings() -> None:
    document = _document()
    for index, pair in enumerate(document["training_pairs"]):
        pair["conversation_metadata"]["emotional_arc_key"] = f"arc_{index % 2}"
    folded, single = _analyze(document).report.warnings
    assert folded.path == f"{PAIRS_CM}.emotional_arc_key"
    assert '"arc_0"' in folded.message and "in 2 of 3 training pairs" in folded.message
    assert single.path == "training_pairs[1].conversation_metadata.emotional_arc_key"
    assert '"arc_1"' in single.message and "training pairs" not in single.message


def test_history_repeats_are_counted_per_occurrence_and_pair() -> None:
    document = _document()
    for pair in document["training_pairs"]:
        for turn in pair["conversation_history"]:
            turn["role"] = "client"
    warning = _issue(
        _analyze(document).report.warnings,
        "enum_drift",
        "training_pairs[*].conversation_history[*].role",
    )
    assert "3 times in 2 of 3 training pairs" in warning.message


def test_missing_non_structural_fields_warn() -> None:
    document = _document()
    del document["consultant_profile"]
    del document["training_pairs"][0]["training_metadata"]
    del document["training_pairs"][0]["emotional_context"]
    document["training_pairs"][1]["system_prompt"] = "Be nice."
    document["extra"] = 1
    analysis = _analyze(document)
    assert analysis.report.ok
    assert _keys(analysis.report.warnings) == {
        ("missing_field", "consultant_profile"),
        ("missing_field", "training_pairs[0].training_metadata"),
        ("missing_field", "training_pairs[0].emotional_context"),
        ("too_short", "training_pairs[1].system_prompt"),
        ("unknown_key", "extra"),
    }
    assert analysis.consultant_profile is None
    assert analysis.stats.quality_count == 2
    assert analysis.stats.pair_count == 3


def test_out_of_range_and_inconsistent_values_warn() -> None:
    document = _document()
    document["training_pairs"][0]["emotional_context"]["detected_emotions"]["intensity"] = 1.5
    document["training_pairs"][1]["training_metadata"]["conversation_turn"] = 7
    document["dataset_metadata"]["total_turns"] = 9
    document["dataset_metadata"]["created_date"] = "04/12/2025"
    analysis = _analyze(document)
    assert analysis.report.ok
    assert _keys(analysis.report.warnings) == {
        ("out_of_range", "training_pairs[0].emotional_context.detected_emotions.intensity"),
        ("inconsistent_value", "training_pairs[1].training_metadata.conversation_turn"),
        ("inconsistent_value", "dataset_metadata.total_turns"),
        ("bad_format", "dataset_metadata.created_date"),
    }
    assert analysis.created_date is None
    assert analysis.total_turns == 3


def test_turn_gaps_warn() -> None:
    document = _document()
    document["training_pairs"][2]["turn_number"] = 5
    document["training_pairs"][2]["training_metadata"]["conversation_turn"] = 5
    warning = _issue(_analyze(document).report.warnings, "turn_sequence", "training_pairs")
    assert "[1, 2, 5]" in warning.message


def test_byte_order_mark_and_duplicate_keys_warn() -> None:
    raw = "\ufeff".encode() + json.dumps(_document()).encode()
    raw = raw.replace(b'{"dataset_name"', b'{"notes": "x", "dataset_name"', 1)
    analysis = analyze(raw)
    assert analysis.report.ok
    assert _keys(analysis.report.warnings) == {("byte_order_mark", "$"), ("duplicate_key", "$")}
    assert analysis.title == "Mortgage Clarity"


# --------------------------------------------------------------------------- conversation id


def _without_dataset_name() -> dict[str, Any]:
    document = _document()
    del document["dataset_metadata"]["dataset_name"]
    return document


def test_derived_id_ignores_whitespace_and_key_order() -> None:
    document = _without_dataset_name()
    compact = analyze(json.dumps(document, separators=(",", ":")).encode())
    pretty = analyze(json.dumps(document, indent=4, sort_keys=True).encode())
    assert compact.report.ok
    assert compact.conversation_id is not None
    assert compact.conversation_id == pretty.conversation_id == derive_conversation_id(document)
    assert compact.conversation_id == conversation_id_from(document)
    assert compact.sha256 != pretty.sha256
    assert compact.dataset_name is None
    assert _keys(compact.report.warnings) == {
        ("missing_field", "dataset_metadata.dataset_name"),
        ("derived_conversation_id", "dataset_metadata.dataset_name"),
    }


def test_derived_id_changes_with_content() -> None:
    document = _without_dataset_name()
    changed = copy.deepcopy(document)
    changed["training_pairs"][1]["target_response"] = "a different answer"
    first, second = _analyze(document), _analyze(changed)
    assert first.conversation_id != second.conversation_id


def test_other_dataset_names_derive_the_id() -> None:
    document = _document()
    document["dataset_metadata"]["dataset_name"] = "my dataset"
    analysis = _analyze(document)
    assert analysis.report.ok
    assert analysis.conversation_id == derive_conversation_id(document)
    assert analysis.dataset_name is None
    assert _keys(analysis.report.warnings) == {
        ("bad_dataset_name", "dataset_metadata.dataset_name"),
        ("derived_conversation_id", "dataset_metadata.dataset_name"),
    }


def test_upper_case_uuid_is_canonicalised() -> None:
    document = _document()
    document["dataset_metadata"]["dataset_name"] = f"fp_conversation_{CONVERSATION_ID.upper()}"
    analysis = _analyze(document)
    assert analysis.report.ok
    assert analysis.conversation_id == UUID(CONVERSATION_ID)
    assert analysis.dataset_name == f"fp_conversation_{CONVERSATION_ID}"
    assert _keys(analysis.report.warnings) == {
        ("non_canonical_dataset_name", "dataset_metadata.dataset_name")
    }


# --------------------------------------------------------------------------- scaffolding, quality


def test_scaffolding_prefers_input_parameters_field_by_field() -> None:
    document = _document()
    document["input_parameters"] = {
        "persona_key": "anxious_planner",
        "persona_name": "",
        "emotional_arc_key": "couple_conflict_to_alignment",
        "training_topic_name": "Eldercare",
    }
    analysis = _analyze(document)
    scaffolding = analysis.scaffolding
    assert scaffolding.persona_key == "anxious_planner"
    assert scaffolding.persona_name == "David Chen"
    assert scaffolding.emotional_arc_key == "couple_conflict_to_alignment"
    assert scaffolding.emotional_arc_name == "Confusion → Clarity"
    assert scaffolding.training_topic_key == "mortgage_payoff_strategy"
    assert scaffolding.training_topic_name == "Eldercare"
    assert _keys(analysis.report.warnings) == {INPUT_PARAMETERS}


def test_empty_strings_are_absent_and_title_falls_back() -> None:
    document = _document()
    del document["dataset_metadata"]["notes"]
    for pair in document["training_pairs"]:
        pair["conversation_metadata"]["training_topic"] = ""
    analysis = _analyze(document)
    assert analysis.scaffolding.training_topic_name is None
    assert analysis.title == "David Chen"
    pair = document["training_pairs"][0]
    pair["conversation_metadata"]["training_topic"] = "Mortgage Payoff"
    assert _analyze(document).title == "David Chen - Mortgage Payoff"


def test_input_parameters_of_the_wrong_type_are_ignored() -> None:
    document = _document()
    document["input_parameters"] = "anxious_planner"
    analysis = _analyze(document)
    assert analysis.report.ok
    assert _keys(analysis.report.warnings) == {("wrong_type", "input_parameters")}
    assert analysis.scaffolding.persona_key == "pragmatic_optimist"


def _with_scores(*scores: float | None) -> ConversationAnalysis:
    document = _document(len(scores))
    for pair, score in zip(document["training_pairs"], scores, strict=True):
        if score is None:
            del pair["training_metadata"]["quality_score"]
        else:
            pair["training_metadata"]["quality_score"] = score
    return _analyze(document)


def test_quality_is_exact_and_rounded_half_up() -> None:
    analysis = _with_scores(4.1, 4.2, 4.2, None)
    stats = analysis.stats
    assert (stats.quality_sum, stats.quality_count) == (Decimal("12.5"), 3)
    assert (stats.quality_min, stats.quality_max) == (Decimal("4.1"), Decimal("4.2"))
    assert analysis.quality_score == Decimal("4.17")
    assert _with_scores(2.345).quality_score == Decimal("2.35")
    assert _with_scores(1.005).quality_score == Decimal("1.01")


def test_no_quality_values() -> None:
    analysis = _with_scores(None, None)
    assert analysis.stats.quality_count == 0
    assert analysis.stats.quality_sum == Decimal(0)
    assert analysis.stats.quality_min is None
    assert (analysis.quality_score, analysis.tier) == (None, "experimental")


@pytest.mark.parametrize(
    ("score", "tier"),
    [
        ("5", "seed_dataset"),
        ("4.50", "seed_dataset"),
        ("4.49", "production"),
        ("3.50", "production"),
        ("3.49", "experimental"),
        ("2.50", "experimental"),
        ("2.49", "rejected"),
        ("1", "rejected"),
    ],
)
def test_tiers(score: str, tier: str) -> None:
    assert tier_for(Decimal(score)) == tier
    assert tier_for(None) == "experimental"


def test_tier_follows_the_conversation_quality() -> None:
    assert _with_scores(4.5, 4.5).tier == "seed_dataset"
    assert _with_scores(2, 3).tier == "experimental"
    assert _with_scores(2, 2.9).tier == "rejected"
