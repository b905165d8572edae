"""Custom scalars, registered through `StrawberryConfig(scalar_map=...)`."""

from __future__ import annotations

from typing import NewType

import strawberry

BigInt = NewType("BigInt", int)

SCALAR_MAP = {
    BigInt: strawberry.scalar(
        name="BigInt",
        description="A whole number that may exceed 32 bits (byte sizes), sent as a JSON number.",
        serialize=int,
        parse_value=int,
    ),
}
