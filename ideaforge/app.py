"""Composition root: the only core module that knows every domain package."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import structlog
from litestar import Litestar, Request
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.static_files import create_static_files_router
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.stores.registry import StoreRegistry
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from ideaforge.clock import Clock, SystemClock
from ideaforge.db import Database
from ideaforge.settings import Settings, get_settings

STATIC_DIR = Path(__file__).resolve().parent / "static"
SESSION_MAX_AGE = 14 * 24 * 3600
MAX_BODY_BYTES = 1024 * 1024


# Every module that defines tables. Imported by name: a linter cannot drop an "unused" import here.
MODEL_MODULES = (
    "ideaforge.accounts.models",
    "ideaforge.organisations.models",
    "ideaforge.audit",
    "ideaforge.notifications.models",
    "challenges.models",
    "ideas.models",
)


def load_models() -> None:
    """Import every package's models so the metadata is complete (migrations, drift check)."""
    for module in MODEL_MODULES:
        importlib.import_module(module)


async def load_demo(settings: Settings, clock: Clock | None = None) -> bool:
    """Every package's demo data, core first; True when anything was created."""
    from challenges.demo import load_challenge_demo
    from ideaforge.demo import load_demo as load_core_demo
    from ideas.demo import load_idea_demo

    now = (clock or SystemClock()).now()
    created = await load_core_demo(settings)
    database = Database(settings.resolved_database_url)
    try:
        async with database.sessionmaker() as session:
            created = await load_challenge_demo(session, now) or created
            created = await load_idea_demo(session, now) or created
    finally:
        await database.dispose()
    return created


async def provide_db_session(request: Request[Any, Any, Any]) -> AsyncIterator[AsyncSession]:
    async with request.app.state.db.sessionmaker() as session:
        yield session


async def _challenge_visible(session: AsyncSession, target_id: int, user: Any, now: Any) -> bool:
    from challenges.services import visible_challenge

    return await visible_challenge(session, target_id, user, now) is not None


async def _idea_visible(session: AsyncSession, target_id: int, user: Any, now: Any) -> bool:
    from ideas.services import visible_idea

    return await visible_idea(session, target_id, user, now) is not None


async def _announce_phases(db: Database, notifier: Any, clock: Clock, every: int) -> None:
    """Tell followers when a challenge's phase moves with its dates (the worker will own this)."""
    from challenges.services import announce_phase_changes

    log = structlog.get_logger("ideaforge.phases")
    while True:
        try:
            async with db.sessionmaker() as session:
                await announce_phase_changes(session, clock.now(), notifier)
        except Exception:
            log.exception("announcing phase changes failed")
        await asyncio.sleep(every)


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> Litestar:
    from challenges.api import ChallengeApi
    from challenges.views import ChallengeController, NewChallengeController, OrganisationChallengesController
    from ideaforge.accounts.api import AccountApi
    from ideaforge.accounts.throttle import LoginThrottle, make_storage
    from ideaforge.accounts.views import AccountController
    from ideaforge.health import healthz, readyz
    from ideaforge.home import home
    from ideaforge.jobs import InProcessJobs
    from ideaforge.logs import AccessLogMiddleware, configure_logging
    from ideaforge.mail import make_mailer
    from ideaforge.notifications.services import Notifier
    from ideaforge.notifications.views import NotificationController
    from ideaforge.organisations.views import InvitationController, OrganisationController
    from ideaforge.ratelimit import ActionLimits
    from ideaforge.web.auth import AuthMiddleware
    from ideaforge.web.errors import handle_exception
    from ideaforge.web.headers import security_headers
    from ideaforge.web.locale import LocaleMiddleware
    from ideaforge.web.sessions import RotatingSessionConfig
    from ideas.api import IdeaApi
    from ideas.moderation_views import ModerationController
    from ideas.views import ChallengeIdeasController, CommentController, IdeaController

    settings = settings or get_settings()
    configure_logging(json=settings.is_production)
    load_models()
    production = settings.is_production

    db = Database(settings.resolved_database_url)
    redis: Redis | None = Redis.from_url(settings.redis_url) if settings.redis_url else None
    session_store: Store = (
        RedisStore(redis, namespace=f"{settings.redis_prefix}:sessions") if redis else MemoryStore()
    )
    limit_storage = make_storage(settings.redis_url, settings.redis_prefix)
    login_throttle = LoginThrottle(
        limit_storage,
        per_account=settings.login_attempts_per_account,
        per_ip=settings.login_attempts_per_ip,
    )
    jobs = InProcessJobs()
    mailer = make_mailer(settings.smtp_url, settings.data_dir)
    notifier = Notifier(jobs=jobs, mailer=mailer, sender=settings.mail_from, base_url=settings.base_url,
                        default_locale=settings.default_locale)  # fmt: skip
    channels = ChannelsPlugin(
        backend=RedisChannelsPubSubBackend(redis=redis) if redis else MemoryChannelsBackend(history=0),
        arbitrary_channels_allowed=True,
    )

    session_config = RotatingSessionConfig(
        key="__Host-session" if production else "ideaforge_session",
        store="sessions",
        max_age=SESSION_MAX_AGE,
        secure=production,
        httponly=True,
        samesite="lax",
        exclude=["/api/", "/static/", "/healthz", "/readyz"],
    )
    csrf_config = CSRFConfig(
        secret=settings.resolved_secret_key,
        cookie_name="__Host-csrftoken" if production else "csrftoken",
        cookie_secure=production,
        cookie_httponly=True,
        cookie_samesite="lax",
        header_name="x-csrftoken",
        # The API authenticates with bearer tokens only (see ideaforge.web.auth).
        exclude=["/api/", "/healthz", "/readyz", "/static/"],
    )

    periodic: list[asyncio.Task[None]] = []

    async def on_startup() -> None:
        if settings.phase_check_seconds > 0:
            periodic.append(asyncio.create_task(_announce_phases(db, notifier, clock or SystemClock(),
                                                                 settings.phase_check_seconds)))  # fmt: skip

    async def on_shutdown() -> None:
        for task in periodic:
            task.cancel()
        await jobs.drain()
        await db.dispose()
        if redis is not None:
            await redis.aclose()

    return Litestar(
        route_handlers=[
            home,
            healthz,
            readyz,
            AccountController,
            OrganisationController,
            InvitationController,
            NotificationController,
            ChallengeController,
            NewChallengeController,
            OrganisationChallengesController,
            ChallengeIdeasController,
            IdeaController,
            CommentController,
            ModerationController,
            AccountApi,
            ChallengeApi,
            IdeaApi,
            create_static_files_router(path="/static", directories=[STATIC_DIR], include_in_schema=False),
        ],
        dependencies={"db_session": Provide(provide_db_session)},
        middleware=[AccessLogMiddleware, session_config.middleware, AuthMiddleware, LocaleMiddleware],
        csrf_config=csrf_config,
        stores=StoreRegistry(stores={"sessions": session_store}),
        plugins=[channels],
        exception_handlers={Exception: handle_exception},
        before_send=[security_headers(production=production)],
        openapi_config=OpenAPIConfig(
            title="IdeaForge API",
            version="1",
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
        ),
        request_max_body_size=MAX_BODY_BYTES,
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        state=State(
            {
                "settings": settings,
                "db": db,
                "redis": redis,
                "login_throttle": login_throttle,
                "action_limits": ActionLimits(limit_storage, settings.action_limits),
                "jobs": jobs,
                "clock": clock or SystemClock(),
                "mailer": mailer,
                "notifier": notifier,
                # What may be followed, and how to tell that a user can see it (core knows no domain).
                "follow_targets": {"challenge": _challenge_visible, "idea": _idea_visible},
            }
        ),
        debug=False,
    )
