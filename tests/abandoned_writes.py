"""A write killed mid-way, for real: a process starts a put through the real backend and is
killed with SIGKILL while it waits, so none of its clean-up runs (what `kill -9` leaves).

Run as `python -m tests.abandoned_writes <spec json>`; tests call `abandon_write`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from graphql_api.storage.base import PendingWrite, Storage
from graphql_api.storage.local import LocalStorage
from graphql_api.storage.s3 import S3Storage
from graphql_api.storage.s3_config import S3Config
from graphql_api.storage.s3_upload import PART_SIZE

PROJECT = Path(__file__).resolve().parents[1]
# Past one S3 part, so the upload is a multipart one (locally any size leaves a temp file).
WRITTEN = PART_SIZE + 1
STARTED = "started"
_TIMEOUT = 60.0


def spec_of(storage: Storage) -> dict[str, Any]:
    """How the writer process opens the same store."""
    if isinstance(storage, LocalStorage):
        return {"local": str(storage.root)}
    assert isinstance(storage, S3Storage)
    config = storage.config
    return {
        "s3": {
            "endpoint_url": config.endpoint_url,
            "region": config.region,
            "access_key_id": config.access_key_id,
            "secret_access_key": config.secret_access_key,
            "buckets": dict(config.buckets),
            "key_prefix": config.key_prefix,
            "max_attempts": config.max_attempts,
        }
    }


async def abandon_write(storage: Storage, bucket: str, key: str) -> PendingWrite:
    """Start a put of `key` in another process, kill it mid-write, return what it left."""
    spec = json.dumps({**spec_of(storage), "bucket": bucket, "key": key})
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.abandoned_writes", spec],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), _TIMEOUT)  # type: ignore[union-attr]
        assert line.strip() == STARTED, process.stderr.read() if process.stderr else line
        pending = await _wait_for_pending(storage, bucket, key)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=_TIMEOUT)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert process.returncode == -signal.SIGKILL
    return pending


async def _wait_for_pending(storage: Storage, bucket: str, key: str) -> PendingWrite:
    async with asyncio.timeout(_TIMEOUT):
        while True:
            async for pending in storage.list_pending_writes(bucket):
                if pending.key == key:
                    return pending
            await asyncio.sleep(0.05)


async def _write_and_hang(spec: dict[str, Any]) -> None:
    if "local" in spec:
        storage: Storage = LocalStorage(Path(spec["local"]))
    else:
        storage = await S3Storage.open(S3Config(**spec["s3"]))

    async def stalled() -> AsyncIterator[bytes]:
        yield b"\0" * WRITTEN
        print(STARTED, flush=True)
        await asyncio.sleep(3600)  # killed long before

    await storage.put(spec["bucket"], spec["key"], stalled())


if __name__ == "__main__":
    asyncio.run(_write_and_hang(json.loads(sys.argv[1])))
