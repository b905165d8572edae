"""The download links the app signs for the objects it serves itself (local storage), and the
`Content-Disposition` every download link asks for.

Our own links point at the app's download route:

    {base_url}/downloads/{bucket}/{key}?filename=..&type=..&expires=<unix>&signature=<hex>

The signature covers bucket, key, filename, content type and expiry, so none of them can be
changed. It is keyed by HMAC(secret, "download-links"), never by the secret itself (the JWT
secret, which also signs bearer tokens).

Pure: no I/O, no HTTP. `downloads.py` is the route that verifies and serves these links.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import unicodedata
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from .base import DownloadLink, validate_bucket, validate_key

# The app's download route serves `DOWNLOADS_PATH/{bucket}/{key}`.
DOWNLOADS_PATH = "/downloads"
# What our links may be served as: the route sends the signed type as Content-Type, so only
# types that no browser renders as a page.
CONTENT_TYPES = frozenset({"application/json", "application/x-ndjson"})

_KEY_DERIVATION_LABEL = b"download-links"
_SIGNATURE_VERSION = "download-v1"
_SIGNATURE = re.compile(r"^[0-9a-f]{64}$")
_EXPIRES = re.compile(r"^[0-9]{1,12}$")
_UNSAFE_IN_FILENAME = re.compile(r'[\x00-\x1f\x7f"\\/]')
_FALLBACK_FILENAME = "download"
_INVISIBLE = frozenset("\u2028\u2029")  # line and paragraph separators (Zl, Zp)


class InvalidDownloadLink(Exception):
    """A link that was tampered with, is incomplete or has expired. The message is safe to show."""


class LinkSigner:
    """Signs our download links and verifies them, with a key derived from `secret`."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a link signer needs a non-empty secret")
        self._key = hmac.new(secret.encode(), _KEY_DERIVATION_LABEL, hashlib.sha256).digest()

    def __repr__(self) -> str:  # the key never appears in a log or traceback
        return "LinkSigner(...)"

    def sign(
        self,
        bucket: str,
        key: str,
        *,
        filename: str,
        content_type: str,
        ttl_seconds: int,
        base_url: str,
        now: datetime | None = None,
    ) -> DownloadLink:
        """A link to `bucket/key` under `base_url` that downloads as `filename` until
        `ttl_seconds` from `now`."""
        validate_bucket(bucket)
        validate_key(key)
        _check_link_request(filename, content_type, ttl_seconds)
        expires = int(_aware(now).timestamp()) + ttl_seconds
        query = urlencode(
            [
                ("filename", filename),
                ("type", content_type),
                ("expires", str(expires)),
                ("signature", self.signature(bucket, key, filename, content_type, expires)),
            ],
            quote_via=quote,
        )
        path = f"{DOWNLOADS_PATH}/{quote(bucket, safe='')}/{quote(key, safe='/')}"
        return DownloadLink(
            url=f"{base_url.rstrip('/')}{path}?{query}",
            filename=filename,
            expires_in_seconds=ttl_seconds,
            expires_at=datetime.fromtimestamp(expires, UTC),
        )

    def verify(
        self,
        bucket: str,
        key: str,
        *,
        filename: str | None,
        content_type: str | None,
        expires: str | None,
        signature: str | None,
        now: datetime | None = None,
    ) -> None:
        """Raise `InvalidDownloadLink` unless the link's parts carry a valid, unexpired
        signature. `bucket` and `key` are not checked here: whoever serves them applies the
        key rules after this, so a signature alone never opens a path outside a bucket."""
        if filename is None or content_type is None or expires is None or signature is None:
            raise InvalidDownloadLink("the download link is incomplete")
        if not _EXPIRES.match(expires) or not _SIGNATURE.match(signature):
            raise InvalidDownloadLink("the download link is malformed")
        expected = self.signature(bucket, key, filename, content_type, int(expires))
        if not hmac.compare_digest(expected, signature):
            raise InvalidDownloadLink("the download link signature is invalid")
        if (now or datetime.now(UTC)).timestamp() >= int(expires):
            raise InvalidDownloadLink("the download link has expired")
        if content_type not in CONTENT_TYPES:  # only reachable if signing rules change
            raise InvalidDownloadLink("the download link has an unsupported content type")

    def signature(
        self, bucket: str, key: str, filename: str, content_type: str, expires: int
    ) -> str:
        """The hex HMAC of a link's parts (public so tests can sign what `sign` refuses to)."""
        # A JSON array keeps the fields apart whatever characters they contain.
        message = json.dumps(
            [_SIGNATURE_VERSION, bucket, key, filename, content_type, expires],
            ensure_ascii=True,
            separators=(",", ":"),
        )
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()


def content_disposition(filename: str) -> str:
    """An `attachment` header value: a safe ASCII `filename`, plus RFC 5987 `filename*`
    when the name is not plain ASCII."""
    name = _UNSAFE_IN_FILENAME.sub("_", _visible(unicodedata.normalize("NFC", filename)))
    name = name.strip().lstrip(". ") or _FALLBACK_FILENAME
    value = f'attachment; filename="{_ascii_fallback(name)}"'
    if not name.isascii():
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value


def _check_link_request(filename: str, content_type: str, ttl_seconds: int) -> None:
    if not filename:
        raise ValueError("a download needs a file name")
    if content_type not in CONTENT_TYPES:
        raise ValueError(f"content type {content_type!r} is not one of {sorted(CONTENT_TYPES)}")
    if ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now


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
