"""What the schema's verdicts mean for an import: which departures block, which warn.

Real files do not obey every closed enum of the schema, so only what makes a file unusable or
unstorable blocks: a wrong type, a missing or empty `training_pairs`, a pair without
`turn_number`, `system_prompt` or `current_user_input`, a turn number below 1 and a quality
score outside 1-5. Everything else (enum drift, unknown and missing keys, lengths, formats,
other ranges) is a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from .issues import Issues, a, show
from .schema import CONVERSATION, Node, Violation, json_type, walk

__all__ = ["validate"]

# A violation's path with every array index as "*": the policy does not depend on indices.
_Pattern = tuple[str, ...]

_PAIRS: Final = ("training_pairs",)
_PAIR: Final = ("training_pairs", "*")
# Without these a pair is not a training example.
_STRUCTURAL: Final = frozenset(
    {(*_PAIR, "turn_number"), (*_PAIR, "system_prompt"), (*_PAIR, "current_user_input")}
)
_TRAINING_METADATA: Final = (*_PAIR, "training_metadata")
_INPUT_PARAMETERS: Final = ("input_parameters",)
# Checked by `identity`, which knows what a bad uuid there means.
_DATASET_NAME: Final = ("dataset_metadata", "dataset_name")


def validate(document: dict[str, Any], issues: Issues) -> None:
    """Record the schema violations of a parsed JSON object as blockers and warnings."""
    found: list[Violation] = []
    walk(document, CONVERSATION, (), found)
    for violation in found:
        pattern = tuple("*" if isinstance(seg, int) else seg for seg in violation.path)
        _HANDLERS[violation.keyword](violation, pattern, issues)


def _expected(node: Node) -> str:
    text = " or ".join(a(kind) for kind in node.types)
    if node.minimum is not None and node.maximum is None:
        text += f" >= {node.minimum:g}"
    return text


def _wrong_type(found: Violation, pattern: _Pattern, issues: Issues) -> None:
    detail = f"is {a(json_type(found.value))}, expected {_expected(found.node)}"
    issues.block("wrong_type", found.path, detail)


def _missing(found: Violation, pattern: _Pattern, issues: Issues) -> None:
    if pattern == _PAIRS:
        issues.block("missing_training_pairs", found.path, "is missing")
    elif pattern in _STRUCTURAL:
        detail = f"is missing; every training pair needs {_expected(found.node)}"
        issues.block("missing_field", found.path, detail)
    elif found.node.v4_addition:
        detail = "is missing (a v4 addition that older files lack)"
        issues.warn("missing_optional_v4_key", found.path, detail)
    else:
        issues.warn("missing_field", found.path, "is missing (required by the v4 schema)")


def _unknown(found: Violation, pattern: _Pattern, issues: Issues) -> None:
    if pattern != _INPUT_PARAMETERS:
        issues.warn("unknown_key", found.path, "is not a key of the v4 schema (kept as is)")
    elif isinstance(found.value, dict):
        detail = "is not a key of the v4 schema (kept as is; its keys are used for scaffolding)"
        issues.warn("unknown_key", found.path, detail)
    else:
        kind = a(json_type(found.value))
        detail = f"is {kind}, expected an object; it is ignored for scaffolding"
        issues.warn("wrong_type", found.path, detail)


def _enum(found: Violation, pattern: _Pattern, issues: Issues) -> None:
    allowed = ", ".join(str(value) for value in found.node.enum or ())
    detail = f"is {show(found.value)}, not one of the schema values ({allowed})"
    issues.warn("enum_drift", found.path, detail)


def _const(found: Violation, pattern: _Pattern, issues: Issues) -> None:
    detail = f"is {show(found.value)}, expected {show(found.node.const)}"
    issues.warn("unexpected_value", found.path, detail)


def _min_length(found: Violation, pattern: _Pattern, issues: Issues) -> None:
    minimum = found.node.min_length
    detail = f"is {len(found.value)} characters long, the schema expects at least {minimum}"
    issues.warn("too_short", found.path, detail)


def _min_items(found: Violation, pattern: _Pattern, issues: Issues) -> None:
    if pattern == _PAIRS:
        detail = "is empty, a conversation needs at least one pair"
        issues.block("empty_training_pairs", found.path, detail)
        return
    count, minimum = len(found.value), found.node.min_items
    detail = f"has {count} items, the schema expects at least {minimum}"
    issues.warn("too_short", found.path, detail)


def _pattern(found: Violation, pattern: _Pattern, issues: Issues) -> None:
    if pattern == _DATASET_NAME or found.node.pattern is None:
        return
    detail = f"is {show(found.value)}, not of the form {found.node.pattern.pattern}"
    issues.warn("bad_format", found.path, detail)


def _format(found: Violation, pattern: _Pattern, issues: Issues) -> None:
    detail = f"is {show(found.value)}, expected an ISO date (YYYY-MM-DD)"
    issues.warn("bad_format", found.path, detail)


def _range(found: Violation, pattern: _Pattern, issues: Issues) -> None:
    node, value = found.node, show(found.value)
    if node.maximum is None:
        detail = f"is {value}, below the schema minimum of {node.minimum:g}"
    elif node.minimum is None:
        detail = f"is {value}, above the schema maximum of {node.maximum:g}"
    else:
        detail = f"is {value}, outside the schema range {node.minimum:g}–{node.maximum:g}"
    reason = _blocking_range(pattern)
    if reason:
        issues.block("out_of_range", found.path, f"{detail} ({reason})")
    else:
        issues.warn("out_of_range", found.path, detail)


def _blocking_range(pattern: _Pattern) -> str | None:
    if pattern == (*_PAIR, "turn_number"):
        return "turns are numbered from 1"
    # Summed into the stored statistics and averaged into numeric(3,2) columns checked to 0-5.
    if pattern[:3] == _TRAINING_METADATA and pattern[3:4] in (
        ("quality_score",),
        ("quality_criteria",),
    ):
        return "quality scores are averaged into stored statistics"
    return None


_HANDLERS: Final[dict[str, Callable[[Violation, _Pattern, Issues], None]]] = {
    "type": _wrong_type,
    "required": _missing,
    "additionalProperties": _unknown,
    "enum": _enum,
    "const": _const,
    "minLength": _min_length,
    "minItems": _min_items,
    "pattern": _pattern,
    "format": _format,
    "minimum": _range,
    "maximum": _range,
}
