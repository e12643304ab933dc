"""Server-side sessions that never adopt an id the server did not issue, and rotate at login.

Litestar's stock backend stores a session under whatever id the client's cookie names, even an
id it never handed out. An attacker who plants ``session=known`` in a victim's browser would
then share the victim's session after login (session fixation). This backend only reuses an id
whose data it found in the store, and ``rotate_session`` moves the data to a fresh id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.middleware.session.server_side import ServerSideSessionBackend, ServerSideSessionConfig
from litestar.types import Empty, Message, ScopeSession
from litestar.utils.dataclass import extract_dataclass_items

_LOADED_ID = "ideaforge.session_id"
_ROTATE = "ideaforge.rotate_session"


def rotate_session(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """Ask for a new session id when this response is sent (call at login and privilege change)."""
    cast(dict[str, Any], connection.scope)[_ROTATE] = True


class RotatingSessionBackend(ServerSideSessionBackend):
    async def load_from_connection(self, connection: ASGIConnection[Any, Any, Any, Any]) -> dict[str, Any]:
        session_id = connection.cookies.get(self.config.key)
        if session_id and session_id != "null":
            store = self.config.get_store_from_app(connection.scope["app"])
            data = await self.get(session_id, store=store)
            if data is not None:
                cast(dict[str, Any], connection.scope)[_LOADED_ID] = session_id
                return self.deserialize_data(data)
        return {}

    def get_session_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        scope = cast(dict[str, Any], connection.scope)
        session_id = scope.get(_LOADED_ID)
        if session_id is None:
            session_id = scope[_LOADED_ID] = self.generate_session_id()
        return cast(str, session_id)

    async def store_in_message(
        self, scope_session: ScopeSession, message: Message, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> None:
        scope = cast(dict[str, Any], connection.scope)
        store = self.config.get_store_from_app(connection.scope["app"])
        headers = MutableScopeHeaders.from_message(message)
        cookie_params = dict(
            extract_dataclass_items(self.config, exclude_none=True, include=Cookie.__dict__.keys())
        )

        old_id = scope.get(_LOADED_ID)
        empty = scope_session is Empty or not scope_session
        if old_id is not None and (empty or scope.pop(_ROTATE, False)):
            await self.delete(old_id, store=store)
            scope.pop(_LOADED_ID)

        if empty:
            # An empty session costs nothing: no store entry, and no cookie unless one must be cleared.
            if connection.cookies.get(self.config.key):
                expired = Cookie(value="null", key=self.config.key, expires=0, **cookie_params)
                headers.add("Set-Cookie", expired.to_header(header=""))
            return
        assert isinstance(scope_session, dict)
        session_id = self.get_session_id(connection)
        await self.set(
            session_id=session_id, data=self.serialize_data(scope_session, connection.scope), store=store
        )
        headers.add(
            "Set-Cookie", Cookie(value=session_id, key=self.config.key, **cookie_params).to_header(header="")
        )


@dataclass
class RotatingSessionConfig(ServerSideSessionConfig):
    _backend_class = RotatingSessionBackend
