"""The consistency checker: verify every training file, then list (and with `repair`, remove)
what crashes left behind. Safe while servers run: it changes nothing a writer could still need.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..db import consistency as sql
from ..db.database import Database
from ..db.training_files import TrainingFileRecord
from ..db.writers import WriterPool
from ..storage.base import Storage
from . import orphans
from .report import Finding, Report
from .verify import verify_file

_FILE_PAGE = 100
# A file that keeps changing while it is read is verified at most this often.
_ATTEMPTS = 3


async def check_store(
    writers: WriterPool, storage: Storage, *, repair: bool, now: datetime | None = None
) -> Report:
    """`writers` connect as the owner; their `.pool` serves the plain reads too."""
    db = Database(writers.pool)
    report = Report(repair=repair)
    await _verify_files(db, storage, report)
    tally = orphans.Tally()
    async for item in orphans.find(db, storage, tally, now or datetime.now(UTC)):
        if isinstance(item, Finding):
            report.findings.append(item)
        elif (settled := await orphans.settle(item, writers, storage, repair=repair)) is not None:
            report.findings.append(settled)
    report.objects, report.object_bytes = tally.objects, tally.object_bytes
    report.pending_writes = tally.pending_writes
    return report


async def _verify_files(db: Database, storage: Storage, report: Report) -> None:
    after = None
    while True:
        async with db.session() as conn:
            page = await sql.files_after(conn, after, _FILE_PAGE)
        for row in page:
            report.findings += await _verify_current(db, storage, row)
            report.training_files += 1
        if len(page) < _FILE_PAGE:
            return
        after = page[-1].id


async def _verify_current(db: Database, storage: Storage, row: TrainingFileRecord) -> list[Finding]:
    """Problems of the file as it is now: one that moved to a new version (or was deleted)
    while it was read is verified again, not reported for objects it no longer uses."""
    for _ in range(_ATTEMPTS):
        findings = await verify_file(db, storage, row)
        if not findings:
            return []
        async with db.session() as conn:
            now = await sql.file(conn, row.id)
        if now is None:
            return []
        if now.version == row.version:
            return findings
        row = now
    return findings
