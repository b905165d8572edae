"""Writing one local object atomically: plain when it can be, composite when that saves a copy.

`ComposeWriter` starts as a plain temp file beside the target (`.<name>.<hex>~tmp`). Bytes,
streams and ranges it copies are appended to that *fresh* file (ranges by copy_file_range).
When a range is worth linking instead — at least `LINK_MIN` bytes that make up at least half
of the file they lie in (a plain object's file, or a composite's segment) — the writer becomes
a composite (local_manifest.py): it creates its segment directory, moves the fresh file into
it, hard-links the source file beside it (O(1), no byte copied) and continues with a new fresh
segment. An add to a large training file so costs one link per segment of the old body plus
the new bytes, however large the old body is. Smaller ranges are copied, so segments stay few
(at least `LINK_MIN` each but the last ones) and small objects stay plain files.

`commit` makes the object appear in one rename: of the temp file (plain), or of the manifest
after every segment and the segment directory are synced (composite). Until then nothing is at
the target; `close` without a commit removes everything written. A composite whose links all
failed (another file system) is turned back into a plain file, and plain data that happens to
start with the manifest magic is stored as a one-segment composite, so a file's first bytes
always tell what it is.

Several objects written together (a version's four formats) share one thread pass:
`append_runs` takes the writers in turn, item by item, so a source that several of them copy
from (a conversation's pieces, one range per format) is opened once, and `commit_all` syncs
their files at once, then each directory that changed once, after the last rename. Before the
pass copies anything it asks the kernel to start reading every small range it will copy, so
the disk reads them all at once; writers ask it to start writing back every `WRITEBACK_STEP`
they append, so the commit's fsyncs wait for little.

Thread-side methods hold `_lock`; `close` sets `_stopped` first, so a copy of many steps stops
at the next step instead of making the clean-up wait for the whole range.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from .base import StorageError
from .local_files import (
    CREATE_FLAGS,
    DIRECTORY_FLAGS,
    WRITEBACK_STEP,
    copy_range,
    fsync_directory,
    os_errors,
    pread_exactly,
    prefetch,
    start_writeback,
    storage_error,
    write_all,
)
from .local_manifest import MAGIC, Manifest, Segment, encode
from .local_names import segment_name, segments_name, temp_name
from .local_objects import OpenedObject, Piece, open_object, peek_manifest
from .local_removal import SegmentsInUse, remove_replaced_segments, remove_segments

# Sources kept open at once by one pass; only writers whose items do not line up (never the
# service's) get to this many, and then the least recently used is opened again when needed.
_MAX_OPEN_SOURCES = 16

# Ranges shorter than this are copied: below it a link saves less than the segment costs
# (a manifest entry, a file to open when reading, an inode kept alive).
LINK_MIN = 1024 * 1024

# Bytes of small ranges a pass asks the kernel to read ahead of its copy: 80 conversations'
# pieces are about 12 MB.
PREFETCH_MAX = 64 * 1024 * 1024

_WRITE_FLAGS = (CREATE_FLAGS & ~os.O_WRONLY) | os.O_RDWR  # read back for the magic check


class RangeSource(NamedTuple):
    """Bytes `[start, end)` of the object `key` in `bucket`, to append (a tuple: a build
    makes one per conversation and format, and a frozen dataclass costs twice as much)."""

    bucket: str
    key: str
    start: int
    end: int


RunItem = bytes | RangeSource
Locate = Callable[[str, str], Path]


class ComposeWriter:
    """The object being written to `target` (called `name` in errors)."""

    def __init__(
        self,
        target: Path,
        name: str,
        *,
        link_min: int = LINK_MIN,
        grown_directories: Sequence[Path] = (),
    ) -> None:
        self._target = target
        self._link_min = link_min
        self._parent = target.parent
        # Synced at the commit, deepest first: the target's directory, then those that gained
        # a directory on the way to it (created for this object).
        self.directories = (self._parent, *reversed(grown_directories))
        self._name = name
        self._lock = threading.Lock()
        self._stopped = False
        self.finished = False
        self.size = 0
        self._temp: Path | None = self._parent / temp_name(target.name)
        with os_errors(f"cannot create a temp file for {name}"):
            self._fd = os.open(self._temp, _WRITE_FLAGS, 0o666)
        self._fresh_size = 0
        self._written_back = 0  # bytes of the fresh file whose writeback was started
        self._synced: int | None = None  # bytes of the fresh file known to be on disk
        self._fresh_name: str | None = None  # the fresh file's name once it is a segment
        self._directory: str | None = None
        self._directory_fd = -1
        self._segments: list[Segment] = []
        self._linked = 0
        self._next_index = 0
        self._manifest_temp: Path | None = None

    # -- appending (worker thread) --------------------------------------------------------------

    def write(self, data: bytes) -> None:
        with self._lock:
            self._ensure_open()
            self._write(data)

    def append(self, item: RunItem, sources: Sources) -> None:
        """Append literal bytes, or a range of an object opened through `sources`."""
        with self._lock:
            self._ensure_open()
            if isinstance(item, RangeSource):
                self._append_range(item, sources.open(item))
                sources.done(item)
            else:
                self._write(item)

    def _write(self, data: bytes) -> None:
        fd = self._fresh_fd()
        with os_errors(f"cannot write {self._name}"):
            write_all(fd, data)
        self._grown(len(data))

    def _append_range(self, item: RangeSource, source: OpenedObject) -> None:
        if item.end > source.size:
            raise ValueError(
                f"byte range [{item.start}, {item.end}) exceeds the size of "
                f"{item.bucket}/{item.key} ({source.size})"
            )
        for piece in source.pieces(item.start, item.end):
            self._check_stopped()
            if not (self._worth_linking(source, piece) and self._link(source, piece)):
                self._copy(source, piece)

    def _worth_linking(self, source: OpenedObject, piece: Piece) -> bool:
        # Half the file at least, so a link never keeps much more alive than it uses.
        length = piece.length
        return length >= self._link_min and 2 * length >= source.file_size(piece.index)

    def _copy(self, source: OpenedObject, piece: Piece) -> None:
        # The hot path of a build (once per conversation and format): no context manager.
        fd = self._fresh_fd()
        try:
            copy_range(source.descriptor(piece.index), fd, piece.start, piece.end, stop=self._stop)
        except OSError as exc:
            raise storage_error(f"cannot copy into {self._name}", exc) from exc
        self._grown(piece.length)

    def _stop(self) -> bool:
        return self._stopped

    def _grown(self, length: int) -> None:
        """`length` bytes were appended to the fresh file."""
        self._fresh_size += length
        self.size += length
        self._write_back(at_least=WRITEBACK_STEP)

    def write_back(self) -> None:
        """Start writing the fresh file's last bytes to disk (before the commits of several
        writers, so that their fsyncs wait for one another's writes less)."""
        with self._lock:
            self._write_back(at_least=1)

    def sync(self) -> None:
        """Wait until the fresh file's bytes are on disk (`commit_all` syncs several writers'
        at once, so that one journal commit of the file system serves them all)."""
        with self._lock, os_errors(f"cannot store {self._name}"):
            self._sync_fresh()

    def _sync_fresh(self) -> None:
        if self._fd >= 0 and self._synced != self._fresh_size:
            os.fsync(self._fd)
            self._synced = self._fresh_size

    def _write_back(self, *, at_least: int) -> None:
        pending = self._fresh_size - self._written_back
        if pending >= at_least and self._fd >= 0:
            start_writeback(self._fd, self._written_back, pending)
            self._written_back = self._fresh_size

    def _link(self, source: OpenedObject, piece: Piece) -> bool:
        """Append `piece` as a hard link to its file; False when it must be copied instead."""
        with os_errors(f"cannot link a segment into {self._name}"):
            self._become_composite()
            name = self._allocate()
            if not source.link(piece.index, self._directory_fd, name):
                return False
            self._finish_fresh()
            self._segments.append(Segment(name, piece.start, piece.end))
        self._linked += 1
        self.size += piece.length
        return True

    # -- committing (worker thread) -------------------------------------------------------------

    def commit(self) -> None:
        """Make the object appear at its target; durable once its `directories` are synced
        (as `commit_all` does)."""
        with self._lock:
            self._ensure_open()
            replaced = peek_manifest(self._target, self._name)
            with os_errors(f"cannot store {self._name}"):
                if self._directory is not None and not self._linked:
                    self._become_plain()
                if self._directory is None and not self._starts_with_magic():
                    self._commit_plain()
                else:
                    self._commit_composite()
            if replaced is not None and replaced.directory != self._directory:
                remove_replaced_segments(self._target, replaced.directory, self._name)

    def _commit_plain(self) -> None:
        assert self._temp is not None
        self._sync_fresh()
        self._close_fd()
        os.replace(self._temp, self._target)
        self.finished = True

    def _commit_composite(self) -> None:
        self._become_composite()
        self._finish_fresh()
        assert self._directory is not None
        os.fsync(self._directory_fd)
        manifest = Manifest(self._directory, tuple(self._segments))
        self._manifest_temp = self._parent / temp_name(self._target.name)
        fd = os.open(self._manifest_temp, CREATE_FLAGS, 0o666)
        try:
            write_all(fd, encode(manifest))
            os.fsync(fd)
        finally:
            os.close(fd)
        self._require_segments()
        os.replace(self._manifest_temp, self._target)
        self.finished = True
        try:
            # An abort that removed the directory just before the rename: the object would be
            # broken, so it is not one.
            self._require_segments()
        except StorageError:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._target)
            raise
        self._release_directory()

    def _starts_with_magic(self) -> bool:
        return self._fresh_size >= len(MAGIC) and pread_exactly(self._fd, len(MAGIC), 0) == MAGIC

    def _require_segments(self) -> None:
        if os.fstat(self._directory_fd).st_nlink == 0:
            raise StorageError(f"the segments of {self._name} were removed while it was written")

    # -- closing --------------------------------------------------------------------------------

    def close(self) -> None:
        """Discard everything written unless `commit` succeeded. Runs in a worker thread."""
        self._stopped = True
        with self._lock:
            self._close_fd()
            if self.finished:
                self._release_directory()
                return
            self.finished = True
            for path in (self._temp, self._manifest_temp):
                if path is not None:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
            directory = self._directory
            self._release_directory()
            if directory is not None:
                with contextlib.suppress(SegmentsInUse, FileNotFoundError):
                    remove_segments(self._parent, directory, self._name)

    # -- internals ------------------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if self.finished:
            raise StorageError(f"writing {self._name} was already abandoned")
        self._check_stopped()

    def _check_stopped(self) -> None:
        if self._stopped:
            raise StorageError(f"writing {self._name} was abandoned")

    def _fresh_fd(self) -> int:
        """The file new bytes go to: the temp file, or a new segment after a link."""
        if self._fd < 0:
            self._fresh_name = self._allocate()
            with os_errors(f"cannot create a segment of {self._name}"):
                self._fd = os.open(self._fresh_name, _WRITE_FLAGS, 0o666, dir_fd=self._directory_fd)
            self._fresh_size = self._written_back = 0
            self._synced = None
        return self._fd

    def _allocate(self) -> str:
        name = segment_name(self._next_index)
        self._next_index += 1
        return name

    def _become_composite(self) -> None:
        """Create the segment directory (once) and move the temp file into it."""
        if self._directory is not None:
            return
        directory = segments_name(self._target.name)
        os.mkdir(self._parent / directory)
        self._directory = directory
        fsync_directory(self._parent)
        self._directory_fd = os.open(self._parent / directory, DIRECTORY_FLAGS)
        # Held until the manifest is in place: a clean-up must not take it for abandoned.
        fcntl.flock(self._directory_fd, fcntl.LOCK_SH)
        if self._fd >= 0 and self._temp is not None:
            self._fresh_name = self._allocate()
            os.rename(self._temp, self._fresh_name, dst_dir_fd=self._directory_fd)
            self._temp = None

    def _finish_fresh(self) -> None:
        """Sync the fresh segment and add it to the manifest (an empty one is dropped)."""
        if self._fd < 0:
            return
        assert self._fresh_name is not None
        if self._fresh_size:
            self._sync_fresh()
            self._segments.append(Segment(self._fresh_name, 0, self._fresh_size))
        else:
            os.unlink(self._fresh_name, dir_fd=self._directory_fd)
        self._close_fd()
        self._fresh_name = None

    def _become_plain(self) -> None:
        """A composite without links (every link failed): its one fresh segment, moved back
        beside the target, is all of it."""
        self._finish_fresh()
        temp = self._parent / temp_name(self._target.name)
        if self._segments:
            [segment] = self._segments
            os.rename(segment.name, temp, src_dir_fd=self._directory_fd)
            self._fd = os.open(temp, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
            self._fresh_size = self._written_back = self._synced = segment.length  # synced
        else:
            self._fd = os.open(temp, _WRITE_FLAGS, 0o666)
            self._fresh_size = self._written_back = 0
            self._synced = None
        self._temp = temp
        self._segments = []
        assert self._directory is not None
        directory, self._directory = self._directory, None
        self._release_directory()
        with contextlib.suppress(SegmentsInUse):  # then a clean-up removes it
            remove_segments(self._parent, directory, self._name)

    def _release_directory(self) -> None:
        if self._directory_fd >= 0:
            fd, self._directory_fd = self._directory_fd, -1
            os.close(fd)

    def _close_fd(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


class WriterSet:
    """Writers opened together (in one thread call) and closed together."""

    def __init__(self, open_writers: Iterable[Callable[[], ComposeWriter]]) -> None:
        self.writers: list[ComposeWriter] = []
        try:
            for open_writer in open_writers:
                self.writers.append(open_writer())
        except BaseException:
            self.close()
            raise

    @property
    def finished(self) -> bool:
        """Every writer committed (or closed): closing them only closes descriptors."""
        return all(writer.finished for writer in self.writers)

    def close(self) -> None:
        for writer in self.writers:
            writer.close()


def append_runs(runs: Sequence[tuple[ComposeWriter, Sequence[RunItem]]], locate: Locate) -> None:
    """Append each writer's items in order, in this one thread call, taking the writers in turn
    item by item: the formats of a version copy from the same conversations in the same
    order, so each conversation's pieces are opened once for all of them."""
    with Sources(locate, (item for _, items in runs for item in items)) as sources:
        for position in range(max((len(items) for _, items in runs), default=0)):
            for writer, items in runs:
                if position < len(items):
                    writer.append(items[position], sources)


def append_and_commit(
    runs: Sequence[tuple[ComposeWriter, Sequence[RunItem]]], locate: Locate
) -> None:
    """`append_runs`, then `commit_all` of its writers: one thread call instead of two."""
    append_runs(runs, locate)
    commit_all([writer for writer, _ in runs])


def commit_all(writers: Sequence[ComposeWriter]) -> None:
    """Sync the writers' files all at once, commit each writer, then sync each directory that
    changed for them once, deepest first: on a journalling file system the first sync commits
    every entry, and the rest are free."""
    if len(writers) > 1:
        for writer in writers:
            writer.write_back()
        # Concurrent fsyncs share the journal commits that one after another would each wait for.
        for synced in [_sync_threads().submit(writer.sync) for writer in writers]:
            synced.result()
    for writer in writers:
        writer.commit()
    for directory in dict.fromkeys(d for writer in writers for d in writer.directories):
        with os_errors(f"cannot store objects in {directory.name}"):
            fsync_directory(directory)


_SYNC_THREADS: ThreadPoolExecutor | None = None


def _sync_threads() -> ThreadPoolExecutor:
    """Threads that only fsync, so a commit never waits for a thread busy with anything else
    (the event loop's executor runs the commits themselves)."""
    global _SYNC_THREADS
    if _SYNC_THREADS is None:
        _SYNC_THREADS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="local-storage-sync")
    return _SYNC_THREADS


def _forget_sync_threads() -> None:
    global _SYNC_THREADS
    _SYNC_THREADS = None  # a forked child has none of its parent's threads


os.register_at_fork(after_in_child=_forget_sync_threads)


def _joined(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans in order, each run of overlapping or touching ones as one."""
    joined: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if joined and start <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(joined[-1][1], end))
        else:
            joined.append((start, end))
    return joined


class Sources:
    """The objects a pass copies ranges of, each open from its first range until its last."""

    def __init__(self, locate: Locate, items: Iterable[RunItem]) -> None:
        self._locate = locate
        ranges = [item for item in items if isinstance(item, RangeSource)]
        self._left = Counter((item.bucket, item.key) for item in ranges)
        self._open: dict[tuple[str, str], OpenedObject] = {}  # least recently used first
        self._paths: dict[tuple[str, str], Path] = {}  # located by the prefetch
        self._prefetch(ranges)

    def _prefetch(self, ranges: list[RangeSource]) -> None:
        """Start reading every small range at once (a conversation's pieces: one range per
        format, side by side), ranges that touch as one, sources in the order they are first
        copied from, up to `PREFETCH_MAX` bytes (a removal's thousands of ranges of a large
        old body are left to be read as they are copied, not pulled into memory at once).
        Larger ranges may be linked, not read, and a long copy's own readahead keeps up. (Of
        a composite source only its manifest is at the path: the hint is then idle.)"""
        small: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for item in ranges:
            if item.end - item.start < LINK_MIN:
                small.setdefault((item.bucket, item.key), []).append((item.start, item.end))
        left = PREFETCH_MAX
        for (bucket, key), spans in small.items():
            joined = _joined(spans)
            left -= sum(end - start for start, end in joined)
            if left < 0:
                return
            path = self._paths[(bucket, key)] = self._locate(bucket, key)
            prefetch(path, joined)

    def open(self, item: RangeSource) -> OpenedObject:
        key = (item.bucket, item.key)
        opened = self._open.pop(key, None)
        if opened is None:
            if len(self._open) >= _MAX_OPEN_SOURCES:
                self._open.pop(next(iter(self._open))).close()
            path = self._paths.get(key) or self._locate(*key)
            opened = open_object(path, f"{item.bucket}/{item.key}")
        self._open[key] = opened
        return opened

    def done(self, item: RangeSource) -> None:
        """One range of the object is appended; close it after its last."""
        key = (item.bucket, item.key)
        self._left[key] -= 1
        if self._left[key] <= 0 and key in self._open:
            self._open.pop(key).close()

    def __enter__(self) -> Sources:
        return self

    def __exit__(self, *exc: object) -> None:
        while self._open:
            self._open.popitem()[1].close()
