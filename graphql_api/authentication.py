"""Authentication once, for every route: a Starlette `AuthenticationBackend` that reads the
bearer token of each request into `request.user`.

A request without a valid token is not refused here: it gets an `Anonymous` user carrying the
reason, raised only when something needs the caller (`caller_id`). So GraphQL introspection
(the playground) works without a token, while every data resolver and REST route asks for one.
"""

from __future__ import annotations

from uuid import UUID

from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.requests import HTTPConnection

from .auth import Viewer, authenticate
from .errors import Unauthenticated


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
    def __init__(self, *, secret: str, audience: str | None) -> None:
        self._secret = secret
        self._audience = audience

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser]:
        try:
            viewer = authenticate(
                conn.headers.get("authorization"), secret=self._secret, audience=self._audience
            )
        except Unauthenticated as refusal:
            return AuthCredentials(), Caller(None, refusal)
        return AuthCredentials(["authenticated"]), Caller(viewer)


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
