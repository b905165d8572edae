"""`S3Storage` against real S3 servers on 127.0.0.1: the `Storage` contract of test_storage.py,
then what only S3 has (multipart uploads, server-side copies, presigned URLs).

moto runs everything; `rclone serve s3` (marked `rclone`) checks what moto does not:
signatures, presigned URL tampering and expiry, and data surviving a restart.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from unittest import mock
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from botocore.exceptions import ClientError

from graphql_api.storage.base import (
    BUCKETS,
    CHUNK_SIZE,
    CONVERSATION_BUCKET,
    TRAINING_BUCKET,
    CopyRange,
    DownloadLink,
    InvalidKey,
    ObjectNotFound,
    StorageError,
    iter_bytes,
    read_all,
)
from graphql_api.storage.s3 import S3Storage
from graphql_api.storage.s3_config import S3Config
from graphql_api.storage.s3_upload import MIN_PART_SIZE

from . import test_storage as contract
from .storage_wrappers import FaultyS3Storage
from .test_storage import Boom, failing_after, objects_in, payload, pending_in, pieces

if TYPE_CHECKING:
    from .s3_servers import MotoServer, RcloneS3Server

MiB = 1024 * 1024
BUCKET = TRAINING_BUCKET


# -- the Storage contract, on moto and on rclone ------------------------------------------------

# test_storage.py runs the contract on local storage and moto; here it runs again on rclone,
# which speaks S3 differently (ranged GETs, listing, no UploadPartCopy).
for _name, _test in list(vars(contract).items()):
    if _name.startswith("test_") and "storage" in inspect.signature(_test).parameters:
        globals()[_name] = _test
del _name, _test


@pytest.fixture
async def storage(rclone_server: RcloneS3Server) -> AsyncIterator[S3Storage]:
    backend = await S3Storage.open(rclone_server.config())
    yield backend
    await backend.close()


# -- helpers ------------------------------------------------------------------------------------


@pytest.fixture
async def s3(moto: MotoServer) -> AsyncIterator[S3Storage]:
    """S3Storage on an empty moto, with the smallest parts S3 allows so tests stay small, and
    every object plain: these tests are of uploads and copies (composites, which an add makes
    of large ranges, have test_s3_composites.py, and the contract runs with them)."""
    backend = await S3Storage.open(moto.config(composite_objects=False), part_size=MIN_PART_SIZE)
    yield backend
    await backend.close()


@pytest.fixture
async def faulty(moto: MotoServer) -> AsyncIterator[FaultyS3Storage]:
    """The real backend on moto whose requests fail where a test plans it."""
    backend = await FaultyS3Storage.open(moto.config(), part_size=MIN_PART_SIZE)
    yield backend
    await backend.close()


async def open_uploads(storage: S3Storage) -> list[dict[str, Any]]:
    """Multipart uploads started and neither completed nor aborted, in both buckets."""
    uploads: list[dict[str, Any]] = []
    for real in storage.config.buckets.values():
        try:
            response = await storage._client.list_multipart_uploads(
                Bucket=real, Prefix=storage.config.key_prefix
            )
        except ClientError as error:
            # rclone answers NoSuchUpload for a bucket without uploads.
            if error.response["Error"]["Code"] != "NoSuchUpload":
                raise
            continue
        uploads += response.get("Uploads", [])
    return uploads


async def etag(storage: S3Storage, key: str) -> str:
    real_bucket, real_key = storage._locate(BUCKET, key)
    head = await storage._client.head_object(Bucket=real_bucket, Key=real_key)
    return head["ETag"].strip('"')


def http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(trust_env=False, timeout=10)


# This app's address, which presigned links ignore: the client talks to the store.
APP_URL = "http://app.invalid"


async def presign(
    storage: S3Storage,
    key: str,
    *,
    filename: str = "x.json",
    content_type: str = "application/json",
    ttl_seconds: int = 3600,
) -> DownloadLink:
    return await storage.presign(
        BUCKET, key, filename=filename, content_type=content_type, ttl_seconds=ttl_seconds
    )


# -- put ----------------------------------------------------------------------------------------


async def test_small_put_is_one_put_object(s3: S3Storage) -> None:
    data = payload(MiB + 7)

    assert await s3.put(BUCKET, "small", pieces(data)) == len(data)

    assert await read_all(s3, BUCKET, "small") == data
    assert s3.stats.multipart_uploads == 0
    assert s3.stats.uploaded_bytes == len(data)


async def test_large_put_is_a_multipart_upload(s3: S3Storage) -> None:
    data = payload(2 * MIN_PART_SIZE + 123_457)

    assert await s3.put(BUCKET, "big", pieces(data)) == len(data)

    assert await s3.size(BUCKET, "big") == len(data)
    assert await read_all(s3, BUCKET, "big") == data
    assert (await etag(s3, "big")).endswith("-3")  # three parts
    assert s3.stats.multipart_uploads == 1
    assert s3.stats.uploaded_bytes == len(data)
    assert await open_uploads(s3) == []


async def test_put_of_an_exact_multiple_of_the_part_size_sends_no_empty_part(
    s3: S3Storage,
) -> None:
    data = payload(2 * MIN_PART_SIZE)

    await s3.put(BUCKET, "exact", pieces(data))

    assert (await etag(s3, "exact")).endswith("-2")
    assert await read_all(s3, BUCKET, "exact") == data


async def test_parts_in_flight_are_bounded(moto: MotoServer) -> None:
    backend = await S3Storage.open(moto.config(), part_size=MIN_PART_SIZE, max_in_flight=2)
    real_upload_part = backend._client.upload_part
    running_now = peak = 0

    async def counting_upload_part(**params: Any) -> Any:
        nonlocal running_now, peak
        running_now += 1
        peak = max(peak, running_now)
        try:
            await asyncio.sleep(0.05)
            return await real_upload_part(**params)
        finally:
            running_now -= 1

    backend._client.upload_part = counting_upload_part
    data = payload(4 * MIN_PART_SIZE + 1)
    try:
        await backend.put(BUCKET, "bounded", iter_bytes(data))
        assert peak == 2
        assert await read_all(backend, BUCKET, "bounded") == data
    finally:
        await backend.close()


async def test_failure_mid_multipart_upload_aborts_it(s3: S3Storage) -> None:
    previous = payload(1000, seed=1)
    await s3.put(BUCKET, "obj", iter_bytes(previous))

    with pytest.raises(Boom):  # the first 5 MiB part is sent before the source fails
        await s3.put(BUCKET, "obj", failing_after(payload(6 * MiB, seed=2)))
    with pytest.raises(Boom):
        await s3.put(BUCKET, "new", failing_after(payload(6 * MiB, seed=3)))

    assert s3.stats.multipart_uploads == 2
    assert s3.stats.aborted_uploads == 2
    assert await open_uploads(s3) == []
    assert await read_all(s3, BUCKET, "obj") == previous
    assert not await s3.exists(BUCKET, "new")


async def test_failed_part_upload_aborts_the_upload(faulty: FaultyS3Storage) -> None:
    faulty.faults.fail("UploadPart", 2)

    with pytest.raises(StorageError, match="injected: UploadPart") as caught:
        await faulty.put(BUCKET, "obj", iter_bytes(payload(3 * MIN_PART_SIZE)))

    assert caught.value.reason == "unreachable"
    assert faulty.faults.calls["AbortMultipartUpload"] == 1
    assert await open_uploads(faulty) == []
    assert not await faulty.exists(BUCKET, "obj")


async def test_cancelled_multipart_put_aborts_and_keeps_the_previous_object(
    s3: S3Storage,
) -> None:
    await s3.put(BUCKET, "obj", iter_bytes(b"previous"))
    sent_two_parts = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        sent = 0
        while True:
            yield payload(CHUNK_SIZE)
            sent += CHUNK_SIZE
            if sent >= 2 * MIN_PART_SIZE:
                sent_two_parts.set()

    task = asyncio.create_task(s3.put(BUCKET, "obj", endless()))
    await sent_two_parts.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert s3.stats.aborted_uploads == 1
    assert await open_uploads(s3) == []
    assert await read_all(s3, BUCKET, "obj") == b"previous"


async def test_cancelled_while_creating_the_upload_still_aborts_it(moto: MotoServer) -> None:
    backend = await S3Storage.open(moto.config(), part_size=MIN_PART_SIZE)
    real_create = backend._client.create_multipart_upload
    creating = asyncio.Event()

    async def slow_create(**params: Any) -> Any:
        creating.set()
        await asyncio.sleep(0.2)
        return await real_create(**params)

    backend._client.create_multipart_upload = slow_create
    task = asyncio.create_task(backend.put(BUCKET, "obj", iter_bytes(payload(MIN_PART_SIZE + 1))))
    await creating.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await backend.close()  # waits for the upload to be created, then aborts it

    assert backend.stats.aborted_uploads == 1
    observer = await S3Storage.open(moto.config())
    try:
        assert await open_uploads(observer) == []
        assert not await observer.exists(BUCKET, "obj")
    finally:
        await observer.close()


# -- listings, pending uploads, the health probe -------------------------------------------------


async def test_listings_page_through_every_object(s3: S3Storage) -> None:
    s3.list_page_size = 2
    for number in range(5):
        await s3.put(BUCKET, f"f/v{number}/training.json", iter_bytes(b"x" * number))

    listed = await objects_in(s3)

    assert sorted((o.key, o.size) for o in listed) == [
        (f"f/v{number}/training.json", number) for number in range(5)
    ]


async def test_listings_and_pending_uploads_stay_under_the_key_prefix(moto: MotoServer) -> None:
    mine = await S3Storage.open(moto.config(key_prefix="tenant-1/"), part_size=MIN_PART_SIZE)
    theirs = await FaultyS3Storage.open(moto.config(key_prefix="tenant-2/"))
    try:
        await mine.put(BUCKET, "f/v1/training.json", iter_bytes(b"mine"))
        await theirs.put(BUCKET, "f/v1/training.json", iter_bytes(b"theirs"))
        theirs.faults.fail("UploadPart", crash=True)  # leaves their upload open
        with pytest.raises(StorageError):
            await theirs.put(BUCKET, "g/v1/training.json", iter_bytes(payload(9 * MiB)))

        assert [(o.key, o.size) for o in await objects_in(mine)] == [("f/v1/training.json", 4)]
        assert await pending_in(mine) == []
        theirs.faults.crashed = False
        assert [p.key for p in await pending_in(theirs)] == ["g/v1/training.json"]
    finally:
        await mine.close()
        await theirs.close()


async def test_a_crash_mid_upload_leaves_a_pending_write_that_abort_removes(
    faulty: FaultyS3Storage,
) -> None:
    # The crash also kills the clean-up: nothing reaches the store after it, like a kill -9.
    faulty.faults.fail("CompleteMultipartUpload", crash=True)

    with pytest.raises(StorageError):
        await faulty.put(BUCKET, "f/v1/training.jsonl", iter_bytes(payload(2 * MIN_PART_SIZE + 1)))

    faulty.faults.crashed = False  # a later process, with a working connection
    [pending] = await pending_in(faulty)
    assert [u["UploadId"] for u in await open_uploads(faulty)] == [pending.upload_id]
    assert (pending.bucket, pending.key) == (BUCKET, "f/v1/training.jsonl")
    assert not await faulty.exists(BUCKET, "f/v1/training.jsonl")

    await faulty.abort_pending_write(pending)

    assert await open_uploads(faulty) == []
    assert await pending_in(faulty) == []


async def test_a_lost_response_fails_the_caller_though_the_write_took_effect(
    faulty: FaultyS3Storage,
) -> None:
    faulty.faults.fail("PutObject", after=True)

    with pytest.raises(StorageError, match="PutObject"):
        await faulty.put(BUCKET, "written", iter_bytes(b"landed"))

    assert await read_all(faulty, BUCKET, "written") == b"landed"


async def test_a_failed_copy_aborts_the_compose(faulty: FaultyS3Storage) -> None:
    source = payload(2 * MIN_PART_SIZE)
    await faulty.put(BUCKET, "src", iter_bytes(source))
    faulty.faults.fail("UploadPartCopy", 2)  # the first one is the store's capability probe

    with pytest.raises(StorageError, match="UploadPartCopy"):
        await faulty.compose(BUCKET, "dst", [CopyRange("src", 0, len(source)), b"tail"])

    assert faulty.server_side_copy_supported is True
    assert await open_uploads(faulty) == []
    assert not await faulty.exists(BUCKET, "dst")


def _client_error(code: str, status: int, operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


@pytest.mark.parametrize(
    ("operation", "code", "status", "reason"),
    [
        ("PutObject", "AccessDenied", 403, "unwritable"),
        ("DeleteObject", "AccessDenied", 403, "unwritable"),
        ("GetObject", "AccessDenied", 403, "unreachable"),
        ("PutObject", "XMinioStorageFull", 507, "full"),
        ("PutObject", "QuotaExceeded", 403, "full"),
        ("GetObject", "InvalidAccessKeyId", 403, "unreachable"),
        ("PutObject", "ServiceUnavailable", 503, "unreachable"),
        ("PutObject", "InvalidArgument", 400, None),
    ],
)
async def test_store_errors_carry_the_reason_an_operator_acts_on(
    faulty: FaultyS3Storage, operation: str, code: str, status: int, reason: str | None
) -> None:
    await faulty.put(BUCKET, "obj", iter_bytes(b"x"))
    faulty.faults.fail(operation, error=_client_error(code, status, operation))

    with pytest.raises(StorageError) as caught:
        if operation == "GetObject":
            await read_all(faulty, BUCKET, "obj")
        elif operation == "DeleteObject":
            await faulty.delete(BUCKET, "obj")
        else:
            await faulty.put(BUCKET, "obj", iter_bytes(b"y"))

    assert caught.value.reason == reason
    assert not isinstance(caught.value, ObjectNotFound)


async def test_probe_reports_a_store_that_refuses_writes_as_unwritable(
    faulty: FaultyS3Storage,
) -> None:
    faulty.faults.fail("PutObject", error=_client_error("AccessDenied", 403, "PutObject"))

    with pytest.raises(StorageError) as caught:
        await faulty.probe(0)

    assert caught.value.reason == "unwritable"
    await faulty.probe(0)


async def test_probe_writes_under_the_key_prefix_and_removes_what_it_wrote(
    moto: MotoServer,
) -> None:
    backend = await FaultyS3Storage.open(moto.config(key_prefix="tenant-1/"))
    try:
        await backend.probe(0)
        assert backend.faults.calls["PutObject"] == backend.faults.calls["DeleteObject"] == 2
        # A crash right after a probe's write shows where probes write.
        backend.faults.fail("PutObject", after=True, crash=True)
        with pytest.raises(StorageError):
            await backend.probe(0)
    finally:
        await backend.close()
    observer = await S3Storage.open(moto.config())
    try:
        [left] = await observer.list_keys(CONVERSATION_BUCKET)
        assert left.startswith("tenant-1/.healthz/")
        assert await observer.list_keys(TRAINING_BUCKET) == []
    finally:
        await observer.close()


# -- compose ------------------------------------------------------------------------------------

SOURCE_SIZE = 16 * MiB


async def streamed(data: bytes) -> AsyncIterator[bytes]:
    async for chunk in pieces(data, 65_536):
        yield chunk


async def test_compose_copies_a_large_range_inside_the_store(s3: S3Storage) -> None:
    source = payload(SOURCE_SIZE, seed=4)
    await s3.put(BUCKET, "v1.jsonl", iter_bytes(source))
    before = s3.stats.uploaded_bytes
    header, new, footer = b'{"header": 1}\n' * 70, payload(300_000, seed=5), b"]}\n"
    start, end = 100, SOURCE_SIZE - 100

    size = await s3.compose(
        BUCKET, "v2.jsonl", [header, CopyRange("v1.jsonl", start, end), streamed(new), footer]
    )

    expected = header + source[start:end] + new + footer
    assert size == len(expected)
    assert await read_all(s3, BUCKET, "v2.jsonl") == expected
    # The small header is padded to the 5 MiB part minimum with the range's first bytes, read
    # back; the rest of the range never leaves the store.
    padding = MIN_PART_SIZE - len(header)
    assert s3.server_side_copy_supported is True
    assert s3.stats.copied_bytes == (end - start) - padding
    assert s3.stats.uploaded_bytes - before == len(header) + padding + len(new) + len(footer)
    assert await open_uploads(s3) == []  # neither the probe nor the compose left one behind


async def test_compose_starting_with_a_range_copies_all_of_it(s3: S3Storage) -> None:
    source = payload(12 * MiB, seed=6)
    await s3.put(BUCKET, "src", iter_bytes(source))
    downloaded, uploaded = s3.stats.downloaded_bytes, s3.stats.uploaded_bytes

    await s3.compose(BUCKET, "dst", [CopyRange("src", MiB, 12 * MiB), b"tail"])

    assert s3.stats.copied_bytes == 11 * MiB
    assert s3.stats.downloaded_bytes == downloaded
    assert s3.stats.uploaded_bytes - uploaded == 4
    assert await read_all(s3, BUCKET, "dst") == source[MiB:] + b"tail"


async def test_compose_after_a_full_sized_buffer_copies_the_whole_range(
    moto: MotoServer,
) -> None:
    backend = await S3Storage.open(moto.config(composite_objects=False))  # 8 MiB parts
    try:
        source = payload(MIN_PART_SIZE + 10, seed=7)
        await backend.put(BUCKET, "src", iter_bytes(source))
        head = payload(6 * MiB, seed=8)
        uploaded = backend.stats.uploaded_bytes

        await backend.compose(BUCKET, "dst", [head, CopyRange("src", 5, MIN_PART_SIZE + 10)])

        assert backend.stats.copied_bytes == MIN_PART_SIZE + 5
        assert backend.stats.uploaded_bytes - uploaded == len(head)
        assert await read_all(backend, BUCKET, "dst") == head + source[5:]
    finally:
        await backend.close()


async def test_compose_streams_a_small_range(s3: S3Storage) -> None:
    source = payload(3 * MiB, seed=9)
    await s3.put(BUCKET, "src", iter_bytes(source))

    await s3.compose(BUCKET, "dst", [b"head", CopyRange("src", 10, 3 * MiB - 10), b"tail"])

    assert await read_all(s3, BUCKET, "dst") == b"head" + source[10:-10] + b"tail"
    assert s3.stats.copied_bytes == 0
    assert s3.server_side_copy_supported is None  # never needed to ask


async def test_compose_streams_a_range_too_short_to_pad_the_buffer_and_copy_the_rest(
    s3: S3Storage,
) -> None:
    source = payload(8 * MiB, seed=10)
    await s3.put(BUCKET, "src", iter_bytes(source))
    head = payload(MiB, seed=11)  # padding takes 4 MiB; the 4 MiB left are below the minimum

    await s3.compose(BUCKET, "dst", [head, CopyRange("src", 0, 8 * MiB)])

    assert s3.stats.copied_bytes == 0
    assert await read_all(s3, BUCKET, "dst") == head + source


async def test_compose_without_server_side_copy_streams(moto: MotoServer) -> None:
    backend = await S3Storage.open(moto.config(server_side_copy=False))
    try:
        source = payload(6 * MiB, seed=12)
        await backend.put(BUCKET, "src", iter_bytes(source))

        await backend.compose(BUCKET, "dst", [CopyRange("src", 0, 6 * MiB), b"!"])

        assert backend.stats.copied_bytes == 0
        assert await read_all(backend, BUCKET, "dst") == source + b"!"
    finally:
        await backend.close()


async def test_compose_copies_a_large_range_from_the_other_bucket_inside_the_store(
    moto: MotoServer,
) -> None:
    backend = await S3Storage.open(moto.config(key_prefix="deployment-7/", composite_objects=False))
    try:
        piece = payload(7 * MiB, seed=16)
        await backend.put(CONVERSATION_BUCKET, "c/piece.json", iter_bytes(piece))
        uploaded = backend.stats.uploaded_bytes

        await backend.compose(
            BUCKET,
            "f/v1/training.json",
            [CopyRange("c/piece.json", MiB, 7 * MiB, bucket=CONVERSATION_BUCKET), b"]"],
        )

        assert backend.server_side_copy_supported is True
        assert backend.stats.copied_bytes == 6 * MiB
        assert backend.stats.uploaded_bytes - uploaded == 1
        assert await read_all(backend, BUCKET, "f/v1/training.json") == piece[MiB:] + b"]"
        assert await backend.list_keys(CONVERSATION_BUCKET) == ["c/piece.json"]
        assert await open_uploads(backend) == []  # the probe's upload too, in either bucket
    finally:
        await backend.close()


async def test_compose_of_a_range_missing_from_the_other_bucket_fails(s3: S3Storage) -> None:
    await s3.put(BUCKET, "c/piece.json", iter_bytes(payload(6 * MiB)))  # the wrong bucket

    with pytest.raises(ObjectNotFound):
        await s3.compose(
            BUCKET, "dst", [CopyRange("c/piece.json", 0, 6 * MiB, bucket=CONVERSATION_BUCKET)]
        )
    with pytest.raises(ObjectNotFound):
        await s3.compose(
            BUCKET, "dst", [CopyRange("c/piece.json", 0, 10, bucket=CONVERSATION_BUCKET)]
        )

    assert not await s3.exists(BUCKET, "dst")
    assert await open_uploads(s3) == []


async def test_failed_compose_aborts_and_keeps_the_previous_object(s3: S3Storage) -> None:
    source = payload(12 * MiB, seed=13)
    await s3.put(BUCKET, "src", iter_bytes(source))
    await s3.put(BUCKET, "dst", iter_bytes(b"previous"))

    with pytest.raises(Boom):
        await s3.compose(
            BUCKET,
            "dst",
            [b"head", CopyRange("src", 0, 12 * MiB), failing_after(payload(6 * MiB))],
        )

    assert s3.server_side_copy_supported is True  # the range was being copied
    assert await open_uploads(s3) == []
    assert await read_all(s3, BUCKET, "dst") == b"previous"


async def test_compose_rejects_bad_ranges_and_missing_sources(s3: S3Storage) -> None:
    await s3.put(BUCKET, "src", iter_bytes(payload(6 * MiB)))

    with pytest.raises(ValueError):
        await s3.compose(BUCKET, "dst", [CopyRange("src", 0, 6 * MiB + 1)])
    with pytest.raises(ValueError):
        await s3.compose(BUCKET, "dst", [b"x", CopyRange("src", 10, 6 * MiB + 10)])
    with pytest.raises(ValueError):
        await s3.compose(BUCKET, "dst", [CopyRange("src", 5, 4)])
    with pytest.raises(ObjectNotFound):
        await s3.compose(BUCKET, "dst", [CopyRange("missing", 0, 6 * MiB)])
    with pytest.raises(ObjectNotFound):
        await s3.compose(BUCKET, "dst", [CopyRange("missing", 0, 10)])

    assert not await s3.exists(BUCKET, "dst")
    assert await open_uploads(s3) == []


async def test_compose_checks_every_key_before_reading_anything(s3: S3Storage) -> None:
    source = contract.Untouched()

    with pytest.raises(InvalidKey):
        await s3.compose(BUCKET, "dst", [source, CopyRange("../escape", 0, 1)])  # type: ignore[list-item]

    assert not source.started
    with pytest.raises(InvalidKey):
        await s3.compose(BUCKET, "../dst", [b"x"])


# -- configuration, buckets and keys ------------------------------------------------------------


async def test_keys_live_under_the_prefix_in_the_configured_buckets(moto: MotoServer) -> None:
    buckets = {CONVERSATION_BUCKET: "acme-conversations", TRAINING_BUCKET: "acme-training"}
    backend = await S3Storage.open(moto.config(buckets=buckets, key_prefix="tenant-1/"))
    try:
        await backend.put(TRAINING_BUCKET, "user-1/file.json", iter_bytes(b"{}"))
        await backend.put(CONVERSATION_BUCKET, "c.json", iter_bytes(b"[]"))

        assert backend.url == "s3://acme-conversations,acme-training/tenant-1/"
        client = backend._client
        listed = await client.list_objects_v2(Bucket="acme-training")
        assert [o["Key"] for o in listed["Contents"]] == ["tenant-1/user-1/file.json"]
        listed = await client.list_objects_v2(Bucket="acme-conversations")
        assert [o["Key"] for o in listed["Contents"]] == ["tenant-1/c.json"]
        assert await read_all(backend, TRAINING_BUCKET, "user-1/file.json") == b"{}"
    finally:
        await backend.close()


async def test_keys_too_long_with_the_prefix_are_rejected(moto: MotoServer) -> None:
    backend = await S3Storage.open(moto.config(key_prefix="p/"))
    try:
        with pytest.raises(InvalidKey):
            await backend.exists(BUCKET, "k" * 1023)
    finally:
        await backend.close()


async def test_check_names_missing_buckets_and_open_can_create_them(moto: MotoServer) -> None:
    backend = await S3Storage.open(moto.config(create_buckets=False))
    try:
        with pytest.raises(StorageError, match=r"conversation-files.*training-files"):
            await backend.check()
        assert await backend.create_missing_buckets() == list(BUCKETS)
        await backend.check()
    finally:
        await backend.close()

    again = await S3Storage.open(moto.config(create_buckets=True))  # already there: fine
    await again.check()
    await again.close()


async def test_missing_bucket_is_a_storage_error_not_a_missing_object(moto: MotoServer) -> None:
    backend = await S3Storage.open(moto.config(create_buckets=False))
    try:
        with pytest.raises(StorageError, match="bucket does not exist") as caught:
            await read_all(backend, BUCKET, "x")
        assert not isinstance(caught.value, ObjectNotFound)
    finally:
        await backend.close()


async def test_unreachable_store_is_a_storage_error() -> None:
    config = S3Config(
        endpoint_url="http://127.0.0.1:9",
        access_key_id="id",
        secret_access_key="very-secret-value",
        max_attempts=1,
        connect_timeout=2,
    )
    backend = await S3Storage.open(config)
    try:
        with pytest.raises(StorageError) as caught:
            await backend.check()
        assert "very-secret-value" not in str(caught.value)
        assert caught.value.reason == "unreachable"
        with pytest.raises(StorageError) as caught:
            await backend.exists(BUCKET, "x")
        assert caught.value.reason == "unreachable"
        with pytest.raises(StorageError) as caught:
            await backend.probe(0)
        assert caught.value.reason == "unreachable"
    finally:
        await backend.close()


# -- download links: presigned GET URLs ---------------------------------------------------------


async def test_presigned_download_works_without_credentials(s3: S3Storage) -> None:
    await s3.put(BUCKET, "user-1/v3.jsonl", iter_bytes(b'{"a": 1}\n'))
    before = datetime.now(UTC)

    link = await s3.download_link(
        BUCKET,
        "user-1/v3.jsonl",
        filename="Résumé training v3.jsonl",
        content_type="application/x-ndjson",
        ttl_seconds=600,
        base_url=APP_URL,
    )

    assert link.url.startswith(f"{s3.config.endpoint_url}/")
    assert link.filename == "Résumé training v3.jsonl"
    assert link.expires_in_seconds == 600
    assert before + timedelta(seconds=598) <= link.expires_at <= before + timedelta(seconds=601)
    async with http_client() as client:
        response = await client.get(link.url)
    assert response.status_code == 200
    assert response.content == b'{"a": 1}\n'
    assert response.headers["content-type"] == "application/x-ndjson"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="Resume training v3.jsonl"')
    assert "filename*=UTF-8''R%C3%A9sum%C3%A9%20training%20v3.jsonl" in disposition


async def test_presigned_download_validates_its_arguments(s3: S3Storage) -> None:
    with pytest.raises(InvalidKey):
        await presign(s3, "../x", ttl_seconds=60)
    with pytest.raises(ValueError):
        await presign(s3, "x", ttl_seconds=0)
    with pytest.raises(ValueError):
        await presign(s3, "x", filename="", ttl_seconds=60)


# -- rclone serve s3: signatures, expiry, restarts, no UploadPartCopy ---------------------------


def tampered(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


async def test_rclone_presigned_download_works_and_tampering_is_refused(
    rclone_storage: S3Storage,
) -> None:
    await rclone_storage.put(BUCKET, "user-1/v1.json", iter_bytes(b'{"ok": true}'))
    await rclone_storage.put(BUCKET, "user-2/v1.json", iter_bytes(b'{"other": true}'))
    link = await presign(rclone_storage, "user-1/v1.json", filename="v1.json")

    async with http_client() as client:
        ok = await client.get(link.url)
        other_key = await client.get(link.url.replace("user-1", "user-2"))
        other_name = await client.get(
            tampered(link.url, **{"response-content-disposition": "inline"})
        )
        longer = await client.get(tampered(link.url, **{"X-Amz-Expires": "604800"}))
        unsigned = await client.get(link.url.split("?")[0])

    assert ok.status_code == 200
    assert ok.content == b'{"ok": true}'
    assert ok.headers["content-disposition"] == 'attachment; filename="v1.json"'
    assert ok.headers["content-type"] == "application/json"
    for refused in (other_key, other_name, longer, unsigned):
        assert refused.status_code in (400, 403), refused.text
        assert b"other" not in refused.content


async def test_rclone_presigned_url_for_a_public_endpoint(
    rclone_server: RcloneS3Server,
) -> None:
    public = f"http://localhost:{rclone_server.port}"
    backend = await S3Storage.open(rclone_server.config(public_endpoint_url=public))
    try:
        await backend.put(BUCKET, "f.json", iter_bytes(b"{}"))
        link = await presign(backend, "f.json", filename="f.json")
        assert link.url.startswith(f"{public}/")
        async with http_client() as client:
            signed_for_public = await client.get(link.url)
            # The host is signed: the same URL pointed at another address is refused.
            moved = await client.get(link.url.replace(public, rclone_server.endpoint_url))
        assert signed_for_public.status_code == 200
        assert signed_for_public.content == b"{}"
        assert moved.status_code == 403
    finally:
        await backend.close()


async def test_rclone_refuses_an_expired_presigned_url(rclone_storage: S3Storage) -> None:
    await rclone_storage.put(BUCKET, "old.json", iter_bytes(b"{}"))
    # Signed an hour and a minute ago, valid for an hour.
    signed_at = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1, minutes=1)
    with mock.patch("botocore.auth.get_current_datetime", return_value=signed_at):
        link = await presign(rclone_storage, "old.json", filename="old.json")
    assert f"X-Amz-Date={signed_at:%Y%m%dT%H%M}" in link.url

    async with http_client() as client:
        response = await client.get(link.url)

    assert response.status_code in (400, 403), response.text


async def test_rclone_refuses_wrong_credentials(rclone_server: RcloneS3Server) -> None:
    backend = await S3Storage.open(
        rclone_server.config(secret_access_key="not-the-right-secret", create_buckets=False)
    )
    try:
        with pytest.raises(StorageError) as caught:
            await backend.put(BUCKET, "x", iter_bytes(b"x"))
        assert "not-the-right-secret" not in str(caught.value)
        with pytest.raises(StorageError):
            await backend.check()
        link = await presign(backend, "x")
        async with http_client() as client:
            assert (await client.get(link.url)).status_code == 403
    finally:
        await backend.close()


async def test_rclone_data_survives_a_restart(private_rclone_server: RcloneS3Server) -> None:
    server = private_rclone_server
    data = payload(2 * MIN_PART_SIZE + 10, seed=14)
    with server:
        config = server.config()
        backend = await S3Storage.open(config, part_size=MIN_PART_SIZE)
        try:
            await backend.put(BUCKET, "kept.jsonl", pieces(data))
            await backend.put(CONVERSATION_BUCKET, "c.json", iter_bytes(b"[]"))
            server.restart()  # same port: the open client reconnects
            assert await read_all(backend, BUCKET, "kept.jsonl") == data
        finally:
            await backend.close()

    with server:
        reopened = await S3Storage.open(config)
        try:
            await reopened.check()
            assert await reopened.size(BUCKET, "kept.jsonl") == len(data)
            assert await read_all(reopened, BUCKET, "kept.jsonl") == data
            assert await read_all(reopened, CONVERSATION_BUCKET, "c.json") == b"[]"
        finally:
            await reopened.close()


async def test_rclone_compose_falls_back_to_streaming_without_upload_part_copy(
    rclone_storage: S3Storage,
) -> None:
    source = payload(12 * MiB, seed=15)
    await rclone_storage.put(BUCKET, "src", iter_bytes(source))

    await rclone_storage.compose(
        BUCKET, "dst", [b"head", CopyRange("src", 0, 12 * MiB), streamed(b"new"), b"tail"]
    )

    assert rclone_storage.server_side_copy_supported is False
    assert rclone_storage.stats.copied_bytes == 0
    assert await read_all(rclone_storage, BUCKET, "dst") == b"head" + source + b"newtail"
    assert await open_uploads(rclone_storage) == []


async def test_rclone_compose_streams_a_range_from_the_other_bucket(
    rclone_storage: S3Storage,
) -> None:
    piece = payload(6 * MiB, seed=17)
    await rclone_storage.put(CONVERSATION_BUCKET, "c/piece.json", iter_bytes(piece))

    await rclone_storage.compose(
        BUCKET, "dst", [b"[", CopyRange("c/piece.json", 0, 6 * MiB, bucket=CONVERSATION_BUCKET)]
    )

    assert await read_all(rclone_storage, BUCKET, "dst") == b"[" + piece
    assert await open_uploads(rclone_storage) == []


async def test_rclone_failed_multipart_upload_leaves_nothing(rclone_server: RcloneS3Server) -> None:
    backend = await S3Storage.open(rclone_server.config(), part_size=MIN_PART_SIZE)
    try:
        with pytest.raises(Boom):
            await backend.put(BUCKET, "never", failing_after(payload(11 * MiB)))
        assert backend.stats.aborted_uploads == 1
        assert await open_uploads(backend) == []
        assert not await backend.exists(BUCKET, "never")
    finally:
        await backend.close()
