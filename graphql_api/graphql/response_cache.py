"""A cache of GraphQL read responses, valid for one data version.

Keyed by the request as sent (method, body or query string) and the caller, so a response is
only ever served to the user it was computed for. An entry is served while PostgreSQL's data
version (migration 0004, bumped by every commit in any process) is the one it was computed at;
checking that costs one tiny query, shared by every hit that arrives while it runs
(`Database.data_version`). Every cacheable response carries an `ETag`, and a client
sending it back in `If-None-Match` gets `304 Not Modified` without a body.

It wraps the GraphQL view as ASGI: the view marks a response cacheable (a query, no errors) by
putting the data version it read at into `request.state.cache_version`.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..authentication import Caller
from ..failures import as_unavailable
from ..multipart import MULTIPART, media_type
from ..observability.context import Operation, current_operation, record_operation
from ..observability.metrics import CACHE_HITS, CACHE_MISSES

CACHE_CONTROL = b"private, no-cache"


@dataclass(frozen=True)
class Entry:
    version: int
    etag: bytes
    body: bytes
    # What the view answered, so the access line of a hit names the same operation.
    operation: Operation | None = None


class ResponseCache:
    """Least recently used entries, at most `max_bytes` of bodies in all."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, Entry] = OrderedDict()
        self._bytes = 0

    def get(self, key: bytes) -> Entry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: bytes, entry: Entry) -> None:
        if len(entry.body) > self.max_bytes:
            return
        self.discard(key)
        self._entries[key] = entry
        self._bytes += len(entry.body)
        while self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted.body)

    def discard(self, key: bytes) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry.body)


class CachedGraphQL:
    """ASGI: answer repeated reads from the cache, else run `view` and keep what it marks."""

    def __init__(self, view: ASGIApp, cache: ResponseCache) -> None:
        self._view = view
        self._cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "POST")
            or media_type(Headers(scope=scope)) == MULTIPART  # uploads: never buffered here
        ):
            await self._view(scope, receive, send)
            return
        body, receive = await _buffered(receive)
        key = _key(scope, body)
        headers = Headers(scope=scope)
        entry = self._cache.get(key)
        if entry is not None and entry.version == await _current_version(scope):
            CACHE_HITS.inc()
            record_operation(entry.operation)
            await _send_entry(send, entry, headers.get("if-none-match"))
            return
        # A miss, a stale entry, or no version to compare with: the view answers (and says
        # what is wrong if the database is down).
        await self._view(scope, receive, self._keeping(scope, key, headers, send))

    def _keeping(self, scope: Scope, key: bytes, headers: Headers, send: Send) -> Send:
        """`send`, holding a cacheable response's start until its body gives it an ETag."""
        started: Message | None = None

        async def keep(message: Message) -> None:
            nonlocal started
            version = scope.get("state", {}).get("cache_version")
            if message["type"] == "http.response.start":
                if message["status"] == 200 and version is not None:
                    started = message
                    return
            elif started is not None and message.get("more_body", False):
                await send(started)  # a streamed body: not kept
                started = None
            elif started is not None:
                body = message.get("body", b"")
                # A miss: a cacheable read the view had to answer (mutations never are).
                CACHE_MISSES.inc()
                entry = Entry(version, _etag(body), body, current_operation())
                self._cache.put(key, entry)
                if headers.get("if-none-match") == entry.etag.decode():
                    await _send_not_modified(send, entry)
                    return
                started["headers"] = [*started["headers"], *_cache_headers(entry)]
                await send(started)
            await send(message)

        return keep


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body (already capped by the size limit), and a `receive` replaying it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _key(scope: Scope, body: bytes) -> bytes:
    user = scope.get("user")
    caller = str(user.viewer.user_id) if isinstance(user, Caller) and user.viewer else ""
    digest = hashlib.sha256()
    for part in (scope["method"].encode(), caller.encode(), scope.get("query_string", b""), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


def _etag(body: bytes) -> bytes:
    return b'"' + hashlib.blake2b(body, digest_size=16).hexdigest().encode() + b'"'


async def _current_version(scope: Scope) -> int | None:
    services: Any = scope["app"].state.services
    try:
        version: int = await services.db.data_version()
        return version
    except Exception as error:
        if as_unavailable(error) is None:
            raise
        return None


def _cache_headers(entry: Entry) -> list[tuple[bytes, bytes]]:
    return [(b"etag", entry.etag), (b"cache-control", CACHE_CONTROL), (b"vary", b"Authorization")]


async def _send_entry(send: Send, entry: Entry, if_none_match: str | None) -> None:
    if if_none_match == entry.etag.decode():
        await _send_not_modified(send, entry)
        return
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(entry.body)).encode()),
        *_cache_headers(entry),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": entry.body})


async def _send_not_modified(send: Send, entry: Entry) -> None:
    await send({"type": "http.response.start", "status": 304, "headers": _cache_headers(entry)})
    await send({"type": "http.response.body", "body": b""})
