"""Real S3 servers on 127.0.0.1 for the tests, and pytest fixtures around them.

* moto (`moto_server`): fast and resettable, implements UploadPartCopy; one per session,
  emptied before each test by `moto`.
* `rclone serve s3`: a second implementation that checks SigV4 signatures and presigned URL
  expiry and keeps objects in a directory, so it can be restarted with its data. It does not
  implement UploadPartCopy. Each test gets buckets of its own instead of a reset.

Load as a plugin (`pytest_plugins = ["tests.s3_servers"]` in tests/conftest.py) to get the
fixtures everywhere and the `rclone` marker registered, or import the fixtures by name.
"""

from __future__ import annotations

import http.client
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Self

import boto3
import pytest

from graphql_api.storage.base import CONVERSATION_BUCKET, TRAINING_BUCKET
from graphql_api.storage.s3 import S3Storage
from graphql_api.storage.s3_config import S3Config

BIN_DIR = Path(sys.executable).parent
HOST = "127.0.0.1"
REGION = "us-east-1"
START_TIMEOUT = 30.0

# rclone refuses access key ids shorter than 3 characters ("AK" gets InvalidAccessKeyId).
MOTO_ACCESS_KEY = "moto-test-access-key"
MOTO_SECRET_KEY = "moto-test-secret-key"
RCLONE_ACCESS_KEY = "rclone-test-access-key"
RCLONE_SECRET_KEY = "rclone-test-secret-key"

_bucket_numbers = itertools.count()

RCLONE_FIXTURES = frozenset({"rclone_server", "rclone_storage", "private_rclone_server"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "rclone: runs against `rclone serve s3` (a real, signature-checking S3 server)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `rclone` every test that uses an rclone server, so `-m "not rclone"` skips them:
    through a fixture, or as the "rclone" parameter of a parametrized backend fixture."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        callspec = getattr(item, "callspec", None)
        params = callspec.params.values() if callspec is not None else ()
        if RCLONE_FIXTURES.intersection(fixtures) or "rclone" in params:
            item.add_marker("rclone")


def executable(name: str) -> str:
    """The program from this virtualenv's bin directory, else from PATH."""
    candidate = BIN_DIR / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found in {BIN_DIR} or on PATH: install the dev extras")
    return found


def fresh_buckets() -> dict[str, str]:
    """Bucket names no other test of any session uses."""
    suffix = f"{os.getpid()}-{next(_bucket_numbers)}"
    return {CONVERSATION_BUCKET: f"conv-{suffix}", TRAINING_BUCKET: f"train-{suffix}"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _request(port: int, method: str, path: str, timeout: float = 2.0) -> int:
    """Send a bare HTTP request (no proxies from the environment); return the status."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


class ServerProcess:
    """A server subprocess on 127.0.0.1:`port`, its output in `log_path`."""

    name = "server"
    ready_path = "/"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.log_path = workdir / f"{self.name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        if self._process is not None:
            raise RuntimeError(f"{self.name} is already running")
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal is pytest's, not the server's
            )
        self._wait_until_ready()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self._process.returncode}:\n{self.log_tail()}"
                )
            try:
                _request(self.port, "GET", self.ready_path, timeout=1.0)
                return  # any HTTP answer means it is serving
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not answer on {self.endpoint_url}")
            time.sleep(0.05)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class MotoServer(ServerProcess):
    name = "moto"
    ready_path = "/moto-api/"
    access_key = MOTO_ACCESS_KEY
    secret_key = MOTO_SECRET_KEY

    def command(self) -> list[str]:
        return [executable("moto_server"), "-H", HOST, "-p", str(self.port)]

    def reset(self) -> None:
        """Forget every bucket, object and multipart upload."""
        status = _request(self.port, "POST", "/moto-api/reset")
        if status != 200:
            raise RuntimeError(f"moto reset answered {status}")

    def config(self, **overrides: Any) -> S3Config:
        values: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "region": REGION,
            "access_key_id": self.access_key,
            "secret_access_key": self.secret_key,
            "create_buckets": True,
            "max_attempts": 2,
        }
        return S3Config(**{**values, **overrides})

    def raw_client(self) -> Any:
        """A boto3 client of the test's own on this store, to look at it without our code."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )


class RcloneS3Server(ServerProcess):
    name = "rclone"
    access_key = RCLONE_ACCESS_KEY
    secret_key = RCLONE_SECRET_KEY

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir, port)
        self.root = workdir / "data"
        self.root.mkdir(parents=True, exist_ok=True)
        self.rclone_config = workdir / "rclone.conf"
        self.rclone_config.touch()

    def command(self) -> list[str]:
        return [
            executable("rclone"),
            "serve",
            "s3",
            "--auth-key",
            f"{self.access_key},{self.secret_key}",
            "--addr",
            f"{HOST}:{self.port}",
            "--config",
            str(self.rclone_config),
            str(self.root),
        ]

    def config(self, **overrides: Any) -> S3Config:
        values: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "region": REGION,
            "access_key_id": self.access_key,
            "secret_access_key": self.secret_key,
            "create_buckets": True,
            "max_attempts": 2,
            # Fresh buckets per call keep tests apart without wiping the directory behind
            # rclone's directory cache (a key prefix would shorten the longest allowed key).
            "buckets": fresh_buckets(),
        }
        return S3Config(**{**values, **overrides})


def _workdir(prefix: str) -> Path:
    # Not under pytest's basetemp, which another session may reset while this one runs.
    return Path(tempfile.mkdtemp(prefix=prefix))


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    workdir = _workdir("moto-s3-")
    with MotoServer(workdir) as server:
        yield server
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def moto(moto_server: MotoServer) -> MotoServer:
    """The session's moto server, emptied."""
    moto_server.reset()
    return moto_server


@pytest.fixture
async def moto_storage(moto: MotoServer) -> AsyncIterator[S3Storage]:
    """S3Storage on an empty moto, buckets created."""
    storage = await S3Storage.open(moto.config())
    yield storage
    await storage.close()


@pytest.fixture(scope="session")
def rclone_server() -> Iterator[RcloneS3Server]:
    workdir = _workdir("rclone-s3-")
    with RcloneS3Server(workdir) as server:
        yield server
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def private_rclone_server() -> Iterator[RcloneS3Server]:
    """An rclone server of the test's own, not started: `with server:` runs it, as often as
    needed (its data directory persists between runs)."""
    workdir = _workdir("rclone-s3-")
    server = RcloneS3Server(workdir)
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
async def rclone_storage(rclone_server: RcloneS3Server) -> AsyncIterator[S3Storage]:
    """S3Storage on the session's rclone server, in buckets of its own."""
    storage = await S3Storage.open(rclone_server.config())
    yield storage
    await storage.close()


__all__ = [
    "MotoServer",
    "RcloneS3Server",
    "free_port",
    "fresh_buckets",
    "moto",
    "moto_server",
    "moto_storage",
    "private_rclone_server",
    "rclone_server",
    "rclone_storage",
]
