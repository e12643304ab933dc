"""Test harness: the app against real services.

Each run creates its own PostgreSQL database (migrated with Alembic, dropped at the end) and its
own Redis key prefix (deleted at the end). Most HTTP tests run twice: on the embedded default
(SQLite, in-memory stores) and on PostgreSQL + Redis. With CI=true a missing service fails the
run; elsewhere its suites are skipped and the summary says which and why.
"""

from __future__ import annotations

import asyncio
import email
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiosmtpd.controller import Controller
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from ideaforge.app import create_app
from ideaforge.clock import FixedClock
from ideaforge.db import Database
from ideaforge.db.migrate import upgrade
from ideaforge.settings import Settings
from ml.embedding import DEFAULT_MODEL, Embedder, SentenceTransformerEmbedder
from tests.services import AVAILABLE, IN_CI, PG_ADMIN_URL, REDIS_URL

RUN_ID = uuid.uuid4().hex[:10]
SECRET = "test-secret-key-0123456789-abcdefghijklmnop"
SUITE_MARKS = ("postgres", "redis", "browser")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for mark in SUITE_MARKS:
            if item.get_closest_marker(mark) and mark in AVAILABLE.missing:
                if IN_CI:
                    raise pytest.UsageError(
                        f"CI=true but the {mark} suite cannot run: {AVAILABLE.missing[mark]}"
                    )
                item.add_marker(pytest.mark.skip(reason=f"{mark} suite skipped: {AVAILABLE.missing[mark]}"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if AVAILABLE.missing:
        terminalreporter.section("suites skipped")
        for suite, why in AVAILABLE.missing.items():
            terminalreporter.write_line(f"SKIPPED {suite} suite: {why}")
    else:
        terminalreporter.write_line("all suites ran: SQLite, PostgreSQL, Redis, Chromium")


# --- databases ---------------------------------------------------------------------------------


def _in_thread(fn: Any, *args: Any) -> Any:
    """Run blocking setup (Alembic, asyncio.run) away from the test's running event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    name = f"ideaforge_test_{RUN_ID}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    _in_thread(asyncio.run, admin(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    try:
        _in_thread(upgrade, url)
        yield url
    finally:
        _in_thread(asyncio.run, admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    _in_thread(upgrade, f"sqlite+aiosqlite:///{path}")
    return path


async def _truncate_postgres(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            tables = (
                (
                    await conn.execute(
                        text(
                            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename != 'alembic_version'"
                        )
                    )
                )
                .scalars()
                .all()
            )
            if tables:
                await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


async def _delete_redis_prefix(prefix: str) -> None:
    redis = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


@dataclass
class Backend:
    name: str
    settings: Settings


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        env="test", data_dir=tmp_path, secret_key=SECRET, base_url="http://testserver.local", **overrides
    )


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres+redis", marks=[pytest.mark.postgres, pytest.mark.redis]),
    ]
)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """The embedded default and the production stores; each test starts from an empty database."""
    if request.param == "sqlite":
        db_file = tmp_path / "ideaforge.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), db_file)
        yield Backend("sqlite", _settings(tmp_path, database_url=f"sqlite+aiosqlite:///{db_file}"))
        return
    url = request.getfixturevalue("postgres_url")
    prefix = f"ideaforge-test-{RUN_ID}-{uuid.uuid4().hex[:6]}"
    await _truncate_postgres(url)
    yield Backend("postgres", _settings(tmp_path, database_url=url, redis_url=REDIS_URL, redis_prefix=prefix))
    await _delete_redis_prefix(prefix)


@pytest.fixture
async def sqlite_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """For tests about behaviour that does not depend on the store."""
    db_file = tmp_path / "ideaforge.sqlite3"
    shutil.copy(request.getfixturevalue("sqlite_template"), db_file)
    return Backend("sqlite", _settings(tmp_path, database_url=f"sqlite+aiosqlite:///{db_file}"))


@pytest.fixture
def clock() -> FixedClock:
    """The app's clock: tests move it to put challenges in the phase they need."""
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list[email.message.Message]]]:
    """A real SMTP server (aiosmtpd) on a free port, and the messages it received."""
    received: list[email.message.Message] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's hook
            received.append(email.message_from_bytes(envelope.content))
            return "250 Message accepted for delivery"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, received
    finally:
        controller.stop()


@pytest.fixture
def received(smtp_server: tuple[int, list[email.message.Message]]) -> list[email.message.Message]:
    return smtp_server[1]


@pytest.fixture
def app(request: pytest.FixtureRequest, backend: Backend, clock: FixedClock, embedder: Embedder) -> Litestar:
    """The app under test; in tests marked ``smtp`` it sends its mail to the ``smtp_server``."""
    settings = backend.settings
    if request.node.get_closest_marker("smtp"):
        port, _received = request.getfixturevalue("smtp_server")
        settings = settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{port}"})
    return create_app(settings, clock=clock, embedder=embedder)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real embedding model, loaded once for the whole run."""
    return SentenceTransformerEmbedder(DEFAULT_MODEL)


@pytest.fixture
async def db(backend: Backend) -> AsyncIterator[AsyncSession]:
    """A session on the test's database, for arranging what no page exists for yet."""
    database = Database(backend.settings.resolved_database_url)
    async with database.sessionmaker() as session:
        yield session
    await database.dispose()


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app, base_url="http://testserver.local") as test_client:
        yield test_client
