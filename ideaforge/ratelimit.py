"""Rate limits on what users do (submit, vote, comment), with `limits` (Redis when configured)."""

from __future__ import annotations

import time
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from ideaforge.errors import TooManyAttempts
from ideaforge.i18n import _


class ActionLimits:
    def __init__(self, storage: Storage, limits: dict[str, str]) -> None:
        self.limiter = MovingWindowRateLimiter(storage)
        self.items: dict[str, RateLimitItem] = {k: parse(v) for k, v in limits.items()}

    async def hit(self, action: str, who: int | str) -> None:
        """Count one action by ``who`` (a user id, or "ip:<address>"); raise TooManyAttempts past the limit."""
        item = self.items[action]
        if not await self.limiter.hit(item, "action", action, str(who)):
            stats = await self.limiter.get_window_stats(item, "action", action, str(who))
            wait = max(1, int(stats.reset_time - time.time()))
            raise TooManyAttempts(_("You are doing this too often. Try again in %(seconds)s seconds.",
                                    seconds=wait), retry_after=wait)  # fmt: skip


def rate_limited(action: str, *, anonymous: bool = False) -> Guard:
    """A route guard counting ``action`` for the signed-in user; with ``anonymous``, visitors who are not
    signed in are counted by address (otherwise they are refused elsewhere, by the handler)."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        user = connection.scope.get("user")
        if user is not None:
            await connection.app.state.action_limits.hit(action, user.id)
        elif anonymous:
            address = connection.client.host if connection.client else "unknown"
            await connection.app.state.action_limits.hit(action, f"ip:{address}")

    return guard
