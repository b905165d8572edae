"""Import enriched conversation files: validate, store the file, upsert the row."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from ..aggregation import pieces
from ..db import conversations as conversation_rows
from ..db.conversations import ConversationRecord
from ..db.writers import LockKind, WriterPool
from ..storage.base import CONVERSATION_BUCKET, Storage, iter_bytes
from .analysis import ConversationAnalysis, analyze
from .issues import Issue


class Outcome(enum.Enum):
    IMPORTED = "imported"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    BLOCKED = "blocked"
    REFUSED = "refused"


@dataclass(frozen=True)
class ImportResult:
    source: str
    outcome: Outcome
    conversation_id: UUID | None = None
    warnings: tuple[Issue, ...] = ()
    problems: tuple[str, ...] = ()
    blockers: tuple[Issue, ...] = ()  # what `problems` says, as issues (BLOCKED only)


class _Refused(Exception):
    pass


def find_conversation_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The given files, and every `*.json` below the given directories, in a stable order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.json") if p.is_file())
        else:
            yield path


def storage_key(analysis: ConversationAnalysis) -> str:
    """Content-addressed, so replacing a conversation's file never overwrites the old object
    while the database still points at it."""
    return f"{analysis.conversation_id}/{analysis.sha256[:16]}.json"


class ConversationImporter:
    """Imports as the writer pool's login role (the owner, for the CLI and the demo data)."""

    def __init__(
        self, writers: WriterPool, storage: Storage, *, created_by: UUID | None = None
    ) -> None:
        self._writers = writers
        self._storage = storage
        self._created_by = created_by

    async def import_file(self, path: Path) -> ImportResult:
        try:
            raw = path.read_bytes()
        except OSError as error:
            return ImportResult(str(path), Outcome.BLOCKED, problems=(f"cannot read: {error}",))
        return await self.import_bytes(raw, str(path))

    async def import_bytes(
        self, raw: bytes, source: str, analysis: ConversationAnalysis | None = None
    ) -> ImportResult:
        """`analysis`: what `analyze(raw)` gave, when the caller ran it already (the server
        does, off the event loop)."""
        analysis = analysis or analyze(raw)
        warnings = analysis.report.warnings
        if not analysis.report.ok or analysis.conversation_id is None:
            blockers = analysis.report.blockers
            problems = tuple(f"{i.path}: {i.message}" for i in blockers)
            return ImportResult(
                source, Outcome.BLOCKED, analysis.conversation_id, warnings, problems, blockers
            )
        conversation_id = analysis.conversation_id

        # Held from storing the file to committing its row: `check --repair` never takes a
        # file being imported for an orphan.
        async with self._writers.exclusive(LockKind.CONVERSATION, conversation_id) as locked:
            async with locked.session() as conn:
                found = await conversation_rows.get_many(conn, [conversation_id])
            existing = found.get(conversation_id)
            if existing and existing.enriched_file_sha256 == analysis.sha256:
                return ImportResult(source, Outcome.UNCHANGED, conversation_id, warnings)

            values = _row_values(analysis, storage_key(analysis), raw)
            stored = await self._store(conversation_id, raw, values)
            kept = _stored_keys(existing)
            try:
                async with locked.session() as conn:
                    previous = await conversation_rows.lock(conn, conversation_id)
                    await self._refuse_if_in_training_file(conn, conversation_id, previous)
                    await conversation_rows.upsert(conn, conversation_id, self._created_by, values)
            except _Refused as refusal:
                await self._forget(stored - kept)
                return ImportResult(
                    source, Outcome.REFUSED, conversation_id, warnings, (str(refusal),)
                )
            except BaseException:
                await self._forget(stored - kept)
                raise
            await self._forget(_stored_keys(previous) - stored)
        outcome = Outcome.UPDATED if previous else Outcome.IMPORTED
        return ImportResult(source, outcome, conversation_id, warnings)

    async def _refuse_if_in_training_file(
        self, conn: asyncpg.Connection, conversation_id: UUID, previous: object
    ) -> None:
        if previous is None:
            return
        names = await conversation_rows.training_file_names(conn, conversation_id)
        if names:
            listed = ", ".join(repr(n) for n in names)
            raise _Refused(
                f"conversation {conversation_id} is already in training file(s) {listed}; "
                "a changed file would make them disagree with their contents. "
                "Import it as a new conversation (new dataset_name) instead."
            )

    async def _store(self, conversation_id: UUID, raw: bytes, values: dict[str, Any]) -> set[str]:
        """Store the file and its rendered pieces; record the pieces in `values`; return the
        keys written."""
        document = json.loads(raw)
        rendered = pieces.render(
            pieces.entry_of(conversation_id, values, document["training_pairs"])
        )
        pieces_path = pieces.pieces_key(conversation_id, values["enriched_file_sha256"])
        values |= {"pieces_path": pieces_path, "piece_sizes": [len(p) for p in rendered]}
        await self._storage.put(CONVERSATION_BUCKET, values["enriched_file_path"], iter_bytes(raw))
        await self._storage.put(CONVERSATION_BUCKET, pieces_path, iter_bytes(b"".join(rendered)))
        return {values["enriched_file_path"], pieces_path}

    async def _forget(self, keys: set[str]) -> None:
        for key in sorted(keys):
            await self._storage.delete(CONVERSATION_BUCKET, key)


def _stored_keys(record: ConversationRecord | None) -> set[str]:
    """The objects a conversation row points at."""
    if record is None:
        return set()
    return {k for k in (record.enriched_file_path, record.pieces_path) if k}


def _row_values(analysis: ConversationAnalysis, key: str, raw: bytes) -> dict[str, Any]:
    scaffolding = analysis.scaffolding
    stats = analysis.stats
    return {
        "title": analysis.title,
        "persona_key": scaffolding.persona_key,
        "persona_name": scaffolding.persona_name,
        "emotional_arc_key": scaffolding.emotional_arc_key,
        "emotional_arc_name": scaffolding.emotional_arc_name,
        "training_topic_key": scaffolding.training_topic_key,
        "training_topic_name": scaffolding.training_topic_name,
        "quality_score": analysis.quality_score,
        "empathy_score": analysis.empathy_score,
        "clarity_score": analysis.clarity_score,
        "appropriateness_score": analysis.appropriateness_score,
        "brand_voice_alignment": analysis.brand_voice_alignment,
        "tier": analysis.tier,
        "scaffolding_snapshot": asdict(scaffolding),
        "consultant_profile": analysis.consultant_profile,
        "enrichment_status": "completed",
        "enriched_file_path": key,
        "enriched_file_size": len(raw),
        "enriched_file_sha256": analysis.sha256,
        "source_created_date": analysis.created_date,
        "total_turns": analysis.total_turns,
        "validation_report": analysis.report.to_json(),
        "pair_count": stats.pair_count,
        "trainable_pair_count": stats.trainable_pair_count,
        "quality_sum": stats.quality_sum,
        "quality_count": stats.quality_count,
        "quality_min": stats.quality_min,
        "quality_max": stats.quality_max,
        "human_reviewed_count": stats.human_reviewed_count,
    }
