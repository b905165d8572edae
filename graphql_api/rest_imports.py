"""`POST /api/conversations`: one enriched conversation file as the request body, imported as
`training-files import` imports it (the route itself is in `rest`, which maps errors).

    201 {"outcome": "imported", "conversation": {...}, "warnings": [...]}   a new conversation
    200 the same with "updated" or "unchanged"
    400 {"error", "details"}: INVALID_JSON, BLOCKED (one detail per blocker), IN_TRAINING_FILE
    413 FILE_TOO_LARGE: the body is larger than MAX_IMPORT_FILE_BYTES (answered by the
        app-wide limit, before or while the body is read; nothing is stored)
    415 UNSUPPORTED_MEDIA_TYPE: Content-Type is not application/json

The body is spooled (1 MiB in memory, then a temporary file) while the caller may wait for an
import slot, so waiting requests do not hold their files in memory.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from .conversations.importer import Outcome
from .conversations.uploads import ReceivedFile, UploadResult, stored_conversation
from .db.conversations import ConversationRecord
from .domain.limits import as_float
from .errors import ErrorCode, InvalidInput, Problem
from .limits import error_body, error_response
from .multipart import media_type
from .services import Services

JSON = "application/json"


async def import_conversation(request: Request, user_id: UUID, services: Services) -> Response:
    if media_type(request.headers) != JSON:
        message = (
            f"the body must be one enriched conversation file sent as {JSON}, "
            f"got Content-Type {request.headers.get('content-type', 'none')!r}"
        )
        return error_response(415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, message)
    received = ReceivedFile.spooled("")
    try:
        await _receive(request, received, services.uploads.max_file_bytes)
        result = await services.uploads.import_file(user_id, received)
    finally:
        received.close()
    if not result.stored:
        return _refusal(result)
    assert result.conversation_id is not None  # a stored file has its conversation
    record = await stored_conversation(services.db, user_id, result.conversation_id)
    body = {
        "outcome": result.outcome.value,
        "conversation": conversation_json(record) if record else None,
        "warnings": [w.to_json() for w in result.warnings],
    }
    return JSONResponse(body, 201 if result.outcome is Outcome.IMPORTED else 200)


async def _receive(request: Request, received: ReceivedFile, max_bytes: int) -> None:
    try:
        async for chunk in request.stream():
            if chunk:
                await asyncio.to_thread(received.write, chunk, max_bytes)
    except ClientDisconnect:
        raise InvalidInput("the request body was cut off") from None


def _refusal(result: UploadResult) -> Response:
    problems = result.problems
    status = 413 if any(p.code is ErrorCode.FILE_TOO_LARGE for p in problems) else 400
    return JSONResponse(error_body(_summary(problems), problems), status)


def _summary(problems: tuple[Problem, ...]) -> str:
    if len(problems) == 1:
        return problems[0].message
    return f"the file was not imported: {'; '.join(p.message for p in problems)}"


def conversation_json(r: ConversationRecord) -> dict[str, Any]:
    """A conversation row in the REST routes' snake_case."""
    return {
        "conversation_id": str(r.conversation_id),
        "title": r.title,
        "persona_key": r.persona_key,
        "persona_name": r.persona_name,
        "emotional_arc_key": r.emotional_arc_key,
        "emotional_arc_name": r.emotional_arc_name,
        "training_topic_key": r.training_topic_key,
        "training_topic_name": r.training_topic_name,
        "quality_score": as_float(r.quality_score),
        "tier": r.tier,
        "enrichment_status": r.enrichment_status,
        "enriched_file_path": r.enriched_file_path,
        "enriched_file_size": r.enriched_file_size,
        "total_turns": r.total_turns,
        "pair_count": r.pair_count,
        "trainable_pair_count": r.trainable_pair_count,
        "human_reviewed_count": r.human_reviewed_count,
        "created_by": str(r.created_by) if r.created_by else None,
        "created_at": r.created_at.isoformat(),
        "updated_at": r.updated_at.isoformat(),
    }
