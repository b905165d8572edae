"""Arbitrary SQL on the request path's connection, as one user, cannot touch another's files.

The connection is the server's own: its login role (`training_files_app`, no superuser, owns
nothing) with `app.user_id` set to the attacker's id, as every request transaction runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest

from graphql_api.aggregation.service import TrainingFileService
from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database, become_user
from graphql_api.db.training_files import TrainingFileRecord
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.runtime import DatabaseUrls, Pools
from graphql_api.storage.base import TRAINING_BUCKET
from graphql_api.storage.local import LocalStorage

from .conftest import training_file_service

VICTIM = UUID("00000000-0000-4000-8000-0000000000a1")
ATTACKER = UUID("00000000-0000-4000-8000-0000000000a2")


@pytest.fixture
async def files(
    db: Database, pools: Pools, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> tuple[TrainingFileService, TrainingFileRecord, TrainingFileRecord]:
    importer = ConversationImporter(owner_writers, storage)
    ids = [(await importer.import_file(p)).conversation_id for p in write_demo_set(tmp_path, 3, 4)]
    service = training_file_service(pools, storage)
    victims = await service.create_training_file(VICTIM, "victim's", None, ids[:2])  # type: ignore[arg-type]
    attackers = await service.create_training_file(ATTACKER, "attacker's", None, ids[2:])  # type: ignore[arg-type]
    return service, victims, attackers


@pytest.fixture
async def attacker(database_urls: DatabaseUrls, db: Database) -> AsyncIterator[asyncpg.Connection]:
    """A transaction on the request path's login role, as the attacker; rolled back (before
    `db` empties the tables)."""
    conn = await asyncpg.connect(database_urls.app)
    try:
        transaction = conn.transaction()
        await transaction.start()
        await become_user(conn, ATTACKER)
        yield conn
        await transaction.rollback()
    finally:
        await conn.close()


async def _refused(conn: asyncpg.Connection, sql: str, *args: object) -> type[BaseException]:
    """Run `sql` in a savepoint; return the PostgreSQL error class that refused it."""
    try:
        async with conn.transaction():
            await conn.execute(sql, *args)
    except asyncpg.PostgresError as error:
        return type(error)
    raise AssertionError(f"PostgreSQL accepted: {sql}")


async def test_the_login_role_is_no_superuser_and_owns_nothing(
    attacker: asyncpg.Connection,
) -> None:
    row = await attacker.fetchrow(
        "SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = session_user"
    )
    assert tuple(row) == (False, False, False)
    owned = await attacker.fetchval(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = session_user"
    )
    assert owned == 0


async def test_no_retired_object_can_be_planted_for_the_sweeper(
    attacker: asyncpg.Connection, files: tuple[object, TrainingFileRecord, TrainingFileRecord]
) -> None:
    _, victims, _ = files
    planted = "INSERT INTO retired_objects (bucket, key) VALUES ($1, $2)"
    assert await _refused(attacker, planted, TRAINING_BUCKET, victims.json_file_path) is (
        asyncpg.InsufficientPrivilegeError
    )
    assert await _refused(attacker, "SELECT retire_replaced_objects()") is (
        asyncpg.InsufficientPrivilegeError
    )


async def test_a_row_cannot_point_at_objects_outside_its_own_prefix(
    attacker: asyncpg.Connection, files: tuple[object, TrainingFileRecord, TrainingFileRecord]
) -> None:
    _, victims, attackers = files
    redirect = "UPDATE training_files SET json_file_path = $1 WHERE id = $2"
    assert await _refused(attacker, redirect, victims.json_file_path, attackers.id) is (
        asyncpg.CheckViolationError
    )
    escape = f"{attackers.id}/v1/../../{victims.id}/v1/training.json"
    assert await _refused(attacker, redirect, escape, attackers.id) is asyncpg.CheckViolationError
    for column, value in (("storage_bucket", "conversation-files"), ("id", victims.id)):
        moved = f"UPDATE training_files SET {column} = $1 WHERE id = $2"
        assert await _refused(attacker, moved, value, attackers.id) is (
            asyncpg.InsufficientPrivilegeError
        )


async def test_another_users_row_can_be_neither_updated_nor_deleted(
    attacker: asyncpg.Connection,
    db: Database,
    files: tuple[object, TrainingFileRecord, TrainingFileRecord],
) -> None:
    _, victims, attackers = files
    changed = await attacker.execute(
        "UPDATE training_files SET name = 'mine now', json_file_path = NULL WHERE id = $1",
        victims.id,
    )
    assert changed == "UPDATE 0"
    # DELETE is granted (deleteTrainingFile), but the policy shows only the caller's rows.
    deleted = await attacker.execute("DELETE FROM training_files WHERE id = $1", victims.id)
    assert deleted == "DELETE 0"
    # Its own row it may delete; the cascade (run as the tables' owner) takes its junction rows.
    members = "SELECT count(*) FROM training_file_conversations WHERE training_file_id = $1"
    assert await attacker.fetchval(members, attackers.id) == 1
    assert await attacker.execute("DELETE FROM training_files") == "DELETE 1"
    assert await attacker.fetchval(members, attackers.id) == 0
    assert (
        await _refused(attacker, "DELETE FROM retired_objects")
        is asyncpg.InsufficientPrivilegeError
    )
    # Junction rows may be deleted and moved (removeConversations, 0009), but the policies show
    # only those of the caller's own files, and no row can be moved to another file or
    # conversation.
    victim_members = "WHERE training_file_id = $1"
    for change in (
        f"DELETE FROM training_file_conversations {victim_members}",
        f"UPDATE training_file_conversations SET position = position + 10 {victim_members}",
    ):
        assert (await attacker.execute(change, victims.id)).endswith(" 0")
    for column in ("training_file_id", "conversation_id", "added_by"):
        moved = f"UPDATE training_file_conversations SET {column} = $1 {victim_members}"
        assert await _refused(attacker, moved, victims.id) is asyncpg.InsufficientPrivilegeError
    async with db.session() as conn:
        row = await conn.fetchrow(
            "SELECT name, json_file_path FROM training_files WHERE id = $1", victims.id
        )
    assert tuple(row) == ("victim's", victims.json_file_path)
    async with db.session() as conn:
        kept = await conn.fetchval(
            "SELECT count(*) FROM training_file_conversations WHERE training_file_id = $1",
            victims.id,
        )
    assert kept == 2


@pytest.mark.parametrize(
    "escape",
    [
        "RESET role",
        "SET role postgres",
        "SET role training_files_app",
        "SELECT set_config('role', 'postgres', true)",
        "SET SESSION AUTHORIZATION postgres",
    ],
)
async def test_switching_roles_gains_nothing(
    attacker: asyncpg.Connection,
    files: tuple[object, TrainingFileRecord, TrainingFileRecord],
    escape: str,
) -> None:
    _, victims, _ = files
    try:
        async with attacker.transaction():
            await attacker.execute(escape)
            deleted = await attacker.execute("DELETE FROM training_files WHERE id = $1", victims.id)
            assert deleted == "DELETE 0"
            assert (
                await _refused(
                    attacker,
                    "INSERT INTO retired_objects (bucket, key) VALUES ($1, $2)",
                    TRAINING_BUCKET,
                    victims.json_file_path,
                )
                is asyncpg.InsufficientPrivilegeError
            )
            updated = await attacker.execute(
                "UPDATE training_files SET name = 'x' WHERE id = $1", victims.id
            )
            assert updated == "UPDATE 0"
    except asyncpg.InsufficientPrivilegeError:
        pass  # refused outright: nothing to gain either


async def test_the_sweeper_deletes_only_what_rows_really_pointed_at(
    files: tuple[TrainingFileService, TrainingFileRecord, TrainingFileRecord],
    storage: LocalStorage,
) -> None:
    from datetime import UTC, datetime, timedelta

    service, victims, _ = files
    later = datetime.now(UTC) + timedelta(days=2)
    assert await service.sweep_retired_objects(now=later) == 0
    assert await storage.exists(TRAINING_BUCKET, victims.json_file_path or "")
