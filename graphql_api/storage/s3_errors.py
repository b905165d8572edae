"""What a failed S3 request means for a caller of `Storage`: a `StorageError` (or
`ObjectNotFound`) naming the operation and object, with the reason an operator can act on and
never any credentials. Error codes are those of AWS, MinIO, Ceph, R2 and rclone."""

from __future__ import annotations

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from .base import ObjectNotFound, StorageError, StorageFailure

# Everything one request can raise: botocore's own errors, the store's answer, the connection's.
REQUEST_ERRORS = (BotoCoreError, ClientError, aiohttp.ClientError, OSError)

NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
BUCKET_NOT_FOUND = frozenset({"404", "NoSuchBucket", "NotFound"})
RANGE_NOT_SATISFIABLE = frozenset({"416", "InvalidRange"})
NO_SUCH_UPLOAD = "NoSuchUpload"
# What servers answer an `UploadPartCopy` they do not implement.
COPY_UNSUPPORTED = frozenset(
    {"NotImplemented", "Unimplemented", "501", "InvalidRequest", "InvalidArgument"}
)

_FULL = frozenset({"QuotaExceeded", "XMinioStorageFull", "StorageFull", "InsufficientStorage"})
_DENIED = frozenset({"AccessDenied", "AllAccessDisabled", "AccountProblem", "403"})
_BAD_CREDENTIALS = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}
)
_WRITES = frozenset(
    {
        "PutObject",
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPartCopy",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
        "DeleteObject",
        "CreateBucket",
    }
)
# Failures to talk to the store at all: refused, reset, timed out, no credentials to sign with.
_TRANSPORT_ERRORS = (
    BotoConnectionError,
    HTTPClientError,
    NoCredentialsError,
    aiohttp.ClientError,
    OSError,
)


def object_name(bucket: str, key: str) -> str:
    """How messages name an object: its real bucket and key."""
    return f"s3://{bucket}/{key}"


def error_code(error: BaseException | None) -> str | None:
    """The store's error code (`NoSuchKey`, `AccessDenied`...) when `error` is its answer."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or "") or None
    return None


def storage_error(error: BaseException, operation: str, name: str) -> StorageError:
    """A `StorageError` (or `ObjectNotFound`) saying what failed, without any credentials."""
    if isinstance(error, ClientError):
        return _client_error(error, operation, name)
    reason: StorageFailure | None = "unreachable" if isinstance(error, _TRANSPORT_ERRORS) else None
    return StorageError(
        f"S3 {operation} {name} failed: {type(error).__name__}: {error}", reason=reason
    )


def _client_error(error: ClientError, operation: str, name: str) -> StorageError:
    code = error_code(error)
    if code in NOT_FOUND and operation not in ("HeadBucket", "CreateBucket"):
        return ObjectNotFound(name)
    details = error.response.get("Error", {})
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    message = str(details.get("Message") or "").strip()
    text = f"S3 {operation} {name} failed: {code or 'error'}"
    if status:
        text += f" (HTTP {status})"
    if code == "NoSuchBucket":
        text += ": the bucket does not exist"
    elif message:
        text += f": {message}"
    return StorageError(text, reason=_client_error_reason(code, status, operation))


def _client_error_reason(
    code: str | None, status: int | None, operation: str
) -> StorageFailure | None:
    if code in _FULL or status == 507:
        return "full"
    if code in _DENIED or status == 403:
        # A store that refuses writes but serves reads is read-only, not down.
        return "unwritable" if operation in _WRITES else "unreachable"
    if code in _BAD_CREDENTIALS or code == "NoSuchBucket":
        return "unreachable"
    if status is not None and status >= 500:
        return "unreachable"
    return None
