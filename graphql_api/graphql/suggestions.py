"""`suggestConversations`: its argument enum, its result type and its resolver (thin: the
choosing is `suggestions.service`)."""

from __future__ import annotations

import enum
from typing import Annotated

import strawberry

from ..inputs import parse_uuid
from ..suggestions.balance import Dimension
from ..suggestions.service import MAX_SUGGESTIONS, suggest_conversations
from .context import Context
from .nodes import Conversation


@strawberry.enum(description="A dimension of a file's scaffolding distribution.")
class ScaffoldingDimension(enum.Enum):
    PERSONA = strawberry.enum_value("persona", description="The persona key.")
    EMOTIONAL_ARC = strawberry.enum_value("emotional_arc", description="The emotional arc key.")
    TRAINING_TOPIC = strawberry.enum_value("training_topic", description="The training topic key.")


@strawberry.type(description="A conversation that would make the file's distribution more even.")
class ConversationSuggestion:
    conversation: Conversation = strawberry.field(description="The conversation to add.")
    reason: str = strawberry.field(
        description="What adding it changes, per requested dimension, counting the "
        "suggestions before it: `adds persona anxious_planner: 2 → 3 of 12, …`."
    )


FILE_ARGUMENT = strawberry.argument(
    description="The training file to balance; omitted: choose a balanced set from nothing."
)
COUNT_ARGUMENT = strawberry.argument(
    description=f"How many to suggest, 1–{MAX_SUGGESTIONS} (what one addConversations takes); "
    "fewer come back when fewer conversations can balance the file."
)
MIN_QUALITY_ARGUMENT = strawberry.argument(
    description="Only conversations whose quality score is at least this (0–5)."
)
DIMENSIONS_ARGUMENT = strawberry.argument(
    description="The dimensions to even out; omitted: all three. Conversations without a key "
    "in one of them are not suggested."
)


async def resolve_suggestions(
    info: strawberry.Info[Context, None],
    training_file_id: Annotated[strawberry.ID | None, FILE_ARGUMENT],
    count: Annotated[int, COUNT_ARGUMENT],
    min_quality: Annotated[float | None, MIN_QUALITY_ARGUMENT],
    dimensions: Annotated[list[ScaffoldingDimension] | None, DIMENSIONS_ARGUMENT],
) -> list[ConversationSuggestion]:
    file_id = parse_uuid(training_file_id, "trainingFileId") if training_file_id else None
    chosen = await suggest_conversations(
        info.context.reader,
        file_id,
        count,
        min_quality,
        [Dimension[d.name] for d in dimensions] if dimensions is not None else None,
    )
    records = await info.context.loaders.conversation.load_many([s.conversation_id for s in chosen])
    return [
        ConversationSuggestion(conversation=Conversation.from_record(record), reason=s.reason)
        for s, record in zip(chosen, records, strict=True)
        # Deleted since it was chosen: nothing to suggest.
        if record is not None
    ]
