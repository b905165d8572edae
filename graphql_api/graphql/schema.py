"""The Strawberry schema: limits on what a request may ask, and masking of unexpected errors."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
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

from ..config import Settings
from ..errors import UserError
from .mutations import Mutation
from .queries import Query
from .scalars import SCALAR_MAP

log = logging.getLogger(__name__)

MASKED_MESSAGE = "Internal server error"


def _should_mask(error: GraphQLError) -> bool:
    # Syntax and validation errors have no original error; UserErrors are meant for the user.
    original = error.original_error
    return original is not None and not isinstance(original, UserError | GraphQLError)


class MaskUnexpectedErrors(MaskErrors):
    """Replaces bugs with a stable message and an error id; the details go to the log."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=_should_mask, error_message=MASKED_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        error_id = uuid.uuid4().hex[:12]
        log.error("error %s at %s", error_id, error.path, exc_info=error.original_error)
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR", "errorId": error_id}
        return masked


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema with the configured limits (the defaults when `settings` is None).

    Extensions are passed as classes or factories: each request gets fresh instances.
    """
    limits: Settings | type[Settings] = settings or Settings  # class attributes: the defaults
    extensions: list[Callable[[], SchemaExtension]] = [
        MaskUnexpectedErrors,
        partial(QueryDepthLimiter, max_depth=limits.graphql_max_depth),
        partial(MaxAliasesLimiter, max_alias_count=limits.graphql_max_aliases),
        partial(MaxTokensLimiter, max_token_count=limits.graphql_max_tokens),
    ]
    if not limits.graphql_introspection:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        extensions=extensions,
    )


def schema_sdl() -> str:
    return build_schema().as_str() + "\n"
