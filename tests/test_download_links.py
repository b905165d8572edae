"""`Storage.download_link` on each backend, end to end: the link downloads the object, without
credentials, as the name and type it was made for; tampered and expired links are refused.

Local links are served by this app's download route, through the real app; S3 links are
presigned and served by the store: `rclone serve s3`, because moto does not check signatures.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from graphql_api.app import create_app
from graphql_api.config import Settings
from graphql_api.runtime import Pools
from graphql_api.services import Services
from graphql_api.storage.base import TRAINING_BUCKET, DownloadLink, InvalidKey, Storage, iter_bytes
from graphql_api.storage.links import InvalidDownloadLink, LinkSigner, content_disposition
from graphql_api.storage.local import LocalStorage
from graphql_api.storage.s3 import S3Storage

APP_URL = "http://testserver"
KEY = "user-1/v3.jsonl"
DATA = b'{"a": 1}\n{"b": 2}\n'
OTHER_KEY = "user-2/v3.jsonl"
OTHER_DATA = b'{"someone": "else"}\n'
FILENAME = "Résumé training v3.jsonl"
NDJSON = "application/x-ndjson"

Fetch = Callable[[str], Awaitable[httpx.Response]]


@pytest.fixture(params=["local", "rclone"])
async def backend(
    request: pytest.FixtureRequest, settings: Settings, tmp_path: Path
) -> AsyncIterator[Storage]:
    """Each backend as `runtime.open_storage` builds it, holding `KEY` and `OTHER_KEY`."""
    storage: Storage
    if request.param == "rclone":
        storage = await S3Storage.open(request.getfixturevalue("rclone_server").config())
    else:
        storage = LocalStorage(tmp_path / "storage", link_signer=LinkSigner(settings.jwt_secret))
    try:
        await storage.put(TRAINING_BUCKET, KEY, iter_bytes(DATA))
        await storage.put(TRAINING_BUCKET, OTHER_KEY, iter_bytes(OTHER_DATA))
        yield storage
    finally:
        await storage.close()


@pytest.fixture
async def fetch(settings: Settings, pools: Pools, backend: Storage) -> AsyncIterator[Fetch]:
    """GET a link as a browser does, without credentials: links to this app through the app
    (over its ASGI interface), others over the network."""
    app = create_app(settings, Services.of(settings, pools, backend))
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=APP_URL) as to_app,
        httpx.AsyncClient(trust_env=False, timeout=10) as to_store,
    ):

        async def get(url: str) -> httpx.Response:
            return await (to_app if url.startswith(f"{APP_URL}/") else to_store).get(url)

        yield get


async def link_to(storage: Storage, key: str = KEY, *, ttl_seconds: int = 600) -> DownloadLink:
    return await storage.download_link(
        TRAINING_BUCKET,
        key,
        filename=FILENAME,
        content_type=NDJSON,
        ttl_seconds=ttl_seconds,
        base_url=APP_URL,
    )


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode({**dict(parse_qsl(parts.query)), **changes})))


def assert_refused(response: httpx.Response, backend: Storage) -> None:
    assert response.status_code in (400, 403), response.text
    assert "content-disposition" not in response.headers
    assert OTHER_DATA not in response.content and DATA not in response.content
    if isinstance(backend, LocalStorage):  # this app's route: its error body
        assert response.status_code == 403
        [problem] = response.json()["details"]
        assert problem["code"] == "FORBIDDEN"


async def test_a_link_downloads_the_object_as_named(backend: Storage, fetch: Fetch) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    link = await link_to(backend)

    assert (link.filename, link.expires_in_seconds) == (FILENAME, 600)
    assert before + timedelta(seconds=600) <= link.expires_at
    assert link.expires_at <= datetime.now(UTC) + timedelta(seconds=600)
    response = await fetch(link.url)
    assert response.status_code == 200, response.text
    assert response.content == DATA
    assert response.headers["content-type"] == NDJSON
    assert response.headers["content-disposition"] == content_disposition(FILENAME)
    assert (
        "filename*=UTF-8''R%C3%A9sum%C3%A9%20training%20v3.jsonl"
        in (response.headers["content-disposition"])
    )


@pytest.mark.parametrize("backend", ["local"], indirect=True)
async def test_local_links_point_at_this_app(backend: Storage) -> None:
    url = urlsplit((await link_to(backend)).url)
    assert f"{url.scheme}://{url.netloc}" == APP_URL
    assert url.path == f"/downloads/{TRAINING_BUCKET}/{KEY}"


@pytest.mark.parametrize("backend", ["rclone"], indirect=True)
async def test_s3_links_point_at_the_store(backend: Storage) -> None:
    assert isinstance(backend, S3Storage)
    assert (await link_to(backend)).url.startswith(f"{backend.config.endpoint_url}/")


async def test_a_tampered_link_is_refused(backend: Storage, fetch: Fetch) -> None:
    link = await link_to(backend)
    parameter = "signature" if isinstance(backend, LocalStorage) else "X-Amz-Signature"
    signature = dict(parse_qsl(urlsplit(link.url).query))[parameter]
    forged = signature[:-1] + ("1" if signature[-1] == "0" else "0")

    for tampered in (
        link.url.replace(KEY, OTHER_KEY),  # someone else's object, same signature
        with_query(link.url, **{parameter: forged}),
        link.url.split("?")[0],  # no signature at all
    ):
        assert_refused(await fetch(tampered), backend)


async def test_an_expired_link_is_refused(backend: Storage, fetch: Fetch) -> None:
    link = await link_to(backend, ttl_seconds=1)
    await asyncio.sleep((link.expires_at - datetime.now(UTC)).total_seconds() + 1.1)

    assert_refused(await fetch(link.url), backend)


async def test_bad_link_requests_are_refused_before_signing(backend: Storage) -> None:
    with pytest.raises(InvalidKey):
        await link_to(backend, "../outside.jsonl")
    with pytest.raises(InvalidKey):
        await backend.download_link(
            "elsewhere", KEY, filename="x", content_type=NDJSON, ttl_seconds=60, base_url=APP_URL
        )
    with pytest.raises(ValueError):
        await link_to(backend, ttl_seconds=0)
    with pytest.raises(ValueError):
        await backend.download_link(
            TRAINING_BUCKET, KEY, filename="", content_type=NDJSON, ttl_seconds=60, base_url=""
        )


async def test_local_storage_without_a_signer_hands_out_no_links(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="without a link signer"):
        await link_to(LocalStorage(tmp_path / "storage"))


def test_links_verify_only_with_the_key_they_were_signed_with() -> None:
    link = LinkSigner("a" * 40).sign(
        TRAINING_BUCKET, KEY, filename="f.jsonl", content_type=NDJSON, ttl_seconds=60, base_url=""
    )
    query = dict(parse_qsl(urlsplit(link.url).query))
    parts = {
        "filename": query["filename"],
        "content_type": query["type"],
        "expires": query["expires"],
        "signature": query["signature"],
    }
    LinkSigner("a" * 40).verify(TRAINING_BUCKET, KEY, **parts)
    with pytest.raises(InvalidDownloadLink, match="signature is invalid"):
        LinkSigner("b" * 40).verify(TRAINING_BUCKET, KEY, **parts)
    assert "a" * 40 not in repr(LinkSigner("a" * 40))
