"""Background jobs. The embedded default runs them in-process, after the request's commit.

Services call ``enqueue`` only after they have committed, so a job never sees data that a
rollback later removes. ``drain`` waits for everything in flight (shutdown, tests).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog

log = structlog.get_logger(__name__)

Job = Callable[..., Awaitable[None]]


class JobQueue(Protocol):
    def enqueue(self, job: Job, *args: Any) -> None: ...

    async def drain(self) -> None: ...


class InProcessJobs:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def enqueue(self, job: Job, *args: Any) -> None:
        self._loop = asyncio.get_running_loop()
        task = self._loop.create_task(self._run(job, *args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _run(job: Job, *args: Any) -> None:
        try:
            await job(*args)
        except Exception:
            log.exception("job failed", job=getattr(job, "__qualname__", repr(job)))

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
