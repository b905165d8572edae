"""Storage in a local directory: one directory per bucket, `/` in a key separates subdirectories."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import secrets
import stat
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TypeVar

from .base import (
    BUCKETS,
    CHUNK_SIZE,
    PROBE_PREFIX,
    DownloadLink,
    InvalidKey,
    ObjectNotFound,
    Part,
    PendingWrite,
    StorageError,
    StorageFailure,
    StoredObject,
    stream_parts,
    validate_bucket,
    validate_key,
)
from .links import LinkSigner

# The longest file name common filesystems accept, in bytes.
NAME_MAX = 255

# `validate_key` never allows `~`, so no key can name a temp file, and listing a bucket never
# mistakes one for an object.
_TEMP_SUFFIX = "~tmp"
_TEMP_STEM_MAX = 100
# `.<target name, maybe cut short>.<16 hex digits>~tmp`, as `_AtomicWriter` names them.
_TEMP_NAME = re.compile(r"^\.(.+)\.[0-9a-f]{16}~tmp$")
# Top-level entries (one per file or conversation id) listed per worker-thread call.
_LISTING_BATCH = 256

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

_MISSING = (FileNotFoundError, NotADirectoryError)

# O_NONBLOCK: opening a FIFO planted in a bucket must not hang a worker thread.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class LocalStorage:
    """Objects as files under `root`; see `Storage` for the contract.

    Writes go to a temp file beside the target and are renamed over it, so readers see the old
    object or the new one, never a mix. Symlinks inside a bucket are never followed: a key whose
    path passes through one is rejected with `InvalidKey`.

    Nothing but this app can serve the files, so download links point at the app's own route,
    signed by `link_signer`; a storage opened without one (maintenance, tests) hands out none.
    """

    def __init__(self, root: Path, *, link_signer: LinkSigner | None = None) -> None:
        self.link_signer = link_signer
        self.root = Path(root).resolve()
        self.url = self.root.as_uri()
        for bucket in BUCKETS:
            (self.root / bucket).mkdir(parents=True, exist_ok=True)
        # Resolved once, so a bucket directory may itself be a symlink chosen by the operator.
        self._bucket_dirs = {bucket: (self.root / bucket).resolve() for bucket in BUCKETS}

    async def put(self, bucket: str, key: str, chunks: AsyncIterable[bytes]) -> int:
        self._validate(bucket, key)
        writer = await _open_in_thread(lambda: _AtomicWriter(self._prepare_target(bucket, key)))
        try:
            size = 0
            async for chunk in chunks:
                size += await asyncio.to_thread(writer.write, chunk)
            await asyncio.to_thread(writer.commit)
            return size
        finally:
            writer.close()

    async def compose(self, bucket: str, key: str, parts: Sequence[Part]) -> int:
        # Copied ranges are streamed through: on a local disk a read is as cheap as any copy.
        return await self.put(bucket, key, stream_parts(self, bucket, parts))

    def get(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        self._validate(bucket, key)
        return self._stream(bucket, key, 0, None)

    def get_range(self, bucket: str, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        self._validate(bucket, key)
        if not (isinstance(start, int) and isinstance(end, int)):
            raise TypeError("byte range bounds must be integers")
        if not 0 <= start <= end:
            raise ValueError(f"invalid byte range [{start}, {end})")
        return self._stream(bucket, key, start, end)

    async def delete(self, bucket: str, key: str) -> None:
        self._validate(bucket, key)
        await asyncio.to_thread(self._delete, bucket, key)

    async def exists(self, bucket: str, key: str) -> bool:
        self._validate(bucket, key)
        return await asyncio.to_thread(self._stat, bucket, key) is not None

    async def size(self, bucket: str, key: str) -> int:
        self._validate(bucket, key)
        st = await asyncio.to_thread(self._stat, bucket, key)
        if st is None:
            raise ObjectNotFound(f"{bucket}/{key}")
        return st.st_size

    async def list_keys(self, bucket: str) -> list[str]:
        return sorted([found.key async for found in self.list_objects(bucket)])

    async def list_objects(self, bucket: str) -> AsyncIterator[StoredObject]:
        async for path, st in self._regular_files(bucket):
            if not path.endswith(_TEMP_SUFFIX):
                yield StoredObject(bucket, path, st.st_size, _modified_at(st))

    async def list_pending_writes(self, bucket: str) -> AsyncIterator[PendingWrite]:
        async for path, st in self._regular_files(bucket):
            if path.endswith(_TEMP_SUFFIX):
                yield PendingWrite(bucket, _temp_target(path), path, _modified_at(st), st.st_size)

    async def abort_pending_write(self, pending: PendingWrite) -> None:
        path = self._locate_temp(pending.bucket, pending.upload_id)
        name = f"{pending.bucket}/{pending.upload_id}"
        await asyncio.to_thread(_unlink_regular_file, path, name)

    async def check(self) -> None:
        await asyncio.to_thread(self._check)

    async def probe(self, min_free_bytes: int) -> None:
        await asyncio.to_thread(self._probe, min_free_bytes)

    async def download_link(
        self,
        bucket: str,
        key: str,
        *,
        filename: str,
        content_type: str,
        ttl_seconds: int,
        base_url: str,
    ) -> DownloadLink:
        if self.link_signer is None:
            raise RuntimeError("this local storage was opened without a link signer")
        return self.link_signer.sign(
            bucket,
            key,
            filename=filename,
            content_type=content_type,
            ttl_seconds=ttl_seconds,
            base_url=base_url,
        )

    async def close(self) -> None:
        return None

    # -- keys to paths ------------------------------------------------------------------------

    def _validate(self, bucket: str, key: str) -> None:
        """The checks that need no file system access, so bad keys fail before any I/O."""
        validate_bucket(bucket)
        validate_key(key)
        if any(len(os.fsencode(segment)) > NAME_MAX for segment in key.split("/")):
            raise InvalidKey(f"storage key {key!r} has a segment longer than {NAME_MAX} bytes")

    def _locate(self, bucket: str, key: str) -> Path:
        """The object's path, after checking that nothing on it below the bucket is a symlink."""
        self._validate(bucket, key)
        bucket_dir = self._bucket_dirs[bucket]
        path = bucket_dir.joinpath(*key.split("/"))
        # The key rules alone keep the path inside the bucket; this guards against symlinks
        # planted in the bucket directory, which could point anywhere.
        resolved = Path(os.path.realpath(path))
        if resolved != path or path.is_symlink() or not resolved.is_relative_to(bucket_dir):
            raise InvalidKey(f"storage key {key!r} leads through a symlink in {bucket!r}")
        return path

    def _locate_temp(self, bucket: str, path: str) -> Path:
        """The temp file at `path` in the bucket (as `list_pending_writes` names it), after the
        same checks as `_locate`: temp names break the key rules on purpose."""
        bucket_dir = self._bucket_dirs[validate_bucket(bucket)]
        segments = path.split("/")
        if not segments[-1].endswith(_TEMP_SUFFIX) or any(
            segment in ("", ".", "..") or "\\" in segment or "\0" in segment for segment in segments
        ):
            raise InvalidKey(f"{path!r} does not name a temp file")
        parent = bucket_dir.joinpath(*segments[:-1])
        if Path(os.path.realpath(parent)) != parent:
            raise InvalidKey(f"temp file {path!r} lies behind a symlink in {bucket!r}")
        return parent / segments[-1]

    def _prepare_target(self, bucket: str, key: str) -> Path:
        """Locate the object and create its parent directories, one checked level at a time."""
        path = self._locate(bucket, key)
        directory = self._bucket_dirs[bucket]
        for segment in key.split("/")[:-1]:
            directory = directory / segment
            with _os_errors(f"cannot create directory for {bucket}/{key}"):
                _make_directory(directory)
        return path

    # -- blocking helpers, run in worker threads ----------------------------------------------

    def _open_reader(self, bucket: str, key: str) -> _Reader:
        return _Reader(self._locate(bucket, key), f"{bucket}/{key}")

    def _stat(self, bucket: str, key: str) -> os.stat_result | None:
        """The object's status, or None when there is no object (a directory is a prefix)."""
        return _regular_file_stat(self._locate(bucket, key), f"{bucket}/{key}")

    def _delete(self, bucket: str, key: str) -> None:
        _unlink_regular_file(self._locate(bucket, key), f"{bucket}/{key}")

    def _check(self) -> None:
        for bucket, directory in self._bucket_dirs.items():
            try:
                st = os.lstat(directory)
            except OSError as exc:
                message = f"bucket {bucket!r} at {directory} is unreachable: {exc}"
                raise StorageError(message, reason="unreachable") from exc
            if not stat.S_ISDIR(st.st_mode):
                message = f"bucket {bucket!r} at {directory} is not a directory"
                raise StorageError(message, reason="unwritable")
            if not os.access(directory, os.W_OK | os.X_OK):
                message = f"bucket {bucket!r} at {directory} is not writable"
                raise StorageError(message, reason="unwritable")

    def _probe(self, min_free_bytes: int) -> None:
        self._check()
        for bucket, directory in self._bucket_dirs.items():
            _require_free_space(bucket, directory, min_free_bytes)
            _probe_write(bucket, directory)

    async def _regular_files(self, bucket: str) -> AsyncIterator[tuple[str, os.stat_result]]:
        """(path in the bucket, status) of every regular file, temp files included, a batch of
        top-level entries at a time: a bucket of many files is never listed into memory."""
        directory = self._bucket_dirs[validate_bucket(bucket)]
        names = await asyncio.to_thread(_sorted_names, directory, bucket)
        for start in range(0, len(names), _LISTING_BATCH):
            batch = names[start : start + _LISTING_BATCH]
            for found in await asyncio.to_thread(_regular_files_below, directory, batch, bucket):
                yield found

    # -- streaming ----------------------------------------------------------------------------

    async def _stream(
        self, bucket: str, key: str, start: int, end: int | None
    ) -> AsyncIterator[bytes]:
        reader = await _open_in_thread(lambda: self._open_reader(bucket, key))
        try:
            stop = reader.size if end is None else end
            if stop > reader.size:
                raise ValueError(f"byte range [{start}, {end}) exceeds object size {reader.size}")
            offset = start
            while offset < stop:
                chunk = await asyncio.to_thread(reader.read, offset, min(CHUNK_SIZE, stop - offset))
                offset += len(chunk)
                yield chunk
        finally:
            reader.close()


class _Closeable(Protocol):
    def close(self) -> None: ...


_C = TypeVar("_C", bound=_Closeable)


async def _open_in_thread(opener: Callable[[], _C]) -> _C:
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


class _Reader:
    """An open object. Reads run in worker threads; `close` takes the same lock, so a task
    cancelled mid-read never closes the descriptor (whose number could be reused) under a read
    still running in its thread."""

    def __init__(self, path: Path, name: str) -> None:
        self._name = name
        try:
            self._fd = os.open(path, _READ_FLAGS)
        except _MISSING as exc:
            raise ObjectNotFound(name) from exc
        except OSError as exc:
            raise _storage_error(f"cannot open {name}", exc) from exc
        self._lock = threading.Lock()
        try:
            st = os.fstat(self._fd)
        except OSError as exc:
            self.close()
            raise _storage_error(f"cannot stat {name}", exc) from exc
        if not stat.S_ISREG(st.st_mode):
            self.close()
            raise ObjectNotFound(name)
        self.size = st.st_size

    def read(self, offset: int, length: int) -> bytes:
        with self._lock:
            if self._fd < 0:
                raise StorageError(f"{self._name} was closed while reading")
            with _os_errors(f"cannot read {self._name}"):
                data = os.pread(self._fd, length, offset)
        # Objects are only ever replaced by rename, never truncated in place, so an open file
        # cannot shrink unless something outside this process edits the bucket.
        if not data:
            raise StorageError(f"{self._name} shrank while being read")
        return data

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


class _AtomicWriter:
    """A temp file beside `target`, renamed over it by `commit` or removed by `close`.

    Writes and commit run in worker threads; `close` runs on the event loop and takes the same
    lock, so it waits for at most one write or commit still running after a cancellation.
    """

    def __init__(self, target: Path) -> None:
        self._target = target
        stem = target.name[:_TEMP_STEM_MAX]
        self._temp = target.with_name(f".{stem}.{secrets.token_hex(8)}{_TEMP_SUFFIX}")
        with _os_errors(f"cannot create a temp file for {target.name}"):
            self._fd = os.open(self._temp, _CREATE_FLAGS, 0o666)
        self._lock = threading.Lock()
        self._finished = False

    def write(self, chunk: bytes) -> int:
        view = memoryview(chunk).cast("B")
        with self._lock:
            self._ensure_open()
            with _os_errors(f"cannot write {self._target.name}"):
                remaining = view
                while remaining:
                    remaining = remaining[os.write(self._fd, remaining) :]
        return view.nbytes

    def commit(self) -> None:
        with self._lock:
            self._ensure_open()
            with _os_errors(f"cannot store {self._target.name}"):
                os.fsync(self._fd)
                self._close_fd()
                os.replace(self._temp, self._target)
                self._finished = True
                _fsync_directory(self._target.parent)

    def close(self) -> None:
        """Discard the temp file unless `commit` succeeded."""
        with self._lock:
            self._close_fd()
            if not self._finished:
                self._finished = True
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._temp)

    def _ensure_open(self) -> None:
        if self._finished or self._fd < 0:
            raise StorageError(f"writing {self._target.name} was already abandoned")

    def _close_fd(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


def _make_directory(directory: Path) -> None:
    try:
        directory.mkdir()
    except FileExistsError:
        pass
    else:
        _fsync_directory(directory.parent)
    # Checked after mkdir too: something may have swapped in a symlink since `_locate`.
    mode = os.lstat(directory).st_mode
    if stat.S_ISLNK(mode):
        raise InvalidKey(f"{directory} is a symlink")
    if not stat.S_ISDIR(mode):
        raise StorageError(f"{directory} exists and is not a directory")


def _regular_file_stat(path: Path, name: str) -> os.stat_result | None:
    try:
        st = os.lstat(path)
    except _MISSING:
        return None
    except OSError as exc:
        raise _storage_error(f"cannot stat {name}", exc) from exc
    return st if stat.S_ISREG(st.st_mode) else None


def _unlink_regular_file(path: Path, name: str) -> None:
    if _regular_file_stat(path, name) is None:
        return
    with _os_errors(f"cannot delete {name}"), contextlib.suppress(*_MISSING):
        os.unlink(path)


def _sorted_names(directory: Path, bucket: str) -> list[str]:
    with _os_errors(f"cannot list bucket {bucket!r}"):
        return sorted(os.listdir(directory))


def _regular_files_below(
    directory: Path, names: list[str], bucket: str
) -> list[tuple[str, os.stat_result]]:
    found: list[tuple[str, os.stat_result]] = []
    with _os_errors(f"cannot list bucket {bucket!r}"):
        for name in names:
            _collect(directory / name, name, found)
    return found


def _collect(path: Path, relative: str, found: list[tuple[str, os.stat_result]]) -> None:
    """Regular files at or below `path`; symlinks are not followed, entries removed meanwhile
    are skipped."""
    try:
        st = os.lstat(path)
    except _MISSING:
        return
    if stat.S_ISREG(st.st_mode):
        found.append((relative, st))
    elif stat.S_ISDIR(st.st_mode):
        try:
            names = sorted(os.listdir(path))
        except _MISSING:
            return
        for name in names:
            _collect(path / name, f"{relative}/{name}", found)


def _temp_target(path: str) -> str:
    """The key a temp file was going to become (its last segment may have been cut short)."""
    parent, _, name = path.rpartition("/")
    match = _TEMP_NAME.match(name)
    if match is None:
        return path
    return f"{parent}/{match.group(1)}" if parent else match.group(1)


def _modified_at(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(st.st_mtime, UTC)


def _require_free_space(bucket: str, directory: Path, min_free_bytes: int) -> None:
    with _os_errors(f"cannot read the free space of bucket {bucket!r}"):
        st = os.statvfs(directory)
    free = st.f_bavail * st.f_frsize
    if free < min_free_bytes:
        raise StorageError(
            f"bucket {bucket!r} at {directory} has {free} bytes free, less than the "
            f"{min_free_bytes} required",
            reason="full",
        )
    if st.f_files and not st.f_favail:
        raise StorageError(f"bucket {bucket!r} at {directory} has no free inodes", reason="full")


def _probe_write(bucket: str, directory: Path) -> None:
    """Create, write, sync and remove a tiny temp file: what every write needs, for real."""
    probes = directory / PROBE_PREFIX.rstrip("/")
    with _os_errors(f"cannot write to bucket {bucket!r}"):
        _make_directory(probes)
        temp = probes / f".probe.{secrets.token_hex(8)}{_TEMP_SUFFIX}"
        fd = os.open(temp, _CREATE_FLAGS, 0o600)
        try:
            try:
                os.write(fd, b"probe")
                os.fsync(fd)
            finally:
                os.close(fd)
        finally:
            # Gone already if a clean-up took it for a leftover: the probe still succeeded.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _storage_error(action: str, exc: OSError) -> StorageError:
    return StorageError(f"{action}: {exc}", reason=_REASONS.get(exc.errno or 0))


@contextlib.contextmanager
def _os_errors(action: str) -> Iterator[None]:
    """Report file system failures as `StorageError`, the error callers of `Storage` expect,
    with the reason an operator can act on (full, not writable, device gone)."""
    try:
        yield
    except OSError as exc:
        raise _storage_error(action, exc) from exc
