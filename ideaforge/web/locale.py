"""Choose each request's locale: the user's setting, else their switcher choice, else the browser's."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.types import ASGIApp, Receive, Scope, Send

from ideaforge import i18n

LOCALE_COOKIE = "ideaforge_locale"
SESSION_KEY = "locale"


def choose_locale(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    user = connection.scope.get("user")
    if user is not None and getattr(user, "locale", None) in i18n.SUPPORTED_LOCALES:
        return str(user.locale)
    session = connection.scope.get("session")
    if isinstance(session, dict) and session.get(SESSION_KEY) in i18n.SUPPORTED_LOCALES:
        return str(session[SESSION_KEY])
    if (cookie := connection.cookies.get(LOCALE_COOKIE)) in i18n.SUPPORTED_LOCALES:
        return str(cookie)
    negotiated = i18n.negotiate(connection.headers.get("accept-language"))
    if negotiated:
        return negotiated
    return str(connection.scope["app"].state.settings.default_locale)


class LocaleMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            with i18n.use_locale(choose_locale(ASGIConnection(scope))):
                await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, send)
