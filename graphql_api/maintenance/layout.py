"""Where the product puts objects, so a listed key tells whose writer owns it.

- training bucket: `<file id>/v<version>/<name>` (names as the 0002 constraint allows them),
  and `<file id>/v<version>/.segments/<name>.<16 hex>`, the segments of S3 composites
  (storage/s3_manifest.py), which later versions of the same file name too;
- conversation bucket: `<conversation id>/<16 hex digits of its sha256>.json`;
- both: `.healthz/...`, the health probe's objects.

Anything else is not ours: the checker reports it and never removes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import UUID

from ..db.writers import LockKind
from ..storage.base import CONVERSATION_BUCKET, PROBE_PREFIX, TRAINING_BUCKET
from ..storage.s3_manifest import is_segment_key

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_TRAINING_KEY = re.compile(rf"^({_UUID})/v([1-9][0-9]*)/[a-z0-9_-][a-z0-9._-]*$")
# A conversation's file and its rendered pieces (see aggregation/pieces.py).
_CONVERSATION_KEY = re.compile(rf"^({_UUID})/[0-9a-f]{{16}}\.(json|pieces)$")
_SEGMENT_KEY = re.compile(rf"^({_UUID})/v[1-9][0-9]*/")


@dataclass(frozen=True)
class TrainingKey:
    file_id: UUID
    version: int


@dataclass(frozen=True)
class SegmentKey:
    """A segment that composites of the training file `file_id` may name."""

    file_id: UUID


@dataclass(frozen=True)
class ConversationKey:
    conversation_id: UUID


@dataclass(frozen=True)
class ProbeKey:
    pass


Placement = TrainingKey | SegmentKey | ConversationKey | ProbeKey


def place(bucket: str, key: str) -> Placement | None:
    """What `key` is in our layout, or None when it is not ours."""
    if key.startswith(PROBE_PREFIX):
        return ProbeKey()
    if bucket == TRAINING_BUCKET and (match := _TRAINING_KEY.match(key)):
        return TrainingKey(UUID(match.group(1)), int(match.group(2)))
    if bucket == TRAINING_BUCKET and is_segment_key(key) and (match := _SEGMENT_KEY.match(key)):
        return SegmentKey(UUID(match.group(1)))
    if bucket == CONVERSATION_BUCKET and (match := _CONVERSATION_KEY.match(key)):
        return ConversationKey(UUID(match.group(1)))
    return None


def writer_lock(placement: Placement) -> tuple[LockKind, UUID] | None:
    """The lock every writer of such an object holds from its first byte to its commit."""
    if isinstance(placement, TrainingKey | SegmentKey):
        return LockKind.TRAINING_FILE, placement.file_id
    if isinstance(placement, ConversationKey):
        return LockKind.CONVERSATION, placement.conversation_id
    return None
