"""Expiring, HMAC-signed download links for stored objects, served by the app itself.

`sign_download` builds a link (pure: no I/O); `download_route` serves it:

    GET|HEAD /downloads/{bucket}/{key}?filename=..&type=..&expires=<unix>&signature=<hex>

The signature covers bucket, key, filename, content type and expiry, so none of them can be
changed. It is keyed by HMAC(secret, "download-links"), never by the JWT secret itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .storage.base import InvalidKey, ObjectNotFound, Storage, validate_bucket, validate_key

DOWNLOAD_TTL_SECONDS = 3600
CONTENT_TYPES = frozenset({"application/json", "application/x-ndjson"})
ROUTE_PATH = "/downloads/{bucket}/{key:path}"

_KEY_DERIVATION_LABEL = b"download-links"
_SIGNATURE_VERSION = "download-v1"
_SIGNATURE = re.compile(r"^[0-9a-f]{64}$")
_EXPIRES = re.compile(r"^[0-9]{1,12}$")
_RANGE = re.compile(r"^bytes=([0-9]{0,18})-([0-9]{0,18})$")
_UNSAFE_IN_FILENAME = re.compile(r'[\x00-\x1f\x7f"\\/]')
_FALLBACK_FILENAME = "download"
_INVISIBLE = frozenset("\u2028\u2029")  # line and paragraph separators (Zl, Zp)


@dataclass(frozen=True)
class DownloadLink:
    url: str
    filename: str
    expires_in_seconds: int
    expires_at: datetime


class InvalidDownloadLink(Exception):
    """A link that was tampered with, is incomplete or has expired. The message is safe to show."""


def sign_download(
    *,
    secret: str,
    base_url: str,
    bucket: str,
    key: str,
    filename: str,
    content_type: str,
    ttl_seconds: int = DOWNLOAD_TTL_SECONDS,
    now: datetime | None = None,
) -> DownloadLink:
    """A link to `bucket/key` that downloads as `filename` until `ttl_seconds` from `now`."""
    if not secret:
        raise ValueError("sign_download needs a non-empty secret")
    validate_bucket(bucket)
    validate_key(key)
    if not filename:
        raise ValueError("a download needs a file name")
    if content_type not in CONTENT_TYPES:
        raise ValueError(f"content type {content_type!r} is not one of {sorted(CONTENT_TYPES)}")
    if ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    expires = int(now.timestamp()) + ttl_seconds
    signature = _signature(secret, bucket, key, filename, content_type, expires)
    query = urlencode(
        [
            ("filename", filename),
            ("type", content_type),
            ("expires", str(expires)),
            ("signature", signature),
        ],
        quote_via=quote,
    )
    path = f"/downloads/{quote(bucket, safe='')}/{quote(key, safe='/')}"
    return DownloadLink(
        url=f"{base_url.rstrip('/')}{path}?{query}",
        filename=filename,
        expires_in_seconds=ttl_seconds,
        expires_at=datetime.fromtimestamp(expires, UTC),
    )


def verify_download(
    *,
    secret: str,
    bucket: str,
    key: str,
    filename: str | None,
    content_type: str | None,
    expires: str | None,
    signature: str | None,
    now: datetime | None = None,
) -> None:
    """Raise `InvalidDownloadLink` unless the link's parts carry a valid, unexpired signature."""
    if filename is None or content_type is None or expires is None or signature is None:
        raise InvalidDownloadLink("the download link is incomplete")
    if not _EXPIRES.match(expires) or not _SIGNATURE.match(signature):
        raise InvalidDownloadLink("the download link is malformed")
    expected = _signature(secret, bucket, key, filename, content_type, int(expires))
    if not hmac.compare_digest(expected, signature):
        raise InvalidDownloadLink("the download link signature is invalid")
    current = (now or datetime.now(UTC)).timestamp()
    if current >= int(expires):
        raise InvalidDownloadLink("the download link has expired")
    if content_type not in CONTENT_TYPES:  # only reachable if signing rules change
        raise InvalidDownloadLink("the download link has an unsupported content type")


def content_disposition(filename: str) -> str:
    """An `attachment` header value: a safe ASCII `filename`, plus RFC 5987 `filename*`
    when the name is not plain ASCII."""
    name = _UNSAFE_IN_FILENAME.sub("_", _visible(unicodedata.normalize("NFC", filename)))
    name = name.strip().lstrip(". ") or _FALLBACK_FILENAME
    value = f'attachment; filename="{_ascii_fallback(name)}"'
    if not name.isascii():
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value


def download_route() -> Route:
    """`GET`/`HEAD /downloads/{bucket}/{key:path}` serving signed links from app storage."""
    return Route(ROUTE_PATH, _download, methods=["GET", "HEAD"], name="download")


# -- the endpoint ------------------------------------------------------------------------------


async def _download(request: Request) -> Response:
    services = request.app.state.services
    storage: Storage = services.storage
    bucket: str = request.path_params["bucket"]
    key: str = request.path_params["key"]
    params = request.query_params
    if any(len(params.getlist(name)) > 1 for name in ("filename", "type", "expires", "signature")):
        return _error(403, "the download link is malformed")
    try:
        verify_download(
            secret=services.settings.jwt_secret,
            bucket=bucket,
            key=key,
            filename=params.get("filename"),
            content_type=params.get("type"),
            expires=params.get("expires"),
            signature=params.get("signature"),
        )
    except InvalidDownloadLink as error:
        return _error(403, str(error))
    filename, content_type = params["filename"], params["type"]

    try:
        validate_bucket(bucket)
        validate_key(key)
        size = await storage.size(bucket, key)  # the backend applies its own key rules too
    except (InvalidKey, ObjectNotFound):
        return _error(404, "the file does not exist")

    headers = {
        "Content-Type": content_type,
        "Content-Disposition": content_disposition(filename),
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
    }
    byte_range = _parse_range(request.headers.get("range"), size)
    if byte_range == "unsatisfiable":
        return Response(
            status_code=416,
            headers={"Content-Range": f"bytes */{size}", "Cache-Control": "private, no-store"},
        )
    if byte_range is None:
        status, start, end = 200, 0, size
    else:
        status, (start, end) = 206, byte_range
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)

    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    if status == 206:
        chunks = storage.get_range(bucket, key, start, end)
    else:
        chunks = storage.get(bucket, key)
    try:
        body = await _opened(chunks)
    except ObjectNotFound:  # removed between `size` and opening it
        return _error(404, "the file does not exist")
    return StreamingResponse(body, status_code=status, headers=headers)


# -- helpers -----------------------------------------------------------------------------------


def _signature(
    secret: str, bucket: str, key: str, filename: str, content_type: str, expires: int
) -> str:
    signing_key = hmac.new(secret.encode(), _KEY_DERIVATION_LABEL, hashlib.sha256).digest()
    # A JSON array keeps the fields apart whatever characters they contain.
    message = json.dumps(
        [_SIGNATURE_VERSION, bucket, key, filename, content_type, expires],
        ensure_ascii=True,
        separators=(",", ":"),
    )
    return hmac.new(signing_key, message.encode(), hashlib.sha256).hexdigest()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _visible(name: str) -> str:
    """`name` without invisible format characters (category Cf) and line or paragraph
    separators: a right-to-left override (U+202E) shows what follows it reversed, so a name
    could pass for one with another extension."""
    return "".join(c for c in name if c not in _INVISIBLE and unicodedata.category(c) != "Cf")


def _ascii_fallback(name: str) -> str:
    """`name` with accents dropped and other non-ASCII characters replaced by `_`."""
    chars = []
    for char in name:
        if char.isascii():
            chars.append(char)
            continue
        stripped = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
        stripped = _UNSAFE_IN_FILENAME.sub("", stripped)
        chars.append(stripped or "_")
    return "".join(chars)


def _parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """The half-open range `[start, end)` of a single `bytes=` range, "unsatisfiable", or None
    to serve the whole object (no header, or one this endpoint ignores: multiple ranges,
    other units, malformed)."""
    if header is None:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":  # suffix: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            return "unsatisfiable"
        return max(size - length, 0), size
    start = int(first)
    end = size if last == "" else int(last) + 1
    if last != "" and end <= start:
        return None  # last < first: invalid, so ignored (RFC 9110 14.1.1)
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size)


async def _opened(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Start `chunks` now, so a missing object is reported before the response starts."""
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        return _empty()
    return _prepend(first, chunks)


async def _empty() -> AsyncIterator[bytes]:
    return
    yield


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        yield first
        async for chunk in rest:
            yield chunk
    finally:
        aclose = getattr(rest, "aclose", None)
        if aclose is not None:
            await aclose()
