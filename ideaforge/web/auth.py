"""Who is asking: the session's user on pages, the bearer token's user on the API.

The API authenticates only with bearer tokens and pages only with the session cookie, so the
API needs no CSRF protection (a browser never attaches a bearer token by itself).
"""

from __future__ import annotations

from typing import Any, cast

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from ideaforge.accounts.models import User
from ideaforge.accounts.services import user_for_token
from ideaforge.notifications.services import unread_count

API_PREFIX = "/api/"
SESSION_USER_KEY = "user_id"


def is_api(scope: Scope) -> bool:
    return scope["path"].startswith(API_PREFIX)


class AuthMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            await self._identify(scope)
        await self.app(scope, receive, send)

    @staticmethod
    async def _identify(scope: Scope) -> None:
        """Put the user (and, on pages, their unread count) in the scope, with one database session."""
        state = cast(dict[str, Any], scope)
        state["user"] = None
        connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope)
        if is_api(scope):
            scheme, _sep, token = connection.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return
            async with scope["app"].state.db.sessionmaker() as session:
                state["user"] = await user_for_token(session, token.strip())
            return
        cookie_session = scope.get("session")
        user_id = cookie_session.get(SESSION_USER_KEY) if isinstance(cookie_session, dict) else None
        if not isinstance(user_id, int):
            return
        async with scope["app"].state.db.sessionmaker() as session:
            user = await session.get(User, user_id)
            if user is not None and user.is_active:
                state["user"] = user
                state["unread_notifications"] = await unread_count(session, user.id)


def current_user(connection: ASGIConnection[Any, Any, Any, Any]) -> User | None:
    user = connection.scope.get("user")
    return user if isinstance(user, User) else None


def signed_in_user(connection: ASGIConnection[Any, Any, Any, Any]) -> User:
    """The user of a route guarded by ``login_required`` (raises, as the guard would, when absent)."""
    user = current_user(connection)
    if user is None:
        raise NotAuthorizedException()
    return user


def login_required(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: pages send the visitor to the login form, the API answers 401."""
    if current_user(connection) is None:
        raise NotAuthorizedException()
