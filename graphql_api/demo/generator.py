"""Deterministic demo conversations: one `fp_conversation_<uuid>.json` document per index.

Real-data drift is reproduced in proportions fixed by the file's index, so that any 100
consecutive indices contain exactly:

* 60 files with a top-level `input_parameters` object and the v4 scaffolding keys per pair;
* 15 files with the v4 keys but without `input_parameters`;
* 25 "older" files without `input_parameters` whose pairs lack the v4 keys (about half of
  them carry the `[object Object]` background of the old pipeline);
* 5 files with one extra, unknown key in `dataset_metadata`, `conversation_metadata` or
  `training_metadata`;
* out-of-enum values: the arc outside the v4 enum (about 15% of files, chosen by the random
  generator) with one out-of-enum phase for every pair; some files keep one phase throughout,
  and some overwhelm files open with a phase outside the enum.

Quality: per 100 files, 8 low (1.0-2.4), 10 borderline (2.5-2.9), 60 typical (3.0-4.4),
16 high (4.5-4.9) and 6 perfect (5); 20 files have most of their pairs human-reviewed.

Everything derives from the `random.Random` passed in (or from fixed keys), never from the
clock, `uuid4` or set ordering, so a seed always gives byte-identical files.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from ..conversations.statistics import mean_score
from ..conversations.strings import OBJECT_ARTIFACT
from ..domain.enums import QualityTier
from ..domain.limits import DATASET_NAME_PREFIX, VERTICAL
from ..domain.vocabulary import CONSULTANT_PROFILE, CONVERSATION_SCHEMA, VOCABULARY, PhaseStage
from .banks import ANNOTATIONS, ARCS, CLIENT, CONSULTANT, PERSONAS, TOPICS, ArcBank, ExtraKey
from .dialogue import Cast
from .facts import draw_facts
from .pairs import PairPlan, compose_turns, training_pairs

__all__ = ["generate_conversation", "write_demo_set"]

_TARGET_USE: Final = CONVERSATION_SCHEMA["properties"]["dataset_metadata"]["properties"][
    "target_use"
]["const"]
_V4_ARCS: Final = tuple(a for a in ARCS if a.arc.in_v4)
# Real files drift to one arc outside the v4 enum.
_OFF_ENUM_ARC: Final = next(a for a in ARCS if not a.arc.in_v4)
_TURN_COUNTS: Final = (4, 5, 6, 6, 6, 7, 7, 8, 8, 8, 9, 9, 10, 10, 11, 12)
_FIRST_DAY: Final = dt.date(2025, 1, 1)


@dataclass(frozen=True)
class _Drift:
    """What a file's index fixes: the real-data drift it reproduces, and human review."""

    older: bool
    with_input_parameters: bool
    extra_key: ExtraKey | None
    reviewed: bool


def _drift(index: int) -> _Drift:
    bucket = (index * 37 + 11) % 100
    extra_keys = ANNOTATIONS.extra_keys
    extra = (index * 29 + 5) % 20 == 0
    return _Drift(
        older=bucket < 25,
        with_input_parameters=25 <= bucket < 85,
        extra_key=extra_keys[(index // 20) % len(extra_keys)] if extra else None,
        reviewed=(index * 71 + 3) % 10 < 2,
    )


def _cast(rng: random.Random) -> Cast:
    persona = rng.choice(PERSONAS)
    arc = _OFF_ENUM_ARC if rng.random() < 0.15 else rng.choice(_V4_ARCS)
    topic = rng.choice(TOPICS)
    facts = draw_facts(rng)
    facts["partner"] = rng.choice(CLIENT.partners)
    return Cast(rng, persona, arc, topic, facts)


def _phases(rng: random.Random, arc: ArcBank, n_turns: int) -> list[str]:
    """Progressing through the v4 phases (most files), one phase throughout (some, as in real
    data), or phases outside the enum."""
    mode = rng.random()
    if arc.constant_phases:
        return [rng.choice(arc.constant_phases)] * n_turns
    if mode < 0.15:
        return [arc.arc.opening_phase] * n_turns
    opening = arc.arc.opening_phase
    if arc.drift_opening_phase and mode > 0.7:
        opening = arc.drift_opening_phase
    n_user = (n_turns + 1) // 2
    return [_phase(opening, (turn - 1) // 2, n_user) for turn in range(1, n_turns + 1)]


def _phase(opening: str, u: int, n_user: int) -> str:
    if u == 0:
        return opening
    if u == n_user - 1:
        stage = PhaseStage.CLOSING
    else:
        stage = PhaseStage.EXPLORING if u / (n_user - 1) < 0.5 else PhaseStage.IMPLEMENTING
    return VOCABULARY.phase_of_stage(stage).key


def _quality_base(rng: random.Random, index: int) -> tuple[float, bool]:
    """Base score for the conversation and whether every pair gets the same integer score."""
    bucket = (index * 53 + 29) % 100
    if bucket < 8:
        return rng.choice((1.0, 1.4, 1.8, 2.0, 2.2, 2.4)), False
    if bucket < 14:
        return 5.0, True
    if bucket < 30:
        return rng.choice((4.5, 4.6, 4.7, 4.8, 4.9)), False
    if bucket < 40:
        return rng.choice((2.5, 2.7, 2.9)), False
    base = rng.choice((3.0, 3.0, 3.0, 3.2, 3.4, 3.5, 3.6, 3.8, 4.0, 4.0, 4.2, 4.4))
    return base, base in (3.0, 4.0) and rng.random() < 0.6


def _client(c: Cast, older: bool) -> tuple[dict[str, str], str]:
    """(client_persona, client_background, session_context; expected_outcome)."""
    rng, p = c.rng, c.persona
    age = rng.randint(*p.ages)
    if older and rng.random() < 0.5:
        background = f"{OBJECT_ARTIFACT}; {p.profile}"
    else:
        where, household = rng.choice(p.settings), rng.choice(p.households)
        background = f"Age {age}, {p.gender}, {where}, {household}; {p.profile}"
    phrase = c.topic.phrase
    session = rng.choice(c.arc.session).format_map(
        {"first": p.first_name, "phrase": phrase, **c.facts}
    )
    client = {
        "client_persona": f"{p.persona.name} - {p.persona.archetype}",
        "client_background": background,
        "session_context": session,
    }
    return client, rng.choice(c.arc.outcome).format_map({"phrase": phrase})


def _skills(c: Cast, older: bool) -> tuple[list[str], str]:
    """(demonstrates_skills, key_learning_objective); older files name personas and topics."""
    rng = c.rng
    if older:
        skills = rng.sample([p.persona.key for p in PERSONAS], rng.randint(2, 3))
        return skills, rng.choice(TOPICS).topic.key
    return sorted(rng.sample(ANNOTATIONS.skills, rng.randint(3, 5))), c.topic.topic.key


def _v4_keys(c: Cast) -> dict[str, str]:
    return {
        "persona_archetype": c.persona.persona.key,
        "emotional_arc": c.arc.arc.name,
        "emotional_arc_key": c.arc.arc.key,
        "training_topic": c.topic.topic.name,
        "training_topic_key": c.topic.topic.key,
    }


def _pair_plan(c: Cast, index: int, drift: _Drift, n_turns: int) -> PairPlan:
    rng = c.rng
    system_prompt = rng.choice(CONSULTANT.system_prompts)
    phases = _phases(rng, c.arc, n_turns)
    client, expected_outcome = _client(c, drift.older)
    base, constant_score = _quality_base(rng, index)
    skills, objective = _skills(c, drift.older)
    review_share = rng.uniform(0.7, 1.0) if drift.reviewed else 0.0
    seed_example = base >= 4.5
    variations = rng.choice((3, 5, 8, 10)) if seed_example else 0
    return PairPlan(
        system_prompt=system_prompt,
        phases=phases,
        client=client,
        expected_outcome=expected_outcome,
        v4_keys={} if drift.older else _v4_keys(c),
        base_score=base,
        constant_score=constant_score,
        skills=skills,
        objective=objective,
        reviewed=drift.reviewed,
        review_share=review_share,
        seed_example=seed_example,
        variations=variations,
        extra_key=drift.extra_key,
        revision=str(rng.randrange(100, 999)),
    )


def _quality_tier(pairs: list[dict[str, Any]]) -> str:
    """The tier the import will give the conversation."""
    scores = [Decimal(str(p["training_metadata"]["quality_score"])) for p in pairs]
    return QualityTier.for_score(mean_score(scores)).value


def _dataset_metadata(
    c: Cast, conversation_id: uuid.UUID, created: dt.date, pairs: list[dict[str, Any]]
) -> dict[str, Any]:
    sources, weights = zip(*ANNOTATIONS.conversation_sources, strict=True)
    return {
        "dataset_name": f"{DATASET_NAME_PREFIX}{conversation_id}",
        "version": "1.0.0",
        "created_date": created.isoformat(),
        "vertical": VERTICAL,
        "consultant_persona": f"{CONSULTANT.name} - {CONSULTANT.business}",
        "target_use": _TARGET_USE,
        "conversation_source": c.rng.choices(sources, weights=weights)[0],
        "quality_tier": _quality_tier(pairs),
        "total_conversations": 1,
        "total_turns": len(pairs),
        "notes": f"Generated via template: Template - {c.arc.arc.name} - {c.topic.topic.name}",
    }


def _scaffold_id(kind: str, key: str) -> str:
    """Stable id for a persona / arc / topic row, the same for every seed."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://demo.invalid/{kind}/{key}"))


def _input_parameters(c: Cast) -> dict[str, str]:
    persona, arc, topic = c.persona.persona, c.arc.arc, c.topic.topic
    return {
        "persona_id": _scaffold_id("persona", persona.key),
        "persona_key": persona.key,
        "persona_name": persona.name,
        "emotional_arc_id": _scaffold_id("emotional_arc", arc.key),
        "emotional_arc_key": arc.key,
        "emotional_arc_name": arc.name,
        "training_topic_id": _scaffold_id("training_topic", topic.key),
        "training_topic_key": topic.key,
        "training_topic_name": topic.name,
    }


def generate_conversation(rng: random.Random, index: int) -> dict[str, Any]:
    """Compose one enriched conversation; the result depends only on `rng`'s state and
    `index` (`index` fixes the drift / quality / review category, see the module doc)."""
    drift = _drift(index)
    cast = _cast(rng)
    conversation_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    created = _FIRST_DAY + dt.timedelta(days=rng.randrange(365))
    n_turns = rng.choice(_TURN_COUNTS)
    plan = _pair_plan(cast, index, drift, n_turns)
    pairs = training_pairs(cast, plan, compose_turns(cast, n_turns))
    metadata = _dataset_metadata(cast, conversation_id, created, pairs)
    document: dict[str, Any] = {
        "dataset_metadata": {**metadata, **plan.extra("dataset_metadata")},
        "consultant_profile": copy.deepcopy(CONSULTANT_PROFILE),
        "training_pairs": pairs,
    }
    if drift.with_input_parameters:
        document["input_parameters"] = _input_parameters(cast)
    return document


def write_demo_set(out_dir: Path, count: int, seed: int) -> list[Path]:
    """Write `count` synthetic enriched conversations to `out_dir` (created if needed) as
    `fp_conversation_<uuid>.json` and return their paths in generation order. The same seed
    always produces byte-identical files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths: list[Path] = []
    for index in range(count):
        # One child generator per file: a file's content doesn't depend on text lengths of
        # the files before it, only on the seed and its index.
        child = random.Random(rng.getrandbits(64))
        document = generate_conversation(child, index)
        path = out_dir / f"{document['dataset_metadata']['dataset_name']}.json"
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")
        paths.append(path)
    return paths
