"""`training-files check` as an operator runs it: a subprocess over the test database and a
real storage directory, its exit status, its table and its JSON."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.runtime import DatabaseUrls, Pools
from graphql_api.storage.base import CONVERSATION_BUCKET, TRAINING_BUCKET, iter_bytes
from graphql_api.storage.local import LocalStorage

from .conftest import training_file_service

CLI = str(Path(sys.executable).with_name("training-files"))
OWNER = UUID("00000000-0000-4000-8000-0000000000c2")


def _env(urls: DatabaseUrls, data_dir: Path, storage_dir: Path) -> dict[str, str]:
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "S3_", "AWS_", "JWT_")) and k != "STORAGE_URL"
    }
    return inherited | {
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": urls.app,
        "DATABASE_OWNER_URL": urls.owner,
        "STORAGE_URL": storage_dir.as_uri(),
        "JWT_SECRET": "x" * 40,
        "COLUMNS": "200",  # rich wraps the table to the terminal's width
    }


async def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [CLI, "check", *args], env=env, capture_output=True, text=True, timeout=120
    )


def _kinds(report: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((f["kind"], f["state"]) for f in report["findings"])


@pytest.fixture
async def store(
    db: Database, pools: Pools, owner_writers: WriterPool, tmp_path: Path
) -> LocalStorage:
    """A real file built through the service, then what two crashes left beside it."""
    storage = LocalStorage(tmp_path / "storage")
    importer = ConversationImporter(owner_writers, storage)
    ids = [
        (await importer.import_file(p)).conversation_id
        for p in write_demo_set(tmp_path / "demo", 3, seed=5)
    ]
    record = await training_file_service(pools, storage).create_training_file(
        OWNER, "checked by the cli", None, ids
    )
    await storage.put(TRAINING_BUCKET, f"{record.id}/v2/training.json", iter_bytes(b"{"))
    await storage.put(TRAINING_BUCKET, f"{uuid4()}/v1/training.jsonl", iter_bytes(b"x\n"))
    await storage.put(
        CONVERSATION_BUCKET, f"{uuid4()}/{secrets.token_hex(8)}.json", iter_bytes(b"{}")
    )
    return storage


async def test_check_reports_leftovers_repair_removes_them_and_exit_status_follows(
    database_urls: DatabaseUrls, store: LocalStorage, tmp_path: Path
) -> None:
    env = _env(database_urls, tmp_path / "data", store.root)

    table = await _run(env)
    assert table.returncode == 1, table.stderr
    assert "Consistency check" in table.stdout
    for kind in ("uncommitted_version", "file_without_row", "unreferenced_conversation_file"):
        assert kind in table.stdout
    assert "1 training files verified" in table.stdout and "NOT consistent" in table.stdout

    before = await _run(env, "--json")
    assert before.returncode == 1, before.stderr
    report = json.loads(before.stdout)
    assert report["consistent"] is False and report["repair"] is False
    assert report["checked"]["training_files"] == 1
    # conversations and their rendered pieces, v1 (four objects), leftovers
    assert report["checked"]["objects"] == 3 * 2 + 4 + 3
    assert report["summary"]["found"] == 3
    assert _kinds(report) == [
        ("file_without_row", "found"),
        ("uncommitted_version", "found"),
        ("unreferenced_conversation_file", "found"),
    ]

    repaired = await _run(env, "--repair", "--json")
    assert repaired.returncode == 0, repaired.stderr
    assert [state for _, state in _kinds(json.loads(repaired.stdout))] == ["removed"] * 3

    after = await _run(env, "--json")
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["findings"] == []
    assert len(await store.list_keys(TRAINING_BUCKET)) == 4
    assert len(await store.list_keys(CONVERSATION_BUCKET)) == 3 * 2  # files and their pieces
    table = await _run(env)
    assert table.returncode == 0 and "consistent" in table.stdout and "NOT" not in table.stdout


async def test_a_row_whose_totals_drifted_is_reported_by_file(
    database_urls: DatabaseUrls, db: Database, store: LocalStorage, tmp_path: Path
) -> None:
    async with db.session() as conn:
        file_id = await conn.fetchval(
            "UPDATE training_files SET quality_count = quality_count + 1 RETURNING id"
        )
    table = await _run(_env(database_urls, tmp_path / "data", store.root))
    assert table.returncode == 1, table.stderr
    # The finding is about the row, not an object: it names the file.
    assert f"reported statistics_mismatch training file {file_id}: quality count:" in table.stdout
