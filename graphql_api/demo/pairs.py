"""The training pairs of a demo conversation, shaped like the upstream pipeline's.

A conversation alternates client turns (odd `turn_number`, `target_response` null) and
consultant turns (even, same `current_user_input` as the client turn before, with a
`target_response`). `conversation_history` of turn n holds turns 1..n-1 with their content
and emotional state; the system prompt is repeated in every pair.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Final

from .banks import ANNOTATIONS, ExtraKey
from .dialogue import Cast, coach_message, stage_index, user_message

__all__ = ["PairPlan", "Turn", "compose_turns", "training_pairs"]

_CRITERIA: Final = (
    "empathy_score",
    "clarity_score",
    "appropriateness_score",
    "brand_voice_alignment",
)


@dataclass(frozen=True)
class Turn:
    role: str  # user | assistant
    content: str
    primary: str
    secondary: str
    intensity: float
    valence: str
    primary_confidence: float
    secondary_confidence: float


def _clip(value: float, lo: float = 1.0, hi: float = 5.0) -> float:
    return max(lo, min(hi, value))


def _one_decimal(value: float) -> float | int:
    """One decimal; whole numbers as int (like the JavaScript-produced real files)."""
    r = round(value, 1)
    return int(r) if r == int(r) else r


def _user_turn(c: Cast, u: int, n_user: int) -> tuple[str, tuple[str, str], float, str]:
    content = user_message(c, u, n_user)
    emotions = c.arc.user_emotions[stage_index(u, n_user, len(c.arc.user_emotions))]
    settling = 0.35 * u / max(1, n_user - 1)
    intensity = _clip(0.85 - settling + c.rng.uniform(-0.06, 0.06), 0, 1)
    if u == n_user - 1 and n_user > 1:
        valence = "positive"
    elif u == 0:
        valence = c.rng.choice(("negative", "negative", "mixed"))
    else:
        valence = c.rng.choice(("mixed", "positive", "negative"))
    return content, emotions, intensity, valence


def _coach_turn(c: Cast, u: int, n_user: int) -> tuple[str, tuple[str, str], float, str]:
    content = coach_message(c, u, n_user)
    emotions = c.arc.coach_emotions[stage_index(u, n_user, len(c.arc.coach_emotions))]
    intensity = _clip(0.6 + c.rng.uniform(-0.12, 0.2), 0, 1)
    return content, emotions, intensity, c.rng.choice(("mixed", "mixed", "positive"))


def compose_turns(c: Cast, n_turns: int) -> list[Turn]:
    n_user = (n_turns + 1) // 2
    turns = []
    for turn in range(1, n_turns + 1):
        user = turn % 2 == 1
        compose = _user_turn if user else _coach_turn
        content, (primary, secondary), intensity, valence = compose(c, (turn - 1) // 2, n_user)
        turns.append(
            Turn(
                role="user" if user else "assistant",
                content=content,
                primary=primary,
                secondary=secondary,
                intensity=round(intensity, 2),
                valence=valence,
                primary_confidence=round(c.rng.uniform(0.7, 0.95), 2),
                secondary_confidence=round(c.rng.uniform(0.55, 0.8), 2),
            )
        )
    return turns


@dataclass(frozen=True)
class PairPlan:
    """Everything of the pairs that is the same for the whole conversation."""

    system_prompt: str
    phases: list[str]
    client: dict[str, str]  # client_persona, client_background, session_context
    expected_outcome: str
    v4_keys: dict[str, str]  # empty in older files
    base_score: float
    constant_score: bool
    skills: list[str]
    objective: str
    reviewed: bool
    review_share: float
    seed_example: bool
    variations: int
    extra_key: ExtraKey | None
    revision: str

    def extra(self, container: str) -> dict[str, str]:
        if self.extra_key is None or self.extra_key.container != container:
            return {}
        return {self.extra_key.key: self.extra_key.value.format(rev=self.revision)}


def _score(rng: random.Random, plan: PairPlan) -> float | int:
    if plan.constant_score:
        return _one_decimal(plan.base_score)
    return _one_decimal(_clip(plan.base_score + rng.choice((-0.2, -0.1, 0.0, 0.0, 0.1, 0.2))))


def _training_metadata(c: Cast, plan: PairPlan, turn: int) -> dict[str, Any]:
    rng, arc = c.rng, c.arc.arc
    score = _score(rng, plan)
    criteria = {name: _one_decimal(_clip(score + rng.uniform(-0.3, 0.3))) for name in _CRITERIA}
    reviewed = plan.reviewed and rng.random() < plan.review_share
    return {
        "difficulty_level": f"{arc.difficulty}_conversation_turn_{turn}",
        "key_learning_objective": plan.objective,
        "demonstrates_skills": list(plan.skills),
        "conversation_turn": turn,
        "emotional_progression_target": f"{arc.start_emotion}(0.8) → {arc.end_emotion}(0.8)",
        "quality_score": score,
        "quality_criteria": criteria,
        "human_reviewed": reviewed,
        "reviewer_notes": rng.choice(ANNOTATIONS.reviewer_notes) if reviewed else None,
        "use_as_seed_example": plan.seed_example,
        "generate_variations_count": plan.variations,
        **plan.extra("training_metadata"),
    }


def _detected(t: Turn) -> dict[str, Any]:
    return {
        "primary": t.primary,
        "primary_confidence": t.primary_confidence,
        "secondary": t.secondary,
        "secondary_confidence": t.secondary_confidence,
        "intensity": t.intensity,
        "valence": t.valence,
    }


def _history_item(turn: int, t: Turn) -> dict[str, Any]:
    state = {"primary": t.primary, "secondary": t.secondary, "intensity": t.intensity}
    return {"turn": turn, "role": t.role, "content": t.content, "emotional_state": state}


def _conversation_metadata(plan: PairPlan, turn: int) -> dict[str, Any]:
    return {
        **plan.client,
        "conversation_phase": plan.phases[turn - 1],
        "expected_outcome": plan.expected_outcome,
        **plan.v4_keys,
        **plan.extra("conversation_metadata"),
    }


def training_pairs(c: Cast, plan: PairPlan, turns: list[Turn]) -> list[dict[str, Any]]:
    prefix = c.arc.arc.pair_id_prefix
    history = [_history_item(turn, t) for turn, t in enumerate(turns, start=1)]
    pairs: list[dict[str, Any]] = []
    user_input = ""
    for turn, t in enumerate(turns, start=1):
        if t.role == "user":
            user_input = t.content
        training_metadata = _training_metadata(c, plan, turn)
        pairs.append(
            {
                "id": f"{prefix}_turn{turn}",
                "conversation_id": prefix,
                "turn_number": turn,
                "conversation_metadata": _conversation_metadata(plan, turn),
                "system_prompt": plan.system_prompt,
                "conversation_history": history[: turn - 1],
                "current_user_input": user_input,
                "emotional_context": {"detected_emotions": _detected(t)},
                "target_response": t.content if t.role == "assistant" else None,
                "training_metadata": training_metadata,
            }
        )
    return pairs
