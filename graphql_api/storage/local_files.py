"""File system primitives of local storage: error mapping, flags, durable directories, copying
byte ranges between files, and opening things in worker threads without leaking them."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol, TypeVar

from .base import InvalidKey, StorageError, StorageFailure

# What an operator can act on, by errno; anything else is reported without a reason.
_REASONS: dict[int, StorageFailure] = {
    errno.ENOSPC: "full",
    errno.EDQUOT: "full",
    errno.EACCES: "unwritable",
    errno.EPERM: "unwritable",
    errno.EROFS: "unwritable",
    # A bucket directory replaced by a file: nothing can be written below it.
    errno.ENOTDIR: "unwritable",
    errno.EIO: "unreachable",
    errno.ENXIO: "unreachable",
    errno.ENODEV: "unreachable",
    errno.ESTALE: "unreachable",
    errno.ETIMEDOUT: "unreachable",
    errno.EHOSTDOWN: "unreachable",
    errno.ENOTCONN: "unreachable",
}

MISSING = (FileNotFoundError, NotADirectoryError)

# O_NONBLOCK: opening a FIFO planted in a bucket must not hang a worker thread.
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

# Bytes moved per copy call: between two calls a cancelled writer gets to stop.
COPY_STEP = 8 * 1024 * 1024

# copy_file_range refusing this pair of files (another file system on older kernels, a file
# system without it): the same bytes go through read and write instead.
_NO_KERNEL_COPY = frozenset(
    {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.EBADF}
)


# Bytes a writer lets pile up in the page cache before it asks the kernel to start writing
# them back: the disk then writes while the rest is copied, and the fsync at the commit waits
# for the last step only, not for the whole object.
WRITEBACK_STEP = 1024 * 1024


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Linux's sync_file_range(2) from the C library, which Python's os module lacks; None
    where there is none."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_SYNC_FILE_RANGE = _sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2  # start writeback of the range's dirty pages; do not wait


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Have the kernel start writing bytes `[offset, offset + length)` of the file to disk,
    without waiting (as PostgreSQL's *_flush_after settings do). Only a hint: durability
    still comes from fsync, so a kernel or file system without it changes nothing."""
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def prefetch(path: Path, spans: Iterable[tuple[int, int]]) -> None:
    """Have the kernel start reading each `[start, end)` of the file into the page cache,
    without waiting. A pass that prefetches all its sources before it copies the first keeps
    the disk busy with many reads at once, where copying them in turn waits for each one's
    first read: 80 pieces not read for a while were copied in 19 ms instead of 30. Only a
    hint: a missing file or a kernel without posix_fadvise is left to the copy to report."""
    if not hasattr(os, "posix_fadvise"):
        return
    try:
        fd = os.open(path, READ_FLAGS)
    except OSError:
        return
    try:
        for start, end in spans:
            os.posix_fadvise(fd, start, end - start, os.POSIX_FADV_WILLNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


def storage_error(action: str, exc: OSError) -> StorageError:
    return StorageError(f"{action}: {exc}", reason=_REASONS.get(exc.errno or 0))


@contextlib.contextmanager
def os_errors(action: str) -> Iterator[None]:
    """Report file system failures as `StorageError`, the error callers of `Storage` expect,
    with the reason an operator can act on (full, not writable, device gone)."""
    try:
        yield
    except OSError as exc:
        raise storage_error(action, exc) from exc


def fsync_directory(directory: Path | int) -> None:
    """Make the directory's entries durable; `directory` may be an open descriptor."""
    if isinstance(directory, int):
        os.fsync(directory)
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_directory(directory: Path) -> bool:
    """Create `directory` unless it exists; whether it did. Its entry in the parent is durable
    once the caller has synced the parent (a writer does it with its other syncs, at commit)."""
    try:
        directory.mkdir()
    except FileExistsError:
        created = False
    else:
        created = True
    # Checked after mkdir too: something may have swapped in a symlink since the key was located.
    mode = os.lstat(directory).st_mode
    if stat.S_ISLNK(mode):
        raise InvalidKey(f"{directory} is a symlink")
    if not stat.S_ISDIR(mode):
        raise StorageError(f"{directory} exists and is not a directory")
    return created


def regular_file_stat(path: Path, name: str) -> os.stat_result | None:
    try:
        st = os.lstat(path)
    except MISSING:
        return None
    except OSError as exc:
        raise storage_error(f"cannot stat {name}", exc) from exc
    return st if stat.S_ISREG(st.st_mode) else None


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view) :]


def pread_exactly(fd: int, length: int, offset: int) -> bytes:
    """`length` bytes at `offset`, or fewer only where the file ends."""
    parts: list[bytes] = []
    while length > 0:
        data = os.pread(fd, length, offset)
        if not data:
            break
        parts.append(data)
        offset += len(data)
        length -= len(data)
    return b"".join(parts)


def copy_range(source: int, target: int, start: int, end: int, *, stop: Callable[[], bool]) -> None:
    """Append bytes `[start, end)` of the file open as `source` at the position of `target`:
    in the kernel (copy_file_range) where it can, else by read and write. `stop` is asked
    between steps, so a writer whose caller gave up does not copy on for a gigabyte."""
    kernel = hasattr(os, "copy_file_range")  # Linux only
    offset = start
    while offset < end:
        if stop():
            raise StorageError("the write was abandoned")
        step = min(COPY_STEP, end - offset)
        if kernel:
            try:
                copied = os.copy_file_range(source, target, step, offset)
            except OSError as exc:
                if exc.errno not in _NO_KERNEL_COPY:
                    raise
                kernel = False
                continue
        else:
            data = os.pread(source, min(step, 1024 * 1024), offset)
            write_all(target, data)
            copied = len(data)
        if copied == 0:
            # Objects are only ever replaced by rename, never truncated in place.
            raise StorageError("a copied object shrank while being read")
        offset += copied


class Closeable(Protocol):
    def close(self) -> None: ...


_C = TypeVar("_C", bound=Closeable)


async def open_in_thread(opener: Callable[[], _C]) -> _C:
    """Run `opener` in a thread; if the caller is cancelled meanwhile, close what it opened."""
    task = asyncio.ensure_future(asyncio.to_thread(opener))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_close_result)
        raise


def _close_result(task: asyncio.Future[_C]) -> None:
    if not task.cancelled() and task.exception() is None:
        task.result().close()
