"""ASGI middleware, outermost: gives each request its id (`X-Request-Id`, in and out), runs
it with that id in the log context, then writes its access line and request metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .context import RequestInfo, handling
from .metrics import observe_request
from .request_id import HEADER, request_id_from

log = logging.getLogger("graphql_api.access")

# Polled every few seconds by orchestrators and scrapers: their lines only at DEBUG.
QUIET_ROUTES = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})
# A client that went away before its response began (nginx's code for it).
CLIENT_CLOSED = 499


class ObservedRequests:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        info = RequestInfo(request_id_from(Headers(scope=scope).get(HEADER)), scope)
        started = time.perf_counter()
        status: int | None = None
        header = (HEADER.encode(), info.request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        with handling(info):
            try:
                await self.app(scope, receive, send_with_id)
            except asyncio.CancelledError:
                status = status or CLIENT_CLOSED
                raise
            except Exception:
                status = status or 500  # Starlette's error middleware answers it
                raise
            finally:
                _finished(info, status or 500, time.perf_counter() - started)


def _finished(info: RequestInfo, status: int, seconds: float) -> None:
    scope = info.scope
    route = _route(scope)
    operation = info.operation
    observe_request(route, scope["method"], status, operation, seconds)
    fields: dict[str, Any] = {
        "method": scope["method"],
        "path": scope["path"],
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 1),
        "outcome": operation.outcome if operation else ("ok" if status < 400 else "error"),
    }
    if info.user_id is not None:
        fields["user_id"] = info.user_id
    if operation is not None:
        fields["operation_name"] = operation.name
        fields["operation_type"] = operation.type
        if operation.error_codes:
            fields["error_codes"] = list(operation.error_codes)
    level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
    log.log(
        level,
        "%s %s %d %.1f ms",
        scope["method"],
        scope["path"],
        status,
        fields["duration_ms"],
        extra=fields,
    )


def _route(scope: Scope) -> str:
    """The matched route's template (`/api/training-files/{id}/download`): a bounded label,
    unlike the path. Requests no route matched are counted together."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else "unmatched"
