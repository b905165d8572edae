"""The Strawberry ASGI view: builds our typed context for each request."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from .context import Context
from .playground import OfflineGraphQL


class GraphQLView(OfflineGraphQL):
    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None = None
    ) -> Context:
        assert isinstance(request, Request)
        return Context(request=request, services=request.app.state.services)

    async def get_root_value(self, request: Any) -> None:
        return None
