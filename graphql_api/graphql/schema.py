"""The Strawberry schema."""

from __future__ import annotations

import strawberry
from strawberry.schema.config import StrawberryConfig

from .queries import Query
from .scalars import SCALAR_MAP

schema = strawberry.Schema(query=Query, config=StrawberryConfig(scalar_map=SCALAR_MAP))


def schema_sdl() -> str:
    return schema.as_str() + "\n"
