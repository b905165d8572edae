"""What a consistency check found, and what became of it."""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID


class Kind(enum.StrEnum):
    # A training file whose row and objects disagree: reported, never repaired.
    MISSING_OBJECT = "missing_object"
    WRONG_SIZE = "wrong_size"
    BAD_LAYOUT = "bad_layout"  # offsets, header/footer framing, unparsable body
    HEADER_MISMATCH = "header_mismatch"  # header totals (or _meta) differ from the row
    MEMBERS_MISMATCH = "members_mismatch"  # conversations differ from the junction rows
    CONTENT_MISMATCH = "content_mismatch"  # counted pairs or lines differ from the row
    STATISTICS_MISMATCH = "statistics_mismatch"  # the row's totals differ from its members'
    RANGES_MISMATCH = "ranges_mismatch"  # members' byte ranges do not tile the object's body
    UNREADABLE = "unreadable"
    # Left behind by a crash; removed by --repair once its writer is provably gone.
    PENDING_WRITE = "pending_write"  # a temp file, an incomplete multipart upload
    UNCOMMITTED_VERSION = "uncommitted_version"  # objects of a version no commit reached
    UNREFERENCED_VERSION = "unreferenced_version"  # an older version neither current nor retired
    # A composite's segment that no current or retired object of its file names any more.
    UNREFERENCED_SEGMENT = "unreferenced_segment"
    FILE_WITHOUT_ROW = "file_without_row"  # objects of a training file that has no row
    UNREFERENCED_CONVERSATION_FILE = "unreferenced_conversation_file"
    STALE_PROBE = "stale_probe"  # a health probe's object its probe never removed
    # Not in our layout: someone else's, or a bug; reported, never removed.
    FOREIGN_OBJECT = "foreign_object"
    FOREIGN_PENDING_WRITE = "foreign_pending_write"


class State(enum.StrEnum):
    FOUND = "found"  # an orphan whose writer is gone, not removed (no --repair)
    REMOVED = "removed"
    IN_USE = "in_use"  # its writer holds the lock: a write in progress, not a problem
    FAILED = "failed"  # removing it failed; `detail` says why
    REPORTED = "reported"  # needs a person


# What leaves the store inconsistent after the check (and the repair, if any).
_UNRESOLVED = frozenset({State.FOUND, State.FAILED, State.REPORTED})


@dataclass(frozen=True)
class Finding:
    kind: Kind
    state: State
    bucket: str
    key: str
    size: int | None = None
    training_file_id: UUID | None = None
    detail: str = ""

    def becomes(self, state: State, detail: str | None = None) -> Finding:
        return replace(self, state=state, detail=self.detail if detail is None else detail)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "state": self.state.value,
            "bucket": self.bucket,
            "key": self.key,
            "size": self.size,
            "training_file_id": str(self.training_file_id) if self.training_file_id else None,
            "detail": self.detail,
        }


@dataclass
class Report:
    repair: bool
    training_files: int = 0  # rows verified
    objects: int = 0  # objects listed in both buckets
    object_bytes: int = 0
    pending_writes: int = 0  # temp files and incomplete uploads listed
    findings: list[Finding] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not any(f.state in _UNRESOLVED for f in self.findings)

    def counts(self) -> Counter[tuple[Kind, State]]:
        return Counter((f.kind, f.state) for f in self.findings)

    def bytes_of(self, kind: Kind, state: State) -> int:
        return sum(f.size or 0 for f in self.findings if (f.kind, f.state) == (kind, state))

    def to_json(self) -> dict[str, Any]:
        states = Counter(f.state for f in self.findings)
        return {
            "consistent": self.consistent,
            "repair": self.repair,
            "checked": {
                "training_files": self.training_files,
                "objects": self.objects,
                "object_bytes": self.object_bytes,
                "pending_writes": self.pending_writes,
            },
            "summary": {state.value: states[state] for state in State},
            "findings": [f.to_json() for f in self.findings],
        }
