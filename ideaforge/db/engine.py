from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from ideaforge.errors import UnstorableText


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; WAL lets readers run beside the writer.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, (list, tuple)):
        return any(_holds_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_nul(v) for v in value.values())
    return False


def _refuse_nul(_conn: Any, _cursor: Any, _statement: str, parameters: Any, *_args: Any) -> None:
    """A NUL in any text bound to a query (user input: a search, a title, an email) is refused before it
    reaches the database, instead of failing there (PostgreSQL) or being stored (SQLite)."""
    if _holds_nul(parameters):
        raise UnstorableText()


class Database:
    """One engine and its session factory; services commit explicitly."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"echo": echo}
        if not url.startswith("sqlite"):
            kwargs |= {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 10}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(self.engine.sync_engine, "before_cursor_execute", _refuse_nul)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)

    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def is_postgres(session: AsyncSession) -> bool:
    """Whether the session runs on PostgreSQL (row locks) rather than SQLite (one process, in-process locks)."""
    return session.get_bind().dialect.name == "postgresql"
