"""`transaction(conn, user)`: begun with the caller's identity in one round trip, committed or
rolled back as asyncpg's own transactions are, and leaving nothing of the identity behind, on
the request path's own pool (its shipped size and reset)."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import pytest

from graphql_api.db.database import APP_ROLE, Database, transaction
from graphql_api.runtime import Pools

USER = UUID("00000000-0000-4000-8000-0000000007a1")

# A setting never made reads NULL, one whose SET LOCAL ended reads '': the same to the policies.
_WHO = "SELECT coalesce(current_setting('app.user_id', true), ''), current_user"
_PROBE = "SELECT current_setting('tx.probe', true)"


async def test_a_transaction_runs_as_the_user_and_leaves_no_identity_behind(pools: Pools) -> None:
    db: Database = pools.db
    async with db.connection() as conn:
        # A request connection may carry the session-wide identity of its last `Reader`
        # checkout (every checkout sets its own): the transaction's must not outlive it.
        before = tuple(await conn.fetchrow(_WHO))
        assert before[0] != str(USER)
        async with transaction(conn, USER):
            assert conn.is_in_transaction()
            assert tuple(await conn.fetchrow(_WHO)) == (str(USER), APP_ROLE)
            await conn.execute("SELECT set_config('tx.probe', 'committed', false)")
        assert not conn.is_in_transaction()
        assert tuple(await conn.fetchrow(_WHO)) == before
        assert await conn.fetchval(_PROBE) == "committed"  # the commit happened
        await conn.execute("RESET tx.probe")  # a session setting: not left in the pool


async def test_a_failure_inside_rolls_back_and_the_connection_stays_usable(pools: Pools) -> None:
    async with pools.db.connection() as conn:
        with pytest.raises(asyncpg.UndefinedTableError):
            async with transaction(conn, USER):
                await conn.execute("SELECT set_config('tx.probe', 'rolled back', false)")
                await conn.execute("SELECT * FROM no_such_table")
        assert not conn.is_in_transaction()
        assert await conn.fetchval(_PROBE) != "rolled back"
        assert await conn.fetchval("SELECT 1") == 1

        class Refused(Exception):
            pass

        with pytest.raises(Refused):
            async with transaction(conn, USER):
                await conn.execute("SELECT set_config('tx.probe', 'refused', false)")
                raise Refused
        assert not conn.is_in_transaction()
        assert await conn.fetchval(_PROBE) != "refused"


async def test_statements_at_commit_go_with_the_commit_and_only_with_it(pools: Pools) -> None:
    """What a block leaves in `at_commit` is sent with its COMMIT; a block that fails sends
    none of it. The probe is transactional (a table row), so it is seen only if committed."""
    async with pools.maintenance.session() as conn:
        await conn.execute("CREATE TABLE IF NOT EXISTS tx_at_commit_probe (note text)")
        await conn.execute("GRANT INSERT, SELECT ON tx_at_commit_probe TO " + APP_ROLE)
        await conn.execute("TRUNCATE tx_at_commit_probe")
    try:
        async with pools.db.connection() as conn:
            sent: list[str] = []
            async with transaction(conn, USER, at_commit=sent):
                sent.append("INSERT INTO tx_at_commit_probe VALUES ('committed')")
            failed: list[str] = []
            with pytest.raises(RuntimeError):
                async with transaction(conn, USER, at_commit=failed):
                    failed.append("INSERT INTO tx_at_commit_probe VALUES ('rolled back')")
                    raise RuntimeError("the block fails")
            assert not conn.is_in_transaction()
        async with pools.maintenance.session() as conn:
            notes = [r[0] for r in await conn.fetch("SELECT note FROM tx_at_commit_probe")]
        assert notes == ["committed"]
    finally:
        async with pools.maintenance.session() as conn:
            await conn.execute("DROP TABLE IF EXISTS tx_at_commit_probe")
