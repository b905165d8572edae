"""Uploads over HTTP: GraphQL multipart requests read part by part, each file capped as it is
read, and the body-size limits of the routes that take files.

A GraphQL multipart request (https://github.com/jaydenseric/graphql-multipart-request-spec)
is `operations` (the GraphQL request as JSON, files as nulls), `map` (which file goes where)
and the files. python-multipart parses the stream; every file is spooled into a
`ReceivedFile` (1 MiB in memory, then a temporary file) and dropped as it arrives once it is
larger than `MAX_IMPORT_FILE_BYTES`, or when it is one more than an import takes. So a request
holds at most its cap per file, on disk, whatever it sends, and the app-wide body limit bounds
the whole request (`upload_limit`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.types import Scope

from .config import Settings
from .conversations.uploads import MAX_IMPORT_FILES, ReceivedFile
from .errors import ErrorCode
from .limits import GRAPHQL_PATH, UploadLimit

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

IMPORT_PATH = "/api/conversations"
MULTIPART = "multipart/form-data"
# Non-file parts: the spec has two (operations, map); a few more are tolerated and ignored.
_MAX_FIELDS = 10
_MAX_HEADER_BYTES = 8 * 1024


class MultipartError(ValueError):
    """The body is not a multipart form this server reads; the message says why."""


def media_type(headers: Headers) -> str:
    """The Content-Type without its parameters, lower case."""
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def upload_limit(settings: Settings) -> Callable[[Scope], UploadLimit | None]:
    """For `BodySizeLimit`: the larger cap of a request that carries files, else None.

    A GraphQL multipart request may carry `MAX_IMPORT_FILES` files of `MAX_IMPORT_FILE_BYTES`
    plus `MAX_REQUEST_BYTES` of everything else; the REST import is one file.
    """
    graphql = UploadLimit(
        MAX_IMPORT_FILES * settings.max_import_file_bytes + settings.max_request_bytes,
        ErrorCode.BODY_TOO_LARGE,
        "multipart request body",
    )
    rest = UploadLimit(
        settings.max_import_file_bytes, ErrorCode.FILE_TOO_LARGE, "conversation file"
    )

    def limit(scope: Scope) -> UploadLimit | None:
        if scope.get("method") != "POST":
            return None
        if scope["path"] == IMPORT_PATH:
            return rest
        if scope["path"] == GRAPHQL_PATH and media_type(Headers(scope=scope)) == MULTIPART:
            return graphql
        return None

    return limit


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, ReceivedFile] = field(default_factory=dict)


_RECEIVED = "received_files"


def close_received(request: Request) -> None:
    """Close (and so delete) every file the request's form spooled."""
    for received in getattr(request.state, _RECEIVED, ()):
        received.close()


async def read_form(request: Request, *, max_file_bytes: int, max_field_bytes: int) -> Form:
    """The request's multipart form; `MultipartError` when it is malformed. The files are
    recorded on the request for `close_received`, which the caller must call once done."""
    _, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary")
    if not boundary:
        raise MultipartError("the multipart Content-Type has no boundary")
    reader = _FormReader(max_file_bytes, max_field_bytes)
    setattr(request.state, _RECEIVED, reader.received)
    try:
        parser = MultipartParser(boundary, reader.callbacks(), max_header_size=_MAX_HEADER_BYTES)
        async for chunk in request.stream():
            parser.write(chunk)
            await reader.flush()
        parser.finalize()
    except ClientDisconnect:
        raise MultipartError("the request body was cut off") from None
    except FormParserError as error:
        raise MultipartError(f"the multipart body is malformed: {error}") from None
    if not reader.ended:
        raise MultipartError("the multipart body ends before its closing boundary")
    return reader.form


class _FormReader:
    """python-multipart's callbacks, collecting a `Form`. File data waits in `_pending` for
    `flush`, which writes it off the event loop (a spool past 1 MiB is a file on disk)."""

    def __init__(self, max_file_bytes: int, max_field_bytes: int) -> None:
        self.form = Form()
        self.received: list[ReceivedFile] = []
        self.ended = False
        self._max_file_bytes = max_file_bytes
        self._max_field_bytes = max_field_bytes
        self._field_bytes = 0
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name = ""
        self._file: ReceivedFile | None = None
        self._data = bytearray()
        self._pending: list[tuple[ReceivedFile, bytes]] = []

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    async def flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, []
            await asyncio.to_thread(_write_all, pending, self._max_file_bytes)

    def _part_begin(self) -> None:
        self._disposition = b""
        self._file = None
        self._data = bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise MultipartError("a multipart part has no Content-Disposition name")
        self._name = _text(options[b"name"])
        if b"filename" not in options:
            if len(self.form.fields) >= _MAX_FIELDS:
                raise MultipartError(f"more than {_MAX_FIELDS} form fields")
            return
        filename = _text(options[b"filename"])
        # One file more than an import takes is counted, not kept: the mutation refuses it.
        keep = len(self.received) < MAX_IMPORT_FILES
        self._file = ReceivedFile.spooled(filename) if keep else ReceivedFile.dropped(filename)
        self.received.append(self._file)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._pending.append((self._file, data[start:end]))
            return
        self._field_bytes += end - start
        if self._field_bytes > self._max_field_bytes:
            raise MultipartError(
                f"the form fields are larger than {self._max_field_bytes} bytes (MAX_REQUEST_BYTES)"
            )
        self._data += data[start:end]

    def _part_end(self) -> None:
        if self._file is not None:
            self.form.files[self._name] = self._file
            return
        try:
            self.form.fields[self._name] = self._data.decode("utf-8")
        except UnicodeDecodeError:
            raise MultipartError(f"the form field {self._name!r} is not UTF-8") from None

    def _end(self) -> None:
        self.ended = True


def _write_all(pending: list[tuple[ReceivedFile, bytes]], max_bytes: int) -> None:
    for received, data in pending:
        received.write(data, max_bytes)


def _text(raw: bytes) -> str:
    # RFC 7578: names are UTF-8 in practice; anything else is kept readable as Latin-1.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
