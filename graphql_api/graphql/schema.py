"""The Strawberry schema: limits on what a request may ask, masking of unexpected errors, and
logging in proportion: a client's mistake is one line, a bug is a traceback."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from functools import partial

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from ..config import Settings
from ..errors import ErrorCode, Unavailable, UserError
from ..failures import as_unavailable
from ..observability.graphql import ObserveOperation
from .context import Context
from .mutations import Mutation
from .queries import Query
from .scalars import SCALAR_MAP
from .subscriptions import Subscription
from .validation_cache import CachedValidation, ValidDocuments

log = logging.getLogger(__name__)

MASKED_MESSAGE = "Internal server error"


def _should_mask(error: GraphQLError) -> bool:
    # Syntax and validation errors have no original error; UserErrors are meant for the user.
    original = error.original_error
    return original is not None and not isinstance(original, UserError | GraphQLError)


class MaskUnexpectedErrors(MaskErrors):
    """Replaces bugs with a stable message and an error id; the details go to the log.

    Infrastructure failures are not bugs: they reach the client as the `Unavailable` error
    `failures.as_unavailable` makes of them, so it knows to retry.
    """

    def __init__(self) -> None:
        super().__init__(should_mask_error=_should_mask, error_message=MASKED_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        assert error.original_error is not None  # `_should_mask` lets no other error here
        unavailable = as_unavailable(error.original_error)
        if unavailable is not None:
            return _replaced(error, unavailable)
        error_id = uuid.uuid4().hex[:12]
        log.error(
            "error %s at %s",
            error_id,
            error.path,
            exc_info=error.original_error,
            extra={"error_id": error_id},
        )
        masked = super().anonymise_error(error)
        masked.extensions = {"code": ErrorCode.INTERNAL_SERVER_ERROR.value, "errorId": error_id}
        return masked


def _replaced(error: GraphQLError, unavailable: Unavailable) -> GraphQLError:
    return GraphQLError(
        unavailable.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=unavailable,
        extensions=unavailable.extensions,
    )


class RecordOperationType(SchemaExtension):
    """Tells the request's context which kind of operation ran (the view caches queries only),
    and trusts a query's document for the compiled path once it passed validation."""

    def on_operation(self) -> Iterator[None]:
        yield
        execution = self.execution_context
        context = execution.context
        # No document when parsing failed (e.g. past the token limit): nothing to record.
        if not isinstance(context, Context) or execution.graphql_document is None:
            return
        context.operation_type = execution.operation_type
        if (
            context.compiled is not None
            and execution.query is not None
            and not execution.pre_execution_errors
            and execution.operation_type is OperationType.QUERY
        ):
            context.compiled.trust(execution.query, execution.graphql_document)


class _Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Strawberry logs every error at ERROR with its traceback, a bad token included.
        for error in errors:
            _log(error)


def _log(error: GraphQLError) -> None:
    """One line for what the client did or what is unavailable; bugs are logged when masked."""
    original = error.original_error
    unavailable = as_unavailable(original) if original is not None else None
    where = "/".join(map(str, error.path or ())) or "-"
    if unavailable is not None:
        cause = original if original is not unavailable else unavailable.__cause__
        log.warning(
            "%s at %s: %s%s", unavailable.code, where, unavailable.message, _describe(cause)
        )
    elif not _should_mask(error):
        code = (error.extensions or {}).get("code", "INVALID_OPERATION")
        # Messages can quote what the client sent: keep each entry on one line.
        log.info("%s at %s: %s", code, where, " ".join(error.message.splitlines()))


def _describe(cause: BaseException | None) -> str:
    return f" ({type(cause).__name__}: {cause})" if cause is not None else ""


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema with the configured limits (the defaults when `settings` is None).

    Extensions are passed as classes or factories: each request gets fresh instances.
    """
    limits: Settings | type[Settings] = settings or Settings  # class attributes: the defaults
    extensions: list[Callable[[], SchemaExtension]] = [
        ObserveOperation,  # first: it sees the errors as masked
        MaskUnexpectedErrors,
        RecordOperationType,
        partial(QueryDepthLimiter, max_depth=limits.graphql_max_depth),
        partial(MaxAliasesLimiter, max_alias_count=limits.graphql_max_aliases),
        partial(MaxTokensLimiter, max_token_count=limits.graphql_max_tokens),
        partial(CachedValidation, valid=ValidDocuments()),
    ]
    if not limits.graphql_introspection:
        extensions.append(DisableIntrospection)
    return _Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        extensions=extensions,
    )


def schema_sdl() -> str:
    return build_schema().as_str() + "\n"
