"""The Redis job queue and `ideaforge worker`: jobs queued by the web app run in the worker, failures are
retried with backoff and then shown to superusers at /admin/jobs, and a worker killed with SIGKILL in the
middle of an embedding job loses nothing (another worker runs it again; each idea ends with one vector)."""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ideaforge.app import create_app, run_worker
from ideaforge.clock import FixedClock
from ideaforge.db import Database
from ideaforge.jobs import JobContext, RedisJobs, Worker, jobs_key
from ideaforge.mail import OutboxMailer
from ideaforge.settings import Settings
from ideas.jobs import EMBED_IDEA
from ideas.models import Idea, StoredVector
from ml.embedding import Embedder
from tests.challenge_helpers import DAY, make_challenge, make_organisation
from tests.conftest import RUN_ID, Backend, _delete_redis_prefix, _settings, _truncate_postgres
from tests.helpers import login, post_form, register
from tests.idea_helpers import make_idea, make_user
from tests.services import REDIS_URL

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

EMBEDDED_IDEAS = 12


@dataclass
class Queue:
    settings: Settings
    redis: Redis
    db: AsyncSession

    def key(self, *parts: str) -> str:
        return jobs_key(self.settings.redis_prefix, *parts)

    async def length(self, *parts: str) -> int:
        return int(await self.redis.llen(self.key(*parts)))

    async def processing(self) -> dict[str, list[str]]:
        """Each worker's processing list (by key) and the ids of the jobs in it."""
        found: dict[str, list[str]] = {}
        async for key in self.redis.scan_iter(match=self.key("processing", "*")):
            found[key.decode()] = [json.loads(raw)["id"] for raw in await self.redis.lrange(key, 0, -1)]
        return found

    async def idle(self) -> bool:
        """Nothing waiting, waiting for a retry, or running."""
        running = sum(len(jobs) for jobs in (await self.processing()).values())
        delayed = int(await self.redis.zcard(self.key("delayed")))
        return await self.length("queue") == 0 and delayed == 0 and running == 0


@pytest.fixture
async def queue(postgres_url: str, tmp_path: Path) -> AsyncIterator[Queue]:
    """PostgreSQL emptied, and a Redis prefix of the test's own; the settings queue jobs for a worker."""
    prefix = f"ideaforge-test-{RUN_ID}-{uuid.uuid4().hex[:6]}"
    await _truncate_postgres(postgres_url)
    settings = _settings(tmp_path, database_url=postgres_url, redis_url=REDIS_URL, redis_prefix=prefix,
                         jobs="redis", phase_check_seconds=0)  # fmt: skip
    redis = Redis.from_url(REDIS_URL)
    database = Database(postgres_url)
    try:
        async with database.sessionmaker() as session:
            yield Queue(settings, redis, session)
    finally:
        await database.dispose()
        await redis.aclose()
        await _delete_redis_prefix(prefix)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.05)


async def stored_idea_vectors(db: AsyncSession) -> tuple[int, int]:
    """(rows, distinct ideas) of stored idea vectors, read in a fresh transaction."""
    await db.rollback()
    rows, ideas = (await db.execute(select(func.count(), func.count(func.distinct(StoredVector.object_id)))
                                    .where(StoredVector.kind == "idea"))).one()  # fmt: skip
    await db.rollback()
    return int(rows), int(ideas)


async def superuser(db: AsyncSession, email: str) -> None:
    user = await make_user(db, email, "Ada Admin")
    user.is_superuser = True
    await db.commit()


# --- through the queue -------------------------------------------------------------------------------


@pytest.mark.smtp
async def test_jobs_the_web_app_queues_are_run_by_the_worker(
    queue: Queue, clock: FixedClock, embedder: Embedder, smtp_server: tuple[int, list[email.message.Message]]
) -> None:
    port, received = smtp_server
    settings = queue.settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{port}"})
    organiser = await make_user(queue.db, "organiser@example.org", "Organiser")
    challenge = await make_challenge(
        queue.db, await make_organisation(queue.db, organiser), clock.now(), tags=[]
    )
    app = create_app(settings, clock=clock, embedder=embedder)
    async with AsyncTestClient(app, base_url="http://testserver.local") as client:
        who = await register(client)  # queues the address's confirmation mail
        await queue.db.rollback()
        response = await post_form(client, f"/challenges/{challenge.id}/ideas/new", {
            "title": "Drinking fountains in every park", "language": "en",
            "body": "Free drinking water fountains in all the city parks, to refill bottles."})  # fmt: skip
        assert response.status_code == 303, response.text
        await app.state.jobs.drain()

        assert await queue.length("queue") == 2  # waiting for a worker: nothing ran in the web process
        assert received == []
        assert await stored_idea_vectors(queue.db) == (0, 0)

        stop = asyncio.Event()
        worker = asyncio.create_task(run_worker(settings, stop, embedder))
        try:
            await eventually(lambda: stored_vector_and_mail(queue, received), what="the worker's jobs")
        finally:
            stop.set()
            await asyncio.wait_for(worker, 10)
    assert await queue.idle()
    assert received[0]["To"] == who.email
    assert received[0]["Subject"] == "Confirm your email address for IdeaForge"


async def stored_vector_and_mail(queue: Queue, received: list[email.message.Message]) -> bool:
    return await stored_idea_vectors(queue.db) == (1, 1) and len(received) == 1 and await queue.idle()


async def test_a_retried_mail_is_not_sent_twice(queue: Queue, tmp_path: Path) -> None:
    """The mail job remembers the Message-IDs it sent: a job run again after sending sends nothing."""
    from ideaforge.mail import MAIL_JOBS, build_message, queue_mail

    outbox = tmp_path / "outbox"
    context = JobContext(queue.settings, Database(queue.settings.resolved_database_url), OutboxMailer(outbox),
                         queue.redis)  # fmt: skip
    jobs = _Recorder()
    queue_mail(jobs, build_message(sender="IdeaForge <noreply@ideaforge.localhost>", to="a@example.org",
                                   subject="Bonjour « à tous »", body="Salut\n", locale="fr"))  # fmt: skip
    name, payload = jobs.queued[0]
    for _run in range(2):
        await MAIL_JOBS[name](context, payload)
    sent = list(outbox.iterdir())
    assert len(sent) == 1
    message = email.message_from_bytes(sent[0].read_bytes(), policy=email.policy.default)
    assert message["Subject"] == "Bonjour « à tous »"
    await context.db.dispose()


class _Recorder:
    def __init__(self) -> None:
        self.queued: list[tuple[str, dict[str, Any]]] = []

    def enqueue(self, name: str, payload: dict[str, Any] | None = None) -> None:
        self.queued.append((name, payload or {}))

    async def drain(self) -> None:
        return None


# --- failures: retried with backoff, then shown to superusers ------------------------------------------


async def test_a_failing_job_is_retried_with_backoff_then_kept_for_admins(
    queue: Queue, clock: FixedClock, embedder: Embedder
) -> None:
    tries: list[float] = []

    async def broken(context: JobContext, payload: dict[str, Any]) -> None:
        tries.append(time.monotonic())
        raise RuntimeError(f"mail server says no to {payload['to']}")

    settings = queue.settings
    jobs = RedisJobs(queue.redis, settings.redis_prefix)
    jobs.enqueue("test.broken", {"to": "a@example.org"})
    await jobs.drain()
    context = JobContext(settings, Database(settings.resolved_database_url), OutboxMailer(settings.data_dir))
    worker = Worker(queue.redis, settings.redis_prefix, context, {"test.broken": broken}, attempts=3,
                    backoff=0.3)  # fmt: skip
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await eventually(lambda: _failed(queue), what="the job to fail for good")
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
        await context.db.dispose()

    assert len(tries) == 3
    first, second = tries[1] - tries[0], tries[2] - tries[1]
    assert 0.3 <= first < 1.5  # 0.3 s,
    assert 0.6 <= second < 2.0  # then twice as long
    assert await queue.idle()
    [failed] = await jobs.failed()
    assert (failed.name, failed.attempts) == ("test.broken", 3)
    assert failed.error == "RuntimeError: mail server says no to a@example.org"

    app = create_app(settings, clock=clock, embedder=embedder)
    async with AsyncTestClient(app, base_url="http://testserver.local") as client:
        assert (await client.get("/admin/jobs")).status_code == 404  # anonymous
        await make_user(queue.db, "citizen@example.org", "Citizen")
        assert (await login(client, "citizen@example.org")).status_code == 303
        assert (await client.get("/admin/jobs")).status_code == 404
        refused = await post_form(client, "/admin/jobs/retry", {"job": failed.id})
        assert refused.status_code == 404
        assert await queue.length("failed") == 1

        await superuser(queue.db, "admin@example.org")
        await post_form(client, "/logout", {})
        assert (await login(client, "admin@example.org")).status_code == 303
        page = await client.get("/admin/jobs")
        assert page.status_code == 200
        assert "test.broken" in page.text
        assert "RuntimeError: mail server says no to a@example.org" in page.text

        retried = await post_form(client, "/admin/jobs/retry", {"job": failed.id})
        assert retried.status_code == 303
        assert await queue.length("failed") == 0
        assert await queue.length("queue") == 1
        again = await post_form(
            client, "/admin/jobs/retry", {"job": failed.id}
        )  # a second click: queued once
        assert again.status_code == 303
        assert await queue.length("queue") == 1
        assert "No failed job." in (await client.get("/admin/jobs")).text


async def _failed(queue: Queue) -> bool:
    return await queue.length("failed") == 1


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_in_the_embedded_default_the_page_says_jobs_run_in_process(
    client: AsyncTestClient[Litestar], db: AsyncSession, backend: Backend
) -> None:
    await superuser(db, "admin@example.org")
    assert (await login(client, "admin@example.org")).status_code == 303
    page = await client.get("/admin/jobs")
    assert page.status_code == 200
    assert "Background jobs run inside the web process" in page.text
    assert (await post_form(client, "/admin/jobs/retry", {"job": "x"})).status_code == 404


# --- a worker killed mid-job ------------------------------------------------------------------------------


def _start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "IDEAFORGE_ENV": "test",
        "IDEAFORGE_DATA_DIR": str(settings.data_dir),
        "IDEAFORGE_DATABASE_URL": settings.resolved_database_url,
        "IDEAFORGE_REDIS_URL": settings.redis_url,
        "IDEAFORGE_REDIS_PREFIX": settings.redis_prefix,
        "IDEAFORGE_SECRET_KEY": settings.resolved_secret_key,
        "IDEAFORGE_JOBS": "redis",
        "IDEAFORGE_PHASE_CHECK_SECONDS": "0",
        "IDEAFORGE_WORKER_HEARTBEAT_SECONDS": "0.5",  # dead after 1.5 s of silence
        "HF_HUB_OFFLINE": "1",
    }
    with log.open("wb") as out:
        return subprocess.Popen([str(Path(sys.executable).parent / "ideaforge"), "worker"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip


async def test_a_worker_killed_during_an_embedding_job_loses_nothing(
    queue: Queue, clock: FixedClock, tmp_path: Path
) -> None:
    settings = queue.settings
    author = await make_user(queue.db, "author@example.org", "Author")
    challenge = await make_challenge(
        queue.db, await make_organisation(queue.db, author), clock.now(), tags=[]
    )
    at = challenge.submission_starts_at + DAY
    ids = [(await make_idea(queue.db, challenge, author, at, title=f"Idea number {n} for greener streets",
                            body=f"Plant trees along street {n}, with benches and water for them. " * 8)).id
           for n in range(EMBEDDED_IDEAS)]  # fmt: skip
    jobs = RedisJobs(queue.redis, settings.redis_prefix)
    for idea_id in ids:
        jobs.enqueue(EMBED_IDEA, {"idea_id": idea_id})
    await jobs.drain()

    first = _start_worker(settings, tmp_path / "worker-1.log")
    try:
        await eventually(lambda: _some_vector(queue), within=60, what="the first worker to embed an idea")
        killed: list[str] = []
        deadline = time.monotonic() + 10
        while not killed and time.monotonic() < deadline:  # kill it while it holds a job
            if any((await queue.processing()).values()):
                first.send_signal(signal.SIGKILL)
                first.wait(10)
                killed = [job for jobs in (await queue.processing()).values() for job in jobs]
        assert killed, "the worker was never caught in the middle of a job"
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
    done_before, _ideas = await stored_idea_vectors(queue.db)
    assert done_before < EMBEDDED_IDEAS

    log = tmp_path / "worker-2.log"
    second = _start_worker(settings, log)
    try:
        await eventually(lambda: _all_embedded(queue), within=60, what="every idea to be embedded")
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0  # a graceful stop
    finally:
        if second.poll() is None:
            second.kill()
            second.wait(10)

    assert await stored_idea_vectors(queue.db) == (EMBEDDED_IDEAS, EMBEDDED_IDEAS)
    assert await queue.idle()
    assert await queue.length("failed") == 0
    assert not await queue.processing()
    output = log.read_text()
    for job_id in killed:
        assert re.search(rf"job recovered from a dead worker.*job_id={job_id}", output), output
        assert re.search(rf"job done.*job_id={job_id}", output), output
    await queue.db.rollback()
    assert await queue.db.scalar(select(func.count()).select_from(Idea)) == EMBEDDED_IDEAS


async def _some_vector(queue: Queue) -> bool:
    return (await stored_idea_vectors(queue.db))[0] > 0


async def _all_embedded(queue: Queue) -> bool:
    return await stored_idea_vectors(queue.db) == (EMBEDDED_IDEAS, EMBEDDED_IDEAS) and await queue.idle()
