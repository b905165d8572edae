"""Refusing requests outside GraphQL's own error handling: the one error body every such refusal
has (REST's), and the ASGI middleware refusing request bodies larger than `MAX_REQUEST_BYTES`
before anything parses them.

    {"error": <message>, "details": [{"code", "message", "field", "conversation_ids"}, ...]}

`code` is an `ErrorCode`. The GraphQL endpoint is the exception: its clients parse GraphQL's
error shape, so its 413 is `{"errors": [{"message", "extensions": {"code"}}]}`. Requests that
carry files (`uploads` says which) get their own larger cap instead of `MAX_REQUEST_BYTES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class UploadLimit:
    """The cap of a request that carries files, instead of `max_bytes`, and how its refusal
    names what was too large."""

    max_bytes: int
    code: ErrorCode
    what: str


def _no_uploads(scope: Scope) -> UploadLimit | None:
    return None


class BodySizeLimit:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        graphql_path: str = GRAPHQL_PATH,
        uploads: Callable[[Scope], UploadLimit | None] = _no_uploads,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.graphql_path = graphql_path
        self.uploads = uploads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.uploads(scope) or UploadLimit(
            self.max_bytes, ErrorCode.BODY_TOO_LARGE, "request body"
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit.max_bytes):
            await self._refuse(scope, receive, send, limit)
            return

        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.max_bytes:
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
                await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: UploadLimit) -> None:
        message = f"{limit.what} larger than {limit.max_bytes} bytes"
        if scope["path"] == self.graphql_path:
            error = {"message": message, "extensions": {"code": limit.code}}
            response = JSONResponse({"errors": [error]}, 413)
        else:
            response = error_response(413, limit.code, message)
        await response(scope, receive, send)
