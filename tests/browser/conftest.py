"""A real server process on the embedded default, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from ideaforge.db.migrate import upgrade
from tests.services import CHROMIUM

T = TypeVar("T")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@dataclass
class LiveServer:
    url: str
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(data_dir: Path) -> Iterator[LiveServer]:
    """``ideaforge serve`` on the embedded default over ``data_dir``, until the block ends."""
    port = _free_port()
    log = data_dir / "server.log"
    env = os.environ | {"IDEAFORGE_DATA_DIR": str(data_dir), "IDEAFORGE_BASE_URL": f"http://127.0.0.1:{port}"}
    env.pop("IDEAFORGE_DATABASE_URL", None)
    env.pop("IDEAFORGE_REDIS_URL", None)
    with log.open("w") as out:
        process = subprocess.Popen([str(Path(sys.executable).parent / "ideaforge"), "serve", "--port", str(port)],
                                   env=env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start:\n{log.read_text()}") from None
                time.sleep(0.2)
        yield LiveServer(url, log)
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextmanager
def seeded_server(
    data_dir: Path, seed: Callable[[str], Coroutine[Any, Any, T]]
) -> Iterator[tuple[LiveServer, T]]:
    """A server over a database migrated and then filled by ``seed(url)`` (run in its own event loop, since
    the test's loop is not running yet when module fixtures start); yields the server and what ``seed``
    returned."""
    url = f"sqlite+aiosqlite:///{data_dir / 'ideaforge.sqlite3'}"
    with ThreadPoolExecutor(1) as pool:
        pool.submit(upgrade, url).result()
        seeded: T = pool.submit(asyncio.run, seed(url)).result()
    with running_server(data_dir) as server:
        yield server, seeded


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("live")) as server:
        yield server


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


PASSWORD = "correct horse battery staple"
"""The password of the users the browser tests seed (tests.idea_helpers.make_user) or register."""


async def register(page: Page, base: str, email: str, name: str) -> None:
    """Create an account through the registration page; it ends signed in."""
    await page.goto(f"{base}/register")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Display name").fill(name)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create my account").click()
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()


async def log_in(page: Page, base: str, email: str) -> None:
    await page.goto(f"{base}/login")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()
