"""The download route serves a composite object of local storage as the one file it stands for:
whole, by ranges across its segments, with its logical size."""

from __future__ import annotations

import random

import httpx
import pytest

from graphql_api.config import Settings
from graphql_api.storage.base import TRAINING_BUCKET, CopyRange, iter_bytes
from graphql_api.storage.links import LinkSigner
from graphql_api.storage.local import LocalStorage
from graphql_api.storage.local_manifest import MAGIC

KEY = "f/v2/training.jsonl"
SOURCE = random.Random(1).randbytes(2 * 1024 * 1024)
DATA = b"head" + SOURCE + b"tail"


@pytest.fixture
async def url(settings: Settings, storage: LocalStorage) -> str:
    await storage.put(TRAINING_BUCKET, "f/v1/training.jsonl", iter_bytes(SOURCE))
    await storage.compose(
        TRAINING_BUCKET, KEY, [b"head", CopyRange("f/v1/training.jsonl", 0, len(SOURCE)), b"tail"]
    )
    assert (storage.root / TRAINING_BUCKET / KEY).read_bytes().startswith(MAGIC)
    link = LinkSigner(settings.jwt_secret).sign(
        TRAINING_BUCKET,
        KEY,
        filename="v2.jsonl",
        content_type="application/x-ndjson",
        ttl_seconds=600,
        base_url="http://testserver",
    )
    return link.url


async def test_a_composite_downloads_whole(anonymous_client: httpx.AsyncClient, url: str) -> None:
    response = await anonymous_client.get(url)

    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(DATA))
    assert response.content == DATA


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=2-5", 2, 6),  # the header segment into the linked one
        (f"bytes={len(DATA) - 6}-{len(DATA) - 3}", len(DATA) - 6, len(DATA) - 2),
        ("bytes=0-", 0, len(DATA)),
        ("bytes=-3", len(DATA) - 3, len(DATA)),
    ],
)
async def test_a_composite_downloads_by_ranges_across_its_segments(
    anonymous_client: httpx.AsyncClient, url: str, header: str, start: int, end: int
) -> None:
    response = await anonymous_client.get(url, headers={"Range": header})

    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{len(DATA)}"
    assert response.content == DATA[start:end]


async def test_head_of_a_composite_gives_its_size(
    anonymous_client: httpx.AsyncClient, url: str
) -> None:
    response = await anonymous_client.head(url)

    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(DATA))
