"""Checks on raw request values shared by the GraphQL and REST layers."""

from __future__ import annotations

from uuid import UUID

from .errors import InvalidInput


def parse_uuid(value: object, field: str) -> UUID:
    """`value` as a UUID, or an error naming the field and the bad value."""
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    raise InvalidInput(f"{field}: {value!r} is not a UUID")
