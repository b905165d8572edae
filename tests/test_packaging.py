"""The package as a user installs it: a wheel in a fresh virtualenv, run from another directory.

Everything the server reads at run time (migrations, the playground's files, data files) must
be inside the package: a non-editable install has no project directory to fall back on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .api_server import ApiServer, server_env

PROJECT = Path(__file__).resolve().parents[1]
PIP = (sys.executable, "-m", "pip")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`bin/` of a fresh virtualenv holding our wheel (its dependencies are borrowed from
    this virtualenv, so nothing is downloaded)."""
    work = Path(tempfile.mkdtemp(prefix="training-files-wheel-"))
    dist = work / "dist"
    subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(PROJECT)],
        check=True,
        cwd=work,
        capture_output=True,
    )
    [wheel] = dist.glob("graphql_api-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    fresh_site = Path(
        sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)})
    )
    (fresh_site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [*PIP, "--python", str(venv / "bin" / "python"), "install", "--no-deps", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    yield venv / "bin"
    shutil.rmtree(work, ignore_errors=True)


def test_the_wheel_carries_its_migrations_and_playground(installed: Path) -> None:
    code = (
        "import graphql_api, pathlib; root = pathlib.Path(graphql_api.__file__).parent; "
        "print(sorted(p.name for p in (root / 'db' / 'migrations').glob('*.sql'))); "
        "print(sum(1 for p in (root / 'graphql' / 'playground_assets').rglob('*') if p.is_file()))"
    )
    done = subprocess.run(
        [str(installed / "python"), "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
    )
    migrations, assets = done.stdout.splitlines()
    on_disk = sorted(p.name for p in (PROJECT / "graphql_api" / "db" / "migrations").glob("*.sql"))
    assert eval(migrations) == on_disk
    assert int(assets) > 0
    assert str(PROJECT) not in done.stdout


def test_the_installed_command_migrates_and_serves_from_another_directory(
    installed: Path, tmp_path: Path
) -> None:
    elsewhere = Path(tempfile.mkdtemp(prefix="training-files-elsewhere-"))
    try:
        env = {**server_env(elsewhere / "data"), "PATH": f"{installed}:{os.environ['PATH']}"}
        migrated = subprocess.run(
            [str(installed / "training-files"), "migrate"],
            env=env,
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert migrated.returncode == 0, migrated.stderr
        assert "0001_initial.sql" in migrated.stderr

        server = ApiServer(env, elsewhere / "server.log", command=installed / "training-files")
        server.launch("--no-demo", cwd=elsewhere)
        try:
            server.wait_until_healthy()
            page = httpx.get(f"{server.url}/graphql", headers={"Accept": "text/html"}, timeout=10)
            assert "/graphiql-assets/react/" in page.text and "unpkg.com" not in page.text
            react = httpx.get(f"{server.url}/graphiql-assets/react/umd/react.production.min.js")
            assert react.status_code == 200 and len(react.content) > 1000
        finally:
            server.terminate()
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)
