"""The seed's REST routes, kept for existing clients: thin handlers over `TrainingFileService`.

    GET  /api/training-files                              200 {"files": [...]}
    POST /api/training-files                              201 {"trainingFile": {...}}
    POST /api/training-files/{id}/add-conversations       200 {"trainingFile": {...}}
    POST /api/training-files/{id}/remove-conversations    200 {"trainingFile": {...}}
    GET  /api/training-files/{id}/download?format=json|jsonl|openai_chat|hf_dataset
                                                          200 {download_url, filename,
                                                               expires_in_seconds, expires_at}
    DELETE /api/training-files/{id}                       204, no body (404, 403)

Paths, bodies and status codes are the seed's. Every rule (names, 1–80 ids, eligibility,
duplicates, ownership, status) lives in the service; this module only parses HTTP, calls the
service as the bearer token's user and renders the result or the error.

Errors (all JSON). A refused request is `{"error": <message>, "details": [<problem>, ...]}`,
each problem `{code, message, field, conversation_ids}` (`limits.error_body`, the body of every
error the app answers outside GraphQL); `error` is the message of the only problem, or the
service's summary followed by every problem's message when there are several.

    Unauthenticated (no/invalid bearer token)      401, with `WWW-Authenticate: Bearer`
    InvalidInput, Conflict                         400
    Forbidden (another user's file)                403
    NotFound                                       404
    Unavailable (database or storage down, busy)   503, with `Retry-After`; also for the
                                                   infrastructure failures that
                                                   `failures.as_unavailable` maps
    malformed JSON / body not a JSON object        400 (code INVALID_BODY)
    body larger than MAX_REQUEST_BYTES             413 (code BODY_TOO_LARGE), answered by the
                                                   app-wide limit (`limits.BodySizeLimit`)
    anything else                                  500 {"error": "Internal server error",
                                                        "error_id": <hex>}, logged with that
                                                        id and the traceback, never sent

The token is checked before anything else, so an anonymous request gets 401 whatever else is
wrong with it. A path `{id}` that is not a UUID is a malformed request, not a missing file:
400 with a message naming the bad value (as GraphQL's `parse_uuid` does), never 404. A
well-formed id of no file is 404. `format` must be exactly `json` or `jsonl` (as the seed), or
`openai_chat` / `hf_dataset` (the trainer exports).

Problem `field`s are the REST body's snake_case names (`conversation_ids`), which are the
domain's own names. Records use the seed's snake_case columns, plus `version` and
`trainable_pairs`; `scaffolding_distribution` has the seed's shape `{"personas": {key: count},
"emotional_arcs": {...}, "training_topics": {...}}`. Scores are JSON numbers, ids strings,
timestamps ISO 8601.

The list returns every active file, newest first, as the seed did: it walks the service's
keyset pages (ordered by created_at, id), so a file created meanwhile never appears twice.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import wraps
from typing import Any
from uuid import UUID

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .aggregation.service import list_training_files
from .authentication import caller_id
from .db.training_files import TrainingFileFilter, TrainingFileRecord
from .domain.enums import FileFormat, TrainingFileStatus
from .domain.limits import as_float
from .errors import (
    Conflict,
    ErrorCode,
    Forbidden,
    InvalidInput,
    NotFound,
    Problem,
    Unauthenticated,
    Unavailable,
    UserError,
)
from .failures import as_unavailable
from .inputs import json_type, parse_uuid
from .limits import BodyTooLarge, error_body
from .multipart import IMPORT_PATH
from .pagination import MAX_PAGE_SIZE
from .rest_imports import import_conversation
from .services import Services

log = logging.getLogger(__name__)

BASE_PATH = "/api/training-files"

_STATUS_OF: tuple[tuple[type[UserError], int], ...] = (
    (Unavailable, 503),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (InvalidInput, 400),
    (Conflict, 400),
)

Handler = Callable[[Request], Awaitable[Response]]


def rest_routes() -> list[BaseRoute]:
    """The seed's routes, to mount beside `/graphql`."""
    return [
        Route(BASE_PATH, _files, methods=["GET", "POST"]),
        Route(f"{BASE_PATH}/{{id}}", _delete, methods=["DELETE"]),
        Route(f"{BASE_PATH}/{{id}}/add-conversations", _add_conversations, methods=["POST"]),
        Route(f"{BASE_PATH}/{{id}}/remove-conversations", _remove_conversations, methods=["POST"]),
        Route(f"{BASE_PATH}/{{id}}/download", _download, methods=["GET"]),
        Route(IMPORT_PATH, _import_conversation, methods=["POST"]),
    ]


# -- error mapping (the only place HTTP statuses are chosen) ------------------------------------


def _rest_errors(handler: Handler) -> Handler:
    """Turn service errors into the seed's error bodies, a dependency's failure into a 503, and
    anything else into a masked 500."""

    @wraps(handler)
    async def wrapper(request: Request) -> Response:
        try:
            return await handler(request)
        except UserError as error:
            return _user_error(error)
        except BodyTooLarge:
            raise  # the size limit answers it (413), in the same error body
        except Exception as error:
            return _unexpected(request, error)

    return wrapper


def _unexpected(request: Request, error: Exception) -> Response:
    """A dependency's failure as 503 the client may retry; anything else as a masked 500."""
    route = f"{request.method} {request.url.path}"
    unavailable = as_unavailable(error)
    if unavailable is not None:
        log.warning("REST %s: %s (%s: %s)", route, unavailable.code, type(error).__name__, error)
        return _user_error(unavailable)
    error_id = uuid.uuid4().hex
    log.exception("REST %s failed (error_id %s)", route, error_id, extra={"error_id": error_id})
    return JSONResponse({"error": "Internal server error", "error_id": error_id}, status_code=500)


def _user_error(error: UserError) -> Response:
    status = next((s for kind, s in _STATUS_OF if isinstance(error, kind)), 400)
    body = error_body(_message(error), error.problems)
    return JSONResponse(body, status, headers=_headers(error))


def _message(error: UserError) -> str:
    problems = error.problems
    if len(problems) == 1:
        return problems[0].message
    return f"{error.message}: {'; '.join(p.message for p in problems)}"


def _headers(error: UserError) -> dict[str, str] | None:
    if isinstance(error, Unauthenticated):
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(error, Unavailable):
        return {"Retry-After": str(error.retry_after_seconds)}
    return None


# -- request parsing --------------------------------------------------------------------------


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _user_id(request: Request) -> UUID:
    return caller_id(request)


def _file_id(request: Request) -> UUID:
    return parse_uuid(request.path_params["id"], "id")


async def _json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object; 400 for anything else. Its size is bounded by the app-wide
    `MAX_REQUEST_BYTES` limit, which refuses a larger body before or while it is read."""
    try:
        raw = await request.body()
    except ClientDisconnect:
        raise InvalidInput("the request body was cut off") from None
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise _invalid_body("the request body must be valid JSON") from None
    if not isinstance(body, dict):
        raise _invalid_body(f"the request body must be a JSON object, got {json_type(body)}")
    return body


def _invalid_body(message: str) -> InvalidInput:
    return InvalidInput(message, problems=[Problem(ErrorCode.INVALID_BODY, message)])


_FORMAT_VALUES = [f"'{f.value}'" for f in FileFormat]
_FORMATS = ", ".join(_FORMAT_VALUES[:-1]) + " or " + _FORMAT_VALUES[-1]


def _format(request: Request) -> FileFormat:
    raw = request.query_params.get("format")
    if raw is None or raw == "":
        message = f"the format query parameter is required: {_FORMATS}"
    else:
        try:
            return FileFormat(raw)
        except ValueError:
            message = f"format must be {_FORMATS}, got {raw!r}"
    raise InvalidInput(message, problems=[Problem(ErrorCode.INVALID_FORMAT, message, "format")])


# -- rendering --------------------------------------------------------------------------------


def _timestamp(value: datetime) -> str:
    return value.isoformat()


def _distribution(stored: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The seed's shape: key -> count per kind, in the file's order of first appearance."""
    return {
        kind: {entry["key"]: entry["count"] for entry in stored.get(kind, [])}
        for kind in ("personas", "emotional_arcs", "training_topics")
    }


def training_file_json(r: TrainingFileRecord) -> dict[str, Any]:
    """A record as the seed's `training_files` row, plus `version` and `trainable_pairs`."""
    return {
        "id": str(r.id),
        "name": r.name,
        "description": r.description,
        "json_file_path": r.json_file_path,
        "jsonl_file_path": r.jsonl_file_path,
        "storage_bucket": r.storage_bucket,
        "conversation_count": r.conversation_count,
        "total_training_pairs": r.total_training_pairs,
        "json_file_size": r.json_file_size,
        "jsonl_file_size": r.jsonl_file_size,
        "avg_quality_score": as_float(r.avg_quality_score),
        "min_quality_score": as_float(r.min_quality_score),
        "max_quality_score": as_float(r.max_quality_score),
        "human_reviewed_count": r.human_reviewed_count,
        "scaffolding_distribution": _distribution(r.scaffolding_distribution),
        "status": r.status,
        "last_updated_at": _timestamp(r.last_updated_at),
        "created_by": str(r.created_by),
        "created_at": _timestamp(r.created_at),
        "updated_at": _timestamp(r.updated_at),
        "version": r.version,
        "trainable_pairs": r.trainable_pairs,
    }


# -- handlers ---------------------------------------------------------------------------------


@_rest_errors
async def _files(request: Request) -> Response:
    if request.method == "POST":
        return await _create(request)
    return await _list(request)


async def _list(request: Request) -> Response:
    user_id = _user_id(request)
    db = _services(request).db
    where = TrainingFileFilter(status=TrainingFileStatus.ACTIVE)
    files: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = await list_training_files(db, user_id, where, MAX_PAGE_SIZE, after)
        files += (training_file_json(r) for r in page.items)
        if not page.has_next_page or not page.cursors:
            return JSONResponse({"files": files})
        after = page.cursors[-1]


async def _create(request: Request) -> Response:
    user_id = _user_id(request)
    body = await _json_object(request)
    record = await _services(request).training_files.create_training_file(
        user_id, body.get("name"), body.get("description"), body.get("conversation_ids")
    )
    return JSONResponse({"trainingFile": training_file_json(record)}, status_code=201)


@_rest_errors
async def _add_conversations(request: Request) -> Response:
    user_id = _user_id(request)
    file_id = _file_id(request)
    body = await _json_object(request)
    record = await _services(request).training_files.add_conversations(
        user_id, file_id, body.get("conversation_ids")
    )
    return JSONResponse({"trainingFile": training_file_json(record)})


@_rest_errors
async def _remove_conversations(request: Request) -> Response:
    user_id = _user_id(request)
    file_id = _file_id(request)
    body = await _json_object(request)
    record = await _services(request).training_files.remove_conversations(
        user_id, file_id, body.get("conversation_ids")
    )
    return JSONResponse({"trainingFile": training_file_json(record)})


@_rest_errors
async def _delete(request: Request) -> Response:
    user_id = _user_id(request)
    file_id = _file_id(request)
    await _services(request).training_files.delete_training_file(user_id, file_id)
    return Response(status_code=204)


@_rest_errors
async def _download(request: Request) -> Response:
    user_id = _user_id(request)
    file_id = _file_id(request)
    file_format = _format(request)
    services = _services(request)
    target = await services.training_files.download_target(user_id, file_id, file_format)
    link = await services.download_link(target, str(request.base_url))
    return JSONResponse(
        {
            "download_url": link.url,
            "filename": link.filename,
            "expires_in_seconds": link.expires_in_seconds,
            "expires_at": _timestamp(link.expires_at),
        }
    )


@_rest_errors
async def _import_conversation(request: Request) -> Response:
    """One enriched conversation file as the body (see `rest_imports`)."""
    return await import_conversation(request, _user_id(request), _services(request))
