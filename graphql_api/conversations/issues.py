"""What an analysis finds: blockers (each reported) and warnings (repeats folded into one).

A warning repeated across training pairs is reported once, at a path with `[*]` for the
indices, saying how many of the file's pairs it affects.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "MAX_ISSUES",
    "SCHEMA_NAME",
    "Issue",
    "Issues",
    "Path",
    "ValidationReport",
    "a",
    "render",
    "show",
]

SCHEMA_NAME: Final = "brightrun-individual-v4"
MAX_ISSUES: Final = 100

_IDENT_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# A location in a document: object keys and array indices, outermost first.
Path = tuple[str | int, ...]


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


def show(value: Any, limit: int = 80) -> str:
    """A JSON rendering of a value that is safe to store as text (no NUL, no lone surrogate)."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def a(kind: str) -> str:
    """A JSON type name with its article: "an object", "a string", "null"."""
    return "null" if kind == "null" else ("an " if kind[0] in "aeiou" else "a ") + kind


def render(path: Path, wildcard: bool = False) -> str:
    if not path:
        return "$"
    out: list[str] = []
    for seg in path:
        if isinstance(seg, int):
            out.append("[*]" if wildcard else f"[{seg}]")
        elif _IDENT_RE.fullmatch(seg):
            out.append(f".{seg}" if out else seg)
        else:
            out.append(f"[{show(seg)}]")
    return "".join(out)


def _subject(rendered: str) -> str:
    return "The document" if rendered == "$" else rendered


@dataclass
class _Finding:
    code: str
    path: Path
    detail: str
    count: int = 0
    pairs: set[int] = field(default_factory=set)


class Issues:
    """Collects the findings of one analysis; `report()` folds and caps them."""

    def __init__(self) -> None:
        self.blockers: list[Issue] = []
        self.dropped_blockers = 0
        # Set once the pairs are known, so that folded warnings can say "in N of M pairs".
        self.pair_total = 0
        self._warnings: dict[tuple[str, str, str], _Finding] = {}

    def block(self, code: str, path: Path, detail: str) -> None:
        if len(self.blockers) >= MAX_ISSUES:
            self.dropped_blockers += 1
            return
        rendered = render(path)
        self.blockers.append(Issue(code, rendered, f"{_subject(rendered)} {detail}."))

    def warn(self, code: str, path: Path, detail: str) -> None:
        key = (code, render(path, wildcard=True), detail)
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
            rendered = render(finding.path)
            return Issue(finding.code, rendered, f"{_subject(rendered)} {finding.detail}.")
        rendered = render(finding.path, wildcard=True)
        where = self._where(finding)
        return Issue(finding.code, rendered, f"{_subject(rendered)} {finding.detail} ({where}).")

    def _where(self, finding: _Finding) -> str:
        if not finding.pairs:
            return f"{finding.count} times"
        pairs = f"in {len(finding.pairs)} of {self.pair_total} training pairs"
        return pairs if finding.count == len(finding.pairs) else f"{finding.count} times {pairs}"


def _too_many(count: int, kind: str) -> Issue:
    return Issue("too_many_issues", "$", f"{count} more {kind} were found and not listed.")
