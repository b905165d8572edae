"""How this product talks to an S3 store: the aiobotocore clients `S3Storage.open` creates, the
shape of the one function every request goes through, and the tally of what went over the wire.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session

from .s3_config import S3Config
from .s3_errors import REQUEST_ERRORS, storage_error

# Sends one request: `send("UploadPart", {"Bucket": ..., ...})` returns the parsed response or
# raises what botocore and the connection raise. `S3Storage._send` is the one implementation
# (tests inject faults there); everything else receives it as a `Send`.
Send = Callable[[str, dict[str, Any]], Awaitable[Any]]


@dataclass
class S3Stats:
    """Bytes and requests by kind, so tests (and operators) can see where data went."""

    uploaded_bytes: int = 0  # request bodies of PutObject and UploadPart
    copied_bytes: int = 0  # copied inside the store by UploadPartCopy
    downloaded_bytes: int = 0  # response bodies of GetObject
    multipart_uploads: int = 0  # started (CreateMultipartUpload)
    aborted_uploads: int = 0  # AbortMultipartUpload sent after a failure or cancellation


async def call(send: Send, operation: str, name: str, **params: Any) -> Any:
    """Send one request through `send`; map botocore and connection failures to
    `StorageError` naming `operation` and the object `name`."""
    try:
        return await send(operation, params)
    except REQUEST_ERRORS as error:
        raise storage_error(error, operation, name) from error


def as_bytes(chunk: object) -> bytes:
    """A chunk or part as `bytes`; a `TypeError` for anything that is not bytes-like."""
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(memoryview(chunk).cast("B"))
    raise TypeError(f"storage chunks must be bytes, not {type(chunk).__name__}")


def method_name(operation: str) -> str:
    """The client method of an S3 operation: `UploadPartCopy` -> `upload_part_copy`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


async def open_clients(
    config: S3Config, stack: AsyncExitStack, session: AioSession | None = None
) -> tuple[Any, Any]:
    """The client requests go through, and the one presigned URLs are made with (the same
    client unless `config.public_endpoint_url` names another address); `stack` closes them.

    Without a `session`, every storage shares one, so the S3 service model is loaded once."""
    session = session or _default_session()
    client = await stack.enter_async_context(
        session.create_client("s3", **client_arguments(config, config.endpoint_url))
    )
    if not config.public_endpoint_url:
        return client, client
    signer = await stack.enter_async_context(
        session.create_client("s3", **client_arguments(config, config.public_endpoint_url))
    )
    return client, signer


def client_arguments(config: S3Config, endpoint_url: str | None) -> dict[str, Any]:
    """`create_client` arguments for the store at `endpoint_url` (None: AWS)."""
    arguments: dict[str, Any] = {
        "region_name": config.region,
        "config": AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": config.addressing_style},
            retries={"mode": "standard", "total_max_attempts": config.max_attempts},
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            max_pool_connections=32,
            # No aws-chunked uploads with trailing checksums: many S3-compatible stores
            # reject them. Integrity in transit is TLS's job (and SigV4's over plain HTTP).
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    }
    if endpoint_url:
        arguments["endpoint_url"] = endpoint_url
    if config.access_key_id is not None:
        arguments["aws_access_key_id"] = config.access_key_id
        arguments["aws_secret_access_key"] = config.secret_access_key
    return arguments


@functools.cache
def _default_session() -> AioSession:
    return get_session()
