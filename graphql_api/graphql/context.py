"""Per-request context: the shared services, the caller, and fresh DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from starlette.requests import Request
from strawberry.dataloader import DataLoader

from ..conversations.service import get_conversations
from ..db.conversations import ConversationRecord
from ..services import Services


@dataclass
class Loaders:
    conversation: DataLoader[UUID, ConversationRecord | None]


def make_loaders(services: Services, user_id: UUID | None) -> Loaders:
    async def load_conversations(ids: list[UUID]) -> list[ConversationRecord | None]:
        found = await get_conversations(services.db, user_id, ids)
        return [found.get(i) for i in ids]

    return Loaders(conversation=DataLoader(load_fn=load_conversations))


@dataclass
class Context:
    request: Request
    services: Services
    user_id: UUID | None
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = make_loaders(self.services, self.user_id)
