"""Liveness and readiness probes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from litestar import Request, Response, get
from litestar.enums import MediaType
from litestar.openapi.datastructures import ResponseSpec

log = structlog.get_logger(__name__)


async def _probe(name: str, ping: Callable[[], Awaitable[Any]]) -> str:
    try:
        await ping()
    except Exception as exc:
        log.warning("readiness: unreachable", dependency=name, error=type(exc).__name__)
        return "unreachable"
    return "ok"


@get("/healthz", media_type=MediaType.JSON, summary="The process answers", tags=["health"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/readyz",
    media_type=MediaType.JSON,
    summary="Database (and Redis when configured) reachable",
    tags=["health"],
    responses={503: ResponseSpec(dict[str, Any], description="A dependency is unreachable (see checks)")},
)
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    state = request.app.state
    checks = {"database": await _probe("database", state.db.ping)}
    if state.redis is not None:
        checks["redis"] = await _probe("redis", state.redis.ping)
    ready = all(v == "ok" for v in checks.values())
    return Response(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
    )
