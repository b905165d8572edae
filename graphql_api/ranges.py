"""Checks on the bounds list filters take: each within its scale, the low one not above the
high one. Every problem of a filter is reported at once, in one `InvalidInput`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol, TypeVar

from .errors import InvalidInput, Problem

# Quality scores (of a conversation, or a file's average) are 0–5, as the columns' CHECKs say.
QUALITY_MIN = 0
QUALITY_MAX = 5


class _Comparable(Protocol):
    def __gt__(self, other: Any, /) -> bool: ...


C = TypeVar("C", bound=_Comparable)


class RangeChecks:
    def __init__(self) -> None:
        self._problems: list[Problem] = []

    def quality(self, value: float | None, field: str) -> Decimal | None:
        """A quality bound as the Decimal the columns compare with (4.0 shown as 4)."""
        if value is None:
            return None
        if not QUALITY_MIN <= value <= QUALITY_MAX:
            self._fail(
                field, f"{field} must be between {QUALITY_MIN} and {QUALITY_MAX}, got {value:g}"
            )
            return None
        return Decimal(repr(value)).normalize()

    def count(self, value: int | None, field: str) -> int | None:
        if value is not None and value < 0:
            self._fail(field, f"{field} must be 0 or more, got {value}")
            return None
        return value

    def ordered(self, low: C | None, high: C | None, low_field: str, high_field: str) -> None:
        if low is not None and high is not None and low > high:
            self._fail(low_field, f"{low_field} ({low}) is above {high_field} ({high})")

    def check(self) -> None:
        """Raise what was found, if anything."""
        if self._problems:
            message = "; ".join(p.message for p in self._problems)
            raise InvalidInput(message, problems=self._problems)

    def _fail(self, field: str, message: str) -> None:
        self._problems.append(Problem(InvalidInput.code, message, field))
