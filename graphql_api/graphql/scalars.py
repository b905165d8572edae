"""Custom scalars, registered through `StrawberryConfig(scalar_map=...)`.

Dates and times have one exact text form each, so typed clients can map them (`@specifiedBy`)
and the compiled read path writes byte for byte what the resolvers write.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NewType, NoReturn

import strawberry
from graphql import GraphQLError
from strawberry.file_uploads import Upload
from strawberry.types.scalar import ScalarDefinition

BigInt = NewType("BigInt", int)

RFC_3339 = "https://datatracker.ietf.org/doc/html/rfc3339"
# JSON numbers, and why integers up to 2^53 are the ones every client reads exactly.
RFC_8259_NUMBERS = "https://datatracker.ietf.org/doc/html/rfc8259#section-6"
MULTIPART_REQUEST_SPEC = "https://github.com/jaydenseric/graphql-multipart-request-spec"
# What PostgreSQL's to_char writes for the same instant: the compiled read path uses it.
DATETIME_SQL_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'


def format_datetime(value: dt.datetime) -> str:
    """RFC 3339 in UTC with microseconds: 2026-12-01T22:01:08.123456Z."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# A bad value is the client's mistake: a GraphQLError (unlike other exceptions, which the
# error masking takes for bugs) reaches it as BAD_USER_INPUT, whether literal or variable.
def parse_datetime(value: Any) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise GraphQLError(f"{value!r} is not an RFC 3339 date-time")
    if moment.tzinfo is None:
        raise GraphQLError(f"{value!r} has no time zone (RFC 3339 needs one)")
    return moment


def parse_date(value: Any) -> dt.date:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else _not_a_date(value)
    except ValueError:
        return _not_a_date(value)


def _not_a_date(value: Any) -> NoReturn:
    raise GraphQLError(f"{value!r} is not an RFC 3339 full-date (YYYY-MM-DD)")


def format_date(value: dt.date) -> str:
    return value.isoformat()


SCALAR_MAP: dict[object, ScalarDefinition] = {
    BigInt: strawberry.scalar(
        name="BigInt",
        description=(
            "A whole number that may exceed 32 bits (byte sizes), sent as a JSON number; "
            "it stays below 2^53, so JavaScript's number holds it exactly."
        ),
        specified_by_url=RFC_8259_NUMBERS,
        serialize=int,
        parse_value=int,
    ),
    dt.datetime: strawberry.scalar(
        name="DateTime",
        description="An instant, RFC 3339 in UTC with microseconds: `2026-12-01T22:01:08.123456Z`.",
        specified_by_url=RFC_3339,
        serialize=format_datetime,
        parse_value=parse_datetime,
    ),
    dt.date: strawberry.scalar(
        name="Date",
        description="A calendar date, RFC 3339 full-date: `2026-12-01`.",
        specified_by_url=RFC_3339,
        serialize=format_date,
        parse_value=parse_date,
    ),
    # The value is what the view's multipart reader put in the variables (a `ReceivedFile`).
    Upload: strawberry.scalar(
        name="Upload",
        description="A file of a multipart request (the GraphQL multipart request spec): `null` "
        "in the `operations` variables, the file itself a part named in `map`.",
        specified_by_url=MULTIPART_REQUEST_SPEC,
        serialize=lambda value: None,
        parse_value=lambda value: value,
    ),
}
