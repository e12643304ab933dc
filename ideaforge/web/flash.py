"""One-shot messages shown on the next page, kept in the session."""

from __future__ import annotations

from typing import Any, Literal

from litestar.connection import ASGIConnection

_KEY = "_flash"


def flash(
    connection: ASGIConnection[Any, Any, Any, Any], message: str, level: Literal["info", "error"] = "info"
) -> None:
    session = connection.scope.get("session")
    if isinstance(session, dict):
        session.setdefault(_KEY, []).append([level, str(message)])


def pop_flashes(connection: ASGIConnection[Any, Any, Any, Any]) -> list[list[str]]:
    session = connection.scope.get("session")
    if isinstance(session, dict) and _KEY in session:
        return list(session.pop(_KEY))
    return []
