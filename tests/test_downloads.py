"""Signed download links: served by the real app over real local storage, refused when
anything is off."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import httpx
import pytest

from graphql_api.config import Settings
from graphql_api.domain.limits import LINK_TTL_SECONDS
from graphql_api.storage.base import (
    CONVERSATION_BUCKET,
    TRAINING_BUCKET,
    DownloadLink,
    InvalidKey,
    iter_bytes,
)
from graphql_api.storage.links import LinkSigner, content_disposition
from graphql_api.storage.local import LocalStorage

from .conftest import JWT_SECRET

SECRET = JWT_SECRET
BASE = "http://testserver"
KEY = "users/8d2f6c1e/files/f1/v1.jsonl"
DATA = b"".join(b'{"messages": [{"role": "user", "content": "%d"}]}\n' % i for i in range(2000))
NDJSON = "application/x-ndjson"


@pytest.fixture
async def client(
    anonymous_client: httpx.AsyncClient, settings: Settings, storage: LocalStorage
) -> httpx.AsyncClient:
    """The real app (`create_app` over the test's settings and services) holding one object;
    no credentials, since a signed link is all a download needs."""
    assert settings.jwt_secret == SECRET
    await storage.put(TRAINING_BUCKET, KEY, iter_bytes(DATA))
    return anonymous_client


def _link(**overrides: Any) -> DownloadLink:
    secret = overrides.pop("secret", SECRET)
    arguments: dict[str, Any] = {
        "base_url": BASE,
        "bucket": TRAINING_BUCKET,
        "key": KEY,
        "filename": "support-bot v1.jsonl",
        "content_type": NDJSON,
        "ttl_seconds": LINK_TTL_SECONDS,
    }
    arguments.update(overrides)
    bucket, key = arguments.pop("bucket"), arguments.pop("key")
    return LinkSigner(secret).sign(bucket, key, **arguments)


def _with_query(url: str, **changes: str | None) -> str:
    """`url` with query parameters replaced (or dropped, for None), keeping the path as is."""
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query, quote_via=quote)}"


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{path}?{parts.query}"


def _expect_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert isinstance(response.json()["error"], str)


# -- signing -----------------------------------------------------------------------------------


def test_link_shape() -> None:
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    link = _link(now=now, base_url=BASE + "/")
    parts = urlsplit(link.url)
    assert f"{parts.scheme}://{parts.netloc}" == BASE
    assert unquote(parts.path) == f"/downloads/{TRAINING_BUCKET}/{KEY}"
    query = parse_qs(parts.query)
    assert query["filename"] == ["support-bot v1.jsonl"]
    assert query["type"] == [NDJSON]
    assert query["expires"] == [str(int(now.timestamp()) + LINK_TTL_SECONDS)]
    assert len(query["signature"][0]) == 64
    assert link.filename == "support-bot v1.jsonl"
    assert link.expires_in_seconds == LINK_TTL_SECONDS
    assert link.expires_at == now + timedelta(seconds=LINK_TTL_SECONDS)


def test_signing_is_deterministic_and_keyed() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert _link(now=now).url == _link(now=now).url
    assert _link(now=now).url != _link(now=now, secret=SECRET + "x").url


def test_signature_does_not_use_the_secret_directly() -> None:
    message = json.dumps(
        ["download-v1", TRAINING_BUCKET, KEY, "a.jsonl", NDJSON, 1], separators=(",", ":")
    ).encode()
    direct = hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()
    assert LinkSigner(SECRET).signature(TRAINING_BUCKET, KEY, "a.jsonl", NDJSON, 1) != direct


def test_signing_refuses_bad_arguments() -> None:
    with pytest.raises(InvalidKey):
        _link(key="../etc/passwd")
    with pytest.raises(InvalidKey):
        _link(bucket="elsewhere")
    with pytest.raises(ValueError):
        _link(content_type="text/html")
    with pytest.raises(ValueError):
        _link(filename="")
    with pytest.raises(ValueError):
        _link(ttl_seconds=0)
    with pytest.raises(ValueError):
        _link(now=datetime(2030, 1, 1))  # naive


# -- serving -----------------------------------------------------------------------------------


async def test_valid_link_streams_the_object(client: httpx.AsyncClient) -> None:
    response = await client.get(_link().url)
    assert response.status_code == 200, response.text
    assert response.content == DATA
    assert response.headers["content-type"] == NDJSON
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["content-disposition"] == 'attachment; filename="support-bot v1.jsonl"'
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "no-store" in response.headers["cache-control"]


async def test_json_content_type(client: httpx.AsyncClient, storage: LocalStorage) -> None:
    await storage.put(TRAINING_BUCKET, "one.json", iter_bytes(b"[]"))
    response = await client.get(
        _link(key="one.json", filename="one.json", content_type="application/json").url
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == b"[]"


async def test_other_bucket(client: httpx.AsyncClient, storage: LocalStorage) -> None:
    await storage.put(CONVERSATION_BUCKET, "c/1.json", iter_bytes(b"{}"))
    link = _link(bucket=CONVERSATION_BUCKET, key="c/1.json", content_type="application/json")
    response = await client.get(link.url)
    assert response.status_code == 200
    assert response.content == b"{}"
    # The same key signed for one bucket does not open the other.
    response = await client.get(link.url.replace(CONVERSATION_BUCKET, TRAINING_BUCKET))
    _expect_error(response, 403)


async def test_empty_object(client: httpx.AsyncClient, storage: LocalStorage) -> None:
    await storage.put(TRAINING_BUCKET, "empty.jsonl", iter_bytes(b""))
    response = await client.get(_link(key="empty.jsonl").url)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "0"


async def test_head(client: httpx.AsyncClient) -> None:
    response = await client.head(_link().url)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["content-type"] == NDJSON
    assert response.headers["content-disposition"].startswith("attachment;")


@pytest.mark.parametrize(
    "change",
    [
        {"signature": "0" * 64},
        {"signature": "not-hex"},
        {"signature": "A" * 64},
        {"filename": "other.jsonl"},
        {"type": "application/json"},
        {"type": "text/html"},
        {"expires": "99999999999"},
        {"expires": "-1"},
        {"expires": "soon"},
        {"filename": None},
        {"type": None},
        {"expires": None},
        {"signature": None},
    ],
)
async def test_tampered_or_incomplete_query_is_forbidden(
    client: httpx.AsyncClient, change: dict[str, str | None]
) -> None:
    response = await client.get(_with_query(_link().url, **change))
    _expect_error(response, 403)


async def test_flipped_signature_character(client: httpx.AsyncClient) -> None:
    url = _link().url
    signature = parse_qs(urlsplit(url).query)["signature"][0]
    flipped = ("1" if signature[0] == "0" else "0") + signature[1:]
    _expect_error(await client.get(_with_query(url, signature=flipped)), 403)


async def test_duplicated_parameter_is_forbidden(client: httpx.AsyncClient) -> None:
    url = _link().url
    _expect_error(await client.get(url + "&filename=evil.html"), 403)


async def test_tampered_key_is_forbidden(client: httpx.AsyncClient, storage: LocalStorage) -> None:
    await storage.put(TRAINING_BUCKET, "users/someone-else/secret.jsonl", iter_bytes(b"secret"))
    url = _link().url
    response = await client.get(
        _with_path(url, f"/downloads/{TRAINING_BUCKET}/users/someone-else/secret.jsonl")
    )
    _expect_error(response, 403)
    assert b"secret" not in response.content


async def test_expired_link_is_forbidden(client: httpx.AsyncClient) -> None:
    link = _link(now=datetime.now(UTC) - timedelta(hours=2))
    assert link.expires_at < datetime.now(UTC)
    response = await client.get(link.url)
    _expect_error(response, 403)
    assert "expired" in response.json()["error"]


async def test_missing_object_is_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get(_link(key="users/nobody/missing.jsonl").url)
    _expect_error(response, 404)
    response = await client.head(_link(key="users/nobody/missing.jsonl").url)
    assert response.status_code == 404


async def test_directory_is_not_found(client: httpx.AsyncClient) -> None:
    _expect_error(await client.get(_link(key="users").url), 404)


@pytest.mark.parametrize(
    "path",
    [
        "/downloads/training-files/..%2F..%2Foutside.txt",
        "/downloads/training-files/%2E%2E/%2E%2E/outside.txt",
        "/downloads/training-files/users/..%2F..%2F..%2Foutside.txt",
        "/downloads/training-files/%2Foutside.txt",
        "/downloads/..%2Foutside.txt/x",
    ],
)
async def test_path_traversal_without_a_signature(
    client: httpx.AsyncClient, storage: LocalStorage, path: str
) -> None:
    (storage.root.parent / "outside.txt").write_text("top secret")
    response = await client.get(_with_path(_link().url, path))
    _expect_error(response, 403)
    assert b"top secret" not in response.content


@pytest.mark.parametrize(
    "key", ["../outside.txt", "../../outside.txt", "/outside.txt", "a/../../outside.txt"]
)
async def test_path_traversal_even_with_a_valid_signature(
    client: httpx.AsyncClient, storage: LocalStorage, key: str
) -> None:
    """A signature made for a bad key (which `LinkSigner.sign` refuses to make) still cannot
    read outside the bucket: the storage's key rules are applied after the signature."""
    (storage.root.parent / "outside.txt").write_text("top secret")
    (storage.root / "outside.txt").write_text("top secret")
    expires = int(datetime.now(UTC).timestamp()) + 60
    signature = LinkSigner(SECRET).signature(TRAINING_BUCKET, key, "x.jsonl", NDJSON, expires)
    query = urlencode(
        {"filename": "x.jsonl", "type": NDJSON, "expires": expires, "signature": signature},
        quote_via=quote,
    )
    path = f"/downloads/{TRAINING_BUCKET}/{quote(key, safe='')}"
    response = await client.get(f"{BASE}{path}?{query}")
    _expect_error(response, 404)
    assert b"top secret" not in response.content


async def test_symlink_in_bucket_is_not_followed(
    client: httpx.AsyncClient, storage: LocalStorage
) -> None:
    outside = storage.root.parent / "outside.txt"
    outside.write_text("top secret")
    (storage.root / TRAINING_BUCKET / "link.jsonl").symlink_to(outside)
    response = await client.get(_link(key="link.jsonl").url)
    _expect_error(response, 404)
    assert b"top secret" not in response.content


async def test_non_ascii_filename(client: httpx.AsyncClient) -> None:
    response = await client.get(_link(filename="Résumé 日本.jsonl").url)
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert disposition == (
        'attachment; filename="Resume __.jsonl"; '
        "filename*=UTF-8''R%C3%A9sum%C3%A9%20%E6%97%A5%E6%9C%AC.jsonl"
    )
    assert response.content == DATA


async def test_hostile_filename_is_sanitized(client: httpx.AsyncClient) -> None:
    response = await client.get(_link(filename='a"b\\c/d\r\nX-Evil: 1.jsonl').url)
    assert response.status_code == 200
    assert "x-evil" not in response.headers
    assert response.headers["content-disposition"] == (
        'attachment; filename="a_b_c_d__X-Evil: 1.jsonl"'
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("plain.jsonl", 'attachment; filename="plain.jsonl"'),
        ("../../etc/passwd", 'attachment; filename="_.._etc_passwd"'),
        (".hidden", 'attachment; filename="hidden"'),
        ("日本", "attachment; filename=\"__\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC"),
        ("   ", 'attachment; filename="download"'),
    ],
)
def test_content_disposition(name: str, expected: str) -> None:
    assert content_disposition(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # U+202E would show "invoice\u202eslx.jsonl" as "invoicelnosj.xls": an extension spoof.
        (
            "invoice\u202eslx.jsonl",
            'attachment; filename="invoiceslx.jsonl"',
        ),
        (
            "Résumé\u202e\u2066.jsonl",
            "attachment; filename=\"Resume.jsonl\"; filename*=UTF-8''R%C3%A9sum%C3%A9.jsonl",
        ),
        # Zero-width space and joiner, BOM, soft hyphen, line and paragraph separators.
        (
            "a\u200bb\u200dc\ufeffd\u00ade\u2028f\u2029g.json",
            'attachment; filename="abcdefg.json"',
        ),
        ("\u202e\u2028", 'attachment; filename="download"'),
    ],
)
def test_invisible_and_bidi_characters_are_dropped(name: str, expected: str) -> None:
    assert content_disposition(name) == expected


async def test_a_bidi_override_never_reaches_the_header(client: httpx.AsyncClient) -> None:
    response = await client.get(_link(filename="日本\u202elnosj.exe.jsonl").url)
    assert response.status_code == 200
    assert response.headers["content-disposition"] == (
        'attachment; filename="__lnosj.exe.jsonl"; '
        "filename*=UTF-8''%E6%97%A5%E6%9C%AClnosj.exe.jsonl"
    )


# -- ranges ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 10),
        ("bytes=100-", 100, len(DATA)),
        ("bytes=-25", len(DATA) - 25, len(DATA)),
        ("bytes=50-10000000", 50, len(DATA)),
        (f"bytes={len(DATA) - 1}-{len(DATA) - 1}", len(DATA) - 1, len(DATA)),
        ("bytes=-100000000", 0, len(DATA)),
    ],
)
async def test_range(client: httpx.AsyncClient, header: str, start: int, end: int) -> None:
    response = await client.get(_link().url, headers={"Range": header})
    assert response.status_code == 206
    assert response.content == DATA[start:end]
    assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{len(DATA)}"
    assert response.headers["content-length"] == str(end - start)
    assert response.headers["content-type"] == NDJSON


async def test_range_resumes_a_download(client: httpx.AsyncClient) -> None:
    url = _link().url
    first = (await client.get(url, headers={"Range": "bytes=0-999"})).content
    rest = (await client.get(url, headers={"Range": "bytes=1000-"})).content
    assert first + rest == DATA


async def test_head_with_range(client: httpx.AsyncClient) -> None:
    response = await client.head(_link().url, headers={"Range": "bytes=10-19"})
    assert response.status_code == 206
    assert response.headers["content-length"] == "10"
    assert response.content == b""


@pytest.mark.parametrize(
    "header", [f"bytes={len(DATA)}-", "bytes=-0", f"bytes={len(DATA) + 5}-{len(DATA) + 9}"]
)
async def test_unsatisfiable_range(client: httpx.AsyncClient, header: str) -> None:
    response = await client.get(_link().url, headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(DATA)}"


@pytest.mark.parametrize(
    "header", ["bytes=0-1,5-6", "items=0-5", "bytes=9-2", "bytes=-", "nonsense"]
)
async def test_unsupported_range_serves_everything(client: httpx.AsyncClient, header: str) -> None:
    response = await client.get(_link().url, headers={"Range": header})
    assert response.status_code == 200
    assert response.content == DATA


async def test_range_is_checked_after_the_signature(client: httpx.AsyncClient) -> None:
    url = _with_query(_link().url, signature="0" * 64)
    _expect_error(await client.get(url, headers={"Range": "bytes=0-9"}), 403)
