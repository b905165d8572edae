"""The greedy choice behind `suggestConversations`, on keys alone (no database).

Each step takes the candidate whose keys are the most under-represented: for each requested
dimension, the key's deficit relative to an even share, `1 - count * keys / (size + 1)`
(`keys`: how many keys of the dimension the file and the candidates have between them),
summed over the dimensions. Ties go to the better quality score, then the smaller id, so the
answer is deterministic. Conversations without a key in a requested dimension are never
chosen: they could only add to `unknown`.

Cost: candidates come grouped by their key combination (G groups, at most `count` ids each),
and each of the `count` steps looks at the best remaining candidate of every group, so
O(count * G * dimensions), whatever the number of conversations.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from uuid import UUID

from ..db.suggestions import CandidateGroup, Keys


class Dimension(enum.Enum):
    """A scaffolding dimension, by its place in `Keys`."""

    PERSONA = 0
    EMOTIONAL_ARC = 1
    TRAINING_TOPIC = 2

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", " ")


@dataclass(frozen=True)
class Suggestion:
    conversation_id: UUID
    reason: str


def choose(
    members: Mapping[Keys, int],
    candidates: Sequence[CandidateGroup],
    dimensions: Sequence[Dimension],
    count: int,
) -> list[Suggestion]:
    """Up to `count` candidates, in the order chosen; fewer when fewer can be."""
    counts = {d: Counter[str]() for d in dimensions}
    for keys, n in members.items():
        for d in dimensions:
            if (key := keys[d.value]) is not None:
                counts[d][key] += n
    size = sum(members.values())
    usable = [g for g in candidates if all(g.keys[d.value] is not None for d in dimensions)]
    universe = {d: len(set(counts[d]) | {g.keys[d.value] for g in usable}) for d in dimensions}
    taken = [0] * len(usable)
    chosen: list[Suggestion] = []
    while len(chosen) < count:
        best: tuple[tuple[Fraction, bool, Decimal], int] | None = None
        for i, group in enumerate(usable):
            if taken[i] == len(group.ids):
                continue
            rank = (_deficit(group.keys, counts, universe, size), *_quality(group, taken[i]))
            # Ties in rank: the groups' heads by id (smaller first).
            if (
                best is None
                or rank > best[0]
                or (rank == best[0] and group.ids[taken[i]] < usable[best[1]].ids[taken[best[1]]])
            ):
                best = (rank, i)
        if best is None:
            break
        group = usable[best[1]]
        conversation_id = group.ids[taken[best[1]]]
        taken[best[1]] += 1
        size += 1
        changes = []
        for d in dimensions:
            key = group.keys[d.value]
            assert key is not None
            before = counts[d][key]
            counts[d][key] = before + 1
            changes.append(f"{d.label} {key}: {before} → {before + 1} of {size}")
        chosen.append(Suggestion(conversation_id, "adds " + ", ".join(changes)))
    return chosen


def _deficit(
    keys: Keys,
    counts: Mapping[Dimension, Counter[str]],
    universe: Mapping[Dimension, int],
    size: int,
) -> Fraction:
    total = Fraction(0)
    for d, seen in counts.items():
        key = keys[d.value]
        assert key is not None
        total += 1 - Fraction(seen[key] * universe[d], size + 1)
    return total


def _quality(group: CandidateGroup, index: int) -> tuple[bool, Decimal]:
    """Orders like `quality_score DESC NULLS LAST` when compared larger-first."""
    score = group.qualities[index]
    return (score is not None, score if score is not None else Decimal(0))
