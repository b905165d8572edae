"""WHERE clauses of list filters: one condition per filter a request gives, each with its own
parameters. The listings and the compiled read path run the same clause, so a filter is
written in SQL once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_PLACEHOLDER = re.compile(r"\$(\d+)")
LIKE_ESCAPE = "\\"


@dataclass
class Where:
    conditions: list[str] = field(default_factory=list)
    params: list[object] = field(default_factory=list)

    def add(self, condition: str, *values: object) -> None:
        """`condition` written with its own `$1..$n` for `values` (renumbered here)."""
        offset = len(self.params)
        self.params.extend(values)
        self.conditions.append(
            _PLACEHOLDER.sub(lambda m: f"${int(m.group(1)) + offset}", condition)
        )

    def param(self, value: object, cast: str) -> str:
        """A placeholder for `value` after the conditions' (for LIMIT and the like)."""
        self.params.append(value)
        return f"${len(self.params)}::{cast}"

    @property
    def sql(self) -> str:
        """`WHERE …`; `WHERE true` without conditions, so callers can always append `AND …`."""
        return "WHERE " + (" AND ".join(f"({c})" for c in self.conditions) or "true")

    def copy(self) -> Where:
        return Where(list(self.conditions), list(self.params))


def contains_pattern(text: str) -> str:
    """An ILIKE pattern matching `text` anywhere, its own `%`, `_` and `\\` taken literally."""
    escaped = text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
