"""Local storage starts reading a pass's small source ranges all at once, before it copies the
first: a create of 80 conversations not read for a while then waits for the disk once, not
80 times in turn. What was asked of the kernel shows in the page cache (mincore(2))."""

from __future__ import annotations

import ctypes
import mmap
import os
import time
from pathlib import Path

import pytest

from graphql_api.storage import local_compose
from graphql_api.storage.local_compose import LINK_MIN, RangeSource, Sources
from graphql_api.storage.local_files import prefetch

PAGE = mmap.PAGESIZE
_LIBC = ctypes.CDLL(None, use_errno=True)


def cached_pages(path: Path) -> int:
    """How many of the file's pages are in the page cache (mapping it reads nothing)."""
    size = path.stat().st_size
    vector = (ctypes.c_ubyte * -(-size // PAGE))()
    with path.open("rb") as file:
        # A private mapping is writable as a buffer, which ctypes needs for its address.
        mapped = mmap.mmap(file.fileno(), size, access=mmap.ACCESS_COPY)
        first = ctypes.c_char.from_buffer(mapped)
        try:
            failed = _LIBC.mincore(
                ctypes.c_void_p(ctypes.addressof(first)), ctypes.c_size_t(size), vector
            )
        finally:
            del first
            mapped.close()
    if failed:
        pytest.skip(f"mincore(2) failed: {os.strerror(ctypes.get_errno())}")
    return sum(page & 1 for page in vector)


def uncached_file(path: Path, size: int) -> Path:
    """A file of `size` bytes on disk and not in the page cache (skips where it cannot be
    dropped, as on a tmpfs)."""
    path.write_bytes(os.urandom(size))
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    if cached_pages(path):
        pytest.skip(f"the page cache keeps {path.name} here: nothing to see")
    return path


def wait_until_cached(path: Path, pages: int) -> int:
    """The file's cached pages once `pages` are (readahead runs on), or after 5 s."""
    deadline = time.monotonic() + 5
    while (cached := cached_pages(path)) < pages and time.monotonic() < deadline:
        time.sleep(0.01)
    return cached


def test_prefetch_starts_reading_the_range_into_the_page_cache(tmp_path: Path) -> None:
    source = uncached_file(tmp_path / "piece", 64 * PAGE)
    prefetch(source, [(16 * PAGE, 32 * PAGE)])
    assert wait_until_cached(source, 16) >= 16


def test_prefetch_of_what_cannot_be_read_is_no_error(tmp_path: Path) -> None:
    # Only a hint: the copy that follows reports a missing source (and never blocks on a FIFO).
    prefetch(tmp_path / "missing", [(0, PAGE)])
    os.mkfifo(tmp_path / "fifo")
    prefetch(tmp_path / "fifo", [(0, PAGE)])


def test_a_pass_prefetches_its_small_ranges_and_leaves_large_ones_to_be_linked(
    tmp_path: Path,
) -> None:
    pieces = [uncached_file(tmp_path / f"piece-{n}", 8 * PAGE) for n in range(3)]
    body = uncached_file(tmp_path / "body", LINK_MIN + PAGE)
    paths = {path.name: path for path in [*pieces, body]}
    items = [
        RangeSource("bucket", "body", 0, LINK_MIN + PAGE),
        *(RangeSource("bucket", piece.name, 0, 2 * PAGE) for piece in pieces),
        *(RangeSource("bucket", piece.name, 5 * PAGE, 6 * PAGE) for piece in pieces),
        *(RangeSource("bucket", piece.name, 2 * PAGE, 3 * PAGE) for piece in pieces),
    ]

    with Sources(lambda bucket, key: paths[key], items):
        # Pages 0-2 and 5 of each piece: what its ranges cover, and not the pages between.
        assert [wait_until_cached(piece, 4) for piece in pieces] == [4, 4, 4]
        assert cached_pages(body) == 0


def test_a_pass_prefetches_no_more_than_its_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sources in the order they are first copied from, while their ranges fit the bound.
    monkeypatch.setattr(local_compose, "PREFETCH_MAX", 5 * PAGE)
    pieces = [uncached_file(tmp_path / f"piece-{n}", 8 * PAGE) for n in range(3)]
    paths = {path.name: path for path in pieces}
    items = [RangeSource("bucket", piece.name, 0, 2 * PAGE) for piece in reversed(pieces)]

    with Sources(lambda bucket, key: paths[key], items):
        assert wait_until_cached(pieces[2], 2) == 2
        assert wait_until_cached(pieces[1], 2) == 2
        assert cached_pages(pieces[0]) == 0
