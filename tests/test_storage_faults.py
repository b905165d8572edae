"""Storage failing at every step of a create and of an add, on local storage and on S3.

Each fault is injected into the real backend (`FaultyStorage` around local storage, the S3
backend failing its Nth request of a kind), sometimes as a crash: every later call fails too,
so the service's own clean-up cannot reach the store either. After each fault: the previous
version is intact, `check --repair` leaves a consistent store, and a retry succeeds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import pytest

from graphql_api.aggregation.service import TrainingFileService
from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database
from graphql_api.db.training_files import TrainingFileRecord
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.maintenance.consistency import check_store
from graphql_api.runtime import Pools
from graphql_api.storage.base import CONVERSATION_BUCKET, TRAINING_BUCKET, Storage, read_all
from graphql_api.storage.local import LocalStorage

from .conftest import training_file_service
from .s3_servers import MotoServer
from .storage_wrappers import Faults, FaultyS3Storage, FaultyStorage

OWNER = UUID("00000000-0000-4000-8000-0000000000fa")
STEP = 2
# (backend, conversations in the file before the faulty adds): on S3 with composites, enough
# for an old body the new composite names (1 MiB); on S3 with every object plain, enough for a
# multipart JSON whose old body is copied inside the store (the copy needs 5 MiB beyond the
# bytes that top the header up to a 5 MiB part).
FOR_ADDS = [("local", 20), ("s3", 40), ("s3-plain", 200)]
FOR_CREATES = [("local", 0), ("s3", 0)]


@dataclass(frozen=True)
class Fault:
    operation: str
    nth: int = 1
    after: bool = False  # the call took effect, then its caller saw a failure
    crash: bool = False  # and nothing after it reaches the store

    def plan(self, faults: Faults) -> None:
        faults.fail(self.operation, self.nth, after=self.after, crash=self.crash)

    def __str__(self) -> str:
        flags = "".join(f" {f}" for f in ("after", "crash") if getattr(self, f))
        return f"{self.operation} #{self.nth}{flags}"


LOCAL_FAULTS = [
    Fault("get", 1),  # reading the first conversation
    Fault("get", 2, crash=True),
    Fault("compose", 1),  # one of the two objects
    Fault("compose", 2),
    Fault("compose", 1, after=True),  # written, then the answer is lost
    Fault("compose", 2, after=True, crash=True),  # both written, the process dies
    Fault("compose", 1, crash=True),
]
S3_FAULTS = [
    Fault("GetObject", 2),
    Fault("CreateMultipartUpload", 1),
    Fault("UploadPart", 1),
    Fault("UploadPart", 2, crash=True),  # the upload stays open: only check can abort it
    Fault("UploadPartCopy", 1),
    Fault("UploadPartCopy", 1, crash=True),
    Fault("CompleteMultipartUpload", 1),
    Fault("CompleteMultipartUpload", 1, after=True, crash=True),
    Fault("PutObject", 1),
    Fault("PutObject", 1, after=True, crash=True),
]
# An add to a composite: its old body's manifests are read, its header and new bytes uploaded
# as segments (small ones: PutObject), then each format's manifest.
S3_COMPOSITE_FAULTS = [
    Fault("HeadObject", 1),
    Fault("GetObject", 1),
    Fault("GetObject", 3, crash=True),
    Fault("PutObject", 1),
    Fault("PutObject", 2, crash=True),
    Fault("PutObject", 3, after=True),  # a segment or a manifest stored, the answer lost
    Fault("PutObject", 8, after=True, crash=True),  # the last manifest stored, then a crash
]


@dataclass
class Setup:
    real: Storage
    faults: Faults
    service: TrainingFileService  # over the faulty storage
    healthy: TrainingFileService  # over the same store, without faults
    ids: list[UUID]
    plan: list[Fault]
    base: int  # conversations in the file before the faulty adds


@pytest.fixture
async def setup(
    request: pytest.FixtureRequest,
    db: Database,
    pools: Pools,
    owner_writers: WriterPool,
    tmp_path: Path,
) -> AsyncIterator[Setup]:
    backend, base = request.param
    if backend == "local":
        real: Storage = LocalStorage(tmp_path / "storage")
        faulty = FaultyStorage(real)
        faults, plan, opened = faulty.faults, LOCAL_FAULTS, [real]
        faulty_storage: Storage = faulty  # type: ignore[assignment]
    else:
        moto: MotoServer = request.getfixturevalue("moto")
        composites = backend == "s3" and base > 0  # creates are plain either way
        s3 = await FaultyS3Storage.open(moto.config(composite_objects=composites))
        real = faulty_storage = s3
        plan = S3_COMPOSITE_FAULTS if composites else S3_FAULTS
        faults, opened = s3.faults, [s3]
    importer = ConversationImporter(owner_writers, real)
    count = base + STEP * (len(plan) + 1) * 2
    paths = write_demo_set(tmp_path / "demo", count, seed=77)
    ids = [r.conversation_id for r in [await importer.import_file(p) for p in paths]]
    # Rows without rendered pieces (as imported before pieces existed) beyond the first `base`:
    # a build then reads their files too, so every storage step of a build has a fault.
    async with db.session() as conn:
        await conn.execute(
            "UPDATE conversations SET pieces_path = NULL, piece_sizes = NULL"
            " WHERE conversation_id = ANY($1::uuid[])",
            ids[base:],
        )
    await check_store(owner_writers, real, repair=True)  # their pieces objects are orphans now
    yield Setup(
        real=real,
        faults=faults,
        service=training_file_service(pools, faulty_storage),
        healthy=training_file_service(pools, real),
        ids=[i for i in ids if i is not None],
        plan=plan,
        base=base,
    )
    for storage in opened:
        await storage.close()


async def _objects(storage: Storage, record: TrainingFileRecord) -> tuple[bytes, bytes]:
    return (
        await read_all(storage, TRAINING_BUCKET, record.json_file_path or ""),
        await read_all(storage, TRAINING_BUCKET, record.jsonl_file_path or ""),
    )


async def _row(db: Database, file_id: UUID) -> dict[str, object] | None:
    async with db.session() as conn:
        row = await conn.fetchrow("SELECT * FROM training_files WHERE id = $1", file_id)
    return dict(row) if row else None


async def _repaired_and_consistent(setup: Setup, owner_writers: WriterPool, fault: Fault) -> None:
    await check_store(owner_writers, setup.real, repair=True)
    after = await check_store(owner_writers, setup.real, repair=False)
    assert after.findings == [], (str(fault), after.findings)


@pytest.mark.parametrize("setup", FOR_ADDS, indirect=True, ids=["local", "s3", "s3-plain"])
async def test_an_add_failing_at_any_storage_step_keeps_the_previous_version(
    setup: Setup, db: Database, owner_writers: WriterPool
) -> None:
    current = await setup.healthy.create_training_file(OWNER, "faults", None, setup.ids[:1])
    for start in range(1, setup.base, 80):
        batch = setup.ids[start : min(start + 80, setup.base)]
        current = await setup.healthy.add_conversations(OWNER, current.id, batch)
    fresh = iter(range(setup.base, len(setup.ids), STEP))
    for fault in setup.plan:
        before_row, before_bytes = await _row(db, current.id), await _objects(setup.real, current)
        batch = setup.ids[(start := next(fresh)) : start + STEP]
        fired = len(setup.faults.fired)
        fault.plan(setup.faults)
        with pytest.raises(Exception):  # noqa: B017 - whatever the injected failure is
            await setup.service.add_conversations(OWNER, current.id, batch)
        assert setup.faults.fired[fired:] == [fault.operation], str(fault)
        setup.faults.reset()

        assert await _row(db, current.id) == before_row, str(fault)
        assert await _objects(setup.real, current) == before_bytes, str(fault)
        await _repaired_and_consistent(setup, owner_writers, fault)
        retried = await setup.healthy.add_conversations(OWNER, current.id, batch)
        assert retried.version == current.version + 1, str(fault)
        current = retried


@pytest.mark.parametrize("setup", FOR_CREATES, indirect=True, ids=["local", "s3"])
async def test_a_create_failing_at_any_storage_step_leaves_nothing(
    setup: Setup, db: Database, owner_writers: WriterPool
) -> None:
    conversation_files = await setup.real.list_keys(CONVERSATION_BUCKET)
    for n, fault in enumerate(setup.plan):
        name = f"fault {n}"
        batch = setup.ids[setup.base + n * STEP : setup.base + (n + 1) * STEP]
        fired = len(setup.faults.fired)
        fault.plan(setup.faults)
        try:
            await setup.service.create_training_file(OWNER, name, None, batch)
        except Exception:
            assert setup.faults.fired[fired:] == [fault.operation], str(fault)
        else:  # a step this small a create does not have (e.g. a copied part)
            assert setup.faults.fired[fired:] == [], str(fault)
            setup.faults.reset()
            continue
        setup.faults.reset()
        async with db.session() as conn:
            assert (
                await conn.fetchval("SELECT count(*) FROM training_files WHERE name = $1", name)
                == 0
            )
        await _repaired_and_consistent(setup, owner_writers, fault)
        assert await setup.real.list_keys(CONVERSATION_BUCKET) == conversation_files
        retried = await setup.healthy.create_training_file(OWNER, name, None, batch)
        assert retried.conversation_count == STEP
