"""The words of a demo conversation: client messages and consultant replies, composed from the
sentence banks in three stages (opening, middle, closing)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .banks import CLIENT, CONSULTANT, ArcBank, PersonaBank, TopicBank

__all__ = ["Cast", "coach_message", "stage_index", "user_message"]


@dataclass(frozen=True)
class Cast:
    """Who and what one conversation is about, with its numbers and its generator."""

    rng: random.Random
    persona: PersonaBank
    arc: ArcBank
    topic: TopicBank
    facts: dict[str, str]

    def fill(self, template: str) -> str:
        return template.format_map(self.facts)

    def pick(self, pool: tuple[str, ...], k: int) -> list[str]:
        return self.rng.sample(pool, min(k, len(pool)))

    def filled(self, pool: tuple[str, ...], k: int) -> str:
        return " ".join(self.fill(s) for s in self.pick(pool, k))


def _lower_first(text: str) -> str:
    if text.startswith(("I ", "I'")):
        return text
    return text[:1].lower() + text[1:]


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _stage(u: int, n_user: int) -> int:
    """0 for the first exchange, 2 for the last, 1 between."""
    return 0 if u == 0 else (2 if u == n_user - 1 else 1)


def stage_index(u: int, n_user: int, size: int) -> int:
    """Exchange `u` of `n_user` mapped onto a progression of `size` steps."""
    if n_user <= 1:
        return 0
    return min(size - 1, round(u * (size - 1) / (n_user - 1)))


# --------------------------------------------------------------------------- the client


def user_message(c: Cast, u: int, n_user: int) -> str:
    """The client's message of exchange `u` (0-based) of `n_user`."""
    compose = (_user_opening, _user_middle, _user_closing)[_stage(u, n_user)]
    return " ".join(compose(c))


def _user_opening(c: Cast) -> list[str]:
    rng, p, a, t = c.rng, c.persona, c.arc, c.topic
    parts = [rng.choice(p.openers)]
    parts.extend(c.fill(s) for s in c.pick(t.situation, rng.randint(2, 3)))
    parts.append(rng.choice(p.traits))
    parts.extend(c.fill(s) for s in c.pick(a.feelings_start, rng.randint(1, 2)))
    if a.couple:
        parts.append(c.fill(CLIENT.couple_note))
    parts.append(rng.choice(t.questions))
    if rng.random() < 0.5:
        parts.append(rng.choice(t.questions))
    return parts


def _user_middle(c: Cast) -> list[str]:
    rng, p, a, t = c.rng, c.persona, c.arc, c.topic
    parts = [rng.choice(CLIENT.acknowledgements), c.fill(rng.choice(a.feelings_mid))]
    parts.extend(c.fill(s) for s in c.pick(t.followups, rng.randint(2, 3)))
    parts.append(rng.choice(p.traits))
    if rng.random() < 0.6:
        parts.append("If I'm following you, " + _lower_first(c.fill(rng.choice(t.steps)[1])))
    parts.append(rng.choice(p.residual))
    parts.append(rng.choice(t.questions))
    return parts


def _user_closing(c: Cast) -> list[str]:
    rng = c.rng
    parts = [rng.choice(CLIENT.closings), c.fill(rng.choice(c.arc.feelings_end))]
    commits = c.pick(c.topic.commitments, 2)
    parts.append(f"So my plan is to {commits[0]}, and then {commits[1]}.")
    parts.append(rng.choice(c.persona.residual))
    parts.append(rng.choice(CLIENT.final_questions))
    return parts


# --------------------------------------------------------------------------- the consultant


def coach_message(c: Cast, u: int, n_user: int) -> str:
    """The consultant's reply in exchange `u` (0-based) of `n_user`."""
    compose = (_coach_opening, _coach_middle, _coach_closing)[_stage(u, n_user)]
    return "\n\n".join(compose(c))


def _steps_block(c: Cast, k: int) -> str:
    steps = c.topic.steps
    chosen = sorted(c.rng.sample(range(len(steps)), min(k, len(steps))))
    return "\n\n".join(
        f"**Step {i} - {steps[idx][0]}:** {c.fill(steps[idx][1])}"
        for i, idx in enumerate(chosen, start=1)
    )


def _coach_opening(c: Cast) -> list[str]:
    rng, t, first = c.rng, c.topic, c.persona.first_name
    validation = _lower_first(rng.choice(c.arc.validation))
    paras = [f"{first}, {validation} {rng.choice(CONSULTANT.normalize)}"]
    worries = c.pick(t.worry, 2)
    paras.append(
        f"{rng.choice(CONSULTANT.reflect)} part of you is worried about {worries[0]}, and part "
        f"of you is worried about {worries[1]}. Both of those concerns are legitimate. I also "
        f"think {rng.choice(c.persona.insight)}."
    )
    if c.arc.couple:
        paras.append(c.fill(CONSULTANT.couple_note))
    paras.append(c.filled(t.concepts, rng.randint(1, 2)))
    if rng.random() < 0.6:
        paras.append(rng.choice(CONSULTANT.metaphors))
    paras.append(f"{rng.choice(CONSULTANT.permission)} {rng.choice(t.questions)}")
    return paras


def _coach_middle(c: Cast) -> list[str]:
    rng, first = c.rng, c.persona.first_name
    acknowledgement = _lower_first(rng.choice(CONSULTANT.mid_acknowledgements))
    paras = [f"{first}, {acknowledgement} {rng.choice(CONSULTANT.mid_validations)}"]
    paras.append(c.filled(c.topic.concepts, rng.randint(2, 3)))
    if rng.random() < 0.5:
        paras.append(rng.choice(CONSULTANT.metaphors))
    paras.append(rng.choice(CONSULTANT.practice_intros))
    paras.append(_steps_block(c, rng.randint(2, 4)))
    paras.append(f"{rng.choice(CONSULTANT.reframes)} {rng.choice(CONSULTANT.normalize)}")
    paras.append(" ".join(c.pick(CONSULTANT.closing_questions, 2)))
    return paras


def _coach_closing(c: Cast) -> list[str]:
    rng, first = c.rng, c.persona.first_name
    progress = _lower_first(rng.choice(CONSULTANT.progress))
    paras = [f"{first}, {progress} {rng.choice(CONSULTANT.mid_validations)}"]
    paras.append("Here's the plan in one place, so you can come back to it:")
    paras.append(_steps_block(c, rng.randint(3, 4)))
    reframe = rng.choice(CONSULTANT.reframes)
    paras.append(f"{reframe} {_upper_first(rng.choice(c.persona.insight))}.")
    paras.append(" ".join(c.pick(CONSULTANT.final, 2)))
    return paras
