"""Background jobs, by name: embedding, matching, email, notifications.

A job is a name and a JSON payload. A handler, registered under that name by the package that owns
the work (core's mail in ``ideaforge.mail``, the ideas' embedding in ``ideas.jobs``; the composition
root puts them together), does the work with the process's services (``JobContext``). Services call
``enqueue`` only after they have committed, so a job never sees data that a rollback later removes.

Two queues run the same handlers on the same JSON:

- ``InProcessJobs`` (the embedded default, IDEAFORGE_JOBS=inprocess): each job runs in the process that
  queued it, right after the commit; a failure is logged, not retried. ``drain`` waits for everything
  in flight (shutdown, tests).
- ``RedisJobs`` (IDEAFORGE_JOBS=redis): the job is pushed onto a Redis list and ``ideaforge worker``
  (``Worker``) runs it; a failure is retried with exponential backoff, and after ``attempts`` tries the
  job is kept in a capped ``failed`` list that superusers see, and can retry, at /admin/jobs.

A job can run more than once (a retry after a failure, a worker killed mid-way), so every handler is
idempotent: embedding re-stores the same vector in the same row, mail skips a Message-ID already sent.

Redis keys, under ``{IDEAFORGE_REDIS_PREFIX}:jobs:`` (a reliable queue: a job is always in exactly one
place, moved atomically):

``queue``                new jobs pushed on the left; a worker moves the oldest (right) to its own...
``processing:<worker>``  ...list while it runs it, and removes it when done
``worker:<worker>``      the worker's heartbeat, with a TTL: when it is gone the worker is dead, and any
                         job left in its ``processing`` list goes back to the queue
``delayed``              sorted set of jobs waiting for a retry, scored by due time (Unix seconds)
``failed``               jobs out of attempts, newest first, capped at ``FAILED_KEPT``
``sent:<Message-ID>``    mails already handed to the mail server (a retry does not send them twice)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from ideaforge.db import Database
    from ideaforge.mail import Mailer
    from ideaforge.settings import Settings

log = structlog.get_logger(__name__)

Payload = dict[str, Any]
ATTEMPTS = 5
"""Tries before a job is kept as failed."""
BACKOFF_SECONDS = 5.0
"""Wait before the first retry; doubled at each further one (5 s, 10 s, 20 s, 40 s), up to ``MAX_BACKOFF``."""
MAX_BACKOFF_SECONDS = 600.0
FAILED_KEPT = 1000
ERROR_CHARS = 1000


@dataclass
class JobContext:
    """What handlers work with: the process's settings and services."""

    settings: Settings
    db: Database
    mailer: Mailer
    redis: Redis | None = None
    services: dict[str, Any] = field(default_factory=dict)
    """Domain services that the composition root adds once they are loaded ("similarity")."""


Handler = Callable[[JobContext, Payload], Awaitable[None]]


class JobQueue(Protocol):
    def enqueue(self, name: str, payload: Payload | None = None) -> None:
        """Queue the job ``name``; ``payload`` must be JSON-able. Call only after the commit."""
        ...

    async def drain(self) -> None: ...


def jobs_key(prefix: str, *parts: str) -> str:
    return ":".join((prefix, "jobs", *parts))


def new_job(name: str, payload: Payload | None = None) -> Payload:
    """The job's record, as JSON sees it (a payload that JSON cannot carry fails here, in the caller)."""
    record = {"id": uuid.uuid4().hex, "name": name, "payload": payload or {}, "attempts": 0,
              "enqueued_at": datetime.now(UTC).isoformat()}  # fmt: skip
    parsed: Payload = json.loads(json.dumps(record))
    return parsed


def _describe(job: Mapping[str, Any]) -> dict[str, Any]:
    """The job in a log line: never its payload (mails carry one-time links)."""
    return {"job": job.get("name"), "job_id": job.get("id")}


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]


async def _run_handler(context: JobContext, handlers: Mapping[str, Handler], job: Payload) -> None:
    handler = handlers.get(job["name"])
    if handler is None:
        raise LookupError(f"no handler for the job {job['name']!r}")
    await handler(context, job["payload"])


# --- the embedded default ------------------------------------------------------------------------------


class InProcessJobs:
    """Runs each job in this process as soon as it is queued (after the caller's commit)."""

    def __init__(self, context: JobContext, handlers: Mapping[str, Handler]) -> None:
        self.context = context
        self.handlers = handlers
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def enqueue(self, name: str, payload: Payload | None = None) -> None:
        if name not in self.handlers:
            raise LookupError(f"no handler for the job {name!r}")
        job = new_job(name, payload)
        self._loop = asyncio.get_running_loop()
        task = self._loop.create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job: Payload) -> None:
        started = time.monotonic()
        try:
            await _run_handler(self.context, self.handlers, job)
        except Exception as exc:
            log.exception("job failed", **_describe(job), attempt=1, outcome="failed", error=_error(exc),
                          duration_ms=round((time.monotonic() - started) * 1000))  # fmt: skip
        else:
            log.debug("job done", **_describe(job), attempt=1, outcome="done",
                      duration_ms=round((time.monotonic() - started) * 1000))  # fmt: skip

    async def drain(self) -> None:
        loop = self._loop
        if loop is None or loop is asyncio.get_running_loop():
            await self._drain_here()
        else:
            # Called from another thread's loop (a test client serving the app from a portal).
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._drain_here(), loop))

    async def _drain_here(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


# --- the Redis queue (production) --------------------------------------------------------------------

# Due retries back onto the queue, atomically (a job is never in both places, nor in neither).
_PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, job in ipairs(due) do
  redis.call('ZREM', KEYS[1], job)
  redis.call('LPUSH', KEYS[2], job)
end
return #due
"""
# A failed job back onto the queue, once (two admins clicking "retry" queue it once).
_RETRY = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class FailedJob:
    id: str
    name: str
    attempts: int
    error: str
    enqueued_at: datetime | None
    failed_at: datetime | None


def _moment(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


class RedisJobs:
    """The web processes' side of the Redis queue: push jobs, and show and retry the failed ones."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def key(self, *parts: str) -> str:
        return jobs_key(self.prefix, *parts)

    def enqueue(self, name: str, payload: Payload | None = None) -> None:
        """Push without making the caller wait; ``drain`` waits for the pushes in flight."""
        job = new_job(name, payload)
        self._loop = asyncio.get_running_loop()
        task = self._loop.create_task(self._push(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _push(self, job: Payload) -> None:
        try:
            await self.push(job)
        except Exception:
            log.exception("job could not be queued", **_describe(job))

    async def push(self, job: Payload) -> None:
        await self.redis.lpush(self.key("queue"), json.dumps(job))

    async def drain(self) -> None:
        loop = self._loop
        if loop is None or loop is asyncio.get_running_loop():
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
        else:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.drain(), loop))

    async def counts(self) -> dict[str, int]:
        """How many jobs wait, wait for a retry, run now, and have failed."""
        running = 0
        async for key in self.redis.scan_iter(match=self.key("processing", "*"), count=100):
            running += await self.redis.llen(key)
        return {
            "queued": await self.redis.llen(self.key("queue")),
            "delayed": await self.redis.zcard(self.key("delayed")),
            "running": running,
            "failed": await self.redis.llen(self.key("failed")),
        }

    async def failed(self, limit: int = 100) -> list[FailedJob]:
        """The failed jobs, newest first."""
        found: list[FailedJob] = []
        for raw in await self.redis.lrange(self.key("failed"), 0, limit - 1):
            try:
                job = json.loads(raw)
                found.append(FailedJob(str(job["id"]), str(job["name"]), int(job.get("attempts", 0)),
                                       str(job.get("error", "")), _moment(job.get("enqueued_at")),
                                       _moment(job.get("failed_at"))))  # fmt: skip
            except (ValueError, KeyError, TypeError):
                log.warning("unreadable entry in the failed jobs list")
        return found

    async def retry(self, job_id: str) -> bool:
        """Put a failed job back on the queue with fresh attempts; False when it is no longer failed."""
        for raw in await self.redis.lrange(self.key("failed"), 0, -1):
            try:
                job = json.loads(raw)
            except ValueError:
                continue
            if job.get("id") != job_id:
                continue
            fresh = {k: v for k, v in job.items() if k not in ("error", "failed_at")} | {"attempts": 0}
            moved = await self.redis.eval(
                _RETRY, 2, self.key("failed"), self.key("queue"), raw, json.dumps(fresh)
            )
            if moved:
                log.info("failed job queued again", **_describe(job))
            return bool(moved)
        return False


def worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker:
    """Runs jobs from the Redis queue, one at a time, until ``stop`` is set (the current job finishes)."""

    def __init__(self, redis: Redis, prefix: str, context: JobContext, handlers: Mapping[str, Handler], *,
                 attempts: int = ATTEMPTS, backoff: float = BACKOFF_SECONDS,
                 max_backoff: float = MAX_BACKOFF_SECONDS, heartbeat: float = 10.0,
                 name: str | None = None) -> None:  # fmt: skip
        self.redis = redis
        self.prefix = prefix
        self.context = context
        self.handlers = handlers
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.heartbeat = heartbeat
        self.name = name or worker_name()
        self.processing = self.key("processing", self.name)

    def key(self, *parts: str) -> str:
        return jobs_key(self.prefix, *parts)

    def delay(self, attempt: int) -> float:
        """Seconds before retry number ``attempt`` (1, 2...)."""
        return float(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))

    async def run(self, stop: asyncio.Event) -> None:
        await self._beat()  # alive before holding any job, so no one takes this worker's jobs for orphans
        beating = asyncio.create_task(self._keep_beating(stop))
        log.info("worker started", worker=self.name)
        try:
            await self.recover_orphans()
            while not stop.is_set():
                try:
                    await self._next()
                except RedisError as exc:  # Redis restarting: wait for it, and run again what was under way
                    log.warning("worker lost Redis; trying again", worker=self.name, error=_error(exc))
                    await asyncio.sleep(1)
                    await self._requeue_own()
        finally:
            beating.cancel()
            with contextlib.suppress(RedisError):
                await self.redis.delete(self.key("worker", self.name))
            log.info("worker stopped", worker=self.name)

    async def _next(self) -> None:
        await self.promote_due()
        wait = await self._wait()
        raw = await self.redis.blmove(self.key("queue"), self.processing, wait, "RIGHT", "LEFT")  # type: ignore[arg-type]  # Redis takes fractions of a second
        if raw is not None:
            await self.process(raw)

    async def _requeue_own(self) -> None:
        try:
            while await self.redis.lmove(self.processing, self.key("queue"), "RIGHT", "RIGHT") is not None:
                pass
        except RedisError:
            pass  # still away: the next round tries again

    async def _wait(self) -> float:
        """How long to block on an empty queue: a second (to notice ``stop``), less when a retry is due."""
        soonest = await self.redis.zrange(self.key("delayed"), 0, 0, withscores=True)
        if not soonest:
            return 1.0
        return min(1.0, max(0.01, float(soonest[0][1]) - time.time()))

    async def _beat(self) -> None:
        await self.redis.set(self.key("worker", self.name), datetime.now(UTC).isoformat(),
                             px=int(self.heartbeat * 3000))  # fmt: skip

    async def _keep_beating(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(self.heartbeat)
            try:
                await self._beat()
                await self.recover_orphans()
            except Exception:
                log.exception("worker heartbeat failed", worker=self.name)

    async def recover_orphans(self) -> int:
        """Put back on the queue the jobs that dead workers were running (no heartbeat any more)."""
        recovered = 0
        pattern = self.key("processing", "*")
        head = len(self.key("processing", ""))
        async for key in self.redis.scan_iter(match=pattern, count=100):
            other = key.decode()[head:] if isinstance(key, bytes) else str(key)[head:]
            if other == self.name or await self.redis.exists(self.key("worker", other)):
                continue
            while (raw := await self.redis.lmove(key, self.key("queue"), "RIGHT", "RIGHT")) is not None:
                recovered += 1
                try:
                    job = json.loads(raw)
                except ValueError:
                    job = {}
                log.warning("job recovered from a dead worker", **_describe(job), dead_worker=other)
        return recovered

    async def promote_due(self) -> int:
        moved = await self.redis.eval(_PROMOTE, 2, self.key("delayed"), self.key("queue"), str(time.time()))
        return int(moved)

    async def process(self, taken: bytes | str) -> None:
        """Run one job taken into this worker's processing list; done, retried later, or failed."""
        started = time.monotonic()
        raw = taken.decode() if isinstance(taken, bytes) else taken  # ASCII JSON: LREM finds it as text
        try:
            job: Payload = json.loads(raw)
            attempt = int(job.get("attempts", 0)) + 1
        except (ValueError, TypeError, AttributeError) as exc:
            job, attempt = {"id": None, "name": None, "raw": raw[:ERROR_CHARS]}, 1
            await self._give_up(raw, job, attempt, _error(exc), started)
            return
        try:
            await _run_handler(self.context, self.handlers, job)
        except Exception as exc:
            if attempt >= self.attempts:
                await self._give_up(raw, job, attempt, _error(exc), started)
            else:
                await self._retry_later(raw, job, attempt, _error(exc), started)
            return
        await self.redis.lrem(self.processing, 1, raw)
        log.info("job done", **_describe(job), attempt=attempt, outcome="done", worker=self.name,
                 duration_ms=round((time.monotonic() - started) * 1000))  # fmt: skip

    async def _retry_later(self, raw: str, job: Payload, attempt: int, error: str, started: float) -> None:
        delay = self.delay(attempt)
        again = json.dumps(
            job | {"attempts": attempt, "error": error, "failed_at": datetime.now(UTC).isoformat()}
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrem(self.processing, 1, raw)
            pipe.zadd(self.key("delayed"), {again: time.time() + delay})
            await pipe.execute()
        log.warning("job failed; retrying later", **_describe(job), attempt=attempt, outcome="retry",
                    error=error, retry_in_s=delay, worker=self.name,
                    duration_ms=round((time.monotonic() - started) * 1000))  # fmt: skip

    async def _give_up(self, raw: str, job: Payload, attempt: int, error: str, started: float) -> None:
        failed = json.dumps(
            job | {"attempts": attempt, "error": error, "failed_at": datetime.now(UTC).isoformat()}
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrem(self.processing, 1, raw)
            pipe.lpush(self.key("failed"), failed)
            pipe.ltrim(self.key("failed"), 0, FAILED_KEPT - 1)
            await pipe.execute()
        log.error("job failed for good", **_describe(job), attempt=attempt, outcome="failed", error=error,
                  worker=self.name, duration_ms=round((time.monotonic() - started) * 1000))  # fmt: skip
