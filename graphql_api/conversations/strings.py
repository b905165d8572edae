"""Checks of the text inside a document: what cannot be stored blocks, upstream artifacts warn.

PostgreSQL text and UTF-8 output cannot carry U+0000 or a lone surrogate. "[object Object]"
is what JavaScript writes for an object turned into a string: the upstream pipeline did that
in the client backgrounds of older files; such text is kept as is, with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final

from .issues import Issues, Path, show

__all__ = ["OBJECT_ARTIFACT", "check_strings"]

OBJECT_ARTIFACT: Final = "[object Object]"
# Only a \u escape can put U+0000 or a lone surrogate into a parsed string.
_SUSPECT_ESCAPE_RE: Final = re.compile(r"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def check_strings(text: str, document: Any, issues: Issues) -> None:
    """`text` is the document's source: most files need no walk at all."""
    unstorable = _SUSPECT_ESCAPE_RE.search(text) is not None
    artifacts = OBJECT_ARTIFACT in text
    if not (unstorable or artifacts):
        return
    for path, value, what in _strings(document):
        if unstorable:
            _check_storable(value, path, what, issues)
        if artifacts and OBJECT_ARTIFACT in value:
            detail = (
                f"contains {show(OBJECT_ARTIFACT)}, an object the upstream pipeline wrote as text "
                "(kept as is)"
            )
            issues.warn("serialization_artifact", path, detail)


def _strings(document: Any) -> Iterator[tuple[Path, str, str]]:
    """(path, text, "key" | "value") for every key and string value, depth first."""
    stack: list[tuple[Any, Path]] = [(document, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                yield (*path, key), key, "key"
                stack.append((child, (*path, key)))
        elif isinstance(value, list):
            stack.extend((child, (*path, i)) for i, child in enumerate(value))
        elif isinstance(value, str):
            yield path, value, "value"


def _check_storable(text: str, path: Path, what: str, issues: Issues) -> None:
    if "\x00" in text:
        issues.block("invalid_unicode", path, f"has a {what} containing U+0000 (NUL)")
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        issues.block("invalid_unicode", path, f"has a {what} containing an unpaired surrogate")
