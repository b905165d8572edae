"""`training-files serve` in a subprocess on 127.0.0.1, as a user runs it, over the session's
database: for tests of what only a real process shows (concurrency through its own event loop
and pools, signals, crashes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from graphql_api.runtime import DatabaseUrls

from .s3_servers import free_port

CLI = str(Path(sys.executable).with_name("training-files"))
START_SECONDS = 60.0
SECRET = "x" * 40


def server_env(
    data_dir: Path, urls: DatabaseUrls | None = None, storage_dir: Path | None = None, **extra: str
) -> dict[str, str]:
    """A server's environment with the shipped defaults: over `urls` (else the embedded
    PostgreSQL of `data_dir`), storing in `storage_dir` (else under `data_dir`)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "S3_", "AWS_", "JWT_"))
        and key not in ("STORAGE_URL", "DEMO_CONVERSATIONS")
    }
    env |= {"DATA_DIR": str(data_dir), "DEMO_CONVERSATIONS": "0"}
    if urls is not None:
        env |= {"DATABASE_URL": urls.app, "DATABASE_OWNER_URL": urls.owner, "JWT_SECRET": SECRET}
    if storage_dir is not None:
        env["STORAGE_URL"] = storage_dir.as_uri()
    return env | extra


class ApiServer:
    """One server process; `start` returns once it answers /healthz."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        port: int | None = None,
        command: Path | str = CLI,
    ) -> None:
        self.command = str(command)
        self.port = port or free_port()
        self.env = {**env, "HOST": "127.0.0.1", "PORT": str(self.port)}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.launch()
        self.wait_until_healthy()

    def launch(self, *options: str, cwd: Path | None = None) -> None:
        """Start the process without waiting for it to serve."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.command, "serve", *options],
                cwd=cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_until_healthy(self, seconds: float = START_SECONDS) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited with {self.process.returncode}:\n{self.log()}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not become healthy:\n{self.log()}")

    def terminate(self, wait_seconds: float = 60.0) -> int:
        """SIGTERM, then the exit status (SIGKILL after `wait_seconds`)."""
        return self._stop(signal.SIGTERM, wait_seconds)

    def kill(self) -> None:
        self._stop(signal.SIGKILL, 10.0)

    def _stop(self, sig: signal.Signals, wait_seconds: float) -> int:
        process, self.process = self.process, None
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(sig)
        try:
            return process.wait(timeout=wait_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise

    def log(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
