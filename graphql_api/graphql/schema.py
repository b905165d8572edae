"""The Strawberry schema, with unexpected errors masked before they reach a client."""

from __future__ import annotations

import logging
import uuid

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.schema.config import StrawberryConfig

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
        log.error("error %s in %s", error_id, error.path, exc_info=error.original_error)
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR", "errorId": error_id}
        return masked


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    config=StrawberryConfig(scalar_map=SCALAR_MAP),
    extensions=[MaskUnexpectedErrors],
)


def schema_sdl() -> str:
    return schema.as_str() + "\n"
