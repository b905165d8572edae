"""Enriched source files a test imports, kept beside their parsed documents so expected values
can be computed from the files themselves (see `product_rules`), not from the importer's rows."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.storage.base import Storage


@dataclass(frozen=True)
class Source:
    id: UUID
    path: Path
    document: dict[str, Any]


def read_source(path: Path) -> Source:
    """The file and its conversation id, the uuid of `dataset_name` `fp_conversation_<uuid>`."""
    document = json.loads(path.read_bytes())
    dataset_name = document["dataset_metadata"]["dataset_name"]
    return Source(UUID(dataset_name.removeprefix("fp_conversation_")), path, document)


async def import_sources(
    owner_writers: WriterPool, storage: Storage, paths: Iterable[Path]
) -> list[Source]:
    """Import each file; the importer must give it the id its dataset name carries."""
    importer = ConversationImporter(owner_writers, storage)
    sources = []
    for path in paths:
        source = read_source(path)
        result = await importer.import_file(path)
        assert result.conversation_id == source.id, (path, result)
        sources.append(source)
    return sources


async def import_demo(
    owner_writers: WriterPool, storage: Storage, directory: Path, count: int, seed: int
) -> list[Source]:
    return await import_sources(owner_writers, storage, write_demo_set(directory, count, seed=seed))


def ids_of(sources: Sequence[Source]) -> list[UUID]:
    return [s.id for s in sources]


def documents_of(sources: Sequence[Source]) -> list[dict[str, Any]]:
    return [s.document for s in sources]
