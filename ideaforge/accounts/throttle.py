"""Login throttling per account and per client address, with `limits` (Redis when configured)."""

from __future__ import annotations

import hashlib
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter


def make_storage(redis_url: str, prefix: str) -> Storage:
    if not redis_url:
        return MemoryStorage()
    uri = redis_url.replace("redis://", "async+redis://", 1).replace("rediss://", "async+rediss://", 1)
    return RedisStorage(uri, implementation="redispy", key_prefix=f"{prefix}:limits")


class LoginThrottle:
    """Counts failed logins; a success clears the account's count but not the address's."""

    def __init__(self, storage: Storage, per_account: str, per_ip: str) -> None:
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(storage)
        self.per_account: RateLimitItem = parse(per_account)
        self.per_ip: RateLimitItem = parse(per_ip)

    @staticmethod
    def _account_key(email: str) -> str:
        # Hashed: the key space of a shared Redis should not list who tried to log in.
        return hashlib.sha256(email.strip().lower().encode()).hexdigest()

    async def retry_after(self, email: str, ip: str) -> int | None:
        """Seconds until another attempt is allowed, or None when one is allowed now."""
        waits = []
        for item, key in ((self.per_account, self._account_key(email)), (self.per_ip, ip)):
            if not await self.limiter.test(item, "login", key):
                stats = await self.limiter.get_window_stats(item, "login", key)
                waits.append(max(1, int(stats.reset_time - time.time())))
        return max(waits) if waits else None

    async def record_failure(self, email: str, ip: str) -> None:
        await self.limiter.hit(self.per_account, "login", self._account_key(email))
        await self.limiter.hit(self.per_ip, "login", ip)

    async def record_success(self, email: str) -> None:
        await self.limiter.clear(self.per_account, "login", self._account_key(email))
