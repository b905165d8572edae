"""The closed set of errors a user can act on, each with a stable code.

Mapped once to GraphQL (`userErrors` in mutation payloads, `extensions.code` elsewhere) and
once to REST status codes. Anything else is a bug and is masked before it reaches a client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request."""

    code: str
    message: str
    field: str | None = None
    conversation_ids: tuple[UUID, ...] = ()


class UserError(Exception):
    """A request the server refuses for a reason the user can fix."""

    code = "BAD_USER_INPUT"

    def __init__(self, message: str, *, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems: tuple[Problem, ...] = tuple(problems) or (Problem(self.code, message),)

    @property
    def extensions(self) -> dict[str, Any]:
        # graphql-core copies an exception's `extensions` into the error it reports.
        return {"code": self.code}


class InvalidInput(UserError):
    """The request itself is malformed or breaks a rule."""

    code = "BAD_USER_INPUT"


class NotFound(UserError):
    """The requested object does not exist."""

    code = "NOT_FOUND"


class Conflict(UserError):
    """The request clashes with the current state (a name taken, a file archived)."""

    code = "CONFLICT"


class Unauthenticated(UserError):
    """No valid bearer token."""

    code = "UNAUTHENTICATED"


class Forbidden(UserError):
    """Authenticated, but not allowed to do this."""

    code = "FORBIDDEN"


class Unavailable(UserError):
    """A dependency is down or overloaded: nothing changed, and a retry later may succeed."""

    code = "SERVICE_UNAVAILABLE"

    def __init__(self, message: str, *, retry_after_seconds: int = 5) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds

    @property
    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, "retryAfter": self.retry_after_seconds}


class Busy(Unavailable):
    """A bound was reached: no free database connection, a lock or a statement took too long."""

    code = "BUSY"


class StorageUnavailable(Unavailable):
    """Object storage is full, not writable or unreachable."""

    code = "STORAGE_UNAVAILABLE"


class DatabaseUnavailable(Unavailable):
    """PostgreSQL cannot be reached or dropped the connection."""

    code = "DATABASE_UNAVAILABLE"


@dataclass
class ProblemList:
    """Collects every problem of a request so they are reported together."""

    problems: list[Problem] = field(default_factory=list)

    def add(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        conversation_ids: Sequence[UUID] = (),
    ) -> None:
        self.problems.append(Problem(code, message, field, tuple(conversation_ids)))

    def raise_if_any(self, summary: str) -> None:
        if self.problems:
            raise InvalidInput(summary, problems=self.problems)
