"""Explicitly marked handler parameters (Litestar 3 drops inferred ones)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias

from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

DbSession: TypeAlias = NamedDependency[AsyncSession]


def request_time(connection: ASGIConnection[Any, Any, Any, Any]) -> datetime:
    """Now, by the app's clock (which tests set)."""
    moment: datetime = connection.app.state.clock.now()
    return moment
