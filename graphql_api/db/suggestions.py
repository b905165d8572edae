"""What balance suggestions read: a file's members and the candidates, both grouped by their
(persona, emotional arc, training topic) keys, so the statements return one row per key
combination however many conversations there are."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

import asyncpg

from .conversations import ConversationFilter

# (persona key, emotional arc key, training topic key); None: the conversation has none.
Keys = tuple[str | None, str | None, str | None]

_KEYS = (
    "nullif(persona_key, '') AS persona, nullif(emotional_arc_key, '') AS arc, "
    "nullif(training_topic_key, '') AS topic"
)
# Best first: what a tie between equally balancing conversations is decided by.
_BEST_FIRST = "quality_score DESC NULLS LAST, conversation_id"

_MEMBER_KEYS = f"""
SELECT {_KEYS}, count(*) AS n
FROM training_file_conversations j JOIN conversations USING (conversation_id)
WHERE j.training_file_id = $1
GROUP BY 1, 2, 3
"""


@dataclass(frozen=True)
class CandidateGroup:
    keys: Keys
    # The group's best conversations, best first, with their quality scores.
    ids: list[UUID]
    qualities: list[Decimal | None]


async def member_keys(conn: asyncpg.Connection, file_id: UUID) -> dict[Keys, int]:
    """How many members of the file have each combination of keys."""
    rows = await conn.fetch(_MEMBER_KEYS, file_id)
    return {(r["persona"], r["arc"], r["topic"]): r["n"] for r in rows}


async def candidate_groups(
    conn: asyncpg.Connection, where: ConversationFilter, per_group: int
) -> list[CandidateGroup]:
    """The conversations `where` matches, grouped by keys: at most `per_group` of each group
    (no more can ever be chosen from one), best first."""
    clause = where.clause()
    limit = clause.param(per_group, "int")
    sql = f"""
SELECT {_KEYS},
       (array_agg(conversation_id ORDER BY {_BEST_FIRST}))[1:{limit}] AS ids,
       (array_agg(quality_score ORDER BY {_BEST_FIRST}))[1:{limit}] AS qualities
FROM conversations {clause.sql}
GROUP BY 1, 2, 3
"""
    rows = await conn.fetch(sql, *clause.params)
    return [
        CandidateGroup((r["persona"], r["arc"], r["topic"]), list(r["ids"]), list(r["qualities"]))
        for r in rows
    ]
