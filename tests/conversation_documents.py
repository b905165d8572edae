"""A small valid v4 conversation document to break in tests, and helpers to read reports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from graphql_api.conversations.analysis import ConversationAnalysis, analyze
from graphql_api.conversations.issues import Issue

from .conftest import EXAMPLES_DIR, SHARED_DIR

CONVERSATION_ID = "3d4a31a7-9220-487a-9a27-50615968c3da"
PAIRS_CM = "training_pairs[*].conversation_metadata"


def pair(turn: int) -> dict[str, Any]:
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


def document(pair_count: int = 3) -> dict[str, Any]:
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
        "training_pairs": [pair(turn) for turn in range(1, pair_count + 1)],
    }


def with_scores(*scores: float | None) -> dict[str, Any]:
    """A document whose pairs have these quality scores (None: the key is absent)."""
    doc = document(len(scores))
    for item, score in zip(doc["training_pairs"], scores, strict=True):
        if score is None:
            del item["training_metadata"]["quality_score"]
        else:
            item["training_metadata"]["quality_score"] = score
    return doc


def analyzed(doc: Any) -> ConversationAnalysis:
    return analyze(json.dumps(doc, ensure_ascii=False).encode())


def keys(issues: tuple[Issue, ...]) -> set[tuple[str, str]]:
    return {(issue.code, issue.path) for issue in issues}


def only_issue(issues: tuple[Issue, ...], code: str, path: str) -> Issue:
    found = [issue for issue in issues if (issue.code, issue.path) == (code, path)]
    assert len(found) == 1, (code, path, issues)
    return found[0]


def blocked(raw: bytes, code: str, path: str = "$") -> ConversationAnalysis:
    analysis = analyze(raw)
    assert not analysis.report.ok
    assert (code, path) in keys(analysis.report.blockers), analysis.report.blockers
    assert analysis.report.to_json()["valid"] is False
    return analysis


def blocked_doc(doc: Any, code: str, path: str) -> Issue:
    return only_issue(blocked(json.dumps(doc).encode(), code, path).report.blockers, code, path)


def set_path(doc: Any, path: str, value: Any) -> None:
    """Set `a.b[1].c` in a document."""
    steps: list[str | int] = [
        int(token) if token.isdigit() else token for token in re.findall(r"\w+", path)
    ]
    target = doc
    for step in steps[:-1]:
        target = target[step]
    target[steps[-1]] = value


def require_shared() -> Path:
    if not SHARED_DIR.is_dir():
        pytest.skip(f"reference data not found: {SHARED_DIR} (the shared brightrun-v4 folder)")
    return SHARED_DIR


def upstream_schema() -> dict[str, Any]:
    """The original system's schema from ../shared (not our packaged copy)."""
    text = (require_shared() / "individual-conversation.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def example(name: str) -> tuple[bytes, dict[str, Any]]:
    require_shared()
    raw = (EXAMPLES_DIR / name).read_bytes()
    return raw, json.loads(raw)
