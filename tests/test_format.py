"""graphql_api.aggregation.format: byte pieces of the full JSON and JSONL training files."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

import pytest

from graphql_api.aggregation.format import (
    JSON_FOOTER,
    ConversationEntry,
    Distribution,
    FileHeader,
    QualitySummary,
    ScaffoldingEntry,
    format_timestamp,
    json_conversation,
    json_header,
    jsonl_header,
    jsonl_lines,
    quality_tier,
)

from . import product_rules as rules
from .conftest import EXAMPLES_DIR, SHARED_DIR, TRAINING_FILE_SCHEMA

PAIR_LINE_KEYS = [
    "id",
    "conversation_id",
    "turn_number",
    "conversation_metadata",
    "system_prompt",
    "conversation_history",
    "current_user_input",
    "emotional_context",
    "target_response",
    "training_metadata",
]
MOMENT = datetime(2025, 12, 4, 21, 3, 8, 773456, tzinfo=UTC)
ID_A = UUID("264a66d3-3430-4931-b5d7-e057ba50363a")
ID_B = UUID("2a00c029-fd27-4401-8aff-46282d7901e2")
ID_C = UUID("6ab32d68-ef2a-44ee-acb4-b692d641164f")
PROFILE: dict[str, Any] = {
    "name": "Elena Morales, CFP",
    "business": "Pathways Financial Planning",
    "expertise": "fee-only financial planning",
    "years_experience": 15,
    "core_philosophy": {f"principle_{i}": f"Principle {i} — café" for i in range(1, 6)},
    "communication_style": {"tone": "warm", "techniques": ["listen"], "avoid": []},
}


# --------------------------------------------------------------------------- builders


def _pair(turn: int, *, answer: str | None, **extra: Any) -> dict[str, Any]:
    pair: dict[str, Any] = {
        "id": f"complexity_management_turn{turn}",
        "conversation_id": "complexity_management",
        "turn_number": turn,
        "conversation_metadata": {
            "client_persona": "Marcus Chen - The Overwhelmed Avoider",
            "emotional_arc": "Overwhelm → Empowerment",
            "conversation_phase": "initial_overwhelm_breakdown",
        },
        "system_prompt": "You are Elena Morales, CFP. " * 5,
        "conversation_history": [] if turn == 1 else [{"turn": 1, "role": "user", "content": "é"}],
        "current_user_input": "Where do I even start? Résumé → plan.",
        "emotional_context": {"detected_emotions": {"primary": "overwhelm", "intensity": 0.8}},
        "target_response": answer,
        "training_metadata": {
            "quality_score": 3,
            "quality_criteria": {"empathy_score": 3.1, "clarity_score": 2.9},
            "human_reviewed": False,
            "reviewer_notes": None,
        },
    }
    pair.update(extra)
    return pair


def _pairs(count: int) -> list[dict[str, Any]]:
    """Alternating user turns (null target) and consultant turns, as the real files."""
    return [
        _pair(turn, answer=None if turn % 2 else f"Answer {turn} → ok")
        for turn in range(1, count + 1)
    ]


def _scaffolding(persona: str = "overwhelmed_avoider", topic: str = "eldercare_costs") -> Any:
    return ScaffoldingEntry(
        persona_key=persona,
        persona_name="Marcus Chen" if persona else "",
        emotional_arc_key="overwhelm_to_empowerment",
        emotional_arc="Overwhelm → Empowerment",
        training_topic_key=topic,
        training_topic="Planning for Eldercare Expenses" if topic else "",
    )


def _entry(conversation_id: UUID, pairs: list[dict[str, Any]], **kw: Any) -> ConversationEntry:
    fields: dict[str, Any] = {
        "created_date": date(2025, 12, 4),
        "quality_tier": "experimental",
        "scaffolding": _scaffolding(),
    } | kw
    return ConversationEntry(
        conversation_id=conversation_id,
        total_turns=len(pairs),
        training_pairs=pairs,
        **fields,
    )


def _trainable(entries: Sequence[ConversationEntry]) -> int:
    return sum(1 for e in entries for p in e.training_pairs if p.get("target_response") is not None)


def _header(entries: Sequence[ConversationEntry], **kw: Any) -> FileHeader:
    fields: dict[str, Any] = {
        "file_name": "3 conversations → evaluation",
        "created_date": MOMENT,
        "last_updated": MOMENT + timedelta(hours=1),
        "target_model": "claude-sonnet-4-5",
        "vertical": "financial_planning_consultant",
        "quality": QualitySummary(Decimal(3), Decimal("2.5"), Decimal("3.25"), 1, Decimal("6.25")),
        "distribution": Distribution(
            personas=(("overwhelmed_avoider", 2),),
            emotional_arcs=(("overwhelm_to_empowerment", 2),),
            training_topics=(("eldercare_costs", 1), ("refinancing_evaluation", 1)),
        ),
        "consultant_profile": PROFILE,
    } | kw
    return FileHeader(
        total_conversations=len(entries),
        total_training_pairs=sum(len(e.training_pairs) for e in entries),
        trainable_pairs=_trainable(entries),
        **fields,
    )


def _json(header: FileHeader, entries: Sequence[ConversationEntry]) -> bytes:
    return json_header(header) + _json_body(entries) + JSON_FOOTER


def _json_body(entries: Sequence[ConversationEntry], *, first: bool = True) -> bytes:
    return b"".join(
        json_conversation(entry, first=first and i == 0) for i, entry in enumerate(entries)
    )


def _jsonl(header: FileHeader, entries: Sequence[ConversationEntry]) -> bytes:
    return jsonl_header(header) + b"".join(jsonl_lines(entry) for entry in entries)


def _number(value: Decimal | None) -> int | float | None:
    """The reference rendering, spelled out independently of the module."""
    if value is None:
        return None
    rounded = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return int(rounded) if rounded == int(rounded) else float(rounded)


def _timestamp(moment: datetime) -> str:
    """The reference rendering: UTC, milliseconds truncated, a Z (JavaScript's toISOString)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _document(header: FileHeader, entries: Sequence[ConversationEntry]) -> dict[str, Any]:
    """The equivalent document, built by hand in the documented key order."""
    metadata: dict[str, Any] = {
        "file_name": header.file_name,
        "version": "4.0.0",
        "created_date": _timestamp(header.created_date),
        "last_updated": _timestamp(header.last_updated),
        "format_spec": "brightrun-lora-v4",
    }
    if header.target_model is not None:
        metadata["target_model"] = header.target_model
    q = header.quality
    d = header.distribution
    metadata.update(
        vertical=header.vertical,
        total_conversations=header.total_conversations,
        total_training_pairs=header.total_training_pairs,
        quality_summary={
            "avg_quality_score": _number(q.avg_quality_score),
            "min_quality_score": _number(q.min_quality_score),
            "max_quality_score": _number(q.max_quality_score),
            "human_reviewed_count": q.human_reviewed_count,
            "human_reviewed_percentage": _number(q.human_reviewed_percentage),
        },
        scaffolding_distribution={
            "personas": dict(d.personas),
            "emotional_arcs": dict(d.emotional_arcs),
            "training_topics": dict(d.training_topics),
        },
    )
    conversations = [
        {
            "conversation_metadata": {
                "conversation_id": str(e.conversation_id),
                "source_file": f"fp_conversation_{e.conversation_id}.json",
                "created_date": e.created_date.isoformat() if e.created_date else None,
                "total_turns": e.total_turns,
                "quality_tier": e.quality_tier,
                "scaffolding": {
                    "persona_key": e.scaffolding.persona_key,
                    "persona_name": e.scaffolding.persona_name,
                    "emotional_arc_key": e.scaffolding.emotional_arc_key,
                    "emotional_arc": e.scaffolding.emotional_arc,
                    "training_topic_key": e.scaffolding.training_topic_key,
                    "training_topic": e.scaffolding.training_topic,
                },
            },
            "training_pairs": e.training_pairs,
        }
        for e in entries
    ]
    return {
        "training_file_metadata": metadata,
        "consultant_profile": header.consultant_profile,
        "conversations": conversations,
    }


def _dumped(document: Any) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# What opens and closes the "conversations" array of an indented document: the only place
# these bytes can occur, since json.dumps escapes newlines inside strings.
_CONVERSATIONS_OPEN = b'\n  "conversations": ['
_CONVERSATIONS_CLOSE = b"\n  ]\n}\n"


def _body_of(dumped: bytes) -> tuple[int, bytes]:
    """Where the conversations of a json.dumps-ed document start, and their bytes."""
    start = dumped.index(_CONVERSATIONS_OPEN) + len(_CONVERSATIONS_OPEN)
    assert dumped.endswith(_CONVERSATIONS_CLOSE)
    return start, dumped[start : -len(_CONVERSATIONS_CLOSE)]


def _reference_jsonl(file_name: str, entries: Sequence[ConversationEntry]) -> bytes:
    """The JSONL as the format promises it, by hand: the _meta line, then one compact line per
    pair with a target_response, keys in the documented order."""
    lines = [
        {
            "id": f"{pair['id']}_{str(entry.conversation_id)[:8]}",
            "conversation_id": str(entry.conversation_id),
            **{key: pair[key] for key in PAIR_LINE_KEYS[2:]},
        }
        for entry in entries
        for pair in entry.training_pairs
        if pair["target_response"] is not None
    ]
    meta = {
        "_meta": {
            "file_name": file_name,
            "total_pairs": len(lines),
            "version": "4.0.0",
            "format_spec": "brightrun-lora-v4",
        }
    }
    return "".join(
        json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n"
        for item in [meta, *lines]
    ).encode("utf-8")


def _three() -> list[ConversationEntry]:
    return [
        _entry(ID_A, _pairs(5)),
        _entry(ID_B, _pairs(5), created_date=None, scaffolding=_scaffolding("", "")),
        _entry(ID_C, _pairs(6), quality_tier="production"),
    ]


# --------------------------------------------------------------------------- schema helpers


def _schema() -> dict[str, Any]:
    return TRAINING_FILE_SCHEMA


_DATE_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _validators(schema: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(full file, _meta line, pair line) validators, formats asserted."""
    jsonschema = pytest.importorskip("jsonschema")
    validator_class = jsonschema.Draft202012Validator
    validator_class.check_schema(schema)
    checker = jsonschema.FormatChecker()
    if "date-time" not in checker.checkers:  # needs rfc3339-validator, an optional extra

        @checker.checks("date-time")
        def _date_time(instance: object) -> bool:
            if not isinstance(instance, str):
                return True
            if not _DATE_TIME_RE.fullmatch(instance):
                return False
            datetime.fromisoformat(instance.upper().replace("Z", "+00:00"))
            return True

    assert {"date", "uuid"} <= set(checker.checkers)

    def sub(name: str) -> Any:
        return validator_class(
            {"$ref": f"#/$defs/{name}", "$defs": schema["$defs"]}, format_checker=checker
        )

    full = validator_class(schema, format_checker=checker)
    return full, sub("jsonl_meta_line"), sub("jsonl_pair_line")


def _errors(validator: Any, instance: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}"[:300] for e in validator.iter_errors(instance)]


def _check_jsonl(jsonl: bytes, meta_validator: Any, line_validator: Any) -> list[Any]:
    assert jsonl.endswith(b"\n")
    lines = jsonl.decode("utf-8").split("\n")
    assert lines[-1] == ""
    parsed = [json.loads(line) for line in lines[:-1]]
    assert _errors(meta_validator, parsed[0]) == []
    for line in parsed[1:]:
        assert _errors(line_validator, line) == []
    assert len(parsed) == parsed[0]["_meta"]["total_pairs"] + 1
    return parsed


# --------------------------------------------------------------------------- full JSON


def test_json_equals_json_dumps_of_the_document() -> None:
    entries = _three()
    header = _header(entries)
    rendered = _json(header, entries)
    assert rendered == _dumped(_document(header, entries))
    document = json.loads(rendered)
    assert list(document) == ["training_file_metadata", "consultant_profile", "conversations"]
    assert list(document["training_file_metadata"]) == [
        "file_name",
        "version",
        "created_date",
        "last_updated",
        "format_spec",
        "target_model",
        "vertical",
        "total_conversations",
        "total_training_pairs",
        "quality_summary",
        "scaffolding_distribution",
    ]
    assert document["training_file_metadata"]["total_training_pairs"] == 16
    second = document["conversations"][1]["conversation_metadata"]
    assert second["created_date"] is None
    assert second["source_file"] == f"fp_conversation_{ID_B}.json"
    assert second["scaffolding"]["persona_key"] == ""


def test_json_single_conversation_and_no_target_model() -> None:
    entries = [_entry(ID_A, _pairs(1))]
    header = _header(entries, target_model=None, consultant_profile={})
    rendered = _json(header, entries)
    assert rendered == _dumped(_document(header, entries))
    assert "target_model" not in json.loads(rendered)["training_file_metadata"]


def test_json_append_equals_fresh_build() -> None:
    first, added = _three()[:1], _three()[1:]
    old_header = _header(first)
    old = _json(old_header, first)
    assert old == _dumped(_document(old_header, first))
    # The body an add copies: where the module says it starts is where json.dumps puts it.
    start, old_body = _body_of(_dumped(_document(old_header, first)))
    assert len(json_header(old_header)) == start
    assert old[start : len(old) - len(JSON_FOOTER)] == old_body

    new_header = _header([*first, *added], last_updated=MOMENT + timedelta(days=1))
    appended = json_header(new_header) + old_body + _json_body(added, first=False) + JSON_FOOTER
    assert appended == _dumped(_document(new_header, [*first, *added]))


def test_json_conversation_separator() -> None:
    entry = _entry(ID_A, _pairs(2))
    piece = json_conversation(entry, first=True)
    assert piece.startswith(b'\n    {\n      "conversation_metadata": {')
    assert piece.endswith(b"\n    }")
    assert json_conversation(entry, first=False) == b"," + piece
    assert JSON_FOOTER == b"\n  ]\n}\n"


def test_header_rejects_duplicate_distribution_keys() -> None:
    entries = [_entry(ID_A, _pairs(2))]
    twice = Distribution(personas=(("a", 1), ("a", 2)), emotional_arcs=(), training_topics=())
    with pytest.raises(ValueError, match="personas"):
        json_header(_header(entries, distribution=twice))


def test_non_finite_numbers_are_refused() -> None:
    entry = _entry(ID_A, [_pair(1, answer="x", training_metadata={"quality_score": math.nan})])
    with pytest.raises(ValueError):
        json_conversation(entry, first=True)
    with pytest.raises(ValueError):
        jsonl_lines(entry)


# --------------------------------------------------------------------------- JSONL


def test_jsonl_lines_ids_order_and_count() -> None:
    entries = _three()
    header = _header(entries)
    jsonl = _jsonl(header, entries)
    assert jsonl.endswith(b"\n")
    lines = jsonl.decode("utf-8").split("\n")[:-1]
    parsed = [json.loads(line) for line in lines]
    assert parsed[0] == {
        "_meta": {
            "file_name": header.file_name,
            "total_pairs": 7,  # 2 + 2 + 3 consultant turns
            "version": "4.0.0",
            "format_spec": "brightrun-lora-v4",
        }
    }
    assert len(lines) == parsed[0]["_meta"]["total_pairs"] + 1
    assert header.total_training_pairs == 16
    assert all(list(line) == PAIR_LINE_KEYS for line in parsed[1:])
    assert [line["id"] for line in parsed[1:3]] == [
        "complexity_management_turn2_264a66d3",
        "complexity_management_turn4_264a66d3",
    ]
    assert [line["conversation_id"] for line in parsed[1:]] == [str(ID_A)] * 2 + [str(ID_B)] * 2 + [
        str(ID_C)
    ] * 3
    assert [line["turn_number"] for line in parsed[1:]] == [2, 4, 2, 4, 2, 4, 6]
    source = entries[0].training_pairs[1]
    assert {k: parsed[1][k] for k in PAIR_LINE_KEYS[3:]} == {
        k: source[k] for k in PAIR_LINE_KEYS[3:]
    }
    # Compact separators, one object per line.
    assert lines[1].startswith('{"id":"complexity_management_turn2_264a66d3","conversation_id":')


def test_jsonl_missing_keys_and_ids() -> None:
    no_id = _pair(2, answer="Yes → go")
    del no_id["id"], no_id["emotional_context"], no_id["training_metadata"]
    no_target = _pair(3, answer=None)
    del no_target["target_response"]
    entry = _entry(ID_C, [_pair(1, answer=None), no_id, no_target, _pair(4, answer="")])
    lines = [json.loads(line) for line in jsonl_lines(entry).decode("utf-8").splitlines()]
    assert [line["id"] for line in lines] == [
        "turn2_6ab32d68",
        "complexity_management_turn4_6ab32d68",
    ]
    assert lines[0]["emotional_context"] is None
    assert lines[0]["training_metadata"] is None
    assert list(lines[0]) == PAIR_LINE_KEYS
    assert lines[1]["target_response"] == ""  # empty is not null: still trainable


def test_jsonl_lines_empty_when_nothing_trainable() -> None:
    assert jsonl_lines(_entry(ID_A, [_pair(1, answer=None)])) == b""


def test_jsonl_append_equals_fresh_build() -> None:
    first, added = _three()[:2], _three()[2:]
    old_header = _header(first)
    old = _jsonl(old_header, first)
    assert old == _reference_jsonl(old_header.file_name, first)
    old_body = old[len(jsonl_header(old_header)) :]
    assert old_body == _reference_jsonl(old_header.file_name, first).split(b"\n", 1)[1]

    new_header = _header([*first, *added])
    appended = jsonl_header(new_header) + old_body + b"".join(jsonl_lines(e) for e in added)
    assert appended == _reference_jsonl(new_header.file_name, [*first, *added])
    assert json.loads(appended.split(b"\n", 1)[0])["_meta"]["total_pairs"] == 7


# --------------------------------------------------------------------------- text and numbers


def test_unicode_is_written_unescaped() -> None:
    entries = _three()
    header = _header(entries)
    for rendered in (_json(header, entries), _jsonl(header, entries)):
        text = rendered.decode("utf-8")
        assert "→" in text
        assert "é" in text
        assert "\\u" not in text


def test_format_timestamp() -> None:
    assert format_timestamp(MOMENT) == "2025-12-04T21:03:08.773Z"
    assert format_timestamp(datetime(2025, 12, 4, 21, 3, 8, tzinfo=UTC)) == (
        "2025-12-04T21:03:08.000Z"
    )
    paris = timezone(timedelta(hours=1))
    assert format_timestamp(datetime(2026, 1, 1, 0, 30, 0, 999999, tzinfo=paris)) == (
        "2025-12-31T23:30:00.999Z"
    )
    with pytest.raises(ValueError):
        format_timestamp(datetime(2025, 12, 4, 21, 3, 8))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal(3), "3"),
        (Decimal("3.00"), "3"),
        (Decimal("3.25"), "3.25"),
        (Decimal("3.10"), "3.1"),
        (Decimal("4.99"), "4.99"),
        (Decimal("1"), "1"),
    ],
)
def test_quality_numbers(value: Decimal, text: str) -> None:
    entries = [_entry(ID_A, _pairs(2))]
    quality = QualitySummary(value, value, value, 0, Decimal("33.33"))
    rendered = _json(_header(entries, quality=quality), entries).decode("utf-8")
    assert f'"avg_quality_score": {text},\n' in rendered
    assert f'"max_quality_score": {text},\n' in rendered
    assert '"human_reviewed_percentage": 33.33\n' in rendered


def test_quality_absent_is_null_and_percentage_integral() -> None:
    entries = [_entry(ID_A, _pairs(2))]
    quality = QualitySummary(None, None, None, 0, Decimal("0.00"))
    header = _header(entries, quality=quality)
    rendered = _json(header, entries)
    summary = json.loads(rendered)["training_file_metadata"]["quality_summary"]
    assert summary == {
        "avg_quality_score": None,
        "min_quality_score": None,
        "max_quality_score": None,
        "human_reviewed_count": 0,
        "human_reviewed_percentage": 0,
    }
    assert rendered == _dumped(_document(header, entries))
    full, _, _ = _validators(_schema())
    assert _errors(full, json.loads(rendered)) == []


def test_quality_tier() -> None:
    assert quality_tier(None) == "experimental"
    assert quality_tier(Decimal("4.5")) == "seed_dataset"
    assert quality_tier(Decimal("4.49")) == "production"
    assert quality_tier(Decimal("3.5")) == "production"
    assert quality_tier(Decimal("2.5")) == "experimental"
    assert quality_tier(Decimal("2.49")) == "rejected"


# --------------------------------------------------------------------------- schema


def test_schema_accepts_our_output_and_rejects_structure_errors() -> None:
    full, meta, line = _validators(_schema())
    entries = _three()
    header = _header(entries)
    document = json.loads(_json(header, entries))
    assert _errors(full, document) == []
    _check_jsonl(_jsonl(header, entries), meta, line)

    def broken(path: Sequence[str | int], value: Any) -> Any:
        copy = json.loads(json.dumps(document))
        target = copy
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return copy

    tfm = "training_file_metadata"
    assert _errors(full, broken([tfm, "format_spec"], "brightrun-lora-v3"))
    assert _errors(full, broken([tfm, "version"], "4.0"))
    assert _errors(full, broken([tfm, "total_training_pairs"], "16"))
    assert _errors(full, broken([tfm, "created_date"], "yesterday"))
    assert _errors(full, broken([tfm, "unexpected"], 1))
    assert _errors(full, broken([tfm, "scaffolding_distribution", "personas", ""], 1))
    metadata = ["conversations", 0, "conversation_metadata"]
    assert _errors(full, broken([*metadata, "conversation_id"], "not-a-uuid"))
    assert _errors(full, broken([*metadata, "created_date"], "2025-13-45"))
    assert _errors(full, broken([*metadata, "quality_tier"], "gold"))
    assert _errors(full, broken(["conversations", 0, "training_pairs"], []))
    pair = ["conversations", 0, "training_pairs", 0]
    assert _errors(full, broken([*pair, "turn_number"], "1"))
    assert _errors(full, broken([*pair, "training_metadata", "quality_score"], 7))
    # Drift the import accepts: extra keys in pairs, phases and arcs outside the old enums.
    assert not _errors(full, broken([*pair, "extra"], {"anything": True}))
    assert not _errors(
        full, broken([*pair, "conversation_metadata", "emotional_arc_key"], "couple_conflict")
    )


def _example_pair_line_keys() -> list[str]:
    text = (SHARED_DIR / "training-file-example.jsonl").read_text(encoding="utf-8")
    return list(json.loads(text.splitlines()[1]))


def _require_shared() -> None:
    if not EXAMPLES_DIR.is_dir():
        pytest.skip(f"reference data not found: {EXAMPLES_DIR} (the shared brightrun-v4 folder)")


def _real_file() -> tuple[FileHeader, list[ConversationEntry]]:
    """Entries and header for the seven real enriched files, computed from the files by the
    product's rules (tests/product_rules.py), not by the code under test."""
    _require_shared()
    paths = sorted(EXAMPLES_DIR.glob("*.json"))
    assert len(paths) == 7
    documents = [json.loads(path.read_bytes()) for path in paths]
    entries = []
    for document in documents:
        metadata = document["dataset_metadata"]
        entries.append(
            ConversationEntry(
                conversation_id=UUID(metadata["dataset_name"].removeprefix("fp_conversation_")),
                created_date=date.fromisoformat(metadata["created_date"]),
                total_turns=len(document["training_pairs"]),
                quality_tier=rules.tier(rules.conversation_score(document)),
                scaffolding=ScaffoldingEntry(**rules.scaffolding(document)),
                training_pairs=document["training_pairs"],
            )
        )
    quality = rules.quality(documents)
    distribution = rules.file_distribution(documents)
    header = FileHeader(
        file_name="seven real conversations",
        created_date=MOMENT,
        last_updated=MOMENT,
        target_model=None,
        vertical="financial_planning_consultant",
        total_conversations=len(entries),
        total_training_pairs=sum(len(d["training_pairs"]) for d in documents),
        trainable_pairs=sum(rules.trainable(d) for d in documents),
        quality=QualitySummary(
            avg_quality_score=quality.average,
            min_quality_score=quality.minimum,
            max_quality_score=quality.maximum,
            human_reviewed_count=quality.reviewed,
            human_reviewed_percentage=quality.reviewed_percentage,
        ),
        distribution=Distribution(*(tuple(distribution[kind].items()) for kind in rules.KINDS)),
        consultant_profile=next(d["consultant_profile"] for d in documents),
    )
    return header, entries


def test_real_files_render_and_validate() -> None:
    header, entries = _real_file()
    full, meta, line = _validators(_schema())
    rendered = _json(header, entries)
    assert rendered == _dumped(_document(header, entries))
    document = json.loads(rendered)
    assert _errors(full, document) == []
    metadata = document["training_file_metadata"]
    assert metadata["total_conversations"] == 7
    assert metadata["total_training_pairs"] == 49
    assert metadata["quality_summary"] == {
        "avg_quality_score": 3,
        "min_quality_score": 3,
        "max_quality_score": 3,
        "human_reviewed_count": 0,
        "human_reviewed_percentage": 0,
    }
    # The three old-style files name their archetype in client_persona: all seven count.
    assert metadata["scaffolding_distribution"] == {
        "personas": {"pragmatic_optimist": 3, "anxious_planner": 3, "overwhelmed_avoider": 1},
        "emotional_arcs": {"fear_to_confidence": 2, "couple_conflict_to_alignment": 2},
        "training_topics": {"eldercare_costs": 4},
    }
    tiers = [c["conversation_metadata"]["quality_tier"] for c in document["conversations"]]
    assert tiers == ["experimental"] * 7

    parsed = _check_jsonl(_jsonl(header, entries), meta, line)
    assert parsed[0]["_meta"]["total_pairs"] == header.trainable_pairs == len(parsed) - 1
    assert list(parsed[1]) == _example_pair_line_keys() == PAIR_LINE_KEYS
    ids = [item["id"] for item in parsed[1:]]
    assert len(set(ids)) == len(ids)
    first_id = str(entries[0].conversation_id)
    assert parsed[1]["id"] == f"{entries[0].training_pairs[1]['id']}_{first_id[:8]}"
    assert parsed[1]["conversation_id"] == first_id


def test_reproduces_the_shared_example_file() -> None:
    """Rendering the example's own content gives its bytes (plus our final newline)."""
    _require_shared()
    raw = (SHARED_DIR / "training-file-example.json").read_bytes()
    example = json.loads(raw)
    meta = example["training_file_metadata"]
    quality = meta["quality_summary"]
    dist = meta["scaffolding_distribution"]
    entries = []
    for conversation in example["conversations"]:
        cm = conversation["conversation_metadata"]
        entries.append(
            ConversationEntry(
                conversation_id=UUID(cm["conversation_id"]),
                created_date=date.fromisoformat(cm["created_date"]),
                total_turns=cm["total_turns"],
                quality_tier=cm["quality_tier"],
                scaffolding=ScaffoldingEntry(**cm["scaffolding"]),
                training_pairs=conversation["training_pairs"],
            )
        )
    header = FileHeader(
        file_name=meta["file_name"],
        created_date=datetime.fromisoformat(meta["created_date"].replace("Z", "+00:00")),
        last_updated=datetime.fromisoformat(meta["last_updated"].replace("Z", "+00:00")),
        target_model=meta["target_model"],
        vertical=meta["vertical"],
        total_conversations=meta["total_conversations"],
        total_training_pairs=meta["total_training_pairs"],
        trainable_pairs=_trainable(entries),
        quality=QualitySummary(
            Decimal(str(quality["avg_quality_score"])),
            Decimal(str(quality["min_quality_score"])),
            Decimal(str(quality["max_quality_score"])),
            quality["human_reviewed_count"],
            Decimal(str(quality["human_reviewed_percentage"])),
        ),
        distribution=Distribution(
            tuple(dist["personas"].items()),
            tuple(dist["emotional_arcs"].items()),
            tuple(dist["training_topics"].items()),
        ),
        consultant_profile=example["consultant_profile"],
    )
    assert _json(header, entries) == raw.rstrip(b"\n") + b"\n"
    full, meta_validator, line_validator = _validators(_schema())
    assert _errors(full, example) == []  # drifted conversation_phase is accepted
    _check_jsonl(_jsonl(header, entries), meta_validator, line_validator)
