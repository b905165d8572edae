"""The GraphQL operation of a request, for its access line and its request metrics."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from .context import Operation, Outcome, record_operation

# What the schema's log calls an error without a code: a syntax or validation error.
INVALID_OPERATION = "INVALID_OPERATION"


class ObserveOperation(SchemaExtension):
    """Records the operation's name, type and outcome. Listed first, so its hook ends last:
    by then unexpected errors are masked and carry the code the client sees."""

    def on_operation(self) -> Iterator[None]:
        yield
        record_operation(operation_of(self.execution_context))


def operation_of(execution: ExecutionContext) -> Operation:
    result = execution.result
    errors = (result.errors if result is not None else None) or execution.pre_execution_errors
    codes = tuple(_code(error) for error in errors or ())
    outcome: Outcome = "ok"
    if codes:
        outcome = "error"
    elif result is not None and _has_user_errors(result.data):
        outcome = "user_errors"
    return Operation(execution.operation_name, _type(execution), outcome, codes)


def _type(execution: ExecutionContext) -> str | None:
    if execution.graphql_document is None:
        return None
    try:
        return execution.operation_type.value
    except Exception:  # an operation name the document does not define
        return None


def _code(error: GraphQLError) -> str:
    return str((error.extensions or {}).get("code", INVALID_OPERATION))


def _has_user_errors(data: Mapping[str, Any] | None) -> bool:
    """A mutation payload (a root field's object) that refused its input."""
    return any(
        isinstance(value, dict) and value.get("userErrors") for value in (data or {}).values()
    )
