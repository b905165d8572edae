"""The closed set of errors a user can act on, each with a stable code.

Mapped once to GraphQL (`userErrors` in mutation payloads, `extensions.code` elsewhere) and
once to REST status codes. Anything else is a bug and is masked before it reaches a client.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from uuid import UUID


class ErrorCode(enum.StrEnum):
    """Every code a client can receive, in `userErrors`, `extensions.code` or REST `details`."""

    # The request itself (any operation)
    BAD_USER_INPUT = "BAD_USER_INPUT"
    BAD_REQUEST = "BAD_REQUEST"
    INVALID_BODY = "INVALID_BODY"
    INVALID_FORMAT = "INVALID_FORMAT"
    BODY_TOO_LARGE = "BODY_TOO_LARGE"
    # Creating and changing training files
    INVALID_NAME = "INVALID_NAME"
    NAME_TAKEN = "NAME_TAKEN"
    ID_TAKEN = "ID_TAKEN"
    INVALID_DESCRIPTION = "INVALID_DESCRIPTION"
    NO_CONVERSATIONS = "NO_CONVERSATIONS"
    TOO_MANY_CONVERSATIONS = "TOO_MANY_CONVERSATIONS"
    INVALID_ID = "INVALID_ID"
    DUPLICATE_IN_REQUEST = "DUPLICATE_IN_REQUEST"
    NOT_FOUND = "NOT_FOUND"
    NOT_ELIGIBLE = "NOT_ELIGIBLE"
    ALREADY_IN_FILE = "ALREADY_IN_FILE"
    NOT_IN_FILE = "NOT_IN_FILE"
    WOULD_BE_EMPTY = "WOULD_BE_EMPTY"
    FILE_NOT_ACTIVE = "FILE_NOT_ACTIVE"
    NOT_READY = "NOT_READY"
    CONVERSATION_CHANGED = "CONVERSATION_CHANGED"
    CONFLICT = "CONFLICT"
    # Importing conversation files
    NO_FILES = "NO_FILES"
    TOO_MANY_FILES = "TOO_MANY_FILES"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    INVALID_JSON = "INVALID_JSON"
    BLOCKED = "BLOCKED"
    IN_TRAINING_FILE = "IN_TRAINING_FILE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    # Who is asking
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    # The server and what it depends on
    BUSY = "BUSY"
    STORAGE_UNAVAILABLE = "STORAGE_UNAVAILABLE"
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


MEANING: dict[ErrorCode, str] = {
    ErrorCode.BAD_USER_INPUT: "The request breaks a rule: a bad argument, page size or cursor.",
    ErrorCode.BAD_REQUEST: "The HTTP request itself is malformed (e.g. an unsatisfiable Range).",
    ErrorCode.INVALID_BODY: "A REST body that is not a JSON object.",
    ErrorCode.INVALID_FORMAT: "A download format other than `json` or `jsonl`.",
    ErrorCode.BODY_TOO_LARGE: "The request body is larger than `MAX_REQUEST_BYTES`.",
    ErrorCode.INVALID_NAME: "The name is missing, not a string, empty or over 255 characters.",
    ErrorCode.NAME_TAKEN: "You already have a training file with this name (ignoring case).",
    ErrorCode.ID_TAKEN: "A training file with the id chosen for a new one already exists.",
    ErrorCode.INVALID_DESCRIPTION: "The description is not a string or over 5000 characters.",
    ErrorCode.NO_CONVERSATIONS: "No conversation ids were given.",
    ErrorCode.TOO_MANY_CONVERSATIONS: "More than 80 conversation ids in one request.",
    ErrorCode.INVALID_ID: "An id that is not a UUID.",
    ErrorCode.DUPLICATE_IN_REQUEST: "The same conversation id appears twice in the request.",
    ErrorCode.NOT_FOUND: "The training file or some of the conversations do not exist.",
    ErrorCode.NOT_ELIGIBLE: "Conversations that are not enriched or have no stored file.",
    ErrorCode.ALREADY_IN_FILE: "Conversations that are already in the training file.",
    ErrorCode.NOT_IN_FILE: "Conversations to remove that are not in the training file.",
    ErrorCode.WOULD_BE_EMPTY: "Removing every conversation of a training file: a file keeps "
    "at least one (delete the file instead).",
    ErrorCode.FILE_NOT_ACTIVE: "The training file is archived: restore it before changing it.",
    ErrorCode.NOT_READY: "The training file has no object in this format yet.",
    ErrorCode.CONVERSATION_CHANGED: "A conversation was re-imported while the file was built, "
    "or its stored file no longer matches its record: try again (or re-import it).",
    ErrorCode.CONFLICT: "The training file changed while this request ran: try again.",
    ErrorCode.NO_FILES: "No file was uploaded.",
    ErrorCode.TOO_MANY_FILES: "More files in one request than an import takes (20).",
    ErrorCode.FILE_TOO_LARGE: "A file larger than `MAX_IMPORT_FILE_BYTES`; nothing of it was "
    "stored.",
    ErrorCode.INVALID_JSON: "The file is not UTF-8 JSON whose top level is an object.",
    ErrorCode.BLOCKED: "Validation found a structural problem (listed in `blockers`); the file "
    "was not stored.",
    ErrorCode.IN_TRAINING_FILE: "The conversation changed but is already in a training file: "
    "import it as a new conversation (a new `dataset_name`) instead.",
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: "A REST import whose Content-Type is not `application/json`.",
    ErrorCode.UNAUTHENTICATED: "No bearer token, or one that is invalid or expired.",
    ErrorCode.FORBIDDEN: "The training file belongs to another user.",
    ErrorCode.BUSY: "A bound was reached (connections, a lock, a statement): retry after "
    "`retryAfter` seconds.",
    ErrorCode.STORAGE_UNAVAILABLE: "Object storage is full, not writable or unreachable.",
    ErrorCode.DATABASE_UNAVAILABLE: "PostgreSQL cannot be reached or dropped the connection.",
    ErrorCode.SERVICE_UNAVAILABLE: "A dependency failed; nothing changed, a retry may succeed.",
    ErrorCode.INTERNAL_SERVER_ERROR: "A bug: the response carries an `errorId` to quote; the "
    "log has the details.",
}
"""What each code means, for the GraphQL enum descriptions and the README's table."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request. `field` is the domain's name of the input
    (`conversation_ids`); each adapter spells it its own way."""

    code: ErrorCode
    message: str
    field: str | None = None
    conversation_ids: tuple[UUID, ...] = ()


class UserError(Exception):
    """A request the server refuses for a reason the user can fix."""

    code: ClassVar[ErrorCode] = ErrorCode.BAD_USER_INPUT

    def __init__(
        self, message: str, *, problems: Sequence[Problem] = (), code: ErrorCode | None = None
    ) -> None:
        """`code` names the one problem of an error given no `problems` (the class's own
        code when omitted)."""
        super().__init__(message)
        self.message = message
        self.problems: tuple[Problem, ...] = tuple(problems) or (
            Problem(code or self.code, message),
        )

    @property
    def extensions(self) -> dict[str, Any]:
        # graphql-core copies an exception's `extensions` into the error it reports.
        return {"code": self.code}


class InvalidInput(UserError):
    """The request itself is malformed or breaks a rule."""

    code: ClassVar[ErrorCode] = ErrorCode.BAD_USER_INPUT


class NotFound(UserError):
    """The requested object does not exist."""

    code: ClassVar[ErrorCode] = ErrorCode.NOT_FOUND


class Conflict(UserError):
    """The request clashes with the current state (a name taken, a file archived)."""

    code: ClassVar[ErrorCode] = ErrorCode.CONFLICT


class Unauthenticated(UserError):
    """No valid bearer token."""

    code: ClassVar[ErrorCode] = ErrorCode.UNAUTHENTICATED


class Forbidden(UserError):
    """Authenticated, but not allowed to do this."""

    code: ClassVar[ErrorCode] = ErrorCode.FORBIDDEN


class Unavailable(UserError):
    """A dependency is down or overloaded: nothing changed, and a retry later may succeed."""

    code: ClassVar[ErrorCode] = ErrorCode.SERVICE_UNAVAILABLE

    def __init__(self, message: str, *, retry_after_seconds: int = 5) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds

    @property
    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, "retryAfter": self.retry_after_seconds}


class Busy(Unavailable):
    """A bound was reached: no free database connection, a lock or a statement took too long."""

    code: ClassVar[ErrorCode] = ErrorCode.BUSY


class StorageUnavailable(Unavailable):
    """Object storage is full, not writable or unreachable."""

    code: ClassVar[ErrorCode] = ErrorCode.STORAGE_UNAVAILABLE


class DatabaseUnavailable(Unavailable):
    """PostgreSQL cannot be reached or dropped the connection."""

    code: ClassVar[ErrorCode] = ErrorCode.DATABASE_UNAVAILABLE


@dataclass
class ProblemList:
    """Collects every problem of a request so they are reported together."""

    problems: list[Problem] = field(default_factory=list)

    def add(
        self,
        code: ErrorCode,
        message: str,
        *,
        field: str | None = None,
        conversation_ids: Sequence[UUID] = (),
    ) -> None:
        self.problems.append(Problem(code, message, field, tuple(conversation_ids)))

    def raise_if_any(self, summary: str) -> None:
        if self.problems:
            raise InvalidInput(summary, problems=self.problems)
