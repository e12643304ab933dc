"""Assigning an expert in a real browser: the organiser suggests and confirms, the expert sees the idea."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from playwright.async_api import expect

from challenges.models import Phase
from ideaforge.db import Database
from ideaforge.profiles.models import ExpertProfile
from tests.browser.conftest import LiveServer, log_in, seeded_server
from tests.challenge_helpers import make_challenge, make_organisation
from tests.idea_helpers import make_idea, make_user

pytestmark = pytest.mark.browser
IDEA = "Community composting in every district"
EXPERT = "Wanda Waste"


async def _seed(url: str) -> int:
    """A challenge open for ideas with one idea, and one available expert (embedded when the server starts)."""
    database = Database(url)
    now = datetime.now(UTC)
    async with database.sessionmaker() as db:
        org = await make_organisation(db, await make_user(db, "organiser@example.org", "Organiser"))
        challenge = await make_challenge(db, org, now, Phase.SUBMISSION, title="Less waste", tags=[])
        challenge_id = challenge.id
        author = await make_user(db, "author@example.org", "Author")
        await make_idea(db, challenge, author, now, title=IDEA,
                        body="Shared compost bins in each neighbourhood turn food waste into soil.")  # fmt: skip
        expert = await make_user(db, "waste@example.org", EXPERT)
        db.add(ExpertProfile(user_id=expert.id, expertise="Household food waste and composting in neighbourhoods.",
                             languages="en", country="FR", capacity=3, available=True))  # fmt: skip
        await db.commit()
    await database.dispose()
    return challenge_id


@pytest.fixture(scope="module")
def composting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, int]]:
    with seeded_server(tmp_path_factory.mktemp("experts-live"), _seed) as (server, challenge_id):
        yield server, challenge_id


async def test_an_organiser_confirms_an_expert_who_then_sees_the_idea(composting, browser):
    server, challenge_id = composting
    problems: list[str] = []
    context = await browser.new_context()
    page = await context.new_page()
    page.on("pageerror", lambda e: problems.append(str(e)))
    await log_in(page, server.url, "organiser@example.org")

    await page.goto(f"{server.url}/challenges/{challenge_id}")
    await page.get_by_role("link", name="Experts for the ideas").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Experts for the ideas")
    await expect(page.get_by_label("Experts per idea")).to_have_value("1")
    table = page.get_by_role("table")
    deadline = time.monotonic() + 30  # the server may still be embedding at start-up: try again until done
    while True:
        await page.get_by_role("button", name="Suggest experts").click()
        try:
            await expect(table.get_by_text(EXPERT)).to_be_visible(timeout=3_000)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
    await expect(page.get_by_role("status").or_(page.locator(".flash"))).to_contain_text("1 expert suggested")
    await expect(table).to_contain_text("Suggested")

    await page.get_by_role("button", name=f"Confirm the experts of “{IDEA}”").click()
    await expect(table).to_contain_text("Confirmed")
    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_role("button", name="Log out")).to_have_count(0)

    await log_in(page, server.url, "waste@example.org")
    await page.goto(f"{server.url}/notifications")
    await page.get_by_role("link", name=f"You are asked to advise on the idea “{IDEA}”").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ideas to advise")
    await page.get_by_role("link", name=IDEA).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(IDEA)
    assert not problems, problems
    await context.close()
