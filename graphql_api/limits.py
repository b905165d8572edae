"""Refusing requests outside GraphQL's own error handling: the one error body every such refusal
has (REST's), and the ASGI middleware refusing request bodies larger than `MAX_REQUEST_BYTES`
before anything parses them.

    {"error": <message>, "details": [{"code", "message", "field", "conversation_ids"}, ...]}

`code` is an `ErrorCode`. The GraphQL endpoint is the exception: its clients parse GraphQL's
error shape, so its 413 is `{"errors": [{"message", "extensions": {"code"}}]}`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ErrorCode, Problem

GRAPHQL_PATH = "/graphql"


def error_body(message: str, problems: Sequence[Problem]) -> dict[str, Any]:
    """The body of every error the app answers outside GraphQL."""
    return {"error": message, "details": [_problem_json(p) for p in problems]}


def error_response(
    status: int, code: ErrorCode, message: str, *, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """One problem, as `status` with the error body."""
    return JSONResponse(error_body(message, [Problem(code, message)]), status, headers=headers)


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {
        "code": problem.code,
        "message": problem.message,
        "field": problem.field,
        "conversation_ids": [str(i) for i in problem.conversation_ids],
    }


class BodyTooLarge(Exception):
    """A body without Content-Length grew past the limit while the app read it. It must reach
    the middleware, which answers 413: handlers that mask unexpected errors let it through."""


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int, graphql_path: str = GRAPHQL_PATH) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.graphql_path = graphql_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return

        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body larger than {self.max_bytes} bytes"
        if scope["path"] == self.graphql_path:
            error = {"message": message, "extensions": {"code": ErrorCode.BODY_TOO_LARGE}}
            response = JSONResponse({"errors": [error]}, 413)
        else:
            response = error_response(413, ErrorCode.BODY_TOO_LARGE, message)
        await response(scope, receive, send)
