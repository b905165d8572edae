"""Verify one training file: its row, its objects, its junction rows, streamed.

The row: its totals and distribution are what its members add up to (an add extends the row's
instead of aggregating the members again, so a drift would otherwise go unseen), and the
members' recorded byte ranges tile each object's body in file order (a removal copies the bytes
around the removed members' ranges, trusting them).

Every object exists with its recorded size (and the JSON and JSONL with fitting body offsets).
The full JSON: the header's totals match the row, the footer is `JSON_FOOTER`, the body's
conversations are the junction rows in position order, and its pairs add up to the row's. The
JSONL: `_meta` says the row's trainable pairs, and there are that many lines, each of a member,
in member order. The trainer exports (when the version has them): a line per pair of the full JSON that makes a chat
example, each of its export's shape (exports.py); HF_DATASET's lines of members in member order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from uuid import UUID

from ..aggregation import removal
from ..aggregation.chat import messages
from ..aggregation.format import JSON_FOOTER
from ..db import consistency as sql
from ..db import training_files
from ..db.database import Database
from ..db.training_files import TrainingFileRecord
from ..domain.enums import FileFormat
from ..domain.limits import cents
from ..storage.base import ObjectNotFound, Storage, StorageError
from .exports import line_problem
from .report import Finding, Kind, State
from .scan import (
    LayoutError,
    json_conversations,
    lines,
    parse_json_header,
    parse_jsonl_header,
    parse_line,
)

MAX_HEADER_BYTES = 16 * 1024 * 1024
_MEMBER_PAGE = 1000


class _Findings:
    """The problems of one file, each naming the object it is about."""

    def __init__(self, row: TrainingFileRecord) -> None:
        self.row = row
        self.items: list[Finding] = []
        # The full JSON's pairs that make chat examples, once its body has been read.
        self.examples: int | None = None

    def add(self, kind: Kind, key: str | None, detail: str, size: int | None = None) -> None:
        self.items.append(
            Finding(
                kind,
                State.REPORTED,
                self.row.storage_bucket,
                key or "",
                size=size,
                training_file_id=self.row.id,
                detail=detail,
            )
        )


async def verify_file(db: Database, storage: Storage, row: TrainingFileRecord) -> list[Finding]:
    findings = _Findings(row)
    await _verify_statistics(db, row, findings)
    await _verify_member_ranges(db, row, findings)
    checks = (
        (row.json_file_path, row.json_file_size, _verify_json),
        (row.jsonl_file_path, row.jsonl_file_size, _verify_jsonl),
    )
    for key, recorded_size, verify_content in checks:
        if not await _has_recorded_size(storage, row, key, recorded_size, findings):
            continue
        assert key is not None
        try:
            await verify_content(db, storage, row, key, findings)
        except LayoutError as error:
            findings.add(Kind.BAD_LAYOUT, key, str(error))
        except StorageError as error:
            findings.add(Kind.UNREADABLE, key, str(error))
    exports = (
        (FileFormat.OPENAI_CHAT, row.openai_chat_file_path, row.openai_chat_file_size),
        (FileFormat.HF_DATASET, row.hf_dataset_file_path, row.hf_dataset_file_size),
    )
    for kind, key, recorded_size in exports:
        if key is None and recorded_size is None:
            continue  # a version built before the exports existed
        if not await _has_recorded_size(storage, row, key, recorded_size, findings):
            continue
        assert key is not None and recorded_size is not None
        try:
            await _verify_export(db, storage, row, kind, key, recorded_size, findings)
        except LayoutError as error:
            findings.add(Kind.BAD_LAYOUT, key, str(error))
        except StorageError as error:
            findings.add(Kind.UNREADABLE, key, str(error))
    return findings.items


async def _verify_statistics(db: Database, row: TrainingFileRecord, findings: _Findings) -> None:
    async with db.session() as conn:
        members, distribution = await training_files.kept_totals(conn, row.id, [])
    minimum, maximum = members.quality_min, members.quality_max
    compared: dict[str, tuple[Any, Any]] = {
        "conversations": (members.conversation_count, row.conversation_count),
        "training pairs": (members.total_pairs, row.total_training_pairs),
        "trainable pairs": (members.trainable_pairs, row.trainable_pairs),
        "quality sum": (members.quality_sum, row.quality_sum),
        "quality count": (members.quality_count, row.quality_count),
        "minimum quality": (None if minimum is None else cents(minimum), row.min_quality_score),
        "maximum quality": (None if maximum is None else cents(maximum), row.max_quality_score),
        "human-reviewed pairs": (members.human_reviewed_count, row.human_reviewed_count),
        "scaffolding distribution": (
            {(d.kind, d.key): d.count for d in distribution},
            {
                (kind, key): count
                for kind, counts in _distribution_counts(row.scaffolding_distribution).items()
                for key, count in counts.items()
            },
        ),
    }
    for name, (added_up, recorded) in compared.items():
        if added_up != recorded:
            findings.add(
                Kind.STATISTICS_MISMATCH,
                None,
                f"{name}: the members add up to {added_up!r}, the row says {recorded!r}",
            )


async def _verify_member_ranges(db: Database, row: TrainingFileRecord, findings: _Findings) -> None:
    """Each member's range starts where the one before it ended (the first at 0) and the last
    ends at the body's end. A member without ranges (from before 0009) breaks the chain: the
    members after it are checked against each other and the body's end only."""
    bodies = training_files.body_lengths(row)
    follows: dict[FileFormat, int | None] = dict.fromkeys(bodies, 0)
    problems: dict[FileFormat, str] = {}
    after = -1
    while True:
        async with db.session() as conn:
            page = await sql.member_ranges_after(conn, row.id, after, _MEMBER_PAGE)
        for position, conversation_id, ranges in page:
            after = position
            for kind in bodies:
                if ranges is None:
                    follows[kind] = None
                    continue
                start, end = removal.span(ranges, kind)
                if kind not in problems and follows[kind] not in (None, start):
                    problems[kind] = (
                        f"member {conversation_id} (position {position}) starts at {start}, "
                        f"the member before it ends at {follows[kind]}"
                    )
                follows[kind] = end
        if len(page) < _MEMBER_PAGE:
            break
    for kind, length in bodies.items():
        if kind not in problems and follows[kind] is not None and follows[kind] != length:
            problems[kind] = f"the members' ranges end at {follows[kind]}, the body at {length}"
    for kind, problem in problems.items():
        findings.add(Kind.RANGES_MISMATCH, row.object_of(kind)[0], problem)


async def _has_recorded_size(
    storage: Storage,
    row: TrainingFileRecord,
    key: str | None,
    recorded: int | None,
    findings: _Findings,
) -> bool:
    if key is None or recorded is None:
        findings.add(Kind.MISSING_OBJECT, key, "the row records no object or no size")
        return False
    try:
        size = await storage.size(row.storage_bucket, key)
    except ObjectNotFound:
        findings.add(Kind.MISSING_OBJECT, key, "the row points at an object that is not stored")
        return False
    except StorageError as error:
        findings.add(Kind.UNREADABLE, key, str(error))
        return False
    if size != recorded:
        findings.add(Kind.WRONG_SIZE, key, f"stored {size} bytes, the row says {recorded}", size)
        return False
    return True


# -- the full JSON ---------------------------------------------------------------------------


async def _verify_json(
    db: Database, storage: Storage, row: TrainingFileRecord, key: str, findings: _Findings
) -> None:
    start, end, size = row.json_body_start, row.json_body_end, row.json_file_size
    assert size is not None
    if start is None or end is None or not 0 < start <= end or end + len(JSON_FOOTER) != size:
        raise LayoutError(f"body offsets [{start}, {end}) do not fit a file of {size} bytes")
    if start > MAX_HEADER_BYTES:
        raise LayoutError(f"the header is {start} bytes, more than {MAX_HEADER_BYTES}")
    bucket = row.storage_bucket
    header = parse_json_header(await _read(storage, bucket, key, 0, start))
    for mismatch in _header_mismatches(header, row):
        findings.add(Kind.HEADER_MISMATCH, key, mismatch)
    if await _read(storage, bucket, key, end, size) != JSON_FOOTER:
        raise LayoutError("the bytes after the body are not the footer")
    await _verify_json_body(storage.get_range(bucket, key, start, end), db, row, key, findings)


async def _verify_json_body(
    chunks: AsyncIterator[bytes],
    db: Database,
    row: TrainingFileRecord,
    key: str,
    findings: _Findings,
) -> None:
    members = _members(db, row.id)
    conversations = pairs = trainable = examples = 0
    mismatch: str | None = None
    async for conversation in json_conversations(chunks):
        found = _conversation_id(conversation, conversations + 1)
        expected = await anext(members, None)
        if mismatch is None and found != expected:
            mismatch = (
                f"conversation {conversations + 1} is {found}, "
                f"the junction has {expected or 'nothing'} at that place"
            )
        conversations += 1
        training_pairs = conversation.get("training_pairs")
        if not isinstance(training_pairs, list):
            raise LayoutError(f"conversation {conversations} has no training_pairs list")
        pairs += len(training_pairs)
        trainable += sum(1 for p in training_pairs if _is_trainable(p))
        examples += sum(1 for p in training_pairs if isinstance(p, dict) and messages(p))
    if mismatch is None and (extra := await anext(members, None)) is not None:
        mismatch = f"the junction has more conversations than the file, from {extra}"
    if mismatch is not None:
        findings.add(Kind.MEMBERS_MISMATCH, key, mismatch)
    findings.examples = examples
    counted = {
        "conversations": (conversations, row.conversation_count),
        "training pairs": (pairs, row.total_training_pairs),
        "trainable pairs": (trainable, row.trainable_pairs),
    }
    for what, (found_count, recorded) in counted.items():
        if found_count != recorded:
            findings.add(
                Kind.CONTENT_MISMATCH, key, f"the body has {found_count} {what}, the row {recorded}"
            )


def _header_mismatches(header: dict[str, Any], row: TrainingFileRecord) -> list[str]:
    metadata = header.get("training_file_metadata")
    if not isinstance(metadata, dict):
        raise LayoutError("the header has no training_file_metadata")
    quality = metadata.get("quality_summary") or {}
    compared: dict[str, tuple[Any, Any]] = {
        "total_conversations": (metadata.get("total_conversations"), row.conversation_count),
        "total_training_pairs": (metadata.get("total_training_pairs"), row.total_training_pairs),
        "human_reviewed_count": (quality.get("human_reviewed_count"), row.human_reviewed_count),
        "avg_quality_score": (_decimal(quality.get("avg_quality_score")), row.avg_quality_score),
        "min_quality_score": (_decimal(quality.get("min_quality_score")), row.min_quality_score),
        "max_quality_score": (_decimal(quality.get("max_quality_score")), row.max_quality_score),
        "scaffolding_distribution": (
            metadata.get("scaffolding_distribution"),
            _distribution_counts(row.scaffolding_distribution),
        ),
    }
    return [
        f"{name}: the header says {found!r}, the row {recorded!r}"
        for name, (found, recorded) in compared.items()
        if found != recorded
    ]


def _distribution_counts(distribution: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The row's distribution ({kind: [{key, name, count}]}) as the header writes it."""
    return {
        kind: {entry["key"]: entry["count"] for entry in entries}
        for kind, entries in distribution.items()
    }


def _decimal(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _conversation_id(conversation: dict[str, Any], number: int) -> UUID:
    metadata = conversation.get("conversation_metadata")
    try:
        return UUID(metadata["conversation_id"])  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        raise LayoutError(f"conversation {number} has no valid conversation_id") from None


def _is_trainable(pair: object) -> bool:
    return isinstance(pair, dict) and pair.get("target_response") is not None


# -- the JSONL -------------------------------------------------------------------------------


async def _verify_jsonl(
    db: Database, storage: Storage, row: TrainingFileRecord, key: str, findings: _Findings
) -> None:
    start, end, size = row.jsonl_body_start, row.jsonl_body_end, row.jsonl_file_size
    if start is None or end is None or not 0 < start <= end or end != size:
        raise LayoutError(f"body offsets [{start}, {end}) do not fit a file of {size} bytes")
    if start > MAX_HEADER_BYTES:
        raise LayoutError(f"the _meta line is {start} bytes, more than {MAX_HEADER_BYTES}")
    meta = parse_jsonl_header(await _read(storage, row.storage_bucket, key, 0, start))
    total_pairs = meta.get("total_pairs")
    if total_pairs != row.trainable_pairs:
        findings.add(
            Kind.HEADER_MISMATCH,
            key,
            f"_meta.total_pairs is {total_pairs!r}, the row's trainable pairs {row.trainable_pairs}",
        )
    chunks = storage.get_range(row.storage_bucket, key, start, end)
    counted, mismatch = await _scan_pair_lines(chunks, _members(db, row.id))
    if mismatch is not None:
        findings.add(Kind.MEMBERS_MISMATCH, key, mismatch)
    if counted != total_pairs or counted != row.trainable_pairs:
        findings.add(
            Kind.CONTENT_MISMATCH,
            key,
            f"{counted} pair lines after _meta; _meta says {total_pairs!r}, "
            f"the row {row.trainable_pairs}",
        )


# -- the trainer exports ----------------------------------------------------------------------


async def _verify_export(
    db: Database,
    storage: Storage,
    row: TrainingFileRecord,
    kind: FileFormat,
    key: str,
    size: int,
    findings: _Findings,
) -> None:
    chunks = storage.get_range(row.storage_bucket, key, 0, size)
    if kind is FileFormat.HF_DATASET:
        counted, mismatch = await _scan_pair_lines(chunks, _members(db, row.id), kind, first=1)
        if mismatch is not None:
            findings.add(Kind.MEMBERS_MISMATCH, key, mismatch)
    else:
        counted = 0
        async for line in lines(chunks):
            counted += 1
            _check_export_line(kind, parse_line(line, counted), counted)
    if findings.examples is not None and counted != findings.examples:
        findings.add(
            Kind.CONTENT_MISMATCH,
            key,
            f"{counted} lines; the full JSON has {findings.examples} pairs that make chat examples",
        )


def _check_export_line(kind: FileFormat, line: dict[str, Any], number: int) -> None:
    problem = line_problem(kind, line)
    if problem is not None:
        raise LayoutError(f"line {number} {problem}")


async def _scan_pair_lines(
    chunks: AsyncIterator[bytes],
    members: AsyncIterator[UUID],
    kind: FileFormat = FileFormat.JSONL,
    *,
    first: int = 2,
) -> tuple[int, str | None]:
    """How many pair lines there are, and the first line out of the junction's order; lines
    are numbered from `first` (the JSONL's first pair line is its second line)."""
    count = 0
    mismatch: str | None = None
    current: UUID | None = None
    async for line in lines(chunks):
        count += 1
        number = count + first - 1
        parsed = parse_line(line, number)
        if kind is not FileFormat.JSONL:
            _check_export_line(kind, parsed, number)
        found = _line_conversation(parsed, number)
        if mismatch is None and found != current:
            # Lines come in member order; members without trainable pairs have none.
            current = await _advance_to(members, found)
            if current is None:
                mismatch = f"line {number} is of {found}, not of a later member of the junction"
    return count, mismatch


async def _advance_to(members: AsyncIterator[UUID], wanted: UUID) -> UUID | None:
    async for member in members:
        if member == wanted:
            return member
    return None


def _line_conversation(line: dict[str, Any], number: int) -> UUID:
    try:
        return UUID(line["conversation_id"])
    except (TypeError, KeyError, ValueError):
        raise LayoutError(f"line {number} has no valid conversation_id") from None


# -- reading ---------------------------------------------------------------------------------


async def _read(storage: Storage, bucket: str, key: str, start: int, end: int) -> bytes:
    """A small range (a header, the footer) in memory."""
    return b"".join([chunk async for chunk in storage.get_range(bucket, key, start, end)])


async def _members(db: Database, file_id: UUID) -> AsyncIterator[UUID]:
    """The file's conversation ids in position order, a page at a time."""
    after = -1
    while True:
        async with db.session() as conn:
            page = await sql.members_after(conn, file_id, after, _MEMBER_PAGE)
        for position, conversation_id in page:
            yield conversation_id
            after = position
        if len(page) < _MEMBER_PAGE:
            return
