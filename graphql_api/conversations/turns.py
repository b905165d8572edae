"""Checks across fields that a JSON Schema cannot express: turn numbers and turn counts.

Turn numbers order a conversation's pairs, so a repeated one blocks; gaps, a pair's
`conversation_turn` that differs from its `turn_number` and a `total_turns` that does not
count the pairs only warn.
"""

from __future__ import annotations

from typing import Any

from .issues import Issues, Path, show
from .schema import json_type

__all__ = ["check_turns"]


def check_turns(document: dict[str, Any], pairs: list[Any], issues: Issues) -> None:
    _check_turn_numbers(pairs, issues)
    _check_total_turns(document, len(pairs), issues)


def _turn_number(pair: Any) -> int | None:
    turn = pair.get("turn_number") if isinstance(pair, dict) else None
    if isinstance(turn, bool) or not isinstance(turn, int):
        return None
    return turn if turn >= 1 else None


def _check_turn_numbers(pairs: list[Any], issues: Issues) -> None:
    seen: dict[int, int] = {}
    for index, pair in enumerate(pairs):
        turn = _turn_number(pair)
        if turn is None:
            continue
        if turn in seen:
            detail = (
                f"is {turn}, already used by training_pairs[{seen[turn]}]; "
                "turn numbers must be unique"
            )
            issues.block("duplicate_turn_number", ("training_pairs", index, "turn_number"), detail)
        else:
            seen[turn] = index
        _check_conversation_turn(pair, turn, index, issues)
    turns = list(seen)
    if len(turns) == len(pairs) and turns != list(range(1, len(pairs) + 1)):
        detail = f"have turn numbers {show(turns)}, expected 1..{len(pairs)} in order"
        issues.warn("turn_sequence", ("training_pairs",), detail)


def _check_conversation_turn(pair: dict[str, Any], turn: int, index: int, issues: Issues) -> None:
    metadata = pair.get("training_metadata")
    declared = metadata.get("conversation_turn") if isinstance(metadata, dict) else None
    if json_type(declared) == "integer" and declared != turn:
        path: Path = ("training_pairs", index, "training_metadata", "conversation_turn")
        issues.warn("inconsistent_value", path, "differs from the pair's turn_number")


def _check_total_turns(document: dict[str, Any], pair_count: int, issues: Issues) -> None:
    metadata = document.get("dataset_metadata")
    declared = metadata.get("total_turns") if isinstance(metadata, dict) else None
    if json_type(declared) == "integer" and declared != pair_count:
        detail = f"is {declared} but the file has {pair_count} training pairs"
        issues.warn("inconsistent_value", ("dataset_metadata", "total_turns"), detail)
