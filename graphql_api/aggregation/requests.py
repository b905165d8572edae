"""Checks of the values a request gives for a training file, each problem collected."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from ..errors import ErrorCode, ProblemList
from ..inputs import unstorable

MAX_CONVERSATIONS_PER_REQUEST = 80
MAX_NAME_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 5000


def check_name(name: object, problems: ProblemList) -> str | None:
    if not isinstance(name, str) or not name.strip():
        problems.add(ErrorCode.INVALID_NAME, "name must be a non-empty string", field="name")
        return None
    if len(name) > MAX_NAME_LENGTH:
        problems.add(
            ErrorCode.INVALID_NAME,
            f"name must be at most {MAX_NAME_LENGTH} characters",
            field="name",
        )
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        problems.add(
            ErrorCode.INVALID_NAME, "name must not contain control characters", field="name"
        )
        return None
    if reason := unstorable(name):
        problems.add(ErrorCode.INVALID_NAME, f"name {reason}", field="name")
        return None
    return name


def check_description(description: object, problems: ProblemList) -> str | None:
    if description is None:
        return None
    if not isinstance(description, str):
        problems.add(
            ErrorCode.INVALID_DESCRIPTION, "description must be a string", field="description"
        )
        return None
    if len(description) > MAX_DESCRIPTION_LENGTH:
        problems.add(
            ErrorCode.INVALID_DESCRIPTION,
            f"description must be at most {MAX_DESCRIPTION_LENGTH} characters",
            field="description",
        )
        return None
    if reason := unstorable(description):
        problems.add(ErrorCode.INVALID_DESCRIPTION, f"description {reason}", field="description")
        return None
    return description


def check_chosen_id(raw_id: object, problems: ProblemList) -> UUID | None:
    """The id a client chose for a new file, or None when it chose none."""
    if raw_id is None:
        return None
    parsed = _uuid(raw_id)
    if parsed is None:
        problems.add(ErrorCode.INVALID_ID, f"id: {raw_id!r} is not a UUID", field="id")
    return parsed


def check_ids(raw_ids: object, problems: ProblemList) -> list[UUID]:
    field = "conversation_ids"
    if not isinstance(raw_ids, Sequence) or isinstance(raw_ids, str | bytes):
        problems.add(ErrorCode.INVALID_ID, "conversation ids must be a list", field=field)
        return []
    if not raw_ids:
        problems.add(ErrorCode.NO_CONVERSATIONS, "give at least one conversation id", field=field)
    if len(raw_ids) > MAX_CONVERSATIONS_PER_REQUEST:
        problems.add(
            ErrorCode.TOO_MANY_CONVERSATIONS,
            f"at most {MAX_CONVERSATIONS_PER_REQUEST} conversations per request, got {len(raw_ids)}",
            field=field,
        )
        # The list must shrink anyway; checking each of thousands of ids only costs time.
        return []
    ids: dict[UUID, None] = {}  # ordered, with constant-time membership
    duplicates: dict[UUID, None] = {}
    for raw in raw_ids:
        parsed = _uuid(raw)
        if parsed is None:
            problems.add(ErrorCode.INVALID_ID, f"{raw!r} is not a UUID", field=field)
        elif parsed in ids:
            duplicates[parsed] = None
        else:
            ids[parsed] = None
    if duplicates:
        problems.add(
            ErrorCode.DUPLICATE_IN_REQUEST,
            f"conversation ids given more than once: {', '.join(map(str, duplicates))}",
            field=field,
            conversation_ids=list(duplicates),
        )
    return list(ids)


def _uuid(raw: object) -> UUID | None:
    if isinstance(raw, UUID):
        return raw
    try:
        return UUID(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
