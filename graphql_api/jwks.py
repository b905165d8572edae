"""Public signing keys from a JWKS (Supabase's asymmetric JWT signing keys), selected by `kid`.

A key's algorithm comes from the key itself (`kty`, `crv`, and `alg` when present): RSA keys
verify RS256, P-256 keys ES256, and nothing else is taken from a key set. Symmetric (`oct`)
keys are never used, so a public URL can never supply an HMAC secret.

The set is loaded once at start (`load_key_set`, which may block: nothing is served yet), then
kept by `JwksCache`, which refreshes it without blocking the event loop:

- periodically: a request that finds the set older than the refresh interval starts a refresh
  in the background and is itself checked with the keys at hand;
- when a token names an unknown `kid` (the issuer may have added a key): the request waits for
  one refresh, but such refreshes start at most once per cooldown, so a flood of made-up kids
  costs the issuer one fetch per cooldown;
- every fetch is bounded by a timeout, and a failed one keeps the last good set (and says so in
  the log).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

log = logging.getLogger(__name__)

RS256 = "RS256"
ES256 = "ES256"
ASYMMETRIC_ALGORITHMS = (RS256, ES256)
# Seconds between two refreshes caused by unknown kids (and before a failed refresh is retried).
UNKNOWN_KID_COOLDOWN = 30.0
# Real key sets are a few KiB; anything this large is not one, and is not read into memory.
MAX_JWKS_BYTES = 1024 * 1024
# RSA keys shorter than this are breakable; an issuer publishing one is misconfigured.
MIN_RSA_BITS = 2048

PublicKey = RSAPublicKey | EllipticCurvePublicKey


class JwksError(Exception):
    """The key set could not be fetched, or what was fetched is not a JWKS."""


class _UnusableKey(Exception):
    """One entry of a key set that cannot verify RS256 or ES256 tokens (the reason)."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str  # RS256 or ES256, decided by the key
    key: PublicKey = field(repr=False)


@dataclass(frozen=True)
class KeySet:
    keys: Mapping[str, SigningKey]
    # Why entries of the document were left out, for the log.
    skipped: tuple[str, ...] = ()

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(sorted(self.keys))


# -- reading a key set -------------------------------------------------------------------------


def parse_key_set(document: bytes) -> KeySet:
    """The usable keys of a JWKS document; an unusable entry is skipped with its reason (the
    issuer may publish kinds of keys this server does not verify), a document that is not a
    JWKS at all raises `JwksError`."""
    try:
        data = json.loads(document)
    except ValueError:  # also UnicodeDecodeError
        raise JwksError("the document is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise JwksError("the document is not a JWKS (no 'keys' list)")
    keys: dict[str, SigningKey] = {}
    skipped: list[str] = []
    for index, jwk in enumerate(data["keys"]):
        try:
            key = _signing_key(jwk)
        except _UnusableKey as reason:
            skipped.append(f"key {index}: {reason}")
            continue
        if key.kid in keys:
            skipped.append(f"key {index}: kid {key.kid!r} repeats an earlier key's")
            continue
        keys[key.kid] = key
    return KeySet(MappingProxyType(keys), tuple(skipped))


def _signing_key(jwk: object) -> SigningKey:
    if not isinstance(jwk, dict):
        raise _UnusableKey("not a JSON object")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _UnusableKey("no kid, so no token can name it")
    if jwk.get("use", "sig") != "sig":
        raise _UnusableKey(f"kid {kid!r} is not a signing key (use {jwk.get('use')!r})")
    if "d" in jwk:
        # Verifying needs only the public half; a set carrying the private one is a leak.
        raise _UnusableKey(f"kid {kid!r} contains private key material")
    algorithm = _algorithm_of(kid, jwk)
    try:
        key = jwt.PyJWK(jwk, algorithm).key
    except jwt.PyJWTError as error:
        raise _UnusableKey(f"kid {kid!r} is not a valid {algorithm} key ({error})") from None
    _check_strength(kid, key)
    return SigningKey(kid, algorithm, key)


def _algorithm_of(kid: str, jwk: Mapping[str, Any]) -> str:
    """The algorithm the key's type implies; a declared `alg` must agree with it."""
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "RSA":
        natural = RS256
    elif kty == "EC" and crv == "P-256":
        natural = ES256
    else:
        raise _UnusableKey(f"kid {kid!r} has kty {kty!r}: only RSA and EC P-256 keys are used")
    declared = jwk.get("alg", natural)
    if declared != natural:
        raise _UnusableKey(f"kid {kid!r} declares alg {declared!r}, which its kty does not allow")
    return natural


def _check_strength(kid: str, key: object) -> None:
    if isinstance(key, RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise _UnusableKey(f"kid {kid!r} is a {key.key_size}-bit RSA key (too short)")
    elif not isinstance(key, EllipticCurvePublicKey):
        raise _UnusableKey(f"kid {kid!r} is not a public key")


# -- fetching ----------------------------------------------------------------------------------


async def fetch_key_set(url: str, timeout: float) -> KeySet:
    """The key set at an http(s):// or file:// URL; `timeout` bounds the whole fetch."""
    try:
        async with asyncio.timeout(timeout):
            document = await _read(url, timeout)
    except TimeoutError:
        raise JwksError(f"no answer within {timeout:g} s") from None
    return parse_key_set(document)


def load_key_set(url: str, timeout: float) -> KeySet:
    """`fetch_key_set`, blocking, for the start: it runs on its own event loop in a helper
    thread, so it works whether or not the caller is inside a loop (uvicorn calls app factories
    inside its loop, before it serves anything)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="jwks-load") as pool:
        return pool.submit(lambda: asyncio.run(fetch_key_set(url, timeout))).result()


async def _read(url: str, timeout: float) -> bytes:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return await asyncio.to_thread(_read_file, Path(unquote(parsed.path)))
    return await _download(url, timeout)


def _read_file(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            document = f.read(MAX_JWKS_BYTES + 1)
    except OSError as error:
        raise JwksError(f"cannot read {path}: {error.strerror or error}") from None
    if len(document) > MAX_JWKS_BYTES:
        raise JwksError(f"{path} is larger than {MAX_JWKS_BYTES} bytes")
    return document


async def _download(url: str, timeout: float) -> bytes:
    # trust_env=False: the server reads its environment in config.py only (no proxy variables).
    try:
        async with (
            httpx.AsyncClient(timeout=timeout, trust_env=False) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise JwksError(f"HTTP {response.status_code}")
            return await _bounded_body(response)
    except httpx.HTTPError as error:
        raise JwksError(_one_line(error)) from None


async def _bounded_body(response: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_JWKS_BYTES:
            raise JwksError(f"the answer is larger than {MAX_JWKS_BYTES} bytes")
    return bytes(body)


def _one_line(error: Exception) -> str:
    """The error as one line (config errors are one line), named by its type when empty."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# -- the cache ---------------------------------------------------------------------------------

Fetch = Callable[[str, float], Awaitable[KeySet]]


class JwksCache:
    """The last good key set of one URL, refreshed as the module docstring says.

    `clock` (monotonic seconds) and `fetch` are parameters so the refresh rules can be tested
    without waiting.
    """

    def __init__(
        self,
        url: str,
        keys: KeySet,
        *,
        refresh_interval: float,
        timeout: float,
        cooldown: float = UNKNOWN_KID_COOLDOWN,
        clock: Callable[[], float] = time.monotonic,
        fetch: Fetch = fetch_key_set,
    ) -> None:
        self.url = url
        self._keys = keys
        self._refresh_interval = refresh_interval
        self._timeout = timeout
        self._cooldown = cooldown
        self._clock = clock
        self._fetch = fetch
        self._loaded_at = self._attempted_at = clock()
        self._kid_refreshed_at = -math.inf  # the first unknown kid may refresh at once
        self._refreshing: asyncio.Task[None] | None = None

    @property
    def keys(self) -> KeySet:
        return self._keys

    async def key_for(self, kid: str) -> SigningKey | None:
        """The key named `kid`, after one refresh if it is unknown and the cooldown allows;
        None when the issuer does not (or no longer) publish it."""
        self._refresh_if_stale()
        key = self._keys.keys.get(kid)
        if key is not None:
            return key
        refresh = self._refresh_for_unknown_kid()
        if refresh is None:
            return None
        # Shielded: one request giving up must not cancel the refresh others are waiting for.
        await asyncio.shield(refresh)
        return self._keys.keys.get(kid)

    def _refresh_if_stale(self) -> None:
        now = self._clock()
        stale = now - self._loaded_at >= self._refresh_interval
        # After a failure, retry after the cooldown (or the interval, if shorter) rather than on
        # every request; after a success the last attempt is the load, so this always holds.
        retry_after = min(self._cooldown, self._refresh_interval)
        if stale and now - self._attempted_at >= retry_after:
            self._start_refresh()

    def _refresh_for_unknown_kid(self) -> asyncio.Task[None] | None:
        if self._refreshing is not None:  # already under way: waiting for it costs nothing
            return self._refreshing
        now = self._clock()
        if now - self._kid_refreshed_at < self._cooldown:
            return None
        self._kid_refreshed_at = now
        return self._start_refresh()

    def _start_refresh(self) -> asyncio.Task[None]:
        if self._refreshing is None:
            self._attempted_at = self._clock()
            # Kept in an attribute: the event loop holds only a weak reference to tasks.
            self._refreshing = asyncio.create_task(self._refresh())
        return self._refreshing

    async def _refresh(self) -> None:
        try:
            fresh = await self._fetch(self.url, self._timeout)
        except Exception as error:  # a bug in a fetch must not leave the cache stuck either
            self._keep_old_keys(error)
        else:
            log_changes(self.url, self._keys, fresh)
            self._keys = fresh
            self._loaded_at = self._clock()
        finally:
            self._refreshing = None

    def _keep_old_keys(self, error: Exception) -> None:
        reason = str(error) if isinstance(error, JwksError) else _one_line(error)
        age = self._clock() - self._loaded_at
        log.warning(
            "JWT_JWKS_URL %s: refreshing the signing keys failed (%s); still using the %d "
            "keys loaded %.0f s ago",
            self.url,
            reason,
            len(self._keys.keys),
            age,
        )


def log_changes(url: str, old: KeySet | None, new: KeySet) -> None:
    """Say which kids a load brought or dropped, and which entries it skipped and why."""
    old_kids = set(old.kids) if old else set()
    if old is None or old_kids != set(new.kids):
        added = sorted(set(new.kids) - old_kids)
        removed = sorted(old_kids - set(new.kids))
        log.info(
            "JWT_JWKS_URL %s: %d signing keys (added %s; removed %s)",
            url,
            len(new.keys),
            ", ".join(added) or "none",
            ", ".join(removed) or "none",
        )
    if new.skipped and (old is None or old.skipped != new.skipped):
        log.warning("JWT_JWKS_URL %s: keys left out: %s", url, "; ".join(new.skipped))
