"""A composite write killed mid-way, for real: a process composes an object that links a range
of another (so its segment directory exists), writes part of the new bytes and is killed with
SIGKILL while it waits, before the manifest is renamed into place.

Run as `python -m tests.abandoned_composes <root> <source key> <target key>`; tests call
`abandon_compose`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from graphql_api.storage.base import TRAINING_BUCKET, CopyRange
from graphql_api.storage.local import LocalStorage

PROJECT = Path(__file__).resolve().parents[1]
STARTED = "started"
WRITTEN = 3 * 1024 * 1024 + 5
_TIMEOUT = 60.0


async def abandon_compose(storage: LocalStorage, source: str, target: str) -> None:
    """Compose `target` from all of `source` and new bytes in another process; kill it once
    it has linked the source and written some of the new bytes."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.abandoned_composes", str(storage.root), source, target],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), _TIMEOUT)  # type: ignore[union-attr]
        assert line.strip() == STARTED, process.stderr.read() if process.stderr else line
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=_TIMEOUT)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert process.returncode == -signal.SIGKILL


async def _compose_and_hang(root: Path, source: str, target: str) -> None:
    storage = LocalStorage(root)
    size = await storage.size(TRAINING_BUCKET, source)
    written = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield b"\1" * WRITTEN
        written.set()  # asked for more: the chunk before is on disk
        await asyncio.sleep(3600)  # killed long before

    async def report() -> None:
        await written.wait()
        print(STARTED, flush=True)

    reporter = asyncio.create_task(report())
    await storage.compose(TRAINING_BUCKET, target, [b"head", CopyRange(source, 0, size), stalled()])
    await reporter


if __name__ == "__main__":
    asyncio.run(_compose_and_hang(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
