"""What a build reports while it runs, and its wire form in a NOTIFY payload."""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

CHANNEL = "training_file_progress"
# NOTIFY payloads must stay under 8000 bytes; a message is the only unbounded field.
_MAX_MESSAGE = 1000


class Phase(enum.StrEnum):
    BUILDING = "building"  # gathering the conversations' parts of the new version
    COMMITTING = "committing"  # writing the new version's objects and making it current
    COMMITTED = "committed"  # done: `version` is the file's new version
    FAILED = "failed"  # nothing changed: `error_code` and `error_message` say why

    @property
    def terminal(self) -> bool:
        return self in (Phase.COMMITTED, Phase.FAILED)


@dataclass(frozen=True)
class ProgressEvent:
    training_file_id: UUID
    # Orders the events of one build: they may arrive through different connections.
    sequence: int
    phase: Phase
    conversations_done: int
    conversations_total: int
    bytes_written: int
    version: int | None = None
    error_code: str | None = None
    error_message: str | None = None

    def encode(self) -> str:
        fields = asdict(self)
        fields["training_file_id"] = str(self.training_file_id)
        if self.error_message is not None:
            fields["error_message"] = self.error_message[:_MAX_MESSAGE]
        return json.dumps(fields, separators=(",", ":"))

    @classmethod
    def decode(cls, payload: str) -> ProgressEvent:
        fields: dict[str, Any] = json.loads(payload)
        fields["training_file_id"] = UUID(fields["training_file_id"])
        fields["phase"] = Phase(fields["phase"])
        return cls(**fields)
