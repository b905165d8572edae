"""Opening a local object, plain or composite, for reading its bytes or copying them.

An opened object is a sequence of *pieces*: byte ranges of files. A plain object is one piece
of one file; a composite object (local_manifest.py) is the ranges its manifest lists, in its
segment directory.

A composite's segment files are not all opened up front (an object may have thousands): they
are opened one at a time as the bytes are reached. So that a concurrent delete cannot remove
them meanwhile, an opened composite holds a shared `flock` on its segment directory until it is
closed, and segment directories are only ever emptied under an exclusive one
(local_removal.py). Opening checks, with the shared lock held, that the manifest it read is
still the object's, so it never holds a lock on segments someone already started removing.
"""

from __future__ import annotations

import bisect
import errno
import fcntl
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .base import InvalidKey, ObjectNotFound, StorageError
from .local_files import (
    DIRECTORY_FLAGS,
    MISSING,
    READ_FLAGS,
    os_errors,
    pread_exactly,
    regular_file_stat,
    storage_error,
)
from .local_manifest import MAGIC, MAX_MANIFEST_BYTES, CorruptManifest, Manifest, decode

# A composite replaced (or deleted and re-created) this often while being opened is retried no
# more: something rewrites it in a loop.
_OPEN_ATTEMPTS = 5


@dataclass(frozen=True)
class Piece:
    """Bytes `[start, end)` of the object's file number `index`."""

    index: int
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


class PlainObject:
    """An object stored as one regular file, open as `fd`."""

    def __init__(self, fd: int, st: os.stat_result, path: Path, name: str) -> None:
        self.fd = fd
        self.size = st.st_size
        self.path = path
        self.name = name
        self._identity = (st.st_dev, st.st_ino)

    def pieces(self, start: int, end: int) -> list[Piece]:
        return [Piece(0, start, end)] if end > start else []

    def descriptor(self, index: int) -> int:
        return self.fd

    def file_size(self, index: int) -> int:
        return self.size

    def link(self, index: int, directory_fd: int, target: str) -> bool:
        """Hard-link the object's file as `target` in `directory_fd`; False when this file
        system cannot, or the key was replaced meanwhile (then copy instead)."""
        if not _linked(
            lambda: os.link(self.path, target, dst_dir_fd=directory_fd, follow_symlinks=False)
        ):
            return False
        linked = os.stat(target, dir_fd=directory_fd, follow_symlinks=False)
        if (linked.st_dev, linked.st_ino) == self._identity:
            return True
        os.unlink(target, dir_fd=directory_fd)  # another file now: its bytes are not ours
        return False

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


class CompositeObject:
    """An object stored as a manifest and segments, its segment directory open (and
    share-locked) as `directory_fd`. At most one segment file is open at a time."""

    def __init__(self, manifest: Manifest, directory_fd: int, name: str) -> None:
        self.manifest = manifest
        self.directory_fd = directory_fd
        self.name = name
        self.size = manifest.size
        self._starts: list[int] = []
        offset = 0
        for segment in manifest.segments:
            self._starts.append(offset)
            offset += segment.length
        self._open: tuple[int, int] | None = None  # (index, fd) of the open segment file

    def pieces(self, start: int, end: int) -> list[Piece]:
        found: list[Piece] = []
        index = max(bisect.bisect_right(self._starts, start) - 1, 0)
        segments = self.manifest.segments
        while start < end and index < len(segments):
            segment, at = segments[index], self._starts[index]
            stop = min(end, at + segment.length)
            if stop > start:
                offset = segment.start + start - at
                found.append(Piece(index, offset, offset + stop - start))
                start = stop
            index += 1
        return found

    def descriptor(self, index: int) -> int:
        if self._open is not None and self._open[0] == index:
            return self._open[1]
        self._close_segment()
        segment = self.manifest.segments[index]
        try:
            fd = os.open(segment.name, READ_FLAGS, dir_fd=self.directory_fd)
        except OSError as exc:
            raise storage_error(f"cannot open segment {segment.name} of {self.name}", exc) from exc
        self._open = (index, fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CorruptManifest(f"segment {segment.name} of {self.name} is not a file")
        return fd

    def file_size(self, index: int) -> int:
        return self._segment_stat(index).st_size

    def link(self, index: int, directory_fd: int, target: str) -> bool:
        """Hard-link segment `index` as `target` in `directory_fd`; False when this file
        system cannot (then copy instead)."""
        name = self.manifest.segments[index].name
        self._segment_stat(index)  # a regular file, not something planted
        return _linked(
            lambda: os.link(
                name,
                target,
                src_dir_fd=self.directory_fd,
                dst_dir_fd=directory_fd,
                follow_symlinks=False,
            )
        )

    def close(self) -> None:
        self._close_segment()
        if self.directory_fd >= 0:
            fd, self.directory_fd = self.directory_fd, -1
            os.close(fd)  # releases the shared lock

    def _segment_stat(self, index: int) -> os.stat_result:
        name = self.manifest.segments[index].name
        with os_errors(f"cannot stat segment {name} of {self.name}"):
            st = os.stat(name, dir_fd=self.directory_fd, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            raise CorruptManifest(f"segment {name} of {self.name} is not a file")
        return st

    def _close_segment(self) -> None:
        if self._open is not None:
            fd = self._open[1]
            self._open = None
            os.close(fd)


OpenedObject = PlainObject | CompositeObject

# Why a hard link cannot be made here, though a copy can: another file system, too many links
# to the file, a file system without hard links (or one that forbids linking this file).
_CANNOT_LINK = frozenset({errno.EXDEV, errno.EMLINK, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP})


def _linked(make_link: Callable[[], None]) -> bool:
    try:
        make_link()
    except OSError as exc:
        if exc.errno in _CANNOT_LINK:
            return False
        raise
    return True


def open_object(path: Path, name: str) -> OpenedObject:
    """Open the object at `path` (called `name` in errors). Raises `ObjectNotFound`."""
    for _ in range(_OPEN_ATTEMPTS):
        fd, st = _open_regular(path, name)
        try:
            if pread_exactly(fd, len(MAGIC), 0) != MAGIC:
                plain = PlainObject(fd, st, path, name)
                fd = -1  # the object owns it now
                return plain
            manifest = _read_manifest(fd, st.st_size, name)
            composite = _lock_segments(path, fd, manifest, name)
        except OSError as exc:
            raise storage_error(f"cannot read {name}", exc) from exc
        finally:
            if fd >= 0:
                os.close(fd)
        if composite is not None:
            return composite
    raise StorageError(f"{name} was replaced {_OPEN_ATTEMPTS} times while being opened")


def peek_manifest(path: Path, name: str) -> Manifest | None:
    """The manifest at `path`, or None when the object is plain or missing (no lock taken)."""
    st = regular_file_stat(path, name)
    if st is None or st.st_size < len(MAGIC):
        return None
    try:
        fd, st = _open_regular(path, name)
    except ObjectNotFound:
        return None
    try:
        with os_errors(f"cannot read {name}"):
            if pread_exactly(fd, len(MAGIC), 0) != MAGIC:
                return None
            return _read_manifest(fd, st.st_size, name)
    finally:
        os.close(fd)


def object_size(path: Path, name: str) -> int | None:
    """The object's size, or None when there is no object (a directory is a prefix)."""
    st = regular_file_stat(path, name)
    if st is None:
        return None
    if st.st_size < len(MAGIC):
        return st.st_size
    manifest = peek_manifest(path, name)
    return st.st_size if manifest is None else manifest.size


class Reader:
    """An opened object read by offset. Reads run in worker threads; `close` takes the same
    lock, so a task cancelled mid-read never closes a descriptor (whose number could be
    reused) under a read still running in its thread."""

    def __init__(self, path: Path, name: str) -> None:
        self._name = name
        self._object: OpenedObject | None = open_object(path, name)
        self.size = self._object.size
        self._lock = threading.Lock()

    def read(self, offset: int, length: int) -> bytes:
        with self._lock:
            if self._object is None:
                raise StorageError(f"{self._name} was closed while reading")
            opened = self._object
            with os_errors(f"cannot read {self._name}"):
                data = [
                    _read_piece(opened, piece, self._name)
                    for piece in opened.pieces(offset, min(offset + length, self.size))
                ]
        return b"".join(data)

    def close(self) -> None:
        with self._lock:
            if self._object is not None:
                opened, self._object = self._object, None
                opened.close()


def _read_piece(opened: OpenedObject, piece: Piece, name: str) -> bytes:
    data = pread_exactly(opened.descriptor(piece.index), piece.length, piece.start)
    # Objects and segments are only ever replaced by rename, never truncated in place, so an
    # open file cannot shrink unless something outside this process edits the bucket.
    if len(data) < piece.length:
        raise StorageError(f"{name} shrank while being read")
    return data


def _open_regular(path: Path, name: str) -> tuple[int, os.stat_result]:
    try:
        fd = os.open(path, READ_FLAGS)
    except MISSING as exc:
        raise ObjectNotFound(name) from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink at the key
            raise InvalidKey(f"{name} is a symlink") from exc
        raise storage_error(f"cannot open {name}", exc) from exc
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise storage_error(f"cannot stat {name}", exc) from exc
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ObjectNotFound(name)
    return fd, st


def _read_manifest(fd: int, size: int, name: str) -> Manifest:
    if size > MAX_MANIFEST_BYTES:
        raise CorruptManifest(f"{name} starts like a composite manifest but is too large")
    return decode(pread_exactly(fd, size, 0), name)


def _lock_segments(
    path: Path, manifest_fd: int, manifest: Manifest, name: str
) -> CompositeObject | None:
    """The composite with its segment directory share-locked, or None when the object was
    replaced or deleted since its manifest was read (the caller opens it again)."""
    try:
        directory_fd = os.open(path.parent / manifest.directory, DIRECTORY_FLAGS)
    except FileNotFoundError:
        if _still_current(path, manifest_fd):
            raise CorruptManifest(f"the segments of {name} are missing") from None
        return None
    try:
        fcntl.flock(directory_fd, fcntl.LOCK_SH)
        if _still_current(path, manifest_fd):
            composite = CompositeObject(manifest, directory_fd, name)
            directory_fd = -1
            return composite
        return None
    finally:
        if directory_fd >= 0:
            os.close(directory_fd)


def _still_current(path: Path, manifest_fd: int) -> bool:
    """Whether `path` still is the manifest open as `manifest_fd` (held open, so its inode
    number cannot have been reused)."""
    try:
        now = os.lstat(path)
    except MISSING:
        return False
    opened = os.fstat(manifest_fd)
    return (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino)
