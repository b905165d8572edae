"""Walking a local bucket: objects (composites with their logical size), temp files, and
segment directories no manifest refers to (what a crash between writing segments and renaming
the manifest leaves, or a delete that met a reader).

Symlinks are not followed, entries removed meanwhile are skipped, segment directories are
never entered. Only files that could own a segment directory beside them are opened (to read
their manifest), so a bucket without composites costs what it did before they existed.
"""

from __future__ import annotations

import bisect
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .base import StorageError
from .local_files import MISSING
from .local_names import (
    STEM_MAX,
    is_segments_name,
    is_temp_name,
    may_own,
    segments_target,
    temp_target,
)
from .local_objects import peek_manifest

Kind = Literal["object", "temp", "segments"]


@dataclass(frozen=True)
class Entry:
    kind: Kind
    path: str  # in the bucket: the object's key, or the temp file's or segment directory's
    target: str  # the key it is or would have become (maybe cut short)
    size: int
    mtime: float


class Listing:
    """One directory's full listing, sorted, and which of its files could own one of its
    segment directories (worked out once: a bucket's top level is scanned in batches)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        stems = [segments_target(name) for name in names if is_segments_name(name)]
        self._exact = {stem for stem in stems if len(stem) < STEM_MAX}
        self._cut = [stem for stem in stems if len(stem) >= STEM_MAX]

    def may_own_segments(self, name: str) -> bool:
        return name in self._exact or any(name.startswith(stem) for stem in self._cut)


def scan(directory: Path, names: list[str], listing: Listing) -> list[Entry]:
    """The entries at or below `names`, some of the top-level entries of the bucket
    `directory` whose full listing is `listing` (segment directories pair with files
    anywhere in it)."""
    found: list[Entry] = []
    _scan_names(directory, "", names, listing, found)
    return found


def _scan_names(
    directory: Path, prefix: str, names: list[str], listing: Listing, found: list[Entry]
) -> None:
    for name in names:
        path, relative = directory / name, prefix + name
        try:
            st = os.lstat(path)
        except MISSING:
            continue
        if stat.S_ISDIR(st.st_mode):
            if is_segments_name(name):
                if not _referenced(directory, name, listing.names):
                    found.append(_unreferenced(path, relative, prefix + segments_target(name)))
            else:
                _scan_directory(path, relative + "/", found)
        elif stat.S_ISREG(st.st_mode):
            found.append(_file(path, relative, prefix, name, st, listing))


def _scan_directory(path: Path, prefix: str, found: list[Entry]) -> None:
    try:
        names = sorted(os.listdir(path))
    except MISSING:
        return
    _scan_names(path, prefix, names, Listing(names), found)


def _file(
    path: Path, relative: str, prefix: str, name: str, st: os.stat_result, listing: Listing
) -> Entry:
    if is_temp_name(name):
        return Entry("temp", relative, prefix + temp_target(name), st.st_size, st.st_mtime)
    size = st.st_size
    if listing.may_own_segments(name):
        try:
            manifest = peek_manifest(path, relative)
        except StorageError:
            manifest = None  # listed as the file it is; reading it reports the problem
        if manifest is not None:
            size = manifest.size
    return Entry("object", relative, relative, size, st.st_mtime)


def _referenced(directory: Path, segments: str, all_names: list[str]) -> bool:
    """Whether a manifest in `directory` (listed, sorted, as `all_names`) names `segments`."""
    stem = segments_target(segments)
    index = bisect.bisect_left(all_names, stem)
    while index < len(all_names) and all_names[index].startswith(stem):
        candidate = all_names[index]
        index += 1
        if not may_own(candidate, segments):
            continue
        try:
            manifest = peek_manifest(directory / candidate, candidate)
        except StorageError:
            continue
        if manifest is not None and manifest.directory == segments:
            return True
    return False


def _unreferenced(path: Path, relative: str, target: str) -> Entry:
    """A pending write: its size so far and when it was last written to."""
    size, mtime = 0, 0.0
    try:
        mtime = os.lstat(path).st_mtime
        entries = os.listdir(path)
    except MISSING:
        entries = []
    for entry in entries:
        try:
            st = os.lstat(path / entry)
        except MISSING:
            continue
        size += st.st_size
        mtime = max(mtime, st.st_mtime)
    return Entry("segments", relative, target, size, mtime)
