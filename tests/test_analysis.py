"""graphql_api.conversations.analysis: the seven real files end to end, and a valid document."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import jsonschema
import pytest

from graphql_api.conversations.analysis import analyze
from graphql_api.domain.enums import QualityTier

from .conversation_documents import (
    CONVERSATION_ID,
    PAIRS_CM,
    analyzed,
    blocked,
    document,
    example,
    keys,
    upstream_schema,
)

OLD_FILE = {
    ("missing_optional_v4_key", f"{PAIRS_CM}.{k}")
    for k in (
        "persona_archetype",
        "emotional_arc",
        "emotional_arc_key",
        "training_topic",
        "training_topic_key",
    )
} | {
    ("derived_persona_key", "training_pairs[0].conversation_metadata.client_persona"),
    ("serialization_artifact", f"{PAIRS_CM}.client_background"),
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
# Findings that are not schema violations: the schema cannot see them.
OUR_OWN_CODES = {"derived_persona_key", "serialization_artifact"}


@pytest.mark.parametrize("name", sorted(EXPECTED_WARNINGS))
def test_real_file_is_accepted_with_its_known_warnings(name: str) -> None:
    raw, _ = example(name)
    report = analyze(raw).report
    assert report.ok, report.blockers
    assert keys(report.warnings) == EXPECTED_WARNINGS[name]
    assert json.loads(json.dumps(report.to_json()))["valid"] is True


@pytest.mark.parametrize("name", sorted(EXPECTED_WARNINGS))
def test_real_file_schema_warnings_are_what_jsonschema_finds(name: str) -> None:
    # jsonschema is an independent implementation of the same schema file.
    raw, doc = example(name)
    validator = jsonschema.Draft202012Validator(upstream_schema())
    expected = {_schema_error_path(error) for error in validator.iter_errors(doc)}
    ours = {w.path for w in analyze(raw).report.warnings if w.code not in OUR_OWN_CODES}
    assert ours == expected


def _schema_error_path(error: Any) -> str:
    path = "".join("[*]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    named = re.search(r"'(\w+)' (?:is a required property|was unexpected)", error.message)
    if named:
        path += f".{named.group(1)}"
    return path.lstrip(".")


@pytest.mark.parametrize("name", sorted(EXPECTED_WARNINGS))
def test_real_file_identity_and_stats(name: str) -> None:
    raw, doc = example(name)
    analysis = analyze(raw)
    dataset_name = doc["dataset_metadata"]["dataset_name"]
    pairs = doc["training_pairs"]
    # Every real pair is scored (3 each), so no fallback is involved here.
    scores = [Decimal(str(p["training_metadata"]["quality_score"])) for p in pairs]

    assert analysis.conversation_id == UUID(dataset_name.removeprefix("fp_conversation_"))
    assert analysis.dataset_name == dataset_name
    assert analysis.sha256 == hashlib.sha256(raw).hexdigest()
    assert analysis.created_date == date.fromisoformat(doc["dataset_metadata"]["created_date"])
    assert analysis.total_turns == len(pairs)
    assert analysis.consultant_profile == doc["consultant_profile"]
    assert list(analysis.consultant_profile or {}) == list(doc["consultant_profile"])
    assert analysis.stats.pair_count == len(pairs)
    assert analysis.stats.trainable_pair_count == sum(
        p["target_response"] is not None for p in pairs
    )
    assert analysis.stats.quality_sum == sum(scores)
    assert (analysis.stats.quality_min, analysis.stats.quality_max) == (3, 3)
    assert analysis.stats.quality_count == len(pairs)
    assert analysis.stats.human_reviewed_count == 0
    assert analysis.quality_score == Decimal("3.00")
    assert analysis.tier is QualityTier.EXPERIMENTAL


def test_old_real_files_get_their_persona_from_client_persona() -> None:
    expected = {
        "david-chen-scenario-enriched.json": ("pragmatic_optimist", "David Chen"),
        "jennifer-complex-scenario-enriched.json": ("anxious_planner", "Jennifer Martinez"),
        "marcus-complex-scenario-enriched.json": ("overwhelmed_avoider", "Marcus Chen"),
    }
    for name, (key, persona_name) in expected.items():
        scaffolding = analyze(example(name)[0]).scaffolding
        assert (scaffolding.persona_key, scaffolding.persona_name) == (key, persona_name)
        assert scaffolding.emotional_arc_key is None and scaffolding.training_topic_key is None


def test_valid_document_has_no_issues() -> None:
    assert analyzed(document()).report.to_json() == {
        "valid": True,
        "blockers": [],
        "warnings": [],
        "schema": "brightrun-individual-v4",
    }


def test_valid_document_is_valid_for_jsonschema_too() -> None:
    jsonschema.validate(document(), upstream_schema())


def test_valid_document_summary() -> None:
    analysis = analyzed(document())
    assert analysis.conversation_id == UUID(CONVERSATION_ID)
    assert analysis.title == "Mortgage Clarity"
    assert analysis.created_date == date(2025, 12, 4)
    assert analysis.total_turns == 3
    assert analysis.stats.pair_count == 3
    assert analysis.stats.trainable_pair_count == 2
    assert analysis.stats.human_reviewed_count == 1
    assert analysis.stats.quality_sum == Decimal(12)
    assert (analysis.quality_score, analysis.tier) == (Decimal("4.00"), "production")
    assert analysis.empathy_score == Decimal("4.00")
    assert analysis.clarity_score == Decimal("4.50")
    assert analysis.appropriateness_score == Decimal("3.00")
    assert analysis.brand_voice_alignment == Decimal("5.00")
    assert analysis.scaffolding.persona_key == "pragmatic_optimist"
    assert analysis.scaffolding.emotional_arc_name == "Confusion → Clarity"


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"42", b"null"])
def test_top_level_must_be_an_object(raw: bytes) -> None:
    analysis = blocked(raw, "not_object")
    assert analysis.conversation_id is None
    assert analysis.stats.pair_count == 0
    assert analysis.tier is QualityTier.EXPERIMENTAL


def test_an_unreadable_file_still_has_its_digest() -> None:
    raw = b'{"training_pairs": ['
    analysis = blocked(raw, "not_json")
    assert analysis.sha256 == hashlib.sha256(raw).hexdigest()
    assert (analysis.conversation_id, analysis.title, analysis.quality_score) == (None, None, None)
