"""Every GraphQL enum: the domain's own, exposed with descriptions, and the closed sets of
error codes each mutation family can return."""

from __future__ import annotations

import enum
import logging
from typing import TypeVar

import strawberry

from ..domain import enums
from ..errors import MEANING, ErrorCode

log = logging.getLogger(__name__)

E = TypeVar("E", bound=enum.Enum)


def expose(
    cls: type[enum.Enum], description: str, values: dict[str, str], name: str | None = None
) -> None:
    """Register a domain enum with Strawberry as it is (GraphQL shows the member names), with
    a description for it and for each value, which the domain itself knows nothing about."""
    strawberry.enum(cls, name=name, description=description)
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    for value in definition.values:
        value.description = values[value.name]


expose(
    enums.EnrichmentStatus,
    "Where a conversation is in the upstream enrichment pipeline.",
    {
        "NOT_STARTED": "Not enriched yet.",
        "IN_PROGRESS": "Being enriched.",
        "COMPLETED": "Enriched: it can go into a training file (when its file is stored).",
        "FAILED": "Enrichment failed.",
    },
)
expose(
    enums.QualityTier,
    "Quality tier of a conversation, from its quality score.",
    {
        "SEED_DATASET": "Quality score 4.5 or more.",
        "PRODUCTION": "Quality score 3.5 or more.",
        "EXPERIMENTAL": "Quality score 2.5 or more, or no score at all.",
        "REJECTED": "Quality score below 2.5.",
    },
)
expose(
    enums.TrainingFileStatus,
    "Lifecycle of a training file.",
    {
        "ACTIVE": "Listed by default; takes additions.",
        "ARCHIVED": "Hidden from the default listing; takes no additions until restored.",
        "PROCESSING": "A change is being built.",
        "FAILED": "The last change failed (the previous version is intact).",
    },
)
expose(
    enums.FileFormat,
    "Which of a training file's objects.",
    {
        "JSON": "The full `brightrun-lora-v4` JSON, indented for human review (`<name>.json`).",
        "JSONL": "One line per trainable pair after a `_meta` line (`<name>.jsonl`).",
        "OPENAI_CHAT": 'One `{"messages": [...]}` line per trainable pair, as OpenAI chat '
        "fine-tuning and TRL's SFTTrainer take it; no header line (`<name>.openai.jsonl`).",
        "HF_DATASET": "One flat record per trainable pair (ids, scaffolding, quality, texts and "
        "`messages`), the same keys and types on every line, for Hugging Face `datasets`; no "
        "header line (`<name>.hf.jsonl`).",
    },
    name="TrainingFileFormat",
)
EnrichmentStatus = enums.EnrichmentStatus
QualityTier = enums.QualityTier
TrainingFileStatus = enums.TrainingFileStatus
TrainingFileFormat = enums.FileFormat


class TrainingFileErrorCode(enum.Enum):
    BAD_USER_INPUT = ErrorCode.BAD_USER_INPUT.value
    INVALID_NAME = ErrorCode.INVALID_NAME.value
    NAME_TAKEN = ErrorCode.NAME_TAKEN.value
    ID_TAKEN = ErrorCode.ID_TAKEN.value
    INVALID_DESCRIPTION = ErrorCode.INVALID_DESCRIPTION.value
    NO_CONVERSATIONS = ErrorCode.NO_CONVERSATIONS.value
    TOO_MANY_CONVERSATIONS = ErrorCode.TOO_MANY_CONVERSATIONS.value
    INVALID_ID = ErrorCode.INVALID_ID.value
    DUPLICATE_IN_REQUEST = ErrorCode.DUPLICATE_IN_REQUEST.value
    NOT_FOUND = ErrorCode.NOT_FOUND.value
    NOT_ELIGIBLE = ErrorCode.NOT_ELIGIBLE.value
    ALREADY_IN_FILE = ErrorCode.ALREADY_IN_FILE.value
    NOT_IN_FILE = ErrorCode.NOT_IN_FILE.value
    WOULD_BE_EMPTY = ErrorCode.WOULD_BE_EMPTY.value
    FILE_NOT_ACTIVE = ErrorCode.FILE_NOT_ACTIVE.value
    CONVERSATION_CHANGED = ErrorCode.CONVERSATION_CHANGED.value
    CONFLICT = ErrorCode.CONFLICT.value


class DownloadErrorCode(enum.Enum):
    BAD_USER_INPUT = ErrorCode.BAD_USER_INPUT.value
    INVALID_ID = ErrorCode.INVALID_ID.value
    NOT_FOUND = ErrorCode.NOT_FOUND.value
    NOT_READY = ErrorCode.NOT_READY.value


class ImportErrorCode(enum.Enum):
    BAD_USER_INPUT = ErrorCode.BAD_USER_INPUT.value
    NO_FILES = ErrorCode.NO_FILES.value
    TOO_MANY_FILES = ErrorCode.TOO_MANY_FILES.value
    FILE_TOO_LARGE = ErrorCode.FILE_TOO_LARGE.value
    INVALID_JSON = ErrorCode.INVALID_JSON.value
    BLOCKED = ErrorCode.BLOCKED.value
    IN_TRAINING_FILE = ErrorCode.IN_TRAINING_FILE.value


def _expose_codes(cls: type[enum.Enum], description: str) -> None:
    expose(cls, description, {member.name: MEANING[ErrorCode(member.value)] for member in cls})


_expose_codes(
    TrainingFileErrorCode,
    "Why a mutation on a training file (create, add, remove, archive, restore, delete) was "
    "refused.",
)
_expose_codes(DownloadErrorCode, "Why `downloadUrl` gave no link.")
_expose_codes(ImportErrorCode, "Why `importConversations` refused a request or one of its files.")


def in_family(family: type[E], code: ErrorCode) -> E:
    """`code` as a member of a mutation family's enum.

    A code outside the family is a bug (the family's enum must list every code its service
    raises; a test checks it): it is logged and reported as the family's generic code.
    """
    try:
        return family(code.value)
    except ValueError:
        log.error("error code %s is not in %s; add it there", code, family.__name__)
        return family(ErrorCode.BAD_USER_INPUT.value)
