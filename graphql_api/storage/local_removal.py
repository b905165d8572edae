"""Removing local objects and segment directories.

A segment directory is emptied only under an exclusive `flock`, taken without waiting: readers
and writers of a composite hold a shared one (local_objects.py), so a directory still being
read or written is left alone. Whatever is left — a delete that met a reader, a crash between
unlinking a manifest and removing its segments — is a segment directory no manifest refers to:
`list_pending_writes` reports it and `abort_pending_write` removes it later.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable
from pathlib import Path

from .base import StorageError
from .local_files import DIRECTORY_FLAGS, MISSING, fsync_directory, os_errors, regular_file_stat
from .local_names import may_own
from .local_objects import peek_manifest


class SegmentsInUse(StorageError):
    """A segment directory is being read or written, so it was not removed."""


def delete_object(path: Path, name: str) -> None:
    """Remove the object at `path`: its manifest first, so it is gone at once, then its
    segments unless someone still reads them (the clean-up removes those later)."""
    if regular_file_stat(path, name) is None:
        return
    manifest = peek_manifest(path, name)
    with os_errors(f"cannot delete {name}"), contextlib.suppress(*MISSING):
        os.unlink(path)
    if manifest is not None:
        with contextlib.suppress(SegmentsInUse):
            remove_segments(path.parent, manifest.directory, name)


def remove_replaced_segments(path: Path, directory: str | None, name: str) -> None:
    """After the object at `path` was replaced: remove the segments of the one it replaced
    (`directory`, when that was a composite), unless they are still being read."""
    if directory is not None:
        with contextlib.suppress(SegmentsInUse):
            remove_segments(path.parent, directory, name)


def remove_segments(
    parent: Path, directory: str, name: str, *, unless: Callable[[], bool] | None = None
) -> None:
    """Remove the segment directory `directory` in `parent` (of object `name`), unless `unless()`
    says, under the exclusive lock, that it must stay. Raises `SegmentsInUse` when a reader or
    writer holds it; one that is gone already is not an error."""
    try:
        fd = os.open(parent / directory, DIRECTORY_FLAGS)
    except MISSING:
        return
    except OSError as exc:
        raise StorageError(f"cannot open the segments of {name}: {exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SegmentsInUse(f"the segments of {name} are being read or written") from None
        if unless is not None and unless():
            return
        with os_errors(f"cannot remove the segments of {name}"):
            _empty(fd)
            with contextlib.suppress(*MISSING):
                os.rmdir(parent / directory)
            fsync_directory(parent)
    finally:
        os.close(fd)


def referenced(parent: Path, directory: str) -> bool:
    """Whether an object in `parent` has `directory` as its segment directory."""
    with os_errors(f"cannot list {parent}"):
        names = os.listdir(parent)
    for candidate in names:
        if may_own(candidate, directory):
            manifest = peek_manifest(parent / candidate, candidate)
            if manifest is not None and manifest.directory == directory:
                return True
    return False


def _empty(directory_fd: int) -> None:
    for entry in os.listdir(directory_fd):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry, dir_fd=directory_fd)
