"""RS256 and ES256 bearer tokens verified with keys from a JWKS, through the app over HTTP, the
JWKS served by a real HTTP server on 127.0.0.1 that the tests rotate, break and stop."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import jwt
import pytest

from graphql_api.app import create_app
from graphql_api.auth import mint_token
from graphql_api.config import ConfigError, Settings
from graphql_api.services import Services

from .conftest import make_settings
from .jwks_server import USER, IssuerKey, JwksServer, jwks, payload

ISSUER = "https://project-ref.supabase.co/auth/v1"


@pytest.fixture(scope="module")
def rsa_key() -> IssuerKey:
    return IssuerKey.rsa("rsa-1")


@pytest.fixture(scope="module")
def ec_key() -> IssuerKey:
    return IssuerKey.ec("ec-1")


@pytest.fixture(scope="module")
def new_key() -> IssuerKey:
    """The key an issuer rotates in."""
    return IssuerKey.ec("ec-2")


@pytest.fixture
def issuer(rsa_key: IssuerKey, ec_key: IssuerKey) -> Iterator[JwksServer]:
    server = JwksServer(jwks(rsa_key, ec_key))
    yield server
    server.stop()


def jwks_settings(pg_data_dir: Path, tmp_path: Path, url: str, **env: str) -> Settings:
    return make_settings(pg_data_dir, tmp_path / "storage", JWT_JWKS_URL=url, **env)


@asynccontextmanager
async def serving(settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(settings, services))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def client(
    pg_data_dir: Path, tmp_path: Path, issuer: JwksServer, services: Services
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the issuer's JWKS and Supabase's audience and issuer configured."""
    settings = jwks_settings(
        pg_data_dir, tmp_path, issuer.url, JWT_AUDIENCE="authenticated", JWT_ISSUER=ISSUER
    )
    async with serving(settings, services) as client:
        yield client


SUPABASE_CLAIMS = {"aud": "authenticated", "iss": ISSUER, "role": "authenticated"}


def supabase(claims: dict[str, Any] | None = None) -> dict[str, Any]:
    return {**SUPABASE_CLAIMS, **(claims or {})}


async def viewer(client: httpx.AsyncClient, token: str) -> str:
    """The viewer's id the server answers for `token`, or its UNAUTHENTICATED message (which
    must not repeat the token)."""
    response = await client.post(
        "/graphql",
        json={"query": "{ viewer { id } }"},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json()
    if body.get("data") and body["data"].get("viewer"):
        return str(body["data"]["viewer"]["id"])
    [error] = body["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert token not in error["message"]
    assert token[:20] not in error["message"]
    return str(error["message"])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_secret(secret: bytes, kid: str) -> str:
    """An HS256 token whose HMAC secret is `secret`, made by hand: PyJWT refuses to sign with
    a PEM as HMAC secret, precisely to prevent this attack."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = _b64(json.dumps(payload(supabase())).encode())
    signature = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


# -- accepted ----------------------------------------------------------------------------------


async def test_rs256_and_es256_tokens_are_accepted(
    client: httpx.AsyncClient, rsa_key: IssuerKey, ec_key: IssuerKey
) -> None:
    assert await viewer(client, rsa_key.token(supabase())) == str(USER)
    assert await viewer(client, ec_key.token(supabase())) == str(USER)


async def test_hs256_tokens_are_still_accepted_beside_the_jwks(
    pg_data_dir: Path, tmp_path: Path, issuer: JwksServer, services: Services
) -> None:
    settings = jwks_settings(pg_data_dir, tmp_path, issuer.url)
    async with serving(settings, services) as client:
        token = mint_token(USER, secret=settings.jwt_secret)
        assert await viewer(client, token) == str(USER)
        assert jwt.get_unverified_header(token)["alg"] == "HS256"


# -- rotation ----------------------------------------------------------------------------------


async def test_an_unknown_kid_refreshes_once_and_a_rotated_in_key_is_accepted(
    client: httpx.AsyncClient,
    issuer: JwksServer,
    rsa_key: IssuerKey,
    ec_key: IssuerKey,
    new_key: IssuerKey,
) -> None:
    assert issuer.hits == 1  # loaded at start
    issuer.serve(rsa_key, ec_key, new_key)
    assert await viewer(client, new_key.token(supabase())) == str(USER)
    assert issuer.hits == 2
    # Known now: no more fetches, and the other keys still verify.
    assert await viewer(client, new_key.token(supabase())) == str(USER)
    assert await viewer(client, rsa_key.token(supabase())) == str(USER)
    assert issuer.hits == 2


async def test_a_removed_keys_tokens_are_refused_after_the_refresh(
    client: httpx.AsyncClient, issuer: JwksServer, rsa_key: IssuerKey, new_key: IssuerKey
) -> None:
    old_token = rsa_key.token(supabase())
    assert await viewer(client, old_token) == str(USER)
    issuer.serve(new_key)  # rsa-1 retired, ec-1 revoked
    assert await viewer(client, new_key.token(supabase())) == str(USER)
    assert issuer.hits == 2
    assert "signed with a key this server does not know" in await viewer(client, old_token)


async def test_a_flood_of_unknown_kids_costs_the_issuer_one_fetch(
    client: httpx.AsyncClient, issuer: JwksServer, rsa_key: IssuerKey
) -> None:
    forged = [rsa_key.token(supabase(), kid=f"made-up-{uuid4()}") for _ in range(20)]
    messages = await asyncio.gather(*(viewer(client, token) for token in forged))
    assert all("a key this server does not know" in message for message in messages)
    assert issuer.hits == 2  # the start, and one refresh for all of them
    assert "does not know" in await viewer(client, forged[0])
    assert issuer.hits == 2
    assert await viewer(client, rsa_key.token(supabase())) == str(USER)


# -- refused -----------------------------------------------------------------------------------


async def test_an_hs256_token_signed_with_the_public_key_is_refused(
    client: httpx.AsyncClient, rsa_key: IssuerKey, ec_key: IssuerKey
) -> None:
    """Algorithm confusion: a verifier that let the token pick the algorithm would check this
    HMAC with the public key as secret, and accept it. Here HS256 means JWT_SECRET, always."""
    for key in (rsa_key, ec_key):
        token = hs256_with_secret(key.public_pem(), key.kid)
        assert "signature is invalid" in await viewer(client, token)


async def test_a_token_cannot_choose_how_a_key_is_used(
    client: httpx.AsyncClient, rsa_key: IssuerKey, ec_key: IssuerKey
) -> None:
    # Signed with the RSA key but naming the EC key: the key says ES256, the token RS256.
    token = rsa_key.token(supabase(), kid=ec_key.kid)
    message = await viewer(client, token)
    assert "'RS256' does not match its key, which is ES256" in message
    # The right algorithm with another key's signature.
    impostor = IssuerKey.ec("impostor")
    assert "signature is invalid" in await viewer(
        client, impostor.token(supabase(), kid=ec_key.kid)
    )


async def test_unsigned_and_other_algorithms_are_refused(
    client: httpx.AsyncClient, rsa_key: IssuerKey
) -> None:
    header = _b64(json.dumps({"alg": "none", "kid": rsa_key.kid}).encode())
    body = _b64(json.dumps(payload(supabase())).encode())
    assert "alg 'none'" in await viewer(client, f"{header}.{body}.")
    for alg in ("RS512", "PS256", "ES384"):
        header = _b64(json.dumps({"alg": alg, "kid": rsa_key.kid}).encode())
        message = await viewer(client, f"{header}.{body}.c2ln")
        assert f"'{alg}' is not accepted" in message
        assert "HS256, RS256 or ES256" in message


async def test_a_token_without_kid_is_refused(
    client: httpx.AsyncClient, rsa_key: IssuerKey
) -> None:
    token = jwt.encode(payload(supabase()), rsa_key.private, algorithm="RS256")
    assert "names no key (kid)" in await viewer(client, token)


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"exp": 1_000_000}, "has expired"),
        ({"exp": None}, "no expiry"),
        ({"nbf": 4_000_000_000}, "not valid yet"),
        ({"aud": "anon"}, "audience must be 'authenticated'"),
        ({"aud": None}, "no aud claim"),
        ({"iss": "https://other-ref.supabase.co/auth/v1"}, f"iss must be '{ISSUER}'"),
        ({"iss": None}, "no iss claim"),
        ({"sub": "alice"}, "must be a user UUID"),
    ],
)
async def test_claims_are_checked(
    client: httpx.AsyncClient,
    rsa_key: IssuerKey,
    ec_key: IssuerKey,
    claims: dict[str, Any],
    expected: str,
) -> None:
    for key in (rsa_key, ec_key):
        assert expected in await viewer(client, key.token(supabase(claims)))


async def test_the_issuer_is_checked_on_hs256_tokens_too(
    pg_data_dir: Path, tmp_path: Path, issuer: JwksServer, services: Services
) -> None:
    settings = jwks_settings(pg_data_dir, tmp_path, issuer.url, JWT_ISSUER=ISSUER)
    async with serving(settings, services) as client:
        secret = settings.jwt_secret
        assert "iss must be" in await viewer(client, jwt.encode(payload({"iss": "x"}), secret))
        assert await viewer(client, mint_token(USER, secret=secret, issuer=ISSUER)) == str(USER)


# -- an issuer that fails ----------------------------------------------------------------------


async def test_an_unreachable_jwks_at_refresh_keeps_the_old_keys(
    client: httpx.AsyncClient,
    issuer: JwksServer,
    rsa_key: IssuerKey,
    new_key: IssuerKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    issuer.stop()
    with caplog.at_level(logging.WARNING, logger="graphql_api.jwks"):
        assert "does not know" in await viewer(client, new_key.token(supabase()))
    assert await viewer(client, rsa_key.token(supabase())) == str(USER)
    [record] = [r for r in caplog.records if "refreshing the signing keys failed" in r.message]
    assert "JWT_JWKS_URL" in record.message
    assert "still using the 2 keys" in record.message


async def test_a_broken_answer_at_refresh_keeps_the_old_keys(
    client: httpx.AsyncClient, issuer: JwksServer, ec_key: IssuerKey, new_key: IssuerKey
) -> None:
    issuer.status = 500
    assert "does not know" in await viewer(client, new_key.token(supabase()))
    assert issuer.hits == 2
    assert await viewer(client, ec_key.token(supabase())) == str(USER)


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [("stopped", "ConnectError"), ("status", "HTTP 404"), ("document", "not JSON")],
)
async def test_a_jwks_that_cannot_be_loaded_fails_the_start(
    pg_data_dir: Path,
    tmp_path: Path,
    issuer: JwksServer,
    services: Services,
    breakage: str,
    reason: str,
) -> None:
    if breakage == "stopped":
        issuer.stop()
    elif breakage == "status":
        issuer.status = 404
    else:
        issuer.document = b"<html>not a key set</html>"
    settings = jwks_settings(pg_data_dir, tmp_path, issuer.url)
    with pytest.raises(ConfigError) as caught:
        create_app(settings, services)
    message = str(caught.value)
    assert message.startswith("JWT_JWKS_URL: cannot load the signing keys from http://127.0.0.1")
    assert reason in message
    assert "\n" not in message


async def test_an_issuer_without_keys_yet_starts_and_picks_up_its_first_key(
    pg_data_dir: Path, tmp_path: Path, services: Services, new_key: IssuerKey
) -> None:
    """A Supabase project that has not made an asymmetric key publishes an empty set: the
    server can be configured ahead of the switch."""
    server = JwksServer(jwks())
    try:
        async with serving(jwks_settings(pg_data_dir, tmp_path, server.url), services) as client:
            server.serve(new_key)
            assert await viewer(client, new_key.token()) == str(USER)
    finally:
        server.stop()


# -- a JWKS file -------------------------------------------------------------------------------


async def test_a_jwks_file_is_read_and_reread_for_an_unknown_kid(
    pg_data_dir: Path,
    tmp_path: Path,
    services: Services,
    rsa_key: IssuerKey,
    new_key: IssuerKey,
) -> None:
    path = tmp_path / "keys" / "jwks.json"
    path.parent.mkdir()
    path.write_bytes(jwks(rsa_key))
    async with serving(jwks_settings(pg_data_dir, tmp_path, path.as_uri()), services) as client:
        assert await viewer(client, rsa_key.token()) == str(USER)
        path.write_bytes(jwks(new_key))
        assert await viewer(client, new_key.token()) == str(USER)


def test_a_missing_jwks_file_fails_the_start(
    pg_data_dir: Path, tmp_path: Path, services: Services
) -> None:
    url = (tmp_path / "absent.json").as_uri()
    with pytest.raises(ConfigError, match=r"^JWT_JWKS_URL: .*cannot read .*absent\.json"):
        create_app(jwks_settings(pg_data_dir, tmp_path, url), services)


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/jwks.json", "https://", "file://host/jwks.json", "jwks.json", "file:x"],
)
def test_jwks_url_must_be_http_or_an_absolute_file(
    pg_data_dir: Path, tmp_path: Path, url: str
) -> None:
    with pytest.raises(ConfigError, match=r"^JWT_JWKS_URL must be an https:// URL"):
        jwks_settings(pg_data_dir, tmp_path, url)


def test_jwks_settings_and_their_defaults(pg_data_dir: Path, tmp_path: Path) -> None:
    unset = make_settings(pg_data_dir, tmp_path)
    assert unset.jwt_jwks_url is None
    assert unset.jwt_issuer is None
    assert (unset.jwt_jwks_refresh_interval, unset.jwt_jwks_timeout) == (600.0, 5.0)
    url = "https://project-ref.supabase.co/auth/v1/.well-known/jwks.json"
    configured = jwks_settings(
        pg_data_dir,
        tmp_path,
        url,
        JWT_ISSUER=ISSUER,
        JWT_JWKS_REFRESH_INTERVAL="120",
        JWT_JWKS_TIMEOUT="2.5",
    )
    assert configured.jwt_jwks_url == url
    assert configured.jwt_issuer == ISSUER
    assert (configured.jwt_jwks_refresh_interval, configured.jwt_jwks_timeout) == (120.0, 2.5)
    with pytest.raises(ConfigError, match=r"^JWT_JWKS_TIMEOUT must be"):
        jwks_settings(pg_data_dir, tmp_path, url, JWT_JWKS_TIMEOUT="0")
