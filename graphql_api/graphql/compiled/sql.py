"""Building one SQL statement that returns a GraphQL response's `data` as JSON text."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..scalars import DATETIME_SQL_FORMAT

_PLACEHOLDER = re.compile(r"\$(\d+)")
# PostgreSQL's FUNC_MAX_ARGS is 100: json_build_object takes at most 50 key/value pairs.
MAX_PAIRS = 50


class NotCompilable(Exception):
    """The operation uses something the compiled path does not do; Strawberry runs it."""


@dataclass
class Statement:
    """The parameters of the statement being built, and fresh aliases for its subqueries."""

    params: list[object] = field(default_factory=list)
    _aliases: int = 0

    def param(self, value: object, cast: str) -> str:
        self.params.append(value)
        return f"${len(self.params)}::{cast}"

    def fragment(self, sql: str, values: Sequence[object]) -> str:
        """`sql` written with its own `$1..$n` for `values`, renumbered into this statement."""
        offset = len(self.params)
        self.params.extend(values)
        return _PLACEHOLDER.sub(lambda m: f"${int(m.group(1)) + offset}", sql)

    def alias(self, stem: str) -> str:
        self._aliases += 1
        return f"{stem}{self._aliases}"


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def json_object(pairs: Sequence[tuple[str, str]]) -> str:
    """A JSON object with `pairs` (key, SQL expression) in this order."""
    if len(pairs) > MAX_PAIRS:
        raise NotCompilable(f"more than {MAX_PAIRS} fields in one selection")
    return "json_build_object(" + ", ".join(f"{literal(k)}, {v}" for k, v in pairs) + ")"


def json_array(element: str, source: str, order: str) -> str:
    """A JSON array of `element` over the rows of `source` (a FROM clause), `[]` when none."""
    return f"(SELECT coalesce(json_agg({element} ORDER BY {order}), '[]'::json) FROM {source})"


def timestamp(column: str) -> str:
    return f"to_char({column} AT TIME ZONE 'UTC', '{DATETIME_SQL_FORMAT}')"


def number(column: str) -> str:
    """A numeric column as the Float GraphQL sends (float8: same value as Python's float)."""
    return f"({column})::float8"


def percentage(part: str, whole: str) -> str:
    """`part` of `whole` in percent, rounded half up to 2 places, 0 for an empty whole, as
    `domain.limits.percentage` does."""
    return f"(CASE WHEN {whole} = 0 THEN 0 ELSE round(({part})::numeric * 100 / ({whole}), 2) END)::float8"


def enum_name(column: str) -> str:
    """A stored value (`seed_dataset`) as its GraphQL enum value (`SEED_DATASET`)."""
    return f"upper({column})"


def list_cursor(sort_at: str, id_: str) -> str:
    """`pagination.Cursor(sort_at, id).encode()`, in SQL."""
    micros = f"(extract(epoch FROM {sort_at}) * 1000000)::bigint"
    return _base64url(f"'t:' || {micros} || ':' || ({id_})::text")


def position_cursor(position: str) -> str:
    """`pagination.Cursor(None, None, position).encode()`, in SQL."""
    return _base64url(f"'p:' || ({position})::text")


def _base64url(text: str) -> str:
    # encode() wraps lines every 76 characters and pads; the cursor is unwrapped and unpadded.
    return rf"rtrim(translate(encode(convert_to({text}, 'UTF8'), 'base64'), E'+/\n', '-_'), '=')"
