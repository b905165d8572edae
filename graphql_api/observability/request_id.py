"""Request ids: the client's `X-Request-Id` when it is a reasonable one, else a fresh one."""

from __future__ import annotations

import re
import uuid

HEADER = "x-request-id"

# Ids that proxies and clients commonly send (uuids, hex, base64, `trace:span`), bounded so a
# hostile one cannot bloat or split log lines.
_REASONABLE = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")


def request_id_from(header: str | None) -> str:
    """`header` when it is a reasonable id; otherwise (absent, too long, spaces, control or
    non-ASCII characters) a new one, so every line of the request can still be found."""
    if header is not None and _REASONABLE.fullmatch(header):
        return header
    return uuid.uuid4().hex
