"""The names local storage gives what is not an object: temp files and segment directories.

Both live beside the object they belong to and contain `~`, which `validate_key` never allows,
so no key can name one and a listing never mistakes one for an object:

    .<object name, maybe cut short>.<16 hex digits>~tmp   a file being written
    .<object name, maybe cut short>.<16 hex digits>~seg   the segments of a composite object

Segment files inside a segment directory are named `s<6 or more digits>`.
"""

from __future__ import annotations

import re
import secrets

TEMP_SUFFIX = "~tmp"
SEGMENTS_SUFFIX = "~seg"
# Long enough to tell objects apart by eye, short enough that the name always fits.
STEM_MAX = 100

_TEMP_NAME = re.compile(r"^\.(.+)\.[0-9a-f]{16}~tmp$", re.DOTALL)
_SEGMENTS_NAME = re.compile(r"^\.(.+)\.[0-9a-f]{16}~seg$", re.DOTALL)
_SEGMENT_NAME = re.compile(r"^s[0-9]{6,}$")


def temp_name(target: str) -> str:
    return f".{target[:STEM_MAX]}.{secrets.token_hex(8)}{TEMP_SUFFIX}"


def segments_name(target: str) -> str:
    return f".{target[:STEM_MAX]}.{secrets.token_hex(8)}{SEGMENTS_SUFFIX}"


def segment_name(index: int) -> str:
    return f"s{index:06d}"


def is_temp_name(name: str) -> bool:
    return name.endswith(TEMP_SUFFIX)


def is_segments_name(name: str) -> bool:
    return _SEGMENTS_NAME.match(name) is not None


def is_segment_name(name: str) -> bool:
    return _SEGMENT_NAME.match(name) is not None


def temp_target(name: str) -> str:
    """The object name a temp file was going to become (maybe cut short)."""
    match = _TEMP_NAME.match(name)
    return match.group(1) if match else name


def segments_target(name: str) -> str:
    """The object name a segment directory belongs to (maybe cut short)."""
    match = _SEGMENTS_NAME.match(name)
    return match.group(1) if match else name


def may_own(object_name: str, segments: str) -> bool:
    """Whether the object called `object_name` could be the one `segments` was made for."""
    stem = segments_target(segments)
    if len(stem) < STEM_MAX:
        return object_name == stem
    return object_name.startswith(stem)
