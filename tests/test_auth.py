"""Bearer token checks: every refusal has its own message, and none repeats the token."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import jwt
import pytest

from graphql_api.auth import Viewer, authenticate, mint_token, user_id_for
from graphql_api.errors import Unauthenticated

SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
USER = UUID("8d2f6c1e-3b7a-4e59-9f0d-2a6b1c4e7d90")


def _now() -> int:
    return int(datetime.now(UTC).timestamp())


def _token(claims: dict[str, Any] | None = None, *, secret: str = SECRET, alg: str = "HS256"):
    payload: dict[str, Any] = {"sub": str(USER), "exp": _now() + 600, "iat": _now()}
    payload.update(claims or {})
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, secret, algorithm=alg)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _refusal(header: str | None, **kwargs: Any) -> str:
    with pytest.raises(Unauthenticated) as caught:
        authenticate(header, secret=SECRET, **kwargs)
    error = caught.value
    assert error.code == "UNAUTHENTICATED"
    if header:
        token = header.partition(" ")[2]
        if token:
            assert token not in error.message
            assert token[:20] not in error.message
    return error.message


def test_valid_token_names_the_user() -> None:
    viewer = authenticate(f"Bearer {_token()}", secret=SECRET)
    assert viewer == Viewer(USER)
    assert viewer.user_id == USER
    assert viewer.claims["sub"] == str(USER)


def test_scheme_is_case_insensitive_and_whitespace_tolerated() -> None:
    assert authenticate(f"  bearer   {_token()}  ", secret=SECRET).user_id == USER


def test_claims_are_read_only_and_ignored_by_equality() -> None:
    viewer = authenticate(f"Bearer {_token({'role': 'authenticated'})}", secret=SECRET)
    with pytest.raises(TypeError):
        viewer.claims["sub"] = "x"  # type: ignore[index]
    assert viewer == Viewer(USER, claims={"other": 1})
    assert hash(viewer) == hash(Viewer(USER))


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_header(header: str | None) -> None:
    assert "missing Authorization header" in _refusal(header)


@pytest.mark.parametrize(
    "header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "Token abc.def.ghi"]
)
def test_not_a_bearer_header(header: str) -> None:
    assert "'Bearer <token>'" in _refusal(header)


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b", "a.b.c", "!!!.###.$$$"])
def test_malformed_token(token: str) -> None:
    assert "malformed" in _refusal(f"Bearer {token}")


def test_alg_none_is_refused() -> None:
    header = _b64({"alg": "none", "typ": "JWT"})
    payload = _b64({"sub": str(USER), "exp": _now() + 600})
    assert "alg 'none'" in _refusal(f"Bearer {header}.{payload}.")
    # Even with a signature attached (which `none` tokens must not have).
    assert "alg 'none'" in _refusal(f"Bearer {header}.{payload}.c2ln")
    upper = _b64({"alg": "NONE", "typ": "JWT"})
    assert "alg 'none'" in _refusal(f"Bearer {upper}.{payload}.")


def test_other_algorithms_are_refused() -> None:
    message = _refusal(f"Bearer {_token(secret=SECRET * 2, alg='HS512')}")
    assert "'HS512'" in message
    assert "HS256" in message


def test_unprintable_algorithm_is_not_echoed() -> None:
    header = _b64({"alg": "<script>" * 10, "typ": "JWT"})
    payload = _b64({"sub": str(USER), "exp": _now() + 600})
    message = _refusal(f"Bearer {header}.{payload}.c2ln")
    assert "<script>" not in message
    assert "unsupported" in message


def test_missing_algorithm_is_refused() -> None:
    header = _b64({"typ": "JWT"})
    payload = _b64({"sub": str(USER), "exp": _now() + 600})
    assert "HS256" in _refusal(f"Bearer {header}.{payload}.c2ln")


def test_signature_from_another_secret() -> None:
    other = "another-secret-that-is-also-long-enough-0123456789"
    assert "signature is invalid" in _refusal(f"Bearer {_token(secret=other)}")


def test_tampered_payload_fails_the_signature() -> None:
    header, _, signature = _token().split(".")
    payload = _b64({"sub": str(uuid4()), "exp": _now() + 600})
    assert "signature is invalid" in _refusal(f"Bearer {header}.{payload}.{signature}")


def test_expired() -> None:
    assert "expired" in _refusal(f"Bearer {_token({'exp': _now() - 10})}")


def test_leeway_accepts_a_just_expired_token() -> None:
    token = _token({"exp": _now() - 10})
    assert authenticate(f"Bearer {token}", secret=SECRET, leeway_seconds=60).user_id == USER


def test_exp_is_required() -> None:
    assert "no expiry" in _refusal(f"Bearer {_token({'exp': None})}")


def test_not_yet_valid() -> None:
    assert "not valid yet" in _refusal(f"Bearer {_token({'nbf': _now() + 600})}")


def test_missing_sub() -> None:
    assert "no subject" in _refusal(f"Bearer {_token({'sub': None})}")


@pytest.mark.parametrize("sub", ["alice", "1234", "8d2f6c1e-3b7a-4e59-9f0d"])
def test_sub_must_be_a_uuid(sub: str) -> None:
    assert "must be a user UUID" in _refusal(f"Bearer {_token({'sub': sub})}")


def test_sub_must_be_a_string() -> None:
    assert "must be a user UUID" in _refusal(f"Bearer {_token({'sub': 42})}")


def test_wrong_audience() -> None:
    token = _token({"aud": "anon"})
    message = _refusal(f"Bearer {token}", audience="authenticated")
    assert "audience must be 'authenticated'" in message


def test_missing_audience_when_one_is_configured() -> None:
    assert "aud" in _refusal(f"Bearer {_token()}", audience="authenticated")


def test_audience_ignored_when_not_configured() -> None:
    token = _token({"aud": "anything"})
    assert authenticate(f"Bearer {token}", secret=SECRET).user_id == USER


def test_supabase_style_token_with_audience() -> None:
    token = _token({"aud": "authenticated", "role": "authenticated", "email": "a@example.com"})
    viewer = authenticate(f"Bearer {token}", secret=SECRET, audience="authenticated")
    assert viewer.user_id == USER
    assert viewer.claims["email"] == "a@example.com"


ISSUER = "https://project-ref.supabase.co/auth/v1"


def test_wrong_issuer() -> None:
    token = _token({"iss": "https://other-ref.supabase.co/auth/v1"})
    assert f"iss must be '{ISSUER}'" in _refusal(f"Bearer {token}", issuer=ISSUER)


def test_missing_issuer_when_one_is_configured() -> None:
    assert "no iss claim" in _refusal(f"Bearer {_token()}", issuer=ISSUER)


def test_issuer_ignored_when_not_configured() -> None:
    token = _token({"iss": "anyone"})
    assert authenticate(f"Bearer {token}", secret=SECRET).user_id == USER
    assert authenticate(f"Bearer {_token({'iss': ISSUER})}", secret=SECRET, issuer=ISSUER)


def test_asymmetric_tokens_need_a_jwks() -> None:
    """Without JWT_JWKS_URL an RS256 header is refused before any key is looked at."""
    header = _b64({"alg": "RS256", "typ": "JWT", "kid": "k1"})
    payload = _b64({"sub": str(USER), "exp": _now() + 600})
    message = _refusal(f"Bearer {header}.{payload}.c2ln")
    assert "'RS256' is not accepted: tokens must be signed with HS256" in message


def test_mint_token_round_trip() -> None:
    token = mint_token(USER, secret=SECRET)
    viewer = authenticate(f"Bearer {token}", secret=SECRET)
    assert viewer.user_id == USER
    assert viewer.claims["role"] == "authenticated"
    assert viewer.claims["exp"] - viewer.claims["iat"] == 3600 * 24
    assert "aud" not in viewer.claims
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_mint_token_with_audience_and_clock() -> None:
    now = datetime.now(UTC) - timedelta(seconds=30)
    token = mint_token(USER, secret=SECRET, ttl_seconds=120, audience="authenticated", now=now)
    viewer = authenticate(f"Bearer {token}", secret=SECRET, audience="authenticated")
    assert viewer.claims["aud"] == "authenticated"
    assert viewer.claims["iat"] == int(now.timestamp())
    assert viewer.claims["exp"] == int(now.timestamp()) + 120


def test_mint_token_with_issuer() -> None:
    token = mint_token(USER, secret=SECRET, issuer=ISSUER)
    assert authenticate(f"Bearer {token}", secret=SECRET, issuer=ISSUER).claims["iss"] == ISSUER
    assert (
        "iss" not in authenticate(f"Bearer {mint_token(USER, secret=SECRET)}", secret=SECRET).claims
    )


def test_minted_token_expires() -> None:
    past = datetime.now(UTC) - timedelta(hours=2)
    token = mint_token(USER, secret=SECRET, ttl_seconds=60, now=past)
    assert "expired" in _refusal(f"Bearer {token}")


def test_mint_token_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        mint_token(USER, secret=SECRET, ttl_seconds=0)
    with pytest.raises(ValueError):
        mint_token(USER, secret="")
    with pytest.raises(ValueError):
        mint_token(USER, secret=SECRET, now=datetime(2030, 1, 1))  # naive


def test_user_id_for_parses_uuids() -> None:
    assert user_id_for(str(USER)) == USER
    assert user_id_for(str(USER).upper()) == USER


def test_user_id_for_names_is_stable() -> None:
    alice = user_id_for("alice")
    assert alice == user_id_for("alice") == user_id_for(" alice ")
    assert alice != user_id_for("bob")
    assert alice.version == 5
    # Pinned: the namespace must never change, or every named user would get a new id.
    assert alice == UUID("d8e96a31-11e3-5f13-84df-87be12d51d62")


def test_user_id_for_rejects_empty() -> None:
    with pytest.raises(ValueError):
        user_id_for("  ")
