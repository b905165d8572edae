"""The trainer exports, OPENAI_CHAT and HF_DATASET: what their lines hold (computed here from
the source files, by simpler code than the exporter's), that they follow OpenAI's chat
fine-tuning rules, that Hugging Face `datasets` loads them with one schema, that odd text
survives, and that versions built before them are NOT_READY until their next add."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import datasets
import httpx
import pytest

from graphql_api.aggregation.chat import messages
from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.services import Services
from graphql_api.storage.base import TRAINING_BUCKET, Storage, read_all

from . import conversation_documents as docs
from . import product_rules as rules
from .conftest import USER, require_examples
from .sources import Source, ids_of, import_demo, import_sources
from .training_file_graphql import DOWNLOAD, add, create, gql

STORAGE_BACKENDS = ("local", "s3")
API = "/api/training-files"

# Every HF_DATASET record has these keys, in this order.
HF_KEYS = [
    "id",
    "conversation_id",
    "pair_id",
    "turn_number",
    "persona_key",
    "persona_name",
    "emotional_arc_key",
    "emotional_arc",
    "training_topic_key",
    "training_topic",
    "quality_score",
    "quality_tier",
    "human_reviewed",
    "system_prompt",
    "current_user_input",
    "target_response",
    "primary_emotion",
    "primary_confidence",
    "secondary_emotion",
    "secondary_confidence",
    "emotional_intensity",
    "emotional_valence",
    "messages",
]
SIZES = "query($id: ID!) { node(id: $id) { ... on TrainingFile { openaiChatFileSize hfDatasetFileSize } } }"


# -- expected values, from the source files ---------------------------------------------------


def trainable(sources: Sequence[Source]) -> list[tuple[UUID, dict[str, Any]]]:
    return [
        (s.id, p) for s in sources for p in s.document["training_pairs"] if p["target_response"]
    ]


def expected_messages(pair: dict[str, Any]) -> list[dict[str, str]]:
    """The sources' histories are user/assistant turns ending with the current user input."""
    history = pair["conversation_history"]
    assert history[-1] == {**history[-1], "role": "user", "content": pair["current_user_input"]}
    system = [{"role": "system", "content": pair["system_prompt"]}] if pair["system_prompt"] else []
    turns = [{"role": h["role"], "content": h["content"]} for h in history]
    return [*system, *turns, {"role": "assistant", "content": pair["target_response"]}]


def openai_rule_breaks(line: dict[str, Any]) -> list[str]:
    """What breaks OpenAI's chat fine-tuning format in one line (empty: nothing)."""
    problems = []
    if list(line) != ["messages"]:
        problems.append(f"top-level keys {list(line)}")
    chat = line.get("messages")
    if not isinstance(chat, list) or not chat:
        return [*problems, "no messages"]
    roles = [m.get("role") for m in chat]
    for m in chat:
        if set(m) != {"role", "content"} or m["role"] not in {"system", "user", "assistant"}:
            problems.append(f"message {m}")
        elif not isinstance(m["content"], str) or not m["content"].strip():
            problems.append(f"empty content in {m}")
    if "system" in roles[1:]:
        problems.append("a system message after the first")
    turns = roles[1:] if roles[0] == "system" else roles
    if turns[::2] != ["user"] * len(turns[::2]) or turns[1::2] != ["assistant"] * len(turns[1::2]):
        problems.append(f"roles do not alternate from the user: {roles}")
    if roles[-1] != "assistant":
        problems.append("the last message is not the assistant's")
    return problems


def parse_lines(raw: bytes) -> list[dict[str, Any]]:
    assert raw.endswith(b"\n")
    return [json.loads(line) for line in raw.decode().split("\n")[:-1]]


def load(path: Path, cache: Path) -> datasets.Dataset:
    loaded = datasets.load_dataset("json", data_files=str(path), cache_dir=str(cache))
    assert isinstance(loaded, datasets.DatasetDict)
    return loaded["train"]


async def follow(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """A download link: the app's own route (local storage) or the store's (S3 presigned)."""
    if url.startswith("http://127.0.0.1"):
        async with httpx.AsyncClient() as browser:  # no credentials: the signature is the grant
            return await browser.get(url)
    return await client.get(url, headers={"Authorization": ""})


async def fetch(client: httpx.AsyncClient, file_id: str, file_format: str) -> bytes:
    """The object through downloadUrl, checking its name and type."""
    body = await gql(client, DOWNLOAD, id=file_id, format=file_format)
    payload = body["data"]["downloadUrl"]
    assert payload["userErrors"] == [], payload
    suffix = {"OPENAI_CHAT": ".openai.jsonl", "HF_DATASET": ".hf.jsonl"}[file_format]
    assert payload["filename"].endswith(suffix)
    response = await follow(client, payload["url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    return response.content


# -- chat messages of one pair ----------------------------------------------------------------


def test_history_ending_with_the_current_turn_is_not_repeated() -> None:
    pair = docs.pair(3)
    assert messages(pair) == [
        {"role": "system", "content": pair["system_prompt"]},
        {"role": "user", "content": "message 1"},
        {"role": "assistant", "content": "message 2"},
        {"role": "user", "content": "question 3"},
        {"role": "assistant", "content": "answer 3"},
    ]
    pair["conversation_history"].append({"role": "user", "content": "question 3"})
    assert messages(pair) == [
        {"role": "system", "content": pair["system_prompt"]},
        {"role": "user", "content": "message 1"},
        {"role": "assistant", "content": "message 2"},
        {"role": "user", "content": "question 3"},
        {"role": "assistant", "content": "answer 3"},
    ]


def test_old_role_names_blank_texts_and_a_missing_system_prompt() -> None:
    pair = {
        "system_prompt": "  ",
        "conversation_history": [
            {"role": "consultant", "content": "Welcome."},  # before any user: left out
            {"role": "Client", "content": "Hi"},
            {"role": "client", "content": "I worry."},  # same speaker: joined
            {"role": "consultant", "content": ""},  # blank: left out
            {"role": "system", "content": "internal"},  # not a turn
            {"role": "consultant", "content": "Tell me more."},
        ],
        "current_user_input": "About money.",
        "target_response": "Let us look.",
    }
    assert messages(pair) == [
        {"role": "user", "content": "Hi\n\nI worry."},
        {"role": "assistant", "content": "Tell me more."},
        {"role": "user", "content": "About money."},
        {"role": "assistant", "content": "Let us look."},
    ]
    assert messages({**pair, "target_response": " "}) is None
    assert messages({**pair, "conversation_history": [], "current_user_input": ""}) is None


# -- a file's exports over HTTP ---------------------------------------------------------------


@pytest.fixture
async def sources(
    db: Database, owner_writers: WriterPool, storage: Storage, tmp_path: Path
) -> list[Source]:
    return await import_demo(owner_writers, storage, tmp_path / "demo", 12, seed=31)


async def test_exports_hold_one_chat_example_per_trainable_pair(
    client: httpx.AsyncClient, sources: list[Source], tmp_path: Path
) -> None:
    created = await create(client, "exported", ids_of(sources))
    openai_raw = await fetch(client, created["id"], "OPENAI_CHAT")
    hf_raw = await fetch(client, created["id"], "HF_DATASET")
    pairs = trainable(sources)

    openai = parse_lines(openai_raw)
    assert [openai_rule_breaks(line) for line in openai] == [[]] * len(pairs)
    assert openai == [{"messages": expected_messages(p)} for _, p in pairs]

    hf = parse_lines(hf_raw)
    assert [list(record) for record in hf] == [HF_KEYS] * len(pairs)
    documents = {s.id: s.document for s in sources}
    for record, (conversation_id, pair) in zip(hf, pairs, strict=True):
        emotions = pair["emotional_context"]["detected_emotions"]
        training = pair["training_metadata"]
        # The JSONL line's id: the pair's, then the conversation's first 8 characters.
        assert record["id"] == f"{pair['id']}_{str(conversation_id)[:8]}"
        assert record["conversation_id"] == str(conversation_id)
        assert (record["pair_id"], record["turn_number"]) == (pair["id"], pair["turn_number"])
        scaffolding = rules.scaffolding(documents[conversation_id])
        assert {key: record[key] for key in scaffolding} == scaffolding
        score = training.get("quality_score")
        if score is None:  # the conversation's score stands in
            score = rules.conversation_score(documents[conversation_id])
        assert record["quality_score"] == (None if score is None else float(score))
        assert record["human_reviewed"] is (training.get("human_reviewed") is True)
        for key in ("system_prompt", "current_user_input", "target_response"):
            assert record[key] == pair[key]
        assert record["primary_emotion"] == emotions["primary"]
        assert record["emotional_intensity"] == emotions["intensity"]
        assert record["messages"] == expected_messages(pair)

    sizes = (await gql(client, SIZES, id=created["id"]))["data"]["node"]
    assert sizes == {"openaiChatFileSize": len(openai_raw), "hfDatasetFileSize": len(hf_raw)}

    # The REST route names the same objects.
    exports = (("openai_chat", ".openai.jsonl", openai_raw), ("hf_dataset", ".hf.jsonl", hf_raw))
    for value, suffix, raw in exports:
        response = await client.get(f"{API}/{created['id']}/download", params={"format": value})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["filename"] == f"exported{suffix}"
        assert (await follow(client, body["download_url"])).content == raw
    refused = await client.get(f"{API}/{created['id']}/download", params={"format": "openai"})
    assert refused.status_code == 400 and "'openai_chat'" in refused.json()["error"]

    # Hugging Face datasets loads both as they are: every pair a row, one schema.
    (tmp_path / "openai.jsonl").write_bytes(openai_raw)
    (tmp_path / "hf.jsonl").write_bytes(hf_raw)
    chat = load(tmp_path / "openai.jsonl", tmp_path / "cache")
    assert chat.num_rows == len(pairs) and chat.column_names == ["messages"]
    table = load(tmp_path / "hf.jsonl", tmp_path / "cache")
    assert table.num_rows == len(pairs) and table.column_names == HF_KEYS
    types = {name: str(feature) for name, feature in table.features.items()}
    assert types["quality_score"] == types["emotional_intensity"] == str(datasets.Value("float64"))
    assert types["turn_number"] == str(datasets.Value("int64"))
    assert types["human_reviewed"] == str(datasets.Value("bool"))
    assert table[0]["messages"] == expected_messages(pairs[0][1])


async def test_a_version_from_before_the_exports_is_not_ready_until_its_next_add(
    client: httpx.AsyncClient, db: Database, sources: list[Source]
) -> None:
    old = await create(client, "old", ids_of(sources[:5]))
    async with db.session() as conn:  # as a version built before the exports existed
        await conn.execute(
            "UPDATE training_files SET openai_chat_file_path = NULL, openai_chat_file_size = NULL,"
            " hf_dataset_file_path = NULL, hf_dataset_file_size = NULL WHERE id = $1",
            UUID(old["id"]),
        )
    for file_format in ("OPENAI_CHAT", "HF_DATASET"):
        body = await gql(client, DOWNLOAD, id=old["id"], format=file_format)
        payload = body["data"]["downloadUrl"]
        assert payload["url"] is None
        [error] = payload["userErrors"]
        assert error["code"] == "NOT_READY" and "add conversations" in error["message"]
    response = await client.get(f"{API}/{old['id']}/download", params={"format": "hf_dataset"})
    assert response.status_code == 400, response.text  # as REST answers any NOT_READY
    assert [d["code"] for d in response.json()["details"]] == ["NOT_READY"]

    # The next add writes all four; the exports are those of a file made at once.
    await add(client, old["id"], ids_of(sources[5:]))
    at_once = await create(client, "at-once", ids_of(sources))
    for file_format in ("OPENAI_CHAT", "HF_DATASET"):
        added = await fetch(client, old["id"], file_format)
        assert added == await fetch(client, at_once["id"], file_format)


# -- text that breaks naive readers, and the real files ---------------------------------------


async def test_line_separators_emoji_and_a_large_response_survive_every_format(
    db: Database, owner_writers: WriterPool, storage: Storage, tmp_path: Path, services: Services
) -> None:
    document = docs.document(3)
    large = ("Breathe\u2028then plan 🌱; ✨ " * 8000)[:200_000]
    second, third = document["training_pairs"][1], document["training_pairs"][2]
    second["current_user_input"] = "paragraph\u2029line\u2028end 😟"
    second["conversation_history"] = [
        {"turn": 1, "role": "user", "content": "history\u2028turn"},
        {"turn": 2, "role": "assistant", "content": "a reply 🌱\u2029"},
    ]
    third["target_response"] = large
    for item in (second, third):  # as the real files: the history ends with the current turn
        turn = {"turn": item["turn_number"], "role": "user", "content": item["current_user_input"]}
        item["conversation_history"].append(turn)
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    [source] = await import_sources(owner_writers, storage, [path])

    record = await services.training_files.create_training_file(USER, "odd", None, [source.id])
    objects = {
        key: await read_all(storage, TRAINING_BUCKET, key or "")
        for key in (
            record.json_file_path,
            record.jsonl_file_path,
            record.openai_chat_file_path,
            record.hf_dataset_file_path,
        )
    }
    full, jsonl, openai, hf = objects.values()
    assert json.loads(full)["conversations"][0]["training_pairs"] == document["training_pairs"]
    for raw in (jsonl, openai, hf):
        # Escaped, so that str.splitlines() and old JavaScript see one record per line.
        assert "\u2028".encode() not in raw and "\u2029".encode() not in raw
        assert len(raw.decode().splitlines()) == raw.count(b"\n")
    jsonl_lines = [json.loads(line) for line in jsonl.decode().splitlines()[1:]]
    assert [line["target_response"] for line in jsonl_lines] == ["answer 2", large]
    assert jsonl_lines[0]["current_user_input"] == second["current_user_input"]
    openai_lines = [json.loads(line) for line in openai.decode().splitlines()]
    assert [line["messages"] for line in openai_lines] == [
        expected_messages(second),
        expected_messages(third),
    ]
    hf_lines = [json.loads(line) for line in hf.decode().splitlines()]
    assert [r["target_response"] for r in hf_lines] == ["answer 2", large]
    assert hf_lines[0]["current_user_input"] == second["current_user_input"]


async def test_the_real_files_make_valid_exports_that_load_with_one_schema(
    client: httpx.AsyncClient, owner_writers: WriterPool, storage: Storage, tmp_path: Path
) -> None:
    paths = require_examples()
    importer = ConversationImporter(owner_writers, storage)
    ids = [(await importer.import_file(p)).conversation_id for p in paths]
    documents = [json.loads(p.read_bytes()) for p in paths]
    created = await create(client, "real", [i for i in ids if i is not None])
    pairs = [p for d in documents for p in d["training_pairs"] if p.get("target_response")]

    openai_raw = await fetch(client, created["id"], "OPENAI_CHAT")
    hf_raw = await fetch(client, created["id"], "HF_DATASET")
    openai = parse_lines(openai_raw)
    assert [openai_rule_breaks(line) for line in openai] == [[]] * len(pairs)
    assert [line["messages"] for line in openai] == [expected_messages(p) for p in pairs]
    # v4 and old-style files mixed: the same keys and types on every record.
    hf = parse_lines(hf_raw)
    assert [list(r) for r in hf] == [HF_KEYS] * len(pairs)
    for key in HF_KEYS:
        assert len({type(r[key]) for r in hf if r[key] is not None}) <= 1, key

    (tmp_path / "real.openai.jsonl").write_bytes(openai_raw)
    (tmp_path / "real.hf.jsonl").write_bytes(hf_raw)
    assert load(tmp_path / "real.openai.jsonl", tmp_path / "cache").num_rows == len(pairs)
    table = load(tmp_path / "real.hf.jsonl", tmp_path / "cache")
    assert table.num_rows == len(pairs) and table.column_names == HF_KEYS
