"""Checks on raw request values shared by the GraphQL and REST layers."""

from __future__ import annotations

from uuid import UUID

from .errors import ErrorCode, InvalidInput, Problem


def parse_uuid(value: object, field: str) -> UUID:
    """`value` as a UUID, or an error naming the field and the bad value."""
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    message = f"{field}: {value!r} is not a UUID"
    raise InvalidInput(message, problems=[Problem(ErrorCode.INVALID_ID, message, field)])


def unstorable(text: str) -> str | None:
    """Why PostgreSQL cannot store `text` in a text column, or None when it can.

    PostgreSQL's text never holds U+0000, and a lone surrogate (which JSON's "\\ud800" escape
    produces) has no UTF-8 encoding: both would fail in the database, after other work.
    """
    if "\x00" in text:
        return "must not contain NUL characters (U+0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must not contain unpaired surrogates (U+D800 to U+DFFF)"
    return None


def storable(value: str | None, field: str) -> str | None:
    """`value` unchanged, or an error naming the field when PostgreSQL cannot store it."""
    if value is not None and (reason := unstorable(value)):
        message = f"{field} {reason}"
        raise InvalidInput(message, problems=[Problem(InvalidInput.code, message, field)])
    return value


def json_type(value: object) -> str:
    """How a decoded JSON value is called in error messages."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"
