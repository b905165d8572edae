"""The app's own download route, serving the signed links local storage hands out
(`storage/links.py` signs and verifies them):

    GET|HEAD /downloads/{bucket}/{key}?filename=..&type=..&expires=<unix>&signature=<hex>

Single `bytes=` ranges are served (206). Errors have the error body of every non-GraphQL error
(`limits.error_body`): 403 FORBIDDEN for a link that was tampered with, is incomplete or has
expired; 404 NOT_FOUND for an object that is not there; 416 BAD_REQUEST for a range outside it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .errors import ErrorCode
from .limits import error_response
from .storage.base import (
    InvalidKey,
    ObjectNotFound,
    Storage,
    validate_bucket,
    validate_key,
)
from .storage.links import (
    DOWNLOADS_PATH,
    InvalidDownloadLink,
    LinkSigner,
    content_disposition,
)

ROUTE_PATH = f"{DOWNLOADS_PATH}/{{bucket}}/{{key:path}}"

_LINK_PARAMETERS = ("filename", "type", "expires", "signature")
_RANGE = re.compile(r"^bytes=([0-9]{0,18})-([0-9]{0,18})$")
_NOT_CACHED = {"Cache-Control": "private, no-store"}


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
    try:
        _verify(LinkSigner(services.settings.jwt_secret), bucket, key, params)
    except InvalidDownloadLink as error:
        return error_response(403, ErrorCode.FORBIDDEN, str(error))
    try:
        validate_bucket(bucket)
        validate_key(key)
        size = await storage.size(bucket, key)  # the backend applies its own key rules too
    except (InvalidKey, ObjectNotFound):
        return _not_found()

    try:
        byte_range = _parse_range(request.headers.get("range"), size)
    except _RangeNotSatisfiable:
        return _unsatisfiable(size)
    headers = _headers(params["filename"], params["type"])
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
        return _not_found()
    return StreamingResponse(body, status_code=status, headers=headers)


# -- helpers -----------------------------------------------------------------------------------


def _verify(signer: LinkSigner, bucket: str, key: str, params: QueryParams) -> None:
    # A repeated parameter could be read one way here and another way by a proxy or cache.
    if any(len(params.getlist(name)) > 1 for name in _LINK_PARAMETERS):
        raise InvalidDownloadLink("the download link is malformed")
    signer.verify(
        bucket,
        key,
        filename=params.get("filename"),
        content_type=params.get("type"),
        expires=params.get("expires"),
        signature=params.get("signature"),
    )


def _headers(filename: str, content_type: str) -> dict[str, str]:
    return {
        "Content-Type": content_type,
        "Content-Disposition": content_disposition(filename),
        "Accept-Ranges": "bytes",
        **_NOT_CACHED,
        "X-Content-Type-Options": "nosniff",
    }


def _not_found() -> JSONResponse:
    return error_response(404, ErrorCode.NOT_FOUND, "the file does not exist")


def _unsatisfiable(size: int) -> JSONResponse:
    headers = {"Content-Range": f"bytes */{size}", **_NOT_CACHED}
    message = f"the requested range is outside the file's {size} bytes"
    return error_response(416, ErrorCode.BAD_REQUEST, message, headers=headers)


class _RangeNotSatisfiable(Exception):
    pass


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The half-open range `[start, end)` of a single `bytes=` range, or None to serve the
    whole object (no header, or one this endpoint ignores: multiple ranges, other units,
    malformed). Raises `_RangeNotSatisfiable` for a range no byte of the object is in."""
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
            raise _RangeNotSatisfiable
        return max(size - length, 0), size
    start = int(first)
    end = size if last == "" else int(last) + 1
    if last != "" and end <= start:
        return None  # last < first: invalid, so ignored (RFC 9110 14.1.1)
    if start >= size:
        raise _RangeNotSatisfiable
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
