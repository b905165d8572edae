"""The Strawberry ASGI view: builds our typed context for each request, answers malformed
requests in GraphQL's error shape, and tells clients when to retry."""

from __future__ import annotations

import contextlib
import json
import logging
from http import HTTPStatus
from typing import Any

import strawberry
from cross_web import AsyncHTTPRequestAdapter, HTTPException, StarletteRequestAdapter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket
from strawberry.file_uploads.utils import replace_placeholders_with_files
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.types import QueryParams
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET

from ..authentication import BearerTokens, caller_id, caller_id_or_none
from ..config import Settings
from ..errors import ErrorCode, Unauthenticated, Unavailable
from ..failures import as_unavailable
from ..inputs import json_type
from ..multipart import MULTIPART, MultipartError, close_received, media_type, read_form
from ..observability.context import Operation, record_operation
from ..observability.metrics import COMPILED_READS
from .compiled.executor import CompiledReads
from .context import Context
from .playground import OfflineGraphQL

log = logging.getLogger(__name__)


class UploadRequestAdapter(StarletteRequestAdapter):
    """Strawberry's view of a request, keeping the request itself for `parse_multipart`."""

    def __init__(self, request: Request) -> None:
        super().__init__(request)
        self.request = request


class GraphQLView(OfflineGraphQL):
    request_adapter_class = UploadRequestAdapter

    def __init__(self, schema: strawberry.Schema, *args: Any, **kwargs: Any) -> None:
        # importConversations takes GraphQL multipart requests (see `parse_multipart`).
        kwargs.setdefault("multipart_uploads_enabled", True)
        super().__init__(schema, *args, **kwargs)
        self.compiled = CompiledReads(schema)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        context = Context(
            request=request, services=request.app.state.services, compiled=self.compiled
        )
        if isinstance(request, Request):
            request.state.graphql_context = context
        return context

    async def on_ws_connect(self, context: Context) -> None:
        """A token in the `connection_init` payload (`{"Authorization": "Bearer ..."}`) stands
        in for the upgrade request's header, which browsers cannot set."""
        params = context.connection_params
        if not isinstance(params, dict):
            return
        authorization = params.get("Authorization", params.get("authorization"))
        if isinstance(authorization, str):
            backend: BearerTokens = context.request.app.state.authentication
            context.request.scope["user"] = await backend.caller(authorization)

    async def get_root_value(self, request: Any) -> None:
        return None

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        if isinstance(request, Request) and context is UNSET:
            answered = _refuse_anonymous_upload(request) or await self._run_compiled(request)
            if answered is not None:
                return answered
        try:
            return await super().run(request, context, root_value)
        except HTTPException as error:
            # Strawberry answers these in plain text; GraphQL clients only parse JSON errors.
            return _request_error(error.status_code, error.reason)
        finally:
            used: Context | None = getattr(request.state, "graphql_context", None)
            if used is not None:
                await used.close()
            close_received(request)

    async def _run_compiled(self, request: Request) -> Response | None:
        """A trusted read answered by one SQL statement, or None for Strawberry to answer."""
        if media_type(request.headers) == MULTIPART:
            return None  # uploads are mutations; their body is read once, by `parse_multipart`
        adapter = self.request_adapter_class(request)
        if not self.is_request_allowed(adapter) or self.should_render_graphql_ide(adapter):
            return None
        user_id = caller_id_or_none(request)
        if user_id is None:
            return None
        try:
            data = await self.parse_http_body(adapter)
        except (HTTPException, ValueError):
            return None  # Strawberry refuses it the same way, in its own words
        if not isinstance(data, GraphQLRequestData) or not data.query:
            return None
        compiled = self.compiled.compile(data.query, data.operation_name, data.variables, user_id)
        if compiled is None:
            return None
        try:
            async with request.app.state.services.db.reader(user_id) as reader:
                version = await reader.data_version()
                async with reader.connection() as conn:
                    text: str = await conn.fetchval(compiled.sql, *compiled.params)
        except Exception as error:
            unavailable = as_unavailable(error)
            if unavailable is None:
                self.compiled.failed += 1
                COMPILED_READS.labels("failed").inc()
                log.warning("compiled read failed; the resolvers answer it", exc_info=True)
                return None
            return _unavailable(unavailable)
        self.compiled.answered += 1
        COMPILED_READS.labels("answered").inc()
        record_operation(Operation(compiled.operation_name, "query", "ok"))
        request.state.cache_version = version
        return Response(b'{"data":' + text.encode() + b"}", media_type="application/json")

    def parse_json(self, data: str | bytes) -> Any:
        """The POST body: UTF-8 JSON whose top level is an object (batching is not enabled)."""
        body = _decode(data, "the request body")
        if not isinstance(body, dict):
            raise HTTPException(
                400, f"the request body must be a JSON object, got {json_type(body)}"
            )
        return body

    async def parse_multipart(self, request: AsyncHTTPRequestAdapter) -> dict[str, Any]:
        """A GraphQL multipart request: `operations` with the files put where `map` says.
        Files are capped as they are read (`multipart.read_form`)."""
        assert isinstance(request, UploadRequestAdapter)
        settings: Settings = request.request.app.state.services.settings
        try:
            form = await read_form(
                request.request,
                max_file_bytes=settings.max_import_file_bytes,
                max_field_bytes=settings.max_request_bytes,
            )
        except MultipartError as error:
            raise HTTPException(400, str(error)) from None
        operations = self.parse_json(form.fields.get("operations", "{}"))
        files_map = _decode(form.fields.get("map", "{}"), "the multipart map")
        if not isinstance(files_map, dict) or not all(
            isinstance(paths, list) and all(isinstance(p, str) for p in paths)
            for paths in files_map.values()
        ):
            raise HTTPException(400, "the multipart map must be an object of lists of paths")
        missing = [name for name in files_map if name not in form.files]
        if missing:
            raise HTTPException(400, f"the multipart map names no file part {missing[0]!r}")
        try:
            return replace_placeholders_with_files(operations, files_map, form.files)
        except (KeyError, IndexError, ValueError, TypeError, AttributeError):
            raise HTTPException(
                400, "the multipart map names a path that is not in the operations' variables"
            ) from None

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
            with contextlib.suppress(Unavailable):
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


def _refuse_anonymous_upload(request: Request) -> Response | None:
    """A multipart request without a valid bearer token, refused before its body is read.

    This is also what keeps uploads safe from cross-site requests: a browser sends a form
    post to another site without asking, but not one with an `Authorization` header (it is
    not CORS-safelisted, so it needs a preflight the server's CORS settings answer), and no
    cookie is ever a credential here.
    """
    if media_type(request.headers) != MULTIPART:
        return None
    try:
        caller_id(request)
    except Unauthenticated as refusal:
        record_operation(Operation(None, None, "error", (ErrorCode.UNAUTHENTICATED.value,)))
        error = {"message": refusal.message, "extensions": refusal.extensions}
        return JSONResponse(
            {"data": None, "errors": [error]}, 401, headers={"WWW-Authenticate": "Bearer"}
        )
    return None


def _unavailable(error: Unavailable) -> JSONResponse:
    body = {"data": None, "errors": [{"message": error.message, "extensions": error.extensions}]}
    return JSONResponse(body, headers={"Retry-After": str(error.retry_after_seconds)})


def _request_error(status: int, message: str) -> JSONResponse:
    """A request refused before execution, in the shape of a GraphQL response."""
    try:
        code = HTTPStatus(status).name  # BAD_REQUEST, METHOD_NOT_ALLOWED, ...
    except ValueError:
        code = "BAD_REQUEST"
    record_operation(Operation(None, None, "error", (code,)))
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
        if isinstance(error, dict)
        and isinstance(wait := (error.get("extensions") or {}).get("retryAfter"), int)
    ]
    return max(waits, default=None)
