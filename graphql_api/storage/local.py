"""Storage in a local directory: one directory per bucket, `/` in a key separates subdirectories.

An object is a plain file at its key's path, or a *composite*: a small manifest there listing
byte ranges of segment files in a directory beside it, so that an add to a large training file
links the old body's segments instead of copying a gigabyte (local_manifest.py has the format,
local_compose.py when a write becomes one). Callers never see the difference.

    local.py            LocalStorage: the Storage protocol, keys to paths
    local_files.py      errors, flags, durable directories, kernel copies of byte ranges
    local_names.py      names of temp files and segment directories
    local_manifest.py   the composite manifest's format
    local_objects.py    opening a plain or composite object; reading it
    local_compose.py    writing an object atomically, plain or composite
    local_removal.py    deleting objects, removing segment directories
    local_listing.py    walking a bucket: objects, temp files, orphan segment directories
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import secrets
import stat
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from .base import (
    BUCKETS,
    CHUNK_SIZE,
    PROBE_PREFIX,
    CopyRange,
    DownloadLink,
    InvalidKey,
    ObjectNotFound,
    Part,
    PendingWrite,
    StorageError,
    StoredObject,
    validate_bucket,
    validate_key,
)
from .links import LinkSigner
from .local_compose import (
    LINK_MIN,
    ComposeWriter,
    Locate,
    RangeSource,
    RunItem,
    WriterSet,
    append_and_commit,
    append_runs,
    commit_all,
)
from .local_files import (
    CREATE_FLAGS,
    MISSING,
    fsync_directory,
    make_directory,
    open_in_thread,
    os_errors,
    regular_file_stat,
    storage_error,
)
from .local_listing import Entry, Listing, scan
from .local_names import TEMP_SUFFIX, is_segments_name, is_temp_name
from .local_objects import Reader, object_size
from .local_removal import delete_object, referenced, remove_segments
from .tasks import gather

# The longest file name common filesystems accept, in bytes.
NAME_MAX = 255

# Top-level entries (one per file or conversation id) listed per worker-thread call.
_LISTING_BATCH = 256

# What one `compose` step is: literal bytes and ranges written in one worker-thread call, or
# a stream poured chunk by chunk.
_Step = list[RunItem] | AsyncIterable[bytes]


class LocalStorage:
    """Objects as files under `root`; see `Storage` for the contract.

    Writes go to a temp file (and, for composites, a segment directory) beside the target and
    appear by one rename, so readers see the old object or the new one, never a mix. Symlinks
    inside a bucket are never followed: a key whose path passes through one is rejected with
    `InvalidKey`.

    A pending write that is a segment directory is aborted only once nothing holds it: its
    writer (in any process) and readers of the composite it belonged to keep a shared lock on
    it, and `abort_pending_write` then raises `StorageError` instead of breaking them.

    Nothing but this app can serve the files, so download links point at the app's own route,
    signed by `link_signer`; a storage opened without one (maintenance, tests) hands out none.
    """

    def __init__(
        self,
        root: Path,
        *,
        link_signer: LinkSigner | None = None,
        link_min_bytes: int = LINK_MIN,
    ) -> None:
        self.link_signer = link_signer
        # Ranges of at least this many bytes are linked rather than copied (local_compose.py);
        # tests lower it to build composites of tiny segments.
        self.link_min_bytes = link_min_bytes
        self.root = Path(root).resolve()
        self.url = self.root.as_uri()
        self.copies_small_ranges = True
        for bucket in BUCKETS:
            (self.root / bucket).mkdir(parents=True, exist_ok=True)
        # Resolved once, so a bucket directory may itself be a symlink chosen by the operator.
        self._bucket_dirs = {bucket: (self.root / bucket).resolve() for bucket in BUCKETS}

    async def put(self, bucket: str, key: str, chunks: AsyncIterable[bytes]) -> int:
        return await self.compose(bucket, key, [chunks])

    async def compose(self, bucket: str, key: str, parts: Sequence[Part]) -> int:
        return (await self.compose_many(bucket, {key: parts}))[key]

    async def compose_many(
        self, bucket: str, objects: Mapping[str, Sequence[Part]]
    ) -> dict[str, int]:
        """The objects made only of bytes and ranges are written in one thread pass (each
        source opened once for all of them), the others each by its own task; then all are
        committed in one thread call that syncs their directory once. When there are no
        others, the pass and the commit are one thread call."""
        for key in objects:
            self._validate(bucket, key)
        # Every part checked before anything is written (each source once).
        checked: set[tuple[str, str]] = set()
        plans = [self._steps(bucket, parts, checked) for parts in objects.values()]
        opened = await open_in_thread(
            lambda: WriterSet(functools.partial(self._open_writer, bucket, key) for key in objects)
        )
        locate = self._source_locator()
        try:
            runs = [_only_run(steps) for steps in plans]
            together = [
                (writer, run)
                for writer, run in zip(opened.writers, runs, strict=True)
                if run is not None
            ]
            apart = [
                self._write_steps(writer, steps, locate)
                for writer, steps, run in zip(opened.writers, plans, runs, strict=True)
                if run is None
            ]
            if not apart:
                await asyncio.to_thread(append_and_commit, together, locate)
            else:
                if together:
                    apart.append(asyncio.to_thread(append_runs, together, locate))
                await gather(*apart)
                await asyncio.to_thread(commit_all, opened.writers)
            return {key: writer.size for key, writer in zip(objects, opened.writers, strict=True)}
        finally:
            if opened.finished:
                opened.close()  # nothing left to remove: no file system call waits
            else:
                # In a thread: a cancelled copy may still be running, and close waits for it.
                await asyncio.shield(asyncio.to_thread(opened.close))

    def get(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        self._validate(bucket, key)
        return self._stream(bucket, key, 0, None)

    def get_range(self, bucket: str, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        self._validate(bucket, key)
        _check_range(start, end)
        return self._stream(bucket, key, start, end)

    async def delete(self, bucket: str, key: str) -> None:
        self._validate(bucket, key)
        await asyncio.to_thread(self._delete, bucket, key)

    async def exists(self, bucket: str, key: str) -> bool:
        self._validate(bucket, key)
        return await asyncio.to_thread(self._size, bucket, key) is not None

    async def size(self, bucket: str, key: str) -> int:
        self._validate(bucket, key)
        size = await asyncio.to_thread(self._size, bucket, key)
        if size is None:
            raise ObjectNotFound(f"{bucket}/{key}")
        return size

    async def discard(self, bucket: str, key: str) -> None:
        await self.delete(bucket, key)  # its segment files go with it

    async def segments_of(self, bucket: str, key: str) -> frozenset[str]:
        """None: a composite's segment files are not objects, and go with their manifest."""
        self._validate(bucket, key)
        return frozenset()

    async def list_keys(self, bucket: str) -> list[str]:
        return sorted([found.key async for found in self.list_objects(bucket)])

    async def list_objects(self, bucket: str) -> AsyncIterator[StoredObject]:
        async for entry in self._entries(bucket):
            if entry.kind == "object":
                yield StoredObject(bucket, entry.path, entry.size, _modified(entry))

    async def list_pending_writes(self, bucket: str) -> AsyncIterator[PendingWrite]:
        async for entry in self._entries(bucket):
            if entry.kind != "object":
                yield PendingWrite(bucket, entry.target, entry.path, _modified(entry), entry.size)

    async def abort_pending_write(self, pending: PendingWrite) -> None:
        path = self._locate_pending(pending.bucket, pending.upload_id)
        name = f"{pending.bucket}/{pending.upload_id}"
        await asyncio.to_thread(_abort, path, name)

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
        return self._checked_path(bucket, key, set(), last=True)

    def _source_locator(self) -> Locate:
        """`_locate` for the sources of one compose, whose keys `_steps` validated: each
        directory on the way is checked once per call, not once per range, and the object
        itself is left to its opening with O_NOFOLLOW (a symlink there is `InvalidKey` too),
        so a conversation's pieces cost one lstat instead of three."""
        checked: set[str] = set()
        return lambda bucket, key: self._checked_path(bucket, key, checked, last=False)

    def _checked_path(self, bucket: str, key: str, checked: set[str], *, last: bool) -> Path:
        """The path of `key`, each directory on the way (and, with `last`, the object itself)
        checked not to be a symlink, but those already in `checked`, which gains the rest."""
        bucket_dir = self._bucket_dirs[bucket]
        # The key rules alone keep the path inside the bucket; this guards against symlinks
        # planted in the bucket directory (or put in its place), which could point anywhere.
        # One lstat per level below the root: a build locates hundreds of pieces, and
        # resolving each whole path (os.path.realpath) was most of a create's CPU.
        segments = key.split("/")
        here = str(bucket_dir)
        for segment in ["", *(segments if last else segments[:-1])]:
            here = os.path.join(here, segment) if segment else here
            if here in checked:
                continue
            try:
                mode = os.lstat(here).st_mode
            except (FileNotFoundError, NotADirectoryError):
                break  # nothing below exists, so nothing below is a symlink
            except OSError as exc:
                raise storage_error(f"cannot look up {bucket}/{key}", exc) from exc
            if stat.S_ISLNK(mode):
                raise InvalidKey(f"storage key {key!r} leads through a symlink in {bucket!r}")
            checked.add(here)
        return bucket_dir.joinpath(*segments)

    def _locate_pending(self, bucket: str, path: str) -> Path:
        """The temp file or segment directory at `path` in the bucket (as
        `list_pending_writes` names them), after the same checks as `_locate`: their names
        break the key rules on purpose."""
        bucket_dir = self._bucket_dirs[validate_bucket(bucket)]
        segments = path.split("/")
        last = segments[-1]
        if not (is_temp_name(last) or is_segments_name(last)) or any(
            segment in ("", ".", "..") or "\\" in segment or "\0" in segment for segment in segments
        ):
            raise InvalidKey(f"{path!r} does not name a pending write")
        parent = bucket_dir.joinpath(*segments[:-1])
        if Path(os.path.realpath(parent)) != parent:
            raise InvalidKey(f"pending write {path!r} lies behind a symlink in {bucket!r}")
        return parent / last

    def _prepare_target(self, bucket: str, key: str) -> tuple[Path, list[Path]]:
        """Locate the object and create its parent directories, one checked level at a time;
        the path, and the directories that gained one of them (to sync at the commit)."""
        path = self._locate(bucket, key)
        directory = self._bucket_dirs[bucket]
        grown: list[Path] = []
        for segment in key.split("/")[:-1]:
            parent, directory = directory, directory / segment
            with os_errors(f"cannot create directory for {bucket}/{key}"):
                if make_directory(directory):
                    grown.append(parent)
        return path, grown

    def _open_writer(self, bucket: str, key: str) -> ComposeWriter:
        target, grown = self._prepare_target(bucket, key)
        return ComposeWriter(
            target, f"{bucket}/{key}", link_min=self.link_min_bytes, grown_directories=grown
        )

    async def _write_steps(self, writer: ComposeWriter, steps: list[_Step], locate: Locate) -> None:
        for step in steps:
            if isinstance(step, list):
                await asyncio.to_thread(append_runs, [(writer, step)], locate)
            else:
                await _pour(writer, step)

    def _steps(
        self, bucket: str, parts: Sequence[Part], checked: set[tuple[str, str]]
    ) -> list[_Step]:
        """`parts` grouped into runs of bytes and ranges, and streams; raises on a bad part.
        `checked`: the sources whose keys are known to be valid, extended here."""
        steps: list[_Step] = []
        run: list[RunItem] = []
        for part in parts:
            if isinstance(part, (bytes, bytearray, memoryview)):
                if part:
                    run.append(part if isinstance(part, bytes) else bytes(memoryview(part)))
            elif isinstance(part, CopyRange):
                source_bucket = bucket if part.bucket is None else part.bucket
                if (source_bucket, part.key) not in checked:
                    self._validate(source_bucket, part.key)
                    checked.add((source_bucket, part.key))
                _check_range(part.start, part.end)
                run.append(RangeSource(source_bucket, part.key, part.start, part.end))
            elif isinstance(part, AsyncIterable):
                if run:
                    steps.append(run)
                    run = []
                steps.append(part)
            else:
                raise TypeError(f"compose parts must be bytes, CopyRange or streams, not {part!r}")
        if run:
            steps.append(run)
        return steps

    # -- blocking helpers, run in worker threads ----------------------------------------------

    def _open_reader(self, bucket: str, key: str) -> Reader:
        return Reader(self._locate(bucket, key), f"{bucket}/{key}")

    def _size(self, bucket: str, key: str) -> int | None:
        return object_size(self._locate(bucket, key), f"{bucket}/{key}")

    def _delete(self, bucket: str, key: str) -> None:
        delete_object(self._locate(bucket, key), f"{bucket}/{key}")

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

    async def _entries(self, bucket: str) -> AsyncIterator[Entry]:
        """Every object, temp file and orphan segment directory, a batch of top-level entries
        at a time: a bucket of many files is never listed into memory."""
        directory = self._bucket_dirs[validate_bucket(bucket)]
        names = await asyncio.to_thread(_sorted_names, directory, bucket)
        top = Listing(names)
        for start in range(0, len(names), _LISTING_BATCH):
            batch = names[start : start + _LISTING_BATCH]
            with os_errors(f"cannot list bucket {bucket!r}"):
                found = await asyncio.to_thread(scan, directory, batch, top)
            for entry in found:
                yield entry

    # -- streaming ----------------------------------------------------------------------------

    async def _stream(
        self, bucket: str, key: str, start: int, end: int | None
    ) -> AsyncIterator[bytes]:
        reader = await open_in_thread(lambda: self._open_reader(bucket, key))
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


async def _pour(writer: ComposeWriter, chunks: AsyncIterable[bytes]) -> None:
    """Write a stream, gathering small chunks so a thread hop carries about CHUNK_SIZE."""
    buffer = bytearray()
    async for chunk in chunks:
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise TypeError(f"storage chunks must be bytes, not {type(chunk).__name__}")
        if not buffer and len(chunk) >= CHUNK_SIZE and isinstance(chunk, bytes):
            await asyncio.to_thread(writer.write, chunk)
            continue
        buffer += chunk
        if len(buffer) >= CHUNK_SIZE:
            await asyncio.to_thread(writer.write, bytes(buffer))
            buffer.clear()
    if buffer:
        await asyncio.to_thread(writer.write, bytes(buffer))


def _only_run(steps: list[_Step]) -> list[RunItem] | None:
    """The object's bytes and ranges when that is all it is made of (no stream), else None."""
    if not steps:
        return []
    [first, *rest] = steps
    return first if isinstance(first, list) and not rest else None


def _check_range(start: int, end: int) -> None:
    if not (isinstance(start, int) and isinstance(end, int)):
        raise TypeError("byte range bounds must be integers")
    if not 0 <= start <= end:
        raise ValueError(f"invalid byte range [{start}, {end})")


def _abort(path: Path, name: str) -> None:
    """Remove a temp file, or a segment directory unless a manifest came to refer to it."""
    if is_temp_name(path.name):
        if regular_file_stat(path, name) is not None:
            with os_errors(f"cannot delete {name}"), contextlib.suppress(*MISSING):
                os.unlink(path)
        return
    remove_segments(path.parent, path.name, name, unless=lambda: referenced(path.parent, path.name))


def _modified(entry: Entry) -> datetime:
    return datetime.fromtimestamp(entry.mtime, UTC)


def _sorted_names(directory: Path, bucket: str) -> list[str]:
    with os_errors(f"cannot list bucket {bucket!r}"):
        return sorted(os.listdir(directory))


def _require_free_space(bucket: str, directory: Path, min_free_bytes: int) -> None:
    with os_errors(f"cannot read the free space of bucket {bucket!r}"):
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
    with os_errors(f"cannot write to bucket {bucket!r}"):
        if make_directory(probes):
            fsync_directory(directory)
        temp = probes / f".probe.{secrets.token_hex(8)}{TEMP_SUFFIX}"
        fd = os.open(temp, CREATE_FLAGS, 0o600)
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
