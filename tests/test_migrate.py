from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from graphql_api.db.migrate import MIGRATIONS_DIR, MigrationError, apply_migrations, load_migrations


async def test_migrations_apply_to_an_empty_database_and_rerun_is_a_no_op(
    empty_database_dsn: str,
) -> None:
    conn = await asyncpg.connect(empty_database_dsn)
    try:
        applied = await apply_migrations(conn)
        assert applied == [m.name for m in load_migrations()]
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        assert {"conversations", "training_files", "training_file_conversations"} <= tables
        recorded = await conn.fetch("SELECT name, checksum FROM schema_migrations")
        assert [r["name"] for r in recorded] == applied
        assert await apply_migrations(conn) == []
    finally:
        await conn.close()


async def test_row_level_security_is_enabled_with_policies(empty_database_dsn: str) -> None:
    conn = await asyncpg.connect(empty_database_dsn)
    try:
        await apply_migrations(conn)
        rls = await conn.fetch(
            "SELECT relname FROM pg_class WHERE relrowsecurity AND relname = ANY($1)",
            ["conversations", "training_files", "training_file_conversations"],
        )
        assert len(rls) == 3
        policies = {r["policyname"] for r in await conn.fetch("SELECT policyname FROM pg_policies")}
        assert {
            "training_files_read",
            "training_files_create_own",
            "training_files_update_own",
        } <= policies
    finally:
        await conn.close()


async def test_a_changed_applied_migration_stops_the_start(
    empty_database_dsn: str, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "0001_first.sql").write_text("CREATE TABLE first (id int);")
    conn = await asyncpg.connect(empty_database_dsn)
    try:
        assert await apply_migrations(conn, directory) == ["0001_first.sql"]
        (directory / "0001_first.sql").write_text("CREATE TABLE first (id bigint);")
        (directory / "0002_second.sql").write_text("CREATE TABLE second (id int);")
        with pytest.raises(MigrationError, match=r"0001_first\.sql was changed"):
            await apply_migrations(conn, directory)
        # Nothing after the changed file was applied either.
        assert await conn.fetchval("SELECT to_regclass('second')") is None
    finally:
        await conn.close()


async def test_a_failing_migration_is_rolled_back_and_not_recorded(
    empty_database_dsn: str, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "0001_ok.sql").write_text("CREATE TABLE ok (id int);")
    (directory / "0002_broken.sql").write_text(
        "CREATE TABLE half (id int); SELECT no_such_function();"
    )
    conn = await asyncpg.connect(empty_database_dsn)
    try:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await apply_migrations(conn, directory)
        assert await conn.fetchval("SELECT to_regclass('half')") is None
        names = [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")]
        assert names == ["0001_ok.sql"]
    finally:
        await conn.close()


def test_badly_named_migration_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "1_init.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        load_migrations(tmp_path)


def test_project_migrations_are_numbered_without_gaps() -> None:
    versions = [int(m.version) for m in load_migrations(MIGRATIONS_DIR)]
    assert versions == list(range(1, len(versions) + 1))


async def test_names_differing_only_in_case_are_renamed_when_names_become_per_owner(
    empty_database_dsn: str, tmp_path: Path
) -> None:
    """0006 makes names unique per owner ignoring case; files that were legal before (one owner's
    "Q3" and "q3") keep their order and get a suffix instead of failing the migration."""
    before = tmp_path / "before"
    before.mkdir()
    for migration in load_migrations()[:5]:
        (before / migration.name).write_text(migration.sql)
    owner, other = uuid4(), uuid4()
    rows = [("Q3", owner, 1), ("q3", owner, 2), ("Q3 ", owner, 3)]
    conn = await asyncpg.connect(empty_database_dsn)
    try:
        await apply_migrations(conn, before)
        for name, created_by, day in rows:
            await conn.execute(
                "INSERT INTO training_files (name, created_by, created_at, storage_bucket)"
                " VALUES ($1, $2, $3, 'training-files')",
                name,
                created_by,
                datetime(2026, 1, day, tzinfo=UTC),
            )
        assert await apply_migrations(conn) == [m.name for m in load_migrations()[5:]]
        names = [
            (r["name"], r["created_by"])
            for r in await conn.fetch(
                "SELECT name, created_by FROM training_files ORDER BY created_at"
            )
        ]
        assert names == [("Q3", owner), ("q3 (2)", owner), ("Q3 ", owner)]
        # Another owner may use the name; the same owner may not, in any case.
        await conn.execute(
            "INSERT INTO training_files (name, created_by, storage_bucket)"
            " VALUES ('q3', $1, 'training-files')",
            other,
        )
        with pytest.raises(asyncpg.UniqueViolationError, match="training_files_owner_name_key"):
            await conn.execute(
                "INSERT INTO training_files (name, created_by, storage_bucket)"
                " VALUES ('Q3 (2)', $1, 'training-files')",
                owner,
            )
    finally:
        await conn.close()


async def test_file_totals_are_filled_in_from_the_members_when_added(
    empty_database_dsn: str, tmp_path: Path
) -> None:
    """0010 keeps the quality sum and count and the header's consultant profile on the row, so
    adds can carry them forward; files from before get them from their members: the sums over
    all of them, and the profile of the first member (by position) that has one."""
    before = tmp_path / "before"
    before.mkdir()
    for migration in load_migrations()[:9]:
        (before / migration.name).write_text(migration.sql)
    owner = uuid4()
    members = [  # (quality_sum, quality_count, consultant_profile), in position order
        ("7.5", 2, None),
        ("4.25", 1, '{"name": "second", "z": 1, "a": 2}'),
        ("0", 0, '{"name": "third"}'),
    ]
    conn = await asyncpg.connect(empty_database_dsn)
    try:
        await apply_migrations(conn, before)
        with_members, empty = [
            await conn.fetchval(
                "INSERT INTO training_files (name, created_by, storage_bucket)"
                " VALUES ($1, $2, 'training-files') RETURNING id",
                name,
                owner,
            )
            for name in ("with members", "empty")
        ]
        for position, (quality_sum, count, profile) in enumerate(members):
            conversation = uuid4()
            await conn.execute(
                "INSERT INTO conversations (conversation_id, pair_count, quality_sum,"
                " quality_count, consultant_profile) VALUES ($1, 2, $2::numeric, $3, $4::json)",
                conversation,
                quality_sum,
                count,
                profile,
            )
            await conn.execute(
                "INSERT INTO training_file_conversations"
                " (training_file_id, conversation_id, position, added_by) VALUES ($1, $2, $3, $4)",
                with_members,
                conversation,
                # Positions may have gaps: only their order counts.
                position * 2,
                owner,
            )
        assert await apply_migrations(conn) == [m.name for m in load_migrations()[9:]]
        rows = {
            r["id"]: (str(r["quality_sum"]), r["quality_count"], r["consultant_profile"])
            for r in await conn.fetch(
                "SELECT id, quality_sum, quality_count, consultant_profile::text"
                " FROM training_files"
            )
        }
        assert rows == {
            with_members: ("11.75", 3, '{"name": "second", "z": 1, "a": 2}'),
            empty: ("0", 0, None),
        }
    finally:
        await conn.close()
