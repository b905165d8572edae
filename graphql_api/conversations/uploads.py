"""Importing uploaded files (GraphQL multipart, the REST body) with the command line's importer.

A file arrives spooled (in memory up to 1 MiB, then in a temporary file) and capped: past
`max_file_bytes` it is marked too large while it is read, and nothing of it is kept. The
importer needs the whole document to validate it, so a file is read back into memory once,
analysed off the event loop, then stored and its row upserted. At most `IMPORTS_AT_ONCE` files
per process are in memory at a time, so the cap bounds what imports hold (a 25 MiB file and
its parsed document each).

Uploads import as the owner, on writer connections of their own, as the command line does:
the request path's role keeps `SELECT` only on conversations, so no SQL on a request's
connection can write a conversation's statistics or paths (see the README's Database roles).
The caller is recorded as `created_by` of a conversation it imports first.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import IO
from uuid import UUID

from ..db import conversations as conversation_rows
from ..db.conversations import ConversationRecord
from ..db.database import Database
from ..db.writers import WriterPool
from ..errors import Busy, ErrorCode, InvalidInput, Problem
from ..storage.base import Storage
from .analysis import analyze
from .importer import ConversationImporter, ImportResult, Outcome
from .issues import Issue

__all__ = [
    "IMPORTS_AT_ONCE",
    "MAX_IMPORT_FILES",
    "ReceivedFile",
    "UploadImporter",
    "UploadResult",
]

MAX_IMPORT_FILES = 20
IMPORTS_AT_ONCE = 2
SPOOL_IN_MEMORY_BYTES = 1024 * 1024

# Blockers saying the bytes are no JSON object at all, as opposed to a document that breaks rules.
_UNREADABLE = frozenset({"not_utf8", "not_json", "unsupported_number", "not_object"})


@dataclass
class ReceivedFile:
    """One uploaded file as received: its bytes spooled, unless it grew past the cap (or was
    one file too many), when they were dropped as they came."""

    filename: str
    size: int = 0  # bytes received, kept or not
    too_large: bool = False
    _spool: IO[bytes] | None = field(default=None, repr=False)

    @classmethod
    def spooled(cls, filename: str) -> ReceivedFile:
        # Closed by `close`, once the request is done with it.
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115
        return cls(filename, _spool=spool)

    @classmethod
    def dropped(cls, filename: str) -> ReceivedFile:
        return cls(filename)

    def write(self, data: bytes, max_bytes: int) -> None:
        """Keep `data` unless the file is now larger than `max_bytes` (blocking: call it off
        the event loop once the spool may be on disk)."""
        self.size += len(data)
        if self.size > max_bytes and not self.too_large:
            self.too_large = True
            self.close()
        if self._spool is not None:
            self._spool.write(data)

    def read(self) -> bytes:
        """The whole file (blocking)."""
        if self._spool is None:
            raise ValueError(f"the bytes of {self.filename!r} were not kept")
        self._spool.seek(0)
        return self._spool.read()

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None


@dataclass(frozen=True)
class UploadResult:
    filename: str
    outcome: Outcome
    conversation_id: UUID | None = None
    blockers: tuple[Issue, ...] = ()
    warnings: tuple[Issue, ...] = ()
    # Why the file was not stored; empty when it was (IMPORTED, UPDATED, UNCHANGED).
    problems: tuple[Problem, ...] = ()

    @property
    def stored(self) -> bool:
        return self.outcome in (Outcome.IMPORTED, Outcome.UPDATED, Outcome.UNCHANGED)


class UploadImporter:
    """Imports uploaded files one at a time per request, `IMPORTS_AT_ONCE` per process."""

    def __init__(
        self, writers: WriterPool, storage: Storage, *, max_file_bytes: int, wait_seconds: float
    ) -> None:
        self.max_file_bytes = max_file_bytes
        self._writers = writers
        self._storage = storage
        self._wait_seconds = wait_seconds
        self._slots = asyncio.Semaphore(IMPORTS_AT_ONCE)

    def check_count(self, count: int, field: str) -> None:
        """Refuse a request with no file or more than `MAX_IMPORT_FILES`, before any import."""
        if count == 0:
            message = "no file was uploaded"
            raise InvalidInput(message, problems=[Problem(ErrorCode.NO_FILES, message, field)])
        if count > MAX_IMPORT_FILES:
            message = (
                f"{count} files in one request; an import takes at most {MAX_IMPORT_FILES} "
                "(send the rest in another request)"
            )
            raise InvalidInput(
                message, problems=[Problem(ErrorCode.TOO_MANY_FILES, message, field)]
            )

    async def import_files(
        self, user_id: UUID, files: Sequence[ReceivedFile]
    ) -> list[UploadResult]:
        """Each file's result, in order. A dependency failing (`Unavailable`) stops the request:
        the files before it are imported, and a retry of all of them is safe (re-importing an
        identical file changes nothing)."""
        return [await self.import_file(user_id, f) for f in files]

    async def import_file(self, user_id: UUID, file: ReceivedFile) -> UploadResult:
        try:
            if file.too_large:
                return _too_large(file, self.max_file_bytes)
            async with self._slot():
                raw = await asyncio.to_thread(file.read)
                analysis = await asyncio.to_thread(analyze, raw)
                importer = ConversationImporter(self._writers, self._storage, created_by=user_id)
                result = await importer.import_bytes(raw, file.filename, analysis)
        finally:
            file.close()
        return _upload_result(file.filename, result)

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self._wait_seconds):
                await self._slots.acquire()
        except TimeoutError:
            raise Busy(
                f"{IMPORTS_AT_ONCE} imports are running in this process and none finished "
                f"within {self._wait_seconds:g} s; nothing was imported from this file, retry",
                retry_after_seconds=max(1, min(int(self._wait_seconds // 6), 30)),
            ) from None
        try:
            yield
        finally:
            self._slots.release()


async def stored_conversation(
    db: Database, user_id: UUID, conversation_id: UUID
) -> ConversationRecord | None:
    """The conversation's row as the caller reads it (after its import committed)."""
    async with db.session(user_id) as conn:
        found = await conversation_rows.get_many(conn, [conversation_id])
    return found.get(conversation_id)


def _too_large(file: ReceivedFile, max_bytes: int) -> UploadResult:
    message = (
        f"{file.filename or 'the file'} is larger than {max_bytes} bytes "
        "(MAX_IMPORT_FILE_BYTES); nothing of it was stored"
    )
    return UploadResult(
        file.filename, Outcome.BLOCKED, problems=(Problem(ErrorCode.FILE_TOO_LARGE, message),)
    )


def _upload_result(filename: str, result: ImportResult) -> UploadResult:
    problems: tuple[Problem, ...] = ()
    if result.outcome is Outcome.BLOCKED:
        problems = tuple(Problem(_blocker_code(b), b.message) for b in result.blockers)
    elif result.outcome is Outcome.REFUSED:
        problems = tuple(Problem(ErrorCode.IN_TRAINING_FILE, p) for p in result.problems)
    return UploadResult(
        filename,
        result.outcome,
        result.conversation_id,
        result.blockers,
        result.warnings,
        problems,
    )


def _blocker_code(blocker: Issue) -> ErrorCode:
    return ErrorCode.INVALID_JSON if blocker.code in _UNREADABLE else ErrorCode.BLOCKED
