"""Shared by the log and metrics tests: what the server logged (as its JSON lines), what
/metrics said, and a few conversations to build from."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from graphql_api.conversations.importer import ConversationImporter
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.observability.logs import JsonFormatter, RequestFields
from graphql_api.storage.base import Storage

ACCESS_LOG = "graphql_api.access"
SERVER_LOGGERS = ("graphql_api", "strawberry", "uvicorn")

CREATE = """
mutation Create($input: CreateTrainingFileInput!) {
  createTrainingFile(input: $input) { trainingFile { id } userErrors { code message } }
}"""
ADD = """
mutation Add($input: AddConversationsInput!) {
  addConversations(input: $input) { trainingFile { id } userErrors { code message } }
}"""


class JsonLog:
    """The JSON lines the server's handler would write, from every logger at INFO and up."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def access(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["logger"] == ACCESS_LOG]

    def others(self) -> list[dict[str, Any]]:
        """The server's other lines (not the test's HTTP client's)."""
        return [
            line
            for line in self.lines()
            if line["logger"].startswith(SERVER_LOGGERS) and line["logger"] != ACCESS_LOG
        ]


@pytest.fixture
def json_log() -> Iterator[JsonLog]:
    """The production formatter and filter on the root logger, as `configure_logging` sets
    them up (which would also remove pytest's own handlers)."""
    log = JsonLog()
    handler = logging.StreamHandler(log.stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestFields())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield log
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse_metrics(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples that have (at least) `labels`; 0 when there are none."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


async def import_conversations(
    writers: WriterPool, storage: Storage, directory: Path, count: int = 3
) -> list[UUID]:
    importer = ConversationImporter(writers, storage)
    ids = []
    for path in write_demo_set(directory, count, seed=11):
        result = await importer.import_file(path)
        assert result.conversation_id is not None
        ids.append(result.conversation_id)
    return ids
