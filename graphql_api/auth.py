"""Bearer tokens: HS256 JWTs with Supabase-compatible claims, checked without GraphQL.

A token names its user in `sub` (a UUID). Only HS256 is accepted, and `exp` is required.
Every refusal raises `Unauthenticated` with a message that says what is wrong without ever
repeating the token.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any
from uuid import UUID, uuid5

import jwt
from jwt.exceptions import InvalidSubjectError

from .errors import Unauthenticated

ALGORITHM = "HS256"
# The role Supabase gives a signed-in user; `mint_token` sets it for compatibility.
AUTHENTICATED_ROLE = "authenticated"
# Fixed forever: changing it would give every named user (`token --user alice`) a new id.
USER_NAMESPACE = UUID("6f1c2b9e-4d53-5a8e-9c1f-0b7e3d2a4c61")

_EMPTY_CLAIMS: Mapping[str, Any] = MappingProxyType({})
_PRINTABLE_ALG = re.compile(r"^[A-Za-z0-9_-]{1,16}$")


@dataclass(frozen=True)
class Viewer:
    """The authenticated user of a request. Equality and hashing use `user_id` only."""

    user_id: UUID
    claims: Mapping[str, Any] = field(
        default_factory=lambda: _EMPTY_CLAIMS, compare=False, hash=False, repr=False
    )

    def __post_init__(self) -> None:
        if not isinstance(self.claims, MappingProxyType):
            object.__setattr__(self, "claims", MappingProxyType(dict(self.claims)))


def authenticate(
    authorization_header: str | None,
    *,
    secret: str,
    audience: str | None = None,
    leeway_seconds: int = 0,
) -> Viewer:
    """The viewer named by an `Authorization: Bearer <jwt>` header, else `Unauthenticated`.

    `audience` is checked only when given (Supabase tokens carry "authenticated"); when it is
    None, a token's `aud` claim is ignored.
    """
    if not secret:
        raise ValueError("authenticate needs a non-empty secret")
    token = _bearer_token(authorization_header)
    _check_algorithm(token)
    claims = _decode(token, secret=secret, audience=audience, leeway_seconds=leeway_seconds)
    return Viewer(user_id=_subject(claims), claims=claims)


def mint_token(
    user_id: UUID,
    *,
    secret: str,
    ttl_seconds: int = 3600 * 24,
    audience: str | None = None,
    now: datetime | None = None,
) -> str:
    """An HS256 token for `user_id` with Supabase's claims: sub, iat, exp, role and maybe aud."""
    if not secret:
        raise ValueError("mint_token needs a non-empty secret")
    if ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    issued_at = int(now.timestamp())
    claims: dict[str, Any] = {
        "sub": str(UUID(str(user_id))),
        "iat": issued_at,
        "exp": issued_at + ttl_seconds,
        "role": AUTHENTICATED_ROLE,
    }
    if audience is not None:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def user_id_for(name_or_uuid: str) -> UUID:
    """The user id for a UUID string (parsed), or a stable UUID derived from any other name.

    Names are taken as given apart from surrounding whitespace, so "alice" always maps to the
    same id and "Alice" to a different one.
    """
    name = name_or_uuid.strip()
    if not name:
        raise ValueError("a user name or UUID must not be empty")
    try:
        return UUID(name)
    except ValueError:
        return uuid5(USER_NAMESPACE, name)


# -- steps of `authenticate` -------------------------------------------------------------------


def _bearer_token(header: str | None) -> str:
    if header is None or not header.strip():
        raise Unauthenticated("missing Authorization header: send 'Authorization: Bearer <token>'")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("the Authorization header must have the form 'Bearer <token>'")
    return token


def _check_algorithm(token: str) -> None:
    """Refuse anything but HS256 up front, with a message naming the algorithm."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthenticated("the bearer token is malformed: it is not a JWT") from None
    alg = header.get("alg")
    if alg == ALGORITHM:
        return
    if isinstance(alg, str) and alg.lower() == "none":
        raise Unauthenticated("unsigned bearer tokens (alg 'none') are not accepted")
    shown = f"'{alg}'" if isinstance(alg, str) and _PRINTABLE_ALG.match(alg) else "unsupported"
    raise Unauthenticated(
        f"the bearer token algorithm {shown} is not accepted: tokens must be signed with HS256"
    )


def _decode(
    token: str, *, secret: str, audience: str | None, leeway_seconds: int
) -> dict[str, Any]:
    try:
        return jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=audience,
            leeway=leeway_seconds,
            options={"require": ["exp"], "verify_aud": audience is not None},
        )
    except jwt.InvalidSignatureError:
        raise Unauthenticated("the bearer token signature is invalid") from None
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("the bearer token has expired") from None
    except jwt.ImmatureSignatureError:
        raise Unauthenticated("the bearer token is not valid yet") from None
    except jwt.MissingRequiredClaimError as error:
        if error.claim == "exp":
            raise Unauthenticated("the bearer token has no expiry (exp claim)") from None
        raise Unauthenticated(f"the bearer token has no {error.claim} claim") from None
    except jwt.InvalidAudienceError:
        raise Unauthenticated(
            f"the bearer token is not meant for this server (audience must be '{audience}')"
        ) from None
    except InvalidSubjectError:
        raise Unauthenticated("the bearer token subject (sub) must be a user UUID") from None
    except jwt.InvalidIssuedAtError:
        raise Unauthenticated("the bearer token has an invalid issue time (iat)") from None
    except jwt.InvalidAlgorithmError:
        raise Unauthenticated("the bearer token must be signed with HS256") from None
    except jwt.DecodeError:
        raise Unauthenticated("the bearer token is malformed") from None
    except jwt.PyJWTError:
        raise Unauthenticated("the bearer token is invalid") from None


def _subject(claims: Mapping[str, Any]) -> UUID:
    sub = claims.get("sub")
    if sub is None or sub == "":
        raise Unauthenticated("the bearer token has no subject (sub claim)")
    if not isinstance(sub, str):
        raise Unauthenticated("the bearer token subject (sub) must be a user UUID")
    try:
        return UUID(sub)
    except ValueError:
        raise Unauthenticated("the bearer token subject (sub) must be a user UUID") from None
