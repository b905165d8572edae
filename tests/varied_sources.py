"""Demo conversations changed the ways a curator's filters tell apart: without scaffolding
keys, without human-reviewed pairs, with titles of their own (LIKE wildcards in them). The
changed files are written next to the others and imported like any file; tests compute what
they expect from these documents (tests/product_rules.py), never from the rows."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.storage.base import Storage

from . import product_rules as rules
from .sources import Source, import_sources

Change = Callable[[dict[str, Any]], None]
# kind -> (its key in `input_parameters`, in a pair's `conversation_metadata`)
_KEY_FIELDS = {
    "persona": ("persona_key", "persona_archetype"),
    "emotional_arc": ("emotional_arc_key", "emotional_arc_key"),
    "training_topic": ("training_topic_key", "training_topic_key"),
}
_TEMPLATE = re.compile(r"\s*generated via template:\s*(.*?)\s*", re.I | re.S)


def without_keys(*fields: str) -> Change:
    """No key of these kinds anywhere (`persona`, `emotional_arc`, `training_topic`; all by
    default): neither in `input_parameters` nor in any pair, and no archetype in the client
    persona to derive a persona key from."""
    kinds = fields or tuple(_KEY_FIELDS)

    def change(document: dict[str, Any]) -> None:
        params = document.get("input_parameters") or {}
        for kind in kinds:
            param, in_pair = _KEY_FIELDS[kind]
            params.pop(param, None)
            for pair in document["training_pairs"]:
                (pair.get("conversation_metadata") or {}).pop(in_pair, None)
        if "persona" in kinds:
            for pair in document["training_pairs"]:
                metadata = pair.get("conversation_metadata") or {}
                if isinstance(metadata.get("client_persona"), str):
                    metadata["client_persona"] = metadata["client_persona"].partition(" - ")[0]

    return change


def unreviewed(document: dict[str, Any]) -> None:
    for pair in document["training_pairs"]:
        pair["training_metadata"]["human_reviewed"] = False


def titled(title: str) -> Change:
    def change(document: dict[str, Any]) -> None:
        document["dataset_metadata"]["notes"] = f"Generated via template: {title}"

    return change


def title(document: dict[str, Any]) -> str | None:
    """The title a conversation shows: the template its notes name, else persona - topic."""
    notes = document["dataset_metadata"].get("notes")
    match = _TEMPLATE.fullmatch(notes) if isinstance(notes, str) else None
    if match and match.group(1):
        return match.group(1)
    found = rules.scaffolding(document)
    parts = [p.strip() for p in (found["persona_name"], found["training_topic"]) if p.strip()]
    return " - ".join(parts) or None


def write_varied(
    directory: Path, count: int, seed: int, changes: dict[int, list[Change]]
) -> list[Path]:
    """`count` demo files, file `i` changed by `changes[i]` in place."""
    paths = write_demo_set(directory, count, seed=seed)
    for index, steps in changes.items():
        document = json.loads(paths[index].read_bytes())
        for step in steps:
            step(document)
        paths[index].write_text(json.dumps(document, indent=2, ensure_ascii=False), "utf-8")
    return paths


async def import_varied(
    owner_writers: WriterPool,
    storage: Storage,
    directory: Path,
    count: int,
    seed: int,
    changes: dict[int, list[Change]],
) -> list[Source]:
    paths = write_varied(directory, count, seed, changes)
    return await import_sources(owner_writers, storage, paths)


def keys_of(document: dict[str, Any]) -> tuple[str, str, str]:
    found = rules.scaffolding(document)
    return found["persona_key"], found["emotional_arc_key"], found["training_topic_key"]
