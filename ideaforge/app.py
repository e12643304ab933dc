"""Composition root: the only core module that knows every domain package."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from ideaforge.clock import Clock, SystemClock
from ideaforge.db import Database
from ideaforge.settings import Settings, get_settings

if TYPE_CHECKING:
    from ideaforge.jobs import Handler, JobContext, JobQueue
    from ideas.similarity import Similarity
    from ml.dedup import DuplicateScorer, Pair
    from ml.embedding import Embedder

STATIC_DIR = Path(__file__).resolve().parent / "static"
SESSION_MAX_AGE = 14 * 24 * 3600
MAX_BODY_BYTES = 1024 * 1024


# Every module that defines tables. Imported by name: a linter cannot drop an "unused" import here.
MODEL_MODULES = (
    "ideaforge.accounts.models",
    "ideaforge.organisations.models",
    "ideaforge.audit",
    "ideaforge.notifications.models",
    "ideaforge.profiles.models",
    "challenges.models",
    "ideas.models",
    "ideas.jury.models",
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
    from ideas.jury.demo import load_jury_demo

    now = (clock or SystemClock()).now()
    created = await load_core_demo(settings)
    database = Database(settings.resolved_database_url)
    try:
        async with database.sessionmaker() as session:
            created = await load_challenge_demo(session, now) or created
            created = await load_idea_demo(session, now) or created
            created = await load_jury_demo(session, now) or created
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
    """Tell followers when a challenge's phase moves with its dates (in the worker with IDEAFORGE_JOBS=redis)."""
    from challenges.services import announce_phase_changes

    log = structlog.get_logger("ideaforge.phases")
    while True:
        try:
            async with db.sessionmaker() as session:
                await announce_phase_changes(session, clock.now(), notifier)
        except Exception:
            log.exception("announcing phase changes failed")
        await asyncio.sleep(every)


def job_handlers() -> dict[str, Handler]:
    """Every package's job handlers, by name: core's mail, the ideas' embedding."""
    from ideaforge.mail import MAIL_JOBS
    from ideas.jobs import IDEA_JOBS

    return {**MAIL_JOBS, **IDEA_JOBS}


def make_job_queue(settings: Settings, context: JobContext, redis: Redis | None) -> JobQueue:
    """In-process by default; the Redis queue (for `ideaforge worker`) with IDEAFORGE_JOBS=redis."""
    from ideaforge.jobs import InProcessJobs, RedisJobs

    if settings.jobs == "redis" and redis is not None:
        return RedisJobs(redis, settings.redis_prefix)
    return InProcessJobs(context, job_handlers())


async def start_similarity(
    settings: Settings,
    db: Database,
    jobs: JobQueue,
    embedder: Embedder | None = None,
    redis: Redis | None = None,
    *,
    writes_snapshot: bool = True,
) -> Similarity:
    """The process's ``Similarity``, started: the model that the settings name (or ``embedder``), its
    scorer, and the vector index loaded or rebuilt. The web app and the worker start it the same way.
    With ``redis``, every stored or dropped vector bumps a version there that the other processes follow
    (``follow_vectors``)."""
    from ideas.similarity import Similarity, SimilarityUnavailable, load_embedder, load_scorer

    try:
        model = embedder.model_name if embedder is not None else settings.embedding_model
        scorer = load_scorer(model, settings.dedup_scorer)
        if embedder is None:
            embedder = await asyncio.to_thread(
                load_embedder, settings.embedding_model, settings.embedding_precision, settings.torch_threads
            )
    except SimilarityUnavailable as exc:
        structlog.get_logger("ideaforge.startup").error("cannot start", reason=str(exc))
        raise
    on_change = _version_bumper(redis, vector_version_key(settings)) if redis is not None else None
    similarity = Similarity(embedder, scorer, db, settings.data_dir, jobs, writes_snapshot=writes_snapshot,
                            on_change=on_change)  # fmt: skip
    await similarity.start()
    return similarity


def vector_version_key(settings: Settings) -> str:
    return f"{settings.redis_prefix}:vectors:version"


def _version_bumper(redis: Redis, key: str) -> Callable[[], None]:
    """``on_change`` for ``Similarity``: bump the vectors' version in Redis, without waiting for it."""
    pending: set[asyncio.Task[None]] = set()
    log = structlog.get_logger("ideaforge.vectors")

    async def bump() -> None:
        try:
            await redis.incr(key)
        except RedisError as exc:  # the others still catch up by polling
            log.warning("vector version not announced", error=str(exc))

    def changed() -> None:
        task = asyncio.get_running_loop().create_task(bump())
        pending.add(task)
        task.add_done_callback(pending.discard)

    return changed


async def follow_vectors(similarity: Similarity, redis: Redis, key: str, every: float,
                         fallback: float = 30.0) -> None:  # fmt: skip
    """Keep this process's index up to date with the vectors the other processes store: catch up when the
    version in Redis moves, and every ``fallback`` seconds whatever it says (Redis down or a lost bump)."""
    log = structlog.get_logger("ideaforge.vectors")
    loop = asyncio.get_running_loop()
    seen: bytes | str | None = None
    last = loop.time()
    while True:
        await asyncio.sleep(every)
        try:
            version = await redis.get(key)
        except RedisError:
            version = seen
        if version == seen and loop.time() - last < fallback:
            continue
        try:
            await similarity.catch_up()
        except Exception:
            log.exception("catching up with the stored vectors failed; trying again")
            continue
        seen, last = version, loop.time()


async def run_worker(settings: Settings, stop: asyncio.Event, embedder: Embedder | None = None) -> None:
    """``ideaforge worker``: run jobs from the Redis queue until ``stop`` is set, with the same services
    as the web app; also tells followers of phase changes (the web processes leave that to the worker)."""
    from ideaforge.jobs import JobContext, RedisJobs, Worker
    from ideaforge.mail import make_mailer
    from ideaforge.notifications.services import Notifier

    if not settings.redis_url:
        raise SettingUnusable("the worker takes its jobs from Redis: set IDEAFORGE_REDIS_URL")
    load_models()
    log = structlog.get_logger("ideaforge.worker")
    if settings.jobs != "redis":
        log.warning("IDEAFORGE_JOBS is not redis: the web processes run their jobs themselves")
    db = Database(settings.resolved_database_url)
    redis = Redis.from_url(settings.redis_url)
    jobs = RedisJobs(redis, settings.redis_prefix)  # the jobs these jobs queue (mails of notifications)
    context = JobContext(settings, db, make_mailer(settings.smtp_url, settings.data_dir), redis)
    worker = Worker(redis, settings.redis_prefix, context, job_handlers(),
                    heartbeat=settings.worker_heartbeat_seconds)  # fmt: skip
    similarity: Similarity | None = None
    periodic: list[asyncio.Task[None]] = []
    try:
        similarity = await start_similarity(settings, db, jobs, embedder, redis)  # the snapshot's one writer
        context.services["similarity"] = similarity
        periodic.append(asyncio.create_task(
            follow_vectors(similarity, redis, vector_version_key(settings), settings.index_poll_seconds)))  # fmt: skip
        if settings.phase_check_seconds > 0:
            notifier = Notifier(jobs=jobs, sender=settings.mail_from, base_url=settings.base_url,
                                default_locale=settings.default_locale)  # fmt: skip
            periodic.append(asyncio.create_task(
                _announce_phases(db, notifier, SystemClock(), settings.phase_check_seconds)))  # fmt: skip
        await worker.run(stop)
    finally:
        for task in periodic:
            task.cancel()
        await jobs.drain()
        if similarity is not None:
            await similarity.close()
        await db.dispose()
        await redis.aclose()


def create_app(
    settings: Settings | None = None, clock: Clock | None = None, embedder: Any = None
) -> Litestar:
    """``embedder``: an already loaded ``ml.embedding.Embedder`` (tests share one); by default the
    model that ``settings.embedding_model`` names is loaded at start-up."""
    from challenges.api import ChallengeApi
    from challenges.views import ChallengeController, NewChallengeController, OrganisationChallengesController
    from ideaforge.accounts.api import AccountApi
    from ideaforge.accounts.throttle import LoginThrottle, make_storage
    from ideaforge.accounts.views import AccountController
    from ideaforge.health import healthz, readyz
    from ideaforge.home import home
    from ideaforge.jobs import JobContext
    from ideaforge.jobs_views import JobsAdminController
    from ideaforge.logs import AccessLogMiddleware, configure_logging
    from ideaforge.mail import make_mailer
    from ideaforge.metrics import MetricsMiddleware, count_unrouted, mark_this_process_dead, metrics_endpoint
    from ideaforge.notifications.services import Notifier
    from ideaforge.notifications.views import NotificationController
    from ideaforge.organisations.views import InvitationController, OrganisationController
    from ideaforge.profiles.views import ExpertiseController, PartnerProfileController
    from ideaforge.ratelimit import ActionLimits
    from ideaforge.web.auth import AuthMiddleware
    from ideaforge.web.errors import handle_exception
    from ideaforge.web.headers import security_headers
    from ideaforge.web.ids import reject_impossible_ids
    from ideaforge.web.locale import LocaleMiddleware
    from ideaforge.web.sessions import RotatingSessionConfig
    from ideas.api import IdeaApi
    from ideas.duplicate_views import DuplicateController, MergeController
    from ideas.jury.panel_views import JuryController, JuryInvitationController
    from ideas.jury.results import winners_of
    from ideas.jury.results_views import ResultsApi, ResultsController
    from ideas.jury.scoring_views import ScoringController
    from ideas.matching.expert_views import ExpertAssignmentController
    from ideas.matching.partner_views import (
        PartnerDirectoryController,
        PartnerInterestsController,
        PartnerSuggestionsController,
    )
    from ideas.moderation_views import ModerationController
    from ideas.shortlist_views import ShortlistController
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
    mailer = make_mailer(settings.smtp_url, settings.data_dir)
    job_context = JobContext(settings, db, mailer, redis)  # its "similarity" is added at start-up
    jobs = make_job_queue(settings, job_context, redis)
    notifier = Notifier(jobs=jobs, sender=settings.mail_from, base_url=settings.base_url,
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
        exclude=["/api/", "/static/", "/healthz", "/readyz", "/metrics"],
    )
    csrf_config = CSRFConfig(
        secret=settings.resolved_secret_key,
        cookie_name="__Host-csrftoken" if production else "csrftoken",
        cookie_secure=production,
        cookie_httponly=True,
        cookie_samesite="lax",
        header_name="x-csrftoken",
        # The API authenticates with bearer tokens only (see ideaforge.web.auth).
        exclude=["/api/", "/healthz", "/readyz", "/metrics", "/static/"],
    )

    periodic: list[asyncio.Task[None]] = []

    async def on_startup(app: Litestar) -> None:
        # With a worker, it writes the index snapshot; web processes load it and follow the version.
        similarity = await start_similarity(settings, db, jobs, embedder, redis,
                                            writes_snapshot=settings.jobs != "redis")  # fmt: skip
        if redis is not None:
            periodic.append(asyncio.create_task(
                follow_vectors(similarity, redis, vector_version_key(settings), settings.index_poll_seconds)))  # fmt: skip
        job_context.services["similarity"] = similarity
        app.state.similarity = similarity
        app.state.meaning_search = similarity.search_challenges  # the directory's search by meaning
        app.state.profile_changed = similarity.schedule_profile  # core's profiles are embedded after commit
        if settings.phase_check_seconds > 0 and settings.jobs == "inprocess":  # else the worker does it
            periodic.append(asyncio.create_task(_announce_phases(db, notifier, clock or SystemClock(),
                                                                 settings.phase_check_seconds)))  # fmt: skip

    async def on_shutdown(app: Litestar) -> None:
        for task in periodic:
            task.cancel()
        await jobs.drain()
        if getattr(app.state, "similarity", None) is not None:
            await app.state.similarity.close()
        await db.dispose()
        if redis is not None:
            await redis.aclose()
        if settings.metrics_enabled:
            mark_this_process_dead()  # its in-progress gauge stops counting (multi-process mode)

    # /metrics: for the internal network only (restrict it at the proxy); IDEAFORGE_METRICS=false removes it.
    metrics = settings.metrics_enabled

    return Litestar(
        route_handlers=[
            home,
            healthz,
            readyz,
            *([metrics_endpoint] if metrics else []),
            AccountController,
            OrganisationController,
            InvitationController,
            ExpertiseController,
            PartnerProfileController,
            NotificationController,
            JobsAdminController,
            ChallengeController,
            NewChallengeController,
            OrganisationChallengesController,
            ChallengeIdeasController,
            IdeaController,
            CommentController,
            ModerationController,
            DuplicateController,
            MergeController,
            ExpertAssignmentController,
            ShortlistController,
            JuryController,
            JuryInvitationController,
            ScoringController,
            PartnerSuggestionsController,
            PartnerInterestsController,
            PartnerDirectoryController,
            ResultsController,
            AccountApi,
            ChallengeApi,
            IdeaApi,
            ResultsApi,
            create_static_files_router(path="/static", directories=[STATIC_DIR], include_in_schema=False),
        ],
        dependencies={"db_session": Provide(provide_db_session)},
        middleware=[
            *([MetricsMiddleware] if metrics else []),
            AccessLogMiddleware,
            session_config.middleware,
            AuthMiddleware,
            LocaleMiddleware,
        ],
        csrf_config=csrf_config,
        stores=StoreRegistry(stores={"sessions": session_store}),
        plugins=[channels],
        exception_handlers={Exception: handle_exception},
        before_request=reject_impossible_ids,
        before_send=[security_headers(production=production), *([count_unrouted] if metrics else [])],
        openapi_config=OpenAPIConfig(
            title="IdeaForge API",
            version="1",
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
        ),
        request_max_body_size=MAX_BODY_BYTES,
        logging_config=None,  # configure_logging owns the root logger: JSON lines in production, stdlib too
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
                # The challenge page lists the published winners (the jury lives in the ideas package).
                "published_winners": winners_of,
            }
        ),
        debug=False,
    )


# --- operator commands: the vector index and the duplicate scorer (``ideaforge index|eval|dedup``) ------
# Each loads exactly what the app loads at start-up (settings, database, model, scorer). ``embedder``: an
# already loaded model to use instead of the one the settings name (tests share one).


class SettingUnusable(RuntimeError):
    """A setting names a model or scorer that cannot be loaded; the message names the setting."""


@dataclass(frozen=True)
class IndexStatus:
    model: str
    stored_vectors: int
    ideas: int
    needing_embedding: int
    snapshot: Path
    snapshot_vectors: int | None
    """What the snapshot's manifest says it holds; None when there is no readable snapshot."""


@dataclass(frozen=True)
class RebuildReport:
    model: str
    embedded: int
    indexed: int
    snapshot: Path


def _scorer_for(settings: Settings, model: str) -> DuplicateScorer:
    from ideas.similarity import SimilarityUnavailable, load_scorer

    try:
        return load_scorer(model, settings.dedup_scorer)
    except SimilarityUnavailable as exc:
        raise SettingUnusable(str(exc)) from exc


async def _embedder_for(settings: Settings, embedder: Embedder | None) -> Embedder:
    from ideas.similarity import SimilarityUnavailable, load_embedder

    if embedder is not None:
        return embedder
    try:
        return await asyncio.to_thread(
            load_embedder, settings.embedding_model, settings.embedding_precision, settings.torch_threads
        )
    except SimilarityUnavailable as exc:
        raise SettingUnusable(str(exc)) from exc


@asynccontextmanager
async def similarity_service(
    settings: Settings, embedder: Embedder | None = None
) -> AsyncIterator[Similarity]:
    """The app's ``Similarity`` (same model, scorer, database and snapshot directory), without the web app."""
    from ideaforge.jobs import InProcessJobs, JobContext
    from ideaforge.mail import make_mailer
    from ideas.similarity import Similarity

    load_models()
    model = embedder.model_name if embedder is not None else settings.embedding_model
    scorer = _scorer_for(settings, model)
    loaded = await _embedder_for(settings, embedder)
    database = Database(settings.resolved_database_url)
    context = JobContext(settings, database, make_mailer(settings.smtp_url, settings.data_dir))
    jobs = InProcessJobs(context, job_handlers())
    similarity = Similarity(loaded, scorer, database, settings.data_dir, jobs)
    context.services["similarity"] = similarity
    try:
        yield similarity
    finally:
        await jobs.drain()
        await similarity.close()
        await database.dispose()


async def ideas_needing_embedding(similarity: Similarity) -> int:
    async with similarity.db.sessionmaker() as session:
        return await similarity.outdated(session)


async def rebuild_vector_index(
    similarity: Similarity, progress: Callable[[int], None] | None = None
) -> RebuildReport:
    """Embed every idea without a vector from the current model, then rebuild and save the snapshot."""
    embedded = await similarity.reembed(progress)
    return RebuildReport(similarity.model, embedded, len(similarity.index), similarity.snapshot_dir)


async def index_status(settings: Settings) -> IndexStatus:
    """What the database and the snapshot hold for the configured model (the model is not loaded)."""
    import json

    from sqlalchemy import func, select

    from ideas.models import Idea, StoredVector
    from ml.dedup import slug
    from ml.index import MANIFEST

    load_models()
    model = settings.embedding_model
    database = Database(settings.resolved_database_url)
    try:
        async with database.sessionmaker() as session:
            current = select(StoredVector.object_id).where(
                StoredVector.kind == "idea", StoredVector.model == model
            )
            stored = await session.scalar(
                select(func.count()).select_from(StoredVector).where(StoredVector.model == model)
            )
            ideas = await session.scalar(select(func.count()).select_from(Idea))
            outdated = await session.scalar(
                select(func.count()).select_from(Idea).where(Idea.id.not_in(current))
            )
    finally:
        await database.dispose()
    snapshot = settings.data_dir / "index" / slug(model)
    try:
        manifest = json.loads((snapshot / MANIFEST).read_text())
        in_snapshot: int | None = sum(int(p["count"]) for p in manifest["partitions"].values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        in_snapshot = None
    return IndexStatus(model, stored or 0, ideas or 0, outdated or 0, snapshot, in_snapshot)


def read_pair_file(path: Path) -> list[Pair]:
    """Labelled pairs from a JSON-lines file; ValueError (one line, naming the file) when unusable."""
    from ml.dedup import read_pairs

    try:
        pairs = read_pairs(path)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from exc
    if not pairs:
        raise ValueError(f"{path}: no pairs in the file")
    return pairs


async def evaluate_dedup(
    settings: Settings, pairs: Sequence[Pair], embedder: Embedder | None = None
) -> dict[str, Any]:
    """``ml.evaluation.evaluate`` with exactly the app's scorer, model and threshold (nothing fitted here)."""
    from ml.evaluation import evaluate

    model = embedder.model_name if embedder is not None else settings.embedding_model
    scorer = _scorer_for(settings, model)
    loaded = await _embedder_for(settings, embedder)
    return await asyncio.to_thread(evaluate, scorer, loaded, pairs)


def scorer_destination(settings: Settings, out: Path | None = None) -> Path:
    """Where ``dedup fit`` writes: ``out``, else the file the app would load for the configured model."""
    from ml.dedup import default_scorer_path

    return out or settings.dedup_scorer or default_scorer_path(settings.embedding_model)


async def fit_dedup_scorer(settings: Settings, pairs: Sequence[Pair], destination: Path,
                           embedder: Embedder | None = None) -> DuplicateScorer:  # fmt: skip
    """Fit a scorer on ``pairs`` with cosines from the configured model and save it at ``destination``.
    ValueError when the pairs cannot be fitted (one class only, too few for cross-validation)."""
    from ml.dedup import fit
    from ml.evaluation import pair_cosines

    if len({p.duplicate for p in pairs}) < 2:
        raise ValueError("the pairs need both duplicates and non-duplicates")
    loaded = await _embedder_for(settings, embedder)
    cosines = await asyncio.to_thread(pair_cosines, loaded, pairs)
    scorer = await asyncio.to_thread(fit, pairs, cosines, loaded.model_name)
    scorer.save(destination)
    return scorer


def read_match_file(path: Path) -> Any:
    """A labelled matching file, checked; ValueError (one line, naming the file) when unusable."""
    import json

    from ml.match_evaluation import parse_match_data

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        parse_match_data(data)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from exc
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return data


async def evaluate_match_file(
    settings: Settings, data: Any, embedder: Embedder | None = None
) -> dict[str, Any]:
    """``ml.match_evaluation.evaluate_match`` with the app's model (nothing fitted here)."""
    from ml.match_evaluation import evaluate_match

    loaded = await _embedder_for(settings, embedder)
    return await asyncio.to_thread(evaluate_match, data, loaded)
