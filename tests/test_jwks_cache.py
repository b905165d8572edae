"""The JWKS key set without the app: which keys are used, how fetches are bounded, and when the
cache refreshes (on a fake clock, so no test waits for time to pass)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from graphql_api.jwks import (
    MAX_JWKS_BYTES,
    UNKNOWN_KID_COOLDOWN,
    JwksCache,
    JwksError,
    KeySet,
    fetch_key_set,
    load_key_set,
    parse_key_set,
)

from .jwks_server import IssuerKey, JwksServer, jwks

REFRESH_INTERVAL = 600.0


@pytest.fixture(scope="module")
def rsa_key() -> IssuerKey:
    return IssuerKey.rsa("rsa-1")


@pytest.fixture(scope="module")
def ec_key() -> IssuerKey:
    return IssuerKey.ec("ec-1")


def document(*entries: dict[str, Any]) -> bytes:
    return json.dumps({"keys": list(entries)}).encode()


# -- which keys are used -----------------------------------------------------------------------


def test_the_algorithm_comes_from_the_key(rsa_key: IssuerKey, ec_key: IssuerKey) -> None:
    bare = [
        {k: v for k, v in key.jwk().items() if k not in ("alg", "use")} for key in (rsa_key, ec_key)
    ]
    keys = parse_key_set(document(*bare))
    assert keys.kids == ("ec-1", "rsa-1")
    assert keys.keys["rsa-1"].algorithm == "RS256"
    assert isinstance(keys.keys["rsa-1"].key, rsa.RSAPublicKey)
    assert keys.keys["ec-1"].algorithm == "ES256"
    assert isinstance(keys.keys["ec-1"].key, ec.EllipticCurvePublicKey)
    assert keys.skipped == ()


def test_unusable_entries_are_skipped_with_their_reason(
    rsa_key: IssuerKey, ec_key: IssuerKey
) -> None:
    good = rsa_key.jwk()
    p384 = IssuerKey("p384", "ES384", ec.generate_private_key(ec.SECP384R1())).jwk()
    short = IssuerKey("short", "RS256", rsa.generate_private_key(65537, 1024)).jwk()
    private = IssuerKey.ec("private")
    private_jwk = {**private.jwk(), "d": "c2VjcmV0"}
    entries: list[Any] = [
        good,
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0LXNoYXJlZC1ieS1ldmVyeW9uZQ"},
        {**p384, "alg": "ES384"},
        {**ec_key.jwk(), "kid": "claims-rs256", "alg": "RS256"},
        {**ec_key.jwk(), "kid": "encryption", "use": "enc"},
        {k: v for k, v in ec_key.jwk().items() if k != "kid"},
        private_jwk,
        short,
        {**good, "kid": "broken", "n": 12345},
        {**ec_key.jwk(), "kid": "rsa-1"},
        "not an object",
    ]
    keys = parse_key_set(document(*entries))
    assert keys.kids == ("rsa-1",)
    reasons = "\n".join(keys.skipped)
    for expected in (
        "kid 'hmac' has kty 'oct'",
        "kid 'p384' has kty 'EC'",
        "kid 'claims-rs256' declares alg 'RS256'",
        "kid 'encryption' is not a signing key",
        "no kid",
        "kid 'private' contains private key material",
        "kid 'short' is a 1024-bit RSA key",
        "kid 'broken' is not a valid RS256 key",
        "kid 'rsa-1' repeats an earlier key's",
        "not a JSON object",
    ):
        assert expected in reasons
    assert len(keys.skipped) == len(entries) - 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[]", "no 'keys' list"),
        (b'{"keys": {}}', "no 'keys' list"),
    ],
)
def test_a_document_that_is_not_a_jwks_is_an_error(body: bytes, reason: str) -> None:
    with pytest.raises(JwksError, match=reason):
        parse_key_set(body)


def test_an_empty_key_set_is_a_key_set() -> None:
    assert parse_key_set(b'{"keys": []}').keys == {}


# -- fetching ----------------------------------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


async def test_a_fetch_is_bounded_by_the_timeout(silent_port: int) -> None:
    with pytest.raises(JwksError, match=r"no answer within 0\.2 s|ReadTimeout"):
        await fetch_key_set(f"http://127.0.0.1:{silent_port}/jwks.json", 0.2)


def test_the_start_load_is_bounded_too(silent_port: int) -> None:
    with pytest.raises(JwksError):
        load_key_set(f"http://127.0.0.1:{silent_port}/jwks.json", 0.2)


async def test_an_oversized_answer_is_not_read(rsa_key: IssuerKey) -> None:
    server = JwksServer(b" " * (MAX_JWKS_BYTES + 1))
    try:
        with pytest.raises(JwksError, match="larger than"):
            await fetch_key_set(server.url, 5)
    finally:
        server.stop()


async def test_load_key_set_works_inside_a_running_event_loop(rsa_key: IssuerKey) -> None:
    """uvicorn calls app factories (`serve --workers N`) inside its loop."""
    server = JwksServer(jwks(rsa_key))
    try:
        assert load_key_set(server.url, 5).kids == ("rsa-1",)
    finally:
        server.stop()


# -- when the cache refreshes ------------------------------------------------------------------


class FakeIssuer:
    """`fetch` for a `JwksCache`: answers `keys` (or raises `error`), counting the calls; while
    `hold` is cleared, fetches wait for it."""

    def __init__(self, keys: KeySet) -> None:
        self.keys = keys
        self.error: Exception | None = None
        self.calls = 0
        self.hold = asyncio.Event()
        self.hold.set()

    async def fetch(self, url: str, timeout: float) -> KeySet:
        self.calls += 1
        await self.hold.wait()
        if self.error is not None:
            raise self.error
        return self.keys


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def key_set(*keys: IssuerKey) -> KeySet:
    return parse_key_set(jwks(*keys))


def cache_of(keys: KeySet, issuer: FakeIssuer, clock: Clock) -> JwksCache:
    return JwksCache(
        "https://issuer.example/jwks.json",
        keys,
        refresh_interval=REFRESH_INTERVAL,
        timeout=5,
        clock=clock,
        fetch=issuer.fetch,
    )


async def settle() -> None:
    """Let a background refresh (a fake fetch, which does not wait) run to its end."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_an_unknown_kid_refreshes_at_most_once_per_cooldown(
    clock: Clock, rsa_key: IssuerKey, ec_key: IssuerKey
) -> None:
    issuer = FakeIssuer(key_set(rsa_key))
    cache = cache_of(key_set(rsa_key), issuer, clock)
    assert await cache.key_for("unknown") is None
    assert issuer.calls == 1
    clock.now += UNKNOWN_KID_COOLDOWN - 1
    issuer.keys = key_set(rsa_key, ec_key)
    assert await cache.key_for("ec-1") is None  # added meanwhile, but the cooldown runs
    assert issuer.calls == 1
    clock.now += 1
    key = await cache.key_for("ec-1")
    assert key is not None and key.algorithm == "ES256"
    assert issuer.calls == 2


async def test_concurrent_unknown_kids_share_one_fetch(
    clock: Clock, rsa_key: IssuerKey, ec_key: IssuerKey
) -> None:
    issuer = FakeIssuer(key_set(rsa_key, ec_key))
    cache = cache_of(key_set(rsa_key), issuer, clock)
    issuer.hold.clear()
    waiting = [asyncio.create_task(cache.key_for(kid)) for kid in ("ec-1", "x", "y") * 5]
    await settle()
    issuer.hold.set()
    found = await asyncio.gather(*waiting)
    assert issuer.calls == 1
    assert [key.kid if key else None for key in found[:3]] == ["ec-1", None, None]


async def test_a_stale_set_is_refreshed_in_the_background(
    clock: Clock, rsa_key: IssuerKey, ec_key: IssuerKey
) -> None:
    issuer = FakeIssuer(key_set(ec_key))  # the issuer has retired rsa-1
    cache = cache_of(key_set(rsa_key), issuer, clock)
    clock.now += REFRESH_INTERVAL - 1
    assert await cache.key_for("rsa-1") is not None
    await settle()
    assert issuer.calls == 0
    clock.now += 1
    issuer.hold.clear()
    # The request that finds the set stale does not wait for the issuer.
    assert await cache.key_for("rsa-1") is not None
    await settle()
    assert issuer.calls == 1
    issuer.hold.set()
    await settle()
    assert cache.keys.kids == ("ec-1",)
    assert await cache.key_for("rsa-1") is None  # retired: refused from now on
    assert issuer.calls == 2  # rsa-1 is unknown now, which may refresh once


async def test_a_failed_refresh_keeps_the_keys_and_is_retried_after_the_cooldown(
    clock: Clock, rsa_key: IssuerKey, ec_key: IssuerKey, caplog: pytest.LogCaptureFixture
) -> None:
    issuer = FakeIssuer(key_set(rsa_key, ec_key))
    issuer.error = JwksError("HTTP 503")
    cache = cache_of(key_set(rsa_key), issuer, clock)
    clock.now += REFRESH_INTERVAL
    with caplog.at_level(logging.WARNING, logger="graphql_api.jwks"):
        assert await cache.key_for("rsa-1") is not None
        await settle()
    assert issuer.calls == 1
    assert "refreshing the signing keys failed (HTTP 503); still using the 1 keys" in caplog.text
    clock.now += UNKNOWN_KID_COOLDOWN - 1
    assert await cache.key_for("rsa-1") is not None
    await settle()
    assert issuer.calls == 1  # not on every request while the issuer is down
    issuer.error = None
    clock.now += 1
    assert await cache.key_for("rsa-1") is not None
    await settle()
    assert issuer.calls == 2
    assert cache.keys.kids == ("ec-1", "rsa-1")


async def test_an_unexpected_fetch_error_keeps_the_keys_too(
    clock: Clock, rsa_key: IssuerKey, caplog: pytest.LogCaptureFixture
) -> None:
    issuer = FakeIssuer(key_set(rsa_key))
    issuer.error = RuntimeError("a bug")
    cache = cache_of(key_set(rsa_key), issuer, clock)
    with caplog.at_level(logging.WARNING, logger="graphql_api.jwks"):
        assert await cache.key_for("other") is None
    assert "(RuntimeError: a bug)" in caplog.text
    assert cache.keys.kids == ("rsa-1",)


async def test_a_waiter_that_gives_up_does_not_cancel_the_refresh(
    clock: Clock, rsa_key: IssuerKey, ec_key: IssuerKey
) -> None:
    issuer = FakeIssuer(key_set(rsa_key, ec_key))
    cache = cache_of(key_set(rsa_key), issuer, clock)
    issuer.hold.clear()
    impatient = asyncio.create_task(cache.key_for("ec-1"))
    await settle()
    impatient.cancel()
    await settle()
    issuer.hold.set()
    await settle()
    assert cache.keys.kids == ("ec-1", "rsa-1")


async def test_a_refresh_interval_shorter_than_the_cooldown_is_kept(
    clock: Clock, rsa_key: IssuerKey
) -> None:
    issuer = FakeIssuer(key_set(rsa_key))
    cache = JwksCache(
        "file:///jwks.json",
        key_set(rsa_key),
        refresh_interval=5,
        timeout=1,
        clock=clock,
        fetch=issuer.fetch,
    )
    for expected_calls in (1, 2, 3):
        clock.now += 5
        assert await cache.key_for("rsa-1") is not None
        await settle()
        assert issuer.calls == expected_calls
