"""The request being handled, for everything that logs or measures while it runs.

A context variable: tasks started while handling a request (DataLoader batches, uploads)
inherit it, so their log lines carry the request's id too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

from starlette.types import Scope

from ..authentication import Caller

# ok: no errors; user_errors: a mutation refused its input (`userErrors`); error: `errors`.
Outcome = Literal["ok", "user_errors", "error"]


@dataclass(frozen=True)
class Operation:
    """What a GraphQL request ran and how it ended."""

    name: str | None
    type: str | None  # "query", "mutation", "subscription"; None when it did not parse
    outcome: Outcome
    error_codes: tuple[str, ...] = ()


@dataclass
class RequestInfo:
    request_id: str
    scope: Scope
    operation: Operation | None = None

    @property
    def user_id(self) -> str | None:
        """The caller once authentication has run (it sets the scope's user), else None."""
        user = self.scope.get("user")
        if isinstance(user, Caller) and user.viewer is not None:
            return str(user.viewer.user_id)
        return None


_current: ContextVar[RequestInfo | None] = ContextVar("request", default=None)


def current_request() -> RequestInfo | None:
    return _current.get()


@contextmanager
def handling(info: RequestInfo) -> Iterator[RequestInfo]:
    token = _current.set(info)
    try:
        yield info
    finally:
        _current.reset(token)


def record_operation(operation: Operation | None) -> None:
    info = _current.get()
    if info is not None and operation is not None:
        info.operation = operation


def current_operation() -> Operation | None:
    info = _current.get()
    return info.operation if info is not None else None
