"""How both backends' composite manifests are framed: a magic line naming the format, one line
of JSON, a newline. The first bytes tell a manifest from anything else; the last newline tells
a complete one from a torn write."""

from __future__ import annotations

import json
from typing import Any

from .base import StorageError


def frame(magic: bytes, body: dict[str, Any]) -> bytes:
    return magic + json.dumps(body, separators=(",", ":")).encode() + b"\n"


def unframe(magic: bytes, data: bytes, name: str, error: type[StorageError]) -> dict[str, Any]:
    """The JSON object framed in `data`; `error` (naming `name`) when it is not one."""
    if not data.startswith(magic) or not data.endswith(b"\n"):
        raise error(f"{name} is not a complete composite manifest")
    try:
        body = json.loads(data[len(magic) : -1])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"the composite manifest of {name} is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise error(f"the composite manifest of {name} is not an object")
    return body


def is_range_entry(item: Any) -> bool:
    """Whether a manifest's segment entry is `[name, start, end]` with `0 <= start <= end`."""
    return (
        isinstance(item, list)
        and len(item) == 3
        and isinstance(item[0], str)
        and all(type(bound) is int for bound in item[1:])
        and 0 <= item[1] <= item[2]
    )
