"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request, Response, get
from litestar.enums import MediaType

log = structlog.get_logger(__name__)


@get("/healthz", media_type=MediaType.JSON, summary="The process answers", tags=["health"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/readyz",
    media_type=MediaType.JSON,
    summary="Database (and Redis when configured) reachable",
    tags=["health"],
)
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    state = request.app.state
    checks: dict[str, str] = {}
    try:
        await state.db.ping()
        checks["database"] = "ok"
    except Exception as exc:
        log.warning("readiness: database unreachable", error=type(exc).__name__)
        checks["database"] = "unreachable"
    if state.redis is not None:
        try:
            await state.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            log.warning("readiness: redis unreachable", error=type(exc).__name__)
            checks["redis"] = "unreachable"
    ready = all(v == "ok" for v in checks.values())
    return Response(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
    )
