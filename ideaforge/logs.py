"""Structured logs: JSON in production, readable lines elsewhere.

Nothing here ever sees a request body. The access log names the route's template
(``/invitations/{token:str}``), not the raw path, so one-time tokens in URLs stay out of it.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

_SECRET_KEYS = {"password", "token", "secret", "authorization", "cookie", "secret_key", "smtp_url"}


def _drop_secrets(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in list(event):
        if key.lower() in _SECRET_KEYS:
            event[key] = "[redacted]"
    return event


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is now (test capture swaps it after start-up)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(*, json: bool, level: int = logging.INFO) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]  # any writable text file
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(_CurrentStderr())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry whole URLs, tokens included


class Outcome:
    """What a middleware learns of a request it passed on: the status sent (500 until one is) and the time."""

    def __init__(self, send: Send) -> None:
        self.status = 500
        self.started = time.perf_counter()
        self._send = send

    async def send(self, message: Message) -> None:
        """Stands in for ``send``, noting the status on the way."""
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self._send(message)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = structlog.get_logger("ideaforge.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        outcome = Outcome(send)
        try:
            await self.app(scope, receive, outcome.send)
        finally:
            self.log.info(
                "request",
                method=scope.get("method"),
                route=scope.get("path_template", "(no route)"),
                status=outcome.status,
                ms=round(outcome.seconds * 1000, 1),
            )
