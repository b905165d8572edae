"""The console script end to end: a real `serve` process, and the CLI beside it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

CLI = str(Path(sys.executable).with_name("training-files"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Outside pytest's basetemp (mode 0700): the embedded server's own user must reach it.
    path = Path(tempfile.mkdtemp(prefix="training-files-cli-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def env(workdir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATA_DIR": str(workdir / "data"),
        "PORT": str(_free_port()),
        "DATABASE_URL": "",
        "STORAGE_URL": "",
        "JWT_SECRET": "",
    }


def _wait_until_healthy(base_url: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert server.poll() is None, server.stdout.read() if server.stdout else ""
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError("server did not become healthy")


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "term"])
def test_demo_serve_and_import_alongside_a_running_server(
    env: dict[str, str], workdir: Path, stop_signal: signal.Signals
) -> None:
    demo = _run(env, "demo", "--conversations", "3", "--seed", "9", "--out", str(workdir / "demo"))
    assert demo.returncode == 0, demo.stderr
    assert len(list((workdir / "demo").glob("fp_conversation_*.json"))) == 3

    server = subprocess.Popen(
        [CLI, "serve", "--no-demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base_url = f"http://127.0.0.1:{env['PORT']}"
    try:
        _wait_until_healthy(base_url, server)

        imported = _run(env, "import", str(workdir / "demo"))
        assert imported.returncode == 0, imported.stderr
        assert "Import summary" in imported.stderr

        query = {"query": "{ conversations { totalCount } }"}
        anonymous = httpx.post(f"{base_url}/graphql", json=query, timeout=10).json()
        assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        token = _run(env, "token", "--user", "alice")
        assert token.returncode == 0, token.stderr
        headers = {"Authorization": f"Bearer {token.stdout.strip()}"}
        body = httpx.post(f"{base_url}/graphql", json=query, headers=headers, timeout=10).json()
        assert body["data"]["conversations"]["totalCount"] == 3

        bad = workdir / "bad.json"
        bad.write_text('{"training_pairs": []}')
        blocked = _run(env, "import", str(bad))
        assert blocked.returncode == 1
        assert "blocked" in blocked.stderr and str(bad) in blocked.stderr

        # The server's database is still up after the CLI process exited.
        assert httpx.get(f"{base_url}/healthz", timeout=5).status_code == 200
    finally:
        server.send_signal(stop_signal)
        server.wait(timeout=30)
    # Stopping the server stops the embedded PostgreSQL too, and keeps its data.
    assert not (workdir / "data" / "postgres" / "postmaster.pid").exists()
    assert (workdir / "data" / "postgres" / "PG_VERSION").exists()


def test_invalid_configuration_fails_with_one_line_naming_the_variable(
    env: dict[str, str],
) -> None:
    result = _run({**env, "PORT": "not-a-port"}, "migrate")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "PORT" in result.stderr


def test_export_schema_prints_the_committed_schema(env: dict[str, str]) -> None:
    result = _run(env, "export-schema")
    assert result.returncode == 0
    assert result.stdout == (Path(__file__).resolve().parents[1] / "schema.graphql").read_text()


@pytest.mark.parametrize("command", [["migrate"], ["check"], ["import", "."]])
def test_an_unreachable_database_is_one_line_not_a_traceback(
    env: dict[str, str], workdir: Path, command: list[str]
) -> None:
    closed = f"postgresql://nobody@127.0.0.1:{_free_port()}/training_files"
    # An external setup: its database and storage, so that no data dir is needed.
    external = {"DATABASE_URL": closed, "STORAGE_URL": workdir.as_uri()}
    result = _run({**env, **external}, *command)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: the database is unreachable")
    assert "Connect call failed" in result.stderr
    assert not (workdir / "data").exists()  # nor did it make one (or a secret in it)
