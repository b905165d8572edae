"""The product's limits and fixed facts, each defined once."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Final

# Per request.
MAX_CONVERSATIONS_PER_REQUEST: Final = 80
MAX_NAME_LENGTH: Final = 255
MAX_DESCRIPTION_LENGTH: Final = 5000
DEFAULT_PAGE_SIZE: Final = 20
MAX_PAGE_SIZE: Final = 100

# A download link is valid this long; an old version's objects are kept at least this long
# after it was replaced, so no link handed out ever breaks.
LINK_TTL_SECONDS: Final = 3600

# The file name of a conversation is `fp_conversation_<uuid>.json`, its dataset name the same
# without the extension.
DATASET_NAME_PREFIX: Final = "fp_conversation_"

TARGET_MODEL: Final = "claude-sonnet-4-5"
VERTICAL: Final = "financial_planning_consultant"

_CENTS: Final = Decimal("0.01")


def cents(value: Decimal) -> Decimal:
    """Rounded half up to two places: every number the product shows or writes (scores,
    percentages) is rounded this one way, so the file and the API always agree."""
    return value.quantize(_CENTS, rounding=ROUND_HALF_UP)


def percentage(part: int, whole: int) -> Decimal:
    """`part` of `whole` in percent, rounded like every other number; 0 for an empty whole."""
    return cents(Decimal(part * 100) / whole) if whole else Decimal(0)


def as_float(value: Decimal | None) -> float | None:
    """A stored decimal as the JSON number clients receive (GraphQL Float, REST numbers)."""
    return None if value is None else float(value)
