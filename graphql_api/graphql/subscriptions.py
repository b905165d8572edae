"""Subscriptions, over graphql-transport-ws at `/graphql`: the progress of work on a file."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated
from uuid import UUID

import strawberry

from ..db import training_files as file_rows
from ..inputs import parse_uuid
from ..progress.events import Phase, ProgressEvent
from .context import Context
from .enums import expose
from .nodes import TrainingFile
from .scalars import BigInt

Info = strawberry.Info[Context, None]

expose(
    Phase,
    "Where a change to a training file is.",
    {
        "BUILDING": "Gathering the conversations' parts of the new version; the counts say how far.",
        "COMMITTING": "Writing the new version's objects (`bytesWritten`: their size) and making it current.",
        "COMMITTED": "Done: `version` is the file's new version. The last event.",
        "FAILED": "Nothing changed; `errorCode` and `errorMessage` say why. The last event.",
    },
    name="ProgressPhase",
)


@strawberry.type(description="One step of a change to a training file (create, add...).")
class TrainingFileProgress:
    training_file_id: strawberry.ID = strawberry.field(description="The file being changed.")
    sequence: int = strawberry.field(
        description="1, 2, 3... within one change: a gap means an event was not delivered."
    )
    phase: Phase = strawberry.field(description="Where the change is.")
    conversations_done: int = strawberry.field(
        description="Conversations written into the new version so far."
    )
    conversations_total: int = strawberry.field(
        description="Conversations the new version will hold (the old ones count as done)."
    )
    bytes_written: BigInt = strawberry.field(
        description="Bytes of the new version's objects written so far."
    )
    version: int | None = strawberry.field(description="The new version, once COMMITTED.")
    error_code: str | None = strawberry.field(
        description="When FAILED: a `TrainingFileErrorCode`, or BUSY, STORAGE_UNAVAILABLE, "
        "DATABASE_UNAVAILABLE, INTERNAL_SERVER_ERROR."
    )
    error_message: str | None = strawberry.field(description="When FAILED: why, in words.")

    @strawberry.field(description="The file as committed, once COMMITTED; else null.")
    async def training_file(self, info: Info) -> TrainingFile | None:
        if self.phase is not Phase.COMMITTED:
            return None
        ctx = info.context
        # Not the context's reader: a websocket's context lives as long as the socket.
        async with ctx.services.db.reader(ctx.user_id) as reader, reader.connection() as conn:
            found = await file_rows.get_many(conn, [UUID(self.training_file_id)])
        record = found.get(UUID(self.training_file_id))
        return TrainingFile.from_record(record) if record else None

    @classmethod
    def from_event(cls, event: ProgressEvent) -> TrainingFileProgress:
        return cls(
            training_file_id=strawberry.ID(str(event.training_file_id)),
            sequence=event.sequence,
            phase=event.phase,
            conversations_done=event.conversations_done,
            conversations_total=event.conversations_total,
            bytes_written=BigInt(event.bytes_written),
            version=event.version,
            error_code=event.error_code,
            error_message=event.error_message,
        )


@strawberry.type(
    description="Live updates over a websocket (graphql-transport-ws), authenticated by the "
    "`Authorization` header of the upgrade request or of the `connection_init` payload."
)
class Subscription:
    @strawberry.subscription(
        description="The progress of the changes to a training file made from now on, by any "
        "server process, ending with the first COMMITTED or FAILED. Pass `id` in "
        "`createTrainingFile` to follow a file from its creation."
    )
    async def training_file_progress(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The training file's id.")],
    ) -> AsyncGenerator[TrainingFileProgress, None]:
        ctx = info.context
        ctx.user_id  # noqa: B018 - raises Unauthenticated without a valid token
        file_id = parse_uuid(id, "id")
        async with ctx.services.progress.subscribe(file_id) as events:
            async for event in events:
                yield TrainingFileProgress.from_event(event)
                if event.phase.terminal:
                    return
