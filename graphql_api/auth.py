"""Bearer tokens: JWTs with Supabase-compatible claims, checked without GraphQL.

A token names its user in `sub` (a UUID) and must carry `exp`. HS256 tokens are checked with
the server's secret; with a JWKS configured, RS256 and ES256 tokens are checked with the key
their `kid` names, and the key, not the token, decides the algorithm (an HS256 token never
meets a public key, and `none` is never accepted). Every refusal raises `Unauthenticated` with
a message that says what is wrong without ever repeating the token.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, NoReturn, Protocol
from uuid import UUID, uuid5

import jwt
from jwt.exceptions import InvalidSubjectError

from .errors import Unauthenticated
from .jwks import ASYMMETRIC_ALGORITHMS, PublicKey, SigningKey

ALGORITHM = "HS256"
# The role Supabase gives a signed-in user; `mint_token` sets it for compatibility.
AUTHENTICATED_ROLE = "authenticated"
# Fixed forever: changing it would give every named user (`token --user alice`) a new id.
USER_NAMESPACE = UUID("6f1c2b9e-4d53-5a8e-9c1f-0b7e3d2a4c61")

_EMPTY_CLAIMS: Mapping[str, Any] = MappingProxyType({})
_PRINTABLE_ALG = re.compile(r"^[A-Za-z0-9_-]{1,16}$")


@dataclass(frozen=True)
class ClaimRules:
    """What a token's claims must say besides `exp`: `aud` and `iss` only when given (Supabase
    tokens carry aud "authenticated" and iss "https://<ref>.supabase.co/auth/v1")."""

    audience: str | None = None
    issuer: str | None = None
    leeway_seconds: int = 0


class KeyLookup(Protocol):
    """Public signing keys by `kid` (a `JwksCache`)."""

    async def key_for(self, kid: str) -> SigningKey | None: ...


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
    issuer: str | None = None,
    leeway_seconds: int = 0,
) -> Viewer:
    """The viewer named by an `Authorization: Bearer <jwt>` header signed with HS256 and
    `secret`, else `Unauthenticated`.

    `audience` and `issuer` are checked only when given; when None, a token's `aud` or `iss`
    claim is ignored.
    """
    token = _bearer_token(authorization_header, secret)
    alg = _algorithm(_unverified_header(token))
    if alg != ALGORITHM:
        _refuse_algorithm(alg, accepted=(ALGORITHM,))
    return _viewer(_decode(token, secret, ALGORITHM, ClaimRules(audience, issuer, leeway_seconds)))


async def authenticate_bearer(
    authorization_header: str | None,
    *,
    secret: str,
    rules: ClaimRules,
    keys: KeyLookup | None,
) -> Viewer:
    """`authenticate`, and with `keys` also RS256 and ES256 tokens, checked with the key their
    `kid` names (which may wait for the key set to be refreshed)."""
    token = _bearer_token(authorization_header, secret)
    header = _unverified_header(token)
    alg = _algorithm(header)
    if alg == ALGORITHM:
        return _viewer(_decode(token, secret, ALGORITHM, rules))
    if keys is None:
        _refuse_algorithm(alg, accepted=(ALGORITHM,))
    if alg not in ASYMMETRIC_ALGORITHMS:
        _refuse_algorithm(alg, accepted=(ALGORITHM, *ASYMMETRIC_ALGORITHMS))
    key = await _signing_key(keys, header, alg)
    return _viewer(_decode(token, key.key, key.algorithm, rules))


def mint_token(
    user_id: UUID,
    *,
    secret: str,
    ttl_seconds: int = 3600 * 24,
    audience: str | None = None,
    issuer: str | None = None,
    now: datetime | None = None,
) -> str:
    """An HS256 token for `user_id` with Supabase's claims: sub, iat, exp, role and maybe aud
    and iss."""
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
    if issuer is not None:
        claims["iss"] = issuer
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


def _bearer_token(header: str | None, secret: str) -> str:
    if not secret:
        raise ValueError("authenticating needs a non-empty secret")
    if header is None or not header.strip():
        raise Unauthenticated("missing Authorization header: send 'Authorization: Bearer <token>'")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("the Authorization header must have the form 'Bearer <token>'")
    return token


def _unverified_header(token: str) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthenticated("the bearer token is malformed: it is not a JWT") from None


def _algorithm(header: Mapping[str, Any]) -> str | None:
    """The header's `alg`, refusing `none` (in any case) up front."""
    alg = header.get("alg")
    if isinstance(alg, str) and alg.lower() == "none":
        raise Unauthenticated("unsigned bearer tokens (alg 'none') are not accepted")
    return alg if isinstance(alg, str) else None


def _refuse_algorithm(alg: str | None, *, accepted: tuple[str, ...]) -> NoReturn:
    shown = f"'{alg}'" if alg is not None and _PRINTABLE_ALG.match(alg) else "unsupported"
    raise Unauthenticated(
        f"the bearer token algorithm {shown} is not accepted: tokens must be signed with "
        f"{_alternatives(accepted)}"
    )


def _alternatives(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


async def _signing_key(keys: KeyLookup, header: Mapping[str, Any], alg: str) -> SigningKey:
    """The key the header's `kid` names, whose own algorithm must be the header's: a token
    cannot choose how a key is used."""
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise Unauthenticated(f"the bearer token is signed with {alg} but names no key (kid)")
    key = await keys.key_for(kid)
    if key is None:
        # The kid is the caller's text: not repeated, like the token.
        raise Unauthenticated("the bearer token is signed with a key this server does not know")
    if key.algorithm != alg:
        raise Unauthenticated(
            f"the bearer token algorithm '{alg}' does not match its key, which is {key.algorithm}"
        )
    return key


def _decode(token: str, key: str | PublicKey, algorithm: str, rules: ClaimRules) -> dict[str, Any]:
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=rules.audience,
            issuer=rules.issuer,
            leeway=rules.leeway_seconds,
            options={"require": ["exp"], "verify_aud": rules.audience is not None},
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
            f"the bearer token is not meant for this server (audience must be '{rules.audience}')"
        ) from None
    except jwt.InvalidIssuerError:
        raise Unauthenticated(
            f"the bearer token is not from the expected issuer (iss must be '{rules.issuer}')"
        ) from None
    except InvalidSubjectError:
        raise Unauthenticated("the bearer token subject (sub) must be a user UUID") from None
    except jwt.InvalidIssuedAtError:
        raise Unauthenticated("the bearer token has an invalid issue time (iat)") from None
    except jwt.InvalidAlgorithmError:
        raise Unauthenticated(f"the bearer token must be signed with {algorithm}") from None
    except jwt.DecodeError:
        raise Unauthenticated("the bearer token is malformed") from None
    except jwt.PyJWTError:
        raise Unauthenticated("the bearer token is invalid") from None


def _viewer(claims: dict[str, Any]) -> Viewer:
    return Viewer(user_id=_subject(claims), claims=claims)


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
