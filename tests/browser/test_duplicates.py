"""Similar ideas while typing, and the way out of a duplicate, in a real browser."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import expect

from challenges.models import Phase
from ideaforge.db import Database
from tests.browser.conftest import LiveServer, register, seeded_server
from tests.challenge_helpers import make_challenge, make_organisation
from tests.idea_helpers import make_idea, make_user

pytestmark = pytest.mark.browser
PLANTED = "Drinking fountains in every park"


async def _seed(url: str) -> int:
    """A challenge open for ideas and votes, with one planted idea (embedded when the server starts)."""
    database = Database(url)
    now = datetime.now(UTC)
    async with database.sessionmaker() as db:
        org = await make_organisation(db, await make_user(db, "organiser@example.org", "Organiser"))
        challenge = await make_challenge(
            db, org, now, Phase.SUBMISSION, title="Cooler summers", tags=[],
            voting_starts_at=now - timedelta(hours=1), votes_per_user=None,
        )  # fmt: skip
        challenge_id = challenge.id
        author = await make_user(db, "author@example.org", "Author")
        await make_idea(db, challenge, author, now, title=PLANTED,
                        body="Install free drinking water fountains in all the city parks so people can refill "
                             "their bottles during heatwaves.")  # fmt: skip
    await database.dispose()
    return challenge_id


@pytest.fixture(scope="module")
def cooler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, int]]:
    with seeded_server(tmp_path_factory.mktemp("duplicates-live"), _seed) as (server, challenge_id):
        yield server, challenge_id


async def test_the_typing_panel_shows_a_planted_duplicate_and_supporting_it_votes(cooler, browser):
    server, challenge_id = cooler
    problems: list[str] = []
    context = await browser.new_context()
    page = await context.new_page()
    page.on("pageerror", lambda e: problems.append(str(e)))
    await register(page, server.url, "citizen@example.org", "Citizen")

    await page.goto(f"{server.url}/challenges/{challenge_id}/ideas/new")
    panel = page.get_by_role("complementary", name="Similar ideas in this challenge")
    await page.get_by_label("Title").press_sequentially("Water fountains in the parks", delay=20)
    await page.get_by_label("Your idea").press_sequentially(
        "Free public drinking fountains in parks, to refill water bottles when it is hot.", delay=5
    )
    await expect(panel.get_by_role("link", name=PLANTED)).to_be_visible(timeout=15_000)
    await expect(panel).to_contain_text("Very likely the same idea")
    await expect(panel).to_contain_text("0 votes")

    await page.get_by_role("button", name="Publish my idea").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("This idea may already exist")
    await page.get_by_role("button", name="Support this idea instead").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(PLANTED)
    await expect(page.get_by_role("button", name="Remove my vote")).to_be_visible()
    await page.goto(f"{server.url}/notifications")
    await expect(page.get_by_text("Water fountains in the parks")).to_be_visible()
    assert not problems, problems
    await context.close()
