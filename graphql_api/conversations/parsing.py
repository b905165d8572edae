"""Bytes to a JSON document: UTF-8 and JSON problems block, a BOM and duplicate keys warn."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from .issues import Issues, show

__all__ = ["Parsed", "parse"]


@dataclass(frozen=True)
class Parsed:
    text: str  # decoded, without a byte order mark
    document: Any


class _UnsupportedNumber(ValueError):
    pass


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _UnsupportedNumber(text)
    return number


def _reject_constant(name: str) -> float:
    raise _UnsupportedNumber(name)


def parse(raw: bytes, issues: Issues) -> Parsed | None:
    """The parsed document, or None when a blocker says why there is none."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        issues.block("not_utf8", (), f"is not valid UTF-8 (byte {exc.start}: {exc.reason})")
        return None
    if text.startswith("\ufeff"):
        text = text[1:]
        issues.warn("byte_order_mark", (), "starts with a UTF-8 byte order mark (ignored)")
    return _loads(text, issues)


def _loads(text: str, issues: Issues) -> Parsed | None:
    duplicates: list[str] = []
    try:
        document = json.loads(
            text,
            parse_float=_finite_float,
            parse_constant=_reject_constant,
            object_pairs_hook=lambda pairs: _object(pairs, duplicates),
        )
    except _UnsupportedNumber as exc:
        detail = f"contains the number {show(str(exc))}, which is not a finite JSON number"
        issues.block("unsupported_number", (), detail)
        return None
    except json.JSONDecodeError as exc:
        detail = f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        issues.block("not_json", (), detail)
        return None
    except (ValueError, RecursionError) as exc:
        issues.block("not_json", (), f"could not be parsed as JSON ({show(str(exc))})")
        return None
    for key in duplicates:
        detail = f"has an object with the key {show(key)} more than once; the last value was kept"
        issues.warn("duplicate_key", (), detail)
    return Parsed(text, document)


def _object(pairs: list[tuple[str, Any]], duplicates: list[str]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                duplicates.append(key)
            seen.add(key)
    return result
