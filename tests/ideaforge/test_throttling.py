"""Login throttling per account and per address, in memory and in Redis."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from ideaforge.app import create_app
from tests.helpers import login, logout, register


async def test_an_account_is_locked_after_five_failures_even_for_the_right_password(client):
    who = await register(client)
    await logout(client)
    for _ in range(5):
        assert (await login(client, who.email, "wrong password here")).status_code == 400
    blocked = await login(client, who.email)
    assert blocked.status_code == 429
    assert "Too many login attempts" in blocked.text
    assert int(blocked.headers["retry-after"]) > 0


async def test_unknown_emails_are_throttled_like_real_ones(client):
    for _ in range(5):
        await login(client, "ghost@example.org", "wrong password here")
    assert (await login(client, "ghost@example.org", "wrong password here")).status_code == 429


@pytest.fixture
def strict_ip_app(backend, embedder):
    return create_app(
        backend.settings.model_copy(update={"login_attempts_per_ip": "3/15 minutes"}), embedder=embedder
    )


async def test_one_address_trying_many_accounts_is_throttled(strict_ip_app):
    async with AsyncTestClient(strict_ip_app, base_url="http://testserver.local") as client:
        for n in range(3):
            assert (await login(client, f"user{n}@example.org", "wrong password here")).status_code == 400
        assert (await login(client, "fresh@example.org", "wrong password here")).status_code == 429


async def test_a_successful_login_resets_the_account_count(client):
    who = await register(client)
    await logout(client)
    for _ in range(4):
        await login(client, who.email, "wrong password here")
    assert (await login(client, who.email)).status_code == 303
    await logout(client)
    for _ in range(4):
        assert (await login(client, who.email, "wrong password here")).status_code == 400
