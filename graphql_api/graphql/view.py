"""The Strawberry ASGI view: builds our typed context for each request, answers malformed
requests in GraphQL's error shape, and tells clients when to retry."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket
from strawberry.http import GraphQLHTTPResponse
from strawberry.http.types import QueryParams
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET

from ..inputs import json_type
from .context import Context
from .playground import OfflineGraphQL


class GraphQLView(OfflineGraphQL):
    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None = None
    ) -> Context:
        assert isinstance(request, Request)
        context = Context(request=request, services=request.app.state.services)
        request.state.graphql_context = context
        return context

    async def get_root_value(self, request: Any) -> None:
        return None

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        try:
            return await super().run(request, context, root_value)
        except HTTPException as error:
            # Strawberry answers these in plain text; GraphQL clients only parse JSON errors.
            return _request_error(error.status_code, error.reason)
        finally:
            used: Context | None = getattr(request.state, "graphql_context", None)
            if used is not None:
                await used.close()

    def parse_json(self, data: str | bytes) -> Any:
        """The POST body: UTF-8 JSON whose top level is an object (batching is not enabled)."""
        body = _decode(data, "the request body")
        if not isinstance(body, dict):
            raise HTTPException(
                400, f"the request body must be a JSON object, got {json_type(body)}"
            )
        return body

    def parse_query_params(self, params: QueryParams) -> dict[str, Any]:
        # Strawberry's own version goes through `parse_json`, which is for bodies only.
        parsed: dict[str, Any] = dict(params)
        for name in ("variables", "extensions"):
            if parsed.get(name):
                parsed[name] = _decode(parsed[name], f"the {name} query parameter")
        return parsed

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        processed = await super().process_result(request, result)
        context: Context | None = getattr(request.state, "graphql_context", None)
        if (
            not result.errors
            and context is not None
            and context.authenticated
            and context.operation_type is OperationType.QUERY
        ):
            # The version the request's reads started at: anything committed since makes the
            # entry stale at once, so it is never served newer than it is.
            request.state.cache_version = await context.reader.data_version()
        return processed

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        retry_after = _retry_after(response_data)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response


def _request_error(status: int, message: str) -> JSONResponse:
    """A request refused before execution, in the shape of a GraphQL response."""
    try:
        code = HTTPStatus(status).name  # BAD_REQUEST, METHOD_NOT_ALLOWED, ...
    except ValueError:
        code = "BAD_REQUEST"
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status)


def _decode(data: str | bytes, what: str) -> object:
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    except UnicodeDecodeError as error:
        message = f"{what} is not UTF-8: {error.reason} at byte {error.start}"
        raise HTTPException(400, message) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise HTTPException(400, f"{what} is not valid JSON: {error}") from None
    except RecursionError:
        raise HTTPException(400, f"{what} is nested too deeply") from None


def _retry_after(response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse]) -> int | None:
    """The longest wait any error asks for (`extensions.retryAfter`), or None."""
    results = response_data if isinstance(response_data, list) else [response_data]
    waits = [
        wait
        for result in results
        for error in result.get("errors") or ()
        if isinstance(wait := (error.get("extensions") or {}).get("retryAfter"), int)
    ]
    return max(waits, default=None)
