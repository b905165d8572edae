"""Analysis of one enriched conversation file (brightrun individual v4).

Pure: the raw bytes of one file in, a frozen `ConversationAnalysis` out (validation report,
conversation id, scaffolding, quality scores and per-conversation statistics). No I/O.

Real files do not obey every closed enum of the schema, so only structural problems block an
import; drift (enum values, unknown keys, missing v4 keys, ranges) becomes warnings, and a
warning repeated across pairs is reported once with the number of pairs it affects.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from fractions import Fraction
from typing import Any, Final
from uuid import UUID

__all__ = [
    "CONVERSATION_ID_NAMESPACE",
    "MAX_ISSUES",
    "SCHEMA_NAME",
    "ConversationAnalysis",
    "ConversationStats",
    "Issue",
    "Scaffolding",
    "ValidationReport",
    "analyze",
    "canonical_json",
    "conversation_id_from",
    "derive_conversation_id",
    "tier_for",
]

SCHEMA_NAME: Final = "brightrun-individual-v4"
MAX_ISSUES: Final = 100
# Fixed forever: changing it would change the id of every file without a dataset_name.
# (uuid5(NAMESPACE_URL, "https://brightrun.ai/schemas/emotional-lora-individual-v4.0.json"))
CONVERSATION_ID_NAMESPACE: Final = UUID("b7c2a29c-9fb1-50fc-9618-ed8065a26e3a")
DATASET_NAME_PREFIX: Final = "fp_conversation_"

_TIERS: Final = (
    (Decimal("4.5"), "seed_dataset"),
    (Decimal("3.5"), "production"),
    (Decimal("2.5"), "experimental"),
)
_CRITERIA: Final = (
    "empathy_score",
    "clarity_score",
    "appropriateness_score",
    "brand_voice_alignment",
)
# Sums must be exact whatever the magnitudes (min/max/avg over a training file add these up).
_EXACT: Final = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
_UUID_RE: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_DATE_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_VERSION_RE: Final = re.compile(r"\d+\.\d+\.\d+")
_TEMPLATE_RE: Final = re.compile(r"\s*generated via template:\s*(.*?)\s*", re.I | re.S)
_IDENT_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Only a \u escape can put U+0000 or a lone surrogate into a parsed string.
_SUSPECT_ESCAPE_RE: Final = re.compile(r"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


# --------------------------------------------------------------------------- public types


@dataclass(frozen=True)
class Issue:
    code: str
    path: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "path": self.path, "message": self.message}


@dataclass(frozen=True)
class ValidationReport:
    blockers: tuple[Issue, ...]
    warnings: tuple[Issue, ...]

    @property
    def ok(self) -> bool:
        return not self.blockers

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.ok,
            "blockers": [issue.to_json() for issue in self.blockers],
            "warnings": [issue.to_json() for issue in self.warnings],
            "schema": SCHEMA_NAME,
        }


@dataclass(frozen=True)
class Scaffolding:
    persona_key: str | None = None
    persona_name: str | None = None
    emotional_arc_key: str | None = None
    emotional_arc_name: str | None = None
    training_topic_key: str | None = None
    training_topic_name: str | None = None


@dataclass(frozen=True)
class ConversationStats:
    pair_count: int = 0
    trainable_pair_count: int = 0
    quality_sum: Decimal = Decimal(0)
    quality_min: Decimal | None = None
    quality_max: Decimal | None = None
    quality_count: int = 0
    human_reviewed_count: int = 0


@dataclass(frozen=True)
class ConversationAnalysis:
    report: ValidationReport
    conversation_id: UUID | None
    dataset_name: str | None
    title: str | None
    created_date: date | None
    total_turns: int
    scaffolding: Scaffolding
    quality_score: Decimal | None
    empathy_score: Decimal | None
    clarity_score: Decimal | None
    appropriateness_score: Decimal | None
    brand_voice_alignment: Decimal | None
    tier: str
    consultant_profile: dict[str, Any] | None
    stats: ConversationStats
    sha256: str


# --------------------------------------------------------------------------- issue collection

_Path = tuple[str | int, ...]


def _render(path: _Path, wildcard: bool = False) -> str:
    if not path:
        return "$"
    out: list[str] = []
    for seg in path:
        if isinstance(seg, int):
            out.append("[*]" if wildcard else f"[{seg}]")
        elif _IDENT_RE.fullmatch(seg):
            out.append(f".{seg}" if out else seg)
        else:
            out.append(f"[{_show(seg)}]")
    return "".join(out)


def _subject(rendered: str) -> str:
    return "The document" if rendered == "$" else rendered


def _show(value: Any, limit: int = 80) -> str:
    """A JSON rendering of a value that is safe to store as text (no NUL, no lone surrogate)."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass
class _Finding:
    code: str
    path: _Path
    detail: str
    count: int = 0
    pairs: set[int] = field(default_factory=set)


class _Issues:
    """Collects blockers (each one reported) and warnings (repeats folded into one)."""

    def __init__(self) -> None:
        self.blockers: list[Issue] = []
        self.dropped_blockers = 0
        self.pair_total = 0
        self._warnings: dict[tuple[str, str, str], _Finding] = {}

    def block(self, code: str, path: _Path, detail: str) -> None:
        if len(self.blockers) >= MAX_ISSUES:
            self.dropped_blockers += 1
            return
        rendered = _render(path)
        self.blockers.append(Issue(code, rendered, f"{_subject(rendered)} {detail}."))

    def warn(self, code: str, path: _Path, detail: str) -> None:
        key = (code, _render(path, wildcard=True), detail)
        finding = self._warnings.setdefault(key, _Finding(code, path, detail))
        finding.count += 1
        if len(path) > 1 and path[0] == "training_pairs" and isinstance(path[1], int):
            finding.pairs.add(path[1])

    def report(self) -> ValidationReport:
        blockers = list(self.blockers)
        if self.dropped_blockers:
            blockers.append(_too_many(self.dropped_blockers, "blockers"))
        warnings = [self._fold(f) for f in self._warnings.values()]
        if len(warnings) > MAX_ISSUES:
            warnings = [*warnings[:MAX_ISSUES], _too_many(len(warnings) - MAX_ISSUES, "warnings")]
        return ValidationReport(tuple(blockers), tuple(warnings))

    def _fold(self, finding: _Finding) -> Issue:
        if finding.count == 1:
            rendered = _render(finding.path)
            return Issue(finding.code, rendered, f"{_subject(rendered)} {finding.detail}.")
        rendered = _render(finding.path, wildcard=True)
        return Issue(
            finding.code,
            rendered,
            f"{_subject(rendered)} {finding.detail} ({self._where(finding)}).",
        )

    def _where(self, finding: _Finding) -> str:
        if not finding.pairs:
            return f"{finding.count} times"
        pairs = f"in {len(finding.pairs)} of {self.pair_total} training pairs"
        return pairs if finding.count == len(finding.pairs) else f"{finding.count} times {pairs}"


def _too_many(count: int, kind: str) -> Issue:
    return Issue("too_many_issues", "$", f"{count} more {kind} were found and not listed.")


# --------------------------------------------------------------------------- schema (as code)

_NO_CONST: Final = object()


@dataclass(frozen=True)
class _Field:
    """One field of the v4 schema. `need`: block | warn | v4 | optional (when missing)."""

    types: tuple[str, ...]
    need: str = "warn"
    enum: tuple[str, ...] = ()
    const: Any = _NO_CONST
    minimum: float | None = None
    maximum: float | None = None
    # A number outside minimum/maximum blocks (instead of warning) when `blocking` says why.
    blocking: str | None = None
    min_length: int | None = None
    fmt: str | None = None
    fields: Mapping[str, _Field] | None = None
    items: _Field | None = None


def _str(**kw: Any) -> _Field:
    return _Field(("string",), **kw)


def _int(minimum: int, **kw: Any) -> _Field:
    return _Field(("integer",), minimum=minimum, **kw)


def _num(lo: float, hi: float, **kw: Any) -> _Field:
    return _Field(("number",), minimum=lo, maximum=hi, **kw)


def _obj(fields: Mapping[str, _Field], **kw: Any) -> _Field:
    return _Field(("object",), fields=fields, **kw)


def _arr(items: _Field, **kw: Any) -> _Field:
    return _Field(("array",), items=items, **kw)


_BOOL: Final = _Field(("boolean",))
_TEXT: Final = _str()
# Averaged into numeric(3,2) columns checked to 0..5, so a score outside 1-5 cannot be stored.
_SCORE: Final = _num(1, 5, blocking="quality scores are averaged into stored statistics")
_UNIT: Final = _num(0, 1)

_HISTORY_TURN: Final = _obj(
    {
        "turn": _int(1),
        "role": _str(enum=("user", "assistant")),
        "content": _TEXT,
        "emotional_state": _obj(
            {"primary": _TEXT, "secondary": _str(need="optional"), "intensity": _UNIT}
        ),
    }
)

_CONVERSATION_METADATA: Final = _obj(
    {
        "client_persona": _TEXT,
        "persona_archetype": _str(
            need="v4", enum=("pragmatic_optimist", "anxious_planner", "overwhelmed_avoider")
        ),
        "client_background": _TEXT,
        "emotional_arc": _str(need="v4"),
        "emotional_arc_key": _str(
            need="v4",
            enum=(
                "confusion_to_clarity",
                "shame_to_acceptance",
                "fear_to_confidence",
                "overwhelm_to_empowerment",
            ),
        ),
        "training_topic": _str(need="v4"),
        "training_topic_key": _str(need="v4"),
        "session_context": _TEXT,
        "conversation_phase": _str(
            enum=(
                "initial_opportunity_exploration",
                "initial_shame_revelation",
                "initial_crisis_disclosure",
                "exploring_deeper_concern",
                "practical_implementation",
                "commitment_and_closure",
            )
        ),
        "expected_outcome": _TEXT,
    }
)

_EMOTIONAL_CONTEXT: Final = _obj(
    {
        "detected_emotions": _obj(
            {
                "primary": _TEXT,
                "primary_confidence": _UNIT,
                "secondary": _str(need="optional"),
                "secondary_confidence": _num(0, 1, need="optional"),
                "intensity": _UNIT,
                "valence": _str(enum=("positive", "negative", "mixed")),
            }
        )
    }
)

_TRAINING_METADATA: Final = _obj(
    {
        "difficulty_level": _TEXT,
        "key_learning_objective": _TEXT,
        "demonstrates_skills": _arr(_TEXT),
        "conversation_turn": _int(1),
        "emotional_progression_target": _TEXT,
        "quality_score": _SCORE,
        "quality_criteria": _obj({name: _SCORE for name in _CRITERIA}),
        "human_reviewed": _BOOL,
        "reviewer_notes": _Field(("string", "null")),
        "use_as_seed_example": _BOOL,
        "generate_variations_count": _int(0),
    }
)

_TRAINING_PAIR: Final = _obj(
    {
        "id": _TEXT,
        "conversation_id": _TEXT,
        "turn_number": _int(1, need="block", blocking="turns are numbered from 1"),
        "conversation_metadata": _CONVERSATION_METADATA,
        "system_prompt": _str(need="block", min_length=100),
        "conversation_history": _arr(_HISTORY_TURN),
        "current_user_input": _str(need="block", min_length=1),
        "emotional_context": _EMOTIONAL_CONTEXT,
        "target_response": _Field(("string", "null")),
        "training_metadata": _TRAINING_METADATA,
    }
)

_DATASET_METADATA: Final = _obj(
    {
        # Its fp_conversation_<uuid> form is checked by _resolve_id (a bad uuid blocks).
        "dataset_name": _TEXT,
        "version": _str(fmt="version"),
        "created_date": _str(fmt="date"),
        "vertical": _str(const="financial_planning_consultant"),
        "consultant_persona": _TEXT,
        "target_use": _str(const="LoRA fine-tuning for emotionally intelligent chatbot"),
        "conversation_source": _str(
            enum=("synthetic_platform_generated", "synthetic_expert_authored", "real_anonymized")
        ),
        "quality_tier": _str(enum=("seed_dataset", "production", "experimental", "rejected")),
        "total_conversations": _int(1, const=1),
        "total_turns": _int(1),
        "notes": _TEXT,
    }
)

_CONSULTANT_PROFILE: Final = _obj(
    {
        "name": _TEXT,
        "business": _TEXT,
        "expertise": _TEXT,
        "years_experience": _int(0),
        "core_philosophy": _obj({f"principle_{i}": _TEXT for i in range(1, 6)}),
        "communication_style": _obj(
            {
                "tone": _TEXT,
                "techniques": _arr(_TEXT, min_length=1),
                "avoid": _arr(_TEXT, min_length=1),
            }
        ),
    }
)

# training_pairs is checked by _check_pairs; input_parameters is not in the schema.
_TOP_LEVEL: Final = {
    "dataset_metadata": _DATASET_METADATA,
    "consultant_profile": _CONSULTANT_PROFILE,
}


# --------------------------------------------------------------------------- validation walk


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _type_ok(kind: str, types: Sequence[str]) -> bool:
    return kind in types or (kind == "integer" and "number" in types)


def _a(kind: str) -> str:
    return "null" if kind == "null" else ("an " if kind[0] in "aeiou" else "a ") + kind


def _expected(spec: _Field) -> str:
    text = " or ".join(_a(t) for t in spec.types)
    if spec.blocking and spec.minimum is not None and spec.maximum is None:
        text += f" >= {spec.minimum}"
    return text


def _check(value: Any, spec: _Field, path: _Path, issues: _Issues) -> None:
    kind = _json_type(value)
    if not _type_ok(kind, spec.types):
        issues.block("wrong_type", path, f"is {_a(kind)}, expected {_expected(spec)}")
    elif kind == "object":
        _check_object(value, spec, path, issues)
    elif kind == "array":
        _check_array(value, spec, path, issues)
    elif kind == "string":
        _check_string(value, spec, path, issues)
    elif kind in ("integer", "number"):
        _check_number(value, spec, path, issues)


def _check_object(value: dict[str, Any], spec: _Field, path: _Path, issues: _Issues) -> None:
    fields = spec.fields or {}
    for name, child in fields.items():
        if name in value:
            _check(value[name], child, (*path, name), issues)
        else:
            _missing(child, (*path, name), issues)
    for name in value:
        if name not in fields:
            issues.warn("unknown_key", (*path, name), "is not a key of the v4 schema (kept as is)")


def _missing(spec: _Field, path: _Path, issues: _Issues) -> None:
    if spec.need == "block":
        issues.block(
            "missing_field", path, f"is missing; every training pair needs {_expected(spec)}"
        )
    elif spec.need == "warn":
        issues.warn("missing_field", path, "is missing (required by the v4 schema)")
    elif spec.need == "v4":
        issues.warn(
            "missing_optional_v4_key", path, "is missing (a v4 addition that older files lack)"
        )


def _check_array(value: list[Any], spec: _Field, path: _Path, issues: _Issues) -> None:
    if spec.min_length is not None and len(value) < spec.min_length:
        issues.warn(
            "too_short", path, f"is empty, the schema expects at least {spec.min_length} item"
        )
    if spec.items is not None:
        for index, item in enumerate(value):
            _check(item, spec.items, (*path, index), issues)


def _check_string(value: str, spec: _Field, path: _Path, issues: _Issues) -> None:
    if spec.enum and value not in spec.enum:
        allowed = ", ".join(spec.enum)
        issues.warn(
            "enum_drift", path, f"is {_show(value)}, not one of the schema values ({allowed})"
        )
    if spec.const is not _NO_CONST and value != spec.const:
        issues.warn("unexpected_value", path, f"is {_show(value)}, expected {_show(spec.const)}")
    if spec.min_length is not None and len(value) < spec.min_length:
        issues.warn(
            "too_short",
            path,
            f"is {len(value)} characters long, the schema expects at least {spec.min_length}",
        )
    if spec.fmt == "date" and _iso_date(value) is None:
        issues.warn("bad_format", path, f"is {_show(value)}, expected an ISO date (YYYY-MM-DD)")
    if spec.fmt == "version" and not _VERSION_RE.fullmatch(value):
        issues.warn("bad_format", path, f"is {_show(value)}, expected a version like 1.0.0")


def _check_number(value: float, spec: _Field, path: _Path, issues: _Issues) -> None:
    if spec.const is not _NO_CONST and value != spec.const:
        issues.warn("unexpected_value", path, f"is {_show(value)}, expected {_show(spec.const)}")
    if not _outside(value, spec):
        return
    if spec.blocking:
        issues.block("out_of_range", path, f"{_range_detail(value, spec)} ({spec.blocking})")
    else:
        issues.warn("out_of_range", path, _range_detail(value, spec))


def _outside(value: float, spec: _Field) -> bool:
    too_low = spec.minimum is not None and value < spec.minimum
    return too_low or (spec.maximum is not None and value > spec.maximum)


def _range_detail(value: float, spec: _Field) -> str:
    if spec.maximum is None:
        return f"is {_show(value)}, below the schema minimum of {spec.minimum:g}"
    return f"is {_show(value)}, outside the schema range {spec.minimum:g}–{spec.maximum:g}"


def _check_document(document: dict[str, Any], issues: _Issues) -> None:
    for name, spec in _TOP_LEVEL.items():
        if name in document:
            _check(document[name], spec, (name,), issues)
        else:
            _missing(spec, (name,), issues)
    _check_input_parameters(document, issues)
    for name in document:
        if name not in (*_TOP_LEVEL, "training_pairs", "input_parameters"):
            issues.warn("unknown_key", (name,), "is not a key of the v4 schema (kept as is)")
    _check_pairs(document, issues)


def _check_input_parameters(document: dict[str, Any], issues: _Issues) -> None:
    if "input_parameters" not in document:
        return
    value = document["input_parameters"]
    if isinstance(value, dict):
        detail = "is not a key of the v4 schema (kept as is; its keys are used for scaffolding)"
        issues.warn("unknown_key", ("input_parameters",), detail)
    else:
        detail = f"is {_a(_json_type(value))}, expected an object; it is ignored for scaffolding"
        issues.warn("wrong_type", ("input_parameters",), detail)


def _check_pairs(document: dict[str, Any], issues: _Issues) -> None:
    if "training_pairs" not in document:
        issues.block("missing_training_pairs", ("training_pairs",), "is missing")
        return
    pairs = document["training_pairs"]
    if not isinstance(pairs, list):
        kind = _a(_json_type(pairs))
        issues.block("wrong_type", ("training_pairs",), f"is {kind}, expected a non-empty array")
        return
    if not pairs:
        detail = "is empty, a conversation needs at least one pair"
        issues.block("empty_training_pairs", ("training_pairs",), detail)
        return
    issues.pair_total = len(pairs)
    for index, pair in enumerate(pairs):
        _check(pair, _TRAINING_PAIR, ("training_pairs", index), issues)
    _check_turns(pairs, issues)
    _check_total_turns(document, len(pairs), issues)


def _turn_number(pair: Any) -> int | None:
    turn = pair.get("turn_number") if isinstance(pair, dict) else None
    return turn if _json_type(turn) == "integer" and turn >= 1 else None


def _check_turns(pairs: list[Any], issues: _Issues) -> None:
    seen: dict[int, int] = {}
    for index, pair in enumerate(pairs):
        turn = _turn_number(pair)
        if turn is None:
            continue
        if turn in seen:
            detail = f"is {turn}, already used by training_pairs[{seen[turn]}]; turn numbers must be unique"
            issues.block("duplicate_turn_number", ("training_pairs", index, "turn_number"), detail)
        else:
            seen[turn] = index
        _check_conversation_turn(pair, turn, index, issues)
    turns = list(seen)
    if len(turns) == len(pairs) and turns != list(range(1, len(pairs) + 1)):
        shown = _show(turns)
        detail = f"have turn numbers {shown}, expected 1..{len(pairs)} in order"
        issues.warn("turn_sequence", ("training_pairs",), detail)


def _check_conversation_turn(pair: dict[str, Any], turn: int, index: int, issues: _Issues) -> None:
    metadata = pair.get("training_metadata")
    declared = metadata.get("conversation_turn") if isinstance(metadata, dict) else None
    if _json_type(declared) == "integer" and declared != turn:
        path: _Path = ("training_pairs", index, "training_metadata", "conversation_turn")
        issues.warn("inconsistent_value", path, "differs from the pair's turn_number")


def _check_total_turns(document: dict[str, Any], pair_count: int, issues: _Issues) -> None:
    metadata = document.get("dataset_metadata")
    declared = metadata.get("total_turns") if isinstance(metadata, dict) else None
    if _json_type(declared) == "integer" and declared != pair_count:
        detail = f"is {declared} but the file has {pair_count} training pairs"
        issues.warn("inconsistent_value", ("dataset_metadata", "total_turns"), detail)


def _check_strings(document: Any, issues: _Issues) -> None:
    """Block U+0000 and lone surrogates: PostgreSQL and UTF-8 output cannot carry them."""
    stack: list[tuple[Any, _Path]] = [(document, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                _check_text(key, (*path, key), issues, "key")
                stack.append((child, (*path, key)))
        elif isinstance(value, list):
            stack.extend((child, (*path, i)) for i, child in enumerate(value))
        elif isinstance(value, str):
            _check_text(value, path, issues, "value")


def _check_text(text: str, path: _Path, issues: _Issues, what: str) -> None:
    if "\x00" in text:
        issues.block("invalid_unicode", path, f"has a {what} containing U+0000 (NUL)")
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        issues.block("invalid_unicode", path, f"has a {what} containing an unpaired surrogate")


# --------------------------------------------------------------------------- parsing


class _UnsupportedNumber(ValueError):
    pass


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _UnsupportedNumber(text)
    return number


def _reject_constant(name: str) -> float:
    raise _UnsupportedNumber(name)


def _parse(raw: bytes, issues: _Issues) -> tuple[bool, Any]:
    """(parsed, document). Records a blocker and returns (False, None) when unreadable."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        issues.block("not_utf8", (), f"is not valid UTF-8 (byte {exc.start}: {exc.reason})")
        return False, None
    if text.startswith("\ufeff"):
        text = text[1:]
        issues.warn("byte_order_mark", (), "starts with a UTF-8 byte order mark (ignored)")
    duplicates: list[str] = []
    try:
        document = json.loads(
            text,
            parse_float=_finite_float,
            parse_constant=_reject_constant,
            object_pairs_hook=lambda pairs: _object(pairs, duplicates),
        )
    except _UnsupportedNumber as exc:
        detail = f"contains the number {_show(str(exc))}, which is not a finite JSON number"
        issues.block("unsupported_number", (), detail)
        return False, None
    except json.JSONDecodeError as exc:
        detail = f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        issues.block("not_json", (), detail)
        return False, None
    except (ValueError, RecursionError) as exc:
        issues.block("not_json", (), f"could not be parsed as JSON ({_show(str(exc))})")
        return False, None
    for key in duplicates:
        detail = f"has an object with the key {_show(key)} more than once; the last value was kept"
        issues.warn("duplicate_key", (), detail)
    if _SUSPECT_ESCAPE_RE.search(text):
        _check_strings(document, issues)
    return True, document


def _object(pairs: list[tuple[str, Any]], duplicates: list[str]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                duplicates.append(key)
            seen.add(key)
    return result


# --------------------------------------------------------------------------- identity


def _dataset_uuid(name: str) -> UUID | None:
    """The uuid of `fp_conversation_<uuid>`; None for other names; ValueError for a bad uuid."""
    if not name.startswith(DATASET_NAME_PREFIX):
        return None
    suffix = name[len(DATASET_NAME_PREFIX) :]
    if not _UUID_RE.fullmatch(suffix):
        raise ValueError(f"{_show(suffix)} after {DATASET_NAME_PREFIX} is not a uuid")
    return UUID(suffix)


def canonical_json(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def derive_conversation_id(document: Any) -> UUID:
    """uuid5(CONVERSATION_ID_NAMESPACE, canonical JSON): whitespace and key order don't matter."""
    # uuid5 spelled out so that a lone surrogate (a blocked file) cannot make it raise.
    data = canonical_json(document).encode("utf-8", "surrogatepass")
    digest = hashlib.sha1(CONVERSATION_ID_NAMESPACE.bytes + data).digest()
    return UUID(bytes=digest[:16], version=5)


def conversation_id_from(document: Mapping[str, Any], raw: bytes | None = None) -> UUID:
    """The dataset_name uuid, else an id derived from the parsed content.

    `raw` is accepted for callers that have it but unused: the derived id depends on the
    content, not on its formatting. Raises ValueError for a `fp_conversation_` name whose
    suffix is not a uuid.
    """
    name = _dataset_name(document)
    found = _dataset_uuid(name) if isinstance(name, str) else None
    return found if found is not None else derive_conversation_id(document)


def _dataset_name(document: Mapping[str, Any]) -> Any:
    metadata = document.get("dataset_metadata")
    return metadata.get("dataset_name") if isinstance(metadata, dict) else None


def _resolve_id(document: dict[str, Any], issues: _Issues) -> tuple[UUID | None, str | None]:
    """(conversation_id, dataset_name), recording issues about the name.

    dataset_name is only ever the canonical `fp_conversation_<uuid>`: nothing else from the
    file's name field is passed on (it could be anything, e.g. a path).
    """
    name = _dataset_name(document)
    path: _Path = ("dataset_metadata", "dataset_name")
    if isinstance(name, str):
        try:
            found = _dataset_uuid(name)
        except ValueError as exc:
            detail = f"is {_show(name)}: {exc}; expected {DATASET_NAME_PREFIX}<uuid>"
            issues.block("bad_dataset_name", path, detail)
            return None, None
        if found is not None:
            if name != name.lower():
                detail = "has an upper-case uuid; the lower-case canonical form is used"
                issues.warn("non_canonical_dataset_name", path, detail)
            return found, f"{DATASET_NAME_PREFIX}{found}"
        detail = f"is {_show(name)}, not {DATASET_NAME_PREFIX}<uuid>"
        issues.warn("bad_dataset_name", path, detail)
    derived = derive_conversation_id(document)
    detail = f"gives no {DATASET_NAME_PREFIX}<uuid>; the id {derived} was derived from the content"
    issues.warn("derived_conversation_id", path, detail)
    return derived, None


# --------------------------------------------------------------------------- scaffolding, title


def _text(*candidates: Any) -> str | None:
    for value in candidates:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _persona_name(client_persona: Any) -> str | None:
    # "David Chen - The Pragmatic Optimist" -> "David Chen", the form input_parameters uses.
    name = _text(client_persona)
    return _text(name.split(" - ", 1)[0]) if name else None


def _pairs(document: Mapping[str, Any]) -> list[Any]:
    pairs = document.get("training_pairs")
    return pairs if isinstance(pairs, list) else []


def _scaffolding(document: Mapping[str, Any]) -> Scaffolding:
    params = _as_dict(document.get("input_parameters"))
    pairs = _pairs(document)
    first = _as_dict(_as_dict(pairs[0]).get("conversation_metadata")) if pairs else {}
    return Scaffolding(
        persona_key=_text(params.get("persona_key"), first.get("persona_archetype")),
        persona_name=_text(params.get("persona_name"), _persona_name(first.get("client_persona"))),
        emotional_arc_key=_text(params.get("emotional_arc_key"), first.get("emotional_arc_key")),
        emotional_arc_name=_text(params.get("emotional_arc_name"), first.get("emotional_arc")),
        training_topic_key=_text(params.get("training_topic_key"), first.get("training_topic_key")),
        training_topic_name=_text(params.get("training_topic_name"), first.get("training_topic")),
    )


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _title(metadata: Mapping[str, Any], scaffolding: Scaffolding) -> str | None:
    notes = metadata.get("notes")
    match = _TEMPLATE_RE.fullmatch(notes) if isinstance(notes, str) else None
    if match and match.group(1):
        return match.group(1)
    parts = [p for p in (scaffolding.persona_name, scaffolding.training_topic_name) if p]
    return " - ".join(parts) or None


def _iso_date(value: Any) -> date | None:
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


# --------------------------------------------------------------------------- statistics


def _number(value: Any) -> Decimal | None:
    if _json_type(value) in ("integer", "number"):
        return Decimal(str(value))
    return None


def _metadata_numbers(pairs: list[Any], *keys: str) -> Iterator[Decimal | None]:
    for pair in pairs:
        value: Any = _as_dict(pair).get("training_metadata")
        for key in keys:
            value = _as_dict(value).get(key)
        yield _number(value)


def _stats(pairs: list[Any]) -> ConversationStats:
    scores = [q for q in _metadata_numbers(pairs, "quality_score") if q is not None]
    dicts = [pair for pair in pairs if isinstance(pair, dict)]
    reviewed = [_as_dict(p.get("training_metadata")).get("human_reviewed") is True for p in dicts]
    total = Decimal(0)
    for score in scores:
        total = _EXACT.add(total, score)
    return ConversationStats(
        pair_count=len(pairs),
        trainable_pair_count=sum(1 for p in dicts if p.get("target_response") is not None),
        quality_sum=total,
        quality_min=min(scores, default=None),
        quality_max=max(scores, default=None),
        quality_count=len(scores),
        human_reviewed_count=sum(reviewed),
    )


def _mean(values: Sequence[Decimal]) -> Decimal | None:
    """Exact mean rounded half up to 2 places (no intermediate rounding)."""
    if not values:
        return None
    exact = sum((Fraction(v) for v in values), Fraction(0)) / len(values)
    cents = math.floor(abs(exact) * 100 + Fraction(1, 2))
    sign = "-" if exact < 0 else ""
    return Decimal(f"{sign}{cents // 100}.{cents % 100:02d}")


def _criterion_mean(pairs: list[Any], name: str) -> Decimal | None:
    values = _metadata_numbers(pairs, "quality_criteria", name)
    return _mean([v for v in values if v is not None])


def tier_for(quality_score: Decimal | None) -> str:
    if quality_score is None:
        return "experimental"
    for floor, tier in _TIERS:
        if quality_score >= floor:
            return tier
    return "rejected"


# --------------------------------------------------------------------------- entry point


def analyze(raw: bytes) -> ConversationAnalysis:
    """Validate and summarise one enriched conversation file."""
    issues = _Issues()
    parsed, document = _parse(raw, issues)
    digest = hashlib.sha256(raw).hexdigest()
    if not parsed:
        return _empty(issues, digest)
    if not isinstance(document, dict):
        detail = f"is {_a(_json_type(document))}, expected a JSON object"
        issues.block("not_object", (), detail)
        return _empty(issues, digest)
    _check_document(document, issues)
    conversation_id, dataset_name = _resolve_id(document, issues)
    return _analysis(document, issues, digest, conversation_id, dataset_name)


def _analysis(
    document: dict[str, Any],
    issues: _Issues,
    digest: str,
    conversation_id: UUID | None,
    dataset_name: str | None,
) -> ConversationAnalysis:
    pairs = _pairs(document)
    metadata = _as_dict(document.get("dataset_metadata"))
    scaffolding = _scaffolding(document)
    stats = _stats(pairs)
    quality = _mean([q for q in _metadata_numbers(pairs, "quality_score") if q is not None])
    profile = document.get("consultant_profile")
    return ConversationAnalysis(
        report=issues.report(),
        conversation_id=conversation_id,
        dataset_name=dataset_name,
        title=_title(metadata, scaffolding),
        created_date=_iso_date(metadata.get("created_date")),
        total_turns=len(pairs),
        scaffolding=scaffolding,
        quality_score=quality,
        empathy_score=_criterion_mean(pairs, "empathy_score"),
        clarity_score=_criterion_mean(pairs, "clarity_score"),
        appropriateness_score=_criterion_mean(pairs, "appropriateness_score"),
        brand_voice_alignment=_criterion_mean(pairs, "brand_voice_alignment"),
        tier=tier_for(quality),
        consultant_profile=profile if isinstance(profile, dict) else None,
        stats=stats,
        sha256=digest,
    )


def _empty(issues: _Issues, digest: str) -> ConversationAnalysis:
    return ConversationAnalysis(
        report=issues.report(),
        conversation_id=None,
        dataset_name=None,
        title=None,
        created_date=None,
        total_turns=0,
        scaffolding=Scaffolding(),
        quality_score=None,
        empathy_score=None,
        clarity_score=None,
        appropriateness_score=None,
        brand_voice_alignment=None,
        tier=tier_for(None),
        consultant_profile=None,
        stats=ConversationStats(),
        sha256=digest,
    )
