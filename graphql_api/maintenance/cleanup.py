"""The clean-up a server runs on its own: remove what crashed writers left behind.

Only orphans and unfinished writes whose writer is provably gone (see orphans.py); no content
is verified here, that is `training-files check`'s job.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime

from ..db import training_files
from ..db.database import Database
from ..db.writers import LockKind, WriterPool
from ..storage.base import Storage
from . import orphans
from .report import Finding, State

log = logging.getLogger(__name__)


async def clean_up(writers: WriterPool, storage: Storage) -> Counter[State]:
    """One round; returns how many findings ended in each state (`reported`: keys outside our
    layout, left alone). A failed listing raises; a failed removal is retried next round."""
    db = Database(writers.pool)
    outcome: Counter[State] = Counter()
    async for item in orphans.find(db, storage, orphans.Tally(), datetime.now(UTC)):
        if isinstance(item, Finding):
            finding: Finding | None = item
        else:
            finding = await orphans.settle(item, writers, storage, repair=True)
        if finding is not None:
            outcome[finding.state] += 1
            _log(finding)
    await end_abandoned_builds(writers)
    return outcome


async def end_abandoned_builds(writers: WriterPool, limit: int = 1000) -> int:
    """Put back to ACTIVE the files left PROCESSING by a build that crashed: those whose
    writer lock is free (a running build holds it until it has put its file back itself)."""
    async with Database(writers.pool).session() as conn:
        marked = await training_files.processing(conn, limit)
    ended = 0
    for file_id in marked:
        async with writers.try_exclusive(LockKind.TRAINING_FILE, file_id) as locked:
            if locked is None:
                continue
            async with locked.session() as conn:
                await training_files.end_processing(conn, file_id)
            ended += 1
            log.info("training file %s: its build had stopped; ACTIVE again", file_id)
    return ended


def _log(finding: Finding) -> None:
    where = f"{finding.bucket}/{finding.key}"
    if finding.state is State.REMOVED:
        log.info("removed %s %s (%s bytes)", finding.kind, where, finding.size)
    elif finding.state is State.FAILED:
        log.warning("could not remove %s %s: %s", finding.kind, where, finding.detail)
