"""Authentication once, for every route: a Starlette `AuthenticationBackend` that reads the
bearer token of each request into `request.user`.

A request without a valid token is not refused here: it gets an `Anonymous` user carrying the
reason, raised only when something needs the caller (`caller_id`). So GraphQL introspection
(the playground) works without a token, while every data resolver and REST route asks for one.

With `JWT_JWKS_URL`, the backend also holds the issuer's public keys (`JwksCache`); they are
loaded when the backend is built, so a key set that cannot be loaded fails the start.
"""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlparse
from uuid import UUID

from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.requests import HTTPConnection

from .auth import ClaimRules, Viewer, authenticate_bearer
from .config import ConfigError, Settings
from .errors import Unauthenticated
from .jwks import JwksCache, JwksError, load_key_set, log_changes

log = logging.getLogger(__name__)


class Caller(BaseUser):
    """A request's user: authenticated with a viewer, or anonymous with the reason."""

    def __init__(self, viewer: Viewer | None, refusal: Unauthenticated | None = None) -> None:
        self.viewer = viewer
        self.refusal = refusal

    @property
    def is_authenticated(self) -> bool:
        return self.viewer is not None

    @property
    def display_name(self) -> str:
        return str(self.viewer.user_id) if self.viewer else ""

    @property
    def identity(self) -> str:
        return self.display_name


class BearerTokens(AuthenticationBackend):
    def __init__(
        self,
        *,
        secret: str,
        audience: str | None,
        issuer: str | None = None,
        keys: JwksCache | None = None,
    ) -> None:
        self._secret = secret
        self._rules = ClaimRules(audience=audience, issuer=issuer)
        self._keys = keys

    @classmethod
    def from_settings(cls, settings: Settings) -> BearerTokens:
        """The backend the settings describe; loads the JWKS now (`ConfigError` if it cannot)."""
        return cls(
            secret=settings.jwt_secret,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            keys=signing_keys(settings),
        )

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser]:
        caller = await self.caller(conn.headers.get("authorization"))
        return AuthCredentials(["authenticated"] if caller.is_authenticated else []), caller

    async def caller(self, authorization: str | None) -> Caller:
        """Who an `Authorization` value names: from a header, or from a websocket's
        `connection_init` payload (browsers cannot set headers on a websocket)."""
        try:
            viewer = await authenticate_bearer(
                authorization, secret=self._secret, rules=self._rules, keys=self._keys
            )
        except Unauthenticated as refusal:
            return Caller(None, refusal)
        return Caller(viewer)


def signing_keys(settings: Settings) -> JwksCache | None:
    """The JWKS of `JWT_JWKS_URL`, loaded once (blocking: called before anything is served),
    else None. A key set that cannot be loaded is a configuration error: starting without it
    would refuse every token its keys sign, and hide a mistyped URL until the first user."""
    url = settings.jwt_jwks_url
    if url is None:
        return None
    _warn_if_plain_http(url)
    try:
        keys = load_key_set(url, settings.jwt_jwks_timeout)
    except JwksError as error:
        raise ConfigError(
            f"JWT_JWKS_URL: cannot load the signing keys from {url}: {error}"
        ) from None
    log_changes(url, None, keys)
    return JwksCache(
        url,
        keys,
        refresh_interval=settings.jwt_jwks_refresh_interval,
        timeout=settings.jwt_jwks_timeout,
    )


def _warn_if_plain_http(url: str) -> None:
    """Keys fetched over plain HTTP can be replaced by anyone on the path, and with them any
    token forged; fine on one machine or a private network (self-hosted Supabase's `auth`
    container), so a warning, not an error."""
    parsed = urlparse(url)
    if parsed.scheme != "http" or _is_loopback(parsed.hostname or ""):
        return
    log.warning("JWT_JWKS_URL %s is plain http: use https unless the network is private", url)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def caller_id(conn: HTTPConnection) -> UUID:
    """The authenticated caller's user id, else the `Unauthenticated` saying why not."""
    user = conn.user
    if isinstance(user, Caller) and user.viewer is not None:
        return user.viewer.user_id
    if isinstance(user, Caller) and user.refusal is not None:
        raise user.refusal
    raise Unauthenticated("missing Authorization header: send 'Authorization: Bearer <token>'")


def caller_id_or_none(conn: HTTPConnection) -> UUID | None:
    user = conn.user
    return user.viewer.user_id if isinstance(user, Caller) and user.viewer else None
