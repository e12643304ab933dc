"""Prometheus metrics: requests per route and status, their durations, and a few domain counters.

Labels name the route's template (``/ideas/{idea_id}``), never the raw path: the number of series stays
bounded and tokens in URLs stay out, as in the access log.

Multi-process aware. With ``PROMETHEUS_MULTIPROC_DIR`` set (``ideaforge serve --workers N`` sets it), every
process writes its values to files in that directory and ``/metrics`` sums the files of every process, live
or dead, so whichever worker answers the scrape reports the whole server. The variable must be set before
``prometheus_client`` is imported (it picks its storage at import), hence in the environment of the server,
never from inside the app. Without it, the process's own default registry is served.

``/metrics`` carries no secrets but tells a lot about traffic: in production, scrape it over the internal
network and refuse it at the reverse proxy (``IDEAFORGE_METRICS=false`` removes it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, cast

from litestar import Response, get
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from ideaforge.logs import Outcome

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PATH = "/metrics"
NO_ROUTE = "(no route)"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w*?_(\d+)\.db$")


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


# A process started with the variable set but without `serve` (a test, a custom launcher) still works.
if (_dir := multiprocess_dir()) is not None:
    _dir.mkdir(parents=True, exist_ok=True)


HTTP_REQUESTS = Counter(
    "ideaforge_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "ideaforge_http_request_duration_seconds",
    "Time from receiving a request to the end of its response, by method and route template (a live "
    "update stream counts for as long as it stays open).",
    ["method", "route"],
)
HTTP_IN_PROGRESS = Gauge(
    "ideaforge_http_requests_in_progress",
    "Requests being answered now, open live update streams included (summed over live processes).",
    multiprocess_mode="livesum",
)
VOTES_CAST = Counter(
    "ideaforge_votes_cast", "Votes recorded (a repeated vote for the same idea is not counted)."
)
IDEAS_SUBMITTED = Counter("ideaforge_ideas_submitted", "Ideas submitted.")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def forget_dead_processes(path: Path) -> None:
    """Drop the live gauges of processes that are gone (a worker killed and restarted by the server). Their
    counters and histograms stay: what they answered still happened."""
    pids = {int(m.group(1)) for f in path.iterdir() if (m := _LIVE_GAUGE_FILE.match(f.name))}
    for pid in pids:
        if pid != os.getpid() and not _alive(pid):
            multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]


def mark_this_process_dead() -> None:
    """On a clean shutdown: this process's live gauges stop counting at once."""
    path = multiprocess_dir()
    if path is not None:
        multiprocess.mark_process_dead(os.getpid(), str(path))  # type: ignore[no-untyped-call]


def exposition() -> bytes:
    """The Prometheus text of every process (multi-process mode) or of this one."""
    path = multiprocess_dir()
    if path is None:
        return generate_latest(REGISTRY)
    forget_dead_processes(path)
    registry = CollectorRegistry()  # fresh on each scrape, as the multi-process mode requires
    multiprocess.MultiProcessCollector(registry, str(path))  # type: ignore[no-untyped-call]
    return generate_latest(registry)


@get(METRICS_PATH, include_in_schema=False, sync_to_thread=True)
def metrics_endpoint() -> Response[bytes]:
    """Prometheus scrape target (reads the processes' files: in a thread)."""
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


async def count_unrouted(message: Message, scope: Scope) -> None:
    """``before_send`` hook: the answers no route reached (404 for unknown paths, 405), which the middleware,
    applied per route, never sees. Counted under one ``(no route)`` label, without a duration."""
    routed = cast("dict[str, Any]", scope).get("path_template")  # set only once routing succeeded
    if message["type"] == "http.response.start" and scope["type"] == ScopeType.HTTP and routed is None:
        HTTP_REQUESTS.labels(_method(scope), NO_ROUTE, str(message["status"])).inc()


def _method(scope: Scope) -> str:
    method = scope.get("method", "")
    return method if method in _METHODS else "other"


class MetricsMiddleware:
    """Counts and times every routed HTTP request under its route's template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        outcome = Outcome(send)
        HTTP_IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, outcome.send)
        finally:
            HTTP_IN_PROGRESS.dec()
            method = _method(scope)
            route = scope.get("path_template") or NO_ROUTE
            HTTP_REQUESTS.labels(method, route, str(outcome.status)).inc()
            HTTP_DURATION.labels(method, route).observe(outcome.seconds)
