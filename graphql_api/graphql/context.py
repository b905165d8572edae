"""Per-request context: the shared services, the caller, and fresh DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from uuid import UUID

from starlette.requests import HTTPConnection
from strawberry.dataloader import DataLoader
from strawberry.types.graphql import OperationType

from ..authentication import caller_id, caller_id_or_none
from ..db import conversations as conversation_rows
from ..db import training_files as file_rows
from ..db.conversations import ConversationRecord
from ..db.database import Reader
from ..db.training_files import TrainingFileRecord
from ..services import Services

if TYPE_CHECKING:
    from .compiled.executor import CompiledReads

# (file id, after position, limit) -> [(position, conversation)]
PageKey = tuple[UUID, int, int]
PageOfConversations = list[tuple[int, ConversationRecord]]


@dataclass
class Loaders:
    """One loader per lookup; each batch is one SQL statement run as the caller."""

    conversation: DataLoader[UUID, ConversationRecord | None]
    training_file: DataLoader[UUID, TrainingFileRecord | None]
    file_conversations: DataLoader[PageKey, PageOfConversations]
    files_of_conversation: DataLoader[UUID, list[TrainingFileRecord]]


def make_loaders(reader: Reader) -> Loaders:
    async def conversations(ids: list[UUID]) -> list[ConversationRecord | None]:
        async with reader.connection() as conn:
            found = await conversation_rows.get_many(conn, ids)
        return [found.get(i) for i in ids]

    async def training_files(ids: list[UUID]) -> list[TrainingFileRecord | None]:
        async with reader.connection() as conn:
            found = await file_rows.get_many(conn, ids)
        return [found.get(i) for i in ids]

    async def file_conversations(keys: list[PageKey]) -> list[PageOfConversations]:
        async with reader.connection() as conn:
            pages = await file_rows.conversation_pages(conn, keys)
        return [pages[k] for k in keys]

    async def files_of_conversation(ids: list[UUID]) -> list[list[TrainingFileRecord]]:
        async with reader.connection() as conn:
            found = await file_rows.files_of_conversations(conn, ids)
        return [found.get(i, []) for i in ids]

    return Loaders(
        conversation=DataLoader(load_fn=conversations),
        training_file=DataLoader(load_fn=training_files),
        file_conversations=DataLoader(load_fn=file_conversations),
        files_of_conversation=DataLoader(load_fn=files_of_conversation),
    )


@dataclass
class Context:
    request: HTTPConnection  # a Request, or the WebSocket of subscriptions
    services: Services
    # Where documents Strawberry validated as queries are trusted for the compiled path.
    compiled: CompiledReads | None = None
    # Set once the operation is known (RecordOperationType): only queries are cached.
    operation_type: OperationType | None = field(default=None, init=False)
    # A websocket's `connection_init` payload (Strawberry sets it).
    connection_params: object = field(default=None, init=False)
    _loaders: Loaders | None = field(default=None, init=False)
    _reader: Reader | None = field(default=None, init=False)

    @property
    def user_id(self) -> UUID:
        """The caller, from the bearer token; raises `Unauthenticated` when there is none.

        Asked only when a resolver needs it, so introspection (the playground) works
        without a token.
        """
        return caller_id(self.request)

    @property
    def reader(self) -> Reader:
        """Every read of this request, as the caller, on one connection (see `Reader`)."""
        if self._reader is None:
            self._reader = self.services.db.reader(self.user_id)
        return self._reader

    @property
    def authenticated(self) -> bool:
        return caller_id_or_none(self.request) is not None

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = make_loaders(self.reader)
        return self._loaders

    async def close(self) -> None:
        """Give the request's connection back (the view calls this once the response is built)."""
        if self._reader is not None:
            await self._reader.close()

    @property
    def base_url(self) -> str:
        return str(self.request.base_url).rstrip("/")
