"""How the generated Python client reads and writes the API's custom scalars.

ariadne-codegen copies this file into the package it generates (`files_to_include` in
pyproject.toml's `[tool.ariadne-codegen]`); each scalar's `parse` runs before pydantic checks the
mapped type, so a value of the wrong shape fails loudly instead of being coerced.
"""

from __future__ import annotations

from datetime import date, datetime


def parse_bigint(value: object) -> int:
    """BigInt is a JSON number without a fraction (below 2^53)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"BigInt must be a whole JSON number, got {value!r}")
    return value


def serialize_bigint(value: int) -> int:
    return value


def parse_datetime(value: object) -> datetime:
    """DateTime is RFC 3339 with an offset (the server sends UTC, `Z`)."""
    if not isinstance(value, str):
        raise ValueError(f"DateTime must be an RFC 3339 string, got {value!r}")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"DateTime must carry an offset, got {value!r}")
    return parsed


def serialize_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("DateTime needs an aware datetime")
    return value.isoformat()


def parse_date(value: object) -> date:
    """Date is an RFC 3339 full-date, `2026-12-01`."""
    if not isinstance(value, str):
        raise ValueError(f"Date must be an RFC 3339 full-date string, got {value!r}")
    return date.fromisoformat(value)


def serialize_date(value: date) -> str:
    return value.isoformat()
