"""`suggestConversations`: read the file's members and the candidates as the caller (RLS),
grouped in SQL, then choose among them (`balance.choose`)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from ..db import suggestions as suggestion_rows
from ..db import training_files as file_rows
from ..db.conversations import ConversationFilter
from ..db.database import Reader
from ..domain.limits import MAX_CONVERSATIONS_PER_REQUEST
from ..errors import InvalidInput, NotFound
from ..ranges import RangeChecks
from .balance import Dimension, Suggestion, choose

# As many as one addConversations takes, so a client can add what it is given at once.
MAX_SUGGESTIONS = MAX_CONVERSATIONS_PER_REQUEST


async def suggest_conversations(
    reader: Reader,
    training_file_id: UUID | None,
    count: int,
    min_quality: float | None,
    dimensions: Sequence[Dimension] | None,
) -> list[Suggestion]:
    """Eligible conversations not in the file (any, without a file) that make its
    distribution over `dimensions` (all three by default) most even, in the order chosen."""
    checks = RangeChecks()
    floor = checks.quality(min_quality, "minQuality")
    checks.check()
    if not 1 <= count <= MAX_SUGGESTIONS:
        raise InvalidInput(f"count must be between 1 and {MAX_SUGGESTIONS}, got {count}")
    if dimensions is not None and not dimensions:
        raise InvalidInput("dimensions: give at least one, or leave it out for all three")
    chosen_dimensions = list(dict.fromkeys(dimensions or Dimension))
    where = ConversationFilter(
        min_quality=floor, not_in_training_file=training_file_id, eligible_only=True
    )
    async with reader.connection() as conn:
        members: dict[suggestion_rows.Keys, int] = {}
        if training_file_id is not None:
            if await file_rows.get(conn, training_file_id) is None:
                raise NotFound(f"training file {training_file_id} does not exist")
            members = await suggestion_rows.member_keys(conn, training_file_id)
        candidates = await suggestion_rows.candidate_groups(conn, where, count)
    return choose(members, candidates, chosen_dimensions, count)
